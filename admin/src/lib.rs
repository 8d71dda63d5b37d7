//! autoheal-admin, the operator's side: never deployed with the function and run with the
//! operator's credentials. `webhook` (encrypt the Slack URL), `alarms` (one status-check
//! alarm per instance), `audit` (instances that will hurt when they fail). Planning,
//! findings and rendering are pure; `fleet` holds the AWS calls.

pub mod alarms;
pub mod audit;
pub mod fleet;
pub mod webhook;

use autoheal::error::Error;

/// An AWS failure said for a person at a terminal: the common causes by name.
pub fn explain(e: &Error) -> String {
    let hint = match e.code() {
        Some("NotFoundException") => Some("no such KMS key in this account and region"),
        Some("NotFound") => Some("no such SNS topic in this account and region"),
        Some("ResourceNotFoundException") => Some("no such DynamoDB table in this account and region"),
        Some("AccessDeniedException" | "AccessDenied" | "UnauthorizedOperation") => {
            Some("the credentials in use are not allowed to do this (see docs/admin.md for the permissions autoheal-admin needs)")
        }
        Some("InvalidClientTokenId" | "UnrecognizedClientException" | "AuthFailure") => {
            Some("the credentials in use are not valid")
        }
        _ => None,
    };
    match hint {
        Some(h) => format!("{h}\n  ({e})"),
        None => e.to_string(),
    }
}
