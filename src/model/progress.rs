//! What the ledger remembers of a relaunch: its phase and when each began.

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    Imaging,
    Launching,
    TakingOver,
    Verifying,
    Recovered,
    Failed,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Imaging => "imaging",
            Phase::Launching => "launching",
            Phase::TakingOver => "taking_over",
            Phase::Verifying => "verifying",
            Phase::Recovered => "recovered",
            Phase::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Phase> {
        [
            Phase::Imaging,
            Phase::Launching,
            Phase::TakingOver,
            Phase::Verifying,
            Phase::Recovered,
            Phase::Failed,
        ]
        .into_iter()
        .find(|p| p.as_str() == s)
    }
}

/// What the ledger remembers of a relaunch.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Progress {
    /// None: detected, nothing done yet.
    pub phase: Option<Phase>,
    pub image_id: Option<String>,
    pub replacement_id: Option<String>,
    /// The image is a periodic backup, not one taken at failure time.
    pub from_backup: bool,
    /// The name the image is created under, unguessable and recorded before `CreateImage`:
    /// what finds the image again after a crash between the call and its record.
    pub image_name: Option<String>,
    /// The copy's `ClientToken`, unguessable and recorded before `RunInstances`: a retry
    /// with it returns the same copy, and only an instance launched with it is the copy.
    pub launch_token: Option<String>,
    /// When each phase began (ms since the epoch), in order.
    pub marks: Vec<(Phase, i64)>,
}

impl Progress {
    pub fn enter(&mut self, phase: Phase, now_ms: i64) {
        if self.phase != Some(phase) {
            self.phase = Some(phase);
            self.marks.push((phase, now_ms));
        }
    }

    pub fn began(&self, phase: Phase) -> Option<i64> {
        self.marks
            .iter()
            .find(|(p, _)| *p == phase)
            .map(|(_, t)| *t)
    }

    pub fn is_finished(&self) -> bool {
        matches!(self.phase, Some(Phase::Recovered | Phase::Failed))
    }

    /// The last phase it worked in (not `recovered` or `failed`): where a relaunch that
    /// ended failed, as `step_times` shows it. None: nothing begun.
    pub fn worked_in(&self) -> Option<Phase> {
        self.marks
            .iter()
            .rev()
            .map(|(p, _)| *p)
            .find(|p| !matches!(p, Phase::Recovered | Phase::Failed))
    }

    /// A relaunch under way is resumed by whoever claims its head next.
    pub fn under_way(&self) -> bool {
        self.phase.is_some() && !self.is_finished()
    }

    /// "imaging 40s, launching 12s, ..." — how long each phase took.
    pub fn timings(&self, end_ms: i64) -> String {
        let mut parts = vec![];
        for (i, (phase, start)) in self.marks.iter().enumerate() {
            if matches!(phase, Phase::Recovered | Phase::Failed) {
                continue;
            }
            let end = self.marks.get(i + 1).map_or(end_ms, |(_, t)| *t);
            parts.push(format!("{} {}", phase.as_str(), human(end - start)));
        }
        parts.join(", ")
    }
}

pub fn human(ms: i64) -> String {
    let s = (ms.max(0) + 500) / 1000;
    if s < 60 {
        format!("{s}s")
    } else {
        format!("{}m{:02}s", s / 60, s % 60)
    }
}

/// `HH:MM:SSZ` of a time in milliseconds, as reports show times of the day.
pub fn clock_text(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%H:%M:%SZ")
        .to_string()
}
