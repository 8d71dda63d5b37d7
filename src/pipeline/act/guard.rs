//! The repair guards at the edges: the cluster's or group's scope of the instance and the
//! account budget (`rules::guard`), each a ledger item whose place is taken by a conditional
//! write; the holds of one scope are told once per period, not one by one.

use super::hold::Telling;
use crate::app::Run;
use crate::error::Error;
use crate::ledger::scope::Free;
use crate::model::facts::Facts;
use crate::model::scope::ScopeKey;
use crate::pipeline::commit::MAX_LEDGER_RACES;
use crate::rules::guard::{self, Admission};
use crate::rules::incident::Head;
use tokio::sync::OnceCell;

/// The guard scope of the instance about to be repaired; a group's desired capacity is
/// read only when a group guard is on.
async fn guard_scope(
    run: &Run<'_>,
    region: &str,
    facts: &Facts,
    desired: &OnceCell<Option<i32>>,
) -> Result<Option<guard::Scope>, Error> {
    let Some(instance) = &facts.instance else {
        return Ok(None);
    };
    let (quorum, percent) = (run.config.quorum_guard, run.config.max_inflight_percent);
    let group = match &facts.group {
        Some(g) if guard::needs_group_size(instance, quorum, percent) => {
            desired_capacity(run, region, &g.name, desired)
                .await?
                .map(|d| (g.name.as_str(), d))
        }
        _ => None,
    };
    Ok(
        guard::scope_for(instance, group, quorum, percent).map(|mut scope| {
            scope.key = scope.key.clone().in_region(region);
            scope
        }),
    )
}

/// The group's desired capacity, read at most once per decision (`once`).
pub(crate) async fn desired_capacity(
    run: &Run<'_>,
    region: &str,
    group: &str,
    once: &OnceCell<Option<i32>>,
) -> Result<Option<i32>, Error> {
    let read = || async { Ok(run.fleet.group(region, group).await?.map(|g| g.desired)) };
    once.get_or_try_init(read).await.copied()
}

/// The keys of the scopes a repair of this instance is admitted in, known before the
/// group's size: its cluster's or group's (when a guard applies to one), the account's.
fn scope_keys(run: &Run<'_>, facts: &Facts, head: &Head) -> Vec<ScopeKey> {
    let Some(instance) = &facts.instance else {
        return vec![];
    };
    let config = &run.config;
    let group = facts.group.as_ref().map(|g| g.name.as_str());
    let (quorum, percent) = (config.quorum_guard, config.max_inflight_percent);
    [
        guard::scope_key(instance, group, quorum, percent, head.region()),
        guard::account_scope(config.account_max_repairs).map(|s| s.key),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// A scope item as read: its members (instance, incident) and version.
type ScopeItem = (Vec<(String, String)>, i64);

/// Admits the repair in its scopes (cluster or group, and the account budget) in one
/// transaction, when each is free — the common case, and no scope item read first. Run in
/// the round of the breaker's reads, before the plan: `decide` asks only when the plan will
/// be a guarded repair unless the breaker holds it, and a head held by the breaker counts
/// in no scope. False: not every scope was free (or none applies); `admit_everywhere`
/// admits after the plan.
pub(crate) async fn admit_if_free(run: &Run<'_>, facts: &Facts, head: &Head) -> bool {
    if run.config.account_max_repairs == Some(0) {
        return false;
    }
    let me = head.key();
    let window = guard::account_scope(run.config.account_max_repairs).and_then(|s| s.window_ms);
    let free: Vec<Free> = scope_keys(run, facts, head)
        .into_iter()
        .map(|key| Free {
            window_start_ms: match key {
                ScopeKey::Account => window.map(|w| head.opened_ms - w),
                _ => None,
            },
            scope: key.to_string(),
            member: (&me, &head.incident_id),
            alarm_ms: head.opened_ms,
        })
        .collect();
    if free.is_empty() {
        return false;
    }
    match run.ledger.admit_if_free(&free, run.now_ms() / 1000).await {
        Ok(admitted) => admitted,
        Err(e) => {
            tracing::warn!(error = %e, incident = %head.incident_id, "could not admit at once; admitting scope by scope");
            false
        }
    }
}

/// Admits this repair in its scope (cluster or group), then in the account budget. None:
/// admitted everywhere; otherwise why it waits, and how people hear of it: the holds of
/// one scope are told once per `HOLD_REPORT_PERIOD_MS`, not one by one.
pub(crate) async fn admit_everywhere(
    run: &Run<'_>,
    facts: &Facts,
    head: &Head,
    desired: &OnceCell<Option<i32>>,
) -> Result<Option<(String, Telling)>, Error> {
    // The scope items are read while the group's size is: their keys do not need it. A
    // failed read is read again by `admit`.
    let keys = scope_keys(run, facts, head);
    let (scoped, items) = tokio::join!(
        guard_scope(run, head.region(), facts, desired),
        futures::future::join_all(
            keys.iter()
                .map(|k| async move { run.ledger.read_scope(&k.to_string()).await })
        ),
    );
    let mut read: Vec<(ScopeKey, ScopeItem)> = keys
        .into_iter()
        .zip(items)
        .filter_map(|(k, item)| Some((k, item.ok()?)))
        .collect();
    let scopes: Vec<guard::Scope> = [
        scoped?,
        guard::account_scope(run.config.account_max_repairs),
    ]
    .into_iter()
    .flatten()
    .collect();
    // Every scope at once: a hold in any holds the repair. A place taken meanwhile in
    // another scope costs nobody a repair: a held head counts in no scope.
    let verdicts = futures::future::try_join_all(scopes.iter().map(|scope| {
        let first = read.iter().position(|(k, _)| *k == scope.key);
        admit(run, scope, head, first.map(|i| read.swap_remove(i).1))
    }))
    .await?;
    for (scope, why) in scopes.iter().zip(verdicts) {
        let Some(why) = why else {
            continue;
        };
        // A lost write race is a hold like the others: summarised with them.
        let now = run.now_ms();
        let first = run
            .ledger
            .claim_summary(
                &scope.key.to_string(),
                now,
                now + guard::HOLD_REPORT_PERIOD_MS,
            )
            .await?;
        return Ok(Some(if first {
            (
                format!("{why}. {}", guard::summary_note(scope)),
                Telling::Report,
            )
        } else {
            (why, Telling::Summarised(None))
        }));
    }
    Ok(None)
}

/// Admits this member to repair in `scope`, or says why it waits. None: admitted.
/// `first`: the scope item as read already, for the first try (a stale one loses the
/// conditional write, and the item is read again).
async fn admit(
    run: &Run<'_>,
    scope: &guard::Scope,
    head: &Head,
    mut first: Option<ScopeItem>,
) -> Result<Option<String>, Error> {
    let key = scope.key.to_string();
    for _ in 0..MAX_LEDGER_RACES {
        let (members, version) = match first.take() {
            Some(item) => item,
            None => run.ledger.read_scope(&key).await?,
        };
        let me = head.key();
        let others: Vec<&(String, String)> = members
            .iter()
            .filter(|(key, inc)| (key, inc) != (&me, &head.incident_id))
            .collect();
        let heads =
            futures::future::try_join_all(others.iter().map(|(id, _)| run.ledger.read(id))).await?;
        let now = run.now_ms();
        let (live, alarms): (Vec<(String, String)>, Vec<i64>) = others
            .iter()
            .zip(&heads)
            .filter(|((_, incident), h)| match scope.window_ms {
                Some(window) => guard::started_within(h.as_ref(), incident, head.opened_ms, window),
                None => guard::still_under_repair(h.as_ref(), incident),
            })
            .map(|(member, h)| ((*member).clone(), h.as_ref().map_or(0, |h| h.opened_ms)))
            .unzip();
        let newest = alarms.into_iter().fold(head.opened_ms, i64::max);
        match guard::admit(scope, (&me, &head.incident_id), &live) {
            Admission::Hold(why) => return Ok(Some(why)),
            Admission::Admit(list) => {
                if run
                    .ledger
                    .write_scope(&key, &list, (version, newest), now / 1000)
                    .await?
                {
                    return Ok(None);
                }
            }
        }
    }
    Ok(Some(format!(
        "{}: {} kept changing under other invocations; looking again in a minute",
        scope.rule,
        scope.key.label()
    )))
}
