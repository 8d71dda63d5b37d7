//! The tick's look at the storm: closes each breaker whose cool-down is over (so none
//! stays open because no alarm came to close it), tells how the storm grows at most once
//! per update period, and says which scopes still hold their repairs.

use crate::app::Run;
use crate::error::Error;
use crate::model::outcome::{Action, Outcome, Verdict};
use crate::model::scope::ScopeKey;
use crate::notify::message::summary_payload;
use crate::pipeline::act::breaker::{close, leave, size_of};
use crate::rules::breaker::{self, Assessment};
use crate::rules::incident::{Head, HoldKind, Status};
use crate::rules::storm::{self, Counts};
use std::collections::{BTreeSet, HashMap};
use tokio::sync::OnceCell;

/// What the storm's breakers are now: the scopes still open (None: the storm item could
/// not be read) and what the tick did.
pub struct Upkeep {
    pub open: Option<BTreeSet<String>>,
    pub outcomes: Vec<Outcome>,
}

/// `storm`: as the tick read it (None: not read; then repairs held behind breakers wait
/// for their time). `heads`: the open incidents' heads, for the count of repairs held.
/// ARC's shifts are followed, and updates told, by the `scheduled` tick only (not by every
/// AMI or instance state change).
pub async fn upkeep(
    run: &Run<'_>,
    storm: Option<storm::Storm>,
    heads: &HashMap<String, Head>,
    scheduled: bool,
) -> Upkeep {
    let unread = Upkeep {
        open: None,
        outcomes: vec![],
    };
    let Some(storm) = storm else {
        return unread;
    };
    let (storm, shifted) = match after_shifts(run, storm, scheduled).await {
        Ok(read) => read,
        Err(e) => {
            tracing::warn!(error = %e, "storm not read again; repairs held behind breakers wait for their time");
            return unread;
        }
    };
    if storm.open.is_empty() {
        return Upkeep {
            open: Some(BTreeSet::new()),
            outcomes: shifted,
        };
    }
    let looked = futures::future::join_all(storm.open.iter().map(|key| look(run, key))).await;
    let mut open = BTreeSet::new();
    let mut counts = held(heads);
    let mut outcomes = shifted;
    for (key, looked) in storm.open.iter().zip(looked) {
        match looked {
            Ok(Looked::Open(zone)) => {
                open.insert(key.clone());
                match zone {
                    Some(zone) => counts.zones.push(zone),
                    None => counts.groups += 1,
                }
            }
            Ok(Looked::Closed) => outcomes.push(Outcome::new(
                None,
                Action::None,
                Verdict::Done,
                format!("breaker {key} closed: its cool-down is over"),
            )),
            Err(e) => {
                tracing::warn!(error = %e, scope = %key, "breaker not looked at; still holding");
                open.insert(key.clone());
            }
        }
    }
    // Told from what is still open: a storm that ended in this tick was told so already.
    let still = storm::Storm {
        open: open.clone(),
        ..storm
    };
    if scheduled {
        tell_update(run, &still, &counts).await;
    }
    if !open.is_empty() {
        outcomes.push(Outcome::new(
            None,
            Action::None,
            Verdict::Held,
            format!(
                "storm: {} breaker(s) open ({}); {} repair(s) held behind them, not looked at until their breaker closes",
                open.len(),
                open.iter().cloned().collect::<Vec<_>>().join(", "),
                counts.held
            ),
        ));
    }
    Upkeep {
        open: Some(open),
        outcomes,
    }
}

/// The storm's update, when one is due and this tick claims it.
async fn tell_update(run: &Run<'_>, storm: &storm::Storm, counts: &Counts) {
    let now = run.now_ms();
    if !storm::update_due(storm, counts, run.config.storm.update_ms, now) {
        return;
    }
    let told = (counts.zones.len() + counts.groups, counts.held);
    if let Ok(true) = run
        .ledger
        .claim_storm_update(storm.told_ms, told, now)
        .await
    {
        let since = storm.since_ms.unwrap_or(now);
        let text = storm::update_text(since, now, counts);
        run.tell(&summary_payload(&text)).await;
    }
}

/// The storm, after ARC's shifts have opened and released zones' breakers (the scheduled
/// tick's; read again only when one changed), and what following them did.
async fn after_shifts(
    run: &Run<'_>,
    storm: storm::Storm,
    scheduled: bool,
) -> Result<(storm::Storm, Vec<Outcome>), Error> {
    if !scheduled {
        return Ok((storm, vec![]));
    }
    let shifted = super::shifts::follow(run, &storm.open).await;
    match shifted.is_empty() {
        true => Ok((storm, shifted)),
        false => Ok((run.ledger.read_storm().await?, shifted)),
    }
}

/// The repairs held behind a breaker, and in how many groups.
fn held(heads: &HashMap<String, Head>) -> Counts {
    let held: Vec<&Head> = heads
        .values()
        .filter(|h| h.status == Status::Repairing && h.hold_kind == Some(HoldKind::Breaker))
        .collect();
    let groups: BTreeSet<&str> = held.iter().filter_map(|h| h.group.as_deref()).collect();
    Counts {
        held: held.len(),
        held_groups: groups.len(),
        ..Counts::default()
    }
}

/// One open scope of the storm, as the tick finds it.
enum Looked {
    /// Still open; a zone's label, alarm count and resume command.
    Open(Option<(String, usize, String)>),
    /// Closed now (or found closed, or no longer configured).
    Closed,
}

async fn look(run: &Run<'_>, key: &str) -> Result<Looked, Error> {
    let Ok(scope) = key.parse::<ScopeKey>() else {
        run.ledger.leave_storm(key).await?;
        return Ok(Looked::Closed);
    };
    let settings = match scope {
        ScopeKey::Zone { .. } => run.config.storm.zone,
        ScopeKey::Account => run.config.storm.account,
        _ => run.config.breaker,
    };
    let (alarms, state) = run.ledger.read_breaker(key).await?;
    let Some(settings) = settings.filter(|_| state.open_since_ms.is_some()) else {
        // Closed already (a write whose storm update was lost), or turned off since.
        match state.open_since_ms.is_some() {
            true => close(run, &scope, &alarms, &state, "breaker turned off").await?,
            // Its end is told here if the lost update was the storm's last.
            false => {
                leave(run, &scope, "found closed", false).await;
                true
            }
        };
        return Ok(Looked::Closed);
    };
    let size = match breaker::needs_size(&settings, alarms.len(), &state) {
        true => size_of(run, &scope, &OnceCell::new()).await?,
        false => None,
    };
    match breaker::assess(&settings, size, &alarms, &state, run.now_ms()) {
        // A close lost to another invocation's write: that one took it out of the storm.
        Assessment::Closes => {
            close(run, &scope, &alarms, &state, "cool-down over").await?;
            Ok(Looked::Closed)
        }
        _ => Ok(Looked::Open(match scope {
            ScopeKey::Zone { .. } | ScopeKey::Account => {
                let alarmed = alarms.iter().filter(|(_, t)| *t > state.cleared_ms).count();
                let label = match &state.shift {
                    Some(shift) => format!("{} (traffic shifted away: {shift})", scope.label()),
                    None => scope.label(),
                };
                let config = &run.config;
                let resume = breaker::resume_command(&config.function_name, &config.region, &scope);
                Some((label, alarmed, resume))
            }
            _ => None,
        })),
    }
}
