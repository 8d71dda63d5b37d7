//! EC2's own automatic recovery on the emulator: what EC2 announces (AWS Health events)
//! ends the `ec2-recovery` rung, checked against the status checks EC2 reports; the rung
//! and `stop-start` are skipped when the instance or its type rules them out.

mod common;

use common::*;

/// The time in the AWS Health samples.
const HEALTH_TIME: &str = "2026-11-23T03:19:02Z";

/// An AWS Health sample about `id`, as if announced `ago_ms` before the function's now.
fn announced(deps: &autoheal::app::Deps, name: &str, id: &str, ago_ms: i64) -> Vec<u8> {
    let t = chrono::DateTime::from_timestamp_millis(deps.now_ms() - ago_ms).unwrap();
    String::from_utf8(event(name, &[id]))
        .unwrap()
        .replace(HEALTH_TIME, &t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .into_bytes()
}

/// A standalone instance whose ladder is EC2's recovery then stop-start, and its deps.
async fn standalone(extra: &[(&str, &str)]) -> (World, Proxy, Slack, autoheal::app::Deps) {
    let (world, proxy, slack) = setup(WorldSpec::sized(0, 1)).await;
    let id = &world.standalone[0];
    world
        .tag_instance(id, "autoheal:ladder", "ec2-recovery,stop-start")
        .await;
    let mut env = vec![("AUTOHEAL_GRACE_SECONDS", "off")];
    env.extend_from_slice(extra);
    let deps = world.deps(&proxy, &env).await;
    (world, proxy, slack, deps)
}

async fn one(deps: &autoheal::app::Deps, bytes: &[u8]) -> String {
    let r = invoke(deps, bytes).await.unwrap();
    let got = summary(&r);
    assert_eq!(got.len(), 1, "{got:?}");
    got[0].clone()
}

#[tokio::test]
async fn a_recovery_ec2_announces_closes_the_incident_once_its_checks_agree() {
    let (world, proxy, slack, deps) = standalone(&[]).await;
    let id = world.standalone[0].clone();
    let first = one(&deps, &alarm_at(&deps, "sns-alarm.json", &id, 0)).await;
    assert!(
        first.starts_with(
            "none in_progress: ec2-recovery (rung 1): EC2's automatic recovery applies"
        ),
        "{first}"
    );

    // Announced while EC2 still reports the checks failing: still waiting, nothing done.
    deps.clock.advance(60_000);
    let success = announced(&deps, "health-recovery-success.json", &id, 0);
    let early = one(&deps, &success).await;
    assert!(
        early.starts_with("none in_progress: EC2 announced at")
            && early.contains(
                "that it recovered the instance, but EC2 reports both status checks impaired"
            ),
        "{early}"
    );
    // The same event delivered again.
    let again = one(&deps, &success).await;
    assert!(
        again.starts_with("none duplicate: EC2 announced its automatic recovery of the instance (AWS_EC2_SIMPLIFIED_AUTO_RECOVERY_SUCCESS")
            && again.ends_with("already heard"),
        "{again}"
    );

    // The checks pass now; the next announcement closes the incident at once.
    world.checks(&id, Some("ok"), Some("ok")).await;
    deps.clock.advance(60_000);
    let done = one(
        &deps,
        &announced(&deps, "health-recovery-success.json", &id, 0),
    )
    .await;
    assert!(
        done.starts_with(
            "verify done: recovered after ec2-recovery (EC2 announced its recovery at"
        ) && done.ends_with("EC2 reports both status checks ok; incident closed"),
        "{done}"
    );
    assert!(open_index(&world).await.is_empty());
    assert_eq!(
        proxy.calls("StopInstances") + proxy.calls("RebootInstances"),
        0
    );
    let head = world.head(&id).await.unwrap();
    assert_eq!(head["status"], "closed");
    let texts = slack.texts();
    assert_eq!(texts.len(), 2, "the rung and the recovery: {texts:#?}");
    assert!(
        texts[1].contains("recovered after ec2-recovery"),
        "{texts:#?}"
    );

    // Announced after the incident ended: kept for the day's count, nothing moves.
    deps.clock.advance(60_000);
    let late = one(
        &deps,
        &announced(&deps, "health-recovery-success.json", &id, 0),
    )
    .await;
    assert!(
        late.starts_with("none ignored: EC2 announced a recovery attempt")
            && late.contains("kept (3 in the last 24 h): no rung of incident"),
        "{late}"
    );
    assert_eq!(slack.texts().len(), 2);
}

#[tokio::test]
async fn a_failed_recovery_ec2_announces_moves_to_stop_start_at_once() {
    let (world, proxy, slack, deps) = standalone(&[]).await;
    let id = world.standalone[0].clone();
    one(&deps, &alarm_at(&deps, "sns-alarm.json", &id, 0)).await;
    deps.clock.advance(60_000);
    // Long before the rung's 10 minutes are up.
    let stop = one(
        &deps,
        &announced(&deps, "health-recovery-failure.json", &id, 0),
    )
    .await;
    assert!(
        stop.starts_with("stop_start in_progress: stop-start (rung 2): stopping it")
            && stop.contains("(EC2 announced at ")
            && stop.ends_with("that its automatic recovery failed)"),
        "{stop}"
    );
    assert_eq!(proxy.calls("StopInstances"), 1);
    // An announcement of EC2's for another region's function is not this one's.
    let foreign = String::from_utf8(announced(&deps, "health-recovery-failure.json", &id, 0))
        .unwrap()
        .replace("\"region\": \"us-east-1\"", "\"region\": \"eu-west-1\"");
    let ignored = one(&deps, foreign.as_bytes()).await;
    assert!(
        ignored.starts_with("none ignored: EC2's announcement is about eu-west-1"),
        "{ignored}"
    );
    assert_eq!(proxy.calls("StopInstances"), 1);
    assert_eq!(slack.texts().len(), 2, "{:#?}", slack.texts());
}

#[tokio::test]
async fn three_attempts_in_a_day_and_what_the_instance_rules_out_skip_their_rungs() {
    let (world, proxy, _slack, deps) = standalone(&[]).await;
    let id = world.standalone[0].clone();
    one(&deps, &alarm_at(&deps, "sns-alarm.json", &id, 0)).await;
    // EC2 says three times that it recovered the instance, whose checks still fail.
    for _ in 0..3 {
        deps.clock.advance(60_000);
        let r = one(
            &deps,
            &announced(&deps, "health-recovery-success.json", &id, 0),
        )
        .await;
        assert!(r.starts_with("none in_progress: EC2 announced at"), "{r}");
    }
    // The checks recover and the alarm goes back to OK, then both fail again: EC2 will not
    // try a fourth time today.
    deps.clock.advance(60_000);
    world.checks(&id, None, None).await;
    one(&deps, &alarm_at(&deps, "sns-ok.json", &id, 0)).await;
    world.checks(&id, Some("impaired"), Some("impaired")).await;
    deps.clock.advance(60_000);
    let second = one(&deps, &alarm_at(&deps, "sns-alarm.json", &id, 0)).await;
    assert!(
        second.starts_with("stop_start in_progress: stop-start (rung 1): stopping it")
            && second.contains("(skipped: ec2-recovery: EC2 already tried 3 times in the last 24 h (it tries at most 3))"),
        "{second}"
    );
    assert_eq!(proxy.calls("StopInstances"), 1);

    // AutoRecovery switched off and stop protection on: no rung applies.
    let other = world
        .launch(1, &[("autoheal:ladder", "ec2-recovery,stop-start")])
        .await;
    let other = &other[0];
    world
        .ec2
        .modify_instance_maintenance_options()
        .instance_id(other)
        .auto_recovery(aws_sdk_ec2::types::InstanceAutoRecoveryState::Disabled)
        .send()
        .await
        .unwrap();
    world
        .ec2
        .modify_instance_attribute()
        .instance_id(other)
        .disable_api_stop(
            aws_sdk_ec2::types::AttributeBooleanValue::builder()
                .value(true)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let people = one(&deps, &alarm_at(&deps, "sns-alarm.json", other, 0)).await;
    assert_eq!(
        people,
        "none held: no rung of the ladder applies (skipped: ec2-recovery: AutoRecovery is disabled on the instance; stop-start: stop protection is on (DisableApiStop)): needs a person (see docs/RUNBOOK.md)"
    );
    assert_eq!(proxy.calls("StopInstances"), 1);
}

#[tokio::test]
async fn a_type_ec2_does_not_recover_goes_straight_to_stop_start() {
    let (world, proxy, _slack, deps) = standalone(&[]).await;
    let ids: Vec<String> = world
        .ec2
        .run_instances()
        .image_id(world.base_image().await)
        .instance_type(aws_sdk_ec2::types::InstanceType::M5dLarge)
        .min_count(2)
        .max_count(2)
        .tag_specifications(
            aws_sdk_ec2::types::TagSpecification::builder()
                .resource_type(aws_sdk_ec2::types::ResourceType::Instance)
                .tags(
                    aws_sdk_ec2::types::Tag::builder()
                        .key("autoheal:ladder")
                        .value("ec2-recovery,stop-start")
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap()
        .instances()
        .iter()
        .map(|i| i.instance_id().unwrap().to_string())
        .collect();
    for id in &ids {
        world.checks(id, Some("impaired"), Some("impaired")).await;
        let r = one(&deps, &alarm_at(&deps, "sns-alarm.json", id, 0)).await;
        assert!(
            r.starts_with("stop_start in_progress: stop-start (rung 1): stopping it")
                && r.contains(
                    "(skipped: ec2-recovery: m5d.large does not support EC2's automatic recovery)"
                ),
            "{r}"
        );
    }
    assert_eq!(proxy.calls("StopInstances"), 2);
    assert_eq!(
        proxy.calls("DescribeInstanceTypes"),
        1,
        "read once per container"
    );
}
