//! Triggers that carry no alarm — the 1-minute schedule, AMI and instance state changes —
//! move open incidents on (relaunches in progress, holds, rungs, transient failures to
//! retry); the schedule also takes periodic backups, at the same time, so neither starves
//! the other. One incident's failure never stops the others.

use crate::error::Error;
use crate::heal::{self, advance, Deps, LEASE_MARGIN_MS};
use crate::incident::{self, Move};
use crate::outcome::{Action, Outcome, Verdict};
use crate::relaunch;

/// The trigger's outcomes, and the error that kept the open incidents from being read
/// (then a retry of the invocation helps).
pub async fn run(deps: &Deps, trigger: &str, deadline_ms: i64) -> (Vec<Outcome>, Option<Error>) {
    let scheduled = trigger == crate::intake::SCHEDULED_EVENT;
    let (open, backups) = tokio::join!(advance_open(deps, trigger, deadline_ms), async {
        if scheduled {
            Some(backups(deps, deadline_ms).await)
        } else {
            None
        }
    });
    let (mut outcomes, unreadable) = match open {
        Ok(o) => (o, None),
        Err(e) => {
            let o = Outcome::new(
                None,
                Action::None,
                Verdict::Failed,
                format!("{trigger}: open incidents not read: {e}"),
            );
            (vec![o], Some(e))
        }
    };
    outcomes.extend(backups);
    (outcomes, unreadable)
}

/// The tick's periodic backups: one summary outcome; reported to Slack only when
/// something went wrong (not every minute). A failure is an outcome, never an error.
pub async fn backups(deps: &Deps, deadline_ms: i64) -> Outcome {
    let open = match deps.ledger.open_incidents().await {
        Ok(open) => open,
        Err(e) => {
            // Which instances have an open incident is unknown: touch nothing this tick.
            return Outcome::new(
                None,
                Action::CreateImage,
                Verdict::Failed,
                format!("backups: skipped this tick, open incidents not read: {e}"),
            );
        }
    };
    let run = crate::backup::run(
        &deps.clients.ec2,
        &deps.clock,
        &open,
        deps.config.dry_run,
        deadline_ms,
    )
    .await;
    let summary = match run {
        Ok(s) => s,
        Err(e) => {
            return Outcome::new(
                None,
                Action::CreateImage,
                Verdict::Failed,
                format!("backups: {e}"),
            )
        }
    };
    let result = if !summary.problems.is_empty() {
        Verdict::Failed
    } else if deps.config.dry_run {
        Verdict::DryRun
    } else {
        Verdict::Done
    };
    let mut outcome = Outcome::new(None, Action::CreateImage, result, summary.text());
    if !summary.problems.is_empty() {
        let payload = crate::notify::message::summary_payload(&format!(
            ":warning: autoheal {}",
            summary.text()
        ));
        outcome.notification = Some(deps.notifier.send(&payload).await);
    }
    outcome
}

/// The tick, an AMI or instance state change: move every open incident on — relaunches in
/// progress (one look each, no waiting), holds due, rungs timed out, retries.
pub async fn advance_open(
    deps: &Deps,
    trigger: &str,
    deadline_ms: i64,
) -> Result<Vec<Outcome>, Error> {
    let open = deps.ledger.open_incidents().await?;
    let mut outcomes = vec![];
    for instance_id in open {
        if deadline_ms - deps.now_ms() < relaunch::STOP_MARGIN_MS {
            outcomes.push(Outcome::new(
                Some(instance_id),
                Action::None,
                Verdict::InProgress,
                "left for the next tick: this one's time ran out",
            ));
            continue;
        }
        let outcome = match Box::pin(advance_one(deps, &instance_id, deadline_ms)).await {
            Ok(o) => o,
            // Released and listed by `heal::fail` where it got that far: the next trigger
            // takes the same step again.
            Err(e) => Outcome::new(
                Some(instance_id.clone()),
                Action::None,
                if e.is_transient() {
                    Verdict::InProgress
                } else {
                    Verdict::Failed
                },
                format!("not advanced this time ({e}); the next trigger tries the same step again"),
            ),
        };
        outcomes.push(outcome);
    }
    if outcomes.is_empty() {
        outcomes.push(Outcome::new(
            None,
            Action::None,
            Verdict::Ignored,
            format!("{trigger}: no repair waiting"),
        ));
    }
    Ok(outcomes)
}

async fn advance_one(deps: &Deps, instance_id: &str, deadline_ms: i64) -> Result<Outcome, Error> {
    let lease_until = deadline_ms.max(deps.now_ms()) + LEASE_MARGIN_MS;
    let ended = std::cell::Cell::new(false);
    match advance(deps, instance_id, false, |h| {
        ended.set(h.is_none_or(|h| h.status != incident::Status::Repairing));
        incident::claim_waiting(h, deps.now_ms(), lease_until)
    })
    .await?
    {
        Move::Take(head) if relaunch::is_relaunch(&head.progress) => {
            Box::pin(relaunch::run(deps, head, deadline_ms, false)).await
        }
        Move::Take(head) => Box::pin(heal::resume_held(deps, head, deadline_ms)).await,
        // Closed or settled meanwhile (an OK, a relaunch that ended): nothing to wait for.
        Move::Skip(o) if ended.get() => {
            deps.ledger
                .set_open(instance_id, false, deps.now_ms() / 1000)
                .await?;
            Ok(o)
        }
        Move::Skip(o) => Ok(o),
    }
}
