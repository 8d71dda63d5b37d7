//! autoheal acts only on what it owns, against moto with an adversary inside the account:
//! someone who can publish alarms, tag resources and launch instances, but holds none of
//! autoheal's rights. No message of any date silences an instance; an OK is a claim EC2
//! must confirm; another controller's instance, a person's hand and another account's
//! alarm are left to people; alarms EC2 does not confirm open no breaker.

mod common;

use autoheal::model::outcome::Verdict;
use common::*;

/// The alarm fixture about `id`, dated `time` (as the event says).
fn dated(name: &str, id: &str, time: &str) -> Vec<u8> {
    // The OK fixture carries a time of its own.
    const OK_TIME: &str = "2026-11-23T03:25:02.000+0000";
    let text = String::from_utf8(at_time(event(name, &[id]), time)).unwrap();
    let dated = text.replace(OK_TIME, time);
    assert!(dated.contains(time), "{name} not dated");
    dated.into_bytes()
}

const YEAR_2100: &str = "2100-01-01T00:00:00.000+0000";

async fn tick(deps: &autoheal::app::Deps) -> Vec<String> {
    summary(
        &invoke(deps, &event("scheduled-tick.json", &[]))
            .await
            .unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_alarm_dated_in_the_future_does_not_silence_the_real_one() {
    let (world, proxy, _slack) = setup(WorldSpec::healthy(3, 0)).await;
    let deps = world.deps(&proxy, &[]).await;
    let member = world.members[0].clone();

    // Forged: an ALARM dated 2100 for a member EC2 reports healthy. Held, then closed.
    let forged = dated("sns-alarm.json", &member, YEAR_2100);
    let r = invoke(&deps, &forged).await.unwrap();
    assert_eq!(r.outcomes[0].result, Verdict::Held, "{r:?}");
    let incident = r.outcomes[0].incident.clone().unwrap();
    assert!(
        !incident.contains("2100"),
        "the incident is named on autoheal's time: {incident}"
    );
    deps.clock.advance(601_000);
    let closed = tick(&deps).await;
    assert!(
        closed.iter().any(|l| l.contains("did not confirm")),
        "{closed:?}"
    );
    assert_eq!(world.head(&member).await.unwrap()["status"], "closed");

    // The member really fails a minute later: its alarm is repaired, not `duplicate`.
    deps.clock.advance(60_000);
    world
        .checks(&member, Some("impaired"), Some("impaired"))
        .await;
    let real = invoke(&deps, &alarm_at(&deps, "sns-alarm.json", &member, 0))
        .await
        .unwrap();
    assert!(
        summary(&real)[0].starts_with("mark_unhealthy done"),
        "{:?}",
        summary(&real)
    );
    assert_eq!(world.health(&member).await, "UNHEALTHY");
    // The forged message again is still the same transition: a duplicate, nothing done.
    let again = invoke(&deps, &forged).await.unwrap();
    assert_eq!(again.outcomes[0].result, Verdict::Duplicate, "{again:?}");
    assert_eq!(proxy.calls("SetInstanceHealth"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_ok_ec2_does_not_confirm_ends_nothing() {
    let (world, proxy, slack) = setup(WorldSpec::sized(3, 0)).await;
    let deps = world
        .deps(&proxy, &[("AUTOHEAL_GRACE_SECONDS", "120")])
        .await;
    let member = world.members[0].clone();
    let r = invoke(&deps, &alarm_at(&deps, "sns-alarm.json", &member, 0))
        .await
        .unwrap();
    assert!(
        summary(&r)[0].starts_with("none held: grace period"),
        "{:?}",
        summary(&r)
    );
    let told = slack.texts().len();

    // Forged OKs, one now and one dated 2100, while EC2 reports both checks impaired.
    for ok in [
        alarm_at(&deps, "sns-ok.json", &member, -1_000),
        dated("sns-ok.json", &member, YEAR_2100),
    ] {
        let r = invoke(&deps, &ok).await.unwrap();
        assert_eq!(r.outcomes[0].result, Verdict::Held, "{r:?}");
        assert!(
            r.outcomes[0]
                .reason
                .starts_with("OK not confirmed by EC2: EC2 reports both status checks impaired"),
            "{}",
            r.outcomes[0].reason
        );
    }
    assert_ne!(world.head(&member).await.unwrap()["status"], "closed");
    assert_eq!(slack.texts().len(), told, "a refused OK tells nobody");

    // After the grace the tick repairs it: the incident went on.
    deps.clock.advance(121_000);
    let ticked = tick(&deps).await;
    assert!(
        ticked.iter().any(|l| l.starts_with("mark_unhealthy done")),
        "{ticked:?}"
    );
    assert_eq!(world.health(&member).await, "UNHEALTHY");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn another_controllers_instance_goes_to_people_untouched() {
    let (world, proxy, slack) = setup(WorldSpec::sized(2, 0)).await;
    let deps = world.deps(&proxy, &[]).await;
    let karpenter = world
        .launch(
            1,
            &[
                ("karpenter.sh/nodepool", "default"),
                ("eks:eks-cluster-name", "prod"),
            ],
        )
        .await
        .remove(0);
    // A member that left its group keeps the group's tag; Auto Scaling may be ending it.
    let detached = world.members[0].clone();
    world
        .asg
        .detach_instances()
        .auto_scaling_group_name(&world.group)
        .instance_ids(&detached)
        .should_decrement_desired_capacity(true)
        .send()
        .await
        .unwrap();

    for (id, expected) in [
        (
            &karpenter,
            "none held: not autoheal's to repair: managed by Karpenter (tag karpenter.sh/nodepool)",
        ),
        (
            &detached,
            "none held: not autoheal's to repair: it left Auto Scaling group",
        ),
    ] {
        let r = invoke(&deps, &alarm_at(&deps, "sns-alarm.json", id, 0))
            .await
            .unwrap();
        assert!(
            summary(&r)[0].starts_with(expected),
            "{id}: {:?}",
            summary(&r)
        );
    }
    for action in [
        "CreateImage",
        "RunInstances",
        "StopInstances",
        "RebootInstances",
        "SetInstanceHealth",
    ] {
        assert_eq!(proxy.calls(action), 0, "{action}");
    }
    assert_eq!(
        slack.texts().len(),
        2,
        "each told once: {:?}",
        slack.texts()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_operators_stop_after_a_rung_ends_the_incident() {
    let (world, proxy, slack) = setup(WorldSpec::sized(0, 1)).await;
    let deps = world
        .deps(
            &proxy,
            &[
                ("AUTOHEAL_SYSTEM_LADDER", "reboot,relaunch"),
                ("AUTOHEAL_INSTANCE_LADDER", "reboot,relaunch"),
            ],
        )
        .await;
    let id = world.standalone[0].clone();
    let r = invoke(&deps, &alarm_at(&deps, "sns-alarm.json", &id, 0))
        .await
        .unwrap();
    assert!(
        summary(&r)[0].starts_with("reboot in_progress"),
        "{:?}",
        summary(&r)
    );
    // Someone stops it by hand while the reboot's timeout runs.
    world
        .ec2
        .stop_instances()
        .instance_ids(&id)
        .send()
        .await
        .unwrap();
    deps.clock.advance(5 * 60_000 + 1_000);
    let ticked = tick(&deps).await;
    assert!(
        ticked.iter().any(|l| l.starts_with(
            "none held: taken over by a person: the instance is stopped and autoheal did not stop it (after reboot)"
        )),
        "{ticked:?}"
    );
    assert_eq!(proxy.calls("CreateImage"), 0, "not imaged");
    assert_eq!(proxy.calls("RunInstances"), 0, "not relaunched");
    assert_eq!(world.head(&id).await.unwrap()["status"], "closed");
    assert!(slack
        .texts()
        .last()
        .unwrap()
        .contains("taken over by a person"));
    // Told once: the next tick has nothing left for it.
    let told = slack.texts().len();
    deps.clock.advance(60_000);
    tick(&deps).await;
    assert_eq!(slack.texts().len(), told);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn alarms_ec2_does_not_confirm_open_no_breaker() {
    let (world, proxy, slack) = setup(WorldSpec::healthy(10, 0)).await;
    let deps = world.deps(&proxy, &[]).await;
    // Four forged alarms for healthy members: above the breaker's count and percent, if
    // they counted.
    for id in &world.members[..4] {
        let r = invoke(&deps, &alarm_at(&deps, "sns-alarm.json", id, 0))
            .await
            .unwrap();
        assert_eq!(r.outcomes[0].result, Verdict::Held, "{r:?}");
    }
    // A fifth member really fails: repaired, not held behind a breaker.
    let real = world.members[4].clone();
    world
        .checks(&real, Some("impaired"), Some("impaired"))
        .await;
    let r = invoke(&deps, &alarm_at(&deps, "sns-alarm.json", &real, 0))
        .await
        .unwrap();
    assert!(
        summary(&r)[0].starts_with("mark_unhealthy done"),
        "{:?}",
        summary(&r)
    );
    assert!(
        !slack.texts().iter().any(|t| t.contains("breaker")),
        "{:?}",
        slack.texts()
    );
    assert_eq!(world.health(&real).await, "UNHEALTHY");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn another_accounts_alarm_is_ignored_before_any_call() {
    let (world, proxy, slack) = setup(WorldSpec::sized(2, 0)).await;
    let deps = world.deps(&proxy, &[]).await;
    let member = world.members[0].clone();
    let foreign = String::from_utf8(alarm_at(&deps, "sns-alarm.json", &member, 0))
        .unwrap()
        .replace(ACCOUNT, "999999999999")
        .into_bytes();
    let r = invoke(&deps, &foreign).await.unwrap();
    assert_eq!(
        summary(&r),
        vec![format!(
            "none ignored: the event is about account 999999999999; this function serves its own account {ACCOUNT}"
        )]
    );
    assert!(proxy.all_calls().is_empty(), "{:?}", proxy.all_calls());
    assert!(slack.texts().is_empty());
    assert_eq!(world.health(&member).await, "HEALTHY");
}
