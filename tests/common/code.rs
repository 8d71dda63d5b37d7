//! Which AWS operations the function's code calls, read from its sources (so no list of
//! calls is written by hand): the least-privilege tests compare the template and the
//! deployed role with it. Included beside `common` and `files` (`#[path]`) by the tests that
//! need it.

use std::collections::BTreeSet;

/// Client variable -> IAM service prefix, as the adapters name their clients.
pub const CLIENTS: &[(&str, &str)] = &[
    ("ec2.", "ec2"),
    ("asg.", "autoscaling"),
    ("kms.", "kms"),
    ("cw.", "cloudwatch"),
    ("arc.", "arc-zonal-shift"),
    ("self.client.", "dynamodb"),
];

/// Granted without a call in the code: the runtime's own needs.
/// - sqs:SendMessage: Lambda writes failed asynchronous invocations to the dead-letter
///   queue and the OnFailure destination with the function's role.
/// - iam:PassRole: RunInstances with the source's instance profile.
/// - the EBS keys: EC2 uses the customer managed keys of encrypted volumes on the caller's
///   behalf when it launches a copy (kms:ViaService ec2).
pub const RUNTIME_GRANTS: &[&str] = &[
    "sqs:SendMessage",
    "iam:PassRole",
    "kms:CreateGrant",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:ReEncrypt*",
    "kms:DescribeKey",
];

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

/// (file relative to the crate, its text without whitespace) for the function's sources.
pub fn function_sources() -> Vec<(String, String)> {
    let root = &crate::common::repo_root();
    let mut files = vec![];
    crate::files::files_under(&root.join("src"), "rs", &mut files);
    files
        .into_iter()
        .map(|f| {
            let text: String = std::fs::read_to_string(&f)
                .unwrap()
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect();
            (
                f.strip_prefix(root).unwrap().to_string_lossy().into_owned(),
                text,
            )
        })
        .collect()
}

/// A transaction is authorised per item, as the action each item is: the kinds of item the
/// file builds (`TransactWriteItem::builder().update(…)` -> `dynamodb:UpdateItem`).
fn transacted(text: &str) -> Vec<String> {
    let kinds = [
        ("put(", "PutItem"),
        ("update(", "UpdateItem"),
        ("delete(", "DeleteItem"),
        ("condition_check(", "ConditionCheckItem"),
    ];
    let found: Vec<String> = kinds
        .iter()
        .filter(|(call, _)| text.contains(&format!("TransactWriteItem::builder().{call}")))
        .map(|(_, action)| format!("dynamodb:{action}"))
        .collect();
    assert!(
        !found.is_empty(),
        "a transaction whose items the scan cannot see: build them with TransactWriteItem::builder()"
    );
    found
}

/// `ec2.describe_instances()` (whitespace and line breaks ignored) -> `ec2:DescribeInstances`.
pub fn actions_in_code() -> BTreeSet<String> {
    let mut actions = BTreeSet::new();
    for (_, text) in function_sources() {
        for (var, service) in CLIENTS {
            for (at, _) in text.match_indices(var) {
                let rest = &text[at + var.len()..];
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                    .collect();
                if !name.is_empty() && rest[name.len()..].starts_with("()") && name != "clone" {
                    match name.as_str() {
                        "transact_write_items" => actions.extend(transacted(&text)),
                        _ => {
                            actions.insert(format!("{service}:{}", pascal(&name)));
                        }
                    }
                }
            }
        }
    }
    actions
}
