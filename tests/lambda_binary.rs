//! The built binary, run the way AWS runs it: a Lambda Runtime API server in the test hands
//! it events from `events/` and collects its answers.

mod common;
#[path = "common/runtime.rs"]
mod runtime;

use common::*;
use runtime::{alarm_marks_member, binary, RuntimeApi};
use std::collections::HashMap;
use std::time::Duration;
use tokio::io::AsyncReadExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_built_binary_heals_through_the_runtime_api() {
    let slack = Slack::start().await;
    let world = World::build(WorldSpec::default(), &slack.url).await;
    let api = RuntimeApi::start().await;
    let mut env = world.env(&[]);
    env.insert(
        "AWS_ENDPOINT_URL".into(),
        world.setup_proxy.endpoint.clone(),
    );
    let mut child = binary(&env, &api.addr).spawn().unwrap();
    let id = world.members[0].clone();

    let o = alarm_marks_member(&api, &id).await;
    assert_eq!(o["notification"], "slack");

    // The same delivery again, and input that is not even JSON: answered, never an error.
    let (kind, body) = api.invoke(event("sns-alarm.json", &[&id])).await;
    assert_eq!(
        (kind.as_str(), body["outcomes"][0]["result"].as_str()),
        ("response", Some("duplicate"))
    );
    let (kind, body) = api.invoke(b"\xff\xfe garbage".to_vec()).await;
    assert_eq!(kind, "response", "{body}");
    assert_eq!(body["outcomes"][0]["result"], "ignored");
    assert!(body["outcomes"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("not UTF-8"));

    assert_eq!(world.health(&id).await, "UNHEALTHY");
    assert_eq!(slack.texts().len(), 1);

    child.start_kill().unwrap();
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .await
        .unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .await
        .unwrap();
    let logs = format!("{out}{err}");
    // One JSON log line and one EMF line per outcome; never the webhook URL.
    assert!(
        !logs.contains("XXXXSECRETXXXX"),
        "the webhook URL leaked into the logs"
    );
    let lines: Vec<serde_json::Value> = out
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let outcome_logs = lines
        .iter()
        .filter(|l| l["fields"]["message"] == "outcome")
        .count();
    let emf = lines
        .iter()
        .filter(|l| l["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "autoheal")
        .count();
    assert_eq!((outcome_logs, emf), (3, 3), "{out}");
    let done = lines
        .iter()
        .find(|l| l["fields"]["result"] == "done")
        .expect("a log line for the repair");
    assert_eq!(done["fields"]["instance_id"], id.as_str());
    assert_eq!(done["fields"]["action"], "mark_unhealthy");
    assert!(done["fields"]["incident"]
        .as_str()
        .unwrap()
        .starts_with(&id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_configuration_stops_the_binary_naming_the_variable() {
    let api = RuntimeApi::start().await;
    let base: HashMap<String, String> = [
        ("AUTOHEAL_TABLE", "t"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_LAMBDA_FUNCTION_NAME", "autoheal"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let cases: Vec<(&str, Option<&str>)> = vec![
        ("AUTOHEAL_TABLE", None),
        ("AUTOHEAL_DRY_RUN", Some("perhaps")),
        ("SLACK_WEBHOOK_ENCRYPTED", Some("not base64!")),
        (
            "AUTOHEAL_RUNBOOK_URL",
            Some("http://wiki.example.com/autoheal/runbook"),
        ),
    ];
    for (variable, value) in cases {
        let mut env = base.clone();
        match value {
            Some(v) => env.insert(variable.to_string(), v.to_string()),
            None => env.remove(variable),
        };
        let out = tokio::time::timeout(Duration::from_secs(20), binary(&env, &api.addr).output())
            .await
            .expect("exits at once")
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{variable}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("bad configuration") && text.contains(variable),
            "{variable}: {text}"
        );
    }
}
