//! The stack deployed from zero on the emulator the way `sam deploy` deploys it
//! (tools/deploy.py: package, SAM transform, CloudFormation create), then checked against
//! the code: the outputs, the function's configuration and environment, the role, the
//! resource policies, the alarms, and which rule routes each sample event. Then the built
//! binary, run through the Runtime API with the deployed function's environment, repairs an
//! impaired member against that stack; a second region deploys beside it; a changed
//! parameter updates in place; deleting the stack keeps the ledger.
//!
//! Where moto's CloudFormation does not play a resource, tools/moto_deploy.py fills it in;
//! what stays unplayed is checked in the transformed template (`UNPLAYED` below).

#[path = "common/code.rs"]
mod code;
mod common;
#[path = "common/files.rs"]
mod files;
#[path = "common/runtime.rs"]
mod runtime;

use code::{actions_in_code, function_sources, RUNTIME_GRANTS};
use common::*;
use runtime::{alarm_marks_member, binary, RuntimeApi};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

const STACK: &str = "autoheal";
const OTHER_REGION: &str = "us-west-2";

/// Properties moto keeps nowhere, checked in the template CloudFormation receives instead.
const UNPLAYED: &[&str] = &[
    "Function.DeadLetterConfig",
    "Function.LoggingConfig",
    "FunctionRole.ManagedPolicyArns",
];

/// Where each sample event reaches the function: through which EventBridge rule (logical
/// id), or not through EventBridge at all (`topic`: the alarm topic's subscription;
/// `alarm-action`: CloudWatch's direct Lambda action; `none`: an EventBridge event no rule
/// should route).
const ROUTES: &[(&str, &str)] = &[
    ("alarm-action.json", "alarm-action"),
    ("eventbridge-alarm.json", "FunctionAlarmStateChanges"),
    ("eventbridge-ami-state.json", "FunctionAmiStateChanges"),
    // autoheal ignores composite alarms; no rule needs to deliver them
    ("eventbridge-composite-alarm.json", "none"),
    (
        "eventbridge-instance-state.json",
        "FunctionInstanceStateChanges",
    ),
    // a status-check alarm not named with AlarmNamePrefix: not given to autoheal
    ("eventbridge-unmanaged-alarm.json", "none"),
    // a metric-math alarm over StatusCheckFailed: the rule delivers, the code decides
    ("eventbridge-metric-math.json", "FunctionAlarmStateChanges"),
    ("health-recovery-failure.json", "FunctionEc2Recoveries"),
    ("health-recovery-success.json", "FunctionEc2Recoveries"),
    (
        "health-retirement-scheduled.json",
        "FunctionEc2ScheduledChanges",
    ),
    (
        "health-system-reboot-scheduled.json",
        "FunctionEc2ScheduledChanges",
    ),
    ("not-an-alarm.json", "topic"),
    // the Tick rule is a schedule, not a pattern
    ("scheduled-tick.json", "none"),
    ("sns-alarm.json", "topic"),
    ("sns-attached-ebs.json", "topic"),
    ("sns-composite-alarm.json", "topic"),
    ("sns-duplicate-records.json", "topic"),
    ("sns-insufficient-data.json", "topic"),
    ("sns-message-not-json.json", "topic"),
    ("sns-metric-math.json", "topic"),
    ("sns-no-instance-dimension.json", "topic"),
    ("sns-ok.json", "topic"),
    ("sns-other-metric.json", "topic"),
    ("sns-two-records.json", "topic"),
];

/// tools/deploy.py against the world's account in `region`; its JSON answer.
async fn deploy(world: &World, region: &str, args: &[&str]) -> Value {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = tokio::process::Command::new(root.join(".venv/bin/python"))
        .arg(root.join("tools/deploy.py"))
        .args(args)
        .arg("--stack")
        .arg(STACK)
        .env("AWS_ENDPOINT_URL", &world.setup_proxy.endpoint)
        .env("AWS_REGION", region)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .output()
        .await
        .expect("tools/deploy.py runs (make test installs .venv)");
    assert!(
        out.status.success(),
        "tools/deploy.py {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("tools/deploy.py prints JSON")
}

/// The variables the code reads: the `AUTOHEAL_*` and `SLACK_*` names src/app/config.rs and
/// its files in src/app/config/ spell (the only readers of the environment); Lambda sets the
/// `AWS_*` ones.
fn variables_read() -> BTreeSet<String> {
    let text: String = function_sources()
        .into_iter()
        .filter(|(f, _)| f == "src/app/config.rs" || f.starts_with("src/app/config/"))
        .map(|(_, text)| text)
        .collect();
    assert!(text.contains("AUTOHEAL_TABLE"), "src/app/config.rs");
    ["\"AUTOHEAL_", "\"SLACK_"]
        .iter()
        .flat_map(|prefix| text.match_indices(prefix).map(|(at, _)| at + 1))
        .map(|at| {
            let rest = &text[at..];
            rest[..rest.find('"').unwrap()].to_string()
        })
        .collect()
}

fn strs(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a.iter().flat_map(strs).collect(),
        _ => vec![],
    }
}

/// Every action an Allow statement of the role's inline policies grants.
fn allowed(role: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for doc in role["inline"].as_object().unwrap().values() {
        for s in doc["Statement"].as_array().unwrap() {
            assert!(
                s.get("NotAction").is_none() && s.get("NotResource").is_none(),
                "{s}"
            );
            if s["Effect"] == "Allow" {
                out.extend(strs(&s["Action"]));
            }
        }
    }
    out
}

/// (principal service, source ARN or account) of each statement of the function's policy.
fn invokers(policy: &Value) -> BTreeSet<(String, String)> {
    policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            assert_eq!(s["Action"], "lambda:InvokeFunction", "{s}");
            let source = s["Condition"]["ArnLike"]["AWS:SourceArn"]
                .as_str()
                .unwrap_or_default();
            (
                s["Principal"]["Service"].as_str().unwrap().to_string(),
                source.to_string(),
            )
        })
        .collect()
}

async fn ledger_items(world: &World, table: &str) -> usize {
    world
        .ddb
        .scan()
        .table_name(table)
        .send()
        .await
        .unwrap()
        .items()
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deployed_from_zero_the_stack_is_what_the_code_reads_and_it_heals() {
    let slack = Slack::start().await;
    let world = World::build(WorldSpec::sized(2, 0), &slack.url).await;
    let key = format!("WebhookKmsKeyArn={}", world.webhook_key);
    let hook = format!("SlackWebhookEncrypted={}", world.webhook_ciphertext);
    // Every optional grant on (TerminateReplaced, the webhook key), so the role can be
    // compared with every call the code makes.
    let params = [
        "--param",
        "OpsEmail=ops@example.com",
        "--param",
        "DryRun=false",
        "--param",
        "PassableRolePattern=app-*",
        "--param",
        "TerminateReplaced=true",
        "--param",
        &key,
        "--param",
        &hook,
        "--param",
        "GraceSeconds=off",
    ];
    // A stack whose own alarms would reach nobody is refused before anything is made.
    let unheard = deploy(&world, HOME_REGION, &[&["up"], &params[2..]].concat()).await;
    assert_eq!(unheard["status"], "REFUSED", "{unheard}");
    assert!(
        unheard["reason"]
            .as_str()
            .unwrap()
            .contains("must reach someone - set OpsEmail"),
        "{unheard}"
    );
    // The webhook's ciphertext without its key (never decryptable: the role gets no key),
    // or the key without a ciphertext, is refused the same way.
    for half in [&key, &hook] {
        let given: Vec<&str> = params
            .chunks(2)
            .filter(|pair| pair[1] != half.as_str())
            .flatten()
            .copied()
            .collect();
        assert_eq!(given.len(), params.len() - 2);
        let refused = deploy(&world, HOME_REGION, &[&["up"], &given[..]].concat()).await;
        assert_eq!(refused["status"], "REFUSED", "{half}: {refused}");
        assert!(
            refused["reason"]
                .as_str()
                .unwrap()
                .contains("SlackWebhookEncrypted and WebhookKmsKeyArn go together"),
            "{refused}"
        );
    }
    let up = deploy(&world, HOME_REGION, &[&["up"], &params[..]].concat()).await;
    assert_eq!(up["status"], "CREATE_COMPLETE", "{}", up["reason"]);
    let w = deploy(&world, HOME_REGION, &["world"]).await;

    // Outputs name the deployed resources.
    let f = &w["function"];
    let env = f["environment"].as_object().unwrap();
    let table = w["tables"]["Ledger"]["name"].as_str().unwrap().to_string();
    assert_eq!(
        w["outputs"],
        json!({
            "AlarmTopicArn": w["topics"]["AlarmTopic"]["arn"],
            "LedgerTable": table,
            "FunctionArn": f["arn"],
        })
    );
    assert!(f["arn"]
        .as_str()
        .unwrap()
        .starts_with(&format!("arn:aws:lambda:{HOME_REGION}:{}:", world.account)));

    // The function as the template says, reading exactly what the code reads.
    assert_eq!(
        (
            &f["runtime"],
            &f["handler"],
            &f["architectures"],
            &f["memory"],
            &f["timeout"],
            &f["reserved_concurrency"]
        ),
        (
            &json!("provided.al2023"),
            &json!("bootstrap"),
            &json!(["arm64"]),
            &json!(128),
            &json!(30),
            &json!(10)
        )
    );
    let names: BTreeSet<String> = env.keys().cloned().collect();
    assert_eq!(names, variables_read(), "environment vs src/app/config.rs");
    assert_eq!(env["AUTOHEAL_TABLE"], table.as_str());
    assert_eq!(env["AUTOHEAL_REGIONS"], HOME_REGION);
    assert_eq!(env["AUTOHEAL_GRACE_SECONDS"], "off");
    assert_eq!(env["AUTOHEAL_TERMINATE_REPLACED"], "true");
    assert_eq!(
        env["SLACK_WEBHOOK_ENCRYPTED"],
        world.webhook_ciphertext.as_str()
    );

    // The role: exactly the calls the code makes, and the runtime's own needs.
    let mut needed = actions_in_code();
    needed.extend(RUNTIME_GRANTS.iter().map(|s| s.to_string()));
    assert_eq!(allowed(&w["role"]), needed, "deployed role vs the code");
    assert_eq!(
        w["role"]["trust"]["Statement"][0]["Principal"]["Service"],
        json!(["lambda.amazonaws.com"])
    );
    assert!(w["role"]["attached"].as_array().unwrap().is_empty());
    let template = &up["template"]["Resources"];
    assert_eq!(
        template["FunctionRole"]["Properties"]["ManagedPolicyArns"],
        json!(["arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"]),
        "the only managed policy: logs"
    );

    // Who may invoke it: the alarm topic, each rule, this account's alarms.
    let dlq = w["queues"]["DeadLetters"]["arn"].as_str().unwrap();
    let rules = w["rules"].as_object().unwrap();
    let mut expected: BTreeSet<(String, String)> = rules
        .values()
        .map(|r| {
            (
                "events.amazonaws.com".into(),
                r["arn"].as_str().unwrap().into(),
            )
        })
        .collect();
    expected.insert((
        "sns.amazonaws.com".into(),
        w["topics"]["AlarmTopic"]["arn"].as_str().unwrap().into(),
    ));
    expected.insert((
        "lambda.alarms.cloudwatch.amazonaws.com".into(),
        format!("arn:aws:cloudwatch:{HOME_REGION}:{}:alarm:*", world.account),
    ));
    assert_eq!(invokers(&f["policy"]), expected);
    for (name, r) in rules {
        let t = &r["targets"][0];
        assert_eq!(r["targets"].as_array().unwrap().len(), 1, "{name}");
        assert_eq!(
            (&t["Arn"], &t["DeadLetterConfig"]["Arn"]),
            (&f["arn"], &json!(dlq)),
            "{name}"
        );
    }
    assert_eq!(rules["FunctionTick"]["schedule"], "rate(1 minute)");
    assert_eq!(
        f["invoke_config"]["DestinationConfig"]["OnFailure"]["Destination"],
        dlq
    );
    assert_eq!(
        (
            &f["invoke_config"]["MaximumRetryAttempts"],
            &f["invoke_config"]["MaximumEventAgeInSeconds"]
        ),
        (&json!(2), &json!(3600))
    );

    // The alarm topic: only this account's CloudWatch publishes; the function subscribed,
    // its failures to the dead letters.
    let topic = &w["topics"]["AlarmTopic"];
    let statements = topic["policy"]["Statement"].as_array().unwrap();
    assert_eq!(statements.len(), 1, "{}", topic["policy"]);
    assert_eq!(
        (
            &statements[0]["Principal"]["Service"],
            &statements[0]["Action"],
            &statements[0]["Condition"]["StringEquals"]["aws:SourceAccount"]
        ),
        (
            &json!("cloudwatch.amazonaws.com"),
            &json!("sns:Publish"),
            &json!(world.account)
        )
    );
    assert_eq!(
        topic["subscriptions"],
        json!([{"protocol": "lambda", "endpoint": f["arn"], "redrive": {"deadLetterTargetArn": dlq}}])
    );
    assert!(w["queues"]["DeadLetters"]["policy"].is_object());

    // The stack's own alarms notify the ops topic it made, which someone hears.
    let ops = w["topics"]["OpsTopic"]["arn"].clone();
    assert_eq!(
        w["topics"]["OpsTopic"]["subscriptions"],
        json!([{"protocol": "email", "endpoint": "ops@example.com", "redrive": {"deadLetterTargetArn": dlq}}])
    );
    let alarms = w["alarms"].as_object().unwrap();
    assert_eq!(alarms.len(), 5, "{alarms:?}");
    for (name, a) in alarms {
        assert_eq!(
            (&a["actions"], &a["ok_actions"]),
            (&json!([ops]), &json!([ops])),
            "{name}"
        );
    }

    // What moto keeps nowhere, in the template CloudFormation received.
    for path in UNPLAYED {
        let (resource, property) = path.split_once('.').unwrap();
        assert!(
            !template[resource]["Properties"][property].is_null(),
            "{path} is not in the transformed template"
        );
    }
    assert_eq!(
        template["Function"]["Properties"]["DeadLetterConfig"]["TargetArn"],
        json!({"Fn::GetAtt": ["DeadLetters", "Arn"]})
    );

    // Each sample event reaches the function by the route it should, and by no other.
    let matched = deploy(&world, HOME_REGION, &["match"]).await;
    let files: BTreeSet<String> = matched.as_object().unwrap().keys().cloned().collect();
    let routes: BTreeMap<&str, &str> = ROUTES.iter().copied().collect();
    assert_eq!(
        files,
        routes.keys().map(|s| s.to_string()).collect(),
        "every file in events/ has a route in ROUTES"
    );
    for (file, route) in routes {
        let m = &matched[file];
        match route {
            "topic" | "alarm-action" => assert!(
                m["refused"].is_string() && m["rules"] == json!([]),
                "{file} is not an EventBridge event: {m}"
            ),
            "none" => assert_eq!(m, &json!({"rules": [], "refused": null}), "{file}"),
            rule => assert_eq!(m, &json!({"rules": [rule], "refused": null}), "{file}"),
        }
    }

    // The built binary with the deployed function's environment repairs a member.
    let api = RuntimeApi::start().await;
    let mut run_env: std::collections::HashMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect();
    run_env.insert("AWS_REGION".into(), HOME_REGION.into());
    run_env.insert(
        "AWS_LAMBDA_FUNCTION_NAME".into(),
        f["name"].as_str().unwrap().into(),
    );
    run_env.insert(
        "AWS_ENDPOINT_URL".into(),
        world.setup_proxy.endpoint.clone(),
    );
    let _child = binary(&run_env, &api.addr).spawn().unwrap();
    let id = world.members[0].clone();
    alarm_marks_member(&api, &id).await;
    assert_eq!(world.health(&id).await, "UNHEALTHY");
    assert_eq!(slack.texts().len(), 1);
    let items = ledger_items(&world, &table).await;
    assert!(items > 0, "the repair is recorded in the stack's ledger");

    // A second region beside it: its own ledger, serving its own region.
    let west = deploy(&world, OTHER_REGION, &[&["up"], &params[..]].concat()).await;
    assert_eq!(west["status"], "CREATE_COMPLETE", "{}", west["reason"]);
    let ww = deploy(&world, OTHER_REGION, &["world"]).await;
    assert_ne!(ww["tables"]["Ledger"]["name"], table.as_str());
    assert_eq!(
        ww["function"]["environment"]["AUTOHEAL_REGIONS"],
        OTHER_REGION
    );
    assert!(ww["function"]["arn"]
        .as_str()
        .unwrap()
        .contains(&format!(":{OTHER_REGION}:")));

    // A changed parameter updates in place: the same ledger, its records kept.
    let changed = [&["up"], &params[..], &["--param", "DryRun=true"]].concat();
    let again = deploy(&world, HOME_REGION, &changed).await;
    assert_eq!(again["status"], "UPDATE_COMPLETE", "{}", again["reason"]);
    let w2 = deploy(&world, HOME_REGION, &["world"]).await;
    assert_eq!(w2["tables"]["Ledger"]["name"], table.as_str());
    assert_eq!(w2["function"]["environment"]["AUTOHEAL_DRY_RUN"], "true");
    assert_eq!(ledger_items(&world, &table).await, items);

    // Deleting the stack keeps the ledger (DeletionPolicy Retain), and only the ledger.
    let gone = deploy(&world, HOME_REGION, &["down"]).await;
    assert_eq!(gone["status"], "DELETE_COMPLETE");
    assert_eq!(ledger_items(&world, &table).await, items);
    let sns = aws_sdk_sns::Client::new(&world.sdk);
    let topic_gone = sns
        .get_topic_attributes()
        .topic_arn(topic["arn"].as_str().unwrap())
        .send()
        .await;
    assert!(topic_gone.is_err(), "the alarm topic went with the stack");
}
