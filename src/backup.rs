//! Periodic backup images (the operators' trick: once a first image exists, later ones are
//! incremental and fast, so the image taken at failure time is quick too): the pure plan
//! (the tick runs it: `heal::backup`; `aws::backup` reads and acts).
//!
//! An instance tagged `autoheal:backup=<hours>` gets an image (without reboot) when its
//! newest backup is older than that; the newest `autoheal:backup-keep` (default 3)
//! available backups are kept, older ones are deregistered and their snapshots deleted.
//! Retention touches only what autoheal made (its name and its tag), never an instance
//! with an open incident or one replaced by a copy; the `autoheal` tag and dry run hold
//! every call back.

use crate::policy::{self, Mode};
use std::collections::{BTreeMap, HashSet};

pub const BACKUP_TAG: &str = "autoheal:backup";
pub const KEEP_TAG: &str = "autoheal:backup-keep";
pub const BACKUP_OF_TAG: &str = "autoheal:backup-of";
pub const DEFAULT_KEEP: usize = 3;

/// An instance that asked for backups, as tagged.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Tagged {
    pub instance_id: String,
    pub backup_tag: String,
    pub keep_tag: Option<String>,
    /// Its `autoheal` tag, if any.
    pub mode_tag: Option<String>,
    /// Its `autoheal:replaced-by` tag: a copy took over from it.
    pub replaced_by: Option<String>,
}

/// One backup image of an instance.
#[derive(Debug, Clone, PartialEq)]
pub struct Backup {
    pub image_id: String,
    pub name: String,
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
    /// What a `dry-run` tag holds back: said, not done.
    pub would: Vec<String>,
    /// Instances left alone, and why.
    pub skipped: Vec<String>,
    /// Tags that could not be read, said plainly.
    pub problems: Vec<String>,
}

fn positive<T: std::str::FromStr + PartialOrd + Default>(s: &str) -> Option<T> {
    s.trim().parse::<T>().ok().filter(|v| *v > T::default())
}

fn name_prefix(instance_id: &str) -> String {
    format!("autoheal-backup-{instance_id}-")
}

pub fn backup_name(instance_id: &str, now_ms: i64) -> String {
    let t = chrono::DateTime::from_timestamp_millis(now_ms).unwrap_or_default();
    format!("{}{}", name_prefix(instance_id), t.format("%Y%m%dT%H%MZ"))
}

/// Backups of instances no longer tagged, or no longer existing, are never touched: they
/// may be the only copy left. `open`: instances with an open incident.
pub fn plan(tagged: &[Tagged], backups: &[Backup], open: &HashSet<&str>, now_ms: i64) -> Plan {
    let mut plan = Plan::default();
    for t in tagged {
        let id = &t.instance_id;
        let tags: BTreeMap<String, String> = t
            .mode_tag
            .iter()
            .map(|v| (policy::MODE_TAG.to_string(), v.clone()))
            .collect();
        let mode = policy::policy_for(false, &tags, None).mode;
        let left_alone = if open.contains(id.as_str()) {
            Some(
                "an incident is open: its images are evidence, no backup until it closes"
                    .to_string(),
            )
        } else if let Some(copy) = &t.replaced_by {
            Some(format!(
                "replaced by {copy}: its backups are kept as they are"
            ))
        } else if mode == Mode::Off || mode == Mode::Notify {
            Some(format!(
                "tag autoheal={}: no backup calls",
                t.mode_tag.as_deref().unwrap_or("")
            ))
        } else {
            None
        };
        if let Some(why) = left_alone {
            plan.skipped.push(format!("{id}: {why}"));
            continue;
        }
        let Some(hours) = positive::<f64>(&t.backup_tag) else {
            plan.problems.push(format!(
                "{id}: {BACKUP_TAG}={:?} is not a positive number of hours",
                t.backup_tag
            ));
            continue;
        };
        let keep = match &t.keep_tag {
            None => DEFAULT_KEEP,
            Some(k) => match positive::<usize>(k) {
                Some(k) => k,
                None => {
                    plan.problems.push(format!(
                        "{id}: {KEEP_TAG}={k:?} is not a positive count; keeping {DEFAULT_KEEP}"
                    ));
                    DEFAULT_KEEP
                }
            },
        };
        // Only images autoheal made for this instance: its tag and its name.
        let mut own: Vec<&Backup> = backups
            .iter()
            .filter(|b| &b.source == id && b.name.starts_with(&name_prefix(id)))
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
        let retire: Vec<Backup> = own
            .iter()
            .filter(|b| b.state == "available")
            .skip(keep)
            .map(|b| (*b).clone())
            .collect();
        if mode == Mode::DryRun {
            let create = if due { vec![id.clone()] } else { vec![] };
            plan.would.extend(would(&create, &retire));
            continue;
        }
        if due {
            plan.create.push(id.clone());
        }
        plan.retire.extend(retire);
    }
    plan
}

/// What a dry run says instead of doing it.
pub fn would(create: &[String], retire: &[Backup]) -> Vec<String> {
    create
        .iter()
        .map(|id| format!("image {id}"))
        .chain(retire.iter().map(|b| format!("deregister {}", b.image_id)))
        .collect()
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
            ..Default::default()
        }
    }

    fn backup(id: &str, source: &str, age_h: i64, state: &str) -> Backup {
        Backup {
            image_id: id.into(),
            name: backup_name(source, 100 * H - age_h * H),
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
        let p = plan(&tagged, &backups, &HashSet::new(), now);
        assert_eq!(p.create, ["i-b", "i-d", "i-f"]);
        let retired: Vec<&str> = p.retire.iter().map(|b| b.image_id.as_str()).collect();
        assert_eq!(retired, vec!["b3", "b4"]);
        assert_eq!(p.problems.len(), 2);
        assert!(p.problems[0].contains("i-e") && p.problems[0].contains("hours"));
        assert!(p.problems[1].contains("i-f") && p.problems[1].contains("keeping 3"));
    }

    #[test]
    fn retention_touches_only_what_autoheal_made_and_nothing_under_repair() {
        let now = 100 * H;
        let mut foreign = backup("x1", "i-b", 200, "available");
        foreign.name = "my-own-golden-image".into();
        let backups = vec![
            backup("b1", "i-b", 30, "available"),
            backup("b2", "i-b", 54, "available"),
            foreign,
            backup("o1", "i-open", 30, "available"),
            backup("o2", "i-open", 60, "available"),
            backup("r1", "i-old", 30, "available"),
            backup("r2", "i-old", 60, "available"),
            backup("d1", "i-dry", 30, "available"),
            backup("d2", "i-dry", 60, "available"),
        ];
        let mode = |id: &str, v: &str| Tagged {
            mode_tag: Some(v.into()),
            ..tagged(id, "24", Some("1"))
        };
        let tagged = vec![
            tagged("i-b", "24", Some("1")),
            tagged("i-open", "24", Some("1")),
            Tagged {
                replaced_by: Some("i-copy".into()),
                ..tagged("i-old", "24", Some("1"))
            },
            mode("i-off", "OFF"),
            mode("i-notify", "notify"),
            mode("i-dry", "dry-run"),
        ];
        let open = HashSet::from(["i-open"]);
        let p = plan(&tagged, &backups, &open, now);
        assert_eq!(p.create, ["i-b"], "only the instance nobody holds back");
        let retired: Vec<&str> = p.retire.iter().map(|b| b.image_id.as_str()).collect();
        assert_eq!(
            retired,
            ["b2"],
            "never a foreign image, an open or replaced instance's"
        );
        assert_eq!(p.would, ["image i-dry", "deregister d2"]);
        assert_eq!(p.skipped.len(), 4, "{:?}", p.skipped);
        assert!(p.skipped[0].starts_with("i-open: an incident is open"));
        assert!(p.skipped[1].starts_with("i-old: replaced by i-copy"));
        assert!(p.skipped[2].starts_with("i-off: tag autoheal=OFF"));
    }

    #[test]
    fn names_are_per_instance_and_minute() {
        assert_eq!(
            backup_name("i-1", 1_795_403_565_123),
            "autoheal-backup-i-1-20261123T0312Z"
        );
    }
}
