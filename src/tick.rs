//! Triggers that carry no alarm — the 1-minute schedule, AMI and instance state changes —
//! move open incidents on (relaunches in progress, holds past their grace period); the
//! schedule also takes periodic backups.

use crate::error::Error;
use crate::heal::{self, advance, now_ms, Deps, LEASE_MARGIN_MS};
use crate::incident::{self, Move};
use crate::outcome::{Action, Outcome, Verdict};
use crate::relaunch;

/// The tick's periodic backups: one summary outcome; reported to Slack only when
/// something went wrong (not every minute).
pub async fn backups(deps: &Deps, deadline_ms: i64) -> Result<Outcome, Error> {
    let summary = crate::backup::run(&deps.clients.ec2, now_ms(), deadline_ms).await?;
    let result = if summary.problems.is_empty() {
        Verdict::Done
    } else {
        Verdict::Failed
    };
    let mut outcome = Outcome::new(None, Action::CreateImage, result, summary.text());
    if !summary.problems.is_empty() {
        let payload = crate::notify::message::summary_payload(&format!(
            ":warning: autoheal {}",
            summary.text()
        ));
        outcome.notification = Some(deps.notifier.send(&payload).await);
    }
    Ok(outcome)
}

/// The tick, an AMI or instance state change: move every open incident on — relaunches in
/// progress, and holds whose grace period is over.
pub async fn advance_open(
    deps: &Deps,
    trigger: &str,
    deadline_ms: i64,
) -> Result<Vec<Outcome>, Error> {
    let open = deps.ledger.open_incidents().await?;
    let mut outcomes = vec![];
    for instance_id in open {
        let lease_until = deadline_ms.max(now_ms()) + LEASE_MARGIN_MS;
        let ended = std::cell::Cell::new(false);
        match advance(&deps.ledger, &instance_id, false, |h| {
            ended.set(h.is_none_or(|h| h.status != incident::Status::Repairing));
            incident::claim_waiting(h, now_ms(), lease_until)
        })
        .await?
        {
            Move::Take(head) if relaunch::is_relaunch(&head.progress) => {
                outcomes.push(relaunch::run(deps, head, deadline_ms).await?)
            }
            Move::Take(head) => outcomes.push(heal::resume_held(deps, head, deadline_ms).await?),
            // Closed or settled meanwhile (an OK, a relaunch that ended): nothing to wait for.
            Move::Skip(o) if ended.get() => {
                deps.ledger
                    .set_open(&instance_id, false, now_ms() / 1000)
                    .await?;
                outcomes.push(o);
            }
            Move::Skip(o) => outcomes.push(o),
        }
        if deadline_ms - now_ms() < relaunch::STOP_MARGIN_MS {
            break;
        }
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
