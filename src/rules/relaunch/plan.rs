//! The relaunch of a standalone instance as a sequence of phases, and the pure rule that
//! says what to do next from what was recorded and what the world shows now.
//!
//! detected -> imaging -> launching -> taking_over -> verifying -> recovered | failed
//!
//! Every action is findable afterwards by what the ledger recorded before it was made (the
//! image by its unguessable name, the copy by its unguessable `ClientToken`), so a phase
//! interrupted between its AWS call and its ledger write is adopted, never repeated, and
//! nothing someone else made — whatever its tags or name — is ever adopted.
//! Before each step that changes the world, what the instance allows now (`halt`) is
//! honoured.

use crate::model::outcome::Verdict;
use crate::model::progress::{human, Phase, Progress};
use crate::rules::policy::{Mode, Policy};

/// What the engine saw just now, for the current phase.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Seen {
    /// (image id, state) of the recorded image, or of one found by the deterministic name.
    pub image: Option<(String, String)>,
    /// (instance id, state) of the recorded copy, or of one found by the incident tag.
    pub replacement: Option<(String, String)>,
    /// The copy's instance and system status checks are both `ok`.
    pub checks_ok: bool,
    /// A young enough backup image to relaunch from, when the instance asks for that
    /// (`autoheal:relaunch-from=latest-backup`) and nothing was imaged yet.
    pub backup: Option<String>,
    /// The newest recorded backup when it is too old to relaunch from: why it is not used.
    pub stale_backup: Option<String>,
    /// The instance no longer lets autoheal act (`halt`): the outcome and why.
    pub halt: Option<(Verdict, String)>,
}

/// What the instance's `autoheal` tag and `AUTOHEAL_DRY_RUN` allow now, read again before
/// each step: anything but `Act` stops the relaunch where it is.
pub fn halt(policy: &Policy) -> Option<(Verdict, String)> {
    let source = &policy.source;
    match policy.mode {
        Mode::Act => None,
        Mode::Off => Some((
            Verdict::Ignored,
            format!("opted out ({source}) during the relaunch: stopped there, nothing more done"),
        )),
        Mode::Notify => Some((
            Verdict::Held,
            format!("report only ({source}) during the relaunch: stopped there, nothing more done"),
        )),
        Mode::DryRun => Some((
            Verdict::DryRun,
            format!("dry run ({source}) during the relaunch: stopped there, nothing more done"),
        )),
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    CreateImage,
    /// Relaunch from this periodic backup instead of imaging now (faster; loses the data
    /// written since the backup).
    UseBackup(String),
    /// The image exists (found by name after an interrupted step): record it.
    AdoptImage(String),
    WaitForImage,
    Launch,
    /// The copy exists (found by tag after an interrupted step): record it.
    AdoptReplacement(String),
    WaitForReplacement,
    TakeOver,
    WaitForChecks,
    Recovered,
    Fail(String),
    /// The instance no longer lets autoheal act: end the relaunch before this step.
    Halt(Verdict, String),
}

pub fn next(progress: &Progress, seen: &Seen, now_ms: i64, verify_timeout_ms: i64) -> Next {
    let step = next_step(progress, seen, now_ms, verify_timeout_ms);
    match (&seen.halt, step) {
        (
            Some((verdict, why)),
            Next::CreateImage | Next::UseBackup(_) | Next::Launch | Next::TakeOver,
        ) => Next::Halt(*verdict, why.clone()),
        (_, step) => step,
    }
}

fn next_step(progress: &Progress, seen: &Seen, now_ms: i64, verify_timeout_ms: i64) -> Next {
    match progress.phase {
        None | Some(Phase::Imaging) => match &seen.image {
            None if progress.image_id.is_some() => {
                Next::Fail("the image autoheal took has disappeared".into())
            }
            None => match &seen.backup {
                Some(backup) => Next::UseBackup(backup.clone()),
                None => Next::CreateImage,
            },
            Some((id, _)) if progress.image_id.as_deref() != Some(id) => {
                Next::AdoptImage(id.clone())
            }
            Some((_, state)) => match state.as_str() {
                "available" => match &seen.replacement {
                    Some((id, _)) => Next::AdoptReplacement(id.clone()),
                    None => Next::Launch,
                },
                "pending" => Next::WaitForImage,
                other => Next::Fail(format!("the image is {other}")),
            },
        },
        Some(Phase::Launching) => match &seen.replacement {
            None => Next::Launch,
            Some((id, _)) if progress.replacement_id.as_deref() != Some(id) => {
                Next::AdoptReplacement(id.clone())
            }
            Some((_, state)) => match state.as_str() {
                "running" => Next::TakeOver,
                "pending" => Next::WaitForReplacement,
                other => Next::Fail(format!("the copy is {other}")),
            },
        },
        Some(Phase::TakingOver) => Next::TakeOver,
        Some(Phase::Verifying) => {
            if seen.checks_ok {
                Next::Recovered
            } else if now_ms - progress.began(Phase::Verifying).unwrap_or(now_ms)
                > verify_timeout_ms
            {
                Next::Fail(format!(
                    "the copy's status checks were not both ok within {}",
                    human(verify_timeout_ms)
                ))
            } else {
                Next::WaitForChecks
            }
        }
        Some(Phase::Recovered) => Next::Recovered,
        Some(Phase::Failed) => Next::Fail("already failed".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progress(phase: Option<Phase>, image: Option<&str>, copy: Option<&str>) -> Progress {
        let mut p = Progress {
            image_id: image.map(str::to_string),
            replacement_id: copy.map(str::to_string),
            ..Default::default()
        };
        for (i, ph) in [
            Phase::Imaging,
            Phase::Launching,
            Phase::TakingOver,
            Phase::Verifying,
        ]
        .into_iter()
        .enumerate()
        {
            if phase.is_some_and(|target| ph <= target) {
                p.enter(ph, 1_000 * i as i64);
            }
        }
        p.phase = phase;
        p
    }

    fn seen(image: Option<(&str, &str)>, copy: Option<(&str, &str)>, ok: bool) -> Seen {
        Seen {
            image: image.map(|(a, b)| (a.into(), b.into())),
            replacement: copy.map(|(a, b)| (a.into(), b.into())),
            checks_ok: ok,
            backup: None,
            stale_backup: None,
            halt: None,
        }
    }

    #[test]
    fn next_table() {
        use Phase::*;
        let timeout = 900_000;
        let table: Vec<(Progress, Seen, i64, Next)> = vec![
            (
                progress(None, None, None),
                seen(None, None, false),
                0,
                Next::CreateImage,
            ),
            (
                progress(None, None, None),
                Seen {
                    backup: Some("ami-b".into()),
                    ..seen(None, None, false)
                },
                0,
                Next::UseBackup("ami-b".into()),
            ),
            // An image by the incident's name wins over a backup (an interrupted try).
            (
                progress(None, None, None),
                Seen {
                    backup: Some("ami-b".into()),
                    ..seen(Some(("ami-1", "pending")), None, false)
                },
                0,
                Next::AdoptImage("ami-1".into()),
            ),
            // Crash after CreateImage, before the ledger write: adopt the image found by its
            // recorded name.
            (
                progress(None, None, None),
                seen(Some(("ami-1", "pending")), None, false),
                0,
                Next::AdoptImage("ami-1".into()),
            ),
            (
                progress(Some(Imaging), Some("ami-1"), None),
                seen(Some(("ami-1", "pending")), None, false),
                0,
                Next::WaitForImage,
            ),
            (
                progress(Some(Imaging), Some("ami-1"), None),
                seen(Some(("ami-1", "available")), None, false),
                0,
                Next::Launch,
            ),
            (
                progress(Some(Imaging), Some("ami-1"), None),
                seen(Some(("ami-1", "failed")), None, false),
                0,
                Next::Fail("the image is failed".into()),
            ),
            (
                progress(Some(Imaging), Some("ami-1"), None),
                seen(None, None, false),
                0,
                Next::Fail("the image autoheal took has disappeared".into()),
            ),
            // Crash after RunInstances, before the ledger write: adopt the copy found by its
            // recorded token.
            (
                progress(Some(Imaging), Some("ami-1"), None),
                seen(
                    Some(("ami-1", "available")),
                    Some(("i-2", "pending")),
                    false,
                ),
                0,
                Next::AdoptReplacement("i-2".into()),
            ),
            (
                progress(Some(Launching), Some("ami-1"), None),
                seen(None, None, false),
                0,
                Next::Launch,
            ),
            (
                progress(Some(Launching), Some("ami-1"), Some("i-2")),
                seen(None, Some(("i-2", "pending")), false),
                0,
                Next::WaitForReplacement,
            ),
            (
                progress(Some(Launching), Some("ami-1"), Some("i-2")),
                seen(None, Some(("i-2", "running")), false),
                0,
                Next::TakeOver,
            ),
            (
                progress(Some(Launching), Some("ami-1"), Some("i-2")),
                seen(None, Some(("i-2", "terminated")), false),
                0,
                Next::Fail("the copy is terminated".into()),
            ),
            (
                progress(Some(TakingOver), Some("ami-1"), Some("i-2")),
                seen(None, None, false),
                0,
                Next::TakeOver,
            ),
            (
                progress(Some(Verifying), Some("ami-1"), Some("i-2")),
                seen(None, None, true),
                5_000,
                Next::Recovered,
            ),
            (
                progress(Some(Verifying), Some("ami-1"), Some("i-2")),
                seen(None, None, false),
                5_000,
                Next::WaitForChecks,
            ),
            (
                progress(Some(Verifying), Some("ami-1"), Some("i-2")),
                seen(None, None, false),
                3_000 + timeout + 1,
                Next::Fail("the copy's status checks were not both ok within 15m00s".into()),
            ),
        ];
        for (p, s, now, expected) in table {
            assert_eq!(next(&p, &s, now, timeout), expected, "{p:?} {s:?}");
        }
    }

    #[test]
    fn a_step_that_changes_the_world_halts_when_the_instance_no_longer_allows_it() {
        use Phase::*;
        let off = Policy {
            mode: Mode::Off,
            source: "tag autoheal=off on the instance".into(),
        };
        let halted = |p: Progress, s: Seen| {
            let s = Seen {
                halt: halt(&off),
                ..s
            };
            next(&p, &s, 5_000, 900_000)
        };
        let stop = Next::Halt(
            Verdict::Ignored,
            "opted out (tag autoheal=off on the instance) during the relaunch: stopped there, nothing more done".into(),
        );
        // Before the image, the launch and the takeover: halted.
        assert_eq!(
            halted(progress(None, None, None), seen(None, None, false)),
            stop
        );
        let available = seen(Some(("ami-1", "available")), None, false);
        assert_eq!(
            halted(progress(Some(Imaging), Some("ami-1"), None), available),
            stop
        );
        let running = seen(None, Some(("i-2", "running")), false);
        assert_eq!(
            halted(
                progress(Some(Launching), Some("ami-1"), Some("i-2")),
                running
            ),
            stop
        );
        // Waiting and verifying change nothing: they go on.
        let pending = seen(Some(("ami-1", "pending")), None, false);
        assert_eq!(
            halted(progress(Some(Imaging), Some("ami-1"), None), pending),
            Next::WaitForImage
        );
        assert_eq!(
            halted(
                progress(Some(Verifying), Some("ami-1"), Some("i-2")),
                seen(None, None, true)
            ),
            Next::Recovered
        );
        let act = Policy {
            mode: Mode::Act,
            source: "default".into(),
        };
        assert_eq!(halt(&act), None);
    }

    #[test]
    fn timings_say_how_long_each_phase_took() {
        let mut p = Progress::default();
        p.enter(Phase::Imaging, 0);
        p.enter(Phase::Imaging, 5);
        p.enter(Phase::Launching, 40_000);
        p.enter(Phase::TakingOver, 52_000);
        p.enter(Phase::Verifying, 53_000);
        p.enter(Phase::Recovered, 233_000);
        assert_eq!(
            p.timings(233_000),
            "imaging 40s, launching 12s, taking_over 1s, verifying 3m00s"
        );
        assert_eq!(p.began(Phase::Launching), Some(40_000));
        assert!(p.is_finished());
        assert_eq!(Phase::parse("taking_over"), Some(Phase::TakingOver));
    }
}
