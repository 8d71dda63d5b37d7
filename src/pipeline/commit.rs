//! A decision's writes to the incident's head: conditional on the version read, so that of
//! two invocations only one moves an incident on; and the open index the tick reads.

use super::report;
use crate::app::Run;
use crate::error::Error;
use crate::intake::Signal;
use crate::model::facts::Facts;
use crate::model::handover::Handover;
use crate::model::outcome::{Action, Outcome, Verdict};
use crate::rules::incident::{self, Head, Move};
use crate::rules::relaunch::RUNBOOK;

/// Conditional-write races lost in a row before giving up as a duplicate.
pub const MAX_LEDGER_RACES: usize = 5;

/// Where `advance` starts. It lives for one call; boxing the head would buy nothing.
#[allow(clippy::large_enum_variant)]
pub(crate) enum First {
    /// Read the head.
    Read,
    /// Try the write as if there were no head yet, saving the read in the common case of a
    /// first delivery (a lost race costs one failed conditional write).
    Guess,
    /// The head as read already (in a round with other reads).
    Known(Option<Head>),
}

/// Applies `rule` to the head until a conditional write sticks or the rule says skip.
pub(crate) async fn advance(
    run: &Run<'_>,
    region: &str,
    instance_id: &str,
    first: First,
    rule: impl Fn(Option<&Head>) -> Move,
) -> Result<Move, Error> {
    let ledger = &run.ledger;
    let key = crate::model::keys::key(region, instance_id);
    let mut first = Some(first);
    for _ in 0..MAX_LEDGER_RACES {
        let (current, guessed) = match first.take() {
            Some(First::Guess) => (None, true),
            Some(First::Known(head)) => (head, false),
            Some(First::Read) | None => (ledger.read(&key).await?, false),
        };
        match rule(current.as_ref()) {
            Move::Take(head) => {
                if ledger.write(&head, run.now_ms() / 1000).await? {
                    return Ok(Move::Take(head));
                }
            }
            // The guess that there was no head led nowhere: read it.
            Move::Skip(_) if guessed => {}
            skip => return Ok(skip),
        }
    }
    Ok(Move::Skip(Outcome::new(
        Some(instance_id.to_string()),
        Action::None,
        Verdict::Duplicate,
        "other invocations kept changing this incident; leaving it to them",
    )))
}

/// Writes `next` over `head`: `Ok(None)` when it stuck, else the outcome to return — the
/// incident changed meanwhile, or the ledger failed (`fail`).
pub(crate) async fn replace(
    run: &Run<'_>,
    head: &Head,
    next: &Head,
    s: &Signal,
    facts: &Facts,
) -> Result<Option<Outcome>, Error> {
    match run.ledger.write(next, run.now_ms() / 1000).await {
        Ok(true) => Ok(None),
        Ok(false) => Ok(Some(changed_meanwhile(s, head))),
        Err(e) => fail(run, head, s, Some(facts), Action::None, e)
            .await
            .map(Some),
    }
}

/// Another invocation wrote the incident between our read and our write.
fn changed_meanwhile(s: &Signal, head: &Head) -> Outcome {
    let mut o = Outcome::new(
        Some(s.instance_id.clone()),
        Action::None,
        Verdict::Duplicate,
        "incident changed while deciding (closed by an OK?)",
    );
    o.incident = Some(head.incident_id.clone());
    o
}

/// Puts the incident on the tick's list, or takes it off.
pub(crate) async fn list(run: &Run<'_>, head: &Head, open: bool) -> Result<(), Error> {
    run.ledger
        .set_open(&head.key(), open, run.now_ms() / 1000)
        .await
}

/// Takes the incident off the tick's list; a failure is logged (the tick removes entries
/// whose incident ended anyway).
pub(crate) async fn unlist(run: &Run<'_>, head: &Head) {
    if let Err(e) = list(run, head, false).await {
        tracing::warn!(error = %e, incident = %head.incident_id, "could not remove the incident from the open index");
    }
}

/// A transient failure gives the lease back, lists the incident for the tick and asks for
/// a retry: the same step is tried again by the next trigger, never counted as done or
/// tried. A permanent one is an outcome, settled and reported.
pub(crate) async fn fail(
    run: &Run<'_>,
    head: &Head,
    s: &Signal,
    facts: Option<&Facts>,
    action: Action,
    e: Error,
) -> Result<Outcome, Error> {
    if e.is_transient() {
        let retry = incident::retry_later(head, run.now_ms());
        let now_secs = run.now_ms() / 1000;
        let (listed, released) =
            tokio::join!(list(run, head, true), run.ledger.write(&retry, now_secs));
        if let Err(le) = listed.and(released.map(|_| ())) {
            tracing::warn!(error = %le, incident = %head.incident_id, "could not hand the incident to the next trigger; it is taken again when its lease ends");
        }
        return Err(e);
    }
    let kind = head.failed_for_good(action, e.op());
    let reason = match kind {
        Handover::RelaunchImaging
        | Handover::RelaunchLaunching
        | Handover::RelaunchTakingOver
        | Handover::RelaunchVerifying => format!("{e}. {RUNBOOK}"),
        _ => e.to_string(),
    };
    let mut outcome =
        Outcome::new(Some(s.instance_id.clone()), action, Verdict::Failed, reason).for_people(kind);
    outcome.incident = Some(head.incident_id.clone());
    outcome.group = facts.and_then(|f| f.group.as_ref()).map(|g| g.name.clone());
    settle(run, head, &outcome).await;
    Ok(report::decision(run, s, facts, outcome).await)
}

/// Records the outcome on the incident. The action is already done: a failed write is
/// logged, not retried by failing the invocation (a retry would find the work done anyway).
pub(crate) async fn settle(run: &Run<'_>, head: &Head, outcome: &Outcome) {
    // It was held (grace, a guard): settled now, nothing left for the tick. A relaunch
    // keeps its own place in the index (`act::relaunch::run`).
    if head.hold_until_ms.is_some() && head.progress.phase.is_none() {
        unlist(run, head).await;
    }
    match run
        .ledger
        .write(&incident::settle(head, outcome), run.now_ms() / 1000)
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            tracing::info!(incident = %head.incident_id, "incident changed while repairing (closed by an OK?)")
        }
        Err(e) => {
            tracing::error!(error = %e, incident = %head.incident_id, "could not record the outcome in the ledger")
        }
    }
}
