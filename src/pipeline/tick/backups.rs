//! The tick's run of the backup plan: read (the tagged instances; for the selected ones their
//! images and what the ledger knows), plan (`backup::plan`), then per instance record the
//! request, image, retire and record the answers, instances at once with bounded
//! concurrency (in dry run: read and plan only).

use crate::app::config::BACKUP_SELECTOR_VARIABLE;
use crate::app::{Deps, Run};
use crate::error::Error;
use crate::model::handover::Handover;
use crate::model::keys;
use crate::model::outcome::{Action, Outcome, Verdict};
use crate::notify::message::summary_for_people;
use crate::rules::backup::{plan, would, Job, Made};
use std::collections::{HashMap, HashSet};

/// At most this many instances worked on at once: enough for 1,000 instances in one tick,
/// well under EC2's request rate limits (the SDK retries what is throttled).
pub const CONCURRENCY: usize = 16;
/// No new backup work is started this close to the invocation's deadline.
pub const STOP_MARGIN_MS: i64 = 5_000;
/// Conditional writes of one record lost in a row before its answers are left for the next
/// run to find (under the request's name).
const RECORD_RACES: usize = 3;
/// Instances named in a summary line at most; the rest are counted.
const NAMED: usize = 10;

#[derive(Debug, Default, PartialEq)]
pub struct Summary {
    /// The deployer's selector (`AUTOHEAL_BACKUP_SELECTOR`); None: no instance is selected.
    pub selector: Option<String>,
    /// Tagged for backups and selected.
    pub tagged: usize,
    pub imaged: usize,
    pub retired: usize,
    pub snapshots_deleted: usize,
    /// Left for the next tick because the deadline came near (or another run held them).
    pub deferred: usize,
    /// Planned, not done (dry run).
    pub would: Vec<String>,
    pub skipped: usize,
    /// Held back by their latest incident, and why.
    pub held_back: Vec<String>,
    /// Tagged for backups, without the selector tag.
    pub unselected: Vec<String>,
    /// Images tagged as backups that autoheal's backup run never recorded.
    pub suspicious: Vec<String>,
    pub problems: Vec<String>,
}

/// `items`, at most `NAMED` of them named.
fn named(items: &[String]) -> String {
    let mut t = items
        .iter()
        .take(NAMED)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > NAMED {
        t.push_str(&format!(" and {} more", items.len() - NAMED));
    }
    t
}

impl Summary {
    pub fn text(&self) -> String {
        let mut t = match &self.selector {
            None => format!(
                "backups: none, {BACKUP_SELECTOR_VARIABLE} is not set (no instance is selected)"
            ),
            Some(_) => format!(
                "backups: {} tagged instance(s), {} imaged without reboot, {} old image(s) deregistered, {} snapshot(s) deleted",
                self.tagged, self.imaged, self.retired, self.snapshots_deleted
            ),
        };
        if self.deferred > 0 {
            t.push_str(&format!(", {} deferred to the next tick", self.deferred));
        }
        if self.skipped > 0 {
            t.push_str(&format!(
                ", {} left alone (open incident, replaced or opted out)",
                self.skipped
            ));
        }
        if !self.held_back.is_empty() {
            t.push_str(&format!(
                "; {} held back, no backup and none retired until their latest incident closes as recovered: {}",
                self.held_back.len(),
                named(&self.held_back)
            ));
        }
        if !self.unselected.is_empty() {
            let without = match &self.selector {
                Some(s) => format!("without the selector tag {s}"),
                None => "not selected".into(),
            };
            t.push_str(&format!(
                "; {} tagged {} {without}, left alone: {}",
                self.unselected.len(),
                crate::rules::backup::BACKUP_TAG,
                named(&self.unselected)
            ));
        }
        if !self.suspicious.is_empty() {
            t.push_str(&format!(
                "; {} image(s) tagged as backups that autoheal did not make, left alone: {}",
                self.suspicious.len(),
                named(&self.suspicious)
            ));
        }
        if !self.would.is_empty() {
            t.push_str(&format!("; dry run, would: {}", self.would.join(", ")));
        }
        if !self.problems.is_empty() {
            t.push_str(&format!(
                "; {} problem(s): {}",
                self.problems.len(),
                self.problems.join("; ")
            ));
        }
        t
    }
}

/// How one instance's job went.
#[derive(Default)]
struct Done {
    imaged: usize,
    retired: usize,
    snapshots: usize,
    deferred: bool,
    problems: Vec<String>,
}

/// One instance's job: the record first (the request is in the ledger before EC2 is asked),
/// then the calls, then the answers recorded.
async fn perform(deps: &Deps, region: &str, job: Job, deadline_ms: i64) -> Done {
    let mut done = Done::default();
    if deps.now_ms() >= deadline_ms - STOP_MARGIN_MS {
        done.deferred = true;
        return done;
    }
    let (fleet, id) = (&deps.fleet, &job.instance_id);
    let key = keys::key(region, id);
    let mut made = job.made;
    if job.write {
        made.version += 1;
        match deps
            .ledger
            .write_backups(&key, &made, deps.now_ms() / 1000)
            .await
        {
            Ok(true) => {}
            // Another run wrote it since it was read: it is that run's this time.
            Ok(false) => {
                done.deferred = true;
                return done;
            }
            Err(e) => {
                done.problems.push(format!(
                    "{id}: backup record not written, nothing asked of EC2 ({e})"
                ));
                return done;
            }
        }
        // Flagged in the record now: reported this once.
        done.problems.extend(job.newly_suspicious);
    }
    let mut edits = Edits::default();
    if let Some(name) = &job.create {
        match fleet.create_backup(region, id, name).await {
            Ok(Some(image)) => {
                edits.answered = Some((name.clone(), image));
                done.imaged += 1;
            }
            // The name was taken before the request: no image under it is autoheal's.
            Ok(None) => {
                edits.refused = Some(name.clone());
                done.problems.push(format!(
                    "{id}: the backup's name {name:?} is taken by an image autoheal did not make; no backup this time"
                ));
            }
            // Perhaps made all the same: the next run looks for it under its name.
            Err(e) => done.problems.push(format!("{id}: {e}")),
        }
    }
    for b in job.retire {
        match fleet.retire_backup(region, &b).await {
            Ok(n) => {
                edits.forgotten.push(b.image_id);
                done.retired += 1;
                done.snapshots += n;
            }
            Err(e) => done.problems.push(format!("{}: {e}", b.image_id)),
        }
    }
    if !edits.is_empty() {
        if let Err(why) = save(deps, &key, made, &edits).await {
            done.problems.push(format!("{id}: {why}"));
        }
    }
    done
}

/// What a job learnt of EC2, for the record.
#[derive(Default)]
struct Edits {
    /// (name, image id): the image EC2 made for the request.
    answered: Option<(String, String)>,
    /// A request whose name EC2 refused as taken.
    refused: Option<String>,
    /// Images retired.
    forgotten: Vec<String>,
}

impl Edits {
    fn is_empty(&self) -> bool {
        self.answered.is_none() && self.refused.is_none() && self.forgotten.is_empty()
    }

    fn apply(&self, made: &mut Made, now_ms: i64) {
        if let Some((name, image)) = &self.answered {
            made.answered(name, image, now_ms);
        }
        if let Some(name) = &self.refused {
            made.images
                .retain(|e| e.name != *name || e.image_id.is_some());
        }
        for image in &self.forgotten {
            made.forget(image);
        }
    }
}

/// Writes what the job learnt; when another run wrote meanwhile, applies it to that record.
async fn save(deps: &Deps, key: &str, mut made: Made, edits: &Edits) -> Result<(), String> {
    let why = |e: Error| {
        format!("backup record not updated ({e}); the next run finds the image under its name")
    };
    edits.apply(&mut made, deps.now_ms());
    for _ in 0..RECORD_RACES {
        made.version += 1;
        if deps
            .ledger
            .write_backups(key, &made, deps.now_ms() / 1000)
            .await
            .map_err(why)?
        {
            return Ok(());
        }
        made = deps.ledger.read_backups(key).await.map_err(why)?;
        edits.apply(&mut made, deps.now_ms());
    }
    Err("backup record changed by other runs meanwhile; the next run finds the image under its name".into())
}

/// One tick's backup work in `region`. `open`: instances (ids) with an open incident.
pub async fn run(
    deps: &Deps,
    region: &str,
    open: &[String],
    deadline_ms: i64,
) -> Result<Summary, Error> {
    use futures::stream::{self, StreamExt};
    let selector = deps.config.backup_selector.as_ref();
    let tagged = deps.fleet.tagged_instances(region, selector).await?;
    let selected: Vec<String> = tagged
        .iter()
        .filter(|t| t.selected)
        .map(|t| keys::key(region, &t.instance_id))
        .collect();
    // Nothing selected: nothing of the images or the ledger to read.
    let (backups, known) = match selected.is_empty() {
        true => (vec![], HashMap::new()),
        false => tokio::try_join!(
            deps.fleet.backups(region),
            deps.ledger.backup_standing(&selected)
        )?,
    };
    let known = known
        .into_iter()
        .map(|(k, v)| (keys::instance_of(&k).to_string(), v))
        .collect();
    let open: HashSet<&str> = open.iter().map(String::as_str).collect();
    let p = plan(&tagged, &backups, &known, &open, deps.now_ms());
    let mut summary = Summary {
        selector: selector.map(ToString::to_string),
        tagged: selected.len(),
        problems: p.problems,
        would: p.would,
        skipped: p.skipped.len(),
        held_back: p.held_back,
        unselected: p.unselected,
        suspicious: p.suspicious,
        ..Default::default()
    };
    if deps.config.dry_run {
        let create: Vec<String> = p
            .jobs
            .iter()
            .filter(|j| j.create.is_some())
            .map(|j| j.instance_id.clone())
            .collect();
        let retire: Vec<_> = p.jobs.iter().flat_map(|j| j.retire.clone()).collect();
        summary.would.extend(would(&create, &retire));
        return Ok(summary);
    }
    let mut results = stream::iter(p.jobs)
        .map(|job| perform(deps, region, job, deadline_ms))
        .buffer_unordered(CONCURRENCY);
    while let Some(done) = results.next().await {
        summary.imaged += done.imaged;
        summary.retired += done.retired;
        summary.snapshots_deleted += done.snapshots;
        summary.deferred += usize::from(done.deferred);
        summary.problems.extend(done.problems);
    }
    Ok(summary)
}

/// The tick's periodic backups: one summary outcome; reported to Slack only when
/// something went wrong (not every minute). A failure is an outcome, never an error.
/// `open`: the instances (`model::keys::key`s) with an open incident. One outcome per served
/// region (`AUTOHEAL_REGIONS`; `*`: the function's own), the regions at once.
pub async fn backups(run: &Run<'_>, open: &[String]) -> Vec<Outcome> {
    let regions = run.config.regions.listed(&run.config.region);
    let several = regions.len() > 1;
    futures::future::join_all(regions.into_iter().map(|region| async move {
        let open: Vec<String> = open
            .iter()
            .filter_map(|k| keys::split_key(k))
            .filter(|(r, _)| *r == region)
            .map(|(_, id)| id.to_string())
            .collect();
        let mut o = backups_in(run, region, &open).await;
        if several {
            o.reason = format!("{region}: {}", o.reason);
        }
        o
    }))
    .await
}

async fn backups_in(run: &Run<'_>, region: &str, open: &[String]) -> Outcome {
    let summary = match self::run(run, region, open, run.deadline_ms).await {
        Ok(s) => s,
        Err(e) => {
            return Outcome::new(
                None,
                Action::CreateImage,
                Verdict::Failed,
                format!("backups: {e}"),
            )
        }
    };
    let result = if !summary.problems.is_empty() {
        Verdict::Failed
    } else if run.config.dry_run {
        Verdict::DryRun
    } else {
        Verdict::Done
    };
    let mut outcome = Outcome::new(None, Action::CreateImage, result, summary.text());
    if !summary.problems.is_empty() {
        let payload = summary_for_people(
            &format!(":warning: autoheal {}", summary.text()),
            Handover::TickWarning,
            run.config.runbook_url.as_deref(),
        );
        outcome.notification = Some(run.tell(&payload).await);
    }
    outcome
}
