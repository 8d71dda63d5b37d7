//! A zone storm on the fakes: the zone's breaker opens with one message and holds every
//! repair there while another zone is repaired; the tick pays nothing for the holds; once
//! the cool-down is over the tick closes it with one message and takes the holds up a few
//! per tick, oldest first, each confirmed with EC2 (those recovered close quietly).

use super::{alarm, tick, Bench, Machine, Seen, REGION, SAMPLE_ALARM_MS as ALARM_MS};
use crate::model::facts::{Check, Checks};
use crate::model::outcome::Verdict;
use crate::rules::incident::{HoldKind, Status};

const MIN: i64 = 60_000;

const IMPAIRED: Checks = Checks {
    system: Check::Impaired,
    instance: Check::Ok,
};

fn id(i: usize) -> String {
    format!("i-{i:017x}")
}

/// Eight standalone instances in zone a, one in zone b, all failing; the zone breaker
/// trips above 3, the account budget is off, two holds are taken up per tick. The zone's
/// storm after their alarms, and the instances its breaker holds.
async fn storm_in_zone_a() -> (Bench, Vec<usize>) {
    let mut machines: Vec<Machine> = (0..8)
        .map(|i| Machine::running(&id(i), IMPAIRED).in_zone("us-east-1a"))
        .collect();
    machines.push(Machine::running(&id(8), IMPAIRED).in_zone("us-east-1b"));
    let env = [
        ("AUTOHEAL_ZONE_BREAKER_COUNT", "3"),
        ("AUTOHEAL_ZONE_BREAKER_PERCENT", "off"),
        ("AUTOHEAL_ACCOUNT_MAX_REPAIRS", "off"),
        ("AUTOHEAL_TAKE_UP_PER_TICK", "2"),
    ];
    let b = Bench::new(&env, machines, ALARM_MS + 200_000);
    let mut results = vec![];
    for i in [0, 1, 2, 3, 8, 4, 5, 6, 7] {
        let r = b.invoke(&alarm(&id(i))).await.unwrap();
        results.push((i, r.outcomes.into_iter().next().unwrap()));
    }
    let held: Vec<usize> = results
        .iter()
        .filter(|(_, o)| o.result == Verdict::Held)
        .map(|(i, _)| *i)
        .collect();
    assert_eq!(held, [3, 4, 5, 6, 7], "{results:#?}");
    let powered = b.journal.mutating_calls();
    assert_eq!(
        powered.len(),
        4,
        "zone a's first three and zone b's: {powered:?}"
    );
    let storm: Vec<String> = b
        .journal
        .told()
        .into_iter()
        .filter(|t| t.contains("us-east-1a"))
        .collect();
    assert_eq!(storm.len(), 1, "{storm:#?}");
    assert!(
        storm[0].contains("zone us-east-1a in us-east-1 looks impaired"),
        "{}",
        storm[0]
    );
    for i in &held {
        let head = b
            .store
            .head(&crate::model::keys::key(REGION, &id(*i)))
            .unwrap();
        assert_eq!(head.hold_kind, Some(HoldKind::Breaker));
        assert_eq!(
            head.hold_scope.as_deref(),
            Some("zone:us-east-1a@us-east-1")
        );
    }
    (b, held)
}

#[tokio::test]
async fn while_a_zone_storm_is_open_its_holds_cost_the_tick_nothing() {
    let (b, held) = storm_in_zone_a().await;
    b.deps.clock.advance(MIN);
    let (reads, seen) = (b.store.calls("read"), b.journal.all().len());
    let r = b.invoke(&tick()).await.unwrap();
    assert!(
        r.outcomes
            .iter()
            .any(|o| o.reason.contains("5 behind an open breaker")),
        "{r:#?}"
    );
    let advanced = r
        .outcomes
        .iter()
        .filter(|o| o.instance_id.is_some())
        .count();
    assert_eq!(
        b.store.calls("read") - reads,
        advanced,
        "a head read alone only for an incident advanced: {r:#?}"
    );
    assert!(
        !r.outcomes
            .iter()
            .any(|o| held.iter().any(|i| o.instance_id == Some(id(*i)))),
        "{r:#?}"
    );
    let about_held = |s: &Seen| {
        let text = match s {
            Seen::Wrote { key, .. } => key,
            Seen::Called { target, .. } => target,
            Seen::Told(text) => text,
        };
        held.iter().any(|i| text.contains(&id(*i)))
    };
    assert!(
        !b.journal.all()[seen..].iter().any(about_held),
        "nothing about the held"
    );
}

#[tokio::test]
async fn a_zone_storm_ends_with_one_message_and_its_holds_are_taken_up_at_a_pace() {
    let (b, held) = storm_in_zone_a().await;
    // The zone recovers; past the window and the cool-down the tick closes the breaker.
    for i in 0..8 {
        b.fleet.set_checks(&id(i), Checks::default());
    }
    b.deps.clock.advance(20 * MIN);
    let before = b.journal.told().len();
    let mut taken = vec![];
    for _ in 0..3 {
        let r = b.invoke(&tick()).await.unwrap();
        let closed: Vec<usize> = held
            .iter()
            .copied()
            .filter(|i| {
                r.outcomes
                    .iter()
                    .any(|o| o.instance_id.as_deref() == Some(id(*i).as_str()))
            })
            .collect();
        taken.push(closed);
        b.deps.clock.advance(MIN);
    }
    assert_eq!(
        taken,
        [vec![3, 4], vec![5, 6], vec![7]],
        "oldest first, two per tick"
    );
    let after: Vec<String> = b.journal.told()[before..]
        .iter()
        .filter(|t| held.iter().any(|i| t.contains(&id(*i))) || t.contains("storm"))
        .cloned()
        .collect();
    assert_eq!(after.len(), 1, "the end, and no hold told: {after:#?}");
    assert!(after[0].contains("storm over"), "{}", after[0]);
    for i in &held {
        let head = b
            .store
            .head(&crate::model::keys::key(REGION, &id(*i)))
            .unwrap();
        assert_eq!(head.status, Status::Closed, "{head:?}");
    }
    let repaired_held = b.journal.all().into_iter().any(|s| {
        matches!(&s, Seen::Called { mutating: true, target, .. } if held.iter().any(|i| *target == id(*i)))
    });
    assert!(!repaired_held, "no repair of what recovered while held");
}

#[tokio::test]
async fn a_shift_away_from_a_zone_holds_its_repairs_until_it_ends_and_cools_down() {
    let machines = vec![
        Machine::running(&id(0), IMPAIRED).in_zone("us-east-1a"),
        Machine::running(&id(1), IMPAIRED).in_zone("us-east-1b"),
    ];
    let b = Bench::new(&[], machines, ALARM_MS + 200_000);
    b.fleet
        .shift("us-east-1a", Some("AWS zonal autoshift away from use1-az6"));
    // The tick finds the shift: the zone's breaker opens, one message.
    b.invoke(&tick()).await.unwrap();
    let shifted: Vec<String> = b
        .journal
        .told()
        .into_iter()
        .filter(|t| t.contains("traffic is shifted away from zone us-east-1a"))
        .collect();
    assert_eq!(shifted.len(), 1, "{:#?}", b.journal.told());
    // An alarm there is held; one elsewhere is repaired.
    let held = b.invoke(&alarm(&id(0))).await.unwrap();
    assert_eq!(held.outcomes[0].result, Verdict::Held, "{held:?}");
    assert!(held.outcomes[0].reason.contains("use1-az6"), "{held:?}");
    let other = b.invoke(&alarm(&id(1))).await.unwrap();
    assert_ne!(other.outcomes[0].result, Verdict::Held, "{other:?}");
    let on = |i: usize| {
        let target = id(i);
        b.journal
            .all()
            .into_iter()
            .any(|s| matches!(s, Seen::Called { mutating: true, target: t, .. } if t == target))
    };
    assert!(!on(0) && on(1));
    // Long after, still shifted: still held; a tick sends no new message for it.
    b.deps.clock.advance(60 * MIN);
    b.invoke(&tick()).await.unwrap();
    assert!(!on(0));
    // The shift ends: the cool-down (10 min) runs from now, then the repair is taken up.
    b.fleet.shift("us-east-1a", None);
    b.invoke(&tick()).await.unwrap();
    b.deps.clock.advance(5 * MIN);
    b.invoke(&tick()).await.unwrap();
    assert!(!on(0), "not within the cool-down");
    b.deps.clock.advance(6 * MIN);
    b.invoke(&tick()).await.unwrap();
    assert!(
        on(0),
        "repaired once the zone cooled down: {:#?}",
        b.journal.all()
    );
    let ended: Vec<String> = b
        .journal
        .told()
        .into_iter()
        .filter(|t| t.contains("storm over"))
        .collect();
    assert_eq!(ended.len(), 1, "{:#?}", b.journal.told());
}

#[tokio::test]
async fn a_zone_still_failing_after_its_cool_down_trips_again_from_the_take_up() {
    let (b, held) = storm_in_zone_a().await;
    // Nothing recovers, and no new alarm comes (an alarm that stays in ALARM says nothing
    // more): the breaker cools down and the holds are taken up, each confirmed failing.
    b.deps.clock.advance(20 * MIN);
    for _ in 0..4 {
        b.invoke(&tick()).await.unwrap();
        b.deps.clock.advance(MIN);
    }
    let repaired: Vec<usize> = held
        .iter()
        .copied()
        .filter(|i| {
            b.journal.all().into_iter().any(
                |s| matches!(s, Seen::Called { mutating: true, target, .. } if target == id(*i)),
            )
        })
        .collect();
    // Above 3 noted again within the window, the zone's breaker is open again: of the five
    // held, at most the three taken up before it were repaired.
    assert!(repaired.len() <= 3, "{repaired:?}");
    let reopened = b
        .journal
        .told()
        .iter()
        .filter(|t| t.contains("zone us-east-1a in us-east-1 looks impaired"))
        .count();
    assert_eq!(reopened, 2, "{:#?}", b.journal.told());
    let still: Vec<usize> = held
        .iter()
        .copied()
        .filter(|i| {
            let head = b
                .store
                .head(&crate::model::keys::key(REGION, &id(*i)))
                .unwrap();
            head.hold_kind == Some(HoldKind::Breaker)
        })
        .collect();
    assert!(!still.is_empty(), "held again: {still:?}");
}

#[tokio::test]
async fn a_storm_left_listing_a_closed_breaker_is_ended_by_the_next_tick() {
    // A crash between a breaker's close and the storm's update: the storm still lists it.
    let b = Bench::new(&[], vec![], ALARM_MS);
    b.store.before("read_storm", 1, |t| {
        t.storm.open.insert("zone:us-east-1a@us-east-1".into());
        t.storm.since_ms = Some(ALARM_MS - 30 * MIN);
    });
    b.invoke(&tick()).await.unwrap();
    assert!(b.store.with(|t| t.storm.open.is_empty()));
    let ended: Vec<String> = b
        .journal
        .told()
        .into_iter()
        .filter(|t| t.contains("storm over"))
        .collect();
    assert_eq!(ended.len(), 1, "{:#?}", b.journal.told());
    assert!(ended[0].contains("lasted 30m00s"), "{}", ended[0]);
    // Told once: the next tick has nothing to say.
    b.invoke(&tick()).await.unwrap();
    assert_eq!(
        b.journal
            .told()
            .iter()
            .filter(|t| t.contains("storm"))
            .count(),
        1
    );
}

#[tokio::test]
async fn alarms_spread_over_zones_trip_the_accounts_breaker() {
    // Two failing instances in each of three zones: no zone's breaker (above 3) trips, the
    // account's (above 4) does, at the fifth.
    let machines: Vec<Machine> = (0..6)
        .map(|i| {
            Machine::running(&id(i), IMPAIRED)
                .in_zone(["us-east-1a", "us-east-1b", "us-east-1c"][i % 3])
        })
        .collect();
    let env = [
        ("AUTOHEAL_ZONE_BREAKER_COUNT", "3"),
        ("AUTOHEAL_ZONE_BREAKER_PERCENT", "off"),
        ("AUTOHEAL_ACCOUNT_BREAKER_COUNT", "4"),
        ("AUTOHEAL_ACCOUNT_MAX_REPAIRS", "off"),
    ];
    let b = Bench::new(&env, machines, ALARM_MS + 200_000);
    let mut results = vec![];
    for i in 0..6 {
        let r = b.invoke(&alarm(&id(i))).await.unwrap();
        results.push(r.outcomes[0].result);
    }
    assert_eq!(
        results,
        [
            Verdict::InProgress,
            Verdict::InProgress,
            Verdict::InProgress,
            Verdict::InProgress,
            Verdict::Held,
            Verdict::Held
        ]
    );
    let opened: Vec<String> = b
        .journal
        .told()
        .into_iter()
        .filter(|t| t.contains("instances across this account alarmed"))
        .collect();
    assert_eq!(opened.len(), 1, "{:#?}", b.journal.told());
    assert!(opened[0].contains(r#""scope":"account""#), "{}", opened[0]);
    let head = b
        .store
        .head(&crate::model::keys::key(REGION, &id(5)))
        .unwrap();
    assert_eq!(head.hold_scope.as_deref(), Some("account"));
}
