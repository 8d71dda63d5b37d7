//! An Auto Scaling member marked Unhealthy: Auto Scaling replaces it; the incident follows
//! the replacement (`replacement`).

use super::finish;
use crate::app::Run;
use crate::error::Error;
use crate::intake::Signal;
use crate::model::facts::Facts;
use crate::model::outcome::{Action, Outcome, Verdict};
use crate::pipeline::commit::fail;
use crate::rules::incident::Head;

/// `SetInstanceHealth(Unhealthy)`, skipping the group's health check grace period.
pub async fn mark(
    run: &Run<'_>,
    head: Head,
    s: &Signal,
    facts: &Facts,
    group: &str,
) -> Result<Outcome, Error> {
    match run.fleet.mark_unhealthy(s.region(), &s.instance_id).await {
        Ok(()) => {
            let o = Outcome::new(
                Some(s.instance_id.clone()),
                Action::MarkUnhealthy,
                Verdict::Done,
                format!(
                    "marked Unhealthy in group {group} (Auto Scaling's health check grace period skipped); {}",
                    facts.checks.said()
                ),
            );
            finish(run, s, head, facts, o).await
        }
        Err(e) => fail(run, &head, s, Some(facts), Action::MarkUnhealthy, e).await,
    }
}
