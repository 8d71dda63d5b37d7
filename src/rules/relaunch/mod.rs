//! The relaunch of a standalone instance, pure: the phase rule (`plan`) and what the copy
//! carries over (`spec`). `pipeline::relaunch` runs it.

pub mod plan;
pub mod said;
pub mod spec;

/// What people do by hand when a relaunch step fails for good.
pub const RUNBOOK: &str = "Manual recovery (docs/RUNBOOK.md): \
1) open the incident's instance in the console and look at its status checks and system log; \
2) if the copy exists (tag autoheal:incident), check it in the console: running with both status checks ok means it only needs its Elastic IP (EC2 > Elastic IPs > Associate, Allow reassociation); \
3) if no copy runs: EC2 > AMIs, find autoheal-<incident> (or the newest backup), Launch instance from it with the old instance's subnet, security groups, IAM role, key pair and user data; \
4) move the Elastic IPs to the copy; 5) stop the old instance (Force stop if it hangs) and keep it for the post-mortem; \
6) never take an image with reboot, never stop a healthy cluster member to make room.";
