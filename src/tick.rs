//! Triggers that carry no alarm — the 1-minute schedule, AMI and instance state changes —
//! move relaunches in progress on; the schedule also takes periodic backups.

use crate::error::Error;
use crate::heal::{advance, now_ms, Deps, LEASE_MARGIN_MS};
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

/// The tick, an AMI or instance state change: move every relaunch in progress on.
pub async fn advance_relaunches(
    deps: &Deps,
    trigger: &str,
    deadline_ms: i64,
) -> Result<Vec<Outcome>, Error> {
    let open = deps.ledger.open_relaunches().await?;
    let mut outcomes = vec![];
    for instance_id in open {
        let lease_until = deadline_ms.max(now_ms()) + LEASE_MARGIN_MS;
        match advance(&deps.ledger, &instance_id, false, |h| {
            incident::claim_waiting(h, now_ms(), lease_until)
        })
        .await?
        {
            Move::Take(head) => outcomes.push(relaunch::run(deps, head, deadline_ms).await?),
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
            format!("{trigger}: no relaunch in progress"),
        ));
    }
    Ok(outcomes)
}
