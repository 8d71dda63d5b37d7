//! An incident closed without an OK alarm: EC2 reports the instance healthy after a rung,
//! EC2 never confirmed the alarm, or a person took the instance over.

use crate::app::Run;
use crate::error::Error;
use crate::intake::Signal;
use crate::model::facts::Facts;
use crate::model::outcome::{Outcome, Recovered};
use crate::pipeline::commit::{replace, unlist};
use crate::pipeline::report;
use crate::rules::history;
use crate::rules::incident::{self, Head};

/// After a rung, EC2 reports both checks ok: the rung worked, whatever the alarm says yet.
pub(crate) async fn recovered_after_rung(
    run: &Run<'_>,
    head: Head,
    s: &Signal,
    facts: &Facts,
) -> Result<Outcome, Error> {
    let reason = incident::recovered_after_rung(&head, &facts.checks.said());
    let outcome = Outcome::recovered(s.instance_id.clone(), Recovered::ChecksOk, reason);
    close(run, head, s, facts, outcome).await
}

/// Closes the incident (settled as closed, off the tick's list) and reports it.
pub(crate) async fn close(
    run: &Run<'_>,
    head: Head,
    s: &Signal,
    facts: &Facts,
    outcome: Outcome,
) -> Result<Outcome, Error> {
    match closed(run, head, s, facts, outcome).await? {
        Ok(outcome) => Ok(report::decision(run, s, Some(facts), outcome).await),
        Err(other) => Ok(other),
    }
}

/// The same, told to nobody: a repair held behind a breaker that recovered by itself meanwhile
/// (the storm's messages stand for it; the audit trail has it).
pub(crate) async fn close_quietly(
    run: &Run<'_>,
    head: Head,
    s: &Signal,
    facts: &Facts,
    outcome: Outcome,
) -> Result<Outcome, Error> {
    Ok(closed(run, head, s, facts, outcome)
        .await?
        .unwrap_or_else(|other| other))
}

/// Closes the incident: `Ok(outcome)` to report, `Err(outcome)` of another invocation that
/// moved the head first.
async fn closed(
    run: &Run<'_>,
    head: Head,
    s: &Signal,
    facts: &Facts,
    mut outcome: Outcome,
) -> Result<Result<Outcome, Outcome>, Error> {
    outcome.incident = Some(head.incident_id.clone());
    outcome.group = facts.group.as_ref().map(|g| g.name.clone());
    outcome.inputs = Some(history::inputs(s, Some(facts), run.config.dry_run));
    let closed = incident::close_without_ok(&head, &outcome, run.now_ms());
    if let Some(other) = replace(run, &head, &closed, s, facts).await? {
        return Ok(Err(other));
    }
    if head.hold_until_ms.is_some() || !head.rungs.is_empty() {
        unlist(run, &head).await;
    }
    Ok(Ok(outcome))
}
