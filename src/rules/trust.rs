//! What autoheal believes of an event, pure: an alarm is a hint, confirmed by the status
//! EC2 reports before any repair, and its state-change time is a clock only when plausible.

use crate::intake::Metric;
use crate::model::facts::{Check, Checks, Facts};

/// An alarm stamped earlier than this before it arrived is late (or redriven, or forged):
/// its time identifies the transition but measures nothing.
pub const MAX_AGE_MS: i64 = 15 * 60_000;
/// ... and one stamped later than this after it arrived is from a clock that is off.
pub const MAX_AHEAD_MS: i64 = 60_000;

/// The time windows are measured from: the alarm's own state-change time when it lies in
/// [received − 15 min, received + 1 min], else the time it was received. `true`: trusted.
pub fn alarm_clock(event_ms: i64, received_ms: i64) -> (i64, bool) {
    if event_ms >= received_ms - MAX_AGE_MS && event_ms <= received_ms + MAX_AHEAD_MS {
        (event_ms, true)
    } else {
        (received_ms, false)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirmation {
    /// EC2 reports the check the alarm is about impaired: act.
    Confirmed(String),
    /// Not (yet) impaired as EC2 reports it: do not act on the alarm alone.
    Unconfirmed(String),
}

/// Whether EC2 confirms the failure the alarm is about: the system check for
/// `_System`, the instance check for `_Instance`, either for the combined metric.
/// `insufficient-data` and `initializing` are not a confirmation.
pub fn confirm(metric: Metric, checks: Checks) -> Confirmation {
    let impaired = match metric {
        Metric::StatusCheckFailedSystem => checks.system == Check::Impaired,
        Metric::StatusCheckFailedInstance => checks.instance == Check::Impaired,
        Metric::StatusCheckFailed => {
            checks.system == Check::Impaired || checks.instance == Check::Impaired
        }
        // Report-only metric: nothing to confirm a repair by.
        Metric::StatusCheckFailedAttachedEbs => false,
    };
    if impaired {
        Confirmation::Confirmed(checks.said())
    } else {
        Confirmation::Unconfirmed(format!("{}: not acting on the alarm alone", checks.said()))
    }
}

/// Whether EC2 agrees with an OK alarm: None when the check the incident is about reports
/// ok (both, for the combined metric) or the instance is gone; else what EC2 reports.
/// An OK is a claim like an ALARM: on its own it closes nothing.
pub fn confirm_ok(metric: Metric, facts: &Facts) -> Option<String> {
    let Some(instance) = &facts.instance else {
        return None;
    };
    if matches!(instance.state.as_str(), "terminated" | "shutting-down") {
        return None;
    }
    let checks = facts.checks;
    let ok = match metric {
        Metric::StatusCheckFailedSystem => checks.system == Check::Ok,
        Metric::StatusCheckFailedInstance => checks.instance == Check::Ok,
        Metric::StatusCheckFailed => checks.both_ok(),
        // Report-only metric: its incident changed nothing to undo.
        Metric::StatusCheckFailedAttachedEbs => true,
    };
    (!ok).then(|| checks.said())
}

/// After a rung timed out, whether the next may start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterRung {
    /// EC2 reports both checks ok: the rung worked.
    Recovered,
    /// A check is impaired, or the instance hangs in the stop a rung asked for (no status
    /// is reported then): the next rung.
    StillFailing,
    /// Neither (e.g. still `initializing` after a reboot): look again, as for an alarm EC2
    /// has not confirmed yet.
    NotYet(String),
}

/// `state`: the instance's EC2 state name.
pub fn after_rung(metric: Metric, checks: Checks, state: &str) -> AfterRung {
    if checks.both_ok() {
        return AfterRung::Recovered;
    }
    let hung_in_stop = matches!(state, "stopping" | "stopped");
    match confirm(metric, checks) {
        Confirmation::Confirmed(_) => AfterRung::StillFailing,
        _ if hung_in_stop || checks.any_impaired() => AfterRung::StillFailing,
        Confirmation::Unconfirmed(why) => AfterRung::NotYet(why),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Check::*;

    #[test]
    fn confirm_table() {
        // (metric, system, instance, confirmed)
        let table = [
            (Metric::StatusCheckFailed, Ok, Ok, false),
            (Metric::StatusCheckFailed, Impaired, Ok, true),
            (Metric::StatusCheckFailed, Ok, Impaired, true),
            (
                Metric::StatusCheckFailed,
                InsufficientData,
                InsufficientData,
                false,
            ),
            (Metric::StatusCheckFailed, Initializing, Ok, false),
            (Metric::StatusCheckFailedSystem, Impaired, Ok, true),
            (Metric::StatusCheckFailedSystem, Ok, Impaired, false),
            (Metric::StatusCheckFailedInstance, Ok, Impaired, true),
            (Metric::StatusCheckFailedInstance, Impaired, Ok, false),
            (
                Metric::StatusCheckFailedInstance,
                Ok,
                InsufficientData,
                false,
            ),
            (
                Metric::StatusCheckFailed,
                NotApplicable,
                NotApplicable,
                false,
            ),
            (Metric::StatusCheckFailed, Unknown, Unknown, false),
            (
                Metric::StatusCheckFailedAttachedEbs,
                Impaired,
                Impaired,
                false,
            ),
        ];
        for (metric, system, instance, want) in table {
            let got = confirm(metric, Checks { system, instance });
            assert_eq!(
                matches!(got, Confirmation::Confirmed(_)),
                want,
                "{metric:?} {system:?} {instance:?}: {got:?}"
            );
        }
        assert_eq!(
            confirm(
                Metric::StatusCheckFailed,
                Checks {
                    system: Ok,
                    instance: Ok
                }
            ),
            Confirmation::Unconfirmed(
                "EC2 reports both status checks ok: not acting on the alarm alone".into()
            )
        );
        assert_eq!(
            confirm(
                Metric::StatusCheckFailedSystem,
                Checks {
                    system: Impaired,
                    instance: Ok
                }
            ),
            Confirmation::Confirmed(
                "EC2 reports the system check impaired, the instance check ok".into()
            )
        );
    }

    #[test]
    fn after_rung_table() {
        let m = Metric::StatusCheckFailedSystem;
        let checks = |system, instance| Checks { system, instance };
        // (checks, state, expected)
        let table = [
            (checks(Ok, Ok), "running", "recovered"),
            (checks(Impaired, Ok), "running", "still failing"),
            // The other check impaired now: still failing, whatever the alarm was about.
            (checks(Ok, Impaired), "running", "still failing"),
            // Hangs in the stop a rung asked for: no status reported, still failing.
            (
                checks(NotApplicable, NotApplicable),
                "stopping",
                "still failing",
            ),
            (
                checks(NotApplicable, NotApplicable),
                "stopped",
                "still failing",
            ),
            (checks(Initializing, Initializing), "running", "not yet"),
            (checks(InsufficientData, Ok), "running", "not yet"),
        ];
        for (c, state, want) in table {
            let got = match after_rung(m, c, state) {
                AfterRung::Recovered => "recovered",
                AfterRung::StillFailing => "still failing",
                AfterRung::NotYet(_) => "not yet",
            };
            assert_eq!(got, want, "{c:?} {state}");
        }
    }

    #[test]
    fn the_alarm_clock_is_trusted_only_when_plausible() {
        let now = 1_800_000_000_000;
        let min = 60_000;
        // (event time relative to now, trusted)
        for (rel, trusted) in [
            (0, true),
            (-14 * min, true),
            (-15 * min, true),
            (-15 * min - 1, false),
            (-11 * 24 * 60 * min, false),
            (min, true),
            (min + 1, false),
            (365 * 24 * 60 * min, false),
        ] {
            let (at, ok) = alarm_clock(now + rel, now);
            assert_eq!(ok, trusted, "{rel}");
            assert_eq!(at, if trusted { now + rel } else { now }, "{rel}");
        }
    }
}
