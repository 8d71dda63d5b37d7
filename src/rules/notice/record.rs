//! What autoheal keeps of a notice (`Recorded`: one ledger item per notice, written once)
//! and what it tells people of it: one message per notice when first heard, or one summary
//! when many are heard at once; and `autoheal-admin upcoming`'s table. Pure: the time is an
//! argument.

use super::plan::{NoticePlan, Step};
use super::{Notice, NoticeSource, NoticeState};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// More new notices than this heard in one invocation are told in one summary.
pub const TOLD_ONE_BY_ONE: usize = 5;

/// A recorded notice stays in the ledger this long after its end (DynamoDB's TTL).
pub const KEPT_AFTER_END_SECONDS: i64 = 30 * 24 * 3600;

/// `state` of a notice that still stands.
pub const SCHEDULED: &str = "scheduled";
/// `state` of a notice EC2 completed or canceled, or AWS Health closed.
pub const CLOSED: &str = "closed";

/// One notice as the ledger keeps it. Also the stored form: its fields are the item's
/// attributes (`ledger::notice`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recorded {
    /// `key`: what makes the same notice heard twice — from Health and from the tick, or
    /// delivered twice — one record.
    pub key: String,
    pub region: String,
    pub instance_id: String,
    /// `DescribeInstanceStatus`' code of what EC2 will do.
    pub kind: String,
    /// Where it was first heard: `AWS Health <type code>` or `DescribeInstanceStatus`.
    pub heard_from: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_after_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_ms: Option<i64>,
    /// The plan's steps, said.
    #[serde(default)]
    pub steps: Vec<String>,
    /// The window that applies and where it comes from, or why its text is no window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<String>,
    #[serde(default)]
    pub dry_run: bool,
    /// `scheduled` or `closed`.
    pub state: String,
    pub heard_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_why: Option<String>,
    /// The plan's steps as data: what the tick carries out at their time (a record
    /// written before they were kept has none: it is only told).
    #[serde(default)]
    pub plan: Vec<Step>,
    /// How many of `plan`'s steps are behind: carried out, said instead, or failed.
    #[serde(default)]
    pub done: usize,
    /// The step under way, if one is (`rules::notice::act`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acting: Option<Acting>,
    /// Bumped by every write of the acting state: each write is conditional on it, so two
    /// invocations never take the same step.
    #[serde(default)]
    pub act_version: i64,
    /// What became of each step acted on, said, oldest first.
    #[serde(default)]
    pub acted: Vec<String>,
}

/// A step under way: which (`plan`'s index), how far (`act::STOPPING`, …), since when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acting {
    pub step: usize,
    pub phase: String,
    pub since_ms: i64,
    /// When the step was begun (its first phase).
    pub begun_ms: i64,
    /// A retirement's image taken before its stop: the name recorded before the call (what
    /// finds it after a crash), then its id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_id: Option<String>,
}

/// The notice's key in `region`: `<region>/<instance>#<code>#<start>` — EC2's start time
/// (`NotBefore`, Health's `startTime`) is what both sources give, so the same event heard
/// from each is one notice; without a start, the event's id or ARN.
pub fn key(region: &str, n: &Notice) -> String {
    let when = match (n.not_before_ms, &n.source) {
        (Some(ms), _) => rfc(ms),
        (None, NoticeSource::Status { event_id }) => format!("event:{event_id}"),
        (None, NoticeSource::Health { event_arn, .. }) => format!("health:{event_arn}"),
    };
    format!("{region}/{}#{}#{when}", n.instance_id, n.kind.code())
}

/// The record of a notice first heard at `now_ms`, with its plan and window.
pub fn record(
    region: &str,
    n: &Notice,
    plan: &NoticePlan,
    window: Option<String>,
    now_ms: i64,
) -> Recorded {
    let (heard_from, event_id, event_arn) = match &n.source {
        NoticeSource::Health { event_arn, code } => {
            (format!("AWS Health {code}"), None, Some(event_arn.clone()))
        }
        NoticeSource::Status { event_id } => (
            "DescribeInstanceStatus".to_string(),
            Some(event_id.clone()),
            None,
        ),
    };
    Recorded {
        key: key(region, n),
        region: region.to_string(),
        instance_id: n.instance_id.clone(),
        kind: n.kind.code().to_string(),
        heard_from,
        event_id,
        event_arn: event_arn.filter(|a| !a.is_empty()),
        not_before_ms: n.not_before_ms,
        not_after_ms: n.not_after_ms,
        deadline_ms: n.deadline_ms,
        steps: plan.steps.iter().map(said).collect(),
        window,
        dry_run: plan.dry_run,
        state: SCHEDULED.to_string(),
        heard_ms: now_ms,
        closed_ms: None,
        closed_why: None,
        plan: plan.steps.clone(),
        done: 0,
        acting: None,
        act_version: 0,
        acted: vec![],
    }
}

/// When DynamoDB's TTL removes the record (epoch seconds): a while after the notice's end
/// (its start, or when it was heard, when EC2 gave no end).
pub fn expires_at(r: &Recorded) -> i64 {
    let end = r.not_after_ms.or(r.not_before_ms).unwrap_or(r.heard_ms);
    end.max(r.heard_ms) / 1000 + KEPT_AFTER_END_SECONDS
}

impl Recorded {
    /// Whether its plan leaves the instance alone (`Nothing` only).
    pub fn plans_nothing(&self) -> bool {
        self.steps.iter().all(|s| s.starts_with(NOTHING))
    }

    /// Whether its plan only tells people (`Warn`, `Report`: a risky kernel, an
    /// instance-store root, …): the tick has no step of it to carry out. (A record written
    /// before plans were kept as data has none: not judged so.)
    pub fn only_tells(&self) -> bool {
        !self.plan.is_empty() && !self.plans_nothing() && !self.plan.iter().any(Step::acts)
    }
}

/// How a `Nothing` step is said.
const NOTHING: &str = "nothing: ";

/// One step, said for people.
pub fn said(step: &Step) -> String {
    match step {
        Step::ReplaceMember { at_ms } => {
            format!(
                "mark it Unhealthy at {} for its group to replace it",
                date(*at_ms)
            )
        }
        Step::StopStart { at_ms, image_first } => format!(
            "stop and start it at {}{}",
            date(*at_ms),
            match image_first {
                true => ", imaged without reboot first",
                false => "",
            }
        ),
        Step::Relaunch { at_ms } => format!("image it and launch a copy at {}", date(*at_ms)),
        Step::Reschedule { event_id, to_ms } => {
            format!("move event {event_id} to start at {}", date(*to_ms))
        }
        Step::Warn { finding } => format!("warn: {finding}"),
        Step::Report { why } => format!("tell people: {why}"),
        Step::Nothing { why } => format!("{NOTHING}{why}"),
    }
}

/// The outcome's reason for a notice first heard and recorded.
pub fn reason(r: &Recorded) -> String {
    let plan = match (r.plans_nothing(), r.only_tells()) {
        (true, _) => format!("autoheal will do nothing ({})", plain_steps(r)),
        (false, true) => format!(
            "planned ({}); for people: autoheal takes no step of its own",
            plain_steps(r)
        ),
        (false, false) => format!(
            "planned ({}); carried out by the tick at its time",
            plain_steps(r)
        ),
    };
    format!("scheduled notice recorded: {}; {plan}", heard(r))
}

fn plain_steps(r: &Recorded) -> String {
    let mut out = r.steps.join("; ");
    if r.dry_run {
        out.push_str(" (dry run: said, not taken)");
    }
    out
}

/// "EC2 will retire i-1 (web-1) in us-east-1 from … to …".
fn heard(r: &Recorded) -> String {
    let what = super::NoticeKind::from_code(&r.kind).map_or(r.kind.as_str(), |k| k.said());
    let mut out = format!("EC2 will {what} {} in {}", r.instance_id, r.region);
    if let Some(start) = r.not_before_ms {
        out += &format!(" from {}", date(start));
    }
    if let Some(end) = r.not_after_ms.filter(|e| Some(*e) != r.not_before_ms) {
        out += &format!(" to {}", date(end));
    }
    out
}

/// The message for one notice first heard: what EC2 will do and when, the window, what
/// autoheal plans (or why nothing), and that this version does not act on it yet.
pub fn message(r: &Recorded, name: Option<&str>) -> String {
    let named = name.map(|n| format!(" ({n})")).unwrap_or_default();
    let mut out = format!(
        "*Scheduled notice*: {}{named} ({}, heard from {}).",
        heard(r),
        r.kind,
        r.heard_from
    );
    if let Some(id) = &r.event_id {
        out += &format!(" EC2's event: {id}.");
    }
    out += &format!(
        "\nMaintenance window: {}.",
        r.window.as_deref().unwrap_or("none")
    );
    let nothing = r.plans_nothing();
    out += "\nautoheal's plan";
    if r.dry_run {
        out += " (dry run: said, not taken)";
    }
    out += ":";
    for (i, step) in r.steps.iter().enumerate() {
        out += &format!("\n{}. {step}", i + 1);
    }
    if r.only_tells() {
        out += "\nautoheal takes no step of its own for this notice: do by hand before EC2's date what it hands to people.";
    } else if !nothing {
        out += "\nautoheal carries out each acting step at its time (the `autoheal` tag and dry run read again then) and says when it is done; what it hands to people, do by hand before EC2's date.";
    }
    out
}

/// One message for many notices heard at once: how many of each kind from each date, and
/// where each one is.
pub fn summary(records: &[Recorded]) -> String {
    let mut counts: BTreeMap<(String, String), usize> = BTreeMap::new();
    for r in records {
        let day = r
            .not_before_ms
            .and_then(chrono::DateTime::from_timestamp_millis)
            .map(|d| d.format("%Y-%m-%d").to_string())
            .unwrap_or_else(|| "an unknown date".into());
        *counts.entry((day, r.kind.clone())).or_default() += 1;
    }
    let lines: Vec<String> = counts
        .iter()
        .map(|((day, kind), n)| format!("• {n} {kind} from {day}"))
        .collect();
    format!(
        "*Scheduled notices*: EC2 announced {} scheduled events at once, each recorded with its plan (carried out by the tick at its time):\n{}\nEach instance, its plan and its window: `autoheal-admin upcoming`.",
        records.len(),
        lines.join("\n")
    )
}

/// The notices that still stand at `now_ms`, oldest start first.
pub fn upcoming(mut records: Vec<Recorded>, now_ms: i64) -> Vec<Recorded> {
    records.retain(|r| r.state == SCHEDULED && r.not_after_ms.is_none_or(|end| end > now_ms));
    records.sort_by(|a, b| {
        (a.not_before_ms.unwrap_or(i64::MAX), &a.key)
            .cmp(&(b.not_before_ms.unwrap_or(i64::MAX), &b.key))
    });
    records
}

/// `autoheal-admin upcoming --format table`.
pub fn render_table(records: &[Recorded]) -> String {
    if records.is_empty() {
        return "no scheduled notice stands\n".into();
    }
    let mut out = String::new();
    for r in records {
        let start = r.not_before_ms.map_or("?".into(), date);
        out += &format!(
            "{start}  {:<19} {}/{}  [{}]\n",
            r.kind, r.region, r.instance_id, r.state
        );
        out += &format!("    window: {}\n", r.window.as_deref().unwrap_or("none"));
        for step in &r.steps {
            out += &format!("    - {step}\n");
        }
    }
    out
}

/// Whether a notice's state says it no longer stands.
pub fn over(n: &Notice) -> bool {
    n.state != NoticeState::Scheduled
}

fn rfc(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| format!("{ms}"))
}

fn date(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| d.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| format!("{ms} ms"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::notice::NoticeKind;

    const H: i64 = 3_600_000;
    /// Monday 2026-12-07 03:00 UTC.
    const START: i64 = 1_796_612_400_000;

    fn notice(kind: NoticeKind, source: NoticeSource, start: Option<i64>) -> Notice {
        Notice {
            instance_id: "i-1".into(),
            region: None,
            account: None,
            kind,
            source,
            not_before_ms: start,
            not_after_ms: start.map(|s| s + 2 * H),
            deadline_ms: None,
            state: NoticeState::Scheduled,
            description: String::new(),
        }
    }

    fn health() -> NoticeSource {
        NoticeSource::Health {
            event_arn: "arn:aws:health:us-east-1::event/EC2/X/1".into(),
            code: "AWS_EC2_SYSTEM_REBOOT_MAINTENANCE_SCHEDULED".into(),
        }
    }

    fn status() -> NoticeSource {
        NoticeSource::Status {
            event_id: "instance-event-1".into(),
        }
    }

    #[test]
    fn the_same_event_from_health_and_from_the_tick_is_one_key() {
        let table = [
            (
                notice(NoticeKind::SystemReboot, health(), Some(START)),
                "us-east-1/i-1#system-reboot#2026-12-07T03:00:00Z",
            ),
            (
                notice(NoticeKind::SystemReboot, status(), Some(START)),
                "us-east-1/i-1#system-reboot#2026-12-07T03:00:00Z",
            ),
            (
                notice(NoticeKind::InstanceStop, status(), Some(START)),
                "us-east-1/i-1#instance-stop#2026-12-07T03:00:00Z",
            ),
            (
                notice(NoticeKind::SystemReboot, status(), None),
                "us-east-1/i-1#system-reboot#event:instance-event-1",
            ),
            (
                notice(NoticeKind::SystemReboot, health(), None),
                "us-east-1/i-1#system-reboot#health:arn:aws:health:us-east-1::event/EC2/X/1",
            ),
        ];
        for (n, want) in table {
            assert_eq!(key("us-east-1", &n), want);
        }
    }

    fn recorded(steps: Vec<Step>, dry_run: bool) -> Recorded {
        let n = notice(NoticeKind::InstanceRetirement, status(), Some(START));
        let plan = NoticePlan { steps, dry_run };
        record(
            "us-east-1",
            &n,
            &plan,
            Some("Sun 03:00-05:00 UTC (the stack's default, AUTOHEAL_MAINTENANCE_WINDOW)".into()),
            START - 48 * H,
        )
    }

    #[test]
    fn steps_are_said_and_a_plan_of_nothing_is_told_as_such() {
        let table = [
            (
                Step::ReplaceMember { at_ms: START - H },
                "mark it Unhealthy at 2026-12-07 02:00 UTC for its group to replace it",
            ),
            (
                Step::StopStart {
                    at_ms: START - H,
                    image_first: true,
                },
                "stop and start it at 2026-12-07 02:00 UTC, imaged without reboot first",
            ),
            (
                Step::StopStart {
                    at_ms: START - H,
                    image_first: false,
                },
                "stop and start it at 2026-12-07 02:00 UTC",
            ),
            (
                Step::Relaunch { at_ms: START },
                "image it and launch a copy at 2026-12-07 03:00 UTC",
            ),
            (
                Step::Reschedule {
                    event_id: "e-1".into(),
                    to_ms: START,
                },
                "move event e-1 to start at 2026-12-07 03:00 UTC",
            ),
            (
                Step::Warn {
                    finding: "kernel".into(),
                },
                "warn: kernel",
            ),
            (Step::Report { why: "why".into() }, "tell people: why"),
            (
                Step::Nothing {
                    why: "stopped".into(),
                },
                "nothing: stopped",
            ),
        ];
        for (step, want) in table {
            assert_eq!(said(&step), want);
        }
        let acting = recorded(
            vec![Step::StopStart {
                at_ms: START - 25 * H,
                image_first: true,
            }],
            false,
        );
        assert!(!acting.plans_nothing());
        assert_eq!(acting.heard_from, "DescribeInstanceStatus");
        assert_eq!(acting.event_id.as_deref(), Some("instance-event-1"));
        assert_eq!(
            reason(&acting),
            "scheduled notice recorded: EC2 will retire i-1 in us-east-1 from 2026-12-07 03:00 UTC to 2026-12-07 05:00 UTC; planned (stop and start it at 2026-12-06 02:00 UTC, imaged without reboot first); carried out by the tick at its time"
        );
        let m = message(&acting, Some("web-1"));
        assert!(m.starts_with("*Scheduled notice*: EC2 will retire i-1 in us-east-1 from 2026-12-07 03:00 UTC to 2026-12-07 05:00 UTC (web-1) (instance-retirement, heard from DescribeInstanceStatus). EC2's event: instance-event-1."), "{m}");
        assert!(m.contains("\nMaintenance window: Sun 03:00-05:00 UTC (the stack's default, AUTOHEAL_MAINTENANCE_WINDOW)."), "{m}");
        assert!(
            m.contains("\nautoheal's plan:\n1. stop and start it at 2026-12-06 02:00 UTC"),
            "{m}"
        );
        assert!(
            m.contains("carries out each acting step at its time"),
            "{m}"
        );
        let dry = recorded(
            vec![Step::StopStart {
                at_ms: START - 25 * H,
                image_first: false,
            }],
            true,
        );
        assert!(message(&dry, None).contains("autoheal's plan (dry run: said, not taken):"));
        assert!(reason(&dry)
            .ends_with("(dry run: said, not taken)); carried out by the tick at its time"));
        let nothing = recorded(
            vec![Step::Nothing {
                why: "the instance is stopped".into(),
            }],
            false,
        );
        assert!(nothing.plans_nothing());
        assert!(reason(&nothing)
            .ends_with("; autoheal will do nothing (nothing: the instance is stopped)"));
        assert!(!message(&nothing, None).contains("carries out each acting step"));
        // Only told (a risky kernel): no step said to be carried out by the tick.
        let warned = recorded(
            vec![Step::Warn {
                finding: "kernel aki-44992845 may not come back from a reboot".into(),
            }],
            false,
        );
        assert!(warned.only_tells() && !warned.plans_nothing());
        assert!(reason(&warned).ends_with(
            "; planned (warn: kernel aki-44992845 may not come back from a reboot); for people: autoheal takes no step of its own"
        ));
        let m = message(&warned, None);
        assert!(m.ends_with("\n1. warn: kernel aki-44992845 may not come back from a reboot\nautoheal takes no step of its own for this notice: do by hand before EC2's date what it hands to people."), "{m}");
        assert!(!acting.only_tells() && !nothing.only_tells());
        let mut unkept = warned.clone();
        unkept.plan.clear();
        assert!(!unkept.only_tells(), "no plan kept: not judged");
        assert_eq!(
            expires_at(&acting),
            (START + 2 * H) / 1000 + KEPT_AFTER_END_SECONDS
        );
    }

    #[test]
    fn many_notices_are_counted_by_date_and_kind_and_upcoming_is_oldest_first() {
        let at = |id: &str, kind: NoticeKind, start: i64| {
            let mut n = notice(kind, status(), Some(start));
            n.instance_id = id.into();
            let plan = NoticePlan {
                steps: vec![],
                dry_run: false,
            };
            record("us-east-1", &n, &plan, None, START - 72 * H)
        };
        let all = vec![
            at("i-3", NoticeKind::SystemReboot, START + 24 * H),
            at("i-1", NoticeKind::SystemReboot, START),
            at("i-2", NoticeKind::SystemReboot, START + H),
            at("i-4", NoticeKind::InstanceRetirement, START),
        ];
        let text = summary(&all);
        assert!(
            text.starts_with("*Scheduled notices*: EC2 announced 4 scheduled events at once"),
            "{text}"
        );
        assert!(text.contains("\n• 1 instance-retirement from 2026-12-07\n• 2 system-reboot from 2026-12-07\n• 1 system-reboot from 2026-12-08\n"), "{text}");
        assert!(text.ends_with("`autoheal-admin upcoming`."), "{text}");

        let mut closed = at("i-5", NoticeKind::InstanceStop, START - 10 * H);
        closed.state = CLOSED.into();
        let past = at("i-6", NoticeKind::InstanceStop, START - 30 * H);
        let mut listed = all.clone();
        listed.extend([closed, past]);
        let order: Vec<String> = upcoming(listed, START - 24 * H)
            .iter()
            .map(|r| r.instance_id.clone())
            .collect();
        assert_eq!(order, ["i-1", "i-4", "i-2", "i-3"]);
        let table = render_table(&upcoming(all, START - 24 * H)[..1]);
        assert_eq!(table, "2026-12-07 03:00 UTC  system-reboot       us-east-1/i-1  [scheduled]\n    window: none\n");
        assert_eq!(render_table(&[]), "no scheduled notice stands\n");
    }
}
