//! Periodic backup images (the operators' trick: once a first image exists, later ones are
//! incremental and fast, so the image taken at failure time is quick too). Pure planning;
//! `aws::backup` reads and acts.
//!
//! An instance tagged `autoheal:backup=<hours>` gets an image (without reboot) when its
//! newest backup is older than that; the newest `autoheal:backup-keep` (default 3)
//! available backups are kept, older ones are deregistered and their snapshots deleted.

pub const BACKUP_TAG: &str = "autoheal:backup";
pub const KEEP_TAG: &str = "autoheal:backup-keep";
pub const BACKUP_OF_TAG: &str = "autoheal:backup-of";
pub const DEFAULT_KEEP: usize = 3;

/// An instance that asked for backups, as tagged.
#[derive(Debug, Clone, PartialEq)]
pub struct Tagged {
    pub instance_id: String,
    pub backup_tag: String,
    pub keep_tag: Option<String>,
}

/// One backup image of an instance.
#[derive(Debug, Clone, PartialEq)]
pub struct Backup {
    pub image_id: String,
    pub source: String,
    pub created_ms: i64,
    /// pending, available, failed, ...
    pub state: String,
    pub snapshots: Vec<String>,
}

#[derive(Debug, Default, PartialEq)]
pub struct Plan {
    /// Instances to image now.
    pub create: Vec<String>,
    /// Backups to deregister (with their snapshots).
    pub retire: Vec<Backup>,
    /// Tags that could not be read, said plainly.
    pub problems: Vec<String>,
}

fn positive<T: std::str::FromStr + PartialOrd + Default>(s: &str) -> Option<T> {
    s.trim().parse::<T>().ok().filter(|v| *v > T::default())
}

pub fn backup_name(instance_id: &str, now_ms: i64) -> String {
    let t = chrono::DateTime::from_timestamp_millis(now_ms).unwrap_or_default();
    format!("autoheal-backup-{instance_id}-{}", t.format("%Y%m%dT%H%MZ"))
}

/// Backups of instances no longer tagged, or no longer existing, are never touched: they
/// may be the only copy left.
pub fn plan(tagged: &[Tagged], backups: &[Backup], now_ms: i64) -> Plan {
    let mut plan = Plan::default();
    for t in tagged {
        let Some(hours) = positive::<f64>(&t.backup_tag) else {
            plan.problems.push(format!(
                "{}: {BACKUP_TAG}={:?} is not a positive number of hours",
                t.instance_id, t.backup_tag
            ));
            continue;
        };
        let keep = match &t.keep_tag {
            None => DEFAULT_KEEP,
            Some(k) => match positive::<usize>(k) {
                Some(k) => k,
                None => {
                    plan.problems.push(format!(
                        "{}: {KEEP_TAG}={k:?} is not a positive count; keeping {DEFAULT_KEEP}",
                        t.instance_id
                    ));
                    DEFAULT_KEEP
                }
            },
        };
        let mut own: Vec<&Backup> = backups
            .iter()
            .filter(|b| b.source == t.instance_id)
            .collect();
        own.sort_by_key(|b| std::cmp::Reverse(b.created_ms));
        let newest = own
            .iter()
            .find(|b| b.state == "available" || b.state == "pending");
        // A backup still being taken is not followed by another (a first image of a
        // large volume can take over half an hour).
        let due = match newest {
            None => true,
            Some(b) if b.state == "pending" => false,
            Some(b) => (now_ms - b.created_ms) as f64 >= hours * 3_600_000.0,
        };
        if due {
            plan.create.push(t.instance_id.clone());
        }
        plan.retire.extend(
            own.iter()
                .filter(|b| b.state == "available")
                .skip(keep)
                .map(|b| (*b).clone()),
        );
    }
    plan
}

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

async fn perform(ec2: &aws_sdk_ec2::Client, work: Work, now_ms: i64, deadline_ms: i64) -> Done {
    if chrono::Utc::now().timestamp_millis() >= deadline_ms - STOP_MARGIN_MS {
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

/// One tick's backup work: read, plan, then image and retire with bounded concurrency.
pub async fn run(
    ec2: &aws_sdk_ec2::Client,
    now_ms: i64,
    deadline_ms: i64,
) -> Result<Summary, crate::error::Error> {
    use futures::stream::{self, StreamExt};
    let (tagged, backups) = tokio::try_join!(
        crate::aws::backup::tagged_instances(ec2),
        crate::aws::backup::backups(ec2)
    )?;
    let p = plan(&tagged, &backups, now_ms);
    let mut summary = Summary {
        tagged: tagged.len(),
        problems: p.problems,
        ..Default::default()
    };
    let work = p
        .create
        .into_iter()
        .map(Work::Create)
        .chain(p.retire.into_iter().map(Work::Retire));
    let mut results = stream::iter(work)
        .map(|w| perform(ec2, w, now_ms, deadline_ms))
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

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;

    fn tagged(id: &str, every: &str, keep: Option<&str>) -> Tagged {
        Tagged {
            instance_id: id.into(),
            backup_tag: every.into(),
            keep_tag: keep.map(str::to_string),
        }
    }

    fn backup(id: &str, source: &str, age_h: i64, state: &str) -> Backup {
        Backup {
            image_id: id.into(),
            source: source.into(),
            created_ms: 100 * H - age_h * H,
            state: state.into(),
            snapshots: vec![format!("snap-{id}")],
        }
    }

    #[test]
    fn plan_table() {
        let now = 100 * H;
        let backups = vec![
            backup("a1", "i-a", 1, "available"),
            backup("b1", "i-b", 30, "available"),
            backup("b2", "i-b", 54, "available"),
            backup("b3", "i-b", 78, "available"),
            backup("b4", "i-b", 102, "available"),
            backup("b5", "i-b", 126, "failed"),
            backup("c1", "i-c", 1, "pending"),
            backup("gone1", "i-gone", 500, "available"),
        ];
        let tagged = vec![
            tagged("i-a", "24", None),        // fresh backup: nothing to do
            tagged("i-b", "24", Some("2")),   // due, and two beyond the newest two
            tagged("i-c", "0.5", None),       // in flight: not due again
            tagged("i-d", "6", None),         // never backed up
            tagged("i-e", "daily", None),     // unreadable
            tagged("i-f", "12", Some("all")), // unreadable keep: default
        ];
        let p = plan(&tagged, &backups, now);
        assert_eq!(p.create, ["i-b", "i-d", "i-f"]);
        let retired: Vec<&str> = p.retire.iter().map(|b| b.image_id.as_str()).collect();
        assert_eq!(retired, vec!["b3", "b4"]);
        assert_eq!(p.problems.len(), 2);
        assert!(p.problems[0].contains("i-e") && p.problems[0].contains("hours"));
        assert!(p.problems[1].contains("i-f") && p.problems[1].contains("keeping 3"));
    }

    #[test]
    fn names_are_per_instance_and_minute() {
        assert_eq!(
            backup_name("i-1", 1_795_403_565_123),
            "autoheal-backup-i-1-20261123T0312Z"
        );
    }
}
