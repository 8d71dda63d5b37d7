//! Types and names shared by many modules. A leaf: it imports nothing of the crate, so
//! every other module may import it without making a cycle.

pub mod facts;
pub mod handover;
pub mod keys;
pub mod notice;
pub mod outcome;
pub mod progress;
pub mod scope;
pub mod tags;
