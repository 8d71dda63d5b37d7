//! What EC2 and Auto Scaling report of an instance, as the decision reads it.

use std::collections::BTreeMap;

/// What `observe` saw of the instance.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct InstanceFacts {
    pub instance_id: String,
    /// EC2 state name: pending, running, stopping, stopped, shutting-down, terminated.
    pub state: String,
    pub instance_type: Option<String>,
    pub availability_zone: Option<String>,
    /// `ebs` or `instance-store`.
    pub root_device_type: Option<String>,
    /// `InstanceLifecycle`: `spot`, `scheduled`, `capacity-block`; None for on-demand.
    pub lifecycle: Option<String>,
    pub tags: BTreeMap<String, String>,
    /// When EC2 launched it (epoch ms).
    pub launch_ms: Option<i64>,
    /// `MaintenanceOptions.AutoRecovery`: `default` or `disabled`.
    pub auto_recovery: Option<String>,
    /// Whether the type supports EC2's automatic recovery (`DescribeInstanceTypes`); read
    /// for standalone instances only, None when unknown.
    pub auto_recovery_supported: Option<bool>,
    /// Stop protection (`DescribeInstanceAttribute` `disableApiStop`); read for standalone
    /// instances only, None when unknown.
    pub disable_api_stop: Option<bool>,
    /// `hvm` or `paravirtual`.
    pub virtualization: Option<String>,
    pub kernel_id: Option<String>,
}

/// PV-GRUB 1.03 (64-bit): instances booting it may never come back from a reboot
/// (they boot PV-GRUB, which an AWS maintenance reboot left unbootable in the field).
pub const RISKY_KERNEL: &str = "aki-44992845";

impl InstanceFacts {
    /// Why a reboot or stop/start may never bring it back, if so.
    pub fn reboot_risk(&self) -> Option<&'static str> {
        if self.kernel_id.as_deref() == Some(RISKY_KERNEL) {
            Some("kernel aki-44992845 may not come back from a reboot")
        } else if self.virtualization.as_deref() == Some("paravirtual") {
            Some("a paravirtual instance may not come back from a reboot")
        } else {
            None
        }
    }
}

impl InstanceFacts {
    pub fn name(&self) -> Option<&str> {
        self.tags.get("Name").map(String::as_str)
    }
}

/// What `observe` saw of the instance's Auto Scaling group membership.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GroupFacts {
    pub name: String,
    /// `HEALTHY` or `UNHEALTHY`, as DescribeAutoScalingInstances writes it.
    pub health: String,
    /// InService, Pending, Standby, Terminating, ...
    pub lifecycle: String,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Facts {
    /// None: EC2 does not know the instance.
    pub instance: Option<InstanceFacts>,
    pub group: Option<GroupFacts>,
    /// The status checks as EC2 reports them now: what confirms an alarm.
    pub checks: Checks,
}

/// One status check as `DescribeInstanceStatus` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Check {
    Ok,
    Impaired,
    InsufficientData,
    Initializing,
    NotApplicable,
    /// Not reported (the instance is not running, or EC2 did not say).
    #[default]
    Unknown,
}

impl Check {
    pub fn parse(s: &str) -> Check {
        match s {
            "ok" => Check::Ok,
            "impaired" => Check::Impaired,
            "insufficient-data" => Check::InsufficientData,
            "initializing" => Check::Initializing,
            "not-applicable" => Check::NotApplicable,
            _ => Check::Unknown,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Check::Ok => "ok",
            Check::Impaired => "impaired",
            Check::InsufficientData => "insufficient-data",
            Check::Initializing => "initializing",
            Check::NotApplicable => "not-applicable",
            Check::Unknown => "not reported",
        }
    }
}

/// The instance's two status checks, as EC2 reports them now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Checks {
    pub system: Check,
    pub instance: Check,
}

impl Checks {
    pub fn both_ok(self) -> bool {
        self.system == Check::Ok && self.instance == Check::Ok
    }

    pub fn any_impaired(self) -> bool {
        self.system == Check::Impaired || self.instance == Check::Impaired
    }

    /// "EC2 reports the system check impaired, the instance check ok".
    pub fn said(self) -> String {
        if self.system == self.instance {
            return format!("EC2 reports both status checks {}", self.system.as_str());
        }
        format!(
            "EC2 reports the system check {}, the instance check {}",
            self.system.as_str(),
            self.instance.as_str()
        )
    }
}
