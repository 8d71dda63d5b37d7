//! A group member marked Unhealthy: the incident stays open and the tick follows the group
//! until Auto Scaling has replaced the member (`verify done`, with the time of each step)
//! or `AUTOHEAL_VERIFY_TIMEOUT` passes (`verify failed`, for people). The rule is
//! `replacement::assess`.

use crate::app::Run;
use crate::error::Error;
use crate::model::handover::Handover;
use crate::model::outcome::{Action, Outcome, Recovered, Verdict};
use crate::model::progress::human;
use crate::pipeline::commit::{fail, settle, unlist};
use crate::pipeline::report;
use crate::rules::incident::{self, Head};
use crate::rules::replacement::{self, Step};

/// After `SetInstanceHealth` answered: kept open for the tick (listed first: a repair the
/// tick cannot find would never be verified), with the mark's time.
pub async fn begin(run: &Run<'_>, head: &Head, outcome: &Outcome) {
    let now = run.now_ms();
    let mut next = incident::release(head);
    next.action = Some(Action::MarkUnhealthy);
    next.result = Some(Verdict::InProgress);
    next.reason = Some(outcome.reason.clone());
    next.group = outcome.group.clone().or(next.group);
    next.hold_until_ms = None;
    next.hold_kind = None;
    next.hold_scope = None;
    next.member_steps = vec![(Step::Marked, now)];
    if let Err(e) = run.ledger.set_open(&head.key(), true, now / 1000).await {
        tracing::warn!(error = %e, incident = %head.incident_id, "could not list the replacement for the tick; it is not verified");
    }
    match run.ledger.write(&next, now / 1000).await {
        Ok(true) => {}
        Ok(false) => {
            tracing::info!(incident = %head.incident_id, "incident changed while marking (closed by an OK?)")
        }
        Err(e) => {
            tracing::error!(error = %e, incident = %head.incident_id, "could not record the mark in the ledger")
        }
    }
}

/// One look at the group: records the steps seen, and ends the incident when the member
/// was replaced or the time is up. A claimed head (`incident::claim_waiting`).
pub async fn follow(run: &Run<'_>, head: Head) -> Result<Outcome, Error> {
    let s = head.opening_signal();
    let group = head.group.clone().unwrap_or_default();
    let now = run.now_ms();
    let seen = match run.fleet.group(head.region(), &group).await {
        Ok(g) => g,
        Err(e) => return fail(run, &head, &s, None, Action::Verify, e).await,
    };
    let timeout = run.config.verify_timeout_ms;
    let (marks, verdict) = replacement::assess(
        &head.instance_id,
        seen.as_ref(),
        &head.member_steps,
        now,
        head.opened_ms,
        timeout,
    );
    let mut next = head.clone();
    next.member_steps = marks;
    let times = replacement::times(&next.member_steps, head.opened_ms);
    let (result, reason) = match verdict {
        replacement::Verdict::Waiting(missing) => {
            let waiting = incident::release(&next);
            let reason = format!("waiting for Auto Scaling to replace it: {missing} ({times})");
            if !run.ledger.write(&waiting, now / 1000).await? {
                return Ok(outcome(&head, Verdict::Duplicate, "incident changed while verifying (closed by an OK?)".into()));
            }
            return Ok(outcome(&head, Verdict::InProgress, reason));
        }
        replacement::Verdict::Verified => (
            Verdict::Done,
            format!("replaced by Auto Scaling in group {group}: {times}; the group is back at desired capacity, every member InService and Healthy"),
        ),
        replacement::Verdict::TimedOut(missing) => (
            Verdict::Failed,
            format!(
                "not replaced within {} of the alarm: {missing} ({times}); needs a person (see docs/RUNBOOK.md)",
                human(timeout)
            ),
        ),
    };
    let mut done = outcome(&next, result, reason);
    match result {
        Verdict::Done => done.recovered = Some(Recovered::Replacement),
        _ => done.handover = Some(Handover::MemberNotReplaced),
    }
    settle(run, &next, &done).await;
    unlist(run, &next).await;
    Ok(report::decision(run, &s, None, done).await)
}

fn outcome(head: &Head, result: Verdict, reason: String) -> Outcome {
    let mut o = Outcome::new(
        Some(head.instance_id.clone()),
        Action::Verify,
        result,
        reason,
    );
    o.incident = Some(head.incident_id.clone());
    o.group = head.group.clone();
    o
}
