//! Triggers that carry no alarm — the 1-minute schedule, AMI and instance state changes —
//! move open incidents on (relaunches in progress, holds, rungs, transient failures to
//! retry); the schedule also takes periodic backups, keeps the watched groups' alarms and
//! reads EC2's scheduled notices, at the same time, so none starves the others. One incident's failure never stops the others.

pub mod alarms;
pub mod backups;
pub mod notice_image;
pub mod notice_incident;
pub mod notice_member;
pub mod notice_steps;
pub mod notices;
pub mod resend;
pub mod scan;
pub mod shifts;
pub mod storm;

use super::act::{relaunch, replacement};
use super::commit::{advance, First};
use super::LEASE_MARGIN_MS;
use crate::app::Run;
use crate::error::Error;
use crate::intake::Trigger;
use crate::model::outcome::{Action, Outcome, Verdict};
use crate::pipeline;
use crate::rules::incident::{self, Head, Move};

/// Work is started only while this much of the invocation is left.
pub use relaunch::STOP_MARGIN_MS;

/// The trigger's outcomes, and the error that kept the open incidents from being read
/// (then a retry of the invocation helps). The open index is read once, for the incidents
/// and the backups (which leave instances with an open incident alone).
/// `account`: the function's own, which the scan's findings are about.
pub async fn run(run: &Run<'_>, trigger: Trigger) -> (Vec<Outcome>, Option<Error>) {
    let scheduled = trigger == Trigger::Tick;
    // The storm is read once, beside the open index: the breakers' upkeep and the scheduled
    // notices (which begin no step while one is open) look at the same read.
    let (open, storm) = tokio::join!(run.ledger.open_incidents(), run.ledger.read_storm());
    let storm = storm
        .map_err(|e| tracing::warn!(error = %e, "storm not read; repairs held behind breakers wait for their time, no notice's step begins"))
        .ok();
    let calm = storm.as_ref().is_some_and(|s| s.open.is_empty());
    let open = match open {
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
    let (mut outcomes, backups, resent, watched, noticed) = tokio::join!(
        advance_open(run, trigger, &open, storm),
        async {
            match scheduled {
                true => backups::backups(run, &open).await,
                false => vec![],
            }
        },
        async {
            match scheduled {
                true => resend::resend(run).await,
                false => None,
            }
        },
        async {
            match (scheduled, &run.config.alarms) {
                (true, Some(settings)) => alarms::alarms(run, settings).await,
                _ => vec![],
            }
        },
        async {
            match scheduled && run.config.notices.on {
                true => notices::notices(run, calm).await,
                false => vec![],
            }
        },
    );
    outcomes.extend(backups);
    outcomes.extend(resent);
    outcomes.extend(watched);
    outcomes.extend(noticed);
    if let (true, Some(limit)) = (scheduled, run.config.scan) {
        // Boxed: the scan goes through the pipeline again.
        outcomes.extend(Box::pin(scan::scan(run, &open, limit as usize)).await);
    }
    (outcomes, None)
}

/// The tick, an AMI or instance state change: move every open incident that is due on —
/// relaunches in progress and replacements to verify first, then holds due, rungs timed
/// out, retries, oldest first (`incident::turns`) — one look each, no waiting.
/// `storm`: as the tick read it (None: not read).
pub async fn advance_open(
    run: &Run<'_>,
    trigger: Trigger,
    open: &[String],
    storm: Option<crate::rules::storm::Storm>,
) -> Vec<Outcome> {
    let scheduled = trigger == Trigger::Tick;
    let mut outcomes = vec![];
    // One batched read orders the work: what is due first, nothing for what is not.
    let turns = match run.ledger.read_heads(open).await {
        Ok(heads) => {
            // The storm's breakers, looked at once: what they hold costs nothing more.
            let upkeep = storm::upkeep(run, storm, &heads, scheduled).await;
            outcomes.extend(upkeep.outcomes);
            let breakers = incident::Breakers {
                open: upkeep.open.as_ref(),
                take_up: run.config.storm.take_up_per_tick,
            };
            incident::turns(open, &heads, run.now_ms(), breakers)
        }
        Err(e) => {
            tracing::warn!(error = %e, "open incidents' heads not read in a batch; each is read in turn");
            incident::Turns {
                advance: open.to_vec(),
                ..incident::Turns::default()
            }
        }
    };
    if let Some(o) = left_alone(&turns) {
        outcomes.push(o);
    }
    for key in &turns.advance {
        let instance_id = crate::model::keys::instance_of(key);
        if run.deadline_ms - run.now_ms() < STOP_MARGIN_MS {
            outcomes.push(Outcome::new(
                Some(instance_id.to_string()),
                Action::None,
                Verdict::InProgress,
                "left for the next tick: this one's time ran out",
            ));
            continue;
        }
        let outcome = match advance_one(run, key, scheduled).await {
            Ok(Some(o)) => o,
            Ok(None) => continue,
            // Released and listed by `commit::fail` where it got that far: the next trigger
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

/// What the tick leaves without a call, in one outcome.
fn left_alone(turns: &incident::Turns) -> Option<Outcome> {
    let mut parts = vec![];
    if turns.not_due > 0 {
        parts.push(format!(
            "{} not due (held until later, or being worked on)",
            turns.not_due
        ));
    }
    if turns.behind_breaker > 0 {
        parts.push(format!("{} behind an open breaker", turns.behind_breaker));
    }
    if turns.queued > 0 {
        parts.push(format!(
            "{} whose breaker closed, waiting their turn to be taken up",
            turns.queued
        ));
    }
    (!parts.is_empty()).then(|| {
        Outcome::new(
            None,
            Action::None,
            Verdict::InProgress,
            format!(
                "open incidents left without a call this time: {}",
                parts.join("; ")
            ),
        )
    })
}

/// `key`: as the open index lists it (`model::keys::key`; an older ledger's bare id is
/// taken as the function's own region, found closed and unlisted).
/// None: not this trigger's business (a member's replacement is followed by the schedule
/// only, once a minute, not by every AMI or instance state change).
async fn advance_one(run: &Run<'_>, key: &str, scheduled: bool) -> Result<Option<Outcome>, Error> {
    let (region, instance_id) =
        crate::model::keys::split_key(key).unwrap_or((&run.config.region, key));
    let lease_until = run.deadline_ms.max(run.now_ms()) + LEASE_MARGIN_MS;
    let ended = std::cell::Cell::new(false);
    let not_now = std::cell::Cell::new(false);
    let step = advance(run, region, instance_id, First::Read, |h| {
        ended.set(h.is_none_or(|h| h.status != incident::Status::Repairing));
        not_now.set(!scheduled && h.is_some_and(Head::is_verifying));
        match not_now.get() {
            true => Move::Skip(Outcome::new(None, Action::None, Verdict::Ignored, "")),
            false => incident::claim_waiting(h, run.now_ms(), lease_until),
        }
    })
    .await?;
    if not_now.get() {
        return Ok(None);
    }
    let outcome = match step {
        Move::Take(head) if head.progress.under_way() => relaunch::run(run, head, false).await,
        Move::Take(head) if head.is_verifying() => replacement::follow(run, head).await,
        Move::Take(head) => pipeline::resume_held(run, head).await,
        // Closed or settled meanwhile (an OK, a relaunch that ended): nothing to wait for.
        Move::Skip(o) if ended.get() => {
            run.ledger.set_open(key, false, run.now_ms() / 1000).await?;
            Ok(o)
        }
        Move::Skip(o) => Ok(o),
    };
    outcome.map(Some)
}
