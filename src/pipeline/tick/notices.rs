//! `AUTOHEAL_NOTICES` on the tick: EC2's scheduled events of every served region
//! (`DescribeInstanceStatus` filtered on `event.code`, one paginated read a region), each
//! handled as AWS Health's notices are (`pipeline::notice`): a new one recorded and told
//! once, a recorded one costing nothing but its share of one batched ledger read, one that
//! no longer stands closing its record quietly; then the recorded notices' due steps are
//! carried out (`notice_steps`).

use super::notice_steps;
use crate::app::Run;
use crate::model::outcome::{Action, Outcome, Verdict};
use crate::pipeline::notice::{handle_known, Heard};
use crate::rules::notice::record;
use std::collections::HashSet;

/// `calm`: no breaker is open (as the tick read the storm): only then may a step begin.
pub async fn notices(run: &Run<'_>, calm: bool) -> Vec<Outcome> {
    let regions = run.config.regions.listed(&run.config.region);
    let read = futures::future::join_all(
        regions
            .iter()
            .map(|r| async move { (*r, run.fleet.scheduled_events(r).await) }),
    )
    .await;
    let mut outcomes = vec![];
    let mut heard = vec![];
    let mut read_ok = HashSet::new();
    for (region, events) in read {
        match events {
            Ok(events) => {
                read_ok.insert(region.to_string());
                heard.extend(events.into_iter().map(|mut n| {
                    n.region = Some(region.to_string());
                    n.account = run.account.map(str::to_string);
                    n
                }))
            }
            Err(e) => outcomes.push(Outcome::new(
                None,
                Action::None,
                Verdict::Failed,
                format!("scheduled notices of {region} not read ({e}); the next tick tries again"),
            )),
        }
    }
    // The standing events listed: a stop/start is verified once its event is not.
    let listed: HashSet<String> = heard
        .iter()
        .filter(|n| !record::over(n))
        .map(|n| record::key(n.region.as_deref().unwrap_or_default(), n))
        .collect();
    let known = match heard.is_empty() {
        true => Ok((vec![], Default::default())),
        false => handle_known(run, heard, Heard::Tick).await,
    };
    match known {
        Ok((o, known)) => {
            outcomes.extend(o);
            let listing = notice_steps::Listing { listed, read_ok };
            outcomes.extend(notice_steps::carry_out(run, known, &listing, calm).await);
        }
        Err(e) => outcomes.push(Outcome::new(
            None,
            Action::None,
            Verdict::Failed,
            format!("scheduled notices not handled: their records not read ({e}); the next tick tries again"),
        )),
    }
    outcomes
}
