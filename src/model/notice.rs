//! A scheduled notice: EC2 announcing, days ahead, that it will retire, stop, reboot or
//! maintain an instance or its host. Heard two ways, one shape: an AWS Health event
//! (`intake`) and an entry of `DescribeInstanceStatus`' `Events` (the tick). Here because
//! both the intake and the rules share it (`rules::notice` plans from it).

/// What EC2 will do, named as `DescribeInstanceStatus` codes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum NoticeKind {
    /// The host is degraded: an EBS-backed instance is stopped, an instance-store one
    /// terminated.
    InstanceRetirement,
    /// The instance is stopped (started again, it runs on another host).
    InstanceStop,
    /// The instance itself is rebooted.
    InstanceReboot,
    /// The host is rebooted, and the instance with it.
    SystemReboot,
    /// Network or power maintenance of the host: the instance may be unreachable a while.
    SystemMaintenance,
}

impl NoticeKind {
    pub const ALL: [NoticeKind; 5] = [
        NoticeKind::InstanceRetirement,
        NoticeKind::InstanceStop,
        NoticeKind::InstanceReboot,
        NoticeKind::SystemReboot,
        NoticeKind::SystemMaintenance,
    ];

    /// `DescribeInstanceStatus`' `Events[].Code`.
    pub fn code(self) -> &'static str {
        match self {
            NoticeKind::InstanceRetirement => "instance-retirement",
            NoticeKind::InstanceStop => "instance-stop",
            NoticeKind::InstanceReboot => "instance-reboot",
            NoticeKind::SystemReboot => "system-reboot",
            NoticeKind::SystemMaintenance => "system-maintenance",
        }
    }

    pub fn from_code(code: &str) -> Option<NoticeKind> {
        NoticeKind::ALL.into_iter().find(|k| k.code() == code)
    }

    /// What it does to the instance, for a report: "retire", "reboot the host of".
    pub fn said(self) -> &'static str {
        match self {
            NoticeKind::InstanceRetirement => "retire",
            NoticeKind::InstanceStop => "stop",
            NoticeKind::InstanceReboot => "reboot",
            NoticeKind::SystemReboot => "reboot the host of",
            NoticeKind::SystemMaintenance => "maintain the host of",
        }
    }
}

/// The AWS Health event types of EC2's scheduled changes to one instance, and the kind of
/// each. Retirement: `PERSISTENT` for an EBS root (stopped), plain for an instance-store
/// root (terminated); `EXPEDITED` when EC2 brings it forward. System maintenance: network
/// or power (`DescribeInstanceStatus` says `system-maintenance` for both).
pub const HEALTH_NOTICES: &[(&str, NoticeKind)] = &[
    (
        "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED",
        NoticeKind::InstanceRetirement,
    ),
    (
        "AWS_EC2_PERSISTENT_INSTANCE_RETIREMENT_SCHEDULED",
        NoticeKind::InstanceRetirement,
    ),
    (
        "AWS_EC2_INSTANCE_RETIREMENT_EXPEDITED",
        NoticeKind::InstanceRetirement,
    ),
    (
        "AWS_EC2_PERSISTENT_INSTANCE_RETIREMENT_EXPEDITED",
        NoticeKind::InstanceRetirement,
    ),
    ("AWS_EC2_INSTANCE_STOP_SCHEDULED", NoticeKind::InstanceStop),
    (
        "AWS_EC2_INSTANCE_REBOOT_MAINTENANCE_SCHEDULED",
        NoticeKind::InstanceReboot,
    ),
    (
        "AWS_EC2_INSTANCE_REBOOT_FLEXIBLE_MAINTENANCE_SCHEDULED",
        NoticeKind::InstanceReboot,
    ),
    (
        "AWS_EC2_SYSTEM_REBOOT_MAINTENANCE_SCHEDULED",
        NoticeKind::SystemReboot,
    ),
    (
        "AWS_EC2_SYSTEM_MAINTENANCE_EVENT",
        NoticeKind::SystemMaintenance,
    ),
    (
        "AWS_EC2_INSTANCE_NETWORK_MAINTENANCE_SCHEDULED",
        NoticeKind::SystemMaintenance,
    ),
    (
        "AWS_EC2_INSTANCE_POWER_MAINTENANCE_SCHEDULED",
        NoticeKind::SystemMaintenance,
    ),
    (
        "AWS_EC2_PERSISTENT_INSTANCE_POWER_MAINTENANCE_SCHEDULED",
        NoticeKind::SystemMaintenance,
    ),
];

/// Where the notice was heard, with the identifier that source gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoticeSource {
    /// An AWS Health event: its ARN and type code.
    Health { event_arn: String, code: String },
    /// `DescribeInstanceStatus`' `Events`: its `InstanceEventId`, what
    /// `ModifyInstanceEventStartTime` names.
    Status { event_id: String },
}

/// Whether the notice still stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeState {
    Scheduled,
    /// `DescribeInstanceStatus` keeps a done event a week, its description starting
    /// `[Completed]`.
    Completed,
    /// The same with `[Canceled]`.
    Canceled,
    /// AWS Health closed the event (`statusCode: closed`): done or canceled, it does not say.
    Closed,
}

impl NoticeState {
    /// From an event's `Description`, as `DescribeInstanceStatus` writes it.
    pub fn from_description(description: &str) -> NoticeState {
        let d = description.trim_start();
        if d.starts_with("[Completed]") {
            NoticeState::Completed
        } else if d.starts_with("[Canceled]") {
            NoticeState::Canceled
        } else {
            NoticeState::Scheduled
        }
    }
}

/// One scheduled change to one instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub instance_id: String,
    /// The instance's region (Health's `eventRegion` or the event's region).
    pub region: Option<String>,
    pub account: Option<String>,
    pub kind: NoticeKind,
    pub source: NoticeSource,
    /// The earliest start (`NotBefore`, Health's `startTime`), epoch ms.
    pub not_before_ms: Option<i64>,
    /// The latest end (`NotAfter`, Health's `endTime`), epoch ms.
    pub not_after_ms: Option<i64>,
    /// The latest start it may be moved to (`NotBeforeDeadline`); only such events can be
    /// rescheduled. AWS Health does not give it.
    pub deadline_ms: Option<i64>,
    pub state: NoticeState,
    pub description: String,
}

impl Notice {
    /// A `DescribeInstanceStatus` event of `instance_id`; `None` for a code this version
    /// does not know.
    pub fn from_status(
        instance_id: &str,
        code: &str,
        event_id: &str,
        description: &str,
        times: [Option<i64>; 3],
    ) -> Option<Notice> {
        let [not_before_ms, not_after_ms, deadline_ms] = times;
        Some(Notice {
            instance_id: instance_id.to_string(),
            region: None,
            account: None,
            kind: NoticeKind::from_code(code)?,
            source: NoticeSource::Status {
                event_id: event_id.to_string(),
            },
            not_before_ms,
            not_after_ms,
            deadline_ms,
            state: NoticeState::from_description(description),
            description: description.to_string(),
        })
    }

    /// The `InstanceEventId` to reschedule it by, when heard from `DescribeInstanceStatus`.
    pub fn event_id(&self) -> Option<&str> {
        match &self.source {
            NoticeSource::Status { event_id } => Some(event_id),
            NoticeSource::Health { .. } => None,
        }
    }
}

/// One of EC2's instance event windows (`DescribeInstanceEventWindows`): when the owner lets
/// EC2 schedule its events, and what it is associated with.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EventWindow {
    pub id: String,
    pub name: Option<String>,
    /// Weekly ranges, UTC: (start day, start hour, end day, end hour), days 0 = Monday.
    pub ranges: Vec<(u8, i64, u8, i64)>,
    /// A cron expression instead of ranges.
    pub cron: Option<String>,
    /// The instances it is associated with by id.
    pub instance_ids: Vec<String>,
    /// The tags (key, value) that associate an instance carrying one of them.
    pub tags: Vec<(String, String)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_health_codes_name_a_kind() {
        for k in NoticeKind::ALL {
            assert_eq!(NoticeKind::from_code(k.code()), Some(k));
        }
        assert_eq!(NoticeKind::from_code("instance-explode"), None);
        for k in NoticeKind::ALL {
            assert!(
                HEALTH_NOTICES.iter().any(|(_, kind)| *kind == k),
                "{k:?} has a Health code"
            );
        }
    }

    #[test]
    fn a_status_event_and_its_state_from_the_description() {
        let table = [
            (
                "The instance is running on degraded hardware",
                NoticeState::Scheduled,
            ),
            (
                "[Completed] The instance is running on degraded hardware",
                NoticeState::Completed,
            ),
            ("[Canceled] Scheduled reboot", NoticeState::Canceled),
            ("  [Completed] leading space", NoticeState::Completed),
            ("completed later [Completed]", NoticeState::Scheduled),
        ];
        for (description, state) in table {
            let n = Notice::from_status(
                "i-1",
                "system-reboot",
                "instance-event-0d59937288b749b32",
                description,
                [Some(1), Some(2), None],
            )
            .unwrap();
            assert_eq!(n.state, state, "{description}");
            assert_eq!(n.kind, NoticeKind::SystemReboot);
            assert_eq!(n.event_id(), Some("instance-event-0d59937288b749b32"));
            assert_eq!(
                (n.not_before_ms, n.not_after_ms, n.deadline_ms),
                (Some(1), Some(2), None)
            );
        }
        assert!(Notice::from_status("i-1", "unknown", "e", "", [None; 3]).is_none());
    }
}
