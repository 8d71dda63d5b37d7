//! The tick's run of the backup plan: read, plan (`backup::plan`), then image and retire
//! with bounded concurrency (in dry run: read and plan only).

use crate::backup::{backup_name, plan, would, Backup};
use crate::clock::Clock;
use std::collections::HashSet;

/// At most this many image calls at once: enough for 1,000 instances in one tick, well
/// under EC2's request rate limits (the SDK retries what is throttled).
pub const CONCURRENCY: usize = 16;
/// No new backup work is started this close to the invocation's deadline.
pub const STOP_MARGIN_MS: i64 = 5_000;

#[derive(Debug, Default, PartialEq)]
pub struct Summary {
    pub tagged: usize,
    pub imaged: usize,
    pub retired: usize,
    pub snapshots_deleted: usize,
    /// Left for the next tick because the deadline came near.
    pub deferred: usize,
    /// Planned, not done (dry run).
    pub would: Vec<String>,
    pub skipped: usize,
    pub problems: Vec<String>,
}

impl Summary {
    pub fn text(&self) -> String {
        let mut t = format!(
            "backups: {} tagged instance(s), {} imaged without reboot, {} old image(s) deregistered, {} snapshot(s) deleted",
            self.tagged, self.imaged, self.retired, self.snapshots_deleted
        );
        if self.deferred > 0 {
            t.push_str(&format!(", {} deferred to the next tick", self.deferred));
        }
        if self.skipped > 0 {
            t.push_str(&format!(
                ", {} left alone (open incident, replaced or opted out)",
                self.skipped
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

enum Work {
    Create(String),
    Retire(Backup),
}

enum Done {
    Imaged,
    Retired(usize),
    Deferred,
    Problem(String),
}

async fn perform(
    ec2: &aws_sdk_ec2::Client,
    clock: &Clock,
    work: Work,
    now_ms: i64,
    deadline_ms: i64,
) -> Done {
    if clock.now_ms() >= deadline_ms - STOP_MARGIN_MS {
        return Done::Deferred;
    }
    match work {
        Work::Create(id) => {
            match crate::aws::backup::create(ec2, &id, &backup_name(&id, now_ms)).await {
                Ok(_) => Done::Imaged,
                Err(e) => Done::Problem(format!("{id}: {e}")),
            }
        }
        Work::Retire(b) => match crate::aws::backup::retire(ec2, &b).await {
            Ok(n) => Done::Retired(n),
            Err(e) => Done::Problem(format!("{}: {e}", b.image_id)),
        },
    }
}

/// One tick's backup work: read, plan, then image and retire with bounded concurrency
/// (in dry run: read and plan only). `open`: instances with an open incident.
pub async fn run(
    ec2: &aws_sdk_ec2::Client,
    clock: &Clock,
    open: &[String],
    dry_run: bool,
    deadline_ms: i64,
) -> Result<Summary, crate::error::Error> {
    use futures::stream::{self, StreamExt};
    let (tagged, backups) = tokio::try_join!(
        crate::aws::backup::tagged_instances(ec2),
        crate::aws::backup::backups(ec2)
    )?;
    let now_ms = clock.now_ms();
    let open: HashSet<&str> = open.iter().map(String::as_str).collect();
    let p = plan(&tagged, &backups, &open, now_ms);
    let mut summary = Summary {
        tagged: tagged.len(),
        problems: p.problems,
        would: p.would,
        skipped: p.skipped.len(),
        ..Default::default()
    };
    if dry_run {
        summary.would.extend(would(&p.create, &p.retire));
        return Ok(summary);
    }
    let work = p
        .create
        .into_iter()
        .map(Work::Create)
        .chain(p.retire.into_iter().map(Work::Retire));
    let mut results = stream::iter(work)
        .map(|w| perform(ec2, clock, w, now_ms, deadline_ms))
        .buffer_unordered(CONCURRENCY);
    while let Some(done) = results.next().await {
        match done {
            Done::Imaged => summary.imaged += 1,
            Done::Retired(n) => {
                summary.retired += 1;
                summary.snapshots_deleted += n;
            }
            Done::Deferred => summary.deferred += 1,
            Done::Problem(p) => summary.problems.push(p),
        }
    }
    Ok(summary)
}
