//! The second round of an alarm, on a claimed incident: what the plan needs beyond EC2's
//! facts (the ladder's facts, the breaker, the guards' scope items), read at once; then the
//! plan (`rules::plan`, pure).

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
    /// The guards' scope items, read ahead for the admission.
    pub ahead: Vec<(crate::model::scope::ScopeKey, guard::ScopeItem)>,
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
    let (instance, open, ahead) = tokio::join!(
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
        guard::read_ahead(run, &facts, head, reads.scopes),
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
    let ladders = &config.ladders;
    let plan = plan::plan(plan::Seen {
        head,
        facts: &facts,
        step,
        metric,
        climb: instance.map(|i| plan::climb(ladders, metric, head, &facts, &i, now)),
        breaker: open.as_ref().map(|o| o.why.clone()),
        grace: config.grace,
        lineage_window_ms: config.lineage_window_ms,
        ladders,
        now_ms: now,
    });
    Ok(Decided {
        facts,
        plan,
        open,
        desired,
        ahead,
    })
}
