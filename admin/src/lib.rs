//! autoheal-admin, the operator's side: never deployed with the function and run with the
//! operator's credentials. `webhook` (encrypt the Slack URL), `alarms` (one status-check
//! alarm per instance), `audit` (instances that will hurt when they fail), `release` (the
//! guard places of an incident people have taken over). Planning, findings and rendering
//! are pure; `fleet` holds the AWS calls.

pub mod alarms;
pub mod audit;
pub mod fleet;
pub mod release;
pub mod webhook;

use autoheal::error::Error;

/// `--region` (or the region the AWS sources give): a region's name, `us-east-1`,
/// `us-gov-west-1`. Anything else fails every call later, in the SDK's words, not ours.
pub fn parse_region(s: &str) -> Result<String, String> {
    let name = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-';
    match !s.is_empty() && s.len() <= 32 && s.bytes().all(name) && !s.starts_with('-') {
        true => Ok(s.to_string()),
        false => Err(format!("{s:?} is not an AWS region name (e.g. us-east-1)")),
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_names_only() {
        for ok in [
            "us-east-1",
            "eu-central-2",
            "us-gov-west-1",
            "cn-north-1",
            "ap-southeast-5",
        ] {
            assert_eq!(parse_region(ok), Ok(ok.to_string()));
        }
        for bad in [
            "",
            " ",
            "é",
            "us-east-é",
            "US-EAST-1",
            "us east 1",
            "us-east-1\n",
            "-us",
            "us.east",
            "us/east",
            "ｕｓ-east-1",
            "\u{202e}us-east-1",
            "us-east-1\u{0}",
            &"a".repeat(33),
        ] {
            let err = parse_region(bad).unwrap_err();
            assert!(err.contains("is not an AWS region name"), "{bad:?}: {err}");
        }
    }
}
