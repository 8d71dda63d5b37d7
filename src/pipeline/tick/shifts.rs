//! The tick follows ARC: a shift of traffic away from a zone (a zonal shift or an
//! autoshift) holds that zone's breaker open while it lasts — its storm told as any other —
//! and once it ends the breaker cools down from then, so repairs resume only after Auto
//! Scaling has moved capacity back.

use crate::app::Run;
use crate::error::Error;
use crate::model::handover::Handover;
use crate::model::outcome::{Action, Outcome, Verdict};
use crate::model::scope::ScopeKey;
use crate::notify::message::summary_for_people;
use crate::rules::storm;
use std::collections::BTreeSet;

/// Follows the shifts of every region served (with `*`, the function's own); `open`: the
/// storm's open scopes as read. An outcome for each breaker changed (none: none changed).
pub async fn follow(run: &Run<'_>, open: &BTreeSet<String>) -> Vec<Outcome> {
    if run.config.storm.zone.is_none() {
        return vec![];
    }
    let regions = run.config.regions.listed(&run.config.region);
    let followed =
        futures::future::join_all(regions.iter().map(|r| follow_region(run, r, open))).await;
    let mut outcomes = vec![];
    for (region, followed) in regions.iter().zip(followed) {
        match followed {
            Ok(o) => outcomes.extend(o),
            Err(e) => {
                tracing::warn!(error = %e, region, "zonal shifts not read; zones held as they were");
            }
        }
    }
    outcomes
}

async fn follow_region(
    run: &Run<'_>,
    region: &str,
    open: &BTreeSet<String>,
) -> Result<Vec<Outcome>, Error> {
    let shifts = run.fleet.zonal_shifts(region).await?;
    let mut outcomes = vec![];
    let mut shifted = BTreeSet::new();
    for shift in &shifts {
        let zone = ScopeKey::zone(&shift.zone).in_region(region);
        shifted.insert(zone.to_string());
        if let Some(o) = hold(run, &zone, Some(shift.said.clone())).await? {
            outcomes.push(o);
        }
    }
    // Zones of this region the storm holds whose shift is over.
    let ended = open
        .iter()
        .filter(|key| !shifted.contains(*key))
        .filter_map(|key| {
            let scope = key.parse::<ScopeKey>().ok()?;
            matches!(&scope, ScopeKey::Zone { .. } if scope.region() == Some(region))
                .then_some(scope)
        });
    for zone in ended.collect::<Vec<_>>() {
        if let Some(o) = hold(run, &zone, None).await? {
            outcomes.push(o);
        }
    }
    Ok(outcomes)
}

/// Sets the zone's breaker's shift (None: ended) when it is not so already; opening it joins
/// the storm, told when that begins it. None: nothing changed.
async fn hold(
    run: &Run<'_>,
    zone: &ScopeKey,
    shift: Option<String>,
) -> Result<Option<Outcome>, Error> {
    let key = zone.to_string();
    let (alarms, state) = run.ledger.read_breaker(&key).await?;
    if state.shift == shift {
        return Ok(None);
    }
    let now = run.now_ms();
    if !run
        .ledger
        .write_breaker(&key, &state.shifted(shift.clone(), now), &alarms, now)
        .await?
    {
        // Another tick got there first: the same shift.
        return Ok(None);
    }
    let Some(said) = shift else {
        let why = format!(
            "{}: the shift away from it ended; repairs resume after the breaker's cool-down",
            zone.label()
        );
        return Ok(Some(Outcome::new(None, Action::None, Verdict::Done, why)));
    };
    let mut outcome = Outcome::new(
        None,
        Action::None,
        Verdict::Held,
        format!(
            "{}: {said}; nothing repaired there while it lasts",
            zone.label()
        ),
    );
    if run.ledger.join_storm(&key, now).await.unwrap_or(true) {
        let text = storm::zone_shifted_text(zone, &said, run.config.storm.update_ms);
        let payload =
            summary_for_people(&text, Handover::Breaker, run.config.runbook_url.as_deref());
        outcome.notification = Some(run.tell(&payload).await);
    }
    Ok(Some(outcome))
}
