//! The correlated-failure breaker at the edges: count this alarm in its scope, read the
//! breaker, trip or close it (one message each, sent by the one invocation whose
//! conditional write made the change), and the operator's resume event.

use super::guard::desired_capacity;
use crate::app::Run;
use crate::error::Error;
use crate::model::facts::Facts;
use crate::model::handover::Handover;
use crate::model::outcome::{Action, Outcome, Verdict};
use crate::model::scope::ScopeKey;
use crate::notify::message::{summary_for_people, summary_payload};
use crate::pipeline::commit::MAX_LEDGER_RACES;
use crate::rules::breaker::{self, Assessment, State};
use crate::rules::incident::{Head, HoldKind};
use tokio::sync::OnceCell;

/// The breaker is open in this incident's scope: hold, with why, and where the one summary
/// went if this invocation sent it.
pub struct Open {
    pub why: String,
    pub summary: Option<String>,
}

/// Counts the incident's alarm once EC2 confirms it (`confirmed`: an alarm EC2 does not
/// confirm counts toward no breaker, so forged alarms cannot open one) and says whether the
/// breaker of its scope is open. Closing it after the cool-down happens here too.
/// `desired`: the group's desired capacity, shared with the guards.
pub async fn check(
    run: &Run<'_>,
    facts: &Facts,
    head: &Head,
    confirmed: bool,
    desired: &OnceCell<Option<i32>>,
) -> Result<Option<Open>, Error> {
    let (Some(settings), Some(instance)) = (run.config.breaker, &facts.instance) else {
        return Ok(None);
    };
    let group = facts.group.as_ref().map(|g| g.name.as_str());
    let Some(scope) = breaker::scope_of(instance, group) else {
        return Ok(None);
    };
    let scope = scope.in_region(head.region());
    let (key, label) = (scope.to_string(), scope.label());
    // Noted once confirmed, and read back in the same call; noting again is a no-op (one
    // entry per member), and a repair held by a guard was confirmed, so noted, before.
    let mut read = Some(match confirmed && head.hold_kind != Some(HoldKind::Guard) {
        true => {
            run.ledger
                .note_alarm(&key, &head.key(), head.opened_ms)
                .await?
        }
        false => run.ledger.read_breaker(&key).await?,
    });
    let mut size = None;
    for _ in 0..MAX_LEDGER_RACES {
        let (alarms, state) = match read.take() {
            Some(read) => read,
            None => run.ledger.read_breaker(&key).await?,
        };
        // The size a percent is taken of is read only when it can change the answer.
        if size.is_none() && breaker::needs_size(&settings, alarms.len(), &state) {
            size = Some(scope_size(run, facts, head, desired).await?);
        }
        let now = run.now_ms();
        match breaker::assess(&settings, size.flatten(), &alarms, &state, now) {
            Assessment::Closed => return Ok(None),
            Assessment::Open(why) => return Ok(Some(Open { why, summary: None })),
            Assessment::Opens {
                instances,
                threshold,
            } => {
                if run
                    .ledger
                    .write_breaker(&key, &state.tripped(now), &alarms, now)
                    .await?
                {
                    let opened = (&scope, &instances[..], threshold.as_str());
                    return Ok(Some(tell_opened(run, opened, &settings).await));
                }
            }
            Assessment::Closes => {
                if close(run, &scope, &alarms, &state, "cool-down over").await? {
                    return Ok(None);
                }
            }
        }
    }
    Ok(Some(Open {
        why: format!(
            "{}? {label}'s breaker kept changing under other invocations; looking again in a minute",
            breaker::HOLD_PREFIX
        ),
        summary: None,
    }))
}

/// The size a percent is taken of: the group's desired capacity, or the instances with
/// the cluster tag.
async fn scope_size(
    run: &Run<'_>,
    facts: &Facts,
    head: &Head,
    desired: &OnceCell<Option<i32>>,
) -> Result<Option<usize>, Error> {
    let Some(instance) = facts.instance.as_ref() else {
        return Ok(None);
    };
    let group = facts.group.as_ref().map(|g| g.name.as_str());
    match (group, crate::rules::guard::cluster_of(instance)) {
        (_, Some(name)) => Ok(Some(run.fleet.cluster_size(head.region(), name).await?)),
        (Some(name), None) => Ok(desired_capacity(run, head.region(), name, desired)
            .await?
            .map(|d| d.max(0) as usize)),
        (None, None) => Ok(None),
    }
}

/// This invocation opened the breaker: one summary to people, with the command that
/// resumes it and the runbook's section; the hold says so.
/// `opened`: the scope, the members counted (ledger keys), the threshold.
async fn tell_opened(
    run: &Run<'_>,
    (scope, instances, threshold): (&ScopeKey, &[String], &str),
    settings: &breaker::Settings,
) -> Open {
    let (key, label) = (scope.to_string(), scope.label());
    let label = label.as_str();
    // Counted by ledger key; people read instance ids (the label names the region).
    let ids: Vec<String> = instances
        .iter()
        .map(|k| crate::model::keys::instance_of(k))
        .map(str::to_string)
        .collect();
    let config = &run.config;
    let resume = breaker::resume_command(&config.function_name, &config.region, scope);
    let text = breaker::opened_text(label, &ids, threshold, settings, &resume);
    let payload = summary_for_people(&text, Handover::Breaker, config.runbook_url.as_deref());
    let summary = run.tell(&payload).await;
    tracing::warn!(scope = %key, members = instances.len(), "breaker open");
    let why = format!(
        "{}: {} members of {label} alarmed within the window (threshold {threshold}); automated repair stopped there, one summary sent",
        breaker::HOLD_PREFIX,
        instances.len()
    );
    Open {
        why,
        summary: Some(summary),
    }
}

/// Closes the breaker, forgetting the alarms so far; the winner of the write tells people.
async fn close(
    run: &Run<'_>,
    scope: &ScopeKey,
    alarms: &[(String, i64)],
    state: &State,
    by: &str,
) -> Result<bool, Error> {
    let key = &scope.to_string();
    let now = run.now_ms();
    let closed = state.closed(alarms, now);
    if !run.ledger.write_breaker(key, &closed, alarms, now).await? {
        return Ok(false);
    }
    let text = breaker::closed_text(&scope.label(), by);
    let delivery = run.tell(&summary_payload(&text)).await;
    tracing::warn!(scope = %key, by, notification = %delivery, "breaker closed");
    Ok(true)
}

/// The operator's resume event: closes the scope's breaker now.
pub async fn resume(run: &Run<'_>, scope: &ScopeKey) -> Result<Outcome, Error> {
    let (key, label) = (&scope.to_string(), scope.label());
    for _ in 0..MAX_LEDGER_RACES {
        let (alarms, state) = run.ledger.read_breaker(key).await?;
        if state.open_since_ms.is_none() {
            return Ok(Outcome::new(
                None,
                Action::None,
                Verdict::Ignored,
                format!("resume: the breaker for {label} is not open"),
            ));
        }
        if close(run, scope, &alarms, &state, "resumed by an operator").await? {
            return Ok(Outcome::new(
                None,
                Action::None,
                Verdict::Done,
                format!(
                    "breaker for {label} closed by a resume event; members still alarming are looked at by the next tick"
                ),
            ));
        }
    }
    Err(Error::Transient {
        op: "resume",
        detail: format!("the breaker for {label} kept changing; try the resume again"),
    })
}
