//! The pipeline for one invocation: intake -> ledger claim (with observe) -> decide -> act
//! -> settle -> report. Records of one event are handled concurrently.

use crate::app::{self, Deps, Invocation};
use crate::aws::{self, autoscaling};
use crate::decide::decide;
use crate::decide::plan::{self, Plan, Repair};
use crate::error::Error;
use crate::guard::{self, Admission};
use crate::history;
use crate::incident::{self, Head, HoldKind, Move, Status};
use crate::intake::{self, AlarmState, Intake, Metric, Signal};
use crate::ladder::Rung;
use crate::model::facts::Facts;
use crate::notify::message::{slack_payload, Report};
use crate::notify::Delivery;
use crate::outcome::{Action, Outcome, Recovered, Response, Verdict};
use crate::report;
use crate::trust;
use serde_json::Value;
use tokio::sync::OnceCell;

pub mod backup;
mod breaker;
mod ladder;
mod relaunch;
pub(crate) mod replacement;
mod tick;

/// A claim outlives the invocation's deadline by this much, so no two invocations can both
/// be inside a repair; after it, the next delivery resumes a repair that died.
pub const LEASE_MARGIN_MS: i64 = 5_000;
/// Conditional-write races lost in a row before giving up as a duplicate.
const MAX_LEDGER_RACES: usize = 5;

/// Handles one Lambda event. `Err` only when a retry of the whole invocation is safe and
/// useful; every other problem is an outcome.
pub async fn handle(deps: &Deps, event: &Value, inv: &Invocation) -> Result<Response, Error> {
    app::within(inv.deadline_ms, handle_within(deps, event, inv)).await
}

async fn handle_within(deps: &Deps, event: &Value, inv: &Invocation) -> Result<Response, Error> {
    let deadline_ms = inv.deadline_ms;
    let account = inv.account.as_deref();
    let intakes = intake::parse_value(event);
    // SNS may put one message in a batch twice: the second is said here, not raced for.
    let mut seen = std::collections::HashSet::new();
    let results = futures::future::join_all(intakes.into_iter().map(|i| {
        let again = matches!(&i, Intake::Signal(s) if !seen.insert((s.key(), s.transition_key())));
        async move {
            match (again, i) {
                (true, Intake::Signal(s)) => {
                    let outcome = Outcome::new(
                        Some(s.instance_id),
                        Action::None,
                        Verdict::Duplicate,
                        "the same alarm transition as an earlier record of this event",
                    );
                    report::emit(&outcome);
                    Ok(vec![outcome])
                }
                (_, i) => process(deps, i, deadline_ms, account).await,
            }
        }
    }))
    .await;
    let mut outcomes = Vec::with_capacity(results.len());
    let mut retry = None;
    for r in results {
        match r {
            Ok(o) => outcomes.extend(o),
            Err(e) => {
                tracing::warn!(error = %e, "transient failure: the invocation will be retried");
                retry.get_or_insert(e);
            }
        }
    }
    match retry {
        Some(e) => Err(e),
        None => Ok(Response { outcomes }),
    }
}

pub(crate) async fn process(
    deps: &Deps,
    intake: Intake,
    deadline_ms: i64,
    own_account: Option<&str>,
) -> Result<Vec<Outcome>, Error> {
    let received_ms = deps.now_ms();
    let outcome = match intake {
        // Another account's alarm or announcement: nothing of this account is touched for it.
        Intake::Signal(Signal {
            instance_id,
            account: Some(theirs),
            ..
        })
        | Intake::Recovery(intake::Recovery {
            instance_id,
            account: Some(theirs),
            ..
        }) if own_account.is_some_and(|ours| ours != theirs) => Outcome::new(
            Some(instance_id),
            Action::None,
            Verdict::Ignored,
            format!(
                "the event is about account {theirs}; this function serves its own account {}",
                own_account.unwrap_or_default()
            ),
        ),
        Intake::Advance { trigger } => {
            let (outcomes, unreadable) = tick::run(deps, trigger, deadline_ms, own_account).await;
            outcomes.iter().for_each(report::emit);
            record(deps, &outcomes).await;
            // The open incidents could not be listed (ledger unavailable): a retry helps.
            return match unreadable {
                Some(e) => Err(e),
                None => Ok(outcomes),
            };
        }
        Intake::Resume { scope } => {
            // `group:web` is the function's own region's; `group:web@eu-west-1` another's.
            let scope = match scope.contains('@') {
                true => scope,
                false => format!("{scope}@{}", deps.config.region),
            };
            let outcome = breaker::resume(deps, &scope).await?;
            report::emit(&outcome);
            return Ok(vec![outcome]);
        }
        Intake::Ignored {
            instance_id,
            reason,
        } => Outcome::new(instance_id, Action::None, Verdict::Ignored, reason),
        Intake::Recovery(mut r) => {
            let region = r
                .region
                .get_or_insert_with(|| deps.config.region.clone())
                .clone();
            if !deps.config.regions.serves(&region) {
                Outcome::new(
                    Some(r.instance_id),
                    Action::None,
                    Verdict::Ignored,
                    format!(
                        "EC2's announcement is about {region}; this function serves {} (AUTOHEAL_REGIONS)",
                        deps.config.regions.describe()
                    ),
                )
            } else {
                let outcome = Box::pin(heard(deps, &r, deadline_ms)).await?;
                report::emit(&outcome);
                record(deps, std::slice::from_ref(&outcome)).await;
                return Ok(vec![outcome]);
            }
        }
        Intake::Signal(mut s) => {
            let id = Some(s.instance_id.clone());
            // An ARN without a region (a hand-made event) is about the function's own.
            s.region.get_or_insert_with(|| deps.config.region.clone());
            match (s.region(), s.state) {
                (r, _) if !deps.config.regions.serves(r) => Outcome::new(
                    id,
                    Action::None,
                    Verdict::Ignored,
                    format!(
                        "alarm is in {r}; this function serves {} (AUTOHEAL_REGIONS)",
                        deps.config.regions.describe()
                    ),
                ),
                (_, AlarmState::InsufficientData) => Outcome::new(
                    id,
                    Action::None,
                    Verdict::Ignored,
                    "INSUFFICIENT_DATA: missing data is not a failure",
                ),
                (_, state) => {
                    let decided = async {
                        match state {
                            AlarmState::Alarm => Box::pin(heal(deps, &s, deadline_ms)).await,
                            _ => recover(deps, &s).await,
                        }
                    };
                    let deciding = Deciding {
                        signal: s.clone(),
                        received_ms,
                    };
                    let mut outcome = DECIDING.scope(deciding, decided).await?;
                    complete(&mut outcome, &s, received_ms, deps.config.dry_run);
                    report::emit(&outcome);
                    record(deps, std::slice::from_ref(&outcome)).await;
                    return Ok(vec![outcome]);
                }
            }
        }
    };
    // Bad or foreign input: the log has it; no AWS call is made for it.
    report::emit(&outcome);
    Ok(vec![outcome])
}

/// The alarm being decided, and when it was received.
struct Deciding {
    signal: Signal,
    received_ms: i64,
}

tokio::task_local! {
    /// Set while an alarm is decided: its report's audit record is written beside the
    /// report (`notify`), not after it, completed as `process` completes the outcome.
    static DECIDING: Deciding;
}

/// An alarm's outcome as the result and the audit trail show it: its times, and what it
/// was decided from.
fn complete(outcome: &mut Outcome, s: &Signal, received_ms: i64, dry_run: bool) {
    stamp_times(outcome, s, received_ms);
    outcome
        .inputs
        .get_or_insert_with(|| history::inputs(s, None, dry_run));
    if outcome.alarm_time_trusted == Some(false) {
        if let Some(inputs) = outcome.inputs.as_mut() {
            inputs.push_str(&format!(
                "; alarm time not trusted as a clock, windows measured from its receipt at {}",
                outcome.received_time.as_deref().unwrap_or("?")
            ));
        }
    }
}

/// The alarm's own time and when it was received, and whether the first was trusted as a
/// clock (`trust::alarm_clock`).
fn stamp_times(outcome: &mut Outcome, s: &Signal, received_ms: i64) {
    let event_ms = s.changed_at.timestamp_millis();
    let (_, trusted) = trust::alarm_clock(event_ms, received_ms);
    let rfc = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .unwrap_or_default()
            .format("%Y-%m-%dT%H:%M:%S%.3fZ")
            .to_string()
    };
    outcome.alarm_time = Some(rfc(event_ms));
    outcome.received_time = Some(rfc(received_ms));
    outcome.alarm_time_trusted = Some(trusted);
}

/// The audit trail: one record per decision about an instance. A failed write is logged;
/// the decision stands.
async fn record(deps: &Deps, outcomes: &[Outcome]) {
    let now = deps.now_ms();
    let writes = outcomes
        .iter()
        .filter(|o| !o.recorded)
        .filter_map(|o| history::record(o, now))
        .map(|r| async move {
            if let Err(e) = deps.ledger.record(&r, now / 1000).await {
                tracing::warn!(error = %e, instance_id = %r.instance_id, "could not record the decision in the audit trail");
            }
        });
    futures::future::join_all(writes).await;
}

/// Where `advance` starts. It lives for one call; boxing the head would buy nothing.
#[allow(clippy::large_enum_variant)]
pub(crate) enum First {
    /// Read the head.
    Read,
    /// Try the write as if there were no head yet, saving the read in the common case of a
    /// first delivery (a lost race costs one failed conditional write).
    Guess,
    /// The head as read already (in a round with other reads).
    Known(Option<Head>),
}

/// Applies `rule` to the head until a conditional write sticks or the rule says skip.
pub(crate) async fn advance(
    deps: &Deps,
    region: &str,
    instance_id: &str,
    first: First,
    rule: impl Fn(Option<&Head>) -> Move,
) -> Result<Move, Error> {
    let ledger = &deps.ledger;
    let key = crate::model::keys::key(region, instance_id);
    let mut first = Some(first);
    for _ in 0..MAX_LEDGER_RACES {
        let (current, guessed) = match first.take() {
            Some(First::Guess) => (None, true),
            Some(First::Known(head)) => (head, false),
            Some(First::Read) | None => (ledger.read(&key).await?, false),
        };
        match rule(current.as_ref()) {
            Move::Take(head) => {
                if ledger.write(&head, deps.now_ms() / 1000).await? {
                    return Ok(Move::Take(head));
                }
            }
            // The guess that there was no head led nowhere: read it.
            Move::Skip(_) if guessed => {}
            skip => return Ok(skip),
        }
    }
    Ok(Move::Skip(Outcome::new(
        Some(instance_id.to_string()),
        Action::None,
        Verdict::Duplicate,
        "other invocations kept changing this incident; leaving it to them",
    )))
}

/// EC2 announced a recovery of the instance (AWS Health): kept on the head, and acted on
/// at once when its incident waits for that recovery — closed when EC2's status checks
/// agree it recovered, the next rung when it failed (and the checks still fail).
async fn heard(deps: &Deps, r: &intake::Recovery, deadline_ms: i64) -> Result<Outcome, Error> {
    let region = r.region.as_deref().unwrap_or_default();
    let lease_until = deadline_ms.max(deps.now_ms()) + LEASE_MARGIN_MS;
    let step = advance(deps, region, &r.instance_id, First::Read, |h| {
        incident::hear(h, r, deps.now_ms(), lease_until)
    })
    .await?;
    let head = match step {
        Move::Take(head) => head,
        Move::Skip(outcome) => return Ok(outcome),
    };
    if head.lease_until_ms != lease_until {
        let mut o = Outcome::new(
            Some(r.instance_id.clone()),
            Action::None,
            Verdict::Ignored,
            format!(
                "EC2 announced a recovery attempt ({} at {}); kept ({} in the last 24 h): no rung of incident {} waits for it",
                r.code,
                r.at.format("%H:%M:%SZ"),
                head.ec2_heard.len(),
                head.incident_id
            ),
        );
        o.incident = Some(head.incident_id.clone());
        return Ok(o);
    }
    resume_held(deps, head, deadline_ms).await
}

async fn heal(deps: &Deps, s: &Signal, deadline_ms: i64) -> Result<Outcome, Error> {
    let lease_until = deadline_ms.max(deps.now_ms()) + LEASE_MARGIN_MS;
    // Claim and observe at once: a lost claim wastes the reads, a won one saves a round trip.
    let cloud = deps.cloud(s.region());
    // Boxed, as the decision below: a debug build's test threads have small stacks.
    let (claim, facts) = tokio::join!(
        Box::pin(advance(
            deps,
            s.region(),
            &s.instance_id,
            First::Guess,
            |h| {
                match s.found_by_scan() {
                    true => incident::claim_scan(h, s, deps.now_ms(), lease_until),
                    false => incident::claim_alarm(h, s, deps.now_ms(), lease_until),
                }
            }
        )),
        Box::pin(aws::observe(&cloud, &s.instance_id)),
    );
    let head = match claim {
        Ok(Move::Take(head)) => head,
        Ok(Move::Skip(outcome)) => return Ok(outcome),
        Err(e) if e.is_transient() => return Err(e),
        Err(e) => {
            let outcome = Outcome::new(
                Some(s.instance_id.clone()),
                Action::None,
                Verdict::Failed,
                format!("ledger unusable, nothing done: {e}"),
            );
            return Ok(notify(deps, s, facts.ok().as_ref(), outcome).await);
        }
    };
    // Boxed: the decision's future is large, and a debug build's stack is small.
    Box::pin(act(deps, s, head, facts, deadline_ms, true)).await
}

/// On a claimed incident: the reads the plan needs beyond the facts (the ladder's, the
/// breaker's), in one round; the plan (`decide::plan`, pure); then what it says — hold,
/// wait, close, or admit past the guards and repair — settled and reported.
/// `poll`: a relaunch may wait for the world within this invocation (not on the tick).
async fn act(
    deps: &Deps,
    s: &Signal,
    head: Head,
    facts: Result<Facts, Error>,
    deadline_ms: i64,
    poll: bool,
) -> Result<Outcome, Error> {
    let facts = match facts {
        Ok(f) => f,
        Err(e) => return Box::pin(fail(deps, &head, s, None, Action::None, e)).await,
    };
    let now = deps.now_ms();
    let step = decide(
        s,
        &facts,
        deps.config.dry_run,
        &deps.config.other_controllers,
    );
    let metric = Metric::from_name(&head.alarm.metric).unwrap_or(s.metric);
    let reads = plan::reads(&head, &step, &facts);
    // The breaker and the guards may both need the group's size: read once.
    let desired = OnceCell::new();
    let (instance, open, ahead) = tokio::join!(
        Box::pin(async {
            match (reads.ladder, &facts.instance) {
                (true, Some(i)) => Some(ladder::enrich(deps, head.region(), i).await),
                _ => None,
            }
        }),
        Box::pin(async {
            match reads.breaker {
                true => {
                    let confirmed = matches!(
                        trust::confirm(metric, facts.checks),
                        trust::Confirmation::Confirmed(_)
                    );
                    breaker::check(deps, &facts, &head, confirmed, &desired).await
                }
                false => Ok(None),
            }
        }),
        Box::pin(read_ahead(deps, &facts, &head, reads.scopes)),
    );
    let open = match open {
        Ok(open) => open,
        Err(e) => return Box::pin(fail(deps, &head, s, Some(&facts), Action::None, e)).await,
    };
    let ladders = &deps.config.ladders;
    let decided = plan::plan(plan::Seen {
        head: &head,
        facts: &facts,
        step,
        metric,
        climb: instance.map(|i| plan::climb(ladders, metric, &head, &facts, &i, now)),
        breaker: open.as_ref().map(|o| o.why.clone()),
        grace: deps.config.grace,
        lineage_window_ms: deps.config.lineage_window_ms,
        ladders,
        now_ms: now,
    });
    let (repair, guarded) = match decided {
        Plan::Repair { repair, guarded } => (repair, guarded),
        Plan::Wait {
            rung,
            until_ms,
            announced,
        } => {
            let mut o = Box::pin(ladder::wait(deps, head, rung, until_ms)).await?;
            if let Some(t) = announced {
                o.reason = format!(
                    "EC2 announced at {} that it recovered the instance, but {}; looked at again until {}, then the next rung",
                    clock_text(t),
                    facts.checks.said(),
                    clock_text(until_ms)
                );
            }
            return Ok(o);
        }
        Plan::Recovered => return Box::pin(recovered_after_rung(deps, head, s, &facts)).await,
        Plan::Hold {
            kind,
            until_ms,
            why,
        } => {
            let told = match kind {
                HoldKind::Breaker => Telling::Summarised(open.and_then(|o| o.summary)),
                _ => Telling::Report,
            };
            return Box::pin(hold(deps, head, s, &facts, until_ms, why, told, kind)).await;
        }
        Plan::TakenOver { why } => {
            let o = Outcome::new(
                Some(s.instance_id.clone()),
                Action::None,
                Verdict::Held,
                why,
            );
            return Box::pin(close(deps, head, s, &facts, o)).await;
        }
        Plan::Unconfirmed { since_ms, why } => {
            return Box::pin(unconfirmed(deps, head, s, &facts, since_ms, why)).await
        }
        Plan::Report {
            action,
            result,
            reason,
        } => {
            let o = Outcome::new(Some(s.instance_id.clone()), action, result, reason);
            return Box::pin(finish(deps, s, head, &facts, o)).await;
        }
    };
    if guarded {
        match Box::pin(admit_everywhere(deps, &facts, &head, &desired, ahead)).await {
            Ok(None) => {}
            // Looked at again by the next tick.
            Ok(Some((why, told))) => {
                return Box::pin(hold(deps, head, s, &facts, now, why, told, HoldKind::Guard)).await
            }
            Err(e) => return Box::pin(fail(deps, &head, s, Some(&facts), Action::None, e)).await,
        }
    }
    match repair {
        Repair::Relaunch => Box::pin(relaunch::run(deps, head, deadline_ms, poll)).await,
        Repair::Rung(next) => Box::pin(ladder::climb(deps, head, s, &facts, next)).await,
        Repair::Mark { group } => {
            let asg = &deps.cloud(s.region()).autoscaling;
            match Box::pin(autoscaling::mark_unhealthy(asg, &s.instance_id)).await {
                Ok(()) => {
                    let o = Outcome::new(
                        Some(s.instance_id.clone()),
                        Action::MarkUnhealthy,
                        Verdict::Done,
                        format!("marked Unhealthy in group {group} (Auto Scaling's health check grace period skipped); {}", facts.checks.said()),
                    );
                    Box::pin(finish(deps, s, head, &facts, o)).await
                }
                Err(e) => {
                    Box::pin(fail(deps, &head, s, Some(&facts), Action::MarkUnhealthy, e)).await
                }
            }
        }
    }
}

/// The end of a decision that did not hold: settled (a marked member stays open until its
/// replacement is verified) and reported.
async fn finish(
    deps: &Deps,
    s: &Signal,
    head: Head,
    facts: &Facts,
    mut outcome: Outcome,
) -> Result<Outcome, Error> {
    outcome.incident = Some(head.incident_id.clone());
    outcome.group = facts.group.as_ref().map(|g| g.name.clone());
    outcome.inputs = Some(history::inputs(s, Some(facts), deps.config.dry_run));
    if (outcome.action, outcome.result) == (Action::MarkUnhealthy, Verdict::Duplicate) {
        // Auto Scaling already has it (Unhealthy or terminating): not news for people.
        Box::pin(settle(deps, &head, &outcome)).await;
        return Ok(outcome);
    }
    // A member marked Unhealthy stays open until its replacement is verified.
    let keep = async {
        match (outcome.action, outcome.result) {
            (Action::MarkUnhealthy, Verdict::Done) => {
                Box::pin(replacement::begin(deps, &head, &outcome)).await
            }
            _ => Box::pin(settle(deps, &head, &outcome)).await,
        }
    };
    let (_, outcome) = tokio::join!(
        Box::pin(keep),
        Box::pin(notify(deps, s, Some(facts), outcome.clone()))
    );
    Ok(outcome)
}

/// Another invocation wrote the incident between our read and our write.
fn changed_meanwhile(s: &Signal, head: &Head) -> Outcome {
    let mut o = Outcome::new(
        Some(s.instance_id.clone()),
        Action::None,
        Verdict::Duplicate,
        "incident changed while deciding (closed by an OK?)",
    );
    o.incident = Some(head.incident_id.clone());
    o
}

pub(crate) fn clock_text(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%H:%M:%SZ")
        .to_string()
}

/// EC2 does not report the failure the alarm is about: held and looked at again by every
/// tick until the confirmation window (from `since_ms`) ends; then told to people once and
/// closed without any repair. An OK meanwhile closes it too.
async fn unconfirmed(
    deps: &Deps,
    head: Head,
    s: &Signal,
    facts: &Facts,
    since_ms: i64,
    why: String,
) -> Result<Outcome, Error> {
    let now = deps.now_ms();
    let window = deps.config.confirm_window_ms;
    if now < since_ms + window {
        let why = format!(
            "{why}; looking again every minute until {}",
            clock_text(since_ms + window)
        );
        return hold(
            deps,
            head,
            s,
            facts,
            now,
            why,
            Telling::Report,
            HoldKind::Confirm,
        )
        .await;
    }
    let outcome = Outcome::new(
        Some(s.instance_id.clone()),
        Action::None,
        Verdict::Held,
        format!(
            "{why}; EC2 did not confirm the alarm within {}: incident closed without any repair — look at the instance if the alarm stays on (docs/RUNBOOK.md)",
            crate::model::progress::human(window)
        ),
    );
    close(deps, head, s, facts, outcome).await
}

/// After a rung, EC2 reports both checks ok: the rung worked, whatever the alarm says yet.
async fn recovered_after_rung(
    deps: &Deps,
    head: Head,
    s: &Signal,
    facts: &Facts,
) -> Result<Outcome, Error> {
    let last = head.rungs.last().map(|(r, _)| *r);
    let rung = last.map_or("its last rung", Rung::as_str);
    let announced = match last {
        Some(Rung::Ec2Recovery) => head
            .heard(intake::Heard::Recovered)
            .map(|t| format!(" (EC2 announced its recovery at {})", clock_text(t)))
            .unwrap_or_default(),
        _ => String::new(),
    };
    let outcome = Outcome::recovered(
        s.instance_id.clone(),
        Recovered::ChecksOk,
        format!(
            "recovered after {rung}{announced}: {}; incident closed",
            facts.checks.said()
        ),
    );
    close(deps, head, s, facts, outcome).await
}

/// Closes the incident without an OK alarm (settled as closed, off the tick's list) and
/// reports it.
async fn close(
    deps: &Deps,
    head: Head,
    s: &Signal,
    facts: &Facts,
    mut outcome: Outcome,
) -> Result<Outcome, Error> {
    outcome.incident = Some(head.incident_id.clone());
    outcome.group = facts.group.as_ref().map(|g| g.name.clone());
    outcome.inputs = Some(history::inputs(s, Some(facts), deps.config.dry_run));
    match deps
        .ledger
        .write(
            &incident::close_without_ok(&head, &outcome, deps.now_ms()),
            deps.now_ms() / 1000,
        )
        .await
    {
        Ok(true) => {}
        Ok(false) => return Ok(changed_meanwhile(s, &head)),
        Err(e) => return fail(deps, &head, s, Some(facts), Action::None, e).await,
    }
    if head.hold_until_ms.is_some() || !head.rungs.is_empty() {
        unlist(deps, &head).await;
    }
    Ok(notify(deps, s, Some(facts), outcome).await)
}

/// The guard scope of the instance about to be repaired; a group's desired capacity is
/// read only when a group guard is on.
async fn guard_scope(
    deps: &Deps,
    region: &str,
    facts: &Facts,
    desired: &OnceCell<Option<i32>>,
) -> Result<Option<guard::Scope>, Error> {
    let Some(instance) = &facts.instance else {
        return Ok(None);
    };
    let (quorum, percent) = (deps.config.quorum_guard, deps.config.max_inflight_percent);
    let group = match &facts.group {
        Some(g) if guard::needs_group_size(instance, quorum, percent) => {
            desired_capacity(deps, region, &g.name, desired)
                .await?
                .map(|d| (g.name.as_str(), d))
        }
        _ => None,
    };
    Ok(
        guard::scope_for(instance, group, quorum, percent).map(|mut scope| {
            (scope.key, scope.label) = guard::in_region(&scope.key, &scope.label, region);
            scope
        }),
    )
}

/// The group's desired capacity, read at most once per decision (`once`).
async fn desired_capacity(
    deps: &Deps,
    region: &str,
    group: &str,
    once: &OnceCell<Option<i32>>,
) -> Result<Option<i32>, Error> {
    let asg = deps.cloud(region).autoscaling;
    once.get_or_try_init(|| autoscaling::desired_capacity(&asg, group))
        .await
        .copied()
}

/// A scope item as read: its members (instance, incident) and version.
type ScopeItem = (Vec<(String, String)>, i64);

/// The scope items a repair's admission will read, read ahead (`wanted`: `Reads::scopes`)
/// in the round of the breaker's reads, not one of their own. A plan that holds wastes
/// the reads; one that repairs saves a round. A failed read is read again at admission.
async fn read_ahead(
    deps: &Deps,
    facts: &Facts,
    head: &Head,
    wanted: bool,
) -> Vec<(String, ScopeItem)> {
    let Some(instance) = facts.instance.as_ref().filter(|_| wanted) else {
        return vec![];
    };
    let group = facts.group.as_ref().map(|g| g.name.as_str());
    let (quorum, percent) = (deps.config.quorum_guard, deps.config.max_inflight_percent);
    let keys: Vec<String> = [
        guard::scope_key(instance, group, quorum, percent, head.region()),
        guard::account_scope(deps.config.account_max_repairs).map(|s| s.key),
    ]
    .into_iter()
    .flatten()
    .collect();
    let items = futures::future::join_all(keys.iter().map(|k| deps.ledger.read_scope(k))).await;
    keys.into_iter()
        .zip(items)
        .filter_map(|(k, item)| Some((k, item.ok()?)))
        .collect()
}

/// Admits this repair in its scope (cluster or group), then in the account budget. None:
/// admitted everywhere; otherwise why it waits, and how people hear of it: the holds of
/// one scope are told once per `HOLD_REPORT_PERIOD_MS`, not one by one.
async fn admit_everywhere(
    deps: &Deps,
    facts: &Facts,
    head: &Head,
    desired: &OnceCell<Option<i32>>,
    mut ahead: Vec<(String, ScopeItem)>,
) -> Result<Option<(String, Telling)>, Error> {
    let scopes: Vec<guard::Scope> = [
        guard_scope(deps, head.region(), facts, desired).await?,
        guard::account_scope(deps.config.account_max_repairs),
    ]
    .into_iter()
    .flatten()
    .collect();
    // Every scope at once: a hold in any holds the repair. A place taken meanwhile in
    // another scope costs nobody a repair: a held head counts in no scope.
    let verdicts = futures::future::try_join_all(scopes.iter().map(|scope| {
        let read = ahead.iter().position(|(k, _)| *k == scope.key);
        admit(deps, scope, head, read.map(|i| ahead.swap_remove(i).1))
    }))
    .await?;
    for (scope, why) in scopes.iter().zip(verdicts) {
        let Some(why) = why else {
            continue;
        };
        // A lost write race is a hold like the others: summarised with them.
        let now = deps.now_ms();
        let first = deps
            .ledger
            .claim_summary(&scope.key, now, now + guard::HOLD_REPORT_PERIOD_MS)
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

/// Admits this member to repair in `scope`, or says why it waits. None: admitted. `ahead`:
/// the scope item read ahead, for the first try (a stale one loses the conditional write).
async fn admit(
    deps: &Deps,
    scope: &guard::Scope,
    head: &Head,
    mut ahead: Option<ScopeItem>,
) -> Result<Option<String>, Error> {
    for _ in 0..MAX_LEDGER_RACES {
        let (members, version) = match ahead.take() {
            Some(read) => read,
            None => deps.ledger.read_scope(&scope.key).await?,
        };
        let me = head.key();
        let others: Vec<&(String, String)> = members
            .iter()
            .filter(|(key, inc)| (key, inc) != (&me, &head.incident_id))
            .collect();
        let heads =
            futures::future::try_join_all(others.iter().map(|(id, _)| deps.ledger.read(id)))
                .await?;
        let now = deps.now_ms();
        let live: Vec<(String, String)> = others
            .iter()
            .zip(&heads)
            .filter(|((_, incident), h)| match scope.window_ms {
                Some(window) => guard::started_within(h.as_ref(), incident, head.opened_ms, window),
                None => guard::still_under_repair(h.as_ref(), incident),
            })
            .map(|(member, _)| (*member).clone())
            .collect();
        match guard::admit(scope, (&me, &head.incident_id), &live) {
            Admission::Hold(why) => return Ok(Some(why)),
            Admission::Admit(list) => {
                if deps
                    .ledger
                    .write_scope(&scope.key, &list, version, now / 1000)
                    .await?
                {
                    return Ok(None);
                }
            }
        }
    }
    Ok(Some(format!(
        "{}: {} kept changing under other invocations; looking again in a minute",
        scope.rule, scope.label
    )))
}

/// How people hear of a hold.
pub(crate) enum Telling {
    /// A message about this instance (once per reason).
    Report,
    /// Covered by one summary for many instances; `Some`: this invocation sent it, and
    /// where it went.
    Summarised(Option<String>),
}

/// Holds the incident — in its grace period, unconfirmed by EC2, behind a repair guard or
/// the breaker: given back (no lease) with the time to look again, and listed in the open
/// index, so that the tick acts after it unless an OK came. Reported once per reason (an
/// unconfirmed alarm once, whatever EC2 says meanwhile), not every minute.
#[allow(clippy::too_many_arguments)]
async fn hold(
    deps: &Deps,
    head: Head,
    s: &Signal,
    facts: &Facts,
    until_ms: i64,
    why: String,
    told: Telling,
    kind: HoldKind,
) -> Result<Outcome, Error> {
    let now_secs = deps.now_ms() / 1000;
    // Listed first: a hold the tick cannot find would wait for the next alarm. A head held
    // before is listed already (settling unlists it and clears its hold).
    if head.hold_until_ms.is_none() {
        if let Err(e) = deps.ledger.set_open(&head.key(), true, now_secs).await {
            return fail(deps, &head, s, Some(facts), Action::None, e).await;
        }
    }
    let repeat = head.result == Some(Verdict::Held)
        && head.hold_kind == Some(kind)
        && (kind == HoldKind::Confirm || head.reason.as_deref() == Some(why.as_str()));
    let mut held = head.clone();
    held.hold_until_ms = Some(until_ms);
    held.hold_kind = Some(kind);
    held.lease_until_ms = 0;
    held.version += 1;
    held.result = Some(Verdict::Held);
    held.reason = Some(why.clone());
    match deps.ledger.write(&held, now_secs).await {
        Ok(true) => {}
        Ok(false) => return Ok(changed_meanwhile(s, &head)),
        Err(e) => return fail(deps, &head, s, Some(facts), Action::None, e).await,
    }
    let mut outcome = Outcome::new(
        Some(s.instance_id.clone()),
        Action::None,
        Verdict::Held,
        why,
    );
    outcome.incident = Some(head.incident_id.clone());
    outcome.group = facts.group.as_ref().map(|g| g.name.clone());
    outcome.inputs = Some(history::inputs(s, Some(facts), deps.config.dry_run));
    outcome.resumes = true;
    match told {
        Telling::Summarised(summary) => {
            outcome.notification = summary;
            Ok(outcome)
        }
        Telling::Report if repeat => Ok(outcome),
        Telling::Report => Ok(notify(deps, s, Some(facts), outcome).await),
    }
}

/// The tick, after a grace period ran out with no OK: look at the world again and act.
pub(crate) async fn resume_held(
    deps: &Deps,
    head: Head,
    deadline_ms: i64,
) -> Result<Outcome, Error> {
    let s = head.opening_signal();
    let facts = Box::pin(aws::observe(&deps.cloud(head.region()), &head.instance_id)).await;
    // Settling takes it off the tick's list; a relaunch keeps it there until it ends.
    Box::pin(act(deps, &s, head, facts, deadline_ms, false)).await
}

/// Takes the incident off the tick's list; a failure is logged (the tick removes entries
/// whose incident ended anyway).
pub(crate) async fn unlist(deps: &Deps, head: &Head) {
    if let Err(e) = deps
        .ledger
        .set_open(&head.key(), false, deps.now_ms() / 1000)
        .await
    {
        tracing::warn!(error = %e, incident = %head.incident_id, "could not remove the incident from the open index");
    }
}

/// A transient failure gives the lease back, lists the incident for the tick and asks for
/// a retry: the same step is tried again by the next trigger, never counted as done or
/// tried. A permanent one is an outcome, settled and reported.
pub(crate) async fn fail(
    deps: &Deps,
    head: &Head,
    s: &Signal,
    facts: Option<&Facts>,
    action: Action,
    e: Error,
) -> Result<Outcome, Error> {
    if e.is_transient() {
        let now = deps.now_ms();
        let retry = incident::retry_later(head, now);
        let key = head.key();
        let (listed, released) = tokio::join!(
            deps.ledger.set_open(&key, true, now / 1000),
            deps.ledger.write(&retry, now / 1000)
        );
        if let Err(le) = listed.and(released.map(|_| ())) {
            tracing::warn!(error = %le, incident = %head.incident_id, "could not hand the incident to the next trigger; it is taken again when its lease ends");
        }
        return Err(e);
    }
    let reason = match action {
        Action::CreateImage | Action::LaunchReplacement | Action::Verify => {
            format!("{e}. {}", relaunch::RUNBOOK)
        }
        _ => e.to_string(),
    };
    let mut outcome = Outcome::new(Some(s.instance_id.clone()), action, Verdict::Failed, reason);
    outcome.incident = Some(head.incident_id.clone());
    outcome.group = facts.and_then(|f| f.group.as_ref()).map(|g| g.name.clone());
    settle(deps, head, &outcome).await;
    Ok(notify(deps, s, facts, outcome).await)
}

/// Records the outcome on the incident. The action is already done: a failed write is
/// logged, not retried by failing the invocation (a retry would find the work done anyway).
pub(crate) async fn settle(deps: &Deps, head: &Head, outcome: &Outcome) {
    // It was held (grace, a guard): settled now, nothing left for the tick. A relaunch
    // keeps its own place in the index (`relaunch::run`).
    if head.hold_until_ms.is_some() && head.progress.phase.is_none() {
        unlist(deps, head).await;
    }
    match deps
        .ledger
        .write(&incident::settle(head, outcome), deps.now_ms() / 1000)
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            tracing::info!(incident = %head.incident_id, "incident changed while repairing (closed by an OK?)")
        }
        Err(e) => {
            tracing::error!(error = %e, incident = %head.incident_id, "could not record the outcome in the ledger")
        }
    }
}

/// An OK alarm: the head and what EC2 reports are read in one round; the incident closes
/// only when EC2 agrees (`incident::close_on_ok`).
async fn recover(deps: &Deps, s: &Signal) -> Result<Outcome, Error> {
    let (cloud, key) = (deps.cloud(s.region()), s.key());
    let (read, facts) = tokio::join!(
        deps.ledger.read(&key),
        Box::pin(aws::observe(&cloud, &s.instance_id))
    );
    let unusable = |e: Error| {
        Outcome::new(
            Some(s.instance_id.clone()),
            Action::Verify,
            Verdict::Failed,
            format!("ledger unusable: {e}"),
        )
    };
    let current = match read {
        Ok(h) => h,
        Err(e) if e.is_transient() => return Err(e),
        Err(e) => return Ok(unusable(e)),
    };
    // Without EC2's word, the OK waits for a retry: it closes nothing on its own.
    let facts = match facts {
        Ok(f) => f,
        Err(e) if current.as_ref().is_some_and(|h| h.status != Status::Closed) => {
            return match e.is_transient() {
                true => Err(e),
                false => Ok(Outcome::new(
                    Some(s.instance_id.clone()),
                    Action::Verify,
                    Verdict::Failed,
                    format!("OK not confirmed: EC2 not read ({e}); the incident goes on"),
                )),
            };
        }
        Err(_) => Facts::default(),
    };
    let step = advance(
        deps,
        s.region(),
        &s.instance_id,
        First::Known(current),
        |h| {
            let metric = h
                .and_then(|h| Metric::from_name(&h.alarm.metric))
                .unwrap_or(s.metric);
            let disagrees = trust::confirm_ok(metric, &facts);
            incident::close_on_ok(h, s, disagrees.as_deref(), deps.now_ms())
        },
    )
    .await;
    let head = match step {
        Ok(Move::Take(head)) => head,
        Ok(Move::Skip(outcome)) => return Ok(outcome),
        Err(e) if e.is_transient() => return Err(e),
        Err(e) => return Ok(unusable(e)),
    };
    let summarised = head.is_held() && head.hold_kind == Some(HoldKind::Breaker);
    let reason = if head.is_held() {
        // Off the tick's list now rather than at its next run.
        unlist(deps, &head).await;
        match head.hold_kind {
            Some(HoldKind::Confirm) => "the alarm returned to OK; EC2 never confirmed the failure and nothing was done",
            Some(HoldKind::Guard | HoldKind::Breaker) => "recovered by itself while its repair waited; nothing was done",
            Some(HoldKind::Grace) | None => "recovered by itself: the alarm returned to OK during the grace period; nothing was done",
        }
        .to_string()
    } else if let (Some((rung, _)), None) = (head.rungs.last(), head.progress.phase) {
        // Off the tick's list now: nothing left to climb.
        unlist(deps, &head).await;
        format!(
            "recovered after {}: the status check alarm returned to OK; incident closed",
            rung.as_str()
        )
    } else if head.action == Some(Action::MarkUnhealthy) && !head.member_steps.is_empty() {
        // Marked, its replacement followed: the instance answers again first.
        unlist(deps, &head).await;
        "status check alarm returned to OK; incident closed after mark_unhealthy done (its replacement no longer followed)".to_string()
    } else {
        format!(
            "status check alarm returned to OK; incident closed after {}",
            match (head.action, head.result) {
                (Some(a), Some(r)) => format!("{} {}", a.as_str(), r.as_str()),
                _ => "no action".to_string(),
            }
        )
    };
    let mut outcome = Outcome::new(
        Some(s.instance_id.clone()),
        Action::Verify,
        Verdict::Done,
        reason,
    );
    outcome.incident = Some(head.incident_id.clone());
    outcome.group = head.group.clone();
    if summarised {
        // Held behind an open breaker: its summary stands for it; the audit trail has it.
        return Ok(outcome);
    }
    Ok(notify(deps, s, Some(&facts), outcome).await)
}

/// Reports the decision; an alarm's audit record is written beside the report.
pub(crate) async fn notify(
    deps: &Deps,
    s: &Signal,
    facts: Option<&Facts>,
    mut outcome: Outcome,
) -> Outcome {
    let payload = payload(deps, s, facts, &outcome);
    let dry_run = deps.config.dry_run;
    let audited = DECIDING.try_with(|d| {
        let mut audited = outcome.clone();
        complete(&mut audited, &d.signal, d.received_ms, dry_run);
        audited
    });
    let Ok(mut audited) = audited else {
        outcome.notification = Some(deps.tell(&payload).await);
        return outcome;
    };
    // It says where the report is sent; one Slack does not take is kept in the outbox and
    // shown in the result.
    audited.notification = Some(Delivery::Sent(deps.notifier.sink()).as_notification());
    let (told, ()) = tokio::join!(
        deps.tell(&payload),
        record(deps, std::slice::from_ref(&audited))
    );
    outcome.notification = Some(told);
    outcome.recorded = true;
    outcome
}

/// A report that is not a decision (a relaunch's step): told, not recorded.
pub(crate) async fn tell_progress(deps: &Deps, s: &Signal, outcome: &Outcome) {
    deps.tell(&payload(deps, s, None, outcome)).await;
}

fn payload(deps: &Deps, s: &Signal, facts: Option<&Facts>, outcome: &Outcome) -> Value {
    let region = s.region.as_deref().unwrap_or(&deps.config.region);
    slack_payload(&Report {
        signal: s,
        facts,
        outcome,
        region,
    })
}
