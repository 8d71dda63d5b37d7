//! `AUTOHEAL_SCAN` on the emulator: the tick finds impaired instances no alarm reported and
//! repairs them through the same pipeline as an alarm, bounded per tick, never twice, and
//! never an instance autoheal already knows.

mod common;

use common::*;

async fn tick(deps: &autoheal::app::Deps) -> Vec<String> {
    summary(
        &invoke(deps, &event("scheduled-tick.json", &[]))
            .await
            .unwrap(),
    )
}

fn found<'a>(lines: &'a [String], what: &str) -> Vec<&'a String> {
    lines.iter().filter(|l| l.starts_with(what)).collect()
}

#[tokio::test]
async fn the_scan_repairs_impaired_instances_nobody_alarmed_on_once_each() {
    let (world, proxy, slack) = setup(WorldSpec::healthy(6, 1)).await;
    let m = &world.members;
    // Three members fail; nobody made an alarm for them.
    for id in &m[..3] {
        world.checks(id, Some("impaired"), Some("impaired")).await;
    }
    // Off by default: the tick does not look (it reads only the scheduled events,
    // docs/scheduled-events.md, not the impaired checks).
    let off = world.deps(&proxy, &[]).await;
    tick(&off).await;
    let statuses = proxy.bodies("DescribeInstanceStatus");
    assert!(
        statuses.iter().all(|b| !b.contains("status.status")),
        "{statuses:?}"
    );

    let deps = world
        .deps(
            &proxy,
            &[
                ("AUTOHEAL_SCAN", "2"),
                ("AUTOHEAL_GRACE_SECONDS", "off"),
                ("AUTOHEAL_MAX_INFLIGHT_PERCENT", "off"),
                ("AUTOHEAL_BREAKER_WINDOW_SECONDS", "off"),
            ],
        )
        .await;
    let first = tick(&deps).await;
    let marked = found(&first, "mark_unhealthy done: marked Unhealthy in group");
    assert_eq!(marked.len(), 2, "at most 2 a tick: {first:#?}");
    assert!(
        found(&first, "none in_progress: scan of us-east-1: 1 more impaired instances left for the next tick (at most 2 a tick)").len() == 1,
        "{first:#?}"
    );
    assert_eq!(proxy.calls("SetInstanceHealth"), 2);
    let texts = slack.texts();
    assert_eq!(texts.len(), 2, "{texts:#?}");
    assert!(
        texts
            .iter()
            .all(|t| t.contains("Alarm found by the scan (StatusCheckFailed ALARM at")),
        "{texts:#?}"
    );
    let reason = slack.received.lock().unwrap()[0].clone();
    // The scan's findings are about the function's own account, and say so.
    assert!(
        reason
            .to_string()
            .contains(&format!("{ACCOUNT} / {HOME_REGION}")),
        "{reason}"
    );
    assert!(
        reason.to_string().contains(
            "found by the scan: no alarm reported it; EC2 reports both status checks impaired since"
        ),
        "{reason}"
    );

    // The next tick takes the third; the two marked are followed, not found again.
    deps.clock.advance(60_000);
    let second = tick(&deps).await;
    assert_eq!(
        found(&second, "mark_unhealthy done").len(),
        1,
        "{second:#?}"
    );
    assert_eq!(proxy.calls("SetInstanceHealth"), 3);
    // Marked Unhealthy, they stay impaired (nothing replaces them here): still never again.
    for _ in 0..2 {
        deps.clock.advance(60_000);
        let later = tick(&deps).await;
        assert!(found(&later, "mark_unhealthy").is_empty(), "{later:#?}");
    }
    assert_eq!(proxy.calls("SetInstanceHealth"), 3);
    for id in &m[..3] {
        assert_eq!(world.health(id).await, "UNHEALTHY");
    }
    for id in &m[3..] {
        assert_eq!(world.health(id).await, "HEALTHY");
    }
}

#[tokio::test]
async fn the_scan_leaves_alone_what_an_alarm_or_people_already_have() {
    let (world, proxy, slack) = setup(WorldSpec::healthy(0, 1)).await;
    let id = world.standalone[0].clone();
    world.checks(&id, Some("impaired"), Some("impaired")).await;
    world.tag_instance(&id, "autoheal:ladder", "reboot").await;
    let deps = world
        .deps(
            &proxy,
            &[
                ("AUTOHEAL_SCAN", "on"),
                ("AUTOHEAL_GRACE_SECONDS", "off"),
                ("AUTOHEAL_RUNG_TIMEOUT", "2"),
            ],
        )
        .await;
    // The alarm's incident: reboot, then people.
    let r = invoke(&deps, &alarm_at(&deps, "sns-alarm.json", &id, 0))
        .await
        .unwrap();
    assert!(
        summary(&r)[0].starts_with("reboot in_progress"),
        "{:?}",
        summary(&r)
    );
    deps.clock.advance(2_200);
    let people = tick(&deps).await;
    assert!(
        found(
            &people,
            "none held: still failing after reboot: needs a person"
        )
        .len()
            == 1,
        "{people:#?}"
    );
    let told = slack.texts().len();
    // Still impaired, settled for people: the scan does not take it up again.
    for _ in 0..2 {
        deps.clock.advance(60_000);
        let later = tick(&deps).await;
        assert!(
            found(
                &later,
                "none ignored: found by the scan, but autoheal knows it: incident"
            )
            .len()
                == 1,
            "{later:#?}"
        );
    }
    assert_eq!(proxy.calls("RebootInstances"), 1);
    assert_eq!(slack.texts().len(), told, "{:#?}", slack.texts());
}
