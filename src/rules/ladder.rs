//! The escalation ladder of a standalone instance, pure. Each failure kind climbs its own
//! ladder, one rung at a time, each rung a ledger step with its own timeout and report; an
//! `OK` on the way closes the incident; the last rung failing goes to people.
//!
//! `StatusCheckFailed_Instance` -> `AUTOHEAL_INSTANCE_LADDER` (reboot, relaunch);
//! `StatusCheckFailed_System` -> `AUTOHEAL_SYSTEM_LADDER` (ec2-recovery, stop-start,
//! relaunch); the combined `StatusCheckFailed` -> the system ladder unless the instance's
//! status shows only the instance check impaired. The tag `autoheal:ladder` overrides both.

use crate::intake::{Heard, Metric};
use crate::model::facts::InstanceFacts;
use crate::model::handover::Handover;
use crate::model::outcome::Action;
use std::collections::BTreeMap;

pub const LADDER_TAG: &str = "autoheal:ladder";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rung {
    /// `RebootInstances`, then wait for the alarm to clear.
    Reboot,
    /// EC2's own simplified automatic recovery: nothing to call, wait for it.
    Ec2Recovery,
    /// `StopInstances`, `StartInstances` once stopped (a new host), then wait.
    StopStart,
    /// Image without reboot and launch a copy (`relaunch`), verified there.
    Relaunch,
}

impl Rung {
    /// The call that starts it.
    pub fn power(self) -> Option<Power> {
        match self {
            Rung::Reboot => Some(Power::Reboot),
            Rung::StopStart => Some(Power::Stop),
            Rung::Ec2Recovery | Rung::Relaunch => None,
        }
    }

    /// The action it is reported as.
    pub fn action(self) -> Action {
        match self {
            Rung::Reboot => Action::Reboot,
            Rung::StopStart => Action::StopStart,
            Rung::Ec2Recovery => Action::None,
            Rung::Relaunch => Action::CreateImage,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Rung::Reboot => "reboot",
            Rung::Ec2Recovery => "ec2-recovery",
            Rung::StopStart => "stop-start",
            Rung::Relaunch => "relaunch",
        }
    }

    pub fn parse(s: &str) -> Option<Rung> {
        [
            Rung::Reboot,
            Rung::Ec2Recovery,
            Rung::StopStart,
            Rung::Relaunch,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }

    /// How long the alarm has to clear after the rung before the next one.
    pub fn default_timeout_ms(self) -> i64 {
        match self {
            Rung::Reboot => 5 * 60_000,
            Rung::Ec2Recovery | Rung::StopStart => 10 * 60_000,
            // The relaunch verifies its copy itself (AUTOHEAL_VERIFY_TIMEOUT).
            Rung::Relaunch => 0,
        }
    }
}

/// `reboot,relaunch` -> rungs. Empty, unknown or repeated rungs are errors.
pub fn parse_ladder(text: &str) -> Result<Vec<Rung>, String> {
    let mut rungs = vec![];
    for part in text.split(',').map(str::trim) {
        let rung = Rung::parse(part).ok_or_else(|| {
            format!("unknown rung {part:?} (rungs: reboot, ec2-recovery, stop-start, relaunch)")
        })?;
        if rungs.contains(&rung) {
            return Err(format!("rung {part:?} twice"));
        }
        rungs.push(rung);
    }
    Ok(rungs)
}

#[derive(Debug, Clone, PartialEq)]
pub struct Ladders {
    pub system: Vec<Rung>,
    pub instance: Vec<Rung>,
    /// `AUTOHEAL_RUNG_TIMEOUT`: one timeout for every rung (None: each rung's default).
    pub timeout_ms: Option<i64>,
}

impl Default for Ladders {
    fn default() -> Ladders {
        Ladders {
            system: vec![Rung::Ec2Recovery, Rung::StopStart, Rung::Relaunch],
            instance: vec![Rung::Reboot, Rung::Relaunch],
            timeout_ms: None,
        }
    }
}

impl Ladders {
    pub fn timeout_ms(&self, rung: Rung) -> i64 {
        match rung {
            Rung::Relaunch => 0,
            r => self.timeout_ms.unwrap_or(r.default_timeout_ms()),
        }
    }
}

/// Whether the combined metric needs the instance's status to pick a ladder.
pub fn needs_status(metric: Metric, tags: &BTreeMap<String, String>, ladders: &Ladders) -> bool {
    metric == Metric::StatusCheckFailed
        && !tags.contains_key(LADDER_TAG)
        && ladders.system != ladders.instance
}

/// The ladder for this failure. `only_instance_impaired`: the instance's status shows the
/// instance check impaired and the system check not.
pub fn choose(
    metric: Metric,
    only_instance_impaired: bool,
    tags: &BTreeMap<String, String>,
    ladders: &Ladders,
) -> Result<Vec<Rung>, String> {
    if let Some(text) = tags.get(LADDER_TAG) {
        return parse_ladder(text).map_err(|e| format!("tag {LADDER_TAG}={text:?}: {e}"));
    }
    let instance = metric == Metric::StatusCheckFailedInstance
        || (metric == Metric::StatusCheckFailed && only_instance_impaired);
    Ok(if instance {
        ladders.instance.clone()
    } else {
        ladders.system.clone()
    })
}

/// EC2 tries to recover an instance automatically at most this many times a day.
pub const RECOVERIES_PER_DAY: usize = 3;
const DAY_MS: i64 = 86_400_000;
/// EC2 may announce its recovery before the alarm's evaluation periods end: what it said up
/// to this long before the incident opened belongs to the incident.
pub const HEARD_EARLY_MS: i64 = 15 * 60_000;

/// What EC2 announced of its automatic recovery of the instance (AWS Health), and when.
pub type Announcement = (Heard, i64);

/// The announcements that belong to the incident opened at `opened_ms`.
pub fn heard_since(heard: &[Announcement], opened_ms: i64) -> impl Iterator<Item = &Announcement> {
    heard
        .iter()
        .filter(move |(_, t)| *t >= opened_ms - HEARD_EARLY_MS)
}

/// Why a rung does not apply to this instance, if it does not. `recoveries`: how many
/// times EC2 announced a recovery attempt in the last 24 hours.
pub fn not_applicable(rung: Rung, instance: &InstanceFacts, recoveries: usize) -> Option<String> {
    let ebs = instance.root_device_type.as_deref() != Some("instance-store");
    match rung {
        Rung::Reboot | Rung::StopStart if instance.reboot_risk().is_some() => Some(format!(
            "{}: {}",
            rung.as_str(),
            instance.reboot_risk().unwrap_or_default()
        )),
        Rung::Reboot | Rung::Relaunch => None,
        Rung::StopStart if !ebs => Some("stop-start: instance-store root".into()),
        Rung::StopStart if instance.disable_api_stop == Some(true) => {
            Some("stop-start: stop protection is on (DisableApiStop)".into())
        }
        Rung::StopStart => None,
        Rung::Ec2Recovery => {
            let itype = instance.instance_type.as_deref().unwrap_or("unknown");
            if !ebs {
                Some("ec2-recovery: instance-store root".into())
            } else if instance.auto_recovery.as_deref() == Some("disabled") {
                Some("ec2-recovery: AutoRecovery is disabled on the instance".into())
            } else if instance.auto_recovery_supported == Some(false) {
                Some(format!(
                    "ec2-recovery: {itype} does not support EC2's automatic recovery"
                ))
            } else if recoveries >= RECOVERIES_PER_DAY {
                Some(format!(
                    "ec2-recovery: EC2 already tried {recoveries} times in the last 24 h (it tries at most {RECOVERIES_PER_DAY})"
                ))
            } else {
                None
            }
        }
    }
}

/// A rung begun: (rung, when). Stop-start has two marks: stop requested, started again.
pub type Mark = (Rung, i64);

#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// Start this rung (the ones skipped on the way, and why).
    Start { rung: Rung, skipped: Vec<String> },
    /// Stop-start: the instance is stopped; start it again.
    StartAgain,
    /// The current rung is under way: look again at `until_ms`.
    Wait { rung: Rung, until_ms: i64 },
    /// Every rung was tried (`LadderEnded`), none applies (`NoRung`) or the ladder cannot be
    /// read (`BadLadderTag`): people, and why.
    People(Handover, String),
}

/// What to do now on `ladder`, from the rungs begun so far and what EC2 announced of its
/// own recoveries (`heard`, for the incident opened at `opened_ms`): a failure announced
/// ends the wait for EC2's recovery at once.
pub fn next(
    ladder: &[Rung],
    marks: &[Mark],
    instance: &InstanceFacts,
    heard: (&[Announcement], i64),
    ladders: &Ladders,
    now_ms: i64,
) -> Next {
    let (heard, opened_ms) = heard;
    let recoveries = heard.iter().filter(|(_, t)| now_ms - t < DAY_MS).count();
    let from = match marks.last() {
        None => 0,
        Some(&(rung, at)) => {
            let failed = rung == Rung::Ec2Recovery
                && heard_since(heard, opened_ms).any(|(h, _)| *h == Heard::Failed);
            let timeout = if failed { 0 } else { ladders.timeout_ms(rung) };
            if rung == Rung::StopStart && marks.iter().filter(|(r, _)| *r == rung).count() == 1 {
                // Stop requested: start it again once stopped; give up after the timeout.
                if instance.state == "stopped" {
                    return Next::StartAgain;
                }
                if now_ms < at + timeout {
                    return Next::Wait {
                        rung,
                        until_ms: now_ms,
                    };
                }
            } else if now_ms < at + timeout {
                return Next::Wait {
                    rung,
                    until_ms: at + timeout,
                };
            }
            ladder.iter().position(|r| *r == rung).map_or(0, |i| i + 1)
        }
    };
    let mut skipped = vec![];
    for &rung in ladder.iter().skip(from) {
        if marks.iter().any(|(r, _)| *r == rung) {
            continue;
        }
        match not_applicable(rung, instance, recoveries) {
            Some(why) => skipped.push(why),
            None => return Next::Start { rung, skipped },
        }
    }
    let tried: Vec<&str> = ladder
        .iter()
        .filter(|r| marks.iter().any(|(m, _)| m == *r))
        .map(|r| r.as_str())
        .collect();
    let (kind, mut why) = if tried.is_empty() {
        (
            Handover::NoRung,
            "no rung of the ladder applies".to_string(),
        )
    } else {
        let tried = format!("still failing after {}", tried.join(", "));
        (Handover::LadderEnded, tried)
    };
    if !skipped.is_empty() {
        why.push_str(&format!(" (skipped: {})", skipped.join("; ")));
    }
    Next::People(kind, format!("{why}: needs a person (see docs/RUNBOOK.md)"))
}

/// The call a rung makes on the instance, if any (EC2's own recovery needs none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Power {
    Reboot,
    Stop,
    Start,
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = 1_795_403_565_000;
    const MIN: i64 = 60_000;

    fn instance(
        itype: &str,
        root: &str,
        auto_recovery: Option<&str>,
        state: &str,
    ) -> InstanceFacts {
        InstanceFacts {
            instance_id: "i-1".into(),
            state: state.into(),
            instance_type: Some(itype.into()),
            root_device_type: Some(root.into()),
            auto_recovery: auto_recovery.map(str::to_string),
            // As DescribeInstanceTypes says of these types.
            auto_recovery_supported: Some(!itype.starts_with("m5d.")),
            ..Default::default()
        }
    }

    #[test]
    fn ladders_parse_and_are_chosen_by_metric_status_and_tag() {
        use Rung::*;
        assert_eq!(parse_ladder("reboot, relaunch"), Ok(vec![Reboot, Relaunch]));
        assert!(parse_ladder("reboot,reboot").unwrap_err().contains("twice"));
        assert!(parse_ladder("pray")
            .unwrap_err()
            .contains("unknown rung \"pray\""));
        assert!(parse_ladder("").is_err());
        let l = Ladders::default();
        let none = BTreeMap::new();
        let tagged: BTreeMap<String, String> =
            [(LADDER_TAG.to_string(), "stop-start".to_string())].into();
        let bad: BTreeMap<String, String> = [(LADDER_TAG.to_string(), "x".to_string())].into();
        // (what, metric, only instance impaired, tags, want)
        type Tags = BTreeMap<String, String>;
        type Case<'a> = (&'a str, Metric, bool, &'a Tags, Result<Vec<Rung>, ()>);
        let cases: Vec<Case> = vec![
            (
                "instance check",
                Metric::StatusCheckFailedInstance,
                false,
                &none,
                Ok(vec![Reboot, Relaunch]),
            ),
            (
                "system check",
                Metric::StatusCheckFailedSystem,
                true,
                &none,
                Ok(vec![Ec2Recovery, StopStart, Relaunch]),
            ),
            (
                "combined, system impaired",
                Metric::StatusCheckFailed,
                false,
                &none,
                Ok(vec![Ec2Recovery, StopStart, Relaunch]),
            ),
            (
                "combined, only the instance check",
                Metric::StatusCheckFailed,
                true,
                &none,
                Ok(vec![Reboot, Relaunch]),
            ),
            (
                "the tag wins",
                Metric::StatusCheckFailedInstance,
                true,
                &tagged,
                Ok(vec![StopStart]),
            ),
            (
                "a bad tag is an error",
                Metric::StatusCheckFailed,
                false,
                &bad,
                Err(()),
            ),
        ];
        for (what, metric, only, tags, want) in cases {
            assert_eq!(
                choose(metric, only, tags, &l).map_err(|_| ()),
                want,
                "{what}"
            );
        }
        assert!(needs_status(Metric::StatusCheckFailed, &none, &l));
        assert!(!needs_status(Metric::StatusCheckFailed, &tagged, &l));
        assert!(!needs_status(Metric::StatusCheckFailedSystem, &none, &l));
    }

    #[test]
    fn rungs_apply_by_type_root_and_auto_recovery() {
        let ok = instance("m5.large", "ebs", None, "running");
        assert_eq!(not_applicable(Rung::Ec2Recovery, &ok, 0), None);
        assert_eq!(not_applicable(Rung::Ec2Recovery, &ok, 2), None);
        assert_eq!(not_applicable(Rung::StopStart, &ok, 0), None);
        let unknown_type = InstanceFacts {
            auto_recovery_supported: None,
            ..ok.clone()
        };
        assert_eq!(
            not_applicable(Rung::Ec2Recovery, &unknown_type, 0),
            None,
            "waiting is harmless: the rung times out"
        );
        assert!(not_applicable(Rung::Ec2Recovery, &ok, 3)
            .unwrap()
            .contains("EC2 already tried 3 times in the last 24 h"));
        let protected = InstanceFacts {
            disable_api_stop: Some(true),
            ..ok.clone()
        };
        assert_eq!(
            not_applicable(Rung::StopStart, &protected, 0).as_deref(),
            Some("stop-start: stop protection is on (DisableApiStop)")
        );
        assert_eq!(not_applicable(Rung::Reboot, &protected, 0), None);
        let cases = [
            (
                instance("m5.large", "ebs", Some("disabled"), "running"),
                "AutoRecovery is disabled",
            ),
            (
                instance("m5d.large", "ebs", None, "running"),
                "m5d.large does not support EC2's automatic recovery",
            ),
            (
                instance("m5.large", "instance-store", None, "running"),
                "instance-store root",
            ),
        ];
        for (i, why) in cases {
            assert!(
                not_applicable(Rung::Ec2Recovery, &i, 0)
                    .unwrap()
                    .contains(why),
                "{why}"
            );
        }
        let store = instance("m5.large", "instance-store", None, "running");
        assert!(not_applicable(Rung::StopStart, &store, 0).is_some());
        assert_eq!(not_applicable(Rung::Reboot, &store, 0), None);
        let pv = InstanceFacts {
            virtualization: Some("paravirtual".into()),
            ..ok.clone()
        };
        let pv_grub = InstanceFacts {
            kernel_id: Some(crate::model::facts::RISKY_KERNEL.into()),
            ..ok.clone()
        };
        for risky in [&pv, &pv_grub] {
            for rung in [Rung::Reboot, Rung::StopStart] {
                let why = not_applicable(rung, risky, 0).unwrap();
                assert!(why.ends_with("may not come back from a reboot"), "{why}");
            }
            assert_eq!(not_applicable(Rung::Relaunch, risky, 0), None);
        }
    }

    #[test]
    fn next_rung_table() {
        use Rung::*;
        let l = Ladders::default();
        let running = instance("m5.large", "ebs", None, "running");
        let stopped = instance("m5.large", "ebs", None, "stopped");
        let no_recovery = instance("m5d.large", "ebs", None, "running");
        let system = l.system.clone();
        let inst = l.instance.clone();
        let (reboot_only, stop_start_only) = (vec![Reboot], vec![StopStart]);
        let store = instance("m5.large", "instance-store", None, "running");
        // (what, ladder, marks, instance, now, want)
        type Case<'a> = (
            &'a str,
            &'a Vec<Rung>,
            Vec<Mark>,
            &'a InstanceFacts,
            i64,
            Next,
        );
        let cases: Vec<Case> = vec![
            ("first rung", &inst, vec![], &running, T, Next::Start { rung: Reboot, skipped: vec![] }),
            ("reboot under way", &inst, vec![(Reboot, T)], &running, T + MIN, Next::Wait { rung: Reboot, until_ms: T + 5 * MIN }),
            ("reboot did not help", &inst, vec![(Reboot, T)], &running, T + 5 * MIN, Next::Start { rung: Relaunch, skipped: vec![] }),
            (
                "recovery does not apply: straight to stop-start",
                &system,
                vec![],
                &no_recovery,
                T,
                Next::Start { rung: StopStart, skipped: vec!["ec2-recovery: m5d.large does not support EC2's automatic recovery".into()] },
            ),
            ("waiting for EC2's recovery", &system, vec![(Ec2Recovery, T)], &running, T + 9 * MIN, Next::Wait { rung: Ec2Recovery, until_ms: T + 10 * MIN }),
            ("EC2's recovery did not come", &system, vec![(Ec2Recovery, T)], &running, T + 10 * MIN, Next::Start { rung: StopStart, skipped: vec![] }),
            ("stopping", &system, vec![(Ec2Recovery, T), (StopStart, T + 10 * MIN)], &running, T + 11 * MIN, Next::Wait { rung: StopStart, until_ms: T + 11 * MIN }),
            ("stopped: start it", &system, vec![(Ec2Recovery, T), (StopStart, T + 10 * MIN)], &stopped, T + 11 * MIN, Next::StartAgain),
            ("never stopped", &system, vec![(Ec2Recovery, T), (StopStart, T + 10 * MIN)], &running, T + 20 * MIN, Next::Start { rung: Relaunch, skipped: vec![] }),
            (
                "started, waiting",
                &system,
                vec![(Ec2Recovery, T), (StopStart, T + 10 * MIN), (StopStart, T + 12 * MIN)],
                &running,
                T + 13 * MIN,
                Next::Wait { rung: StopStart, until_ms: T + 22 * MIN },
            ),
            (
                "started, did not help",
                &system,
                vec![(Ec2Recovery, T), (StopStart, T + 10 * MIN), (StopStart, T + 12 * MIN)],
                &running,
                T + 22 * MIN,
                Next::Start { rung: Relaunch, skipped: vec![] },
            ),
            (
                "a ladder without relaunch ends with people",
                &reboot_only,
                vec![(Reboot, T)],
                &running,
                T + 5 * MIN,
                Next::People(Handover::LadderEnded, "still failing after reboot: needs a person (see docs/RUNBOOK.md)".into()),
            ),
            (
                "nothing applies",
                &stop_start_only,
                vec![],
                &store,
                T,
                Next::People(Handover::NoRung, "no rung of the ladder applies (skipped: stop-start: instance-store root): needs a person (see docs/RUNBOOK.md)".into()),
            ),
        ];
        for (what, ladder, marks, i, now, want) in cases {
            assert_eq!(next(ladder, &marks, i, (&[], T), &l, now), want, "{what}");
        }
        // What EC2 announced: (what, heard, marks, now, want).
        let waiting = vec![(Ec2Recovery, T)];
        type HeardCase<'a> = (&'a str, Vec<Announcement>, Vec<Mark>, i64, Next);
        let heard_cases: Vec<HeardCase> = vec![
            (
                "a failure announced ends the wait at once",
                vec![(Heard::Failed, T + 2 * MIN)],
                waiting.clone(),
                T + 3 * MIN,
                Next::Start { rung: StopStart, skipped: vec![] },
            ),
            (
                "announced a little before the alarm: this incident's",
                vec![(Heard::Failed, T - 5 * MIN)],
                waiting.clone(),
                T + 3 * MIN,
                Next::Start { rung: StopStart, skipped: vec![] },
            ),
            (
                "a failure of an earlier incident does not end this wait",
                vec![(Heard::Failed, T - 2 * 60 * MIN)],
                waiting.clone(),
                T + 3 * MIN,
                Next::Wait { rung: Ec2Recovery, until_ms: T + 10 * MIN },
            ),
            (
                "a success announced: still the status checks decide (see heal)",
                vec![(Heard::Recovered, T + 2 * MIN)],
                waiting.clone(),
                T + 3 * MIN,
                Next::Wait { rung: Ec2Recovery, until_ms: T + 10 * MIN },
            ),
            (
                "three attempts in a day: EC2 will not try again",
                vec![(Heard::Recovered, T - 20 * 60 * MIN), (Heard::Recovered, T - 10 * 60 * MIN), (Heard::Failed, T - 60 * MIN)],
                vec![],
                T,
                Next::Start { rung: StopStart, skipped: vec!["ec2-recovery: EC2 already tried 3 times in the last 24 h (it tries at most 3)".into()] },
            ),
            (
                "attempts older than a day do not count",
                vec![(Heard::Recovered, T - 30 * 60 * MIN), (Heard::Recovered, T - 10 * 60 * MIN), (Heard::Failed, T - 60 * MIN)],
                vec![],
                T,
                Next::Start { rung: Ec2Recovery, skipped: vec![] },
            ),
        ];
        for (what, heard, marks, now, want) in heard_cases {
            assert_eq!(
                next(&system, &marks, &running, (&heard, T), &l, now),
                want,
                "{what}"
            );
        }
        let quick = Ladders {
            timeout_ms: Some(MIN),
            ..Ladders::default()
        };
        assert_eq!(
            next(&inst, &[(Reboot, T)], &running, (&[], T), &quick, T + MIN),
            Next::Start {
                rung: Relaunch,
                skipped: vec![]
            },
            "AUTOHEAL_RUNG_TIMEOUT"
        );
    }
}
