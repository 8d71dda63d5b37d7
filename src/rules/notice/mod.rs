//! Scheduled notices, pure: EC2 announces days ahead that it will retire, stop, reboot or
//! maintain an instance or its host; autoheal plans to act ahead of it, inside the
//! instance's maintenance window (`window`), or to tell people early (`plan`). The notice
//! itself (`model::notice`) is shared with the intake, which hears it from AWS Health.
//! Times come in as values: no clock is read here.

pub mod act;
pub mod plan;
pub mod record;
pub mod window;

pub use crate::model::notice::*;
