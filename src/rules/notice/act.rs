//! A recorded notice's plan carried out, pure: which step is due at a time, how a
//! stop/start under way moves on from what is observed (a retirement's image available:
//! stop it; stopped: start it; started, EC2's event gone and both checks ok: verified; a
//! stop still not done within the ladder's stop/start timeout: a copy instead; anything
//! else out of time: to people, with EC2's date), and what is said of each. The shell
//! (`pipeline::tick::notice_steps`) reads the world, writes the record first (conditional
//! on its version), then makes the one mutating call.

use super::plan::Step;
use super::record::{Acting, Recorded, SCHEDULED};

/// A retirement's image being taken before its stop (`Acting::image_name`, `image_id`).
pub const IMAGING: &str = "imaging";
/// How long a retirement's image may take before its stop goes to people instead.
pub const IMAGE_WAIT_MS: i64 = 60 * 60_000;
/// A stop requested, not yet stopped.
pub const STOPPING: &str = "stopping";
/// A start requested after the stop: waiting for the event to be gone and the checks ok.
pub const STARTING: &str = "starting";
/// `ModifyInstanceEventStartTime` about to be asked.
pub const RESCHEDULING: &str = "rescheduling";
/// An incident about to be opened for the step (`pipeline::tick::notice_incident`).
pub const OPENING: &str = "opening";

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
    /// The image taken first is available: stop it now.
    Stop,
    /// Stopped: start it.
    Start,
    /// Started, running, the event gone, both checks ok.
    Verified,
    /// Not yet: the next tick looks again.
    Wait,
    /// Not within the timeout: to people, saying why.
    TimedOut(String),
    /// The stop did not complete within the timeout (an impaired instance often never
    /// stops, even forced): taken to a copy instead (`instead_copy`), saying why.
    Stuck(String),
}

/// What is observed of the instance of a stop/start under way.
pub struct Seen<'a> {
    /// EC2's state name; None: EC2 does not know the instance.
    pub state: Option<&'a str>,
    pub checks_ok: bool,
    /// Whether `DescribeInstanceStatus` still lists the event standing; None: not read.
    pub event_listed: Option<bool>,
    /// The state of the image taken first, while imaging; None: not found.
    pub image: Option<&'a str>,
}

pub fn progress(a: &Acting, seen: &Seen, timeout_ms: i64, now_ms: i64) -> Progress {
    let late = now_ms >= a.since_ms + timeout_ms;
    let minutes = timeout_ms / 60_000;
    match (a.phase.as_str(), seen.state) {
        (_, None) => Progress::TimedOut("EC2 no longer knows the instance".into()),
        (IMAGING, _) => imaging(a, seen.image, now_ms),
        (STOPPING, Some("stopped")) => Progress::Start,
        (STOPPING, Some("stopping")) if late => Progress::Stuck(format!(
            "the stop did not complete within {minutes} min"
        )),
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
        (RESCHEDULING | OPENING, _) if late => Progress::TimedOut(format!(
            "begun, its answer not recorded (the invocation ended): whether EC2 or Auto Scaling took the call is not known; {}",
            "look at the instance"
        )),
        _ => Progress::Wait,
    }
}

/// A retirement's image taken first: the stop once it is available; to people when it
/// failed, disappeared, or is not available within `IMAGE_WAIT_MS`.
fn imaging(a: &Acting, image: Option<&str>, now_ms: i64) -> Progress {
    let late = now_ms >= a.since_ms + IMAGE_WAIT_MS;
    match image {
        Some("available") => Progress::Stop,
        Some("pending") if late => Progress::TimedOut(format!(
            "its image was not available within {} min; it was not stopped",
            IMAGE_WAIT_MS / 60_000
        )),
        Some("pending") => Progress::Wait,
        Some(state) => Progress::TimedOut(format!("its image is {state}; it was not stopped")),
        None if a.image_id.is_some() => {
            Progress::TimedOut("its image has disappeared; it was not stopped".into())
        }
        // Named, its id never recorded (the invocation ended): whether EC2 took the call is
        // known only by the name, for a while.
        None if late => Progress::TimedOut(
            "its image was asked for, and none is found by its name; it was not stopped".into(),
        ),
        None => Progress::Wait,
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
        image_name: None,
        image_id: None,
    });
    out.act_version += 1;
    out
}

/// The record with the image of its step under way: named before the call (`id` None),
/// then its id.
pub fn imaged(r: &Recorded, name: &str, id: Option<&str>) -> Recorded {
    let mut out = r.clone();
    if let Some(a) = out.acting.as_mut() {
        a.image_name = Some(name.to_string());
        a.image_id = id.map(str::to_string);
    }
    out.act_version += 1;
    out
}

/// The record with the step under way not begun after all: due again.
pub fn not_begun(r: &Recorded) -> Recorded {
    let mut out = r.clone();
    out.acting = None;
    out.act_version += 1;
    out
}

/// The record with its stuck stop behind (`why`) and a copy planned next, at `now_ms`:
/// the new step's index and the record.
pub fn instead_copy(r: &Recorded, why: &str, now_ms: i64) -> (usize, Recorded) {
    let stop = r.acting.as_ref().map_or(r.done, |a| a.step);
    let copy = Step::Relaunch { at_ms: now_ms };
    let mut out = behind(
        r,
        stop,
        format!(
            "{}: {why}; autoheal images it and launches a copy instead",
            named(r)
        ),
        false,
        now_ms,
    );
    let at = (stop + 1).min(out.plan.len());
    if out.steps.len() == out.plan.len() {
        out.steps.insert(at, super::record::said(&copy));
    }
    out.plan.insert(at, copy);
    (at, out)
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
    fn a_retirement_is_stopped_once_its_image_is_available() {
        let r = begun(&stop_start(), 1, IMAGING, 0);
        let named = imaged(&r, "autoheal-notice-x", None);
        let a = named.acting.clone().unwrap();
        assert_eq!(
            (
                a.image_name.as_deref(),
                a.image_id.as_deref(),
                named.act_version
            ),
            (Some("autoheal-notice-x"), None, r.act_version + 1)
        );
        let with_id = imaged(&named, "autoheal-notice-x", Some("ami-1"))
            .acting
            .unwrap();
        let seen = |image| Seen {
            state: Some("running"),
            checks_ok: true,
            event_listed: Some(true),
            image,
        };
        let t = 10 * 60_000;
        let late = IMAGE_WAIT_MS;
        // (acting, the image's state, now, the progress or words of why it timed out)
        type Row<'a> = (&'a Acting, Option<&'a str>, i64, Result<Progress, &'a str>);
        let table: Vec<Row> = vec![
            (&with_id, Some("available"), 1, Ok(Progress::Stop)),
            (&with_id, Some("pending"), 1, Ok(Progress::Wait)),
            (
                &with_id,
                Some("pending"),
                late,
                Err("not available within 60 min"),
            ),
            (&with_id, Some("failed"), 1, Err("its image is failed")),
            (&with_id, None, 1, Err("its image has disappeared")),
            // Named only: looked for by its name, for a while.
            (&a, None, 1, Ok(Progress::Wait)),
            (&a, None, late, Err("none is found by its name")),
            (&a, Some("available"), 1, Ok(Progress::Stop)),
        ];
        for (acting, image, now, want) in table {
            let got = progress(acting, &seen(image), t, now);
            match want {
                Ok(p) => assert_eq!(got, p, "{image:?} at {now}"),
                Err(w) => assert!(
                    matches!(&got, Progress::TimedOut(why) if why.contains(w) && why.ends_with("it was not stopped")),
                    "{image:?} at {now}: {got:?}"
                ),
            }
        }
    }

    #[test]
    fn a_stuck_stop_is_behind_and_a_copy_is_due_next_now() {
        let r = begun(&stop_start(), 1, STOPPING, START - H);
        let now = START - H + 11 * 60_000;
        let (i, c) = instead_copy(&r, "the stop did not complete within 10 min", now);
        assert_eq!(i, 2);
        assert_eq!(c.plan[2], Step::Relaunch { at_ms: now });
        assert_eq!((c.done, c.acting.is_none()), (2, true));
        assert_eq!(c.act_version, r.act_version + 1);
        assert_eq!(c.steps.len(), c.plan.len());
        assert!(c.steps[2].starts_with("image it and launch a copy"));
        assert!(c.acted[0].ends_with(
            "did not complete within 10 min; autoheal images it and launches a copy instead"
        ));
        assert_eq!(
            c.state, SCHEDULED,
            "the notice stands until the copy is opened"
        );
        assert_eq!(next(&c, now), Next::Begin(2, Step::Relaunch { at_ms: now }));
        let undone = not_begun(&r);
        assert_eq!((undone.acting, undone.done), (None, r.done));
        assert_eq!(undone.act_version, r.act_version + 1);
    }

    #[test]
    fn a_stop_start_goes_on_from_what_is_seen() {
        let a = Acting {
            step: 1,
            phase: STOPPING.into(),
            since_ms: 0,
            begun_ms: 0,
            image_name: None,
            image_id: None,
        };
        let seen = |state, checks_ok, event_listed| Seen {
            state,
            checks_ok,
            event_listed,
            image: None,
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
        // Still stopping: taken to a copy; anything else but stopped: to people.
        assert!(matches!(
            progress(&a, &seen(Some("stopping"), false, None), t, t),
            Progress::Stuck(w) if w.contains("did not complete within 10 min")
        ));
        assert!(matches!(
            progress(&a, &seen(Some("running"), false, None), t, t),
            Progress::TimedOut(w) if w.contains("(the instance is running)")
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
        for phase in [RESCHEDULING, OPENING] {
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
