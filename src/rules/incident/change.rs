//! The changes of a taken incident: a step recorded, settled, released, held.

use super::{Head, HoldKind, Status};
use crate::intake::Heard;
use crate::model::outcome::{Outcome, Verdict};
use crate::model::progress::{clock_text, human};
use crate::rules::ladder::{Next, Power, Rung};

/// The head with its lease kept, after a step of a multi-step repair.
pub fn record_step(head: &Head) -> Head {
    let mut next = head.clone();
    next.version += 1;
    next
}

/// The head after the repair step finished (whatever its verdict).
pub fn settle(head: &Head, outcome: &Outcome) -> Head {
    let mut next = head.clone();
    next.status = Status::Settled;
    next.lease_until_ms = 0;
    next.version += 1;
    next.action = Some(outcome.action);
    next.result = Some(outcome.result);
    next.reason = Some(outcome.reason.clone());
    next.group = outcome.group.clone().or(next.group);
    // No longer held: off the tick's list (`pipeline::settle`).
    next.hold_until_ms = None;
    next.hold_kind = None;
    next.hold_scope = None;
    next
}

/// The head closed without an OK alarm: EC2 never confirmed it within its window, or
/// reports the instance healthy again after a rung.
/// Closed as of the latest alarm transition it took in, so a repeat of those is stale and
/// a later transition opens a new incident.
/// A transition's own time counts only up to `now_ms`: one dated in the future cannot push
/// the close past later alarms.
pub fn close_without_ok(head: &Head, outcome: &Outcome, now_ms: i64) -> Head {
    let mut next = settle(head, outcome);
    next.status = Status::Closed;
    let latest = head
        .transitions
        .iter()
        .filter_map(|k| k.rsplit_once('@')?.1.parse::<i64>().ok())
        .max()
        .unwrap_or(head.opened_ms);
    next.closed_ms = Some(latest.min(now_ms).max(head.opened_ms));
    next
}

/// The head given back: still repairing, lease released so that the next trigger (a
/// retry of this invocation, a later delivery, the tick) resumes it.
pub fn release(head: &Head) -> Head {
    let mut next = head.clone();
    next.lease_until_ms = 0;
    next.version += 1;
    next
}

/// The head after a transient failure: released and due for the tick at once (it is
/// listed in the open index; settling unlists it), its step not counted as tried.
pub fn retry_later(head: &Head, now_ms: i64) -> Head {
    let mut next = release(head);
    next.hold_until_ms = Some(next.hold_until_ms.map_or(now_ms, |t| t.min(now_ms)));
    next
}

/// The head held — in its grace period, unconfirmed by EC2, behind a guard or the breaker:
/// given back (no lease), to be looked at again at `until_ms`, saying why.
pub fn hold(head: &Head, until_ms: i64, kind: HoldKind, why: &str) -> Head {
    let mut next = release(head);
    next.hold_until_ms = Some(until_ms);
    next.hold_kind = Some(kind);
    next.hold_scope = None;
    next.result = Some(Verdict::Held);
    next.reason = Some(why.to_string());
    next
}

/// Whether a hold only repeats the one on record — the same kind for the same reason, or an
/// unconfirmed alarm whatever EC2 says meanwhile: told once, not every minute.
pub fn repeats_hold(head: &Head, kind: HoldKind, why: &str) -> bool {
    head.result == Some(Verdict::Held)
        && head.hold_kind == Some(kind)
        && (kind == HoldKind::Confirm || head.reason.as_deref() == Some(why))
}

/// Where an alarm EC2 does not confirm stands in its confirmation window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfirmWindow {
    /// Looked at again until then.
    Open { until_ms: i64 },
    /// Over: closed without any repair.
    Over,
}

/// The window of `window_ms` from `since_ms` (when the alarm was first held unconfirmed).
pub fn confirm_window(since_ms: i64, window_ms: i64, now_ms: i64) -> ConfirmWindow {
    match now_ms < since_ms + window_ms {
        true => ConfirmWindow::Open {
            until_ms: since_ms + window_ms,
        },
        false => ConfirmWindow::Over,
    }
}

/// A rung being started: the call it makes, and the head to record once the call is made.
#[derive(Debug, Clone, PartialEq)]
pub struct RungStart {
    pub rung: Rung,
    pub power: Option<Power>,
    /// Given back (no lease), listed for the tick until the rung's time is up (a stop: at
    /// once, to start it again when stopped), the rung counted, the reason said.
    pub next: Head,
}

/// Starts `next` (a rung, or a stopped instance's start) on `head`; None when `next`
/// starts nothing (a wait, or people's). `timeout_ms`: the rung's own timeout.
pub fn start_rung(
    head: &Head,
    next: Next,
    timeout_ms: impl Fn(Rung) -> i64,
    now_ms: i64,
) -> Option<RungStart> {
    let (rung, power, skipped) = match next {
        Next::Start { rung, skipped } => (rung, rung.power(), skipped),
        Next::StartAgain => (Rung::StopStart, Some(Power::Start), vec![]),
        Next::Wait { .. } | Next::People(..) => return None,
    };
    let timeout_ms = timeout_ms(rung);
    let (until, what) = match power {
        Some(Power::Reboot) => (now_ms + timeout_ms, "rebooted"),
        // Looked at every tick until it is stopped (or the timeout passes).
        Some(Power::Stop) => (now_ms, "stopping it to start it on a new host"),
        Some(Power::Start) => (now_ms + timeout_ms, "stopped, started again (a new host)"),
        None => (
            now_ms + timeout_ms,
            "EC2's automatic recovery applies: waiting for it",
        ),
    };
    let then = match power {
        Some(Power::Stop) => format!("started again once stopped (up to {})", human(timeout_ms)),
        _ => format!(
            "the next rung if the alarm has not cleared by {}",
            clock_text(until)
        ),
    };
    let mut reason = format!(
        "{} ({}): {what}; {then}",
        rung.as_str(),
        rung_number(head, rung)
    );
    if !skipped.is_empty() {
        reason.push_str(&format!(" (skipped: {})", skipped.join("; ")));
    }
    let after_recovery = head
        .rungs
        .last()
        .is_some_and(|(r, _)| *r == Rung::Ec2Recovery);
    if let Some(t) = head.heard(Heard::Failed).filter(|_| after_recovery) {
        reason.push_str(&format!(
            " (EC2 announced at {} that its automatic recovery failed)",
            clock_text(t)
        ));
    }
    let mut next = release(head);
    next.rungs.push((rung, now_ms));
    next.action = Some(rung.action());
    next.result = Some(Verdict::InProgress);
    next.reason = Some(reason);
    // Waiting for the rung now, no longer held: an OK is news again.
    next.hold_until_ms = Some(until);
    next.hold_kind = None;
    next.hold_scope = None;
    Some(RungStart { rung, power, next })
}

/// "rung 2" of the incident (stop-start's start counts with its stop).
fn rung_number(head: &Head, rung: Rung) -> String {
    let mut seen: Vec<Rung> = head.rungs.iter().map(|(r, _)| *r).collect();
    seen.dedup();
    let n = if seen.last() == Some(&rung) {
        seen.len()
    } else {
        seen.len() + 1
    };
    format!("rung {n}")
}

#[cfg(test)]
mod tests {
    use super::super::tests::{head, T0};
    use super::*;

    #[test]
    fn a_hold_gives_the_incident_back_with_when_and_why() {
        let taken = head(Status::Repairing, T0 + 30_000);
        let held = hold(&taken, T0 + 60_000, HoldKind::Guard, "cluster busy");
        assert_eq!(held.lease_until_ms, 0, "no lease: the tick may take it");
        assert_eq!(held.version, taken.version + 1);
        assert_eq!(held.hold_until_ms, Some(T0 + 60_000));
        assert_eq!(held.hold_kind, Some(HoldKind::Guard));
        assert_eq!(held.result, Some(Verdict::Held));
        assert_eq!(held.reason.as_deref(), Some("cluster busy"));
        assert_eq!(held.status, Status::Repairing, "a hold closes nothing");
    }

    #[test]
    fn a_hold_is_told_once_per_kind_and_reason() {
        let taken = head(Status::Repairing, T0 + 30_000);
        let held = hold(&taken, T0, HoldKind::Guard, "cluster busy");
        let unconfirmed = hold(&taken, T0, HoldKind::Confirm, "EC2 reports ok");
        // (on record, kind now, reason now, a repeat?)
        let table = [
            (&taken, HoldKind::Guard, "cluster busy", false),
            (&held, HoldKind::Guard, "cluster busy", true),
            (&held, HoldKind::Guard, "budget spent", false),
            (&held, HoldKind::Breaker, "cluster busy", false),
            (&unconfirmed, HoldKind::Confirm, "EC2 reports ok", true),
            // An unconfirmed alarm is told once whatever EC2 says meanwhile.
            (
                &unconfirmed,
                HoldKind::Confirm,
                "EC2 reports impaired",
                true,
            ),
            (&unconfirmed, HoldKind::Grace, "EC2 reports ok", false),
        ];
        for (on_record, kind, why, want) in table {
            assert_eq!(repeats_hold(on_record, kind, why), want, "{kind:?} {why}");
        }
    }

    #[test]
    fn the_confirmation_window_ends_once() {
        let table = [
            (
                T0,
                ConfirmWindow::Open {
                    until_ms: T0 + 600_000,
                },
            ),
            (
                T0 + 599_999,
                ConfirmWindow::Open {
                    until_ms: T0 + 600_000,
                },
            ),
            (T0 + 600_000, ConfirmWindow::Over),
            (T0 + 3_600_000, ConfirmWindow::Over),
        ];
        for (now, want) in table {
            assert_eq!(confirm_window(T0, 600_000, now), want, "{now}");
        }
    }

    #[test]
    fn a_transient_failure_is_due_at_once_and_keeps_an_earlier_hold() {
        let mut taken = head(Status::Repairing, T0 + 30_000);
        let retry = retry_later(&taken, T0 + 5_000);
        assert_eq!(
            (retry.lease_until_ms, retry.hold_until_ms),
            (0, Some(T0 + 5_000))
        );
        taken.hold_until_ms = Some(T0 + 1_000);
        assert_eq!(
            retry_later(&taken, T0 + 5_000).hold_until_ms,
            Some(T0 + 1_000)
        );
    }

    #[test]
    fn a_rung_starts_with_its_call_its_time_and_its_number() {
        let taken = head(Status::Repairing, T0 + 30_000);
        let timeout = |_| 600_000;
        let start = |h: &Head, next| start_rung(h, next, timeout, T0).unwrap();
        let reboot = start(
            &taken,
            Next::Start {
                rung: Rung::Reboot,
                skipped: vec!["ec2-recovery: not supported".into()],
            },
        );
        assert_eq!(
            (reboot.rung, reboot.power),
            (Rung::Reboot, Some(Power::Reboot))
        );
        assert_eq!(reboot.next.hold_until_ms, Some(T0 + 600_000));
        assert_eq!(reboot.next.rungs, vec![(Rung::Reboot, T0)]);
        assert_eq!(
            (reboot.next.lease_until_ms, reboot.next.result),
            (0, Some(Verdict::InProgress))
        );
        let why = reboot.next.reason.clone().unwrap();
        assert!(why.starts_with("reboot (rung 1): rebooted;"), "{why}");
        assert!(
            why.ends_with("(skipped: ec2-recovery: not supported)"),
            "{why}"
        );
        // A stop is looked at every tick until stopped; its start counts with it.
        let stop = start(
            &reboot.next,
            Next::Start {
                rung: Rung::StopStart,
                skipped: vec![],
            },
        );
        assert_eq!(
            (stop.power, stop.next.hold_until_ms),
            (Some(Power::Stop), Some(T0))
        );
        assert!(stop
            .next
            .reason
            .as_deref()
            .unwrap()
            .starts_with("stop-start (rung 2): stopping it"));
        let again = start(&stop.next, Next::StartAgain);
        assert_eq!(again.power, Some(Power::Start));
        assert!(again
            .next
            .reason
            .unwrap()
            .starts_with("stop-start (rung 2): stopped, started again"));
        // EC2's recovery makes no call.
        let recovery = start(
            &taken,
            Next::Start {
                rung: Rung::Ec2Recovery,
                skipped: vec![],
            },
        );
        assert_eq!(recovery.power, None);
        // Nothing to start: None, never a guess.
        assert!(start_rung(
            &taken,
            Next::People(crate::model::handover::Handover::NoRung, "no rung".into()),
            timeout,
            T0
        )
        .is_none());
        assert!(start_rung(
            &taken,
            Next::Wait {
                rung: Rung::Reboot,
                until_ms: T0
            },
            timeout,
            T0
        )
        .is_none());
    }
}
