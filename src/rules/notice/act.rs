//! A recorded notice's plan carried out, pure: which step is due at a time, how a
//! stop/start under way moves on from what is observed (stopped: start it; started, EC2's
//! event gone and both checks ok: verified; neither within the ladder's stop/start
//! timeout: to people, with EC2's date), and what is said of each. The shell
//! (`pipeline::tick::notice_steps`) reads the world, writes the record first (conditional
//! on its version), then makes the one mutating call.

use super::plan::Step;
use super::record::{Acting, Recorded, SCHEDULED};

/// A stop requested, not yet stopped.
pub const STOPPING: &str = "stopping";
/// A start requested after the stop: waiting for the event to be gone and the checks ok.
pub const STARTING: &str = "starting";
/// `ModifyInstanceEventStartTime` about to be asked.
pub const RESCHEDULING: &str = "rescheduling";
/// `SetInstanceHealth Unhealthy` about to be asked.
pub const MARKING: &str = "marking";

/// When an acting step is due: its time; a reschedule at once (it moves the event, at the
/// time it names). None: not an acting step.
pub fn at_ms(step: &Step) -> Option<i64> {
    match step {
        Step::ReplaceMember { at_ms }
        | Step::StopStart { at_ms, .. }
        | Step::Relaunch { at_ms } => Some(*at_ms),
        Step::Reschedule { .. } => Some(i64::MIN),
        _ => None,
    }
}

/// What the tick does with a recorded notice now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Closed, every step behind, or the next acting step not due yet.
    Wait,
    /// Begin `plan[index]`: its time has come.
    Begin(usize, Step),
    /// A step under way: look at the instance.
    Follow(Acting),
}

/// The first step of the plan not behind that acts (what is only said was said when the
/// notice was heard), when due at `now_ms`.
pub fn next(r: &Recorded, now_ms: i64) -> Next {
    if r.state != SCHEDULED {
        return Next::Wait;
    }
    if let Some(a) = &r.acting {
        return Next::Follow(a.clone());
    }
    let mut ahead = r.plan.iter().enumerate().skip(r.done);
    match ahead.find(|(_, s)| s.acts()) {
        Some((i, s)) if at_ms(s).is_some_and(|at| at <= now_ms) => Next::Begin(i, s.clone()),
        _ => Next::Wait,
    }
}

/// How a stop/start under way goes on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// Stopped: start it.
    Start,
    /// Started, running, the event gone, both checks ok.
    Verified,
    /// Not yet: the next tick looks again.
    Wait,
    /// Not within the timeout: to people, saying why.
    TimedOut(String),
}

/// What is observed of the instance of a stop/start under way.
pub struct Seen<'a> {
    /// EC2's state name; None: EC2 does not know the instance.
    pub state: Option<&'a str>,
    pub checks_ok: bool,
    /// Whether `DescribeInstanceStatus` still lists the event standing; None: not read.
    pub event_listed: Option<bool>,
}

pub fn progress(a: &Acting, seen: &Seen, timeout_ms: i64, now_ms: i64) -> Progress {
    let late = now_ms >= a.since_ms + timeout_ms;
    let minutes = timeout_ms / 60_000;
    match (a.phase.as_str(), seen.state) {
        (_, None) => Progress::TimedOut("EC2 no longer knows the instance".into()),
        (STOPPING, Some("stopped")) => Progress::Start,
        (STOPPING, Some(state)) if late => Progress::TimedOut(format!(
            "the stop did not complete within {minutes} min (the instance is {state})"
        )),
        (STARTING, Some("running")) if seen.checks_ok && seen.event_listed == Some(false) => {
            Progress::Verified
        }
        // Whether the event is gone unknown (its region not read this tick): not judged.
        (STARTING, Some(state)) if late && seen.event_listed.is_some() => Progress::TimedOut(format!(
            "started {minutes} min ago, not verified: the instance is {state}, {}, EC2's event {}",
            match seen.checks_ok {
                true => "both checks ok",
                false => "its checks not both ok",
            },
            match seen.event_listed {
                Some(true) => "still listed",
                Some(false) => "gone",
                None => "not read",
            }
        )),
        // A call recorded as about to be made, its answer never recorded (the invocation
        // ended): whether it was made is not known.
        (RESCHEDULING | MARKING, _) if late => Progress::TimedOut(format!(
            "begun, its answer not recorded (the invocation ended): whether EC2 or Auto Scaling took the call is not known; {}",
            "look at the instance"
        )),
        _ => Progress::Wait,
    }
}

/// The record with `step` begun at `now_ms` in `phase` (the version bumped).
pub fn begun(r: &Recorded, step: usize, phase: &str, now_ms: i64) -> Recorded {
    let mut out = r.clone();
    out.acting = Some(Acting {
        step,
        phase: phase.to_string(),
        since_ms: now_ms,
        begun_ms: now_ms,
    });
    out.act_version += 1;
    out
}

/// The record with its step under way moved to `phase` at `now_ms`.
pub fn moved(r: &Recorded, phase: &str, now_ms: i64) -> Recorded {
    let mut out = r.clone();
    if let Some(a) = out.acting.as_mut() {
        a.phase = phase.to_string();
        a.since_ms = now_ms;
    }
    out.act_version += 1;
    out
}

/// The record with step `step` behind (`said`: what became of it); `close`: the notice
/// needs nothing more (verified), closed with that reason at `now_ms`.
pub fn behind(r: &Recorded, step: usize, said: String, close: bool, now_ms: i64) -> Recorded {
    let mut out = r.clone();
    out.acting = None;
    out.done = out.done.max(step + 1);
    out.acted.push(said.clone());
    out.act_version += 1;
    if close {
        out.state = super::record::CLOSED.to_string();
        out.closed_ms = Some(now_ms);
        out.closed_why = Some(said);
    }
    out
}

/// "i-1 in us-east-1 (instance-stop, EC2's date 2026-12-07 03:00 UTC)".
pub fn named(r: &Recorded) -> String {
    format!(
        "{} in {} ({}, EC2's date {})",
        r.instance_id,
        r.region,
        r.kind,
        r.not_before_ms.map_or("unknown".into(), date)
    )
}

pub fn date(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| d.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| format!("{ms} ms"))
}

/// What a step would do, for a dry run or `notify`: "would stop and start it".
pub fn would(step: &Step) -> String {
    match step {
        Step::ReplaceMember { .. } => "would mark it Unhealthy for its group to replace it".into(),
        Step::StopStart { .. } => "would stop and start it (a new host)".into(),
        Step::Relaunch { .. } => "would image it and launch a copy".into(),
        Step::Reschedule { event_id, to_ms } => {
            format!(
                "would move EC2's event {event_id} to start at {}",
                date(*to_ms)
            )
        }
        _ => "would do nothing".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::notice::plan::NoticePlan;
    use crate::rules::notice::record::record;
    use crate::rules::notice::Notice;

    const START: i64 = 1_796_612_400_000;
    const H: i64 = 3_600_000;

    fn recorded(steps: Vec<Step>) -> Recorded {
        let n = Notice::from_status(
            "i-1",
            "instance-stop",
            "instance-event-1",
            "The instance is running on degraded hardware",
            [Some(START), None, None],
        )
        .unwrap();
        let plan = NoticePlan {
            steps,
            dry_run: false,
        };
        record("us-east-1", &n, &plan, None, START - 48 * H)
    }

    fn stop_start() -> Recorded {
        recorded(vec![
            Step::Report { why: "told".into() },
            Step::StopStart {
                at_ms: START - H,
                image_first: false,
            },
        ])
    }

    #[test]
    fn a_step_is_due_at_its_time_and_what_is_only_said_is_skipped() {
        let r = stop_start();
        assert_eq!(next(&r, START - 2 * H), Next::Wait);
        let due = next(&r, START - H);
        assert!(
            matches!(due, Next::Begin(1, Step::StopStart { .. })),
            "{due:?}"
        );
        let r = recorded(vec![Step::Reschedule {
            event_id: "e".into(),
            to_ms: START + 5 * H,
        }]);
        assert!(matches!(next(&r, 0), Next::Begin(0, _)));
        let r = recorded(vec![Step::Warn {
            finding: "x".into(),
        }]);
        assert_eq!(next(&r, START), Next::Wait);
    }

    #[test]
    fn a_step_begun_is_followed_and_one_behind_is_not_taken_again() {
        let r = stop_start();
        let b = begun(&r, 1, STOPPING, START - H);
        assert_eq!(b.act_version, r.act_version + 1);
        assert!(matches!(next(&b, START), Next::Follow(a) if a.phase == STOPPING));
        let d = behind(&b, 1, "done".into(), true, START - H + 60_000);
        assert_eq!((d.done, d.acting.is_none()), (2, true));
        assert_eq!(next(&d, START), Next::Wait, "closed");
        let mut open = d.clone();
        open.state = SCHEDULED.into();
        assert_eq!(next(&open, START), Next::Wait, "every step behind");
    }

    #[test]
    fn a_stop_start_goes_on_from_what_is_seen() {
        let a = Acting {
            step: 1,
            phase: STOPPING.into(),
            since_ms: 0,
            begun_ms: 0,
        };
        let seen = |state, checks_ok, event_listed| Seen {
            state,
            checks_ok,
            event_listed,
        };
        let t = 10 * 60_000;
        assert_eq!(
            progress(&a, &seen(Some("stopped"), false, Some(true)), t, 1),
            Progress::Start
        );
        assert_eq!(
            progress(&a, &seen(Some("stopping"), false, None), t, 1),
            Progress::Wait
        );
        assert!(matches!(
            progress(&a, &seen(Some("stopping"), false, None), t, t),
            Progress::TimedOut(w) if w.contains("did not complete within 10 min")
        ));
        let s = Acting {
            phase: STARTING.into(),
            ..a
        };
        let v = progress(&s, &seen(Some("running"), true, Some(false)), t, 1);
        assert_eq!(v, Progress::Verified);
        // Its region not read this tick: not judged, even late.
        let unread = seen(Some("running"), true, None);
        assert_eq!(progress(&s, &unread, t, t), Progress::Wait);
        for (state, ok, listed) in [
            (Some("running"), true, Some(true)),
            (Some("running"), false, Some(false)),
            (Some("pending"), true, Some(false)),
        ] {
            assert_eq!(progress(&s, &seen(state, ok, listed), t, 1), Progress::Wait);
            assert!(matches!(
                progress(&s, &seen(state, ok, listed), t, t),
                Progress::TimedOut(_)
            ));
        }
        assert!(matches!(
            progress(&s, &seen(None, false, None), t, 1),
            Progress::TimedOut(_)
        ));
        for phase in [RESCHEDULING, MARKING] {
            let m = Acting {
                phase: phase.into(),
                ..s.clone()
            };
            let up = seen(Some("running"), true, Some(true));
            assert_eq!(progress(&m, &up, t, 1), Progress::Wait);
            assert!(
                matches!(progress(&m, &up, t, t), Progress::TimedOut(w) if w.contains("not known"))
            );
        }
    }
}
