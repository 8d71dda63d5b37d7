//! How an incident ends: an OK EC2 agrees with, a rung that worked, a close without an OK.

use super::{Head, HoldKind, Move, Status};
use crate::intake::{Heard, Signal};
use crate::model::outcome::{Action, Outcome, Verdict};
use crate::model::progress::clock_text;
use crate::rules::ladder::Rung;

/// An OK alarm closes the incident only when EC2 agrees (`ec2`: None, or why not — see
/// `trust::confirm_ok`), never while another invocation holds its lease, and never in the
/// middle of a relaunch (which verifies its copy itself). Closed on autoheal's reading of the
/// OK's time, so an OK dated in the future cannot make later alarms stale.
pub fn close_on_ok(
    current: Option<&Head>,
    signal: &Signal,
    ec2: Option<&str>,
    now_ms: i64,
) -> Move {
    let t = signal.changed_at.timestamp_millis();
    let skip = |verdict, reason: String, incident: Option<&Head>| {
        let mut o = Outcome::new(
            Some(signal.instance_id.clone()),
            Action::None,
            verdict,
            reason,
        );
        o.incident = incident.map(|h| h.incident_id.clone());
        o.group = incident.and_then(|h| h.group.clone());
        // Held: an OK EC2 does not confirm; the incident goes on by itself.
        o.resumes = verdict == Verdict::Held;
        Move::Skip(o)
    };
    let Some(h) = current else {
        return skip(
            Verdict::Ignored,
            "alarm returned to OK; no incident was open".into(),
            None,
        );
    };
    match h {
        h if h.status == Status::Closed => {
            let mut o = Outcome::new(
                Some(signal.instance_id.clone()),
                Action::Verify,
                Verdict::Duplicate,
                format!("incident {} is already closed", h.incident_id),
            );
            (o.incident, o.group) = (Some(h.incident_id.clone()), None);
            Move::Skip(o)
        }
        h if t < h.alarm_ms => skip(
            Verdict::Ignored,
            format!(
                "stale OK: older than the alarm that opened incident {}",
                h.incident_id
            ),
            Some(h),
        ),
        h if h.status == Status::Repairing && h.lease_until_ms > now_ms => skip(
            Verdict::Duplicate,
            format!(
                "alarm returned to OK while incident {} is being repaired by another invocation; not interrupted (that repair looks at EC2 itself)",
                h.incident_id
            ),
            Some(h),
        ),
        // Settled, a relaunch is over whatever phase it stopped in.
        h if h.status == Status::Repairing && h.progress.under_way() => skip(
            Verdict::Ignored,
            format!(
                "alarm returned to OK during the relaunch of incident {}; the relaunch goes on and verifies its copy",
                h.incident_id
            ),
            Some(h),
        ),
        h => match ec2 {
            Some(why) => skip(
                Verdict::Held,
                format!(
                    "OK not confirmed by EC2: {why}; incident {} goes on",
                    h.incident_id
                ),
                Some(h),
            ),
            None => Move::Take(closed_at(h, crate::rules::trust::alarm_clock(t, now_ms).0)),
        },
    }
}

/// The head closed by an OK at `closed_ms` (autoheal's reading of the OK's time).
fn closed_at(h: &Head, closed_ms: i64) -> Head {
    let mut next = h.clone();
    next.status = Status::Closed;
    next.closed_ms = Some(closed_ms);
    next.lease_until_ms = 0;
    next.version += 1;
    if h.is_verifying() {
        // The mark was done; following its replacement ends with the incident.
        next.result = Some(Verdict::Done);
    }
    next
}

/// Why a rung is over when EC2 reports both checks ok after it (`checks`: what EC2 said).
pub fn recovered_after_rung(head: &Head, checks: &str) -> String {
    let last = head.rungs.last().map(|(r, _)| *r);
    let rung = last.map_or("its last rung", Rung::as_str);
    let announced = match last {
        Some(Rung::Ec2Recovery) => head
            .heard(Heard::Recovered)
            .map(|t| format!(" (EC2 announced its recovery at {})", clock_text(t)))
            .unwrap_or_default(),
        _ => String::new(),
    };
    format!("recovered after {rung}{announced}: {checks}; incident closed")
}

/// What an OK that closed the incident says, and whether the incident leaves the tick's
/// list now (it was held, climbing, or following a replacement) rather than at its next run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClosedByOk {
    pub reason: String,
    pub unlist: bool,
}

/// `head`: as closed by `close_on_ok`, with what it was doing before.
pub fn closed_by_ok(head: &Head) -> ClosedByOk {
    let listed = |reason: String| ClosedByOk {
        reason,
        unlist: true,
    };
    if head.is_held() {
        return listed(match head.hold_kind {
            Some(HoldKind::Confirm) => "the alarm returned to OK; EC2 never confirmed the failure and nothing was done",
            Some(HoldKind::Guard | HoldKind::Breaker) => "recovered by itself while its repair waited; nothing was done",
            Some(HoldKind::Grace) | None => "recovered by itself: the alarm returned to OK during the grace period; nothing was done",
        }
        .to_string());
    }
    if let (Some((rung, _)), None) = (head.rungs.last(), head.progress.phase) {
        return listed(format!(
            "recovered after {}: the status check alarm returned to OK; incident closed",
            rung.as_str()
        ));
    }
    if head.action == Some(Action::MarkUnhealthy) && !head.member_steps.is_empty() {
        return listed("status check alarm returned to OK; incident closed after mark_unhealthy done (its replacement no longer followed)".to_string());
    }
    ClosedByOk {
        reason: format!(
            "status check alarm returned to OK; incident closed after {}",
            match (head.action, head.result) {
                (Some(a), Some(r)) => format!("{} {}", a.as_str(), r.as_str()),
                _ => "no action".to_string(),
            }
        ),
        unlist: false,
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{head, T0};
    use super::*;
    use crate::model::progress::Phase;

    #[test]
    fn an_ok_says_what_it_closed_and_whether_the_tick_lets_go() {
        let base = head(Status::Closed, 0);
        let held = |kind| Head {
            hold_until_ms: Some(T0),
            hold_kind: Some(kind),
            result: Some(Verdict::Held),
            action: None,
            ..base.clone()
        };
        let climbed = Head {
            rungs: vec![(Rung::Reboot, T0)],
            ..base.clone()
        };
        let mut relaunching = climbed.clone();
        relaunching.progress.phase = Some(Phase::Imaging);
        let following = Head {
            member_steps: vec![(crate::rules::replacement::Step::Marked, T0)],
            ..base.clone()
        };
        // (head, reason starts with, unlisted now)
        let table = [
            (held(HoldKind::Confirm), "the alarm returned to OK; EC2 never confirmed", true),
            (held(HoldKind::Guard), "recovered by itself while its repair waited", true),
            (held(HoldKind::Breaker), "recovered by itself while its repair waited", true),
            (held(HoldKind::Grace), "recovered by itself: the alarm returned to OK during the grace", true),
            (climbed, "recovered after reboot", true),
            (following, "status check alarm returned to OK; incident closed after mark_unhealthy done (its replacement", true),
            (relaunching, "status check alarm returned to OK; incident closed after mark_unhealthy done", false),
            (base.clone(), "status check alarm returned to OK; incident closed after mark_unhealthy done", false),
        ];
        for (h, reason, unlist) in table {
            let c = closed_by_ok(&h);
            assert!(c.reason.starts_with(reason), "{} vs {reason}", c.reason);
            assert_eq!(c.unlist, unlist, "{reason}");
        }
    }

    #[test]
    fn a_rung_that_worked_is_named_with_what_ec2_announced() {
        let mut h = head(Status::Repairing, 0);
        assert!(recovered_after_rung(&h, "both checks ok")
            .starts_with("recovered after its last rung: both checks ok"));
        h.rungs.push((Rung::StopStart, T0));
        assert_eq!(
            recovered_after_rung(&h, "both checks ok"),
            "recovered after stop-start: both checks ok; incident closed"
        );
        h.rungs.push((Rung::Ec2Recovery, T0));
        h.ec2_heard.push((Heard::Recovered, T0 + 1_000));
        assert!(recovered_after_rung(&h, "ok").contains("(EC2 announced its recovery at "));
    }
}
