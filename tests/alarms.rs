//! Nothing autoheal creates goes unwatched, on the emulator: the member Auto Scaling
//! launches in place of one autoheal marked gets its sibling's alarm from the tick, and the
//! replaced member's alarm goes; in a dry run nothing changes. (A relaunched copy's alarm:
//! tests/relaunch.rs.)

mod common;

use autoheal::model::outcome::Verdict;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replacement_member_gets_its_siblings_alarm_and_the_replaced_ones_goes() {
    let (world, proxy, _slack) = setup(WorldSpec::sized(3, 0)).await;
    world.replace_unhealthy(Some(0.0)).await;
    for id in &world.members {
        world.operator_alarm(id).await;
    }
    let deps = world.deps(&proxy, &[]).await;
    let a = world.members[0].clone();
    let r = invoke(&deps, &alarm_at(&deps, "sns-alarm.json", &a, 0))
        .await
        .unwrap();
    assert_eq!(r.outcomes[0].result, Verdict::Done, "{r:?}");

    let mut kept = vec![];
    for _ in 0..3 {
        deps.clock.advance(60_000);
        let r = invoke(&deps, &event("scheduled-tick.json", &[]))
            .await
            .unwrap();
        kept.extend(
            r.outcomes
                .into_iter()
                .filter(|o| o.reason.starts_with("alarms of")),
        );
    }
    let replaced = world.replacements().await;
    let replacement = replaced
        .iter()
        .find(|r| r["instance_id"] == a.as_str())
        .and_then(|r| r["replacement_id"].as_str())
        .expect("the emulator replaced the member")
        .to_string();
    let alarms = world.managed_alarms().await;
    let name = |id: &str| format!("autoheal-StatusCheckFailed-{id}");
    assert!(
        !alarms.contains_key(&name(&a)),
        "the replaced member's alarm: {alarms:?}"
    );
    let (dimension, period, actions) = &alarms[&name(&replacement)];
    assert_eq!(dimension, &replacement);
    assert_eq!(*period, 300, "a sibling's settings");
    assert_eq!(actions.len(), 2, "a sibling's actions: {actions:?}");
    assert_eq!(alarms.len(), 3, "{alarms:?}");
    assert_eq!(
        kept.len(),
        1,
        "one tick made and deleted, the others had nothing to do: {kept:?}"
    );
    assert_eq!(kept[0].result, Verdict::Done);
    assert!(kept[0].reason.contains(&replacement), "{}", kept[0].reason);
    assert_eq!(proxy.calls("PutMetricAlarm"), 1);
    assert_eq!(proxy.calls("DeleteAlarms"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn in_a_dry_run_the_tick_says_which_alarms_it_would_make_and_changes_none() {
    let (world, proxy, _slack) = setup(WorldSpec::sized(2, 0)).await;
    world.operator_alarm(&world.members[0]).await;
    let deps = world.deps(&proxy, &[("AUTOHEAL_DRY_RUN", "true")]).await;
    let r = invoke(&deps, &event("scheduled-tick.json", &[]))
        .await
        .unwrap();
    let said: Vec<_> = r
        .outcomes
        .iter()
        .filter(|o| o.reason.starts_with("alarms of"))
        .collect();
    assert_eq!(said.len(), 1, "{r:?}");
    assert_eq!(said[0].result, Verdict::DryRun);
    assert!(
        said[0].reason.contains(&world.members[1]),
        "{}",
        said[0].reason
    );
    assert_eq!(
        proxy.calls("PutMetricAlarm") + proxy.calls("DeleteAlarms"),
        0
    );
    assert_eq!(world.managed_alarms().await.len(), 1);
}
