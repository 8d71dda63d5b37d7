//! What an event says, once parsed: an alarm's `Signal`, EC2's `Recovery`, EC2's scheduled
//! `Notice`s, a `Trigger` without an alarm, an operator's resume, or `Ignored`.

use chrono::{DateTime, Utc};
use serde::Serialize;

/// Larger payloads are refused unread. SNS messages are at most 256 KiB; an SNS event
/// carrying one, escaped, stays well under this.
pub const MAX_PAYLOAD_BYTES: usize = 512 * 1024;

/// Records of one event handled; those after are `ignored`. SNS delivers one record per
/// invocation, so an event with more was made by hand or forged. The records run at once,
/// each with its AWS calls and Slack post, in one invocation of 128 MB and 30 s: 100 is
/// far above any delivery and bounds what one such event can start (512 KiB holds
/// hundreds).
pub const MAX_RECORDS: usize = 100;

/// What the signal of an instance found by the scan is named, in reports and the ledger.
pub const SCAN_ALARM: &str = "found by the scan";

/// An EventBridge event that moves relaunches on (it carries no alarm).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The schedule's tick: also the scan, the backups and the re-sends.
    Tick,
    ImageStateChange,
    InstanceStateChange,
}

impl Trigger {
    pub const ALL: [Trigger; 3] = [
        Trigger::Tick,
        Trigger::ImageStateChange,
        Trigger::InstanceStateChange,
    ];

    /// The event's `detail-type`.
    pub fn detail_type(self) -> &'static str {
        match self {
            Trigger::Tick => "Scheduled Event",
            Trigger::ImageStateChange => "EC2 AMI State Change",
            Trigger::InstanceStateChange => "EC2 Instance State-change Notification",
        }
    }

    pub fn parse(detail_type: &str) -> Option<Trigger> {
        Trigger::ALL
            .into_iter()
            .find(|t| t.detail_type() == detail_type)
    }
}

impl std::fmt::Display for Trigger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.detail_type())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Metric {
    StatusCheckFailed,
    StatusCheckFailedSystem,
    StatusCheckFailedInstance,
    StatusCheckFailedAttachedEbs,
}

impl Metric {
    pub fn from_name(name: &str) -> Option<Metric> {
        Some(match name {
            "StatusCheckFailed" => Metric::StatusCheckFailed,
            "StatusCheckFailed_System" => Metric::StatusCheckFailedSystem,
            "StatusCheckFailed_Instance" => Metric::StatusCheckFailedInstance,
            "StatusCheckFailed_AttachedEBS" => Metric::StatusCheckFailedAttachedEbs,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Metric::StatusCheckFailed => "StatusCheckFailed",
            Metric::StatusCheckFailedSystem => "StatusCheckFailed_System",
            Metric::StatusCheckFailedInstance => "StatusCheckFailed_Instance",
            Metric::StatusCheckFailedAttachedEbs => "StatusCheckFailed_AttachedEBS",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlarmState {
    Alarm,
    Ok,
    InsufficientData,
}

impl AlarmState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlarmState::Alarm => "ALARM",
            AlarmState::Ok => "OK",
            AlarmState::InsufficientData => "INSUFFICIENT_DATA",
        }
    }
}

/// One alarm transition about one instance, whatever shape it arrived in.
#[derive(Debug, Clone, PartialEq)]
pub struct Signal {
    pub instance_id: String,
    pub metric: Metric,
    pub state: AlarmState,
    pub changed_at: DateTime<Utc>,
    pub alarm_name: String,
    pub alarm_arn: Option<String>,
    /// Opened by a scheduled notice's repair ahead of EC2, not by an alarm
    /// (`Head::by_notice`): reports name the notice as the cause, with no alarm to link.
    pub by_notice: bool,
    /// From the alarm ARN, never from the display field `Region`.
    pub region: Option<String>,
    pub account: Option<String>,
    pub reason: String,
}

impl Signal {
    /// The instance's region: the alarm's (set from the function's own by the handler when
    /// the ARN has none, before anything acts on it).
    pub fn region(&self) -> &str {
        self.region.as_deref().unwrap_or_default()
    }

    /// The ledger's name for the instance (`model::keys::key`).
    pub fn key(&self) -> String {
        crate::model::keys::key(self.region(), &self.instance_id)
    }

    /// Made by the tick's scan (`scan::signals`), not by an alarm: no ARN, the scan's name.
    pub fn found_by_scan(&self) -> bool {
        self.alarm_arn.is_none() && self.alarm_name == SCAN_ALARM
    }

    /// Identifies this transition: the same alarm changing state at the same time.
    pub fn transition_key(&self) -> String {
        format!("{}@{}", self.alarm_name, self.changed_at.timestamp_millis())
    }
}

/// What EC2 announced of its own automatic recovery of an instance (AWS Health).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heard {
    Recovered,
    Failed,
}

impl Heard {
    pub fn as_str(self) -> &'static str {
        match self {
            Heard::Recovered => "recovered",
            Heard::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Heard> {
        [Heard::Recovered, Heard::Failed]
            .into_iter()
            .find(|h| h.as_str() == s)
    }
}

/// The AWS Health event types of EC2's automatic recovery, and what each says.
pub const RECOVERY_EVENTS: &[(&str, Heard)] = &[
    ("AWS_EC2_SIMPLIFIED_AUTO_RECOVERY_SUCCESS", Heard::Recovered),
    ("AWS_EC2_SIMPLIFIED_AUTO_RECOVERY_FAILURE", Heard::Failed),
    ("AWS_EC2_INSTANCE_AUTO_RECOVERY_SUCCESS", Heard::Recovered),
    ("AWS_EC2_INSTANCE_AUTO_RECOVERY_FAILURE", Heard::Failed),
];

/// EC2 announced a recovery of one instance (an AWS Health event through EventBridge).
#[derive(Debug, Clone, PartialEq)]
pub struct Recovery {
    pub instance_id: String,
    /// The event's region: AWS Health events for EC2 are regional.
    pub region: Option<String>,
    /// The event's account.
    pub account: Option<String>,
    pub heard: Heard,
    /// The event type code, for the report.
    pub code: String,
    /// The event's time: what identifies a repeated delivery.
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Intake {
    Signal(Signal),
    Recovery(Recovery),
    /// Not an alarm but a reason to look at relaunches in progress: an AMI or instance
    /// state change, or the scheduled tick.
    Advance {
        trigger: Trigger,
    },
    Ignored {
        instance_id: Option<String>,
        reason: String,
    },
    /// EC2's scheduled changes announced by AWS Health (`notice::notices`): one notice per
    /// instance the event names, each recorded once and told once (`pipeline::notice`).
    Notice(Vec<crate::model::notice::Notice>),
    /// An operator closes a breaker (`{"autoheal": "resume", "scope": "group:web"}`).
    Resume {
        /// A group or a cluster; without a region, the function's own.
        scope: crate::model::scope::ScopeKey,
    },
}
