//! The recorded notices' plans carried out by the tick, at their time
//! (`rules::notice::act`): each due step begun only after its record says so (a write
//! conditional on the record's version, so two invocations never take it twice), then the
//! one mutating call; a stop/start followed on later ticks (a retirement stopped once its
//! image is available, started once stopped, verified once EC2's event is gone and both
//! checks are ok, taken to a copy when its stop never completes, to people with EC2's date
//! when otherwise out of time). The instance is observed again and the
//! `autoheal` tag and dry run read again before anything is done: an instance gone or
//! stopped closes the notice quietly; a dry run or `notify` says what it would do.

use crate::app::Run;
use crate::model::facts::Check;
use crate::model::handover::Handover;
use crate::model::outcome::{Action, Outcome, Verdict};
use crate::notify::message::{summary_for_people, summary_payload};
use crate::pipeline::tick::STOP_MARGIN_MS;
use crate::rules::ladder::{Power, Rung};
use crate::rules::notice::act::{
    self, Next, Progress, Seen, IMAGING, RESCHEDULING, STARTING, STOPPING,
};
use crate::rules::notice::plan::Step;
use crate::rules::notice::record::{Acting, Recorded};
use crate::rules::policy::{policy_for, Mode};
use std::collections::{HashMap, HashSet};

/// What the tick's read of EC2's events says: the keys of the standing events listed, and
/// the regions read (an event of another is neither listed nor gone: not known).
pub struct Listing {
    pub listed: HashSet<String>,
    pub read_ok: HashSet<String>,
}

impl Listing {
    fn event_listed(&self, r: &Recorded) -> Option<bool> {
        match self.read_ok.contains(&r.region) {
            true => Some(self.listed.contains(&r.key)),
            false => None,
        }
    }
}

/// The due steps of the notices listed (`known`: their records, read with them) and of
/// those with a step under way (one `Query` of their list), one after another.
/// `calm`: no breaker is open (as the tick read the storm).
pub async fn carry_out(
    run: &Run<'_>,
    mut known: HashMap<String, Recorded>,
    listing: &Listing,
    calm: bool,
) -> Vec<Outcome> {
    let mut outcomes = vec![];
    match run.ledger.acting_notices().await {
        Ok(acting) => {
            let missing: Vec<String> = acting
                .into_iter()
                .filter(|k| !known.contains_key(k))
                .collect();
            if !missing.is_empty() {
                match run.ledger.recorded_notices(&missing).await {
                    Ok(more) => known.extend(more),
                    Err(e) => outcomes.push(warning(format!(
                        "scheduled notices under way not read ({e}); the next tick looks again"
                    ))),
                }
            }
        }
        Err(e) => outcomes.push(warning(format!(
            "scheduled notices under way not listed ({e}); the next tick looks again"
        ))),
    }
    let mut records: Vec<Recorded> = known.into_values().collect();
    records.sort_by(|a, b| (a.not_before_ms, &a.key).cmp(&(b.not_before_ms, &b.key)));
    // While any breaker is open (or the storm cannot be read), no new step begins: a storm
    // is no time for maintenance ahead of EC2. Steps under way are followed through (an
    // instance stopped is started again).
    let mut waiting = 0;
    for r in records {
        if run.deadline_ms - run.now_ms() < STOP_MARGIN_MS {
            break;
        }
        let o = match act::next(&r, run.now_ms()) {
            Next::Wait => None,
            Next::Begin(..) if !calm => {
                waiting += 1;
                None
            }
            Next::Begin(i, step) => Some(begin(run, &r, i, step).await),
            Next::Follow(a) => follow(run, &r, a, listing).await,
        };
        outcomes.extend(o);
    }
    if waiting > 0 {
        outcomes.push(Outcome::new(
            None,
            Action::None,
            Verdict::Held,
            format!(
                "scheduled notices: {waiting} step(s) due wait while a storm is on (breakers open, or the storm not read); none begins until it ends"
            ),
        ));
    }
    outcomes
}

fn warning(why: String) -> Outcome {
    Outcome::new(None, Action::None, Verdict::Failed, why)
}

pub(super) fn outcome(r: &Recorded, action: Action, verdict: Verdict, why: String) -> Outcome {
    let mut o = Outcome::new(Some(r.instance_id.clone()), action, verdict, why);
    o.inputs = Some(format!("notice {}", r.key));
    o
}

fn action(step: &Step) -> Action {
    match step {
        Step::ReplaceMember { .. } => Action::MarkUnhealthy,
        Step::StopStart { .. } => Action::StopStart,
        _ => Action::None,
    }
}

/// Writes `next` over `r` (conditional on `r`'s version): false, with why, when it did not
/// stick (another invocation wrote first, or the ledger failed): nothing is done then.
pub(super) async fn write(run: &Run<'_>, r: &Recorded, next: &Recorded) -> Result<(), String> {
    match run.ledger.write_notice(next, r.act_version).await {
        Ok(true) => Ok(()),
        Ok(false) => Err("another invocation took it first".into()),
        Err(e) => Err(format!(
            "its record not written ({e}); the next tick tries again"
        )),
    }
}

/// Begins the due step `i` of `r`: the instance observed again and its policy read again.
async fn begin(run: &Run<'_>, r: &Recorded, i: usize, step: Step) -> Outcome {
    let facts = match run.fleet.observe(&r.region, &r.instance_id).await {
        Ok(f) => f,
        Err(e) => {
            let why = format!(
                "scheduled notice {}: not acted on this time: the instance not observed ({e})",
                r.key
            );
            return outcome(r, Action::None, Verdict::InProgress, why);
        }
    };
    let state = facts.instance.as_ref().map(|i| i.state.as_str());
    // A copy is made of an instance whose stop never completed, too.
    let copy = matches!(step, Step::Relaunch { .. });
    let gone = match state {
        None => Some("EC2 no longer knows the instance".to_string()),
        Some("running" | "pending") => None,
        Some("stopping") if copy => None,
        Some(s) => Some(format!("the instance is {s}")),
    };
    if let Some(why) = gone {
        let why = format!("{why}: nothing to do ahead of EC2; the notice is closed");
        return quietly(run, r, i, why).await;
    }
    let policy = policy_for(
        run.config.dry_run,
        facts
            .instance
            .as_ref()
            .map(|i| &i.tags)
            .unwrap_or(&Default::default()),
        facts.group.as_ref().map(|g| &g.tags),
    );
    let said = |what: &str| format!("{}: {}", act::named(r), what);
    match policy.mode {
        Mode::Off => {
            let why = format!(
                "{}: autoheal leaves it alone; the notice is closed",
                policy.source
            );
            return quietly(run, r, i, why).await;
        }
        Mode::Notify => {
            let what = format!(
                "{} ({}): do it by hand before EC2's date",
                act::would(&step),
                policy.source
            );
            return told(run, r, i, Verdict::Held, said(&what), true).await;
        }
        Mode::DryRun => {
            let what = format!("dry run: {}; nothing done", act::would(&step));
            return told(run, r, i, Verdict::DryRun, said(&what), false).await;
        }
        Mode::Act => {}
    }
    match step {
        Step::Reschedule { event_id, to_ms } => reschedule(run, r, i, &event_id, to_ms).await,
        Step::StopStart {
            image_first: false, ..
        } => stop(run, r, act::begun(r, i, STOPPING, run.now_ms())).await,
        Step::StopStart {
            image_first: true, ..
        } => super::notice_image::begin(run, r, i).await,
        Step::ReplaceMember { .. } => super::notice_member::replace(run, r, i, &facts).await,
        Step::Relaunch { .. } => {
            let copy = super::notice_incident::Repair::Copy;
            super::notice_incident::open(run, r, i, &facts, copy).await
        }
        // Said when the notice was heard: never due.
        Step::Warn { .. } | Step::Report { .. } | Step::Nothing { .. } => {
            outcome(r, Action::None, Verdict::Ignored, said("nothing to do now"))
        }
    }
}

/// Step `i` behind without a word to people (the audit trail has it); the notice closed.
async fn quietly(run: &Run<'_>, r: &Recorded, i: usize, why: String) -> Outcome {
    let next = act::behind(r, i, why.clone(), true, run.now_ms());
    match write(run, r, &next).await {
        Ok(()) => outcome(
            r,
            Action::None,
            Verdict::Ignored,
            format!("scheduled notice {}: {why}", r.key),
        ),
        Err(e) => outcome(
            r,
            Action::None,
            Verdict::Duplicate,
            format!("scheduled notice {}: {e}", r.key),
        ),
    }
}

/// Step `i` behind, said to people once (`people`: handed to them, with the runbook).
pub(super) async fn told(
    run: &Run<'_>,
    r: &Recorded,
    i: usize,
    verdict: Verdict,
    text: String,
    people: bool,
) -> Outcome {
    let next = act::behind(r, i, text.clone(), false, run.now_ms());
    if let Err(e) = write(run, r, &next).await {
        return outcome(
            r,
            Action::None,
            Verdict::Duplicate,
            format!("scheduled notice {}: {e}", r.key),
        );
    }
    let step = r.plan.get(i).map(action).unwrap_or(Action::None);
    tell(run, outcome(r, step, verdict, text), people).await
}

/// Tells the outcome's reason as a message (`people`: handed to them).
pub(super) async fn tell(run: &Run<'_>, mut o: Outcome, people: bool) -> Outcome {
    let text = format!("*Scheduled notice*: {}", o.reason);
    let payload = match people {
        true => {
            o.handover = Some(Handover::ScheduledNotice);
            let runbook = run.config.runbook_url.as_deref();
            summary_for_people(&text, Handover::ScheduledNotice, runbook)
        }
        false => summary_payload(&text),
    };
    o.notification = Some(run.tell(&payload).await);
    o
}

/// `ModifyInstanceEventStartTime`, recorded as begun first.
async fn reschedule(run: &Run<'_>, r: &Recorded, i: usize, event_id: &str, to_ms: i64) -> Outcome {
    let begun = act::begun(r, i, RESCHEDULING, run.now_ms());
    if let Err(e) = write(run, r, &begun).await {
        return outcome(
            r,
            Action::None,
            Verdict::Duplicate,
            format!("scheduled notice {}: {e}", r.key),
        );
    }
    let result = run
        .fleet
        .move_event(&r.region, &r.instance_id, event_id, to_ms)
        .await;
    let (verdict, text) = match result {
        Ok(()) => (
            Verdict::Done,
            format!("{}: EC2's event {event_id} moved to start at {} (asked at {}), inside its maintenance window", act::named(r), act::date(to_ms), act::date(run.now_ms())),
        ),
        Err(e) => (
            Verdict::Failed,
            format!("{}: EC2's event {event_id} not moved to {} ({e}): EC2 reboots it at its own date", act::named(r), act::date(to_ms)),
        ),
    };
    let next = act::behind(&begun, i, text.clone(), false, run.now_ms());
    if let Err(e) = write(run, &begun, &next).await {
        tracing::warn!(notice = %r.key, "the reschedule's end not recorded: {e}");
    }
    tell(
        run,
        outcome(r, Action::None, verdict, text),
        verdict == Verdict::Failed,
    )
    .await
}

/// A stop, recorded first (`next`: the record with the stop begun); started and verified
/// by the next ticks.
async fn stop(run: &Run<'_>, r: &Recorded, next: Recorded) -> Outcome {
    if let Err(e) = write(run, r, &next).await {
        return outcome(
            r,
            Action::None,
            Verdict::Duplicate,
            format!("scheduled notice {}: {e}", r.key),
        );
    }
    match run.fleet.power(&r.region, &r.instance_id, Power::Stop).await {
        Ok(()) => outcome(
            r,
            Action::StopStart,
            Verdict::InProgress,
            format!("{}: stopped ahead of EC2 (a new host when started); started and verified by the next ticks", act::named(r)),
        ),
        Err(e) => failed(run, &next, format!("the stop was refused ({e})")).await,
    }
}

/// The step under way failed: behind, handed to people with EC2's date.
pub(super) async fn failed(run: &Run<'_>, r: &Recorded, why: String) -> Outcome {
    let Some(a) = &r.acting else {
        return outcome(r, Action::None, Verdict::Failed, why);
    };
    let step = r.plan.get(a.step).cloned();
    let text = format!(
        "{}: autoheal's {} begun at {} failed: {why}. Do it by hand before EC2's date, or let EC2 do it then",
        act::named(r),
        step.as_ref().map_or("step".into(), crate::rules::notice::record::said),
        act::date(a.begun_ms)
    );
    let next = act::behind(r, a.step, text.clone(), false, run.now_ms());
    if let Err(e) = write(run, r, &next).await {
        return outcome(
            r,
            Action::None,
            Verdict::Duplicate,
            format!("scheduled notice {}: {e}", r.key),
        );
    }
    let act = step.as_ref().map(action).unwrap_or(Action::None);
    tell(run, outcome(r, act, Verdict::Failed, text), true).await
}

/// A step under way, looked at again: a stop/start started once stopped, verified once its
/// event is gone and both checks are ok, handed to people past the ladder's timeout.
async fn follow(run: &Run<'_>, r: &Recorded, a: Acting, listing: &Listing) -> Option<Outcome> {
    let timeout = run.config.ladders.timeout_ms(Rung::StopStart);
    let (instance, checks) = tokio::join!(
        run.fleet.describe_instance(&r.region, &r.instance_id),
        run.fleet.status_checks(&r.region, &r.instance_id),
    );
    let instance = match instance {
        Ok(i) => i,
        Err(e) => {
            tracing::warn!(notice = %r.key, "the instance not read: {e}");
            return None;
        }
    };
    let image = match a.phase == IMAGING {
        true => match super::notice_image::look(run, r, &a).await {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(notice = %r.key, "its image not read: {e}");
                return None;
            }
        },
        false => None,
    };
    let checks_ok = checks.is_ok_and(|c| c.system == Check::Ok && c.instance == Check::Ok);
    let seen = Seen {
        state: instance.as_ref().map(|i| i.state.as_str()),
        checks_ok,
        event_listed: listing.event_listed(r),
        image: image.as_ref().map(|(_, state)| state.as_str()),
    };
    match act::progress(&a, &seen, timeout, run.now_ms()) {
        Progress::Wait => None,
        Progress::Stop => {
            let id = image.map(|(id, _)| id);
            let name = a.image_name.as_deref().unwrap_or_default();
            let imaged = act::imaged(r, name, id.as_deref());
            Some(stop(run, r, act::moved(&imaged, STOPPING, run.now_ms())).await)
        }
        Progress::TimedOut(why) => Some(failed(run, r, why).await),
        Progress::Stuck(why) => Some(instead_copy(run, r, &why).await),
        Progress::Start => Some(start(run, r).await),
        Progress::Verified => Some(verified(run, r, &a).await),
    }
}

/// A stop that never completed: a copy planned instead, recorded, and begun at once (the
/// instance observed and its policy read again, like every step).
async fn instead_copy(run: &Run<'_>, r: &Recorded, why: &str) -> Outcome {
    let (i, next) = act::instead_copy(r, why, run.now_ms());
    if let Err(e) = write(run, r, &next).await {
        let why = format!("scheduled notice {}: {e}", r.key);
        return outcome(r, Action::None, Verdict::Duplicate, why);
    }
    let step = next.plan[i].clone();
    Box::pin(begin(run, &next, i, step)).await
}

/// Stopped: the start, recorded first.
async fn start(run: &Run<'_>, r: &Recorded) -> Outcome {
    let next = act::moved(r, STARTING, run.now_ms());
    if let Err(e) = write(run, r, &next).await {
        return outcome(
            r,
            Action::None,
            Verdict::Duplicate,
            format!("scheduled notice {}: {e}", r.key),
        );
    }
    match run
        .fleet
        .power(&r.region, &r.instance_id, Power::Start)
        .await
    {
        Ok(()) => outcome(
            r,
            Action::StopStart,
            Verdict::InProgress,
            format!(
                "{}: stopped, started again (a new host); verified by the next ticks",
                act::named(r)
            ),
        ),
        Err(e) => {
            failed(
                run,
                &next,
                format!("the start was refused ({e}); the instance is stopped"),
            )
            .await
        }
    }
}

/// Verified: the notice closed, people told once, with the times.
async fn verified(run: &Run<'_>, r: &Recorded, a: &Acting) -> Outcome {
    let now = run.now_ms();
    let image = match &a.image_id {
        Some(id) => format!("; imaged first as {id}, kept (deregister it when no longer needed)"),
        None => String::new(),
    };
    let text = format!(
        "{}: stopped and started ahead of EC2 (begun at {}, started at {}, verified at {}): EC2's event is gone, both status checks ok{image}",
        act::named(r),
        act::date(a.begun_ms),
        act::date(a.since_ms),
        act::date(now)
    );
    let next = act::behind(r, a.step, text.clone(), true, now);
    if let Err(e) = write(run, r, &next).await {
        return outcome(
            r,
            Action::None,
            Verdict::Duplicate,
            format!("scheduled notice {}: {e}", r.key),
        );
    }
    tell(
        run,
        outcome(r, Action::StopStart, Verdict::Done, text),
        false,
    )
    .await
}
