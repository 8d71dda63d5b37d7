//! `AUTOHEAL_NOTICES` on the tick: EC2's scheduled events of every served region
//! (`DescribeInstanceStatus` filtered on `event.code`, one paginated read a region), each
//! handled as AWS Health's notices are (`pipeline::notice`): a new one recorded and told
//! once, a recorded one costing nothing but its share of one batched ledger read, one that
//! no longer stands closing its record quietly.

use crate::app::Run;
use crate::model::outcome::{Action, Outcome, Verdict};
use crate::pipeline::notice::{handle, Heard};

pub async fn notices(run: &Run<'_>) -> Vec<Outcome> {
    let regions = run.config.regions.listed(&run.config.region);
    let read = futures::future::join_all(
        regions
            .iter()
            .map(|r| async move { (*r, run.fleet.scheduled_events(r).await) }),
    )
    .await;
    let mut outcomes = vec![];
    let mut heard = vec![];
    for (region, events) in read {
        match events {
            Ok(events) => heard.extend(events.into_iter().map(|mut n| {
                n.region = Some(region.to_string());
                n.account = run.account.map(str::to_string);
                n
            })),
            Err(e) => outcomes.push(Outcome::new(
                None,
                Action::None,
                Verdict::Failed,
                format!("scheduled notices of {region} not read ({e}); the next tick tries again"),
            )),
        }
    }
    if heard.is_empty() {
        return outcomes;
    }
    match handle(run, heard, Heard::Tick).await {
        Ok(o) => outcomes.extend(o),
        Err(e) => outcomes.push(Outcome::new(
            None,
            Action::None,
            Verdict::Failed,
            format!("scheduled notices not handled: their records not read ({e}); the next tick tries again"),
        )),
    }
    outcomes
}
