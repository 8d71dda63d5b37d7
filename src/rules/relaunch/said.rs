//! What a relaunch's reports say: pure texts from its record.

use super::super::incident::Head;
use crate::model::handover::Handover;
use crate::model::outcome::Action;
use crate::model::progress::{human, Phase, Progress};

/// The action a relaunch in `phase` is reported as.
pub fn action_of(phase: Option<Phase>) -> Action {
    match phase {
        None | Some(Phase::Imaging) => Action::CreateImage,
        Some(Phase::Launching | Phase::TakingOver) => Action::LaunchReplacement,
        Some(Phase::Verifying | Phase::Recovered | Phase::Failed) => Action::Verify,
    }
}

/// Why people have a relaunch that failed: the phase it worked in last (none begun: the
/// imaging, its first).
pub fn failed_in(progress: &Progress) -> Handover {
    match progress.worked_in() {
        None | Some(Phase::Imaging) => Handover::RelaunchImaging,
        Some(Phase::Launching) => Handover::RelaunchLaunching,
        Some(Phase::TakingOver) => Handover::RelaunchTakingOver,
        Some(Phase::Verifying | Phase::Recovered | Phase::Failed) => Handover::RelaunchVerifying,
    }
}

/// What a relaunch that stopped part-way leaves behind, for its report.
pub fn left_as_it_is(p: &Progress) -> String {
    match (&p.image_id, &p.replacement_id) {
        (_, Some(copy)) => format!(" (copy {copy} left as it is)"),
        (Some(image), None) => format!(" (image {image} kept)"),
        (None, None) => String::new(),
    }
}

/// Why a stop-protected instance gets no copy: the copy could not take its place (EC2
/// refuses to stop it, and autoheal never lifts a protection someone set).
pub const STOP_PROTECTED: &str = "stop protection is on (DisableApiStop): autoheal could not stop the instance to hand its place to a copy, so it launches none and leaves the protection as it is; relaunch by hand from the image, or lift the protection and relaunch (docs/RUNBOOK.md)";

/// What a relaunch learned on its way, for its last report.
#[derive(Default)]
pub struct Notes {
    pub moved: Vec<String>,
    pub not_carried: Vec<String>,
    /// Resources tagged as this incident's that autoheal did not make.
    pub strangers: Vec<String>,
    /// The newest backup, too old to relaunch from: why a fresh image was taken.
    pub stale_backup: Option<String>,
    /// `AUTOHEAL_TERMINATE_REPLACED`: how terminating the old instance went.
    pub terminated: Option<Result<(), String>>,
    /// Which alarm watches the copy now, or why none does.
    pub watched: Option<String>,
}

/// Why the relaunch is over and what it did.
pub fn recovered(head: &Head, notes: &Notes, now: i64) -> String {
    let copy = head.progress.replacement_id.as_deref().unwrap_or("?");
    let mut reason = format!(
        "recovered: copy {copy} runs with both status checks ok, {} after {} ({})",
        human(now - head.opened_ms),
        head.opened_by(),
        head.progress.timings(now)
    );
    if head.progress.from_backup {
        reason.push_str(&format!(
            "; relaunched from backup {} (data written since it was taken is not on the copy)",
            head.progress.image_id.as_deref().unwrap_or("?")
        ));
    }
    if let Some(stale) = &notes.stale_backup {
        reason.push_str(&format!("; {stale}"));
    }
    if !notes.moved.is_empty() {
        reason.push_str(&format!("; Elastic IPs moved: {}", notes.moved.join(", ")));
    }
    reason.push_str(&match &notes.terminated {
        Some(Ok(())) => "; old instance terminated once its copy was verified".to_string(),
        Some(Err(e)) => format!("; old instance stopped, not terminated ({e})"),
        None => {
            "; old instance stopped and kept for forensics (tag autoheal:replaced-by)".to_string()
        }
    });
    if let Some(watched) = &notes.watched {
        reason.push_str(&format!("; {watched}"));
    }
    if !notes.not_carried.is_empty() {
        reason.push_str(&format!(
            "; not carried over: {}",
            notes.not_carried.join("; ")
        ));
    }
    reason.push_str(&strangers_note(&notes.strangers));
    reason
}

/// "; left alone, not made by autoheal though tagged as this incident's: …", or nothing.
pub fn strangers_note(strangers: &[String]) -> String {
    match strangers.is_empty() {
        true => String::new(),
        false => format!(
            "; suspicious, left alone: {} carry this incident's tag but autoheal did not make them",
            strangers.join(", ")
        ),
    }
}

/// A phase's progress report ("step imaging: …"); None for a phase not reported as a step.
pub fn step(head: &Head, notes: &Notes, now_ms: i64) -> Option<String> {
    let p = &head.progress;
    let (image, copy) = (
        p.image_id.as_deref().unwrap_or("?"),
        p.replacement_id.as_deref().unwrap_or("?"),
    );
    let phase = p.phase?;
    let detail = match phase {
        Phase::Imaging if p.from_backup => format!(
            "relaunching from the latest backup {image} (data written since it was taken is not in it)"
        ),
        Phase::Imaging => match &notes.stale_backup {
            Some(stale) => format!("imaging without reboot as {image} ({stale})"),
            None => format!("imaging without reboot as {image}"),
        },
        Phase::Launching => format!("launching copy {copy} from {image}"),
        Phase::Verifying => format!("copy {copy} took over; verifying its status checks"),
        _ => return None,
    };
    Some(format!(
        "step {}: {detail} ({} since {})",
        phase.as_str(),
        human(now_ms - head.opened_ms),
        head.opened_by()
    ))
}

/// Why the newest recorded backup is not relaunched from.
pub fn stale_backup(image_id: &str, age_ms: i64, max_age_ms: i64) -> String {
    format!(
        "the latest backup {image_id} is too old to relaunch from ({} old, AUTOHEAL_BACKUP_MAX_AGE {}): imaged afresh",
        human(age_ms),
        human(max_age_ms)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_relaunch_goes_to_the_section_of_the_phase_it_worked_in_last() {
        use Phase::*;
        let cases: Vec<(Vec<Phase>, Handover)> = vec![
            (vec![], Handover::RelaunchImaging),
            (vec![Imaging], Handover::RelaunchImaging),
            (vec![Imaging, Failed], Handover::RelaunchImaging),
            (
                vec![Imaging, Launching, Failed],
                Handover::RelaunchLaunching,
            ),
            (
                vec![Imaging, Launching, TakingOver],
                Handover::RelaunchTakingOver,
            ),
            (
                vec![Imaging, Launching, TakingOver, Verifying, Failed],
                Handover::RelaunchVerifying,
            ),
        ];
        for (phases, want) in cases {
            let mut p = Progress::default();
            for (t, phase) in phases.iter().enumerate() {
                p.enter(*phase, t as i64);
            }
            assert_eq!(failed_in(&p), want, "{phases:?}");
        }
    }
}
