//! Who takes an incident: an alarm, the scan, a trigger without an alarm, EC2's
//! announcement of a recovery.

use super::{incident_id, AlarmContext, Head, HoldKind, Move, Status};
use crate::intake::{Heard, Recovery, Signal};
use crate::model::outcome::{Action, Outcome, Verdict};
use crate::model::progress::Progress;
use crate::rules::ladder::Rung;
use chrono::DateTime;

/// The one transition of an incident a scheduled notice opened: this, then the notice's key.
pub const NOTICE_TRANSITION: &str = "notice:";

pub fn claim_alarm(
    current: Option<&Head>,
    signal: &Signal,
    now_ms: i64,
    lease_until_ms: i64,
) -> Move {
    let key = signal.transition_key();
    let t = signal.changed_at.timestamp_millis();
    // The event's time only identifies the transition; opening, ordering and closing use
    // autoheal's own reading of it, so no message of any date can make a later alarm stale.
    let at = crate::rules::trust::alarm_clock(t, now_ms).0;
    let fresh = || opened(current, signal, at, lease_until_ms);
    let Some(head) = current else {
        return Move::Take(fresh());
    };
    let skip = |reason: String| {
        let mut o = Outcome::new(
            Some(signal.instance_id.clone()),
            head.action.unwrap_or(Action::None),
            Verdict::Duplicate,
            reason,
        );
        o.incident = Some(head.incident_id.clone());
        o.group = head.group.clone();
        Move::Skip(o)
    };
    let resume = || Move::Take(resumed(head, &key, lease_until_ms));
    match head.status {
        // The same transition again (whatever time it claims): the incident it opened ended.
        Status::Closed if head.transitions.contains(&key) => skip(format!(
            "stale alarm: incident {} closed after this alarm changed state",
            head.incident_id
        )),
        Status::Closed if at > head.closed_ms.unwrap_or(head.opened_ms) => Move::Take(fresh()),
        Status::Closed => skip(format!(
            "stale alarm: incident {} closed after this alarm changed state",
            head.incident_id
        )),
        Status::Repairing if head.lease_until_ms > now_ms => skip(format!(
            "incident {} is being repaired by another invocation",
            head.incident_id
        )),
        Status::Repairing
            if head.transitions.contains(&key)
                && head.hold_until_ms.is_some_and(|t| t > now_ms) =>
        {
            skip(format!(
                "incident {} is held ({}); looked at again by the tick",
                head.incident_id,
                head.hold_kind
                    .map_or("a rung of its ladder under way", HoldKind::as_str)
            ))
        }
        // Marked Unhealthy: Auto Scaling replaces it; any alarm meanwhile is the same one.
        Status::Repairing if head.is_verifying() => skip(format!(
            "already handled: marked Unhealthy{}; incident {} follows its replacement",
            head.group
                .as_deref()
                .map_or(String::new(), |g| format!(" in group {g}")),
            head.incident_id
        )),
        // The last invocation failed or died before settling: pick up where it stopped.
        Status::Repairing => resume(),
        Status::Settled if head.transitions.contains(&key) => skip(format!(
            "already handled: {} {}",
            head.action.map_or("none", Action::as_str),
            head.result.map_or("?", Verdict::as_str)
        )),
        // A new transition for an incident already settled: look at the world again.
        Status::Settled => resume(),
    }
}

/// A new incident opened by `signal` at autoheal's reading of its time (`at`).
fn opened(current: Option<&Head>, signal: &Signal, at: i64, lease_until_ms: i64) -> Head {
    let opening = Opening {
        instance_id: &signal.instance_id,
        at_ms: at,
        alarm_ms: signal.changed_at.timestamp_millis(),
        transition: signal.transition_key(),
        alarm: AlarmContext::of(signal),
    };
    fresh(current, opening, lease_until_ms)
}

/// What a new incident is opened with.
struct Opening<'a> {
    instance_id: &'a str,
    /// When it opened, as autoheal measures windows from it.
    at_ms: i64,
    alarm_ms: i64,
    /// Its first transition.
    transition: String,
    alarm: AlarmContext,
}

/// A new incident, claimed until `lease_until_ms`, nothing done yet; EC2's recovery
/// attempts of the last day carry over from the head it replaces.
fn fresh(current: Option<&Head>, o: Opening, lease_until_ms: i64) -> Head {
    Head {
        instance_id: o.instance_id.to_string(),
        incident_id: incident_id(
            o.instance_id,
            DateTime::from_timestamp_millis(o.at_ms).unwrap_or_default(),
        ),
        status: Status::Repairing,
        opened_ms: o.at_ms,
        alarm_ms: o.alarm_ms,
        closed_ms: None,
        transitions: vec![o.transition],
        lease_until_ms,
        version: current.map_or(1, |h| h.version + 1),
        attempts: 1,
        action: None,
        result: None,
        reason: None,
        group: None,
        alarm: o.alarm,
        progress: Progress::default(),
        hold_until_ms: None,
        rungs: vec![],
        hold_kind: None,
        hold_scope: None,
        member_steps: vec![],
        // EC2's recovery attempts of the last day count across incidents.
        ec2_heard: current.map(|h| h.ec2_heard.clone()).unwrap_or_default(),
    }
}

/// An outcome for `instance_id` about the incident `head` is, taken by nobody.
fn skip(instance_id: &str, head: &Head, verdict: Verdict, reason: String) -> Move {
    let mut o = Outcome::new(Some(instance_id.to_string()), Action::None, verdict, reason);
    o.incident = Some(head.incident_id.clone());
    Move::Skip(o)
}

/// The incident taken up again by a new delivery: the transition kept, the lease taken.
fn resumed(head: &Head, key: &str, lease_until_ms: i64) -> Head {
    let mut next = head.clone();
    if !next.transitions.iter().any(|k| k == key) {
        next.transitions.push(key.to_string());
    }
    next.status = Status::Repairing;
    next.lease_until_ms = lease_until_ms;
    next.version += 1;
    next.attempts += 1;
    next
}

/// An instance found by the scan: an incident only where autoheal knows of none — no head,
/// or a closed one whose incident ended before this impairment began. A head settled or
/// under repair is an alarm's, or people's now: the scan never resumes it.
pub fn claim_scan(
    current: Option<&Head>,
    signal: &Signal,
    now_ms: i64,
    lease_until_ms: i64,
) -> Move {
    match current {
        Some(h) if h.status != Status::Closed => skip(
            &signal.instance_id,
            h,
            Verdict::Ignored,
            format!(
                "found by the scan, but autoheal knows it: incident {} is {}",
                h.incident_id,
                h.status.as_str()
            ),
        ),
        _ => claim_alarm(current, signal, now_ms, lease_until_ms),
    }
}

/// A scheduled notice's repair ahead of EC2, as the incident it opens.
pub struct ByNotice<'a> {
    pub instance_id: &'a str,
    pub region: &'a str,
    pub account: Option<&'a str>,
    /// The notice's key (`rules::notice::record::key`): the incident's one transition.
    pub key: &'a str,
    /// What EC2 will do and when (`instance-retirement at 2026-12-07 03:00 UTC`), for the
    /// reports' alarm line.
    pub event: &'a str,
    /// A copy (image and relaunch) rather than a member's mark: begun as the relaunch rung,
    /// so every later trigger resumes it as a relaunch (`Head::relaunch_by_notice`).
    pub copy: bool,
}

/// The incident a scheduled notice opens for its repair ahead of EC2, when autoheal has no
/// open incident for the instance (one that is open stands for the notice: it is not raced
/// for). No alarm: EC2's listed event is the cause, and the notice's step began only after
/// the tick read it.
pub fn claim_notice(
    current: Option<&Head>,
    by: &ByNotice,
    now_ms: i64,
    lease_until_ms: i64,
) -> Move {
    if let Some(h) = current.filter(|h| h.status != Status::Closed) {
        let why = format!(
            "incident {} is {} for it: its repair stands for the notice",
            h.incident_id,
            h.status.as_str()
        );
        return skip(by.instance_id, h, Verdict::Duplicate, why);
    }
    let opening = Opening {
        instance_id: by.instance_id,
        at_ms: now_ms,
        alarm_ms: now_ms,
        transition: format!("{NOTICE_TRANSITION}{}", by.key),
        alarm: AlarmContext {
            alarm_name: format!("EC2 scheduled event {}", by.event),
            metric: crate::intake::Metric::StatusCheckFailed.name().to_string(),
            reason: format!("EC2's scheduled event, notice {}", by.key),
            account: by.account.map(str::to_string),
            region: Some(by.region.to_string()),
        },
    };
    let mut head = fresh(current, opening, lease_until_ms);
    if by.copy {
        head.rungs.push((Rung::Relaunch, now_ms));
    }
    Move::Take(head)
}

/// A trigger without an alarm (the tick, an AMI or instance state change) takes a repair
/// that waits on the world and nobody holds.
pub fn claim_waiting(current: Option<&Head>, now_ms: i64, lease_until_ms: i64) -> Move {
    match current {
        Some(h) if h.is_waiting(now_ms) || h.is_behind_breaker(now_ms) => {
            let mut next = h.clone();
            next.lease_until_ms = lease_until_ms;
            next.version += 1;
            next.attempts += 1;
            Move::Take(next)
        }
        other => {
            let mut o = Outcome::new(
                other.map(|h| h.instance_id.clone()),
                Action::None,
                Verdict::Duplicate,
                "nothing waiting here (finished, held by another invocation, or still in its grace period)",
            );
            o.incident = other.map(|h| h.incident_id.clone());
            Move::Skip(o)
        }
    }
}

/// EC2 announced a recovery of the instance: kept on the head for a day (EC2 tries at most
/// three times a day), and, when the incident waits for that recovery with nobody holding
/// it, taken (leased) so the announcement is acted on at once. A repeated delivery is a
/// duplicate; an instance without a head has no incident to move.
pub fn hear(current: Option<&Head>, r: &Recovery, now_ms: i64, lease_until_ms: i64) -> Move {
    let at = r.at.timestamp_millis();
    let said = format!(
        "EC2 announced {} ({} at {})",
        match r.heard {
            Heard::Recovered => "its automatic recovery of the instance",
            Heard::Failed => "that its automatic recovery of the instance failed",
        },
        r.code,
        r.at.format("%H:%M:%SZ")
    );
    let skip = |h: Option<&Head>, verdict, why: String| {
        let mut o = Outcome::new(
            Some(r.instance_id.clone()),
            Action::None,
            verdict,
            format!("{said}; {why}"),
        );
        o.incident = h.map(|h| h.incident_id.clone());
        Move::Skip(o)
    };
    let Some(head) = current else {
        return skip(
            None,
            Verdict::Ignored,
            "autoheal has no incident for it".into(),
        );
    };
    if head.ec2_heard.iter().any(|&(h, t)| (h, t) == (r.heard, at)) {
        return skip(Some(head), Verdict::Duplicate, "already heard".into());
    }
    let mut next = head.clone();
    next.ec2_heard.retain(|(_, t)| now_ms - t < 86_400_000);
    next.ec2_heard.push((r.heard, at));
    next.version += 1;
    let on_the_rung = head.status == Status::Repairing
        && head
            .rungs
            .last()
            .is_some_and(|(rung, _)| *rung == crate::rules::ladder::Rung::Ec2Recovery);
    if on_the_rung {
        // Due now: another invocation holding it leaves it to the next tick.
        next.hold_until_ms = Some(now_ms);
        if head.lease_until_ms <= now_ms {
            next.lease_until_ms = lease_until_ms;
            next.attempts += 1;
        }
    }
    Move::Take(next)
}
