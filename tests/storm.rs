//! A zone failing, on the emulator: twelve groups of three, each placed by the emulator in
//! one of three zones at random, every instance of one zone impaired at once. One story for
//! people (the zone's breaker opens with one message, one update, one end), no repair in
//! the zone while its breaker is open, repairs elsewhere go on, and after the zone recovers
//! the holds are taken up at a pace, each confirmed with EC2 first, closing quietly. And a
//! zone ARC shifts traffic away from: nothing repaired there until the shift ends and the
//! zone's breaker cools down.

mod common;

use common::*;
use futures::StreamExt;
use std::collections::{BTreeMap, BTreeSet};

const MIN: i64 = 60_000;

/// Each instance's zone, as EC2 reports it.
async fn zones_of(world: &World, ids: &[String]) -> BTreeMap<String, String> {
    let out = world
        .ec2
        .describe_instances()
        .set_instance_ids(Some(ids.to_vec()))
        .send()
        .await
        .unwrap();
    out.reservations()
        .iter()
        .flat_map(|r| r.instances())
        .map(|i| {
            let zone = i.placement().and_then(|p| p.availability_zone()).unwrap();
            (i.instance_id().unwrap().to_string(), zone.to_string())
        })
        .collect()
}

/// How many of `ids` Auto Scaling has Unhealthy: marked by autoheal.
async fn unhealthy(world: &World, ids: &[String]) -> usize {
    let mut n = 0;
    for id in ids {
        n += usize::from(world.health(id).await == "UNHEALTHY");
    }
    n
}

fn about_storm(text: &str) -> bool {
    text.contains("looks impaired")
        || text.contains("autoheal storm")
        || text.contains("breaker open")
}

#[tokio::test]
async fn a_failing_zone_is_one_story_and_its_repairs_wait_for_it() {
    let (world, proxy, slack) = setup(WorldSpec::healthy(0, 0)).await;
    let mut members = vec![];
    for g in 0..12 {
        let name = unique(&format!("svc{g}"));
        let (_, m) = make_group_in(
            &world.ec2,
            &world.asg,
            (&world.region, &["a", "b", "c"]),
            &name,
            3,
            &[],
        )
        .await;
        members.extend(m);
    }
    let zones = zones_of(&world, &members).await;
    let mut by_zone: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (id, zone) in &zones {
        by_zone.entry(zone.as_str()).or_default().push(id.clone());
    }
    // The zone with most members fails; one member of each other zone fails on its own.
    let (failing, down) = by_zone
        .iter()
        .max_by_key(|(_, ids)| ids.len())
        .map(|(z, ids)| (z.to_string(), ids.clone()))
        .unwrap();
    assert!(down.len() >= 12, "36 members over 3 zones: {by_zone:?}");
    let elsewhere: Vec<String> = by_zone
        .iter()
        .filter(|(z, _)| **z != failing)
        .map(|(_, ids)| ids[0].clone())
        .collect();
    for id in down.iter().chain(&elsewhere) {
        world.checks(id, Some("impaired"), None).await;
    }
    let clock = autoheal::app::clock::Clock::manual(chrono::Utc::now().timestamp_millis());
    // The zone's story: the account's breaker (above 25) is off, so which breaker begins the
    // storm does not depend on how the concurrent alarms interleave.
    let no_account = ("AUTOHEAL_ACCOUNT_BREAKER_COUNT", "off");
    let deps = world.deps_on(&proxy, &[no_account], &clock).await;

    // The other zones' failures first: repaired, the account budget (5) allowing.
    for id in &elsewhere {
        let r = invoke(&deps, &alarm_at(&deps, "sns-alarm.json", id, 0))
            .await
            .unwrap();
        assert!(
            summary(&r)[0].starts_with("mark_unhealthy done"),
            "{id}: {:?}",
            summary(&r)
        );
    }
    // Then the zone, ten alarms at a time (the template's reserved concurrency).
    let alarms: Vec<Vec<u8>> = down
        .iter()
        .enumerate()
        .map(|(i, id)| alarm_at(&deps, "sns-alarm.json", id, 3_000 - i as i64 * 50))
        .collect();
    let results: Vec<_> = futures::stream::iter(alarms.iter().map(|a| invoke(&deps, a)))
        .buffer_unordered(10)
        .collect()
        .await;
    let mut answered = BTreeSet::new();
    for r in results {
        for o in r.unwrap().outcomes {
            answered.insert(o.instance_id.unwrap());
        }
    }
    assert_eq!(
        answered,
        down.iter().cloned().collect(),
        "every alarm answered"
    );
    let repaired = unhealthy(&world, &down).await;
    let mut held = vec![];
    for id in &down {
        if world.health(id).await != "UNHEALTHY" {
            held.push(id.clone());
        }
    }
    assert!(
        held.len() + 5 >= down.len(),
        "{} of {} held",
        held.len(),
        down.len()
    );
    let marks = proxy.calls("SetInstanceHealth");
    assert!(marks <= 5, "at most the account budget: {marks}");
    for id in &elsewhere {
        assert_eq!(
            world.health(id).await,
            "UNHEALTHY",
            "{id}: repaired in its healthy zone"
        );
    }
    let storm = || -> Vec<String> {
        slack
            .texts()
            .into_iter()
            .filter(|t| about_storm(t))
            .collect()
    };
    let opened = storm();
    assert_eq!(opened.len(), 1, "{:#?}", slack.texts());
    assert!(
        opened[0].contains(&format!("zone {failing} in us-east-1 looks impaired")),
        "{}",
        opened[0]
    );

    // While it is open: the tick repairs nothing there and pays nothing for the holds;
    // one update once the period is over.
    let no_budget = world
        .deps_on(
            &proxy,
            &[("AUTOHEAL_ACCOUNT_MAX_REPAIRS", "off"), no_account],
            &clock,
        )
        .await;
    for _ in 0..6 {
        clock.advance(MIN);
        let r = invoke(&no_budget, &event("scheduled-tick.json", &[]))
            .await
            .unwrap();
        assert!(
            summary(&r)
                .iter()
                .any(|l| l.contains("behind an open breaker")),
            "{:#?}",
            summary(&r)
        );
    }
    assert_eq!(
        unhealthy(&world, &down).await,
        repaired,
        "no repair in the zone while open"
    );
    assert_eq!(
        storm().len(),
        2,
        "the opening and one update: {:#?}",
        storm()
    );
    assert!(
        storm()[1].contains("autoheal storm, since"),
        "{}",
        storm()[1]
    );

    // The zone recovers; after the window and the cool-down the tick closes its breaker and
    // takes the holds up five per tick, each confirmed first: recovered, closed quietly.
    for id in &down {
        world.checks(id, None, None).await;
    }
    clock.advance(20 * MIN);
    let told = slack.texts().len();
    let mut ticks = 0;
    loop {
        let r = invoke(&no_budget, &event("scheduled-tick.json", &[]))
            .await
            .unwrap();
        ticks += 1;
        let queued = summary(&r).iter().any(|l| l.contains("waiting their turn"));
        if !queued || ticks > 10 {
            break;
        }
        clock.advance(MIN);
    }
    assert!(
        ticks >= 2,
        "taken up at a pace, not at once: {ticks} tick(s)"
    );
    let storm = storm();
    assert_eq!(storm.len(), 3, "open, update, end: {storm:#?}");
    assert!(storm[2].contains("autoheal storm over"), "{}", storm[2]);
    let later = &slack.texts()[told..];
    assert!(
        !later
            .iter()
            .any(|t| held.iter().any(|id| t.contains(id.as_str()))),
        "the recovered close without a message: {later:#?}"
    );
    assert_eq!(
        unhealthy(&world, &down).await,
        repaired,
        "nothing repaired that recovered"
    );
}

/// The zone id ARC names `zone` by, as EC2 reports it in the world's account.
async fn zone_id(world: &World, zone: &str) -> String {
    let out = world
        .ec2
        .describe_availability_zones()
        .zone_names(zone)
        .send()
        .await
        .unwrap();
    out.availability_zones()[0].zone_id().unwrap().to_string()
}

#[tokio::test]
async fn a_zone_shifted_away_from_is_not_repaired_until_the_shift_ends_and_cools_down() {
    let (world, proxy, slack) = setup(WorldSpec::healthy(0, 0)).await;
    // The emulator puts each group's members in one zone it picks: groups until two zones
    // have members. The first group's zone is shifted away from.
    let mut placed: BTreeMap<String, String> = BTreeMap::new();
    for _ in 0..12 {
        let name = unique("svc");
        let zones = (world.region.as_str(), &["a", "b", "c"][..]);
        let (_, members) = make_group_in(&world.ec2, &world.asg, zones, &name, 3, &[]).await;
        placed.extend(zones_of(&world, &members).await);
        if placed.values().collect::<BTreeSet<_>>().len() > 1 {
            break;
        }
    }
    let shifted_zone = placed.values().next().unwrap().clone();
    let inside = placed
        .iter()
        .find(|(_, z)| **z == shifted_zone)
        .map(|(id, _)| id.clone());
    let outside = placed
        .iter()
        .find(|(_, z)| **z != shifted_zone)
        .map(|(id, _)| id.clone());
    let (Some(inside), Some(outside)) = (inside, outside) else {
        panic!("members in two zones: {placed:?}");
    };
    for id in [&inside, &outside] {
        world.checks(id, Some("impaired"), None).await;
    }
    // ARC moves traffic away from zone a: an autoshift, as AWS starts one.
    let shift = |active: bool| {
        let world = &world;
        let zone = shifted_zone.clone();
        async move {
            let body = serde_json::json!({"account": world.account, "region": world.region,
                "away_from": zone_id(world, &zone).await, "kind": "autoshift", "active": active});
            control("zonal-shift", body).await;
        }
    };
    shift(true).await;
    let clock = autoheal::app::clock::Clock::manual(chrono::Utc::now().timestamp_millis());
    let deps = world.deps_on(&proxy, &[], &clock).await;
    invoke(&deps, &event("scheduled-tick.json", &[]))
        .await
        .unwrap();
    let told: Vec<String> = slack
        .texts()
        .into_iter()
        .filter(|t| t.contains(&format!("traffic is shifted away from zone {shifted_zone}")))
        .collect();
    assert_eq!(told.len(), 1, "{:#?}", slack.texts());
    assert!(
        told[0].contains("AWS zonal autoshift away from"),
        "{}",
        told[0]
    );

    let held = invoke(&deps, &alarm_at(&deps, "sns-alarm.json", &inside, 0))
        .await
        .unwrap();
    assert!(
        summary(&held)[0].starts_with("none held: breaker open"),
        "{:?}",
        summary(&held)
    );
    let repaired = invoke(&deps, &alarm_at(&deps, "sns-alarm.json", &outside, 0))
        .await
        .unwrap();
    assert!(
        summary(&repaired)[0].starts_with("mark_unhealthy done"),
        "{:?}",
        summary(&repaired)
    );
    assert_eq!(world.health(&inside).await, "HEALTHY");

    // The shift ends; the zone's breaker cools down (10 min) from then; then the held
    // member is taken up (the in-flight budget of its group still applies).
    shift(false).await;
    clock.advance(60_000);
    let ended = invoke(&deps, &event("scheduled-tick.json", &[]))
        .await
        .unwrap();
    assert!(
        summary(&ended)
            .iter()
            .any(|l| l.contains("the shift away from it ended")),
        "{:#?}",
        summary(&ended)
    );
    clock.advance(11 * 60_000);
    let after = invoke(&deps, &event("scheduled-tick.json", &[]))
        .await
        .unwrap();
    let lines = summary(&after);
    assert!(
        !lines.iter().any(|l| l.contains("breaker open")),
        "{lines:#?}"
    );
    assert!(
        slack
            .texts()
            .iter()
            .any(|t| t.contains("autoheal storm over")),
        "{:#?}",
        slack.texts()
    );
}
