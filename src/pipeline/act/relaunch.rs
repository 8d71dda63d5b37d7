//! Relaunch of a standalone instance: image it without reboot, launch a copy with the same
//! environment, let the copy take over, verify it. Each phase is recorded in the ledger
//! before the next begins; any trigger (the alarm again, an AMI or instance event, the
//! tick) resumes from the record, so a lost event only delays.

use crate::app::Run;
use crate::error::Error;
use crate::model::facts::InstanceFacts;
use crate::model::handover::Handover;
use crate::model::outcome::{Action, Outcome, Recovered, Verdict};
use crate::model::progress::Phase;
use crate::pipeline::commit::{fail, settle, unlist};
use crate::pipeline::report;
use crate::rules::incident::{self, Head};
use crate::rules::ladder::Rung;
use crate::rules::relaunch::said::{self, action_of, Notes};
use crate::rules::relaunch::{plan, spec, RUNBOOK};
use plan::{Next, Seen};

/// Between two looks at something the world is doing (an image, a launch, the checks).
pub const POLL_MS: i64 = 5_000;
/// Stop this long before the invocation's deadline, with the progress recorded.
pub const STOP_MARGIN_MS: i64 = 3_000;
/// A stop that has not taken after this long becomes a forced stop.
pub const FORCE_STOP_AFTER_MS: i64 = 60_000;

fn outcome(head: &Head, action: Action, result: Verdict, reason: String) -> Outcome {
    let mut o = Outcome::new(Some(head.instance_id.clone()), action, result, reason);
    o.incident = Some(head.incident_id.clone());
    o
}

fn in_progress(head: &Head, why: &str) -> Outcome {
    let phase = head.progress.phase.map_or("detected", Phase::as_str);
    outcome(
        head,
        action_of(head.progress.phase),
        Verdict::InProgress,
        format!("{phase}: {why}"),
    )
}

/// The newest backup to relaunch from, if the instance asks for that and one is young enough:
/// one the backup run recorded for it.
/// `source`: the instance as `look` just read it.
async fn young_backup(
    run: &Run<'_>,
    head: &Head,
    source: Option<&InstanceFacts>,
) -> Result<Result<Option<String>, String>, Error> {
    let (fleet, region, instance_id) = (&run.fleet, head.region(), &head.instance_id);
    let wants_backup = source
        .and_then(|i| i.tags.get(crate::model::tags::RELAUNCH_FROM_TAG))
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("latest-backup"));
    if !wants_backup {
        return Ok(Ok(None));
    }
    // Only what the backup run recorded: an image tagged as its backup proves nothing.
    let made = run.ledger.read_backups(&head.key()).await?;
    let recorded: Vec<String> = made.recorded().map(str::to_string).collect();
    let newest = fleet.newest_backup(region, instance_id, &recorded).await?;
    let (now, max_age) = (run.now_ms(), run.config.backup_max_age_ms);
    Ok(match newest {
        Some((id, created_ms)) if now - created_ms > max_age => {
            Err(said::stale_backup(&id, now - created_ms, max_age))
        }
        newest => Ok(newest.map(|(id, _)| id)),
    })
}

/// What the world shows of the relaunch now, and what the instance allows: in one round.
async fn look(run: &Run<'_>, head: &Head) -> Result<Seen, Error> {
    let (source, mut seen) = tokio::try_join!(
        instance(run, head.region(), &head.instance_id),
        look_at_phase(run, head),
    )?;
    if let Some(source) = &source {
        let policy = crate::rules::policy::policy_for(run.config.dry_run, &source.tags, None);
        seen.halt = plan::halt(&policy);
    }
    let p = &head.progress;
    let fresh = p.image_id.is_none() && p.image_name.is_none();
    if matches!(p.phase, None | Some(Phase::Imaging)) && seen.image.is_none() && fresh {
        match young_backup(run, head, source.as_ref()).await? {
            Ok(backup) => seen.backup = backup,
            Err(stale) => seen.stale_backup = Some(stale),
        }
    }
    Ok(seen)
}

/// Only what the ledger recorded is looked for: the image by its recorded id or name, the
/// copy by its recorded id or launch token. Tags and other names prove nothing.
async fn look_at_phase(run: &Run<'_>, head: &Head) -> Result<Seen, Error> {
    let (fleet, region) = (&run.fleet, head.region());
    let p = &head.progress;
    let mut seen = Seen::default();
    let copy = async {
        match (&p.replacement_id, &p.launch_token) {
            (Some(id), _) => Ok(instance(run, region, id)
                .await?
                .map(|i| (id.clone(), i.state))),
            (None, Some(token)) => fleet.launched_with(region, token).await,
            (None, None) => Ok(None),
        }
    };
    match p.phase {
        None | Some(Phase::Imaging) => {
            seen.image = match (&p.image_id, &p.image_name) {
                (Some(id), _) => fleet.image_state(region, id).await?,
                (None, Some(name)) => fleet.image_named(region, name).await?,
                (None, None) => None,
            };
            if seen.image.as_ref().is_some_and(|(_, s)| s == "available") {
                seen.replacement = copy.await?;
            }
        }
        Some(Phase::Launching) => seen.replacement = copy.await?,
        Some(Phase::Verifying) => {
            if let Some(copy) = &p.replacement_id {
                seen.checks_ok = fleet.status_checks(region, copy).await?.both_ok();
            }
        }
        _ => {}
    }
    Ok(seen)
}

/// The instance as EC2 describes it now, None if EC2 no longer knows it.
async fn instance(run: &Run<'_>, region: &str, id: &str) -> Result<Option<InstanceFacts>, Error> {
    run.fleet.describe_instance(region, id).await
}

/// Records the head as it is now (a name or token chosen before the call that uses it).
/// False: another invocation took the relaunch over meanwhile.
async fn record_first(run: &Run<'_>, head: &mut Head) -> Result<bool, Error> {
    let recorded = incident::record_step(head);
    if !run.ledger.write(&recorded, run.now_ms() / 1000).await? {
        return Ok(false);
    }
    *head = recorded;
    Ok(true)
}

/// Whatever carries this incident's tag but is not what autoheal recorded, for the report.
async fn strangers(run: &Run<'_>, head: &Head) -> Vec<String> {
    let p = &head.progress;
    let ours: Vec<&str> = [p.image_id.as_deref(), p.replacement_id.as_deref()]
        .into_iter()
        .flatten()
        .collect();
    run.fleet
        .strangers(head.region(), &head.incident_id, &ours)
        .await
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, incident = %head.incident_id, "could not look for resources tagged as this incident's");
            vec![]
        })
}

/// What this invocation learnt on the way, for the final report.
/// Someone lost the race for the relaunch: say so, do nothing more.
fn taken_over(head: &Head) -> Outcome {
    outcome(
        head,
        action_of(head.progress.phase),
        Verdict::Duplicate,
        "another invocation took this relaunch over".into(),
    )
}

/// Advances the relaunch as far as the world and the deadline allow. The head must be
/// claimed (leased) by the caller; every phase change is written to the ledger at once.
/// Returns the outcome (`head.progress.is_finished()` tells whether it is over), or the
/// error with the action that was being attempted. At least one step is taken; after it,
/// none is started within `STOP_MARGIN_MS` of the deadline.
/// `poll`: wait for the world (an image, the copy) within the invocation; without it, one
/// look and as many steps as the world allows now (the tick: it never waits on one repair
/// while others are due).
pub async fn advance(
    run: &Run<'_>,
    head: &mut Head,
    poll: bool,
) -> Result<Outcome, (Action, Error)> {
    let mut attempting = action_of(head.progress.phase);
    advance_steps(run, head, poll, &mut attempting)
        .await
        .map_err(|e| (attempting, e))
}

async fn advance_steps(
    run: &Run<'_>,
    head: &mut Head,
    poll: bool,
    attempting: &mut Action,
) -> Result<Outcome, Error> {
    let mut notes = Notes::default();
    loop {
        let seen = look(run, head).await?;
        let now = run.now_ms();
        let before = head.progress.phase;
        let next = plan::next(&head.progress, &seen, now, run.config.verify_timeout_ms);
        let moved = match next {
            Next::CreateImage => {
                *attempting = Action::CreateImage;
                notes.stale_backup = seen.stale_backup.clone();
                create_image(run, head, now).await?
            }
            adopted @ (Next::UseBackup(_) | Next::AdoptImage(_)) => {
                adopt(head, adopted, now);
                true
            }
            Next::Launch => {
                *attempting = Action::LaunchReplacement;
                let source = run
                    .fleet
                    .describe_source(head.region(), &head.instance_id)
                    .await?;
                if source.disable_api_stop {
                    let ended = halted(head, before, Verdict::Held, said::STOP_PROTECTED, now);
                    return Ok(ended.for_people(Handover::StopProtected));
                }
                launch_copy(run, head, &source, &mut notes, now).await?
            }
            adopted @ Next::AdoptReplacement(_) => {
                adopt(head, adopted, now);
                true
            }
            Next::TakeOver => {
                *attempting = Action::LaunchReplacement;
                take_over(run, head, &mut notes, now).await?;
                true
            }
            Next::WaitForImage | Next::WaitForReplacement | Next::WaitForChecks => {
                if next == Next::WaitForChecks && seen.halt.is_none() {
                    force_stop_if_stuck(run, head, now).await;
                }
                if poll && run.deadline_ms - now > POLL_MS + STOP_MARGIN_MS {
                    run.clock.sleep(POLL_MS).await;
                    continue;
                }
                return Ok(in_progress(
                    head,
                    &format!("waiting for {}", waiting_for(&next)),
                ));
            }
            Next::Recovered => return Ok(recovered(run, head, &seen, &mut notes, now).await),
            Next::Fail(why) => return Ok(failed(run, head, before, &why, now).await),
            Next::Halt(verdict, why) => return Ok(halted(head, before, verdict, &why, now)),
        };
        if !moved {
            return Ok(taken_over(head));
        }
        // The relaunch rung of the ladder is begun with its first step recorded.
        if before.is_none() && !head.rungs.iter().any(|(r, _)| *r == Rung::Relaunch) {
            head.rungs.push((Rung::Relaunch, now));
        }
        // Record the phase before anything else, so that a crash resumes from here.
        if !record_first(run, head).await? {
            return Ok(taken_over(head));
        }
        *attempting = action_of(head.progress.phase);
        if head.progress.phase != before {
            report_step(run, head, &notes).await;
        }
        if run.deadline_ms - run.now_ms() < STOP_MARGIN_MS {
            return Ok(in_progress(head, "continues at the next trigger"));
        }
    }
}

/// What an earlier try or the backup run made, taken up: a backup to relaunch from, the
/// image or the copy an interrupted try made (each proved by the ledger's record).
fn adopt(head: &mut Head, next: Next, now: i64) {
    let incident = head.incident_id.clone();
    match next {
        Next::UseBackup(id) => {
            tracing::info!(%incident, image = %id, "relaunching from the latest backup");
            head.progress.image_id = Some(id);
            head.progress.from_backup = true;
            head.progress.enter(Phase::Imaging, now);
        }
        Next::AdoptImage(id) => {
            tracing::info!(%incident, image = %id, "adopting the image an interrupted try created");
            head.progress.image_id = Some(id);
            head.progress.enter(Phase::Imaging, now);
        }
        Next::AdoptReplacement(id) => {
            tracing::info!(%incident, copy = %id, "adopting the copy an interrupted try launched");
            head.progress.replacement_id = Some(id);
            head.progress.enter(Phase::Launching, now);
        }
        _ => {}
    }
}

fn waiting_for(next: &Next) -> &'static str {
    match next {
        Next::WaitForImage => "the image to become available",
        Next::WaitForReplacement => "the copy to run",
        _ => "the copy's status checks",
    }
}

/// `CreateImage` without reboot, under a name recorded before the call. False: another
/// invocation took the relaunch over.
async fn create_image(run: &Run<'_>, head: &mut Head, now: i64) -> Result<bool, Error> {
    let name = match head.progress.image_name.clone() {
        Some(name) => name,
        None => {
            let name = spec::image_name(&head.incident_id, &crate::app::secret::token());
            head.progress.image_name = Some(name.clone());
            if !record_first(run, head).await? {
                return Ok(false);
            }
            name
        }
    };
    let tags = spec::bookkeeping_tags(&head.instance_id, &head.incident_id);
    let id = run
        .fleet
        .create_image(head.region(), &head.instance_id, &name, &tags)
        .await?;
    head.progress.image_id = Some(id);
    head.progress.enter(Phase::Imaging, now);
    Ok(true)
}

/// `RunInstances` of the copy of `source` with a `ClientToken` recorded before the call. False:
/// another invocation took the relaunch over.
async fn launch_copy(
    run: &Run<'_>,
    head: &mut Head,
    source: &spec::Source,
    notes: &mut Notes,
    now: i64,
) -> Result<bool, Error> {
    notes.not_carried = spec::not_carried(source);
    let image_id = head.progress.image_id.clone().unwrap_or_default();
    let token = match head.progress.launch_token.clone() {
        Some(token) => token,
        None => {
            let token = crate::app::secret::token();
            head.progress.launch_token = Some(token.clone());
            if !record_first(run, head).await? {
                return Ok(false);
            }
            token
        }
    };
    let id = run
        .fleet
        .run_copy(head.region(), source, &image_id, &head.incident_id, &token)
        .await?;
    head.progress.replacement_id = Some(id);
    head.progress.enter(Phase::Launching, now);
    Ok(true)
}

/// The copy takes the old instance's place: its Elastic IPs moved, the old one stopped
/// (not terminated until the copy is verified).
async fn take_over(
    run: &Run<'_>,
    head: &mut Head,
    notes: &mut Notes,
    now: i64,
) -> Result<(), Error> {
    head.progress.enter(Phase::TakingOver, now);
    let (fleet, region, id) = (&run.fleet, head.region(), &head.instance_id);
    let copy = head.progress.replacement_id.clone().unwrap_or_default();
    notes.moved = fleet.move_addresses(region, id, &copy).await?;
    fleet.retire(region, id, &copy, false, false).await?;
    head.progress.enter(Phase::Verifying, run.now_ms());
    Ok(())
}

/// The copy passed its checks: strangers named, the old instance terminated if asked.
async fn recovered(
    run: &Run<'_>,
    head: &mut Head,
    seen: &Seen,
    notes: &mut Notes,
    now: i64,
) -> Outcome {
    head.progress.enter(Phase::Recovered, now);
    // Independent of one another: at once, so the report is not kept waiting.
    (notes.strangers, notes.terminated, notes.watched) = tokio::join!(
        strangers(run, head),
        terminate_source(run, head, seen.halt.is_some()),
        super::alarms::watch(run, head, seen.halt.is_some()),
    );
    let reason = said::recovered(head, notes, now);
    let mut o = outcome(head, Action::Verify, Verdict::Done, reason);
    o.recovered = Some(Recovered::Copy);
    o
}

/// A step failed for good: people, with the runbook's section of the phase it failed in.
async fn failed(
    run: &Run<'_>,
    head: &mut Head,
    before: Option<Phase>,
    why: &str,
    now: i64,
) -> Outcome {
    head.progress.enter(Phase::Failed, now);
    let found = said::strangers_note(&strangers(run, head).await);
    let reason = format!("{why}{found}. {RUNBOOK}");
    let kind = said::failed_in(&head.progress);
    outcome(head, action_of(before), Verdict::Failed, reason).for_people(kind)
}

/// The instance's tag or dry run now says stop: ended where it stood, for people.
fn halted(
    head: &mut Head,
    before: Option<Phase>,
    verdict: Verdict,
    why: &str,
    now: i64,
) -> Outcome {
    head.progress.enter(Phase::Failed, now);
    let reason = format!("{why}{}", said::left_as_it_is(&head.progress));
    outcome(head, action_of(before), verdict, reason).for_people(Handover::RelaunchHalted)
}

/// `AUTOHEAL_TERMINATE_REPLACED`: the old instance goes once its copy is verified (not if
/// `halted`). What happened, for the report.
async fn terminate_source(run: &Run<'_>, head: &Head, halted: bool) -> Option<Result<(), String>> {
    if !run.config.terminate_replaced || halted {
        return None;
    }
    let copy = head.progress.replacement_id.as_deref().unwrap_or_default();
    let retired = run
        .fleet
        .retire(head.region(), &head.instance_id, copy, true, false);
    Some(retired.await.map_err(|e| e.to_string()))
}

async fn force_stop_if_stuck(run: &Run<'_>, head: &Head, now: i64) {
    let Some(since) = head.progress.began(Phase::Verifying) else {
        return;
    };
    if now - since < FORCE_STOP_AFTER_MS {
        return;
    }
    let (fleet, region, id) = (&run.fleet, head.region(), &head.instance_id);
    if let Ok(Some(i)) = instance(run, region, id).await {
        if i.state == "running" || i.state == "stopping" {
            let copy = head.progress.replacement_id.clone().unwrap_or_default();
            if let Err(e) = fleet.retire(region, id, &copy, false, true).await {
                tracing::warn!(error = %e, instance_id = %head.instance_id, "force stop failed; the copy has taken over anyway");
            }
        }
    }
}

/// Tells people the relaunch moved to a new phase.
async fn report_step(run: &Run<'_>, head: &Head, notes: &Notes) {
    let Some(reason) = said::step(head, notes, run.now_ms()) else {
        return;
    };
    let o = outcome(
        head,
        action_of(head.progress.phase),
        Verdict::InProgress,
        reason,
    );
    report::progress(run, &head.opening_signal(), &o).await;
}

/// Runs (or resumes) the relaunch of a standalone instance on a claimed head: records it
/// as open, advances it, then settles and reports it, or gives the claim back to wait.
pub async fn run(run: &Run<'_>, mut head: Head, poll: bool) -> Result<Outcome, Error> {
    let signal = head.opening_signal();
    let now_secs = run.now_ms() / 1000;
    if let Err(e) = run.ledger.set_open(&head.key(), true, now_secs).await {
        return fail(run, &head, &signal, None, Action::CreateImage, e).await;
    }
    let result = advance(run, &mut head, poll).await;
    let outcome = match result {
        Ok(outcome) if head.progress.is_finished() => {
            let (_, outcome) = tokio::join!(
                settle(run, &head, &outcome),
                report::decision(run, &signal, None, outcome.clone())
            );
            outcome
        }
        Ok(outcome) if outcome.result == Verdict::Duplicate => return Ok(outcome),
        Ok(outcome) => {
            // Waiting on the world: give the lease back so that the next trigger continues.
            if let Err(e) = run.ledger.write(&incident::release(&head), now_secs).await {
                tracing::warn!(error = %e, incident = %head.incident_id, "could not release the claim; it expires with its lease");
            }
            return Ok(outcome);
        }
        Err((action, e)) => fail(run, &head, &signal, None, action, e).await?,
    };
    unlist(run, &head).await;
    Ok(outcome)
}
