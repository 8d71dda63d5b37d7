//! An OK alarm, and EC2's announcement of a recovery (AWS Health): either closes or moves
//! on an incident only as far as EC2's own status checks agree.

use super::commit::{advance, unlist, First};
use super::{observe, report, resume_held, LEASE_MARGIN_MS};
use crate::app::Run;
use crate::error::Error;
use crate::intake::{self, Metric, Signal};
use crate::model::facts::Facts;
use crate::model::handover::Handover;
use crate::model::outcome::{Action, Outcome, Verdict};
use crate::rules::incident::{self, HoldKind, Move, Status};
use crate::rules::trust;

/// An OK alarm: the head and what EC2 reports are read in one round; the incident closes
/// only when EC2 agrees (`incident::close_on_ok`).
pub async fn ok(run: &Run<'_>, s: &Signal) -> Result<Outcome, Error> {
    let key = s.key();
    let (read, facts) = tokio::join!(
        run.ledger.read(&key),
        observe::facts(run, s.region(), &s.instance_id)
    );
    let unusable = |e: Error| {
        Outcome::new(
            Some(s.instance_id.clone()),
            Action::Verify,
            Verdict::Failed,
            format!("ledger unusable: {e}"),
        )
        .for_people(Handover::LedgerUnusable)
    };
    let current = match read {
        Ok(h) => h,
        Err(e) if e.is_transient() => return Err(e),
        Err(e) => return Ok(unusable(e)),
    };
    // Without EC2's word, the OK waits for a retry: it closes nothing on its own.
    let facts = match facts {
        Ok(f) => f,
        Err(e) if current.as_ref().is_some_and(|h| h.status != Status::Closed) => {
            return match e.is_transient() {
                true => Err(e),
                false => Ok(Outcome::new(
                    Some(s.instance_id.clone()),
                    Action::Verify,
                    Verdict::Failed,
                    format!("OK not confirmed: EC2 not read ({e}); the incident goes on"),
                )
                .for_people(Handover::AwsRefused)),
            };
        }
        Err(_) => Facts::default(),
    };
    let first = First::Known(current);
    let step = advance(run, s.region(), &s.instance_id, first, |h| {
        let metric = h
            .and_then(|h| Metric::from_name(&h.alarm.metric))
            .unwrap_or(s.metric);
        let disagrees = trust::confirm_ok(metric, &facts);
        incident::close_on_ok(h, s, disagrees.as_deref(), run.now_ms())
    })
    .await;
    let head = match step {
        Ok(Move::Take(head)) => head,
        Ok(Move::Skip(outcome)) => return Ok(outcome),
        Err(e) if e.is_transient() => return Err(e),
        Err(e) => return Ok(unusable(e)),
    };
    let closed = incident::closed_by_ok(&head);
    if closed.unlist {
        // Off the tick's list now rather than at its next run.
        unlist(run, &head).await;
    }
    let mut outcome = Outcome::new(
        Some(s.instance_id.clone()),
        Action::Verify,
        Verdict::Done,
        closed.reason,
    );
    outcome.incident = Some(head.incident_id.clone());
    outcome.group = head.group.clone();
    if head.is_held() && head.hold_kind == Some(HoldKind::Breaker) {
        // Held behind an open breaker: its summary stands for it; the audit trail has it.
        return Ok(outcome);
    }
    Ok(report::decision(run, s, Some(&facts), outcome).await)
}

/// EC2 announced a recovery of the instance (AWS Health): kept on the head, and acted on
/// at once when its incident waits for that recovery — closed when EC2's status checks
/// agree it recovered, the next rung when it failed (and the checks still fail).
pub async fn heard(run: &Run<'_>, r: &intake::Recovery) -> Result<Outcome, Error> {
    let region = r.region.as_deref().unwrap_or_default();
    let lease_until = run.deadline_ms.max(run.now_ms()) + LEASE_MARGIN_MS;
    let step = advance(run, region, &r.instance_id, First::Read, |h| {
        incident::hear(h, r, run.now_ms(), lease_until)
    })
    .await?;
    let head = match step {
        Move::Take(head) => head,
        Move::Skip(outcome) => return Ok(outcome),
    };
    if head.lease_until_ms != lease_until {
        let mut o = Outcome::new(
            Some(r.instance_id.clone()),
            Action::None,
            Verdict::Ignored,
            format!(
                "EC2 announced a recovery attempt ({} at {}); kept ({} in the last 24 h): no rung of incident {} waits for it",
                r.code,
                r.at.format("%H:%M:%SZ"),
                head.ec2_heard.len(),
                head.incident_id
            ),
        );
        o.incident = Some(head.incident_id.clone());
        return Ok(o);
    }
    resume_held(run, head).await
}
