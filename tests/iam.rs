//! Least privilege, checked: every AWS operation the code calls is granted by
//! `template.yaml`, and the template grants nothing the code does not call. The list is
//! derived from the source, not written by hand.

use std::collections::BTreeSet;
use std::path::Path;

/// Client variable -> IAM service prefix, as the adapters name their clients.
const CLIENTS: &[(&str, &str)] = &[
    ("ec2.", "ec2"),
    ("asg.", "autoscaling"),
    ("kms.", "kms"),
    ("self.client.", "dynamodb"),
];

/// Allowed without a call in the code: the runtime's own needs.
const RUNTIME_GRANTS: &[&str] = &["sqs:SendMessage", "iam:PassRole"];

fn pascal(snake: &str) -> String {
    snake
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next().map_or(String::new(), |f| {
                f.to_ascii_uppercase().to_string() + c.as_str()
            })
        })
        .collect()
}

/// The operator's CLI runs with the operator's credentials, not the function's role.
const NOT_THE_FUNCTION: &[&str] = &["admin", "bin"];

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .is_some_and(|n| NOT_THE_FUNCTION.contains(&n.to_str().unwrap_or("")))
        {
            continue;
        }
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `ec2.describe_instances()` (whitespace and line breaks ignored) -> `ec2:DescribeInstances`.
fn actions_in_code() -> BTreeSet<String> {
    let mut files = vec![];
    rust_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    let mut actions = BTreeSet::new();
    for file in files {
        let text: String = std::fs::read_to_string(&file)
            .unwrap()
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        for (var, service) in CLIENTS {
            for (at, _) in text.match_indices(var) {
                let rest = &text[at + var.len()..];
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                    .collect();
                if !name.is_empty() && rest[name.len()..].starts_with("()") && name != "clone" {
                    actions.insert(format!("{service}:{}", pascal(&name)));
                }
            }
        }
    }
    actions
}

/// Actions of the function's Allow statements (Deny statements only narrow them).
fn granted_in_template() -> BTreeSet<String> {
    let template =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("template.yaml"))
            .unwrap();
    let policies = template
        .split("Policies:")
        .nth(1)
        .expect("the function has Policies");
    let policies = policies.split("\n  FunctionErrors:").next().unwrap();
    let mut granted = BTreeSet::new();
    for statement in policies.split("- Effect:").skip(1) {
        if !statement.trim_start().starts_with("Allow") {
            continue;
        }
        let actions_part = statement.split("Resource:").next().unwrap();
        for word in actions_part.split_whitespace() {
            let word = word.trim_matches(|c: char| c == '-' || c == '"' || c == ',');
            if let Some((service, op)) = word.split_once(':') {
                if ["ec2", "autoscaling", "dynamodb", "kms", "iam", "sqs"].contains(&service)
                    && op.chars().next().is_some_and(|c| c.is_ascii_uppercase())
                {
                    granted.insert(word.to_string());
                }
            }
        }
    }
    granted
}

#[test]
fn every_call_is_granted_and_nothing_more() {
    let called = actions_in_code();
    let granted = granted_in_template();
    // The scan must see the calls we know are there, or it proves nothing.
    for known in [
        "autoscaling:SetInstanceHealth",
        "ec2:CreateImage",
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
}
