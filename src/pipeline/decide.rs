//! The second round of an alarm, on a claimed incident: what the plan needs beyond EC2's
//! facts (the ladder's facts, the breaker's note and count), read at once, with the
//! guards' admission when every scope is free; then the plan (`rules::plan`, pure).

use super::act::{breaker, guard, ladder};
use crate::app::Run;
use crate::error::Error;
use crate::intake::{Metric, Signal};
use crate::model::facts::Facts;
use crate::rules::decide::decide as judge;
use crate::rules::incident::Head;
use crate::rules::plan::{self, Plan};
use crate::rules::trust;
use tokio::sync::OnceCell;

/// The plan, and what was read for it that acting may use again.
pub struct Decided {
    pub facts: Facts,
    pub plan: Plan,
    /// The breaker of the incident's scope, when it is open.
    pub open: Option<breaker::Open>,
    /// The group's desired capacity, read at most once (the breaker and the guards).
    pub desired: OnceCell<Option<i32>>,
    /// The repair was admitted in its guard scopes at once, in the round of the reads
    /// (`guard::admit_if_free`); otherwise, a guarded repair is admitted scope by scope.
    pub admitted: bool,
}

/// What EC2 or the ledger could not tell: the decision fails (`commit::fail`).
pub struct Unread {
    pub facts: Option<Facts>,
    pub error: Error,
}

/// Reads what the plan needs in one round and makes the plan.
pub async fn decide(
    run: &Run<'_>,
    s: &Signal,
    head: &Head,
    facts: Result<Facts, Error>,
) -> Result<Decided, Unread> {
    let facts = facts.map_err(|error| Unread { facts: None, error })?;
    let now = run.now_ms();
    let config = &run.config;
    let step = judge(s, &facts, config.dry_run, &config.other_controllers);
    let metric = Metric::from_name(&head.alarm.metric).unwrap_or(s.metric);
    let reads = plan::reads(head, &step, &facts);
    let desired = OnceCell::new();
    let confirmed = matches!(
        trust::confirm(metric, facts.checks),
        trust::Confirmation::Confirmed(_)
    );
    let ladders = &config.ladders;
    let seen = |climb, breaker| plan::Seen {
        head,
        facts: &facts,
        step: step.clone(),
        metric,
        climb,
        breaker,
        grace: config.grace,
        lineage_window_ms: config.lineage_window_ms,
        ladders,
        now_ms: now,
    };
    // Admitted beside the breaker's reads when the plan, unless the breaker holds it, is a
    // guarded repair (no ladder to read first): the breaker's hold leaves the admission
    // unused, as a held head counts in no scope.
    let admit_ahead = reads.scopes
        && !reads.ladder
        && matches!(
            plan::plan(seen(None, None)),
            Plan::Repair { guarded: true, .. }
        );
    let (instance, open, admitted) = tokio::join!(
        async {
            match (reads.ladder, &facts.instance) {
                (true, Some(i)) => Some(ladder::enrich(run, head.region(), i).await),
                _ => None,
            }
        },
        async {
            match reads.breaker {
                true => breaker::check(run, &facts, head, confirmed, &desired).await,
                false => Ok(None),
            }
        },
        async {
            match admit_ahead {
                true => guard::admit_if_free(run, &facts, head).await,
                false => false,
            }
        },
    );
    let open = match open {
        Ok(open) => open,
        Err(error) => {
            return Err(Unread {
                facts: Some(facts),
                error,
            })
        }
    };
    let climb = instance.map(|i| plan::climb(ladders, metric, head, &facts, &i, now));
    let plan = plan::plan(seen(climb, open.as_ref().map(|o| o.why.clone())));
    Ok(Decided {
        facts,
        plan,
        open,
        desired,
        admitted,
    })
}
