//! The only place that orders effects. An event's records are taken concurrently; each
//! goes through the stages in order: `intake` (parsed, routed here) -> `observe` (the
//! claim and EC2's facts, one round) -> `decide` (what the rules need, read in one round;
//! the plan) -> `act` (the plan's writes and calls) -> `report`. The tick (`tick`) moves
//! open incidents on through the same stages. An OK or EC2's announcement of a recovery
//! goes through `recover`.

pub mod act;
pub mod commit;
pub mod decide;
#[cfg(test)]
mod fakes;
pub mod notice;
pub mod observe;
pub mod recover;
pub mod report;
pub mod tick;

use crate::app::{Deps, Invocation, Run};
use crate::error::Error;
use crate::intake::{self, AlarmState, Intake, Signal};
use crate::model::handover::Handover;
use crate::model::outcome::{Action, Outcome, Response, Verdict};
use crate::rules::incident::Move;
use serde_json::Value;

/// A claim outlives the invocation's deadline by this much, so no two invocations can both
/// be inside a repair; after it, the next delivery resumes a repair that died.
pub const LEASE_MARGIN_MS: i64 = 5_000;

/// Handles one Lambda event. `Err` only when a retry of the whole invocation is safe and
/// useful; every other problem is an outcome.
pub async fn handle(deps: &Deps, event: &Value, inv: &Invocation) -> Result<Response, Error> {
    let run = Run::new(deps, inv);
    // Boxed once here: the pipeline's future is large, and a debug build's test threads
    // have small stacks.
    Box::pin(batch(&run, event)).await
}

async fn batch(run: &Run<'_>, event: &Value) -> Result<Response, Error> {
    let intakes = intake::parse_value(event);
    // SNS may put one message in a batch twice: the second is said here, not raced for.
    let mut seen = std::collections::HashSet::new();
    let results = futures::future::join_all(intakes.into_iter().map(|i| {
        let again = matches!(&i, Intake::Signal(s) if !seen.insert((s.key(), s.transition_key())));
        async move {
            match (again, i) {
                (true, Intake::Signal(s)) => {
                    let outcome = Outcome::new(
                        Some(s.instance_id),
                        Action::None,
                        Verdict::Duplicate,
                        "the same alarm transition as an earlier record of this event",
                    );
                    report::emit(&outcome);
                    Ok(vec![outcome])
                }
                (_, i) => process(run, i).await,
            }
        }
    }))
    .await;
    let mut outcomes = Vec::with_capacity(results.len());
    let mut retry = None;
    for r in results {
        match r {
            Ok(o) => outcomes.extend(o),
            Err(e) => {
                tracing::warn!(error = %e, "transient failure: the invocation will be retried");
                retry.get_or_insert(e);
            }
        }
    }
    match retry {
        Some(e) => Err(e),
        None => Ok(Response { outcomes }),
    }
}

/// One record: routed by what it is. Every outcome is logged; a decision about an instance
/// is kept in the audit trail.
pub(crate) async fn process(run: &Run<'_>, intake: Intake) -> Result<Vec<Outcome>, Error> {
    let received_ms = run.now_ms();
    let intake = in_own_region(intake, &run.config.region);
    if let Some(outcome) = foreign(run, &intake) {
        report::emit(&outcome);
        return Ok(vec![outcome]);
    }
    let outcome = match intake {
        Intake::Advance { trigger } => {
            let (mut outcomes, unreadable) = tick::run(run, trigger).await;
            // What the tick could not do itself (its backups, scan, re-sends, the open
            // index, an incident not advanced) is a warning for people, a dry run's backups
            // a dry run; an incident it moved on says why people have it already.
            for o in outcomes.iter_mut().filter(|o| o.asks_people()) {
                let kind = match o.result {
                    Verdict::DryRun => Handover::DryRun,
                    _ => Handover::TickWarning,
                };
                o.handover.get_or_insert(kind);
            }
            outcomes.iter().for_each(report::emit);
            report::record(run, &outcomes).await;
            // The open incidents could not be listed (ledger unavailable): a retry helps.
            return match unreadable {
                Some(e) => Err(e),
                None => Ok(outcomes),
            };
        }
        Intake::Resume { scope } => {
            // `group:web` is the function's own region's; `group:web@eu-west-1` another's.
            let scope = scope.or_region(&run.config.region);
            let outcome = act::breaker::resume(run, &scope).await?;
            report::emit(&outcome);
            return Ok(vec![outcome]);
        }
        Intake::Ignored {
            instance_id,
            reason,
        } => Outcome::new(instance_id, Action::None, Verdict::Ignored, reason),
        Intake::Notice(notices) => return notice::health(run, notices).await,
        Intake::Recovery(r) => {
            let outcome = recover::heard(run, &r).await?;
            report::emit(&outcome);
            report::record(run, std::slice::from_ref(&outcome)).await;
            return Ok(vec![outcome]);
        }
        Intake::Signal(s) => match s.state {
            AlarmState::InsufficientData => Outcome::new(
                Some(s.instance_id),
                Action::None,
                Verdict::Ignored,
                "INSUFFICIENT_DATA: missing data is not a failure",
            ),
            _ => {
                let run = run.deciding(&s, received_ms);
                let mut outcome = match s.state {
                    AlarmState::Alarm => alarm(&run, &s).await?,
                    _ => recover::ok(&run, &s).await?,
                };
                report::complete(&mut outcome, &s, received_ms, run.config.dry_run);
                report::emit(&outcome);
                report::record(&run, std::slice::from_ref(&outcome)).await;
                return Ok(vec![outcome]);
            }
        },
    };
    // Bad input: the log has it; no AWS call is made for it.
    report::emit(&outcome);
    Ok(vec![outcome])
}

/// An ARN without a region (a hand-made event) is about the function's own region.
fn in_own_region(mut intake: Intake, own: &str) -> Intake {
    match &mut intake {
        Intake::Signal(Signal { region, .. })
        | Intake::Recovery(intake::Recovery { region, .. }) => {
            region.get_or_insert_with(|| own.to_string());
        }
        _ => {}
    }
    intake
}

/// Another account's or another region's alarm or announcement: nothing is touched for it.
fn foreign(run: &Run, intake: &Intake) -> Option<Outcome> {
    let (instance_id, account, region, what) = match intake {
        Intake::Signal(s) => (
            &s.instance_id,
            &s.account,
            s.region.as_deref(),
            "alarm is in",
        ),
        Intake::Recovery(r) => (
            &r.instance_id,
            &r.account,
            r.region.as_deref(),
            "EC2's announcement is about",
        ),
        _ => return None,
    };
    let ignored = |reason: String| {
        Some(Outcome::new(
            Some(instance_id.clone()),
            Action::None,
            Verdict::Ignored,
            reason,
        ))
    };
    match (account, run.account) {
        (Some(theirs), Some(ours)) if theirs != ours => {
            return ignored(format!(
                "the event is about account {theirs}; this function serves its own account {ours}"
            ))
        }
        _ => {}
    }
    let region = region.unwrap_or(&run.config.region);
    match run.config.regions.serves(region) {
        true => None,
        false => ignored(format!(
            "{what} {region}; this function serves {} (AUTOHEAL_REGIONS)",
            run.config.regions.describe()
        )),
    }
}

/// An ALARM: claimed and observed in one round, decided, acted on. `poll`: a relaunch may
/// wait for the world within this invocation (not on the tick).
async fn alarm(run: &Run<'_>, s: &Signal) -> Result<Outcome, Error> {
    let (claim, facts) = observe::claim(run, s).await;
    let head = match claim {
        Ok(Move::Take(head)) => head,
        Ok(Move::Skip(outcome)) => return Ok(outcome),
        Err(e) if e.is_transient() => return Err(e),
        Err(e) => return Ok(report::ledger_unusable(run, s, facts.ok().as_ref(), e).await),
    };
    let decided = Box::pin(decide::decide(run, s, &head, facts)).await;
    Box::pin(act::act(run, s, head, decided, true)).await
}

/// The tick, or EC2's announcement, on a held incident: look at the world again, decide
/// and act as on its alarm.
pub(crate) async fn resume_held(
    run: &Run<'_>,
    head: crate::rules::incident::Head,
) -> Result<Outcome, Error> {
    let s = head.opening_signal();
    let facts = observe::facts(run, head.region(), &head.instance_id).await;
    let decided = Box::pin(decide::decide(run, &s, &head, facts)).await;
    // Settling takes it off the tick's list; a relaunch keeps it there until it ends.
    Box::pin(act::act(run, &s, head, decided, false)).await
}
