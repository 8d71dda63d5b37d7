//! The order of the rules on a claimed incident, pure: from what was observed (the facts,
//! the ladder's next rung, the breaker's verdict) and the clock, what happens now. The
//! rules stand in this order before the first rung: a relaunch under way resumes; the
//! ladder (its wait, its end, the lineage budget); the breaker; the grace period; EC2's
//! confirmation; then the guards (`Plan::Repair { guarded: true }`: the shell admits the
//! repair in its scopes, which needs the ledger). A later rung starts only while EC2 still
//! reports the failure.

use super::decide::{for_people, grace_hold, limit_lineage, Grace, Step};
use crate::intake::{Heard, Metric};
use crate::model::facts::{Check, Facts, InstanceFacts};
use crate::model::handover::Handover;
use crate::model::outcome::{Action, Verdict};
use crate::model::progress::Phase;
use crate::rules::incident::{Head, HoldKind};
use crate::rules::ladder::{self, Ladders, Next, Rung};
use crate::rules::trust::{self, AfterRung, Confirmation};

/// A repair the shell carries out.
#[derive(Debug, Clone, PartialEq)]
pub enum Repair {
    /// Image and relaunch the standalone instance (or take the relaunch's next phase).
    Relaunch,
    /// Start a rung other than the relaunch, or start a stopped instance again.
    Rung(Next),
    /// `SetInstanceHealth(Unhealthy)` in the member's group.
    Mark { group: String },
}

/// What happens to a claimed incident now.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// Repair; past the guards first when `guarded` (before the first rung).
    Repair { repair: Repair, guarded: bool },
    /// A rung is under way: look again at `until_ms`. `announced`: EC2 announced then that
    /// it recovered the instance, but its status checks do not agree yet.
    Wait {
        rung: Rung,
        until_ms: i64,
        announced: Option<i64>,
    },
    /// After a rung, EC2 reports the checks ok: close it.
    Recovered,
    /// Given back and looked at again by the tick from `until_ms`.
    Hold {
        kind: HoldKind,
        until_ms: i64,
        why: String,
    },
    /// EC2 does not report the failure: held until the confirmation window from `since_ms`
    /// ends, then closed for people.
    Unconfirmed { since_ms: i64, why: String },
    /// Call nothing; report this (for people, when `handover` says why).
    Report {
        action: Action,
        result: Verdict,
        reason: String,
        handover: Option<Handover>,
    },
    /// A person has taken the instance over after a rung: close the incident, report once,
    /// no further rung.
    TakenOver { why: String },
}

/// Everything the plan is made from.
#[derive(Debug, Clone)]
pub struct Seen<'a> {
    pub head: &'a Head,
    pub facts: &'a Facts,
    /// `decide`'s step for the signal.
    pub step: Step,
    /// The metric the incident is about (its opening alarm's).
    pub metric: Metric,
    /// The ladder's next rung (`climb`), read when `Reads::ladder` said so.
    pub climb: Option<Next>,
    /// Why the breaker stops repairs in this scope, when it is open; asked only when
    /// `Reads::breaker` said so.
    pub breaker: Option<String>,
    pub grace: Grace,
    pub lineage_window_ms: i64,
    pub ladders: &'a Ladders,
    pub now_ms: i64,
}

/// What the shell must find out before the plan, beyond the facts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reads {
    /// The ladder's facts (`enrich`), then `climb`: a standalone instance to repair.
    pub ladder: bool,
    /// The breaker's verdict: every alarm before a first rung counts, whatever its step.
    pub breaker: bool,
    /// The guards' scope items, read ahead: a first rung of a repair may be guarded.
    pub scopes: bool,
}

pub fn reads(head: &Head, step: &Step, facts: &Facts) -> Reads {
    let resumed = head.progress.under_way() || head.relaunch_by_notice();
    let fresh = !resumed && !finished(head, step);
    let first = fresh && head.rungs.is_empty();
    Reads {
        ladder: fresh && *step == Step::Relaunch && facts.instance.is_some(),
        breaker: first && !head.by_notice(),
        scopes: first && matches!(step, Step::MarkUnhealthy { .. } | Step::Relaunch),
    }
}

/// One relaunch per incident: a step to relaunch an incident whose relaunch ended.
fn finished(head: &Head, step: &Step) -> bool {
    *step == Step::Relaunch && head.progress.is_finished()
}

/// What the ladder says for this standalone instance now; the combined metric picks its
/// ladder by the status checks EC2 reports.
pub fn climb(
    ladders: &Ladders,
    metric: Metric,
    head: &Head,
    facts: &Facts,
    instance: &InstanceFacts,
    now_ms: i64,
) -> Next {
    let only_instance = ladder::needs_status(metric, &instance.tags, ladders)
        && facts.checks.instance == Check::Impaired
        && facts.checks.system != Check::Impaired;
    match ladder::choose(metric, only_instance, &instance.tags, ladders) {
        Err(why) => Next::People(
            Handover::BadLadderTag,
            format!("{why}: needs a person (see docs/RUNBOOK.md)"),
        ),
        Ok(rungs) => ladder::next(
            &rungs,
            &head.rungs,
            instance,
            (&head.ec2_heard, head.opened_ms),
            ladders,
            now_ms,
        ),
    }
}

pub fn plan(seen: Seen) -> Plan {
    let head = seen.head;
    if head.progress.under_way() || head.relaunch_by_notice() {
        return repair(Repair::Relaunch, false);
    }
    let state = seen
        .facts
        .instance
        .as_ref()
        .map_or("", |i| i.state.as_str());
    if let Some(why) = person_took_over(head, state) {
        return Plan::TakenOver { why };
    }
    let finished = finished(head, &seen.step);
    let step = match ladder_step(&seen, state) {
        Ok(step) => step,
        Err(plan) => return plan,
    };
    let guarded = match gate(&seen, &step, finished, state) {
        Ok(guarded) => guarded,
        Err(plan) => return plan,
    };
    carry_out(seen, step, guarded, finished)
}

/// The step as the ladder shapes it: a rung under way waits (or is over, when EC2 announced
/// its recovery and the checks agree), no rung left goes to people, a fresh copy is not
/// relaunched again. `Err`: the plan, already.
fn ladder_step(seen: &Seen, state: &str) -> Result<Step, Plan> {
    let (head, facts) = (seen.head, seen.facts);
    Ok(match (&seen.climb, &facts.instance) {
        (Some(Next::Wait { rung, until_ms }), _) => {
            // EC2 announced its recovery: done when EC2's status checks agree.
            let announced = (*rung == Rung::Ec2Recovery)
                .then(|| head.heard(Heard::Recovered))
                .flatten();
            if announced.is_some()
                && trust::after_rung(seen.metric, facts.checks, state) == AfterRung::Recovered
            {
                return Err(Plan::Recovered);
            }
            return Err(Plan::Wait {
                rung: *rung,
                until_ms: *until_ms,
                announced,
            });
        }
        (Some(Next::People(kind, why)), _) => {
            for_people(*kind, Action::None, Verdict::Held, why.clone())
        }
        // One relaunch per lineage: only the relaunch rung is refused to a fresh copy; a
        // reboot may still have helped it.
        (
            Some(Next::Start {
                rung: Rung::Relaunch,
                ..
            }),
            Some(i),
        ) => limit_lineage(seen.step.clone(), i, seen.lineage_window_ms, seen.now_ms),
        _ => seen.step.clone(),
    })
}

/// What stands before a repair: on a first step, the breaker, the grace period and EC2's
/// confirmation (then the guards: `Ok(true)`); on a later rung, the instance still failing.
/// `Err`: the plan that holds or closes instead.
fn gate(seen: &Seen, step: &Step, finished: bool, state: &str) -> Result<bool, Plan> {
    let (head, now_ms) = (seen.head, seen.now_ms);
    let (metric, checks) = (seen.metric, seen.facts.checks);
    let repairs = matches!(step, Step::MarkUnhealthy { .. } | Step::Relaunch);
    if !finished && head.rungs.is_empty() {
        // A notice's repair (retried after a failure): EC2's listed event is its cause, and
        // nothing failed for a breaker, a grace period or a confirmation to weigh.
        if head.by_notice() {
            return Ok(repairs);
        }
        if let (Some(why), true) = (seen.breaker.clone(), repairs) {
            let kind = HoldKind::Breaker;
            return Err(Plan::Hold {
                kind,
                until_ms: now_ms,
                why,
            });
        }
        if let Some((until_ms, why)) = grace_hold(step, head.opened_ms, seen.grace, now_ms) {
            return Err(Plan::Hold {
                kind: HoldKind::Grace,
                until_ms,
                why,
            });
        }
        if repairs {
            if let Confirmation::Unconfirmed(why) = trust::confirm(metric, checks) {
                return Err(Plan::Unconfirmed {
                    since_ms: head.opened_ms,
                    why,
                });
            }
        }
        return Ok(repairs);
    }
    if repairs && matches!(seen.climb, Some(Next::Start { .. })) {
        // A later rung only while the instance is still failing.
        match trust::after_rung(metric, checks, state) {
            AfterRung::Recovered => return Err(Plan::Recovered),
            AfterRung::StillFailing => {}
            AfterRung::NotYet(why) => {
                let since_ms = head.rungs.last().map_or(head.opened_ms, |(rung, at)| {
                    at + seen.ladders.timeout_ms(*rung)
                });
                return Err(Plan::Unconfirmed { since_ms, why });
            }
        }
    }
    Ok(false)
}

/// The step, past what stands before it, as the plan the shell carries out.
fn carry_out(seen: Seen, step: Step, guarded: bool, finished: bool) -> Plan {
    match (seen.climb, step) {
        // The rung is recorded with the relaunch's first step: a first step that failed
        // transiently is retried as the same rung, not counted as tried.
        (
            Some(Next::Start {
                rung: Rung::Relaunch,
                ..
            }),
            Step::Relaunch,
        ) => repair(Repair::Relaunch, guarded),
        (Some(next @ (Next::Start { .. } | Next::StartAgain)), Step::Relaunch) => {
            repair(Repair::Rung(next), guarded)
        }
        // One relaunch per incident: a new alarm after it ended goes to people.
        (_, Step::Relaunch) if finished => Plan::Report {
            action: Action::LaunchReplacement,
            result: Verdict::Held,
            reason: format!(
                "this incident's relaunch already ended ({}); not retried automatically: see docs/RUNBOOK.md",
                seen.head.progress.phase.map_or("?", Phase::as_str)
            ),
            handover: Some(Handover::RelaunchOver),
        },
        (_, Step::Relaunch) => repair(Repair::Relaunch, guarded),
        (_, Step::MarkUnhealthy { group }) => repair(Repair::Mark { group }, guarded),
        (
            _,
            Step::Report {
                action,
                result,
                reason,
                handover,
            },
        ) => Plan::Report {
            handover,
            reason: match result {
                Verdict::DryRun => format!("{reason}; {}", seen.facts.checks.said()),
                _ => reason,
            },
            action,
            result,
        },
    }
}

/// After a rung, a state autoheal did not cause: stopped or stopping when no rung of its
/// stopped the instance. Someone else's hand, not a failure to climb on from.
fn person_took_over(head: &Head, state: &str) -> Option<String> {
    let after_rung = !head.rungs.is_empty() && head.progress.phase.is_none();
    let stopped_by_autoheal = head.rungs.iter().any(|(r, _)| *r == Rung::StopStart);
    (after_rung && !stopped_by_autoheal && matches!(state, "stopped" | "stopping")).then(|| {
        format!(
            "taken over by a person: the instance is {state} and autoheal did not stop it (after {}); incident closed, no further rung",
            head.rungs.last().map_or("its ladder", |(r, _)| r.as_str())
        )
    })
}

fn repair(repair: Repair, guarded: bool) -> Plan {
    Plan::Repair { repair, guarded }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intake::{AlarmState, Signal};
    use crate::model::facts::{Checks, GroupFacts};
    use crate::model::progress::Progress;
    use crate::model::tags::SOURCE_TAG;
    use crate::rules::incident::{incident_id, AlarmContext, Status};

    const T0: i64 = 1_795_403_565_123;
    const MIN: i64 = 60_000;

    /// One row: what the incident and the world look like; the plan expected.
    #[derive(Clone)]
    struct Case {
        step: Step,
        climb: Option<Next>,
        breaker: bool,
        grace_min: i64,
        rungs: Vec<(Rung, i64)>,
        phase: Option<Phase>,
        checks: Checks,
        heard_recovered: bool,
        copy_launched_min_ago: Option<i64>,
        /// The instance's EC2 state.
        state: &'static str,
    }

    const IMPAIRED: Checks = Checks {
        system: Check::Impaired,
        instance: Check::Impaired,
    };
    const OK: Checks = Checks {
        system: Check::Ok,
        instance: Check::Ok,
    };
    const INITIALIZING: Checks = Checks {
        system: Check::Initializing,
        instance: Check::Initializing,
    };

    fn mark() -> Step {
        Step::MarkUnhealthy {
            group: "web".into(),
        }
    }

    fn start(rung: Rung) -> Option<Next> {
        Some(Next::Start {
            rung,
            skipped: vec![],
        })
    }

    fn base(step: Step) -> Case {
        Case {
            step,
            climb: None,
            breaker: false,
            grace_min: 0,
            rungs: vec![],
            phase: None,
            checks: IMPAIRED,
            heard_recovered: false,
            copy_launched_min_ago: None,
            state: "running",
        }
    }

    fn head(c: &Case) -> Head {
        let s = Signal {
            instance_id: "i-0123456789abcdef0".into(),
            metric: Metric::StatusCheckFailed,
            state: AlarmState::Alarm,
            changed_at: chrono::DateTime::from_timestamp_millis(T0).unwrap(),
            alarm_name: "a".into(),
            alarm_arn: None,
            by_notice: false,
            region: None,
            account: None,
            reason: String::new(),
        };
        let mut progress = Progress::default();
        if let Some(p) = c.phase {
            progress.enter(p, T0 + MIN);
        }
        Head {
            instance_id: s.instance_id.clone(),
            incident_id: incident_id(&s.instance_id, s.changed_at),
            status: Status::Repairing,
            opened_ms: T0,
            alarm_ms: T0,
            closed_ms: None,
            transitions: vec![s.transition_key()],
            lease_until_ms: T0 + 10 * MIN,
            version: 1,
            attempts: 1,
            action: None,
            result: None,
            reason: None,
            group: None,
            alarm: AlarmContext::of(&s),
            progress,
            hold_until_ms: None,
            rungs: c.rungs.clone(),
            hold_kind: None,
            hold_scope: None,
            member_steps: vec![],
            ec2_heard: match c.heard_recovered {
                true => vec![(Heard::Recovered, T0 + 2 * MIN)],
                false => vec![],
            },
        }
    }

    fn facts(c: &Case) -> Facts {
        let mut instance = InstanceFacts {
            instance_id: "i-0123456789abcdef0".into(),
            state: c.state.into(),
            ..Default::default()
        };
        if let Some(ago) = c.copy_launched_min_ago {
            instance.tags.insert(SOURCE_TAG.into(), "i-0ld".into());
            instance.launch_ms = Some(T0 + 5 * MIN - ago * MIN);
        }
        Facts {
            instance: Some(instance),
            group: matches!(c.step, Step::MarkUnhealthy { .. }).then(|| GroupFacts {
                name: "web".into(),
                ..Default::default()
            }),
            checks: c.checks,
        }
    }

    fn run(c: &Case) -> Plan {
        let (head, facts, ladders) = (head(c), facts(c), Ladders::default());
        plan(Seen {
            head: &head,
            facts: &facts,
            step: c.step.clone(),
            metric: Metric::StatusCheckFailed,
            climb: c.climb.clone(),
            breaker: c
                .breaker
                .then(|| "breaker open: 3 members of web".to_string()),
            grace: Grace {
                group_member_ms: c.grace_min * MIN,
                standalone_ms: c.grace_min * MIN,
            },
            lineage_window_ms: 24 * 60 * MIN,
            ladders: &ladders,
            now_ms: T0 + 5 * MIN,
        })
    }

    fn describe(p: &Plan) -> String {
        match p {
            Plan::Repair { repair, guarded } => format!(
                "repair {}{}",
                match repair {
                    Repair::Relaunch => "relaunch".to_string(),
                    Repair::Mark { group } => format!("mark in {group}"),
                    Repair::Rung(Next::Start { rung, .. }) => rung.as_str().to_string(),
                    Repair::Rung(other) => format!("{other:?}"),
                },
                if *guarded { ", guarded" } else { "" }
            ),
            Plan::Wait {
                rung, announced, ..
            } => format!(
                "wait {}{}",
                rung.as_str(),
                announced.map_or("", |_| ", announced")
            ),
            Plan::Recovered => "recovered".into(),
            Plan::Hold { kind, until_ms, .. } => {
                format!("hold {} until +{}m", kind.as_str(), (until_ms - T0) / MIN)
            }
            Plan::Unconfirmed { since_ms, .. } => {
                format!("unconfirmed since +{}m", (since_ms - T0) / MIN)
            }
            Plan::Report {
                action,
                result,
                handover,
                ..
            } => {
                let kind = handover.map_or(String::new(), |h| format!(" for {}", h.anchor()));
                format!("report {} {}{kind}", action.as_str(), result.as_str())
            }
            Plan::TakenOver { why } => why.clone(),
        }
    }

    #[test]
    fn the_rules_stand_in_order() {
        let report = |action, result, reason: &str| Step::Report {
            action,
            result,
            reason: reason.into(),
            handover: None,
        };
        let timeout = Ladders::default().timeout_ms(Rung::Reboot) / MIN;
        let rows: Vec<(&str, Case, String)> = vec![
            (
                "a relaunch under way resumes, before any rule",
                Case {
                    phase: Some(Phase::Launching),
                    breaker: true,
                    grace_min: 60,
                    checks: OK,
                    ..base(Step::Relaunch)
                },
                "repair relaunch".into(),
            ),
            (
                "a member EC2 confirms: past the guards, then marked",
                base(mark()),
                "repair mark in web, guarded".into(),
            ),
            (
                "the breaker holds a repair before the grace",
                Case {
                    breaker: true,
                    grace_min: 60,
                    ..base(mark())
                },
                "hold breaker until +5m".into(),
            ),
            (
                "an open breaker does not hold what repairs nothing",
                Case {
                    breaker: true,
                    ..base(report(Action::None, Verdict::Held, "notify only"))
                },
                "report none held".into(),
            ),
            (
                "the grace period, measured from the opening alarm",
                Case {
                    grace_min: 10,
                    ..base(mark())
                },
                "hold grace until +10m".into(),
            ),
            (
                "the grace over, EC2 must confirm",
                Case {
                    grace_min: 2,
                    checks: OK,
                    ..base(mark())
                },
                "unconfirmed since +0m".into(),
            ),
            (
                "a first rung, confirmed: guarded",
                Case {
                    climb: start(Rung::Reboot),
                    ..base(Step::Relaunch)
                },
                "repair reboot, guarded".into(),
            ),
            (
                "the ladder reaches the relaunch: guarded",
                Case {
                    climb: start(Rung::Relaunch),
                    ..base(Step::Relaunch)
                },
                "repair relaunch, guarded".into(),
            ),
            (
                "a fresh copy is not relaunched again (lineage)",
                Case {
                    climb: start(Rung::Relaunch),
                    copy_launched_min_ago: Some(30),
                    ..base(Step::Relaunch)
                },
                "report launch_replacement held for relaunch-budget-spent".into(),
            ),
            (
                "a copy older than the lineage window is relaunched",
                Case {
                    climb: start(Rung::Relaunch),
                    copy_launched_min_ago: Some(25 * 60),
                    ..base(Step::Relaunch)
                },
                "repair relaunch, guarded".into(),
            ),
            (
                "the ladder ends with people",
                Case {
                    climb: Some(Next::People(Handover::LadderEnded, "every rung tried".into())),
                    rungs: vec![(Rung::Reboot, T0)],
                    ..base(Step::Relaunch)
                },
                "report none held for ladder-ended-still-failing".into(),
            ),
            (
                "a rung under way waits, breaker or not",
                Case {
                    climb: Some(Next::Wait {
                        rung: Rung::Reboot,
                        until_ms: T0 + 10 * MIN,
                    }),
                    rungs: vec![(Rung::Reboot, T0)],
                    breaker: true,
                    ..base(Step::Relaunch)
                },
                "wait reboot".into(),
            ),
            (
                "EC2 announced its recovery and its checks agree",
                Case {
                    climb: Some(Next::Wait {
                        rung: Rung::Ec2Recovery,
                        until_ms: T0 + 10 * MIN,
                    }),
                    rungs: vec![(Rung::Ec2Recovery, T0)],
                    heard_recovered: true,
                    checks: OK,
                    ..base(Step::Relaunch)
                },
                "recovered".into(),
            ),
            (
                "EC2 announced its recovery, its checks disagree",
                Case {
                    climb: Some(Next::Wait {
                        rung: Rung::Ec2Recovery,
                        until_ms: T0 + 10 * MIN,
                    }),
                    rungs: vec![(Rung::Ec2Recovery, T0)],
                    heard_recovered: true,
                    ..base(Step::Relaunch)
                },
                "wait ec2-recovery, announced".into(),
            ),
            (
                "a later rung while still failing: no guards, no grace again",
                Case {
                    climb: start(Rung::StopStart),
                    rungs: vec![(Rung::Reboot, T0)],
                    grace_min: 60,
                    breaker: true,
                    ..base(Step::Relaunch)
                },
                "repair stop-start".into(),
            ),
            (
                "stopped after a reboot, which stops nothing: a person's hand ends it",
                Case {
                    climb: start(Rung::Relaunch),
                    rungs: vec![(Rung::Reboot, T0)],
                    state: "stopped",
                    ..base(Step::Relaunch)
                },
                "taken over by a person: the instance is stopped and autoheal did not stop it (after reboot); incident closed, no further rung".into(),
            ),
            (
                "stopping while a reboot waits: a person's hand, no waiting",
                Case {
                    climb: Some(Next::Wait {
                        rung: Rung::Reboot,
                        until_ms: T0 + 10 * MIN,
                    }),
                    rungs: vec![(Rung::Reboot, T0)],
                    state: "stopping",
                    ..base(Step::Relaunch)
                },
                "taken over by a person: the instance is stopping and autoheal did not stop it (after reboot); incident closed, no further rung".into(),
            ),
            (
                "stopped by autoheal's own stop-start: started again",
                Case {
                    climb: Some(Next::StartAgain),
                    rungs: vec![(Rung::StopStart, T0)],
                    state: "stopped",
                    ..base(Step::Relaunch)
                },
                "repair StartAgain".into(),
            ),
            (
                "stopped before any rung: no hand to read, the alarm's repair goes on",
                Case {
                    state: "stopped",
                    ..base(Step::Relaunch)
                },
                "repair relaunch, guarded".into(),
            ),
            (
                "after a rung, EC2 reports the checks ok",
                Case {
                    climb: start(Rung::StopStart),
                    rungs: vec![(Rung::Reboot, T0)],
                    checks: OK,
                    ..base(Step::Relaunch)
                },
                "recovered".into(),
            ),
            (
                "after a rung, EC2 reports neither: looked at again from the rung's timeout",
                Case {
                    climb: start(Rung::StopStart),
                    rungs: vec![(Rung::Reboot, T0)],
                    checks: INITIALIZING,
                    ..base(Step::Relaunch)
                },
                format!("unconfirmed since +{timeout}m"),
            ),
            (
                "an incident whose relaunch ended is not relaunched again",
                Case {
                    phase: Some(Phase::Failed),
                    ..base(Step::Relaunch)
                },
                "report launch_replacement held for relaunch-already-ended".into(),
            ),
            (
                "what decide reports is reported",
                base(report(
                    Action::MarkUnhealthy,
                    Verdict::Duplicate,
                    "terminating",
                )),
                "report mark_unhealthy duplicate".into(),
            ),
        ];
        for (name, case, want) in rows {
            assert_eq!(describe(&run(&case)), want, "{name}");
        }
    }

    #[test]
    fn dry_run_says_what_ec2_reports_and_an_ended_relaunch_names_its_phase() {
        let dry = base(Step::Report {
            action: Action::MarkUnhealthy,
            result: Verdict::DryRun,
            reason: "dry run: would mark".into(),
            handover: Some(Handover::DryRun),
        });
        let Plan::Report { reason, .. } = run(&dry) else {
            panic!("a dry run reports")
        };
        assert_eq!(
            reason,
            "dry run: would mark; EC2 reports both status checks impaired"
        );
        let ended = Case {
            phase: Some(Phase::Recovered),
            ..base(Step::Relaunch)
        };
        let Plan::Report { reason, .. } = run(&ended) else {
            panic!("an ended relaunch reports")
        };
        assert!(reason.contains("already ended (recovered)"), "{reason}");
    }

    #[test]
    fn the_reads_the_plan_needs() {
        let (c, f) = (base(Step::Relaunch), facts(&base(Step::Relaunch)));
        let first = reads(&head(&c), &Step::Relaunch, &f);
        assert_eq!(
            first,
            Reads {
                ladder: true,
                breaker: true,
                scopes: true
            }
        );
        let later = Case {
            rungs: vec![(Rung::Reboot, T0)],
            ..c.clone()
        };
        assert_eq!(
            reads(&head(&later), &Step::Relaunch, &f),
            Reads {
                ladder: true,
                breaker: false,
                scopes: false
            }
        );
        let member = base(mark());
        assert_eq!(
            reads(&head(&member), &mark(), &facts(&member)),
            Reads {
                ladder: false,
                breaker: true,
                scopes: true
            }
        );
        // A notice's copy, before its first phase: resumed as a relaunch, with no reads
        // and whatever EC2's checks say (nothing failed: EC2 announced the event).
        let notice = Case {
            rungs: vec![(Rung::Relaunch, T0)],
            checks: OK,
            ..c.clone()
        };
        let mut by_notice = head(&notice);
        by_notice.transitions = vec!["notice:us-east-1/i-1#instance-stop#x".into()];
        assert!(by_notice.relaunch_by_notice());
        assert!(!head(&notice).relaunch_by_notice(), "an alarm's");
        let none = Reads {
            ladder: false,
            breaker: false,
            scopes: false,
        };
        assert_eq!(reads(&by_notice, &Step::Relaunch, &f), none);
        let (facts, ladders) = (facts(&notice), Ladders::default());
        let planned = plan(Seen {
            head: &by_notice,
            facts: &facts,
            step: Step::Relaunch,
            metric: Metric::StatusCheckFailed,
            climb: None,
            breaker: None,
            grace: Grace::default(),
            lineage_window_ms: 0,
            ladders: &ladders,
            now_ms: T0,
        });
        assert_eq!(planned, repair(Repair::Relaunch, false));
        by_notice.progress.enter(Phase::Failed, T0);
        assert!(!by_notice.relaunch_by_notice(), "ended");
        // A notice's mark retried: no breaker read, no grace, no confirmation; the guards.
        let member = Case {
            checks: OK,
            grace_min: 10,
            ..base(mark())
        };
        let mut marked = head(&member);
        marked.transitions = vec!["notice:us-east-1/i-1#system-reboot#x".into()];
        let member_facts = super::tests::facts(&member);
        let reads_of = reads(&marked, &mark(), &member_facts);
        assert!(!reads_of.breaker && reads_of.scopes, "{reads_of:?}");
        let planned = plan(Seen {
            head: &marked,
            facts: &member_facts,
            step: mark(),
            metric: Metric::StatusCheckFailed,
            climb: None,
            breaker: None,
            grace: Grace {
                group_member_ms: 10 * MIN,
                standalone_ms: 10 * MIN,
            },
            lineage_window_ms: 0,
            ladders: &ladders,
            now_ms: T0,
        });
        let group = "web".to_string();
        assert_eq!(planned, repair(Repair::Mark { group }, true));
        for phase in [Phase::Imaging, Phase::Failed] {
            let relaunch = Case {
                phase: Some(phase),
                ..c.clone()
            };
            assert_eq!(
                reads(&head(&relaunch), &Step::Relaunch, &f),
                Reads {
                    ladder: false,
                    breaker: false,
                    scopes: false
                },
                "{phase:?}"
            );
        }
    }
}
