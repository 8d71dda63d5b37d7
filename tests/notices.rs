//! EC2's scheduled notices on the emulator (run under tools/with-moto.sh): an event
//! scheduled on an instance through the emulator's control API is read by the tick,
//! recorded once and told once (a second tick says nothing new); AWS Health's notice of the
//! same event is a duplicate, of another instance recorded and told once; a completed event
//! closes its record quietly; nothing is stopped, started or rebooted.

mod common;

use common::*;
use serde_json::{json, Value};

const HOUR_MS: i64 = 3_600_000;

async fn tick(deps: &autoheal::app::Deps) -> Vec<String> {
    summary(
        &invoke(deps, &event("scheduled-tick.json", &[]))
            .await
            .unwrap(),
    )
}

fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn found<'a>(lines: &'a [String], what: &str) -> Vec<&'a String> {
    lines.iter().filter(|l| l.contains(what)).collect()
}

/// The system-reboot sample about `ids`, from `start` to two hours later.
fn health_reboot(ids: &[&str], start: i64) -> Vec<u8> {
    let mut e: Value =
        serde_json::from_slice(&event("health-system-reboot-scheduled.json", ids)).unwrap();
    let rfc2822 = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .unwrap()
            .to_rfc2822()
    };
    e["detail"]["startTime"] = rfc2822(start).into();
    e["detail"]["endTime"] = rfc2822(start + 2 * HOUR_MS).into();
    serde_json::to_vec(&e).unwrap()
}

/// The ledger's notices: (sort key, state).
async fn recorded(world: &World) -> Vec<(String, String)> {
    let out = world
        .ddb
        .query()
        .table_name(&world.table)
        .key_condition_expression("pk = :p")
        .expression_attribute_values(
            ":p",
            aws_sdk_dynamodb::types::AttributeValue::S("notices".into()),
        )
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    out.items()
        .iter()
        .map(|i| {
            (
                i["sk"].as_s().unwrap().clone(),
                i["state"].as_s().unwrap().clone(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_scheduled_event_is_recorded_and_told_once_however_it_is_heard_and_closes_quietly() {
    let (world, proxy, slack) = setup(WorldSpec {
        impaired: false,
        ..WorldSpec::sized(0, 2)
    })
    .await;
    let (id, other) = (world.standalone[0].clone(), world.standalone[1].clone());
    let deps = world
        .deps(
            &proxy,
            &[("AUTOHEAL_MAINTENANCE_WINDOW", "Daily 02:00-04:00 UTC")],
        )
        .await;
    // Three days ahead, on the hour: EC2 will reboot the host.
    let start = (deps.now_ms() / HOUR_MS + 72) * HOUR_MS;
    let scheduled = json!({"instance_id": id, "code": "system-reboot", "not_before": iso(start), "not_after": iso(start + 2 * HOUR_MS)});
    control("scheduled-event", scheduled.clone()).await;

    let first = tick(&deps).await;
    let mine = found(&first, &format!("none in_progress: scheduled notice recorded: EC2 will reboot the host of {id} in us-east-1 from {}", &iso(start)[..10]));
    assert_eq!(mine.len(), 1, "{first:#?}");
    assert!(mine[0].contains("stop and start it at"), "{}", mine[0]);
    assert!(proxy.calls("DescribeInstanceStatus") >= 1);
    let texts = slack.texts();
    assert_eq!(texts.len(), 1, "{texts:#?}");
    assert!(
        texts[0].starts_with(&format!(
            "*Scheduled notice*: EC2 will reboot the host of {id} in us-east-1"
        )),
        "{}",
        texts[0]
    );
    assert!(texts[0].contains("Maintenance window: Daily 02:00-04:00 UTC (the stack's default, AUTOHEAL_MAINTENANCE_WINDOW)."), "{}", texts[0]);
    assert!(
        texts[0].ends_with("Runbook: `docs/RUNBOOK.md#scheduled-notice` (Scheduled notice)"),
        "{}",
        texts[0]
    );
    // Data is escaped, the runbook is the context block.
    let payload = slack.received.lock().unwrap()[0].clone();
    assert_eq!(
        payload["blocks"][1]["elements"][0]["text"],
        "Runbook: `docs/RUNBOOK.md#scheduled-notice` (Scheduled notice)"
    );
    assert_eq!(recorded(&world).await.len(), 1);

    // The next tick: nothing new, nobody told again.
    deps.clock.advance(60_000);
    let second = tick(&deps).await;
    assert_eq!(
        found(
            &second,
            "none duplicate: scheduled notices: 1 recorded already, nothing new"
        )
        .len(),
        1,
        "{second:#?}"
    );
    assert!(found(&second, &id).is_empty(), "{second:#?}");
    assert_eq!(slack.texts().len(), 1);

    // AWS Health tells of the same reboot, and of another instance's: the first is the
    // notice recorded already, the second recorded and told once.
    let health = summary(
        &invoke(&deps, &health_reboot(&[&id, &other], start))
            .await
            .unwrap(),
    );
    assert_eq!(health.len(), 2, "{health:#?}");
    assert!(
        health[0].starts_with("none duplicate: scheduled notice us-east-1/"),
        "{health:#?}"
    );
    assert!(
        health[1].starts_with(&format!(
            "none in_progress: scheduled notice recorded: EC2 will reboot the host of {other}"
        )),
        "{health:#?}"
    );
    assert_eq!(slack.texts().len(), 2);
    assert!(
        slack.texts()[1]
            .contains("heard from AWS Health AWS_EC2_SYSTEM_REBOOT_MAINTENANCE_SCHEDULED"),
        "{}",
        slack.texts()[1]
    );
    let again = summary(
        &invoke(&deps, &health_reboot(&[&id, &other], start))
            .await
            .unwrap(),
    );
    assert!(
        again.iter().all(|l| l.starts_with("none duplicate:")),
        "{again:#?}"
    );
    assert_eq!(slack.texts().len(), 2);

    // EC2 completes it (listed a week with "[Completed]"): its record closes quietly.
    control("reset", json!({"instance_id": id})).await;
    let mut completed = scheduled;
    completed["description"] = "[Completed] Scheduled reboot of the host".into();
    control("scheduled-event", completed).await;
    deps.clock.advance(60_000);
    let done = tick(&deps).await;
    let closed = found(&done, "none ignored: scheduled notice (system-reboot): no longer stands ([Completed] Scheduled reboot of the host): its record is closed");
    assert_eq!(closed.len(), 1, "{done:#?}");
    deps.clock.advance(60_000);
    let later = tick(&deps).await;
    assert!(found(&later, "scheduled notice").is_empty(), "{later:#?}");
    assert_eq!(slack.texts().len(), 2, "{:#?}", slack.texts());
    let mut states: Vec<String> = recorded(&world).await.into_iter().map(|(_, s)| s).collect();
    states.sort();
    assert_eq!(states, ["closed", "scheduled"]);
    // Nothing acted on.
    for call in [
        "StopInstances",
        "StartInstances",
        "RebootInstances",
        "ModifyInstanceEventStartTime",
        "CreateImage",
    ] {
        assert_eq!(proxy.calls(call), 0, "{call}");
    }
}

#[tokio::test]
async fn notices_off_reads_no_events_and_records_nothing() {
    let (world, proxy, slack) = setup(WorldSpec {
        impaired: false,
        ..WorldSpec::sized(0, 1)
    })
    .await;
    let id = world.standalone[0].clone();
    let deps = world.deps(&proxy, &[("AUTOHEAL_NOTICES", "off")]).await;
    let start = (deps.now_ms() / HOUR_MS + 72) * HOUR_MS;
    control("scheduled-event", json!({"instance_id": id, "code": "instance-stop", "not_before": iso(start), "not_after": iso(start + HOUR_MS)})).await;
    tick(&deps).await;
    assert_eq!(proxy.calls("DescribeInstanceStatus"), 0);
    let heard = summary(&invoke(&deps, &health_reboot(&[&id], start)).await.unwrap());
    assert!(
        heard[0].ends_with("AUTOHEAL_NOTICES=off: not recorded"),
        "{heard:#?}"
    );
    assert!(recorded(&world).await.is_empty());
    assert!(slack.texts().is_empty());
}
