//! Every pure rule: what the pipeline decides from what it read. No SDK, no ledger, no
//! clock read (`tests/modules.rs`): each rule takes the time it needs as a value.

pub mod alarms;
pub mod backup;
pub mod breaker;
pub mod decide;
pub mod guard;
pub mod history;
pub mod incident;
pub mod ladder;
pub mod notice;
pub mod owner;
pub mod plan;
pub mod policy;
pub mod relaunch;
pub mod replacement;
pub mod scan;
pub mod storm;
pub mod trust;
