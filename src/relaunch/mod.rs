//! The relaunch of a standalone instance, pure: the phase rule (`plan`) and what the copy
//! carries over (`spec`). `heal::relaunch` runs it.

pub mod plan;
pub mod spec;
