//! The first round of an alarm: the incident claimed in the ledger and EC2's facts read at
//! once — a lost claim wastes the reads, a won one saves a round trip.

use super::commit::{advance, First};
use crate::app::Run;
use crate::error::Error;
use crate::intake::Signal;
use crate::model::facts::Facts;
use crate::rules::incident::{self, Move};

/// Claims the alarm's incident (a lease until the run's deadline and a margin) while EC2 is
/// read.
pub async fn claim(run: &Run<'_>, s: &Signal) -> (Result<Move, Error>, Result<Facts, Error>) {
    let lease_until = run.deadline_ms.max(run.now_ms()) + super::LEASE_MARGIN_MS;
    let claimed = advance(run, s.region(), &s.instance_id, First::Guess, |h| {
        match s.found_by_scan() {
            true => incident::claim_scan(h, s, run.now_ms(), lease_until),
            false => incident::claim_alarm(h, s, run.now_ms(), lease_until),
        }
    });
    tokio::join!(claimed, facts(run, s.region(), &s.instance_id))
}

/// What EC2 and Auto Scaling report of the instance.
pub async fn facts(run: &Run<'_>, region: &str, instance_id: &str) -> Result<Facts, Error> {
    run.fleet.observe(region, instance_id).await
}
