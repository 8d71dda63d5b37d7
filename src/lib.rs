//! autoheal: heals EC2 instances whose status checks fail.
//!
//! Data flows event in -> decision -> action -> report. `pipeline` is the only module that
//! orders effects (intake, observe, decide, commit, act, report; and the tick); `rules` holds
//! every pure rule it calls; `ledger`, `aws` and `notify` are the effects; `model` the types
//! many modules share; `app` what an invocation works with (clients, configuration, clock).
//! No module imports one that imports it back (`tests/modules.rs`). `lambda` and `main`
//! are the Lambda edge.

pub mod app;
pub mod aws;
pub mod error;
pub mod intake;
pub mod lambda;
pub mod ledger;
pub mod model;
pub mod notify;
pub mod pipeline;
pub mod rules;

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
