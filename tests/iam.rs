//! Least privilege, checked against the parsed `template.yaml`: every AWS operation the code
//! calls is granted, nothing else is (but the runtime's own needs, listed below); no
//! wildcard actions; the autoheal=off Deny covers every mutating call; each grant carries
//! the resources and conditions docs/permissions.md promises. Then the resource policies
//! (alarm topic, direct alarm action) and the operations side (alarms to the ops topic,
//! retries and dead letters, the log group). The list of calls is derived from the source,
//! not written by hand.

use serde_yaml::Value;
use std::collections::BTreeSet;
use std::path::Path;

#[path = "common/code.rs"]
mod code;
mod common;
#[path = "common/files.rs"]
mod files;

use code::{actions_in_code, function_sources, RUNTIME_GRANTS};

// ---------------------------------------------------------------------------------------
// The template's side, parsed (serde_yaml keeps !Ref/!Sub/!If/!GetAtt as tagged values).

fn template() -> Value {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("template.yaml"))
        .unwrap();
    serde_yaml::from_str(&text).expect("template.yaml parses")
}

/// A value as text: plain strings as they are, `!Sub "x"` as `x`, other short tags as
/// `!Tag inner` (`!Ref AWS::AccountId`, `!GetAtt Ledger.Arn`); lists flattened.
fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::Null => vec![],
        Value::String(s) => vec![s.clone()],
        Value::Bool(b) => vec![b.to_string()],
        Value::Number(n) => vec![n.to_string()],
        Value::Sequence(items) => items.iter().flat_map(strings).collect(),
        Value::Tagged(t) if t.tag == "Sub" => strings(&t.value),
        Value::Tagged(t) => vec![format!("{} {}", t.tag, strings(&t.value).join(" "))],
        Value::Mapping(_) => vec![serde_yaml::to_string(v).unwrap()],
    }
}

fn one(v: &Value) -> String {
    let s = strings(v);
    assert_eq!(s.len(), 1, "expected one value, got {s:?}");
    s.into_iter().next().unwrap()
}

fn is_tag(v: &Value, tag: &str) -> bool {
    matches!(v, Value::Tagged(t) if t.tag == tag)
}

fn resources(t: &Value) -> &serde_yaml::Mapping {
    t["Resources"].as_mapping().expect("Resources")
}

fn of_type<'a>(t: &'a Value, ty: &str) -> Vec<(String, &'a Value)> {
    resources(t)
        .iter()
        .filter(|(_, r)| r["Type"] == ty)
        .map(|(k, r)| (k.as_str().unwrap().to_string(), r))
        .collect()
}

#[derive(Debug, Clone)]
struct Statement {
    sid: String,
    effect: String,
    actions: Vec<String>,
    resources: Vec<String>,
    condition: Value,
    /// The template condition an `!If [Cond, statement, !Ref AWS::NoValue]` puts it under.
    only_if: Option<String>,
}

impl Statement {
    fn allows(&self, action: &str) -> bool {
        self.effect == "Allow" && self.actions.iter().any(|a| a == action)
    }
    /// The values of one condition (`StringEquals`, `ec2:Owner`) as text; empty if absent.
    fn cond(&self, op: &str, key: &str) -> Vec<String> {
        strings(&self.condition[op][key])
    }
}

fn statement(v: &Value, only_if: Option<String>) -> Statement {
    let get = |k: &str| strings(&v[k]);
    assert!(
        v.get("NotAction").is_none() && v.get("NotResource").is_none(),
        "NotAction/NotResource grant everything else: {v:?}"
    );
    Statement {
        sid: get("Sid").join(""),
        effect: get("Effect").join(""),
        actions: get("Action"),
        resources: get("Resource"),
        condition: v.get("Condition").cloned().unwrap_or(Value::Null),
        only_if,
    }
}

/// Statements of a policy document; `!If` entries are taken with their condition name.
fn statements_of(document: &Value) -> Vec<Statement> {
    let mut out = vec![];
    for entry in document["Statement"].as_sequence().expect("Statement list") {
        match entry {
            Value::Tagged(t) if t.tag == "If" => {
                let branches = t.value.as_sequence().unwrap();
                let cond = one(&branches[0]);
                for branch in &branches[1..] {
                    if !is_tag(branch, "Ref") {
                        out.push(statement(branch, Some(cond.clone())));
                    } else {
                        assert_eq!(one(branch), "!Ref AWS::NoValue");
                    }
                }
            }
            v => out.push(statement(v, None)),
        }
    }
    out
}

/// The function role's statements (the Policies of the one function).
fn role_statements(t: &Value) -> Vec<Statement> {
    let functions = of_type(t, "AWS::Serverless::Function");
    assert_eq!(functions.len(), 1);
    let policies = functions[0].1["Properties"]["Policies"]
        .as_sequence()
        .expect("the function has inline Policies");
    policies
        .iter()
        .flat_map(|p| {
            assert!(
                p.get("Statement").is_some(),
                "every policy is an inline document (no managed policies, no !If around a whole document): {p:?}"
            );
            statements_of(p)
        })
        .collect()
}

fn granted(statements: &[Statement]) -> BTreeSet<String> {
    statements
        .iter()
        .filter(|s| s.effect == "Allow")
        .flat_map(|s| s.actions.iter().cloned())
        .collect()
}

fn with_action<'a>(statements: &'a [Statement], action: &str) -> Vec<&'a Statement> {
    let found: Vec<_> = statements.iter().filter(|s| s.allows(action)).collect();
    assert!(!found.is_empty(), "no Allow statement grants {action}");
    found
}

// Any region in the ARNs: the served regions are enforced by one Deny
// (`nothing_acts_outside_the_served_regions`).
const ARN_EC2: &str = "arn:${AWS::Partition}:ec2:*:${AWS::AccountId}:";
const ARN_EC2_NO_ACCOUNT: &str = "arn:${AWS::Partition}:ec2:*::";

fn ec2_arn(kind: &str) -> String {
    match kind {
        "image" | "snapshot" => format!("{ARN_EC2_NO_ACCOUNT}{kind}/*"),
        _ => format!("{ARN_EC2}{kind}/*"),
    }
}

// ---------------------------------------------------------------------------------------
// The role.

#[test]
fn every_call_is_granted_and_nothing_more() {
    let called = actions_in_code();
    let granted = granted(&role_statements(&template()));
    // The scan must see the calls we know are there, or it proves nothing.
    for known in [
        "autoscaling:SetInstanceHealth",
        "ec2:CreateImage",
        "ec2:RunInstances",
        "ec2:CreateTags",
        "ec2:TerminateInstances",
        "dynamodb:PutItem",
        "kms:Decrypt",
    ] {
        assert!(called.contains(known), "scan missed {known}: {called:?}");
    }
    let missing: Vec<_> = called.difference(&granted).collect();
    assert!(
        missing.is_empty(),
        "called but not granted in template.yaml: {missing:?}"
    );
    let extra: Vec<_> = granted
        .difference(&called)
        .filter(|a| !RUNTIME_GRANTS.contains(&a.as_str()))
        .collect();
    assert!(extra.is_empty(), "granted but never called: {extra:?}");
    // A runtime grant that is no longer in the template is no longer documented either.
    for runtime in RUNTIME_GRANTS {
        assert!(
            granted.contains(*runtime),
            "{runtime} listed but not granted"
        );
    }
}

/// Reads that, like Describe calls, take no resource: ARC's list calls (its zonal shifts
/// are scoped by resource only in the calls that change them).
const UNSCOPABLE_LISTS: [&str; 2] = [
    "arc-zonal-shift:ListZonalShifts",
    "arc-zonal-shift:ListAutoshifts",
];

#[test]
fn no_wildcard_actions_and_star_resources_only_for_describe() {
    for s in role_statements(&template()) {
        for a in &s.actions {
            let (service, op) = a.split_once(':').unwrap_or(("", a));
            assert!(
                a != "*" && op != "*" && !service.is_empty(),
                "{}: wildcard action {a}",
                s.sid
            );
            if a.contains('*') {
                // ReEncryptFrom/ReEncryptTo, only for EC2 using an EBS key.
                assert_eq!(a, "kms:ReEncrypt*", "{}: wildcard action {a}", s.sid);
                assert!(
                    s.effect == "Deny" || !s.cond("StringLike", "kms:ViaService").is_empty(),
                    "{}: kms:ReEncrypt* outside the EBS statement",
                    s.sid
                );
            }
        }
        if s.effect == "Allow" && s.resources.iter().any(|r| r == "*") {
            assert!(
                s.actions.iter().all(|a| a.split_once(':').unwrap().1.starts_with("Describe")
                    || UNSCOPABLE_LISTS.contains(&a.as_str())),
                "{}: Resource \"*\" for {:?} (only Describe calls and ARC's lists cannot be scoped)",
                s.sid,
                s.actions
            );
        }
    }
}

#[test]
fn opted_out_instances_and_groups_are_denied_every_mutating_call() {
    let statements = role_statements(&template());
    let denies: Vec<_> = statements.iter().filter(|s| s.effect == "Deny").collect();
    for (actions, key) in [
        (
            &[
                "ec2:RebootInstances",
                "ec2:StopInstances",
                "ec2:StartInstances",
                "ec2:ModifyInstanceEventStartTime",
                "ec2:TerminateInstances",
                "ec2:CreateImage",
                "ec2:CreateTags",
                "ec2:AssociateAddress",
            ][..],
            "aws:ResourceTag/autoheal",
        ),
        (
            &["autoscaling:SetInstanceHealth"][..],
            "autoscaling:ResourceTag/autoheal",
        ),
    ] {
        for action in actions {
            let deny = denies.iter().find(|s| {
                s.actions.iter().any(|a| a == action)
                    && s.resources == ["*"]
                    && s.only_if.is_none()
                    && s.cond("StringEqualsIgnoreCase", key) == ["off"]
            });
            assert!(
                deny.is_some(),
                "no unconditional Deny of {action} on {key}=off (StringEqualsIgnoreCase, Resource *)"
            );
        }
    }
    // The tag key the Deny names is the one the code reads.
    assert_eq!(autoheal::rules::policy::MODE_TAG, "autoheal");
}

#[test]
fn nothing_acts_outside_the_served_regions() {
    let t = template();
    let statements = role_statements(&t);
    let deny = statements
        .iter()
        .find(|s| s.sid == "OnlyServedRegions")
        .expect("a Deny bounding the regions");
    assert_eq!(deny.effect, "Deny");
    assert_eq!(deny.resources, ["*"]);
    // Off only when the stack serves any region ("*").
    assert_eq!(deny.only_if.as_deref(), Some("SomeRegionsOnly"));
    assert_eq!(
        strings(&t["Conditions"]["SomeRegionsOnly"]),
        ["!Not !Equals !Ref Regions *"]
    );
    // The served regions and the stack's own (the ledger, the webhook key).
    let regions = deny.cond("StringNotEquals", "aws:RequestedRegion");
    assert_eq!(
        regions,
        ["!If OwnRegionOnly !Ref AWS::Region !Split , ${AWS::Region},${Regions}"]
    );
    // Every grant that changes something in a region is bounded. Left out: reads (no
    // change), the ledger and dead letters (this stack's own resources, by ARN), and
    // iam:PassRole (global; usable only within a RunInstances, which is bounded).
    for s in statements.iter().filter(|s| s.effect == "Allow") {
        for a in &s.actions {
            let (service, op) = a.split_once(':').unwrap();
            if op.starts_with("Describe") && service != "kms"
                || UNSCOPABLE_LISTS.contains(&a.as_str())
                || ["dynamodb", "sqs", "iam"].contains(&service)
            {
                continue;
            }
            assert!(
                deny.actions.contains(a),
                "{}: {a} is not bounded to the served regions",
                s.sid
            );
        }
    }
    // The function reads the same list.
    let env = &function(&t)["Environment"]["Variables"];
    assert_eq!(
        strings(&env["AUTOHEAL_REGIONS"]),
        ["!If OwnRegionOnly !Ref AWS::Region !Ref Regions"]
    );
}

#[test]
fn instance_actions_only_on_instances() {
    let statements = role_statements(&template());
    for action in [
        "ec2:RebootInstances",
        "ec2:StopInstances",
        "ec2:StartInstances",
        "ec2:TerminateInstances",
        "ec2:ModifyInstanceEventStartTime",
    ] {
        for s in with_action(&statements, action) {
            assert_eq!(s.resources, [ec2_arn("instance")], "{}: {action}", s.sid);
        }
    }
}

#[test]
fn terminate_only_when_configured_and_only_replaced_instances() {
    let t = template();
    let statements = role_statements(&t);
    let replaced_by = format!("ec2:ResourceTag/{}", autoheal::model::tags::REPLACED_BY_TAG);
    for s in with_action(&statements, "ec2:TerminateInstances") {
        assert_eq!(s.actions, ["ec2:TerminateInstances"], "{}", s.sid);
        assert_eq!(s.cond("StringLike", &replaced_by), ["i-*"], "{}", s.sid);
        let cond = s.only_if.as_deref().expect("Terminate under an !If");
        assert_eq!(
            strings(&t["Conditions"][cond]),
            ["!Equals !Ref TerminateReplaced true"],
            "{cond} is TerminateReplaced=true"
        );
    }
}

#[test]
fn run_instances_scoped_by_resource() {
    let statements = role_statements(&template());
    let runs = with_action(&statements, "ec2:RunInstances");
    let incident = format!("aws:RequestTag/{}", autoheal::model::tags::INCIDENT_TAG);
    let mut covered = BTreeSet::new();
    for s in &runs {
        assert_eq!(
            s.actions,
            ["ec2:RunInstances"],
            "{}: RunInstances alone",
            s.sid
        );
        assert!(
            !s.resources.iter().any(|r| r == "*"),
            "{}: Resource *",
            s.sid
        );
        for r in &s.resources {
            covered.insert(r.clone());
            if *r == ec2_arn("image") {
                assert_eq!(s.resources.len(), 1, "{}: the image alone", s.sid);
                assert_eq!(
                    s.cond("StringEquals", "ec2:Owner"),
                    ["!Ref AWS::AccountId"],
                    "{}: images this account owns",
                    s.sid
                );
            }
            if *r == ec2_arn("instance") || *r == ec2_arn("volume") {
                assert_eq!(
                    s.cond("Null", &incident),
                    ["false"],
                    "{}: {r} tagged with the incident at launch",
                    s.sid
                );
            }
        }
    }
    for kind in [
        "image",
        "instance",
        "volume",
        "subnet",
        "security-group",
        "network-interface",
        "key-pair",
        "placement-group",
        "snapshot",
    ] {
        assert!(
            covered.contains(&ec2_arn(kind)),
            "RunInstances lacks {kind}: {covered:?}"
        );
    }
    // What the code tags at launch carries the incident tag the conditions require.
    let launch =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/aws/launch.rs"))
            .unwrap();
    for kind in ["ResourceType::Instance", "ResourceType::Volume"] {
        assert!(launch.contains(kind), "launch.rs no longer tags {kind}");
    }
    let source = autoheal::rules::relaunch::spec::Source {
        instance_id: "i-1".into(),
        ..Default::default()
    };
    let tags = autoheal::rules::relaunch::spec::copy_tags(&source, "inc");
    assert!(tags
        .iter()
        .any(|(k, _)| k == autoheal::model::tags::INCIDENT_TAG));
    assert!(
        autoheal::rules::relaunch::spec::bookkeeping_tags("i-1", "inc")
            .iter()
            .any(|(k, _)| k == autoheal::model::tags::INCIDENT_TAG)
    );
}

/// Where the code calls `create_tags()`, and the tag key it writes there.
const CREATE_TAGS_CALLS: &[(&str, &str)] = &[(
    "src/aws/takeover.rs",
    autoheal::model::tags::REPLACED_BY_TAG,
)];

#[test]
fn create_tags_only_on_create_or_autoheals_own_keys() {
    let statements = role_statements(&template());
    let own_keys: Vec<&str> = CREATE_TAGS_CALLS.iter().map(|(_, k)| *k).collect();
    for s in with_action(&statements, "ec2:CreateTags") {
        assert_eq!(s.actions, ["ec2:CreateTags"], "{}", s.sid);
        let on_create = s.cond("StringEquals", "ec2:CreateAction");
        if !on_create.is_empty() {
            assert_eq!(on_create, ["CreateImage", "RunInstances"], "{}", s.sid);
            continue;
        }
        assert_eq!(s.resources, [ec2_arn("instance")], "{}", s.sid);
        let keys = s.cond("ForAllValues:StringEquals", "aws:TagKeys");
        assert!(
            !keys.is_empty(),
            "{}: CreateTags without a tag-key condition",
            s.sid
        );
        for k in &keys {
            assert!(own_keys.contains(&k.as_str()), "{}: tag key {k}", s.sid);
            assert!(!k.eq_ignore_ascii_case(autoheal::rules::policy::MODE_TAG));
        }
        for k in &keys {
            assert_eq!(
                s.cond("StringLike", &format!("aws:RequestTag/{k}")),
                ["i-*"],
                "{}: {k} names an instance",
                s.sid
            );
        }
    }
    // Every create_tags call in the code is one of the known ones (a new one needs review).
    let mut found = vec![];
    for (file, text) in function_sources() {
        for (at, _) in text.match_indices(".create_tags()") {
            found.push(file.clone());
            let call = &text[at..text.len().min(at + 300)];
            let (_, key) = CREATE_TAGS_CALLS
                .iter()
                .find(|(f, _)| *f == file)
                .unwrap_or_else(|| panic!("create_tags in {file}: add it to CREATE_TAGS_CALLS"));
            assert!(
                call.contains(".key(REPLACED_BY_TAG)")
                    && *key == autoheal::model::tags::REPLACED_BY_TAG,
                "{file}: create_tags with another key"
            );
        }
    }
    assert_eq!(found, ["src/aws/takeover.rs"]);
}

#[test]
fn the_other_grants_carry_their_scopes() {
    let t = template();
    let statements = role_statements(&t);
    // PassRole: named roles, to EC2 only; the name pattern is required, and a wildcard
    // comes only after a fixed prefix (a leading one would pass every role).
    for s in with_action(&statements, "iam:PassRole") {
        assert_eq!(
            s.resources,
            ["arn:${AWS::Partition}:iam::${AWS::AccountId}:role/${PassableRolePattern}"]
        );
        assert_eq!(
            s.cond("StringEquals", "iam:PassedToService"),
            ["ec2.amazonaws.com"]
        );
    }
    let pattern = &t["Parameters"]["PassableRolePattern"];
    assert!(
        pattern.get("Default").is_none(),
        "PassableRolePattern has a default"
    );
    assert!(
        pattern.get("ConstraintDescription").is_some(),
        "PassableRolePattern says why a value is refused"
    );
    // CloudFormation: the value must match the whole pattern.
    let allowed =
        regex_lite::Regex::new(&format!("^(?:{})$", one(&pattern["AllowedPattern"]))).unwrap();
    for refused in [
        "*", "?", "**", "?*", "*?", "*app", "?app-*", "*-role", "a*", "ab*", "a?", "ab?c", "a/*",
        " app-*", "app *", "app-é*", "é*", "ａpp-*", "app-*\n", "",
    ] {
        assert!(!allowed.is_match(refused), "{refused:?} is allowed");
    }
    for accepted in [
        "app-*",
        "web*",
        "ec2?",
        "app/*",
        "service-role/app-*",
        "my-app-role",
        "db",
        "a",
        "app-?-*",
        "App+=,.@_-*",
    ] {
        assert!(allowed.is_match(accepted), "{accepted:?} is refused");
    }
    // Backups: retire only autoheal's own.
    let backup_of = format!("aws:ResourceTag/{}", autoheal::rules::backup::BACKUP_OF_TAG);
    for action in ["ec2:DeregisterImage", "ec2:DeleteSnapshot"] {
        for s in with_action(&statements, action) {
            assert_eq!(s.cond("StringLike", &backup_of), ["i-*"], "{}", s.sid);
            assert_eq!(s.resources, [ec2_arn("image"), ec2_arn("snapshot")]);
        }
    }
    // Images: of instances, into images and snapshots of this region.
    for s in with_action(&statements, "ec2:CreateImage") {
        assert_eq!(
            s.resources,
            [ec2_arn("instance"), ec2_arn("image"), ec2_arn("snapshot")]
        );
    }
    // Elastic IPs move only to an instance autoheal launched.
    let incident = format!("aws:ResourceTag/{}", autoheal::model::tags::INCIDENT_TAG);
    for s in with_action(&statements, "ec2:AssociateAddress") {
        assert!(!s.resources.iter().any(|r| r == "*"), "{}", s.sid);
        if s.resources.contains(&ec2_arn("instance")) {
            assert_eq!(s.cond("Null", &incident), ["false"], "{}", s.sid);
        }
    }
    // Auto Scaling: groups only.
    for s in with_action(&statements, "autoscaling:SetInstanceHealth") {
        assert_eq!(s.resources, ["arn:${AWS::Partition}:autoscaling:*:${AWS::AccountId}:autoScalingGroup:*:autoScalingGroupName/*"]);
    }
    // The ledger and the dead letters: this stack's table and queue.
    for s in statements.iter().filter(|s| s.effect == "Allow") {
        if s.actions.iter().any(|a| a.starts_with("dynamodb:")) {
            assert_eq!(s.resources, ["!GetAtt Ledger.Arn"], "{}", s.sid);
        }
        if s.actions.iter().any(|a| a.starts_with("sqs:")) {
            assert_eq!(s.resources, ["!GetAtt DeadLetters.Arn"], "{}", s.sid);
        }
    }
}

#[test]
fn alarms_only_the_stacks_and_they_only_notify() {
    let t = template();
    let statements = role_statements(&t);
    let managed = autoheal::rules::alarms::managed_prefix("${AlarmNamePrefix}");
    let arn = format!("arn:${{AWS::Partition}}:cloudwatch:*:${{AWS::AccountId}}:alarm:{managed}*");
    let cloudwatch: Vec<_> = statements
        .iter()
        .filter(|s| s.effect == "Allow" && s.actions.iter().any(|a| a.starts_with("cloudwatch:")))
        .collect();
    assert!(!cloudwatch.is_empty());
    for s in &cloudwatch {
        assert_eq!(s.resources, [arn.as_str()], "{}", s.sid);
    }
    // What the alarms it writes may do: notify (SNS) or invoke this function, never an EC2
    // action (arn:aws:automate:...:ec2:stop|terminate|reboot) an insider could aim with it.
    let puts = with_action(&statements, "cloudwatch:PutMetricAlarm");
    assert_eq!(puts.len(), 1);
    let allowed = puts[0].cond("ForAllValues:StringLike", "cloudwatch:AlarmActions");
    assert_eq!(
        allowed,
        [
            "arn:${AWS::Partition}:sns:*:${AWS::AccountId}:*",
            "arn:${AWS::Partition}:lambda:*:${AWS::AccountId}:function:${FunctionName}"
        ]
    );
    assert!(
        puts[0].actions == ["cloudwatch:PutMetricAlarm"],
        "the condition binds only the write"
    );
    // The prefix ends up in the ARN: a wildcard in it would widen the grant.
    let prefix = &t["Parameters"]["AlarmNamePrefix"];
    let pattern =
        regex_lite::Regex::new(&format!("^(?:{})$", one(&prefix["AllowedPattern"]))).unwrap();
    for refused in ["", "*", "a*", "?", "autoheal-?"] {
        assert!(!pattern.is_match(refused), "{refused:?} is allowed");
    }
    for accepted in ["autoheal-", "team-a/", "x"] {
        assert!(pattern.is_match(accepted), "{accepted:?} is refused");
    }
    let env = &function(&t)["Environment"]["Variables"];
    assert_eq!(
        strings(&env["AUTOHEAL_ALARM_NAME_PREFIX"]),
        ["!Ref AlarmNamePrefix"]
    );
    assert_eq!(
        strings(&env["AUTOHEAL_ALARM_TOPIC_ARN"]),
        ["!Ref AlarmTopic"]
    );
}

#[test]
fn kms_only_for_the_webhook_or_through_ec2() {
    let statements = role_statements(&template());
    let mut webhook = 0;
    let mut ebs = BTreeSet::new();
    for s in statements
        .iter()
        .filter(|s| s.effect == "Allow" && s.actions.iter().any(|a| a.starts_with("kms:")))
    {
        assert!(s.actions.iter().all(|a| a.starts_with("kms:")), "{}", s.sid);
        let context = s.cond("StringEquals", "kms:EncryptionContext:LambdaFunctionName");
        if !context.is_empty() {
            // The Slack webhook: Decrypt only, this function's ciphertext, the given key.
            assert_eq!(context, ["!Ref FunctionName"]);
            assert_eq!(s.actions, ["kms:Decrypt"]);
            assert_eq!(s.resources, ["!Ref WebhookKmsKeyArn"]);
            assert_eq!(s.only_if.as_deref(), Some("HasWebhookKey"));
            webhook += 1;
            continue;
        }
        assert_eq!(
            s.cond("StringLike", "kms:ViaService"),
            ["ec2.*.amazonaws.com"],
            "{}: a KMS grant not through EC2",
            s.sid
        );
        assert_eq!(
            s.resources,
            ["arn:${AWS::Partition}:kms:*:${AWS::AccountId}:key/*"],
            "{}",
            s.sid
        );
        if s.actions.iter().any(|a| a == "kms:CreateGrant") {
            assert_eq!(
                s.cond("Bool", "kms:GrantIsForAWSResource"),
                ["true"],
                "{}: CreateGrant for other than an AWS resource",
                s.sid
            );
        }
        ebs.extend(s.actions.iter().cloned());
    }
    assert_eq!(webhook, 1, "the webhook's Decrypt statement");
    let expected: BTreeSet<String> = [
        "kms:CreateGrant",
        "kms:Decrypt",
        "kms:GenerateDataKeyWithoutPlaintext",
        "kms:ReEncrypt*",
        "kms:DescribeKey",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(ebs, expected, "the EBS key grants");
}

// ---------------------------------------------------------------------------------------
// Who may invoke and publish.

#[test]
fn only_cloudwatch_of_this_account_publishes_alarms() {
    let t = template();
    let policies = of_type(&t, "AWS::SNS::TopicPolicy");
    let alarm_topic = policies
        .iter()
        .find(|(_, p)| strings(&p["Properties"]["Topics"]) == ["!Ref AlarmTopic"])
        .expect("a TopicPolicy on AlarmTopic");
    let statements = statements_of(&alarm_topic.1["Properties"]["PolicyDocument"]);
    assert!(!statements.is_empty());
    for (i, raw) in alarm_topic.1["Properties"]["PolicyDocument"]["Statement"]
        .as_sequence()
        .unwrap()
        .iter()
        .enumerate()
    {
        let s = &statements[i];
        if s.effect != "Allow" {
            continue;
        }
        assert_eq!(
            strings(&raw["Principal"]["Service"]),
            ["cloudwatch.amazonaws.com"]
        );
        assert!(raw["Principal"].get("AWS").is_none());
        assert_eq!(s.actions, ["sns:Publish"]);
        assert_eq!(
            s.cond("StringEquals", "aws:SourceAccount"),
            ["!Ref AWS::AccountId"]
        );
        assert_eq!(
            s.cond("ArnLike", "aws:SourceArn"),
            ["arn:${AWS::Partition}:cloudwatch:*:${AWS::AccountId}:alarm:*"]
        );
    }
    // Every Lambda permission names its source account or source.
    let permissions = of_type(&t, "AWS::Lambda::Permission");
    for (name, p) in &permissions {
        let p = &p["Properties"];
        assert!(
            p.get("SourceAccount").is_some() && p.get("SourceArn").is_some(),
            "{name}: a permission without SourceAccount and SourceArn"
        );
    }
    let direct = permissions
        .iter()
        .find(|(_, p)| p["Properties"]["Principal"] == "lambda.alarms.cloudwatch.amazonaws.com")
        .expect("a permission for CloudWatch's direct alarm action");
    let p = &direct.1["Properties"];
    assert_eq!(one(&p["Action"]), "lambda:InvokeFunction");
    assert_eq!(one(&p["SourceAccount"]), "!Ref AWS::AccountId");
    assert_eq!(
        one(&p["SourceArn"]),
        "arn:${AWS::Partition}:cloudwatch:${AWS::Region}:${AWS::AccountId}:alarm:*"
    );
    // Every queue or topic policy statement for a service names the source.
    for ty in ["AWS::SQS::QueuePolicy", "AWS::SNS::TopicPolicy"] {
        for (name, p) in of_type(&t, ty) {
            let raw = p["Properties"]["PolicyDocument"]["Statement"]
                .as_sequence()
                .unwrap();
            for (s, r) in statements_of(&p["Properties"]["PolicyDocument"])
                .iter()
                .zip(raw)
            {
                if s.effect == "Allow" {
                    assert!(r["Principal"].get("Service").is_some(), "{name}: {}", s.sid);
                    assert!(
                        !s.cond("ArnLike", "aws:SourceArn").is_empty()
                            || !s.cond("ArnEquals", "aws:SourceArn").is_empty(),
                        "{name}: {} without aws:SourceArn",
                        s.sid
                    );
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Operations.

fn function(t: &Value) -> &Value {
    &resources(t)["Function"]["Properties"]
}

#[test]
fn every_alarm_notifies_the_ops_topic() {
    let t = template();
    assert_eq!(one(&t["Parameters"]["OpsTopicArn"]["Default"]), "");
    assert!(t["Parameters"].get("OpsEmail").is_some());
    assert_eq!(
        strings(&t["Conditions"]["CreateOpsTopic"]),
        ["!Equals !Ref OpsTopicArn "]
    );
    assert_eq!(
        one(&resources(&t)["OpsTopic"]["Condition"]),
        "CreateOpsTopic"
    );
    let alarms = of_type(&t, "AWS::CloudWatch::Alarm");
    let ops = ["!If CreateOpsTopic !Ref OpsTopic !Ref OpsTopicArn"];
    for (name, a) in &alarms {
        let p = &a["Properties"];
        assert_eq!(strings(&p["AlarmActions"]), ops, "{name}: AlarmActions");
        assert_eq!(strings(&p["OKActions"]), ops, "{name}: OKActions");
    }
    let metric = |ns: &str, m: &str| {
        alarms
            .iter()
            .any(|(_, a)| a["Properties"]["Namespace"] == ns && a["Properties"]["MetricName"] == m)
    };
    assert!(metric("AWS/Lambda", "Errors"), "an Errors alarm");
    assert!(metric("AWS/Lambda", "Throttles"), "a Throttles alarm");
    assert!(
        metric("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
        "a dead-letter depth alarm"
    );
}

/// The EMF the code emits: (namespace, metric name, dimension names).
fn emf() -> (String, String, Vec<String>) {
    use autoheal::model::outcome::{Action, Outcome, Verdict};
    let line = autoheal::pipeline::report::emf_line(
        &Outcome::new(None, Action::None, Verdict::Failed, "x"),
        0,
    );
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    let d = &v["_aws"]["CloudWatchMetrics"][0];
    (
        d["Namespace"].as_str().unwrap().to_string(),
        d["Metrics"][0]["Name"].as_str().unwrap().to_string(),
        d["Dimensions"][0]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap().to_string())
            .collect(),
    )
}

/// The wire names of `Action` in src/model/outcome.rs.
fn outcome_actions() -> Vec<String> {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/model/outcome.rs"))
            .unwrap();
    let block = text
        .split("Action {")
        .nth(1)
        .unwrap()
        .split('}')
        .next()
        .unwrap();
    let actions: Vec<String> = block
        .lines()
        .filter_map(|l| l.split("=> \"").nth(1))
        .map(|w| w.trim_end_matches("\",").trim_end_matches('"').to_string())
        .collect();
    for a in &actions {
        assert!(autoheal::model::outcome::Action::parse(a).is_some(), "{a}");
    }
    assert!(actions.len() >= 7, "{actions:?}");
    actions
}

/// The wire name of `Verdict::<name>` in src/model/outcome.rs.
fn verdict_wire(name: &str) -> String {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/model/outcome.rs"))
            .unwrap();
    let block = text
        .split("Verdict {")
        .nth(1)
        .unwrap()
        .split('}')
        .next()
        .unwrap();
    let wire = block
        .lines()
        .find_map(|l| l.trim().strip_prefix(&format!("{name} => \"")))
        .unwrap_or_else(|| panic!("no Verdict::{name} in src/model/outcome.rs"))
        .trim_end_matches("\",")
        .trim_end_matches('"')
        .to_string();
    assert_eq!(
        autoheal::model::outcome::Verdict::parse(&wire).map(|v| v.as_str()),
        Some(wire.as_str())
    );
    wire
}

/// The (action, result) pairs of an alarm's metric-math inputs, checked to be the code's
/// EMF metric.
fn emf_inputs(alarm: &Value) -> Vec<(String, String)> {
    let (namespace, metric, dims) = emf();
    let mut out = vec![];
    for m in alarm["Properties"]["Metrics"]
        .as_sequence()
        .expect("metric math")
    {
        let Some(stat) = m.get("MetricStat") else {
            continue;
        };
        assert_eq!(one(&stat["Metric"]["Namespace"]), namespace);
        assert_eq!(one(&stat["Metric"]["MetricName"]), metric);
        let d = stat["Metric"]["Dimensions"].as_sequence().unwrap();
        let names: Vec<String> = d.iter().map(|x| one(&x["Name"])).collect();
        assert_eq!(names, dims, "the EMF line's dimension set");
        let value = |n: &str| one(&d.iter().find(|x| x["Name"] == n).unwrap()["Value"]);
        out.push((value("action"), value("result")));
        // The expression uses every input.
        let expression = alarm["Properties"]["Metrics"]
            .as_sequence()
            .unwrap()
            .iter()
            .find_map(|m| m.get("Expression"))
            .map(one)
            .unwrap();
        assert!(expression.contains(&one(&m["Id"])), "{expression}");
    }
    out
}

#[test]
fn failed_outcomes_and_a_stopped_tick_alarm() {
    let t = template();
    let alarms = of_type(&t, "AWS::CloudWatch::Alarm");
    // result=failed of every action the code has.
    let failed = alarms
        .iter()
        .find(|(_, a)| {
            a["Properties"].get("Metrics").is_some()
                && emf_inputs(a).iter().all(|(_, r)| r == "failed")
        })
        .expect("an alarm on result=failed");
    let actions: BTreeSet<String> = emf_inputs(failed.1).into_iter().map(|(a, _)| a).collect();
    let expected: BTreeSet<String> = outcome_actions().into_iter().collect();
    assert_eq!(actions, expected, "{}: every action's failures", failed.0);
    assert_eq!(
        one(&failed.1["Properties"]["ComparisonOperator"]),
        "GreaterThanOrEqualToThreshold"
    );
    // The tick: each scheduled run ends with the backup summary (create_image, with every
    // result its code can give: dry run included, or a dry-run stack's alarm never clears);
    // none for a while is breaching.
    let tick_src = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("src/pipeline/tick/backups.rs"),
    )
    .unwrap();
    assert!(
        tick_src.contains("Outcome::new(None, Action::CreateImage, result, summary.text())"),
        "the tick's backup summary is no longer action=create_image: fix TickStopped"
    );
    let summary_results: BTreeSet<(String, String)> = tick_src
        .split("async fn backups_in(")
        .nth(1)
        .unwrap()
        .split("\n}\n")
        .next()
        .unwrap()
        .split("Verdict::")
        .skip(1)
        .map(|v| {
            let name: String = v.chars().take_while(char::is_ascii_alphanumeric).collect();
            ("create_image".to_string(), verdict_wire(&name))
        })
        .collect();
    assert!(
        summary_results.contains(&("create_image".to_string(), "dry_run".to_string())),
        "{summary_results:?}"
    );
    let tick = alarms
        .iter()
        .find(|(_, a)| {
            a["Properties"].get("Metrics").is_some()
                && emf_inputs(a)
                    .into_iter()
                    .any(|(a, r)| a == "create_image" && r != "failed")
        })
        .expect("an alarm on the tick's backup summaries");
    let inputs: BTreeSet<_> = emf_inputs(tick.1).into_iter().collect();
    assert_eq!(
        inputs, summary_results,
        "{}: every result of the tick's summary",
        tick.0
    );
    let p = &tick.1["Properties"];
    assert_eq!(one(&p["TreatMissingData"]), "breaching");
    assert_eq!(one(&p["ComparisonOperator"]), "LessThanThreshold");
}

#[test]
fn retries_dead_letters_and_logs() {
    let t = template();
    let f = function(&t);
    assert_eq!(
        one(&t["Parameters"]["ReservedConcurrency"]["Default"]),
        "10"
    );
    assert_eq!(
        one(&f["ReservedConcurrentExecutions"]),
        "!Ref ReservedConcurrency"
    );
    let invoke = &f["EventInvokeConfig"];
    assert!(invoke["MaximumEventAgeInSeconds"].as_u64().is_some());
    assert_eq!(invoke["MaximumRetryAttempts"].as_u64(), Some(2));
    assert_eq!(
        one(&invoke["DestinationConfig"]["OnFailure"]["Destination"]),
        "!GetAtt DeadLetters.Arn"
    );
    assert_eq!(
        one(&f["DeadLetterQueue"]["TargetArn"]),
        "!GetAtt DeadLetters.Arn"
    );
    for (name, e) in f["Events"].as_mapping().unwrap() {
        let ty = one(&e["Type"]);
        let p = &e["Properties"];
        match ty.as_str() {
            "EventBridgeRule" | "Schedule" => {
                assert_eq!(
                    one(&p["DeadLetterConfig"]["Arn"]),
                    "!GetAtt DeadLetters.Arn",
                    "{name:?}"
                );
                assert!(
                    p["RetryPolicy"]["MaximumRetryAttempts"].as_u64().is_some(),
                    "{name:?}"
                );
                assert!(
                    p["RetryPolicy"]["MaximumEventAgeInSeconds"]
                        .as_u64()
                        .is_some(),
                    "{name:?}"
                );
            }
            "SNS" => assert_eq!(
                one(&p["RedrivePolicy"]["deadLetterTargetArn"]),
                "!GetAtt DeadLetters.Arn",
                "{name:?}"
            ),
            other => panic!("{name:?}: event type {other} not checked"),
        }
    }
    // Queues encrypted.
    for (name, q) in of_type(&t, "AWS::SQS::Queue") {
        let p = &q["Properties"];
        assert!(
            p["SqsManagedSseEnabled"].as_bool() == Some(true) || p.get("KmsMasterKeyId").is_some(),
            "{name} unencrypted"
        );
    }
    // The log group: named after the function, retention from the parameter, used.
    assert_eq!(one(&t["Parameters"]["LogRetentionDays"]["Default"]), "30");
    let groups = of_type(&t, "AWS::Logs::LogGroup");
    let (group, g) = groups
        .iter()
        .find(|(_, g)| one(&g["Properties"]["LogGroupName"]) == "/aws/lambda/${FunctionName}")
        .expect("the function's log group");
    assert_eq!(
        one(&g["Properties"]["RetentionInDays"]),
        "!Ref LogRetentionDays"
    );
    assert_eq!(one(&f["FunctionName"]), "!Ref FunctionName");
    assert_eq!(
        one(&f["LoggingConfig"]["LogGroup"]),
        format!("!Ref {group}")
    );
    // The outputs other sessions and the README rely on.
    for o in ["AlarmTopicArn", "LedgerTable", "FunctionArn"] {
        assert!(t["Outputs"].get(o).is_some(), "output {o}");
    }
}

/// A first deploy decides and reports but repairs nothing until someone goes live.
#[test]
fn the_first_deploy_is_a_dry_run() {
    let t = template();
    assert_eq!(t["Parameters"]["DryRun"]["Default"], "true");
    let env = &function(&t)["Environment"]["Variables"];
    assert_eq!(one(&env["AUTOHEAL_DRY_RUN"]), "!Ref DryRun");
}

#[test]
fn the_scheduled_changes_rule_delivers_exactly_the_notices_the_intake_reads() {
    let t = template();
    let rule = &t["Resources"]["Function"]["Properties"]["Events"]["Ec2ScheduledChanges"];
    let detail = &rule["Properties"]["Pattern"]["detail"];
    assert_eq!(
        detail["service"],
        serde_yaml::from_str::<Value>("[EC2]").unwrap()
    );
    assert_eq!(
        detail["eventTypeCategory"],
        serde_yaml::from_str::<Value>("[scheduledChange]").unwrap()
    );
    let codes: BTreeSet<&str> = detail["eventTypeCode"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    let read: BTreeSet<&str> = autoheal::model::notice::HEALTH_NOTICES
        .iter()
        .map(|(code, _)| *code)
        .collect();
    assert_eq!(codes, read);
}
