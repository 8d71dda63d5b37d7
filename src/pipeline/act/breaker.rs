//! The correlated-failure breakers at the edges: count this alarm in its zone's and its
//! group's or cluster's breaker, read them, trip or close them. The storm they make
//! together is told once: the invocation whose trip begins it sends the opening message,
//! the one whose close ends it the closing one (`ledger::storm`); the tick sends the
//! updates between (`pipeline::tick::storm`). And the operator's resume event.

use super::guard::desired_capacity;
use crate::app::Run;
use crate::error::Error;
use crate::model::facts::Facts;
use crate::model::handover::Handover;
use crate::model::outcome::{Action, Outcome, Verdict};
use crate::model::scope::ScopeKey;
use crate::notify::message::{summary_for_people, summary_payload};
use crate::pipeline::commit::MAX_LEDGER_RACES;
use crate::rules::breaker::{self, Assessment, Settings, State};
use crate::rules::incident::{Head, HoldKind};
use crate::rules::storm;
use tokio::sync::OnceCell;

/// A breaker is open in one of this incident's scopes: hold, with why, until when at least,
/// behind which scope, and where the storm's opening message went if this invocation sent it.
pub struct Open {
    pub why: String,
    pub summary: Option<String>,
    pub scope: String,
    pub until_ms: i64,
}

/// The breakers of an instance: its zone's, then its cluster's or group's, each with its
/// settings (those turned off left out).
fn scopes_of(run: &Run<'_>, facts: &Facts, region: &str) -> Vec<(ScopeKey, Settings)> {
    let Some(instance) = &facts.instance else {
        return vec![];
    };
    let group = facts.group.as_ref().map(|g| g.name.as_str());
    let zone = breaker::zone_of(instance).zip(run.config.storm.zone);
    let account = run.config.storm.account.map(|s| (ScopeKey::Account, s));
    let scope = breaker::scope_of(instance, group).zip(run.config.breaker);
    [zone, account, scope]
        .into_iter()
        .flatten()
        .map(|(key, settings)| (key.in_region(region), settings))
        .collect()
}

/// Counts the incident's alarm once EC2 confirms it (`confirmed`: an alarm EC2 does not
/// confirm counts toward no breaker, so forged alarms cannot open one) and says whether a
/// breaker of its scopes is open — its zone's first. Closing one after its cool-down
/// happens here too. `desired`: the group's desired capacity, shared with the guards.
pub async fn check(
    run: &Run<'_>,
    facts: &Facts,
    head: &Head,
    confirmed: bool,
    desired: &OnceCell<Option<i32>>,
) -> Result<Option<Open>, Error> {
    let scopes = scopes_of(run, facts, head.region());
    let checked = futures::future::try_join_all(
        scopes
            .iter()
            .map(|(scope, settings)| check_one(run, head, confirmed, desired, scope, settings)),
    )
    .await?;
    // The breakers this alarm tripped join the storm, the zone's first: only the one that
    // begins the storm tells people.
    let mut first: Option<Open> = None;
    for ((scope, settings), checked) in scopes.iter().zip(checked) {
        let open = match checked {
            None => continue,
            Some(Checked::Open(open)) => open,
            Some(Checked::Tripped(tripped)) => tell_opened(run, scope, tripped, settings).await,
        };
        first = match first {
            None => Some(open),
            Some(f) => Some(Open {
                summary: f.summary.or(open.summary),
                ..f
            }),
        };
    }
    Ok(first)
}

/// One breaker as `check_one` found it.
enum Checked {
    Open(Open),
    /// This invocation's write tripped it: its members counted (ledger keys), its threshold,
    /// and until when it stays open at least.
    Tripped(Tripped),
}

struct Tripped {
    instances: Vec<String>,
    threshold: String,
    until_ms: i64,
}

/// One scope's breaker: noted, read, tripped or closed.
async fn check_one(
    run: &Run<'_>,
    head: &Head,
    confirmed: bool,
    desired: &OnceCell<Option<i32>>,
    scope: &ScopeKey,
    settings: &Settings,
) -> Result<Option<Checked>, Error> {
    let key = scope.to_string();
    let mut read = Some(note(run, head, confirmed, &key).await?);
    let mut size = None;
    for _ in 0..MAX_LEDGER_RACES {
        let (alarms, state) = match read.take() {
            Some(read) => read,
            None => run.ledger.read_breaker(&key).await?,
        };
        // The size a percent is taken of is read only when it can change the answer, and
        // not for an alarm held behind a breaker already open: every alarm of a storm would
        // read a zone's instances again. Without it the count alone decides, which closes a
        // breaker no sooner; the tick, which reads it, closes it on time.
        let open = state.open_since_ms.is_some();
        if size.is_none() && !open && breaker::needs_size(settings, alarms.len(), &state) {
            size = Some(size_of(run, scope, desired).await?);
        }
        let now = run.now_ms();
        match breaker::assess(settings, size.flatten(), &alarms, &state, now) {
            Assessment::Closed => return Ok(None),
            Assessment::Open { why, until_ms } => {
                let open = Open {
                    why,
                    summary: None,
                    scope: key,
                    until_ms,
                };
                return Ok(Some(Checked::Open(open)));
            }
            Assessment::Opens {
                instances,
                threshold,
                until_ms,
            } => {
                if run
                    .ledger
                    .write_breaker(&key, &state.tripped(now), &alarms, now)
                    .await?
                {
                    return Ok(Some(Checked::Tripped(Tripped {
                        instances,
                        threshold,
                        until_ms,
                    })));
                }
            }
            Assessment::Closes => {
                if close(run, scope, &alarms, &state, "cool-down over").await? {
                    return Ok(None);
                }
            }
        }
    }
    let why = format!(
        "{}? {}'s breaker kept changing under other invocations; looking again in a minute",
        breaker::HOLD_PREFIX,
        scope.label()
    );
    let open = Open {
        why,
        summary: None,
        scope: key,
        until_ms: run.now_ms(),
    };
    Ok(Some(Checked::Open(open)))
}

/// The breaker after noting the incident's alarm once EC2 confirms it, read back in the same
/// call; noting again is a no-op (one entry per member), and a repair held by a guard was
/// confirmed, so noted, before. A repair a breaker held, taken up and still failing, is
/// noted again at the time EC2 confirms it: a zone still failing after its cool-down trips
/// its breaker again after a few take-ups, instead of being repaired five a minute.
async fn note(
    run: &Run<'_>,
    head: &Head,
    confirmed: bool,
    key: &str,
) -> Result<crate::ledger::store::Breaker, Error> {
    let at = match head.hold_kind {
        Some(HoldKind::Breaker) => head.opened_ms.max(run.now_ms()),
        _ => head.opened_ms,
    };
    match confirmed && head.hold_kind != Some(HoldKind::Guard) {
        true => run.ledger.note_alarm(key, &head.key(), at).await,
        false => run.ledger.read_breaker(key).await,
    }
}

/// The size a percent is taken of: the group's desired capacity, the instances with the
/// cluster tag, or those in the zone.
pub(crate) async fn size_of(
    run: &Run<'_>,
    scope: &ScopeKey,
    desired: &OnceCell<Option<i32>>,
) -> Result<Option<usize>, Error> {
    let region = scope.region().unwrap_or(&run.config.region);
    match scope {
        ScopeKey::Cluster { name, .. } => Ok(Some(run.fleet.cluster_size(region, name).await?)),
        ScopeKey::Zone { name, .. } => Ok(Some(run.fleet.zone_size(region, name).await?)),
        ScopeKey::Group { name, .. } => Ok(desired_capacity(run, region, name, desired)
            .await?
            .map(|d| d.max(0) as usize)),
        ScopeKey::Account => Ok(None),
    }
}

/// This invocation opened the breaker: it joins the storm, and tells people only when it
/// begins it (a later breaker is counted in the storm's updates).
async fn tell_opened(
    run: &Run<'_>,
    scope: &ScopeKey,
    tripped: Tripped,
    settings: &Settings,
) -> Open {
    let (key, label) = (scope.to_string(), scope.label());
    let Tripped {
        instances,
        threshold,
        until_ms,
    } = tripped;
    let threshold = threshold.as_str();
    let why = format!(
        "{}: {} members of {label} alarmed within the window (threshold {threshold}); automated repair stopped there",
        breaker::HOLD_PREFIX,
        instances.len()
    );
    // A storm item that cannot be written costs a message, never a silence.
    let begins = match run.ledger.join_storm(&key, run.now_ms()).await {
        Ok(begins) => begins,
        Err(e) => {
            tracing::warn!(error = %e, scope = %key, "breaker open, storm not recorded; told on its own");
            true
        }
    };
    tracing::warn!(scope = %key, members = instances.len(), begins, "breaker open");
    let open = |why, summary| Open {
        why,
        summary,
        scope: key.clone(),
        until_ms,
    };
    if !begins {
        return open(format!("{why}; counted in the storm's next update"), None);
    }
    let config = &run.config;
    let resume = breaker::resume_command(&config.function_name, &config.region, scope);
    let text = match scope {
        ScopeKey::Zone { name, .. } => {
            let update = config.storm.update_ms;
            let mut text = storm::zone_opened_text(
                scope,
                instances.len(),
                threshold,
                settings,
                update,
                &resume,
            );
            // The zone's own signal, when ARC has one: read once, as the storm begins.
            let region = scope.region().unwrap_or(&config.region);
            if let Ok(shifts) = run.fleet.zonal_shifts(region).await {
                for shift in shifts.iter().filter(|s| &s.zone == name) {
                    text.push_str(&format!("\nIn progress: {}.", shift.said));
                }
            }
            text
        }
        ScopeKey::Account => {
            let update = config.storm.update_ms;
            storm::account_opened_text(instances.len(), threshold, settings, update, &resume)
        }
        _ => {
            // Counted by ledger key; people read instance ids (the label names the region).
            let ids: Vec<String> = instances
                .iter()
                .map(|k| crate::model::keys::instance_of(k).to_string())
                .collect();
            breaker::opened_text(&label, &ids, threshold, settings, &resume)
        }
    };
    let payload = summary_for_people(&text, Handover::Breaker, config.runbook_url.as_deref());
    let summary = run.tell(&payload).await;
    open(format!("{why}, one summary sent"), Some(summary))
}

/// Closes the breaker, forgetting the alarms so far; the winner of the write takes it out
/// of the storm, and tells people when that ends the storm (or when it was in none).
pub(crate) async fn close(
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
    leave(run, scope, by, true).await;
    Ok(true)
}

/// Takes a closed breaker's scope out of the storm, and tells people when that ends the
/// storm; `alone`: also when the scope was in no storm (a breaker told on its own).
pub(crate) async fn leave(run: &Run<'_>, scope: &ScopeKey, by: &str, alone: bool) {
    let (key, now) = (&scope.to_string(), run.now_ms());
    let text = match run.ledger.leave_storm(key).await {
        Ok(Some(after)) if after.open.is_empty() => Some(storm::ended_text(
            after.since_ms,
            now,
            scope,
            by,
            run.config.storm.take_up_per_tick,
        )),
        // The storm goes on: its updates and its end say the rest.
        Ok(Some(_)) => None,
        Ok(None) => alone.then(|| breaker::closed_text(&scope.label(), by)),
        Err(e) => {
            tracing::warn!(error = %e, scope = %key, "breaker closed, storm not updated");
            alone.then(|| breaker::closed_text(&scope.label(), by))
        }
    };
    match text {
        Some(text) => {
            let delivery = run.tell(&summary_payload(&text)).await;
            tracing::warn!(scope = %key, by, notification = %delivery, "breaker closed");
        }
        None => tracing::warn!(scope = %key, by, "breaker closed; the storm goes on"),
    }
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
