//! The plan carried out: a hold, a wait, a close, or a repair admitted past the guards —
//! one file per kind of repair — then settled and reported.

pub mod alarms;
pub mod breaker;
pub mod close;
pub mod guard;
pub mod hold;
pub mod ladder;
pub mod mark;
pub mod relaunch;
pub mod replacement;

use super::commit::{fail, settle};
use super::decide::{Decided, Unread};
use super::report::{self, clock_text};
use crate::app::Run;
use crate::error::Error;
use crate::intake::Signal;
use crate::model::facts::Facts;
use crate::model::handover::Handover;
use crate::model::outcome::{Action, Outcome, Verdict};
use crate::rules::history;
use crate::rules::incident::{Head, HoldKind};
use crate::rules::plan::{Plan, Repair};
use hold::{Held, Telling};

/// Carries out the plan on the claimed incident. `poll`: a relaunch may wait for the world
/// within this invocation (not on the tick).
pub async fn act(
    run: &Run<'_>,
    s: &Signal,
    head: Head,
    decided: Result<Decided, Unread>,
    poll: bool,
) -> Result<Outcome, Error> {
    let d = match decided {
        Ok(d) => d,
        Err(Unread { facts, error }) => {
            return fail(run, &head, s, facts.as_ref(), Action::None, error).await
        }
    };
    let facts = &d.facts;
    let (repair, guarded) = match d.plan {
        Plan::Repair { repair, guarded } => (repair, guarded),
        other => return without_repair(run, s, head, facts, other, d.open).await,
    };
    if guarded && !d.admitted {
        match guard::admit_everywhere(run, facts, &head, &d.desired).await {
            Ok(None) => {}
            // Looked at again by the next tick.
            Ok(Some((why, told))) => {
                let held = Held {
                    until_ms: run.now_ms(),
                    why,
                    told,
                    kind: HoldKind::Guard,
                    scope: None,
                };
                return hold::hold(run, head, s, facts, held).await;
            }
            Err(e) => return fail(run, &head, s, Some(facts), Action::None, e).await,
        }
    }
    match repair {
        Repair::Relaunch => Box::pin(relaunch::run(run, head, poll)).await,
        Repair::Rung(next) => ladder::climb(run, head, s, facts, next).await,
        Repair::Mark { group } => mark::mark(run, head, s, facts, &group).await,
    }
}

/// A plan that repairs nothing now: wait, close, hold or report. `open`: the breaker
/// that holds it, if one does.
async fn without_repair(
    run: &Run<'_>,
    s: &Signal,
    head: Head,
    facts: &Facts,
    plan: Plan,
    open: Option<breaker::Open>,
) -> Result<Outcome, Error> {
    let outcome =
        |action, result, why| Outcome::new(Some(s.instance_id.clone()), action, result, why);
    match plan {
        Plan::Repair { .. } => unreachable!("a repair is carried out by `act`"),
        Plan::Wait {
            rung,
            until_ms,
            announced,
        } => {
            let mut o = ladder::wait(run, head, rung, until_ms).await?;
            if let Some(t) = announced {
                o.reason = format!(
                    "EC2 announced at {} that it recovered the instance, but {}; looked at again until {}, then the next rung",
                    clock_text(t),
                    facts.checks.said(),
                    clock_text(until_ms)
                );
            }
            Ok(o)
        }
        Plan::Recovered => close::recovered_after_rung(run, head, s, facts).await,
        Plan::Hold {
            kind,
            until_ms,
            why,
        } => {
            let held = match (kind, open) {
                // Not looked at again until its breaker closes (or could have).
                (HoldKind::Breaker, Some(open)) => Held {
                    until_ms: open.until_ms.max(until_ms),
                    why,
                    told: Telling::Summarised(open.summary),
                    kind,
                    scope: Some(open.scope),
                },
                _ => Held {
                    until_ms,
                    why,
                    told: Telling::Report,
                    kind,
                    scope: None,
                },
            };
            hold::hold(run, head, s, facts, held).await
        }
        Plan::TakenOver { why } => {
            let o = outcome(Action::None, Verdict::Held, why).for_people(Handover::TakenOver);
            close::close(run, head, s, facts, o).await
        }
        // Held behind a breaker and now well again: one of the storm's many, closed quietly.
        Plan::Unconfirmed { why, .. } if head.hold_kind == Some(HoldKind::Breaker) => {
            let why = format!("{why}: it recovered while held behind a breaker; closed without a repair (the storm's messages stand for it)");
            let o = outcome(Action::None, Verdict::Done, why);
            close::close_quietly(run, head, s, facts, o).await
        }
        Plan::Unconfirmed { since_ms, why } => {
            hold::unconfirmed(run, head, s, facts, since_ms, why).await
        }
        Plan::Report {
            action,
            result,
            reason,
            handover,
        } => {
            let mut o = outcome(action, result, reason);
            o.handover = handover;
            finish(run, s, head, facts, o).await
        }
    }
}

/// The end of a decision that did not hold: settled (a marked member stays open until its
/// replacement is verified) and reported.
pub(crate) async fn finish(
    run: &Run<'_>,
    s: &Signal,
    head: Head,
    facts: &Facts,
    mut outcome: Outcome,
) -> Result<Outcome, Error> {
    outcome.incident = Some(head.incident_id.clone());
    outcome.group = facts.group.as_ref().map(|g| g.name.clone());
    outcome.inputs = Some(history::inputs(s, Some(facts), run.config.dry_run));
    if (outcome.action, outcome.result) == (Action::MarkUnhealthy, Verdict::Duplicate) {
        // Auto Scaling already has it (Unhealthy or terminating): not news for people.
        settle(run, &head, &outcome).await;
        return Ok(outcome);
    }
    // A member marked Unhealthy stays open until its replacement is verified.
    let keep = async {
        match (outcome.action, outcome.result) {
            (Action::MarkUnhealthy, Verdict::Done) => {
                replacement::begin(run, &head, &outcome).await
            }
            _ => settle(run, &head, &outcome).await,
        }
    };
    let (_, outcome) = tokio::join!(keep, report::decision(run, s, Some(facts), outcome.clone()));
    Ok(outcome)
}
