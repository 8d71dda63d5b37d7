//! EC2's scheduled notices, heard from AWS Health (an event's notices) or read by the tick
//! (`tick::notices`): each that still stands is recorded once — the instance observed, its
//! maintenance window, the plan (pure, `rules::notice::plan`) — and only then told to
//! people, once; one that no longer stands closes its record quietly. Nothing is acted on
//! in this version: every outcome is `none`, with `in_progress` (planned), `duplicate` or
//! `ignored` (nothing to do, or not this function's).

use super::report;
use super::tick::STOP_MARGIN_MS;
use crate::app::Run;
use crate::error::Error;
use crate::intake::notice::{heard, OFF};
use crate::model::handover::Handover;
use crate::model::notice::{EventWindow, Notice};
use crate::model::outcome::{Action, Outcome, Verdict};
use crate::notify::message::summary_for_people;
use crate::rules::notice::record::{self, Recorded, SCHEDULED, TOLD_ONE_BY_ONE};
use crate::rules::notice::{plan, window};
use crate::rules::policy::policy_for;
use futures::stream::{self, StreamExt};
use std::collections::{BTreeMap, HashMap};
use tokio::sync::OnceCell;

/// At most this many new notices are observed and recorded per invocation; the others are
/// left for the next tick.
pub const NEW_PER_INVOCATION: usize = 25;
/// New notices observed at once.
const AT_ONCE: usize = 5;

/// Where the notices come from: an AWS Health event (an outcome per notice) or the tick
/// (what is recorded already, or over, costs one outcome for all).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heard {
    Health,
    Tick,
}

/// AWS Health's notices of one event: handled, logged, kept in the audit trail. `Err` only
/// when the ledger could not be read (a retry of the invocation helps).
pub(crate) async fn health(run: &Run<'_>, notices: Vec<Notice>) -> Result<Vec<Outcome>, Error> {
    let outcomes = match run.config.notices.on {
        false => vec![Outcome::new(
            notices.first().map(|n| n.instance_id.clone()),
            Action::None,
            Verdict::Ignored,
            heard(&notices, OFF),
        )],
        true => handle(run, notices, Heard::Health).await?,
    };
    outcomes.iter().for_each(report::emit);
    report::record(run, &outcomes).await;
    Ok(outcomes)
}

/// The notices, each recorded once and told once (`Err`: the ledger's records could not be
/// read, nothing was done).
pub(crate) async fn handle(
    run: &Run<'_>,
    notices: Vec<Notice>,
    from: Heard,
) -> Result<Vec<Outcome>, Error> {
    Ok(handle_known(run, notices, from).await?.0)
}

/// The same, with the records read of the notices heard (those recorded before: the tick
/// carries out their due steps, `tick::notice_steps`).
pub(crate) async fn handle_known(
    run: &Run<'_>,
    notices: Vec<Notice>,
    from: Heard,
) -> Result<(Vec<Outcome>, HashMap<String, Recorded>), Error> {
    let mut outcomes = vec![];
    let mut heard_now = vec![];
    for mut n in notices {
        let region = n
            .region
            .get_or_insert_with(|| run.config.region.clone())
            .clone();
        match foreign(run, &n, &region) {
            Some(o) => outcomes.push(o),
            None => heard_now.push((record::key(&region, &n), region, n)),
        }
    }
    let keys: Vec<String> = heard_now.iter().map(|(k, _, _)| k.clone()).collect();
    let known = match keys.is_empty() {
        true => Default::default(),
        false => run.ledger.recorded_notices(&keys).await?,
    };
    let (mut new, mut quiet) = (vec![], 0);
    for (key, region, n) in heard_now {
        let recorded = known.get(&key);
        if record::over(&n) {
            // A step under way (a stop/start) is verified by the tick, not closed quietly.
            if recorded.is_some_and(|r| r.acting.is_some()) {
                continue;
            }
            match recorded.is_some_and(|r| r.state == SCHEDULED) {
                true => outcomes.push(close(run, &key, &n).await),
                // EC2 lists a done event a week: the tick has nothing to say of it.
                false if from == Heard::Tick => {}
                false => outcomes.push(ignored(
                    &n,
                    "it no longer stands, and no standing notice of it is recorded",
                )),
            }
            continue;
        }
        match (recorded, from) {
            (None, _) => new.push((region, n)),
            (Some(_), Heard::Tick) => quiet += 1,
            (Some(_), Heard::Health) => outcomes.push(Outcome::new(
                Some(n.instance_id.clone()),
                Action::None,
                Verdict::Duplicate,
                format!("scheduled notice {key}: recorded already, told when first heard"),
            )),
        }
    }
    if quiet > 0 {
        outcomes.push(Outcome::new(
            None,
            Action::None,
            Verdict::Duplicate,
            format!("scheduled notices: {quiet} recorded already, nothing new"),
        ));
    }
    outcomes.extend(record_new(run, new).await);
    Ok((outcomes, known))
}

/// Another account's, or a region this function does not serve: nothing is read for it.
fn foreign(run: &Run, n: &Notice, region: &str) -> Option<Outcome> {
    if let (Some(theirs), Some(ours)) = (n.account.as_deref(), run.account) {
        if theirs != ours {
            return Some(ignored(n, &format!("the notice is about account {theirs}; this function serves its own account {ours}")));
        }
    }
    match run.config.regions.serves(region) {
        true => None,
        false => Some(ignored(
            n,
            &format!(
                "the notice is about {region}; this function serves {} (AUTOHEAL_REGIONS)",
                run.config.regions.describe()
            ),
        )),
    }
}

fn ignored(n: &Notice, why: &str) -> Outcome {
    Outcome::new(
        Some(n.instance_id.clone()),
        Action::None,
        Verdict::Ignored,
        format!("scheduled notice ({}): {why}", n.kind.code()),
    )
}

/// A recorded notice that no longer stands: closed quietly (the audit trail has it).
async fn close(run: &Run<'_>, key: &str, n: &Notice) -> Outcome {
    let why = n.description.trim();
    let why = match n.state {
        crate::model::notice::NoticeState::Closed => "AWS Health closed the event",
        _ if why.is_empty() => "EC2 no longer lists it as scheduled",
        _ => why,
    };
    match run.ledger.close_notice(key, why, run.now_ms()).await {
        Ok(true) => ignored(
            n,
            &format!("no longer stands ({why}): its record is closed"),
        ),
        Ok(false) => ignored(n, "no longer stands; its record was closed already"),
        Err(e) => Outcome::new(
            Some(n.instance_id.clone()),
            Action::None,
            Verdict::InProgress,
            format!(
                "scheduled notice {key} no longer stands; its record not closed this time ({e})"
            ),
        ),
    }
}

/// The new notices: observed and planned (a few at once), each recorded, then told — one
/// message each, or one summary when more than `TOLD_ONE_BY_ONE` were recorded.
async fn record_new(run: &Run<'_>, mut new: Vec<(String, Notice)>) -> Vec<Outcome> {
    let mut outcomes = vec![];
    if new.len() > NEW_PER_INVOCATION {
        let left = new.len() - NEW_PER_INVOCATION;
        new.truncate(NEW_PER_INVOCATION);
        outcomes.push(Outcome::new(
            None,
            Action::None,
            Verdict::InProgress,
            format!("scheduled notices: {left} more new ones left for the next tick (at most {NEW_PER_INVOCATION} an invocation)"),
        ));
    }
    let windows: Ec2Windows = new
        .iter()
        .map(|(r, _)| (r.clone(), OnceCell::new()))
        .collect();
    let windows = &windows;
    let planned: Vec<_> = stream::iter(new)
        .map(|(region, n)| async move {
            let planned = match run.deadline_ms - run.now_ms() < STOP_MARGIN_MS {
                true => Err("left for the next tick: this one's time ran out".to_string()),
                false => planned(run, &region, &n, windows)
                    .await
                    .map_err(|e| e.to_string()),
            };
            (n, planned)
        })
        .buffered(AT_ONCE)
        .collect()
        .await;
    let mut stuck: Vec<(Recorded, Option<String>)> = vec![];
    for (n, p) in planned {
        let said = |why: String| {
            Outcome::new(
                Some(n.instance_id.clone()),
                Action::None,
                Verdict::InProgress,
                format!("scheduled notice not recorded this time ({why}); heard again, it will be"),
            )
        };
        match p {
            Err(why) => outcomes.push(said(why)),
            Ok((r, name)) => match run.ledger.record_notice(&r).await {
                Ok(true) => stuck.push((r, name)),
                Ok(false) => outcomes.push(Outcome::new(
                    Some(n.instance_id.clone()),
                    Action::None,
                    Verdict::Duplicate,
                    format!(
                        "scheduled notice {}: recorded already, at the same moment",
                        r.key
                    ),
                )),
                Err(e) => outcomes.push(said(e.to_string())),
            },
        }
    }
    outcomes.extend(tell(run, stuck).await);
    outcomes
}

/// EC2's instance event windows of each region, read at most once an invocation: the
/// notices of one region heard together share one read.
type Ec2Windows = HashMap<String, OnceCell<Vec<EventWindow>>>;

/// The notice's record: the instance observed, its window, the plan.
async fn planned(
    run: &Run<'_>,
    region: &str,
    n: &Notice,
    windows: &Ec2Windows,
) -> Result<(Recorded, Option<String>), Error> {
    let mut facts = run.fleet.observe(region, &n.instance_id).await?;
    let tagged = facts
        .instance
        .as_ref()
        .is_some_and(|i| i.tags.contains_key(window::WINDOW_TAG));
    // What the instance's own tag does not say: its group's tag and EC2's event windows,
    // read at once.
    let (group_window, ec2_windows) = match tagged {
        true => (None, &[][..]),
        false => tokio::try_join!(
            async {
                match &facts.group {
                    Some(g) => {
                        run.fleet
                            .group_tag(region, &g.name, window::WINDOW_TAG)
                            .await
                    }
                    None => Ok(None),
                }
            },
            async {
                match windows.get(region) {
                    Some(once) => once
                        .get_or_try_init(|| run.fleet.event_windows(region))
                        .await
                        .map(Vec::as_slice),
                    None => Ok(&[][..]),
                }
            },
        )?,
    };
    // A standalone EBS-backed instance's plan depends on its stop protection.
    if let (Some(i), None) = (facts.instance.as_mut(), &facts.group) {
        let up = matches!(i.state.as_str(), "running" | "pending");
        if up && i.root_device_type.as_deref() != Some("instance-store") {
            i.disable_api_stop = Some(run.fleet.stop_protected(region, &i.instance_id).await?);
        }
    }
    let no_tags = BTreeMap::new();
    let tags = facts.instance.as_ref().map_or(&no_tags, |i| &i.tags);
    let group_tags = group_window
        .as_ref()
        .map(|w| BTreeMap::from([(window::WINDOW_TAG.to_string(), w.clone())]));
    let default = run.config.notices.default_window.as_deref();
    let ec2 = window::event_window_for(ec2_windows, &n.instance_id, tags);
    let windows = window::windows_for(tags, group_tags.as_ref(), ec2, default);
    let policy = policy_for(
        run.config.dry_run,
        tags,
        facts.group.as_ref().map(|g| &g.tags),
    );
    let p = plan::plan(&plan::Inputs {
        notice: n,
        facts: &facts,
        windows: &windows,
        lead_ms: run.config.notices.lead_ms,
        now_ms: run.now_ms(),
        policy: &policy,
        other_controllers: &run.config.other_controllers,
    });
    let window = match &windows {
        Err(e) => Some(e.to_string()),
        Ok(_) => window::chosen(tags, group_tags.as_ref(), ec2, default).map(|c| c.said()),
    };
    let name = facts
        .instance
        .as_ref()
        .and_then(|i| i.name().map(str::to_string));
    Ok((record::record(region, n, &p, window, run.now_ms()), name))
}

/// Tells people of the notices just recorded, and says so in their outcomes.
async fn tell(run: &Run<'_>, stuck: Vec<(Recorded, Option<String>)>) -> Vec<Outcome> {
    let runbook = run.config.runbook_url.as_deref();
    let kind = Handover::ScheduledNotice;
    let notifications: Vec<String> = match stuck.len() > TOLD_ONE_BY_ONE {
        true => {
            let records: Vec<Recorded> = stuck.iter().map(|(r, _)| r.clone()).collect();
            let told = run
                .tell(&summary_for_people(
                    &record::summary(&records),
                    kind,
                    runbook,
                ))
                .await;
            vec![format!("{told} (one summary of {})", records.len()); records.len()]
        }
        false => {
            let each = stuck.iter().map(|(r, name)| async move {
                let text = record::message(r, name.as_deref());
                run.tell(&summary_for_people(&text, kind, runbook)).await
            });
            futures::future::join_all(each).await
        }
    };
    stuck
        .into_iter()
        .zip(notifications)
        .map(|((r, _), told)| {
            let verdict = match r.plans_nothing() {
                true => Verdict::Ignored,
                false => Verdict::InProgress,
            };
            let mut o = Outcome::new(
                Some(r.instance_id.clone()),
                Action::None,
                verdict,
                record::reason(&r),
            );
            o.handover = Some(kind);
            o.notification = Some(told);
            o.inputs = Some(format!(
                "notice {}; heard from {}; window {}",
                r.key,
                r.heard_from,
                r.window.as_deref().unwrap_or("none")
            ));
            o
        })
        .collect()
}
