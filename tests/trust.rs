//! What autoheal trusts, against moto with the emulator's failures switched on: it acts on
//! what EC2 reports, not on an alarm alone; an alarm's time measures nothing unless it is
//! plausible; a transient failure is retried, never escalated; one incident's trouble never
//! stops the tick's other work; dry run calls nothing, backups included.

mod common;

use autoheal::model::outcome::Verdict;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_alarm_ec2_does_not_confirm_is_held_and_looked_at_again_until_its_window_ends() {
    let (world, proxy, slack) = setup(WorldSpec::healthy(3, 0)).await;
    let deps = world.deps(&proxy, &[]).await;
    let (first, second) = (world.members[0].clone(), world.members[1].clone());

    // Anyone who can publish to the topic: an alarm for a member EC2 reports healthy.
    let r = invoke(&deps, &alarm_at(&deps, "sns-alarm.json", &first, 0))
        .await
        .unwrap();
    assert_eq!(
        summary(&r),
        vec![
            "none held: EC2 reports both status checks ok: not acting on the alarm alone; looking again every minute until "
                .to_string()
                + &clock_text(deps.now_ms() + 600_000)
        ]
    );
    assert_eq!(proxy.calls("SetInstanceHealth"), 0);
    assert_eq!(world.health(&first).await, "HEALTHY");
    // Read with the other facts: one DescribeInstanceStatus, no extra round.
    assert_eq!(proxy.calls("DescribeInstanceStatus"), 1);
    assert_eq!(slack.texts().len(), 1, "told once: {:?}", slack.texts());

    // A minute later EC2 still says ok: looked at again, nobody told again.
    deps.clock.advance(60_000);
    let tick = invoke(&deps, &event("scheduled-tick.json", &[]))
        .await
        .unwrap();
    assert!(summary(&tick)[0].starts_with("none held: EC2 reports both status checks ok"));
    assert_eq!(slack.texts().len(), 1);

    // Then EC2 reports the system check impaired: the tick repairs it.
    world.checks(&first, Some("impaired"), Some("ok")).await;
    deps.clock.advance(60_000);
    let tick = invoke(&deps, &event("scheduled-tick.json", &[]))
        .await
        .unwrap();
    assert!(
        summary(&tick)[0].starts_with("mark_unhealthy done: marked Unhealthy in group"),
        "{:?}",
        summary(&tick)
    );
    assert!(
        summary(&tick)[0].ends_with("EC2 reports the system check impaired, the instance check ok")
    );
    assert_eq!(world.health(&first).await, "UNHEALTHY");

    // Another member stays healthy: at the end of the window people hear of it once, the
    // incident closes, nothing was done.
    let alarm = alarm_at(&deps, "sns-alarm.json", &second, 0);
    invoke(&deps, &alarm).await.unwrap();
    deps.clock.advance(601_000);
    let told = slack.texts().len();
    let tick = invoke(&deps, &event("scheduled-tick.json", &[]))
        .await
        .unwrap();
    let line = summary(&tick)
        .into_iter()
        .find(|l| l.contains("did not confirm"))
        .unwrap_or_else(|| panic!("{:?}", summary(&tick)));
    assert!(
        line.starts_with("none held: EC2 reports both status checks ok: not acting on the alarm alone; EC2 did not confirm the alarm within 10m00s: incident closed without any repair"),
        "{line}"
    );
    assert_eq!(slack.texts().len(), told + 1);
    assert!(slack.texts().last().unwrap().contains("needs a person"));
    assert_eq!(world.head(&second).await.unwrap()["status"], "closed");
    assert!(!open_index(&world)
        .await
        .contains(&format!("instance#{HOME_REGION}/{second}")));
    assert_eq!(world.health(&second).await, "HEALTHY");
    // The same alarm again is stale; nothing is re-opened.
    let again = invoke(&deps, &alarm).await.unwrap();
    assert_eq!(again.outcomes[0].result, Verdict::Duplicate, "{again:?}");
    assert_eq!(proxy.calls("SetInstanceHealth"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_ok_closes_an_unconfirmed_alarm_and_the_attached_ebs_check_stays_report_only() {
    let (world, proxy, slack) = setup(WorldSpec::healthy(2, 0)).await;
    let deps = world.deps(&proxy, &[]).await;
    let id = world.members[0].clone();
    invoke(&deps, &alarm_at(&deps, "sns-alarm.json", &id, 0))
        .await
        .unwrap();
    let ok = invoke(&deps, &alarm_at(&deps, "sns-ok.json", &id, -1_000))
        .await
        .unwrap();
    assert_eq!(
        summary(&ok),
        vec!["verify done: the alarm returned to OK; EC2 never confirmed the failure and nothing was done"]
    );
    assert!(open_index(&world).await.is_empty());
    // An impaired attached-EBS check is reported, never repaired.
    let other = world.members[1].clone();
    world
        .checks(&other, Some("impaired"), Some("impaired"))
        .await;
    let ebs = invoke(&deps, &alarm_at(&deps, "sns-attached-ebs.json", &other, 0))
        .await
        .unwrap();
    assert!(summary(&ebs)[0].starts_with("none held: attached EBS volume check failed"));
    assert_eq!(proxy.calls("SetInstanceHealth"), 0);
    assert_eq!(slack.texts().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_alarm_stamped_long_ago_measures_nothing_and_a_redelivery_is_still_a_duplicate() {
    let (world, proxy, _slack) = setup(WorldSpec::healthy(1, 1)).await;
    // Grace 120 s for standalone instances: measured from receipt for an implausible time.
    let deps = world.deps(&proxy, &[("AUTOHEAL_GRACE_SECONDS", "")]).await;
    let member = world.members[0].clone();
    let eleven_days = 11 * 24 * 3_600_000;
    let old = alarm_at(&deps, "sns-alarm.json", &member, eleven_days);
    let r = invoke(&deps, &old).await.unwrap();
    let o = &r.outcomes[0];
    assert_eq!(o.result, Verdict::Held, "EC2 reports it healthy: {r:?}");
    assert_eq!(o.alarm_time_trusted, Some(false));
    assert!(o.alarm_time.is_some() && o.received_time.is_some());
    assert_ne!(o.alarm_time, o.received_time);
    assert_eq!(proxy.calls("SetInstanceHealth"), 0);
    let again = invoke(&deps, &old).await.unwrap();
    assert_eq!(again.outcomes[0].result, Verdict::Held, "looked at again");
    // The audit trail says which clock was used.
    let history = world
        .ddb
        .scan()
        .table_name(&world.table)
        .send()
        .await
        .unwrap();
    assert!(
        history.items().iter().any(|i| i
            .get("inputs")
            .and_then(|v| v.as_s().ok())
            .is_some_and(|s| s.contains("alarm time not trusted as a clock"))),
        "{:?}",
        history.items()
    );

    // A standalone instance, impaired, alarm from a clock far ahead: the grace is counted
    // from receipt, not skipped because the alarm claims to be old or young.
    let lone = world.standalone[0].clone();
    world
        .checks(&lone, Some("impaired"), Some("impaired"))
        .await;
    let ahead = alarm_at(&deps, "sns-alarm.json", &lone, -3_600_000);
    let r = invoke(&deps, &ahead).await.unwrap();
    assert!(
        summary(&r)[0].starts_with("none held: grace period: waiting until ")
            && summary(&r)[0].contains(&clock_text(deps.now_ms() + 120_000)),
        "{:?}",
        summary(&r)
    );
    let dup = invoke(&deps, &ahead).await.unwrap();
    assert_eq!(dup.outcomes[0].result, Verdict::Duplicate, "{dup:?}");
    assert_eq!(proxy.calls("CreateImage"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn create_image_failing_transiently_is_retried_from_the_same_step_never_escalated() {
    let (world, proxy, slack) = setup(WorldSpec::sized(0, 1)).await;
    let deps = world
        .deps(&proxy, &[("AUTOHEAL_SYSTEM_LADDER", "stop-start,relaunch")])
        .await;
    let id = world.standalone[0].clone();
    // The instance never stops (an impaired host): the stop-start rung times out.
    world.stuck_stop(&id, true).await;
    let alarm = alarm_at(&deps, "sns-alarm.json", &id, 0);
    let r = invoke(&deps, &alarm).await.unwrap();
    assert!(
        summary(&r)[0].starts_with("stop_start in_progress: stop-start (rung 1): stopping it"),
        "{:?}",
        summary(&r)
    );
    deps.clock.advance(11 * 60_000);
    // CreateImage answers 500 six times: two tries of three attempts each fail.
    proxy.fail("CreateImage", 6, Fault::ServerError);
    for _ in 0..2 {
        let tick = invoke(&deps, &event("scheduled-tick.json", &[]))
            .await
            .unwrap();
        let line = summary(&tick)[0].clone();
        assert!(
            line.starts_with(
                "none in_progress: not advanced this time (Retryable: ec2:CreateImage"
            ),
            "{line}"
        );
        deps.clock.advance(60_000);
    }
    assert_eq!(proxy.calls("CreateImage"), 6);
    let tick = invoke(&deps, &event("scheduled-tick.json", &[]))
        .await
        .unwrap();
    assert!(
        summary(&tick)[0].starts_with("launch_replacement in_progress")
            || summary(&tick)[0].starts_with("verify"),
        "{:?}",
        summary(&tick)
    );
    for _ in 0..3 {
        deps.clock.advance(60_000);
        invoke(&deps, &event("scheduled-tick.json", &[]))
            .await
            .unwrap();
    }
    let head = world.head(&id).await.unwrap();
    assert_eq!(head["step"], "recovered", "{head:?}");
    let images = world
        .ec2
        .describe_images()
        .owners("self")
        .send()
        .await
        .unwrap();
    assert_eq!(images.images().len(), 1, "one image");
    let copies = world
        .ec2
        .describe_instances()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("tag:autoheal:source-instance")
                .values(&id)
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        copies
            .reservations()
            .iter()
            .map(|r| r.instances().len())
            .sum::<usize>(),
        1,
        "one copy"
    );
    assert!(
        slack.texts().iter().all(|t| !t.contains("needs a person")),
        "{:#?}",
        slack.texts()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stuck_instance_climbs_its_ladder_to_a_verified_copy_through_a_pending_image() {
    let (world, proxy, slack) = setup(WorldSpec::sized(0, 1)).await;
    let deps = world
        .deps(&proxy, &[("AUTOHEAL_SYSTEM_LADDER", "stop-start,relaunch")])
        .await;
    let id = world.standalone[0].clone();
    world.checks(&id, Some("impaired"), Some("ok")).await;
    world.stuck_stop(&id, true).await;
    world.pending_images(&id, true).await;
    let tick = || async {
        invoke(&deps, &event("scheduled-tick.json", &[]))
            .await
            .unwrap()
    };
    let r = invoke(&deps, &alarm_at(&deps, "sns-alarm.json", &id, 0))
        .await
        .unwrap();
    assert!(summary(&r)[0].starts_with("stop_start in_progress"));
    // The stop never takes: every tick sees it stopping until the rung's 10 minutes end.
    deps.clock.advance(5 * 60_000);
    let waiting = tick().await;
    assert!(
        summary(&waiting)[0].starts_with("stop_start in_progress: stop-start under way"),
        "{:?}",
        summary(&waiting)
    );
    deps.clock.advance(6 * 60_000);
    let imaging = tick().await;
    assert!(
        summary(&imaging)[0]
            .starts_with("create_image in_progress: imaging: waiting for the image"),
        "{:?}",
        summary(&imaging)
    );
    // The image stays pending: the tick looks once and moves on, it does not wait (a
    // wait would move the test's clock, by 5 s a look).
    let before = deps.now_ms();
    let again = tick().await;
    assert!(summary(&again)[0].contains("waiting for the image"));
    assert_eq!(deps.now_ms(), before, "the tick waited on the image");
    world.release_images(&id).await;
    let mut last = vec![];
    for _ in 0..3 {
        deps.clock.advance(60_000);
        last = summary(&tick().await);
    }
    assert!(
        last.iter()
            .any(|l| l.starts_with("verify done: recovered: copy"))
            || world.head(&id).await.unwrap()["step"] == "recovered",
        "{last:?}"
    );
    assert_eq!(proxy.calls("CreateImage"), 1);
    assert!(slack
        .texts()
        .iter()
        .any(|t| t.contains("replaced by a verified copy")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_incidents_failure_does_not_stop_the_tick_and_dry_run_backups_call_nothing() {
    let (world, proxy, _slack) = setup(WorldSpec::sized(2, 0)).await;
    // Two members, both repaired: no quorum guard in the way.
    let deps = world
        .deps(
            &proxy,
            &[
                ("AUTOHEAL_GRACE_SECONDS", "30"),
                ("AUTOHEAL_QUORUM_GUARD", "off"),
                ("AUTOHEAL_MAX_INFLIGHT_PERCENT", "off"),
                ("AUTOHEAL_BACKUP_SELECTOR", "backup-approved=yes"),
            ],
        )
        .await;
    let (a, b) = (world.members[0].clone(), world.members[1].clone());
    for id in [&a, &b] {
        invoke(&deps, &alarm_at(&deps, "sns-alarm.json", id, 0))
            .await
            .unwrap();
    }
    let tagged = world
        .launch(1, &[("autoheal:backup", "1"), ("backup-approved", "yes")])
        .await
        .remove(0);
    deps.clock.advance(31_000);
    // The first incident's reads fail past the SDK's retries; the second goes on, and the
    // backups are taken all the same.
    proxy.fail("DescribeAutoScalingInstances", 3, Fault::ServerError);
    let tick = invoke(&deps, &event("scheduled-tick.json", &[]))
        .await
        .unwrap();
    let lines = summary(&tick);
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.starts_with("none in_progress: not advanced this time"))
            .count(),
        1,
        "{lines:?}"
    );
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.starts_with("mark_unhealthy done"))
            .count(),
        1,
        "{lines:?}"
    );
    assert!(lines
        .iter()
        .any(|l| l.starts_with("create_image done: backups: 1 tagged instance(s), 1 imaged")));
    // The next tick repairs the one left.
    deps.clock.advance(60_000);
    let next = invoke(&deps, &event("scheduled-tick.json", &[]))
        .await
        .unwrap();
    assert_eq!(proxy.calls("SetInstanceHealth"), 2, "{:?}", summary(&next));

    // Dry run: backups planned and said, nothing called.
    let dry = world
        .deps_on(
            &proxy,
            &[
                ("AUTOHEAL_DRY_RUN", "true"),
                ("AUTOHEAL_BACKUP_SELECTOR", "backup-approved=yes"),
            ],
            &deps.clock,
        )
        .await;
    deps.clock.advance(2 * 3_600_000);
    proxy.forget();
    let tick = invoke(&dry, &event("scheduled-tick.json", &[]))
        .await
        .unwrap();
    let line = summary(&tick)
        .into_iter()
        .find(|l| l.contains("backups"))
        .unwrap();
    assert!(
        line.starts_with("create_image dry_run: backups: 1 tagged instance(s), 0 imaged")
            && line.contains(&format!("dry run, would: image {tagged}")),
        "{line}"
    );
    for mutating in [
        "CreateImage",
        "DeregisterImage",
        "DeleteSnapshot",
        "CreateTags",
    ] {
        assert_eq!(proxy.calls(mutating), 0, "{mutating}");
    }
}

fn clock_text(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap()
        .format("%H:%M:%SZ")
        .to_string()
}
