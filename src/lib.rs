//! autoheal: heals EC2 instances whose status checks fail.
//!
//! Data flows event in -> decision -> action -> report: `intake` (event shapes -> Signal),
//! `incident` + `ledger` (claim, once only), `aws` observe, `decide` (the pure
//! judgement and the order of its rules, with `policy`, `trust`, `ladder`, `guard`,
//! `breaker`), `aws` act (Auto Scaling, or a standalone relaunch), `notify` + `report`.
//! `heal` is the only module that orders those steps — for alarms, and on its `tick` for
//! triggers without an alarm; `app` holds what an invocation works with; `model` the types
//! many modules share. No module imports one that imports it back (`tests/modules.rs`).
//! `lambda` and `main` are the Lambda edge.

pub mod app;
pub mod aws;
pub mod backup;
pub mod breaker;
pub mod clock;
pub mod config;
pub mod decide;
pub mod error;
pub mod guard;
pub mod heal;
pub mod history;
pub mod incident;
pub mod intake;
pub mod ladder;
pub mod lambda;
pub mod ledger;
pub mod model;
pub mod notify;
pub mod outcome;
pub mod owner;
pub mod policy;
pub mod relaunch;
pub mod replacement;
pub mod report;
pub mod scan;
pub mod secret;
pub mod trust;

impl From<error::Error> for lambda_runtime::Diagnostic {
    fn from(e: error::Error) -> Self {
        lambda_runtime::Diagnostic {
            error_type: if e.is_transient() {
                "Retryable"
            } else {
                "Permanent"
            }
            .into(),
            error_message: e.to_string(),
        }
    }
}
