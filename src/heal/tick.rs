//! Triggers that carry no alarm — the 1-minute schedule, AMI and instance state changes —
//! move open incidents on (relaunches in progress, holds, rungs, transient failures to
//! retry); the schedule also takes periodic backups, at the same time, so neither starves
//! the other. One incident's failure never stops the others.

use super::relaunch;
use super::{self as heal, advance, LEASE_MARGIN_MS};
use crate::app::Deps;
use crate::error::Error;
use crate::incident::{self, Head, Move};
use crate::intake::Trigger;
use crate::outcome::{Action, Outcome, Verdict};

/// The trigger's outcomes, and the error that kept the open incidents from being read
/// (then a retry of the invocation helps). The open index is read once, for the incidents
/// and the backups (which leave instances with an open incident alone).
/// `account`: the function's own, which the scan's findings are about.
pub async fn run(
    deps: &Deps,
    trigger: Trigger,
    deadline_ms: i64,
    account: Option<&str>,
) -> (Vec<Outcome>, Option<Error>) {
    let scheduled = trigger == Trigger::Tick;
    let open = match deps.ledger.open_incidents().await {
        Ok(open) => open,
        Err(e) => {
            let o = Outcome::new(
                None,
                Action::None,
                Verdict::Failed,
                format!("{trigger}: open incidents not read (nothing advanced, no backups): {e}"),
            );
            return (vec![o], Some(e));
        }
    };
    let (mut outcomes, backups, resent) = tokio::join!(
        advance_open(deps, trigger, &open, deadline_ms),
        async {
            match scheduled {
                true => backups(deps, &open, deadline_ms).await,
                false => vec![],
            }
        },
        async {
            match scheduled {
                true => resend(deps, deadline_ms).await,
                false => None,
            }
        },
    );
    outcomes.extend(backups);
    outcomes.extend(resent);
    if let (true, Some(limit)) = (scheduled, deps.config.scan) {
        outcomes.extend(Box::pin(scan(deps, &open, limit as usize, deadline_ms, account)).await);
    }
    (outcomes, None)
}

/// `AUTOHEAL_SCAN`: impaired instances of every served region that no open incident covers
/// go through the pipeline as an alarm would, at most `limit` per tick, one at a time (the
/// guards and the breaker see each before the next).
pub async fn scan(
    deps: &Deps,
    open: &[String],
    limit: usize,
    deadline_ms: i64,
    account: Option<&str>,
) -> Vec<Outcome> {
    let regions = deps.config.regions.listed(&deps.config.region);
    let found = futures::future::join_all(
        regions
            .iter()
            .map(|r| async move { (*r, crate::aws::ec2::impaired(&deps.cloud(r).ec2).await) }),
    )
    .await;
    let mut outcomes = vec![];
    let mut budget = limit;
    for (region, found) in found {
        let found = match found {
            Ok(f) => f,
            Err(e) => {
                outcomes.push(Outcome::new(
                    None,
                    Action::None,
                    Verdict::Failed,
                    format!("scan of {region}: impaired instances not listed ({e}); the next tick tries again"),
                ));
                continue;
            }
        };
        let (signals, left) =
            crate::scan::signals(&found, region, account, open, budget, deps.now_ms());
        budget -= signals.len();
        for s in signals {
            if deadline_ms - deps.now_ms() < relaunch::STOP_MARGIN_MS {
                break;
            }
            let id = s.instance_id.clone();
            match Box::pin(heal::process(deps, crate::intake::Intake::Signal(s), deadline_ms, account)).await {
                Ok(o) => outcomes.extend(o),
                Err(e) => outcomes.push(Outcome::new(
                    Some(id),
                    Action::None,
                    Verdict::InProgress,
                    format!("found by the scan, not handled this time ({e}); the next scan finds it again"),
                )),
            }
        }
        if left > 0 {
            outcomes.push(Outcome::new(
                None,
                Action::None,
                Verdict::InProgress,
                format!("scan of {region}: {left} more impaired instances left for the next tick (at most {limit} a tick)"),
            ));
        }
    }
    outcomes
}

/// Reports kept after Slack refused them or was away: re-sent until delivered or an hour
/// old. One is started only if its whole budget ends `STOP_MARGIN_MS` before the deadline
/// (the invocation must still answer); the rest stay kept for the next tick. One summary
/// outcome when there were any.
pub async fn resend(deps: &Deps, deadline_ms: i64) -> Option<Outcome> {
    let kept = match deps.ledger.kept_reports().await {
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
        let now = deps.now_ms();
        if deadline_ms - now < RESEND_BUDGET_MS + relaunch::STOP_MARGIN_MS {
            left += 1;
            continue;
        }
        if now - k.created_ms > MAX_RESEND_AGE_MS {
            dropped += 1;
        } else {
            let delivery = deps
                .notifier
                .send_by(&k.payload, now + RESEND_BUDGET_MS, now)
                .await;
            if !delivery.delivered() {
                failed += 1;
                continue;
            }
            sent += 1;
        }
        if let Err(e) = deps.ledger.forget_report(&k.sk).await {
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

/// The tick's periodic backups: one summary outcome; reported to Slack only when
/// something went wrong (not every minute). A failure is an outcome, never an error.
/// `open`: the instances (`model::keys::key`s) with an open incident. One outcome per served
/// region (`AUTOHEAL_REGIONS`; `*`: the function's own), the regions at once.
pub async fn backups(deps: &Deps, open: &[String], deadline_ms: i64) -> Vec<Outcome> {
    let regions = deps.config.regions.listed(&deps.config.region);
    let several = regions.len() > 1;
    futures::future::join_all(regions.into_iter().map(|region| async move {
        let open: Vec<String> = open
            .iter()
            .filter_map(|k| crate::model::keys::split_key(k))
            .filter(|(r, _)| *r == region)
            .map(|(_, id)| id.to_string())
            .collect();
        let mut o = backups_in(deps, region, &open, deadline_ms).await;
        if several {
            o.reason = format!("{region}: {}", o.reason);
        }
        o
    }))
    .await
}

async fn backups_in(deps: &Deps, region: &str, open: &[String], deadline_ms: i64) -> Outcome {
    let run = super::backup::run(deps, region, open, deadline_ms).await;
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
        outcome.notification = Some(deps.tell(&payload).await);
    }
    outcome
}

/// The tick, an AMI or instance state change: move every open incident on — relaunches in
/// progress (one look each, no waiting), holds due, rungs timed out, retries.
pub async fn advance_open(
    deps: &Deps,
    trigger: Trigger,
    open: &[String],
    deadline_ms: i64,
) -> Vec<Outcome> {
    let scheduled = trigger == Trigger::Tick;
    let mut outcomes = vec![];
    for key in open {
        let instance_id = crate::model::keys::instance_of(key);
        if deadline_ms - deps.now_ms() < relaunch::STOP_MARGIN_MS {
            outcomes.push(Outcome::new(
                Some(instance_id.to_string()),
                Action::None,
                Verdict::InProgress,
                "left for the next tick: this one's time ran out",
            ));
            continue;
        }
        let outcome = match Box::pin(advance_one(deps, key, scheduled, deadline_ms)).await {
            Ok(Some(o)) => o,
            Ok(None) => continue,
            // Released and listed by `heal::fail` where it got that far: the next trigger
            // takes the same step again.
            Err(e) => Outcome::new(
                Some(instance_id.to_string()),
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
    outcomes
}

/// `key`: as the open index lists it (`model::keys::key`; an older ledger's bare id is
/// taken as the function's own region, found closed and unlisted).
/// None: not this trigger's business (a member's replacement is followed by the schedule
/// only, once a minute, not by every AMI or instance state change).
async fn advance_one(
    deps: &Deps,
    key: &str,
    scheduled: bool,
    deadline_ms: i64,
) -> Result<Option<Outcome>, Error> {
    let (region, instance_id) =
        crate::model::keys::split_key(key).unwrap_or((&deps.config.region, key));
    let lease_until = deadline_ms.max(deps.now_ms()) + LEASE_MARGIN_MS;
    let ended = std::cell::Cell::new(false);
    let not_now = std::cell::Cell::new(false);
    let step = advance(deps, region, instance_id, heal::First::Read, |h| {
        ended.set(h.is_none_or(|h| h.status != incident::Status::Repairing));
        not_now.set(!scheduled && h.is_some_and(Head::is_verifying));
        match not_now.get() {
            true => Move::Skip(Outcome::new(None, Action::None, Verdict::Ignored, "")),
            false => incident::claim_waiting(h, deps.now_ms(), lease_until),
        }
    })
    .await?;
    if not_now.get() {
        return Ok(None);
    }
    let outcome = match step {
        Move::Take(head) if head.progress.under_way() => {
            Box::pin(relaunch::run(deps, head, deadline_ms, false)).await
        }
        Move::Take(head) if head.is_verifying() => {
            Box::pin(heal::replacement::follow(deps, head)).await
        }
        Move::Take(head) => Box::pin(heal::resume_held(deps, head, deadline_ms)).await,
        // Closed or settled meanwhile (an OK, a relaunch that ended): nothing to wait for.
        Move::Skip(o) if ended.get() => {
            deps.ledger
                .set_open(key, false, deps.now_ms() / 1000)
                .await?;
            Ok(o)
        }
        Move::Skip(o) => Ok(o),
    };
    outcome.map(Some)
}
