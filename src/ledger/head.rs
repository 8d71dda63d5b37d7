//! The head's stored form: one attribute per field, the nested alarm and relaunch progress
//! flattened, enums by their wire names, timed lists as `name@epoch-ms` strings. Names,
//! types and encodings are the table's format (`tests/fixtures/ledger-items.json`): items
//! written before are read as they are.

use crate::model::outcome::{Action, Verdict};
use crate::model::progress::{Phase, Progress};
use crate::rules::incident::{AlarmContext, Head, HoldKind, Status};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
pub(super) struct StoredHead {
    instance_id: String,
    #[serde(rename = "incident")]
    incident_id: String,
    status: String,
    opened_ms: i64,
    /// Absent from items older than it: the opening time stands in.
    #[serde(skip_serializing_if = "Option::is_none")]
    alarm_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    closed_ms: Option<i64>,
    #[serde(default)]
    transitions: Vec<String>,
    #[serde(default)]
    lease_until_ms: i64,
    version: i64,
    /// Absent from items older than it: the one attempt there was.
    #[serde(default = "one")]
    attempts: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    action: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    group: Option<String>,
    #[serde(default)]
    alarm_name: String,
    #[serde(default)]
    metric: String,
    #[serde(default)]
    alarm_reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    account: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    region: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hold_until_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hold_kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hold_scope: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    rungs: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    member_steps: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    ec2_recoveries: Vec<String>,
    /// The relaunch's phase.
    #[serde(skip_serializing_if = "Option::is_none")]
    step: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    image_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    replacement_id: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    from_backup: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    image_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    launch_token: Option<String>,
    /// When each phase began.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    step_times: Vec<String>,
    /// When it was written (RFC 3339), for people reading the table; never read back.
    #[serde(skip_deserializing)]
    updated_at: String,
}

fn one() -> i64 {
    1
}

/// `(name, time)` pairs as `name@epoch-ms` strings.
fn timed<T: Copy>(pairs: &[(T, i64)], name: fn(T) -> &'static str) -> Vec<String> {
    pairs
        .iter()
        .map(|(x, t)| format!("{}@{t}", name(*x)))
        .collect()
}

/// The pairs of `timed` strings; entries that do not parse (a name no longer known) are
/// left out.
fn untimed<T>(list: &[String], parse: fn(&str) -> Option<T>) -> Vec<(T, i64)> {
    list.iter()
        .filter_map(|e| {
            let (name, t) = e.split_once('@')?;
            Some((parse(name)?, t.parse().ok()?))
        })
        .collect()
}

impl StoredHead {
    /// `h` as written at `now_secs`.
    pub(super) fn new(h: &Head, now_secs: i64) -> StoredHead {
        let p = &h.progress;
        StoredHead {
            instance_id: h.instance_id.clone(),
            incident_id: h.incident_id.clone(),
            status: h.status.as_str().into(),
            opened_ms: h.opened_ms,
            alarm_ms: Some(h.alarm_ms),
            closed_ms: h.closed_ms,
            transitions: h.transitions.clone(),
            lease_until_ms: h.lease_until_ms,
            version: h.version,
            attempts: h.attempts,
            action: h.action.map(|a| a.as_str().into()),
            result: h.result.map(|r| r.as_str().into()),
            reason: h.reason.clone(),
            group: h.group.clone(),
            alarm_name: h.alarm.alarm_name.clone(),
            metric: h.alarm.metric.clone(),
            alarm_reason: h.alarm.reason.clone(),
            account: h.alarm.account.clone(),
            region: h.alarm.region.clone(),
            hold_until_ms: h.hold_until_ms,
            hold_kind: h.hold_kind.map(|k| k.as_str().into()),
            hold_scope: h.hold_scope.clone(),
            rungs: timed(&h.rungs, |r| r.as_str()),
            member_steps: timed(&h.member_steps, |s| s.as_str()),
            ec2_recoveries: timed(&h.ec2_heard, |h| h.as_str()),
            step: p.phase.map(|ph| ph.as_str().into()),
            image_id: p.image_id.clone(),
            replacement_id: p.replacement_id.clone(),
            from_backup: p.from_backup,
            image_name: p.image_name.clone(),
            launch_token: p.launch_token.clone(),
            step_times: timed(&p.marks, |ph| ph.as_str()),
            updated_at: chrono::DateTime::from_timestamp(now_secs, 0)
                .unwrap_or_default()
                .to_rfc3339(),
        }
    }

    /// The head stored; None when its status is not one autoheal knows. Other names no
    /// longer known read as absent.
    pub(super) fn head(self) -> Option<Head> {
        Some(Head {
            status: Status::parse(&self.status)?,
            alarm_ms: self.alarm_ms.unwrap_or(self.opened_ms),
            instance_id: self.instance_id,
            incident_id: self.incident_id,
            opened_ms: self.opened_ms,
            closed_ms: self.closed_ms,
            transitions: self.transitions,
            lease_until_ms: self.lease_until_ms,
            version: self.version,
            attempts: self.attempts,
            action: self.action.as_deref().and_then(Action::parse),
            result: self.result.as_deref().and_then(Verdict::parse),
            reason: self.reason,
            group: self.group,
            alarm: AlarmContext {
                alarm_name: self.alarm_name,
                metric: self.metric,
                reason: self.alarm_reason,
                account: self.account,
                region: self.region,
            },
            member_steps: untimed(&self.member_steps, crate::rules::replacement::Step::parse),
            ec2_heard: untimed(&self.ec2_recoveries, crate::intake::Heard::parse),
            rungs: untimed(&self.rungs, crate::rules::ladder::Rung::parse),
            progress: Progress {
                phase: self.step.as_deref().and_then(Phase::parse),
                image_id: self.image_id,
                replacement_id: self.replacement_id,
                from_backup: self.from_backup,
                marks: untimed(&self.step_times, Phase::parse),
                image_name: self.image_name,
                launch_token: self.launch_token,
            },
            hold_until_ms: self.hold_until_ms,
            hold_kind: self.hold_kind.as_deref().and_then(HoldKind::parse),
            hold_scope: self.hold_scope,
        })
    }
}
