//! Reports Slack did not take, re-sent by the tick from the ledger's outbox.

use super::STOP_MARGIN_MS;
use crate::app::Run;
use crate::model::outcome::{Action, Outcome, Verdict};

/// Reports kept after Slack refused them or was away: re-sent until delivered or an hour
/// old. One is started only if its whole budget ends `STOP_MARGIN_MS` before the deadline
/// (the invocation must still answer); the rest stay kept for the next tick. One summary
/// outcome when there were any.
pub async fn resend(run: &Run<'_>) -> Option<Outcome> {
    let kept = match run.ledger.kept_reports().await {
        Ok(k) if k.is_empty() => return None,
        Ok(k) => k,
        Err(e) => {
            return Some(Outcome::new(
                None,
                Action::None,
                Verdict::Failed,
                format!("reports kept for re-sending not read: {e}"),
            ))
        }
    };
    let (mut sent, mut failed, mut dropped, mut left) = (0, 0, 0, 0);
    for k in kept {
        let now = run.now_ms();
        if run.deadline_ms - now < RESEND_BUDGET_MS + STOP_MARGIN_MS {
            left += 1;
            continue;
        }
        if now - k.created_ms > MAX_RESEND_AGE_MS {
            dropped += 1;
        } else {
            let delivery = run
                .teller
                .send_by(&k.payload, now + RESEND_BUDGET_MS, now)
                .await;
            if !delivery.delivered() {
                failed += 1;
                continue;
            }
            sent += 1;
        }
        if let Err(e) = run.ledger.forget_report(&k.sk).await {
            tracing::warn!(error = %e, "a re-sent report stays kept; it may be sent twice");
        }
    }
    let result = if failed > 0 || dropped > 0 {
        Verdict::Failed
    } else if left > 0 {
        Verdict::InProgress
    } else {
        Verdict::Done
    };
    let mut reason = format!("reports kept for re-sending: {sent} delivered, {failed} still not, {dropped} dropped (over an hour old)");
    if left > 0 {
        reason += &format!(", {left} left for the next tick (this one's time ran out)");
    }
    Some(Outcome::new(None, Action::None, result, reason))
}

/// A kept report older than this is dropped (the log and the audit trail still have it).
pub const MAX_RESEND_AGE_MS: i64 = 3_600_000;
/// Each re-sent report gets at most this long.
const RESEND_BUDGET_MS: i64 = 5_000;
