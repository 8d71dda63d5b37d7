//! `AUTOHEAL_SCAN` on the tick: impaired instances no alarm told of, taken as alarms.

use super::STOP_MARGIN_MS;
use crate::app::Run;
use crate::intake::Intake;
use crate::model::outcome::{Action, Outcome, Verdict};
use crate::pipeline;
use crate::rules::scan;

/// `AUTOHEAL_SCAN`: impaired instances of every served region that no open incident covers
/// go through the pipeline as an alarm would, at most `limit` per tick, one at a time (the
/// guards and the breaker see each before the next).
pub async fn scan(run: &Run<'_>, open: &[String], limit: usize) -> Vec<Outcome> {
    let regions = run.config.regions.listed(&run.config.region);
    let found = futures::future::join_all(
        regions
            .iter()
            .map(|r| async move { (*r, run.fleet.impaired(r).await) }),
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
            scan::signals(&found, region, run.account, open, budget, run.now_ms());
        budget -= signals.len();
        for s in signals {
            if run.deadline_ms - run.now_ms() < STOP_MARGIN_MS {
                break;
            }
            let id = s.instance_id.clone();
            match pipeline::process(run, Intake::Signal(s)).await {
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
