//! autoheal-admin, the built binary, against the moto server: each command, its output,
//! its exit status and the world it leaves.

#[path = "../../tests/common/mod.rs"]
mod common;

use aws_sdk_cloudwatch::types::{ComparisonOperator, Dimension, Statistic};
use base64::Engine;
use common::*;
use std::time::Instant;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs autoheal-admin with only the environment given (nothing from the developer's
/// shell: no profile, no real credentials).
async fn admin_with_env(args: &[&str], stdin: impl AsRef<[u8]>, env: &[(&str, &str)]) -> Run {
    use tokio::io::AsyncWriteExt;
    let home = std::env::temp_dir().join(unique("admin-home"));
    std::fs::create_dir_all(&home).unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_autoheal-admin"))
        .args(args)
        .env_clear()
        .env("HOME", &home)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = child.stdin.take().unwrap();
    pipe.write_all(stdin.as_ref()).await.unwrap();
    drop(pipe);
    let out = child.wait_with_output().await.unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs autoheal-admin in `world`'s moto account.
async fn admin(world: &World, args: &[&str], stdin: &str) -> Run {
    admin_with_env(
        args,
        stdin,
        &[
            ("AWS_ENDPOINT_URL", &world.setup_proxy.endpoint),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
        ],
    )
    .await
}

async fn empty_world() -> World {
    setup(WorldSpec::empty()).await.0
}

fn cloudwatch(world: &World) -> aws_sdk_cloudwatch::Client {
    aws_sdk_cloudwatch::Client::new(&world.sdk)
}

async fn topic(world: &World) -> String {
    aws_sdk_sns::Client::new(&world.sdk)
        .create_topic()
        .name(unique("autoheal"))
        .send()
        .await
        .unwrap()
        .topic_arn()
        .unwrap()
        .to_string()
}

/// Alarm name -> the alarm, for names starting with `prefix`.
async fn alarms(
    world: &World,
    prefix: &str,
) -> std::collections::BTreeMap<String, aws_sdk_cloudwatch::types::MetricAlarm> {
    let mut out = std::collections::BTreeMap::new();
    let mut pages = cloudwatch(world)
        .describe_alarms()
        .alarm_name_prefix(prefix)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        for a in page.unwrap().metric_alarms() {
            out.insert(a.alarm_name().unwrap().to_string(), a.clone());
        }
    }
    out
}

/// An alarm as an operator would have made it by hand.
async fn put_alarm(world: &World, name: &str, instance_id: &str, period: i32, topic: &str) {
    cloudwatch(world)
        .put_metric_alarm()
        .alarm_name(name)
        .namespace("AWS/EC2")
        .metric_name("StatusCheckFailed")
        .statistic(Statistic::Maximum)
        .dimensions(
            Dimension::builder()
                .name("InstanceId")
                .value(instance_id)
                .build(),
        )
        .period(period)
        .evaluation_periods(2)
        .datapoints_to_alarm(2)
        .threshold(1.0)
        .comparison_operator(ComparisonOperator::GreaterThanOrEqualToThreshold)
        .treat_missing_data("missing")
        .alarm_actions(topic)
        .ok_actions(topic)
        .send()
        .await
        .unwrap();
}

fn managed(id: &str) -> String {
    format!("autoheal-StatusCheckFailed-{id}")
}

async fn terminate(world: &World, id: &str) {
    world
        .ec2
        .terminate_instances()
        .instance_ids(id)
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn encrypt_webhook_round_trips_under_the_functions_context() {
    let world = empty_world().await;
    let key = world.webhook_key.clone();
    let url = "https://hooks.slack.com/services/T000/B000/secret";
    let run = admin(
        &world,
        &[
            "encrypt-webhook",
            "--key",
            &key,
            "--function-name",
            "autoheal-prod",
        ],
        &format!("{url}\n"),
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!run.stdout.contains("hooks.slack.com") && !run.stderr.contains("hooks.slack.com"));
    let blob = base64::engine::general_purpose::STANDARD
        .decode(run.stdout.trim())
        .unwrap();
    // The function's own decryption path reads it back, under its own name only.
    let back = autoheal::notify::kms::decrypt_webhook(&world.kms, &blob, "autoheal-prod")
        .await
        .unwrap();
    assert_eq!(back.expose(), url);
    assert!(
        autoheal::notify::kms::decrypt_webhook(&world.kms, &blob, "another-function")
            .await
            .is_err()
    );

    // The default function name is the template's.
    let run = admin(&world, &["encrypt-webhook", "--key", &key], url).await;
    let blob = base64::engine::general_purpose::STANDARD
        .decode(run.stdout.trim())
        .unwrap();
    assert!(
        autoheal::notify::kms::decrypt_webhook(&world.kms, &blob, "autoheal")
            .await
            .is_ok()
    );

    // Refusals: each exits 2 with a reason and prints no ciphertext.
    for (args, stdin, says) in [
        (
            vec!["encrypt-webhook", "--key", key.as_str()],
            "",
            "no URL on stdin",
        ),
        (
            vec!["encrypt-webhook", "--key", key.as_str()],
            "http://plain.example/x",
            "https://",
        ),
        (
            vec!["encrypt-webhook", "--key", "alias/no-such-key"],
            url,
            "no such KMS key",
        ),
        // The URL is never taken from the command line.
        (
            vec!["encrypt-webhook", "--key", key.as_str(), "--url", url],
            "",
            "unexpected argument '--url'",
        ),
    ] {
        let run = admin(&world, &args, stdin).await;
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(says), "{args:?}: {}", run.stderr);
        assert!(run.stdout.is_empty(), "{args:?}: {}", run.stdout);
    }
}

#[tokio::test]
async fn alarms_sync_creates_corrects_and_deletes_idempotently() {
    let world = empty_world().await;
    let topic = topic(&world).await;
    let ids = world.launch(3, &[("team", "a")]).await;
    let gone = world.launch(1, &[]).await.remove(0);
    put_alarm(&world, &managed(&gone), &gone, 60, &topic).await;
    terminate(&world, &gone).await;
    // Somebody else's alarm on the same metric: never touched.
    put_alarm(&world, "hand-made", &ids[0], 300, &topic).await;

    let dry = admin(
        &world,
        &["alarms", "sync", "--topic-arn", &topic, "--dry-run"],
        "",
    )
    .await;
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    for id in &ids {
        assert!(
            dry.stdout.contains(&format!("+ {}", managed(id))),
            "{}",
            dry.stdout
        );
    }
    assert!(
        dry.stdout
            .contains(&format!("- {}  (instance terminated)", managed(&gone))),
        "{}",
        dry.stdout
    );
    assert!(dry.stdout.ends_with(
        "3 would be created, 0 would be updated, 1 would be deleted, 0 unchanged (dry run: nothing changed)\n"
    ), "{}", dry.stdout);
    assert_eq!(
        alarms(&world, "").await.keys().cloned().collect::<Vec<_>>(),
        vec![managed(&gone), "hand-made".to_string()],
        "a dry run changes nothing"
    );

    let run = admin(&world, &["alarms", "sync", "--topic-arn", &topic], "").await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .ends_with("3 created, 0 updated, 1 deleted, 0 unchanged\n"),
        "{}",
        run.stdout
    );
    let now = alarms(&world, "").await;
    let mut want: Vec<String> = ids.iter().map(|i| managed(i)).collect();
    want.push("hand-made".into());
    want.sort();
    assert_eq!(now.keys().cloned().collect::<Vec<_>>(), want);
    for id in &ids {
        let a = &now[&managed(id)];
        assert_eq!(a.metric_name(), Some("StatusCheckFailed"));
        assert_eq!(a.namespace(), Some("AWS/EC2"));
        assert_eq!(a.statistic(), Some(&Statistic::Maximum));
        assert_eq!(a.period(), Some(60));
        assert_eq!(a.evaluation_periods(), Some(2));
        assert_eq!(a.datapoints_to_alarm(), Some(2));
        assert_eq!(a.threshold(), Some(1.0));
        assert_eq!(a.treat_missing_data(), Some("missing"));
        assert_eq!(a.alarm_actions(), std::slice::from_ref(&topic));
        assert_eq!(a.ok_actions(), std::slice::from_ref(&topic));
        assert_eq!(a.dimensions()[0].value(), Some(id.as_str()));
    }
    assert_eq!(now["hand-made"].period(), Some(300), "not ours: untouched");

    // Again: nothing to do.
    let again = admin(&world, &["alarms", "sync", "--topic-arn", &topic], "").await;
    assert_eq!(
        again.stdout, "0 created, 0 updated, 0 deleted, 3 unchanged\n",
        "{}",
        again.stderr
    );

    // Drift is corrected, and said.
    put_alarm(&world, &managed(&ids[1]), &ids[1], 300, &topic).await;
    let fix = admin(&world, &["alarms", "sync", "--topic-arn", &topic], "").await;
    assert!(
        fix.stdout
            .contains(&format!("~ {}  (period: 300 -> 60)", managed(&ids[1]))),
        "{}",
        fix.stdout
    );
    assert!(fix
        .stdout
        .ends_with("0 created, 1 updated, 0 deleted, 2 unchanged\n"));
    assert_eq!(
        alarms(&world, &managed(&ids[1])).await[&managed(&ids[1])].period(),
        Some(60)
    );

    // A tag selector only looks at the instances it selects.
    let b = world.launch(1, &[("team", "b")]).await.remove(0);
    let a = world.launch(1, &[("team", "a")]).await.remove(0);
    let only_a = admin(
        &world,
        &["alarms", "sync", "--topic-arn", &topic, "--tag", "team=a"],
        "",
    )
    .await;
    assert!(
        only_a.stdout.contains(&format!("+ {}", managed(&a))) && !only_a.stdout.contains(&b),
        "{}",
        only_a.stdout
    );
    assert!(only_a
        .stdout
        .ends_with("1 created, 0 updated, 0 deleted, 3 unchanged\n"));

    // Clear refusals.
    let no_topic = admin(
        &world,
        &[
            "alarms",
            "sync",
            "--topic-arn",
            "arn:aws:sns:us-east-1:123456789012:nope",
        ],
        "",
    )
    .await;
    assert_eq!(no_topic.code, 2);
    assert!(
        no_topic.stderr.contains("no such SNS topic"),
        "{}",
        no_topic.stderr
    );
    let bad_tag = admin(
        &world,
        &["alarms", "sync", "--topic-arn", &topic, "--tag", "team"],
        "",
    )
    .await;
    assert_eq!(bad_tag.code, 2);
    assert!(bad_tag.stderr.contains("KEY=VALUE"), "{}", bad_tag.stderr);
}

#[tokio::test]
async fn audit_finds_what_will_hurt() {
    let world = empty_world().await;
    let topic = topic(&world).await;
    let watched = world.launch(1, &[("Name", "watched")]).await.remove(0);
    put_alarm(&world, "by-hand", &watched, 60, &topic).await;
    let unwatched = world.launch(1, &[("Name", "unwatched")]).await.remove(0);
    let off = world.launch(1, &[("autoheal", "off")]).await.remove(0);
    let backed = world
        .launch(1, &[("autoheal:backup", "24")])
        .await
        .remove(0);
    let paravirtual = {
        let image = world
            .ec2
            .describe_images()
            .owners("amazon")
            .send()
            .await
            .unwrap()
            .images()
            .iter()
            .find(|i| i.virtualization_type().map(|v| v.as_str()) == Some("paravirtual"))
            .and_then(|i| i.image_id())
            .unwrap()
            .to_string();
        world
            .ec2
            .run_instances()
            .image_id(image)
            .min_count(1)
            .max_count(1)
            .send()
            .await
            .unwrap()
            .instances()[0]
            .instance_id()
            .unwrap()
            .to_string()
    };
    let dead = world.launch(1, &[]).await.remove(0);
    terminate(&world, &dead).await;

    let run = admin(&world, &["audit", "--format", "json", "--quiet"], "").await;
    assert_eq!(
        run.code, 1,
        "a critical finding fails by default: {}",
        run.stderr
    );
    assert!(run.stderr.is_empty(), "--quiet: {}", run.stderr);
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["scanned"], 5, "the terminated one is not audited");
    let found: std::collections::BTreeSet<(String, String)> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["instance_id"].as_str().unwrap().to_string(),
                f["kind"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want: std::collections::BTreeSet<(String, String)> = [
        (&unwatched, "no-alarm"),
        (&off, "no-alarm"),
        (&off, "opted-out"),
        (&backed, "no-alarm"),
        (&backed, "stale-backup"),
        (&paravirtual, "no-alarm"),
        (&paravirtual, "reboot-risk"),
    ]
    .into_iter()
    .map(|(i, k)| (i.clone(), k.to_string()))
    .collect();
    assert_eq!(found, want);
    assert_eq!(report["counts"]["critical"], 1);
    assert_eq!(
        report["findings"][0]["kind"], "reboot-risk",
        "most severe first"
    );

    // After alarms sync, only what alarms cannot fix remains; the table says it in rows.
    let sync = admin(
        &world,
        &["alarms", "sync", "--topic-arn", &topic, "--quiet"],
        "",
    )
    .await;
    assert_eq!(sync.code, 0, "{}", sync.stderr);
    let table = admin(&world, &["audit", "--fail-on", "never"], "").await;
    assert_eq!(table.code, 0, "{}", table.stderr);
    assert!(
        table.stderr.contains("instances: 6 read"),
        "progress: {}",
        table.stderr
    );
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert!(
        lines[0].starts_with("SEVERITY  FINDING"),
        "{}",
        table.stdout
    );
    assert!(lines[1].starts_with("critical  reboot-risk") && lines[1].contains(&paravirtual));
    assert!(!table.stdout.contains("no-alarm"), "{}", table.stdout);
    assert_eq!(
        *lines.last().unwrap(),
        "5 instances scanned: 1 critical, 1 warning, 1 info"
    );
    let warn = admin(&world, &["audit", "--fail-on", "warning", "--quiet"], "").await;
    assert_eq!(warn.code, 1);
    let bad = admin(&world, &["audit", "--fail-on", "high"], "").await;
    assert_eq!(bad.code, 2);
    assert!(
        bad.stderr.contains("use info, warning, critical or never"),
        "{}",
        bad.stderr
    );
}

#[tokio::test]
async fn history_shows_every_decision_with_its_reason_and_inputs() {
    let (world, proxy, _slack) = setup(WorldSpec::default()).await;
    let member = world.members[0].clone();
    let dry = world.deps(&proxy, &[("AUTOHEAL_DRY_RUN", "true")]).await;
    let alarm = event("sns-alarm.json", &[&member]);
    invoke(&dry, &alarm).await.unwrap();
    invoke(&dry, &alarm).await.unwrap(); // the same delivery again
    let live = world.deps(&proxy, &[]).await;
    invoke(&live, &event("sns-alarm.json", &["i-00000000000000bad"]))
        .await
        .unwrap();
    invoke(&live, &event("sns-message-not-json.json", &[]))
        .await
        .unwrap();

    let table = admin(&world, &["history", "--table", &world.table], "").await;
    assert_eq!(table.code, 0, "{}", table.stderr);
    let text = &table.stdout;
    assert!(text.contains(&format!("{member}  mark_unhealthy dry_run  dry run (AUTOHEAL_DRY_RUN=true): would mark Unhealthy in group {}", world.group)), "{text}");
    assert!(
        text.contains(&format!(
            "group {} InService Healthy; mode dryrun (AUTOHEAL_DRY_RUN=true)",
            world.group
        )),
        "the inputs of the decision: {text}"
    );
    assert!(
        text.contains(&format!(
            "{member}  mark_unhealthy duplicate  already handled"
        )),
        "{text}"
    );
    assert!(
        text.contains(
            "i-00000000000000bad  none ignored  instance not found in this account and region"
        ),
        "{text}"
    );
    assert!(
        text.ends_with("3 decisions\n"),
        "bad input is not an instance decision: {text}"
    );

    let json = admin(
        &world,
        &[
            "history",
            "--table",
            &world.table,
            "--instance",
            &member,
            "--format",
            "json",
        ],
        "",
    )
    .await;
    let records: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let results: Vec<&str> = records
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["result"].as_str().unwrap())
        .collect();
    assert_eq!(
        results,
        vec!["dry_run", "duplicate"],
        "oldest first, this instance only"
    );
    let inputs = records[0]["inputs"].as_str().unwrap();
    assert!(
        inputs.starts_with(&format!(
            "alarm \"autoheal-StatusCheckFailed-{member}\" StatusCheckFailed ALARM at 2026-11-23T03:12:45.123Z; instance running t3.micro"
        )),
        "{inputs}"
    );
    assert_eq!(records[0]["incident"], records[1]["incident"]);

    let later = admin(
        &world,
        &[
            "history",
            "--table",
            &world.table,
            "--since",
            "2099-01-01T00:00:00Z",
        ],
        "",
    )
    .await;
    assert_eq!(later.stdout, "0 decisions\n");
    // However far back: the decisions kept, read with one query per day kept (30 days),
    // not one per day since the epoch.
    for far in [
        "9223372036854775807d",
        "99999999999999999999m",
        "1970-01-01T00:00:00Z",
    ] {
        world.setup_proxy.forget();
        let all = admin(
            &world,
            &["history", "--table", &world.table, "--since", far],
            "",
        )
        .await;
        assert_eq!(all.code, 0, "{far}: {}", all.stderr);
        assert!(
            all.stdout.ends_with("3 decisions\n"),
            "{far}: {}",
            all.stdout
        );
        assert!(world.setup_proxy.calls("Query") <= 32, "{far}");
    }
    let bad = admin(
        &world,
        &["history", "--table", &world.table, "--since", "yesterday"],
        "",
    )
    .await;
    assert_eq!(bad.code, 2);
    assert!(
        bad.stderr.contains("use e.g. 90m, 24h, 7d"),
        "{}",
        bad.stderr
    );
    let missing = admin(&world, &["history", "--table", "no-such-table"], "").await;
    assert_eq!(missing.code, 2);
    assert!(
        missing.stderr.contains("no such DynamoDB table"),
        "{}",
        missing.stderr
    );
}

/// A cluster of two whose first member's ladder ends with people: its place in the
/// cluster's scope keeps the second member waiting until an operator releases it.
#[tokio::test]
async fn release_frees_the_place_of_an_incident_people_have_and_nothing_else() {
    let (world, proxy, slack) = setup(WorldSpec::empty()).await;
    let ids = world
        .launch(
            2,
            &[("autoheal:cluster", "db"), ("autoheal:ladder", "reboot")],
        )
        .await;
    let (first, second) = (&ids[0], &ids[1]);
    let runbook = "https://git.example.com/ops/autoheal/blob/main/docs/RUNBOOK.md";
    let env = [
        ("AUTOHEAL_GRACE_SECONDS", "off"),
        ("AUTOHEAL_RUNG_TIMEOUT", "2"),
        ("AUTOHEAL_RUNBOOK_URL", runbook),
    ];
    let deps = world.deps(&proxy, &env).await;
    let tick = || async {
        invoke(&deps, &event("scheduled-tick.json", &[]))
            .await
            .unwrap()
    };
    let release = |incident: String| {
        let world = &world;
        async move {
            let args = ["release", "--table", &world.table, "--incident", &incident];
            admin(world, &args, "").await
        }
    };
    let r = invoke(&deps, &alarm_at(&deps, "sns-alarm.json", first, 0))
        .await
        .unwrap();
    let incident = r.outcomes[0].incident.clone().unwrap();
    assert!(
        summary(&r)[0].starts_with("reboot in_progress"),
        "{:?}",
        summary(&r)
    );
    let r = invoke(&deps, &alarm_at(&deps, "sns-alarm.json", second, 0))
        .await
        .unwrap();
    assert!(
        summary(&r)[0].starts_with("none held: quorum guard"),
        "{:?}",
        summary(&r)
    );

    // While the reboot is under way autoheal frees the place itself: refused.
    let busy = release(incident.clone()).await;
    assert_eq!(busy.code, 2, "{}", busy.stdout);
    assert!(
        busy.stderr.contains(&format!(
            "incident {incident} is still in progress (repairing, result in_progress)"
        )),
        "{}",
        busy.stderr
    );

    // The reboot did not help: the ladder ends with people, linked to its section; the
    // second member still waits for the first's place.
    deps.clock.advance(2_200);
    let people = tick().await;
    let said = summary(&people);
    assert!(
        said.contains(
            &"none held: still failing after reboot: needs a person (see docs/RUNBOOK.md)"
                .to_string()
        ),
        "{said:?}"
    );
    assert!(
        said.iter()
            .any(|l| l.starts_with("none held: quorum guard")),
        "{said:?}"
    );
    let ended = people
        .outcomes
        .iter()
        .find(|o| o.instance_id.as_deref() == Some(first.as_str()))
        .unwrap();
    assert_eq!(
        ended.handover,
        Some(autoheal::model::handover::Handover::LadderEnded)
    );
    let link =
        format!("<{runbook}#ladder-ended-still-failing|Runbook: Ladder ended, still failing>");
    assert!(
        slack
            .texts()
            .iter()
            .any(|t| t.contains("still failing after reboot") && t.ends_with(&link)),
        "{:#?}",
        slack.texts()
    );
    assert_eq!(proxy.calls("RebootInstances"), 1);
    let still = tick().await;
    assert!(
        summary(&still)
            .iter()
            .any(|l| l.starts_with("none held: quorum guard")),
        "{:?}",
        summary(&still)
    );

    let done = release(incident.clone()).await;
    assert_eq!(done.code, 0, "{}", done.stderr);
    assert!(
        done.stdout.starts_with(
            "guard places released by an operator (autoheal-admin release): account, cluster:db@us-east-1; the incident ended held for people"
        ),
        "{}",
        done.stdout
    );
    // The place is free: the tick repairs the second member.
    let freed = tick().await;
    assert!(
        summary(&freed)
            .iter()
            .any(|l| l.starts_with("reboot in_progress")),
        "{:?}",
        summary(&freed)
    );
    assert_eq!(proxy.calls("RebootInstances"), 2);

    let again = release(incident.clone()).await;
    assert_eq!(
        (again.code, again.stdout.as_str()),
        (
            0,
            format!("incident {incident} holds no guard place: nothing to release\n").as_str()
        )
    );
    let history = admin(
        &world,
        &["history", "--table", &world.table, "--instance", first],
        "",
    )
    .await;
    assert!(
        history.stdout.contains(&format!(
            "{first}  release done  guard places released by an operator"
        )) && history.stdout.contains(&format!("[incident {incident}]")),
        "{}",
        history.stdout
    );
    let bad = release("i-0123".into()).await;
    assert_eq!(bad.code, 2);
    assert!(
        bad.stderr
            .contains("--incident \"i-0123\": not an incident id"),
        "{}",
        bad.stderr
    );
}

#[tokio::test]
async fn missing_credentials_or_region_are_said_plainly() {
    let no_creds = admin_with_env(&["audit"], "", &[("AWS_REGION", "us-east-1")]).await;
    assert_eq!(no_creds.code, 2);
    assert!(
        no_creds.stderr.contains("no AWS credentials"),
        "{}",
        no_creds.stderr
    );
    let no_region = admin_with_env(
        &["audit"],
        "",
        &[("AWS_ACCESS_KEY_ID", "x"), ("AWS_SECRET_ACCESS_KEY", "y")],
    )
    .await;
    assert_eq!(no_region.code, 2);
    assert!(
        no_region.stderr.contains("no AWS region"),
        "{}",
        no_region.stderr
    );
    let help = admin_with_env(&["--help"], "", &[]).await;
    assert_eq!(help.code, 0);
    for command in ["encrypt-webhook", "alarms", "audit"] {
        assert!(help.stdout.contains(command), "{}", help.stdout);
    }
}

/// Whatever is typed, the answer is exit status 2 and one message naming what was wrong,
/// never a panic (status 101). Each is refused before any AWS call.
#[tokio::test]
async fn odd_input_is_refused_by_name_never_a_panic() {
    let env = [
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        // Nothing listens here: a call that got this far would fail, not hang.
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
    ];
    // `--flag=value`, so that a value starting with `-` is the flag's.
    let args = |words: &[&str], flag: &str, value: &str| -> Vec<String> {
        let mut a: Vec<String> = words.iter().map(|w| w.to_string()).collect();
        a.push(format!("{flag}={value}"));
        a
    };
    let history = ["history", "--table", "t"];
    let mut cases: Vec<(Vec<String>, &str)> = [
        "5é",
        "é",
        "éh",
        "5\u{301}h",
        "２４h",
        "٣d",
        "24ｈ",
        "🕐",
        "5🕐",
        "",
        " ",
        "h",
        "-1h",
        "+1h",
        "1.5h",
        "1 h",
        "24H",
        "0x10m",
        "24h\u{7f}",
        "\u{202e}24h",
        "2026-13-01T00:00:00Z",
    ]
    .into_iter()
    .map(|s| (args(&history, "--since", s), "--since"))
    .collect();
    for region in [
        "é",
        "",
        "-1",
        "US-EAST-1",
        "us east 1",
        "us-east-1/..",
        "\u{202e}us-east-1",
    ] {
        cases.push((args(&history, "--region", region), "--region"));
    }
    for fail_on in ["é", "", "CRITICAL", "critical\u{7}"] {
        cases.push((args(&["audit"], "--fail-on", fail_on), "--fail-on"));
    }
    for format in ["é", "yaml"] {
        cases.push((args(&["audit"], "--format", format), "--format"));
    }
    let sync = ["alarms", "sync", "--topic-arn", "arn:aws:sns:us-east-1:1:t"];
    for tag in ["é", "", "=x", "=é", "-"] {
        cases.push((args(&sync, "--tag", tag), "--tag"));
    }
    for (args, flag) in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = admin_with_env(&args, "", &env).await;
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(flag), "{args:?}: {}", run.stderr);
        assert!(!run.stderr.contains("panicked"), "{args:?}: {}", run.stderr);
    }
    // The region from the environment is checked too.
    let run = admin_with_env(
        &["history", "--table", "t"],
        "",
        &[
            ("AWS_REGION", "é"),
            ("AWS_ACCESS_KEY_ID", "x"),
            ("AWS_SECRET_ACCESS_KEY", "y"),
        ],
    )
    .await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("AWS region"), "{}", run.stderr);
    // stdin that is not UTF-8, or not a URL.
    for stdin in [
        &b"\xff\xfe"[..],
        "é".as_bytes(),
        "https://a\u{2028}b".as_bytes(),
    ] {
        let run = admin_with_env(&["encrypt-webhook", "--key", "alias/k"], stdin, &env).await;
        assert_eq!(run.code, 2, "{stdin:?}: {}", run.stderr);
        assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    }
}

/// `cargo test --test admin -- --ignored --nocapture bench_` (make bench): 5,000 running
/// instances; the wall time of `alarms sync` (creating 5,000 alarms), a second sync
/// (nothing to do) and `audit`.
#[tokio::test]
#[ignore]
async fn bench_admin_5000_instances() {
    let world = empty_world().await;
    let topic = topic(&world).await;
    for _ in 0..5 {
        world.launch(1000, &[("fleet", "bench")]).await;
    }
    // CPU seconds of this process's waited-for children (the CLI), from /proc/self/stat.
    let children_cpu = || {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
        let fields: Vec<&str> = stat
            .rsplit(')')
            .next()
            .unwrap()
            .split_whitespace()
            .collect();
        // After the command name: state is field 3; cutime and cstime are fields 16 and 17.
        (fields[13].parse::<f64>().unwrap() + fields[14].parse::<f64>().unwrap()) / 100.0
    };
    let timed = |args: Vec<String>| {
        let world = &world;
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let (t, cpu) = (Instant::now(), children_cpu());
            let run = admin(world, &args, "").await;
            ((t.elapsed(), children_cpu() - cpu), run)
        }
    };
    let sync_args = vec![
        "alarms".into(),
        "sync".into(),
        "--topic-arn".into(),
        topic.clone(),
        "--quiet".into(),
    ];
    let (first, run) = timed(sync_args.clone()).await;
    assert!(
        run.stdout
            .ends_with("5000 created, 0 updated, 0 deleted, 0 unchanged\n"),
        "{} {}",
        run.stdout.len(),
        run.stderr
    );
    let (second, run) = timed(sync_args).await;
    assert_eq!(
        run.stdout, "0 created, 0 updated, 0 deleted, 5000 unchanged\n",
        "{}",
        run.stderr
    );
    let (audit, run) = timed(vec![
        "audit".into(),
        "--quiet".into(),
        "--fail-on".into(),
        "never".into(),
    ])
    .await;
    assert!(
        run.stdout
            .ends_with("5000 instances scanned: 0 critical, 0 warning, 0 info\n"),
        "{}",
        run.stderr
    );
    let show = |(wall, cpu): (std::time::Duration, f64)| {
        format!("{:.1} s wall, {cpu:.2} s CPU", wall.as_secs_f64())
    };
    println!(
        "BENCH admin 5,000 instances: alarms sync (create all) {}; alarms sync (no change) {}; audit {}",
        show(first),
        show(second),
        show(audit)
    );
}

#[tokio::test]
async fn upcoming_lists_the_standing_notices_oldest_date_first_with_plan_and_window() {
    let (world, proxy, _slack) = setup(WorldSpec {
        impaired: false,
        ..WorldSpec::sized(0, 2)
    })
    .await;
    let (later, sooner) = (world.standalone[0].clone(), world.standalone[1].clone());
    let deps = world
        .deps(
            &proxy,
            &[("AUTOHEAL_MAINTENANCE_WINDOW", "Daily 02:00-04:00 UTC")],
        )
        .await;
    const HOUR: i64 = 3_600_000;
    let iso = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .unwrap()
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string()
    };
    let hour = deps.now_ms() / HOUR;
    for (id, code, start) in [
        (&later, "instance-stop", (hour + 96) * HOUR),
        (&sooner, "system-reboot", (hour + 48) * HOUR),
    ] {
        control(
            "scheduled-event",
            serde_json::json!({"instance_id": id, "code": code, "not_before": iso(start), "not_after": iso(start + 2 * HOUR)}),
        )
        .await;
    }
    let empty = admin(&world, &["upcoming", "--table", &world.table], "").await;
    assert_eq!(empty.code, 0, "{}", empty.stderr);
    assert_eq!(empty.stdout, "no scheduled notice stands\n");
    invoke(&deps, &event("scheduled-tick.json", &[]))
        .await
        .unwrap();

    let table = admin(&world, &["upcoming", "--table", &world.table], "").await;
    assert_eq!(table.code, 0, "{}", table.stderr);
    let text = &table.stdout;
    let first = text.find(&sooner).expect(text);
    let second = text.find(&later).expect(text);
    assert!(first < second, "oldest date first: {text}");
    assert!(
        text.contains(&format!(
            "system-reboot       us-east-1/{sooner}  [scheduled]"
        )),
        "{text}"
    );
    assert!(
        text.contains("    window: Daily 02:00-04:00 UTC (the stack's default, AUTOHEAL_MAINTENANCE_WINDOW)\n"),
        "{text}"
    );
    assert!(text.contains("    - stop and start it at "), "{text}");

    let json = admin(
        &world,
        &["upcoming", "--table", &world.table, "--format", "json"],
        "",
    )
    .await;
    assert_eq!(json.code, 0, "{}", json.stderr);
    let listed: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let rows = listed.as_array().unwrap();
    assert_eq!(rows.len(), 2, "{listed}");
    assert_eq!(rows[0]["instance_id"], sooner.as_str());
    assert_eq!(rows[0]["kind"], "system-reboot");
    assert_eq!(rows[0]["state"], "scheduled");
    assert_eq!(rows[1]["kind"], "instance-stop");
    assert!(!rows[1]["steps"].as_array().unwrap().is_empty(), "{listed}");

    let missing = admin(&world, &["upcoming", "--table", "no-such-table"], "").await;
    assert_eq!(missing.code, 2);
    assert!(
        missing.stderr.contains("no such DynamoDB table"),
        "{}",
        missing.stderr
    );
}
