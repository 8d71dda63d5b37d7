//! Periodic backup images (the operators' trick: once a first image exists, later ones are
//! incremental and fast, so the image taken at failure time is quick too): the pure plan
//! (the tick runs it: `pipeline::backup`; `aws::backup` reads and acts, `ledger::backups` keeps
//! the record).
//!
//! An instance tagged `autoheal:backup=<hours>` **and** carrying the deployer's selector tag
//! (`AUTOHEAL_BACKUP_SELECTOR`) gets an image (without reboot) when its newest backup is
//! older than that; the newest `autoheal:backup-keep` (default 3) available backups are
//! kept, older ones are deregistered and their snapshots deleted. Tags prove nothing (anyone
//! who may tag can write them): a backup is autoheal's only if its backup run recorded it in
//! the ledger when it asked EC2 for it (`Made`), and only those are rotated or relaunched
//! from; any other image tagged as a backup of the instance is left alone and named. Nothing
//! is taken or rotated for an instance with an open incident, one replaced by a copy, or one
//! whose latest incident did not close as recovered; the `autoheal` tag and dry run hold
//! every call back.

use crate::model::outcome::Verdict;
use crate::rules::incident::{Head, Status};
use crate::rules::policy::{self, Mode};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};

mod selector;
pub use selector::Selector;

pub const BACKUP_TAG: &str = "autoheal:backup";
pub const KEEP_TAG: &str = "autoheal:backup-keep";
pub const BACKUP_OF_TAG: &str = "autoheal:backup-of";
pub const DEFAULT_KEEP: usize = 3;

/// A recorded request whose image was never found is dropped after this long.
pub const PENDING_MS: i64 = 3_600_000;
/// A request this young may still be answered (a concurrent run's, or one whose answer was
/// lost): no second image is asked for meanwhile.
pub const IN_FLIGHT_MS: i64 = 10 * 60_000;
/// An image found under a request's name is the one asked for only if EC2 made it no
/// earlier than the request, give or take this much of clock difference.
pub const ADOPT_SKEW_MS: i64 = 5 * 60_000;
/// A record is written again once its TTL is this close, so the proof of the images it lists
/// outlives a long hold (no backups while an incident failed).
pub const RENEW_BEFORE_SECONDS: i64 = 10 * 24 * 3600;

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
    /// It carries the deployer's selector tag (never without a selector).
    pub selected: bool,
}

/// One image tagged as a backup of an instance (by whoever tagged it).
#[derive(Debug, Clone, PartialEq)]
pub struct Backup {
    pub image_id: String,
    pub name: String,
    /// Its `autoheal:backup-of` tag.
    pub source: String,
    /// The instance EC2 says it was made from (`SourceInstanceId`), when EC2 says.
    pub source_instance: Option<String>,
    pub created_ms: i64,
    /// pending, available, failed, ...
    pub state: String,
    pub snapshots: Vec<String>,
}

impl Backup {
    /// EC2 does not say it was made from another instance.
    fn may_be_from(&self, instance_id: &str) -> bool {
        self.source_instance
            .as_deref()
            .is_none_or(|s| s == instance_id)
    }
}

/// The ledger's record of what the backup run asked EC2 for, of one instance: the proof of
/// which images are autoheal's. Read as stored: its fields are the item's attributes
/// (`ledger::backups`), each absent one empty.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct Made {
    /// In the order asked for.
    pub images: Vec<Entry>,
    /// Images tagged as its backups that autoheal did not make, reported already.
    pub flagged: Vec<String>,
    /// The version read (0: no record); a write is conditional on it.
    pub version: i64,
    /// When DynamoDB's TTL removes it (epoch seconds; 0: no record).
    pub expires_at: i64,
}

/// One image the backup run asked for; its fields are the stored attributes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// The name it was asked for under (`backup_name`).
    pub name: String,
    /// None: asked for, EC2's answer not recorded (yet).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_id: Option<String>,
    /// When it was asked for.
    pub requested_ms: i64,
}

impl Made {
    /// The image ids recorded.
    pub fn recorded(&self) -> impl Iterator<Item = &str> {
        self.images.iter().filter_map(|e| e.image_id.as_deref())
    }

    /// Records EC2's answer to the request `name`.
    pub fn answered(&mut self, name: &str, image_id: &str, now_ms: i64) {
        if self.recorded().any(|r| r == image_id) {
            return;
        }
        match self
            .images
            .iter_mut()
            .find(|e| e.name == name && e.image_id.is_none())
        {
            Some(e) => e.image_id = Some(image_id.to_string()),
            // Its request was dropped meanwhile: the image is still the run's own.
            None => self.images.push(Entry {
                name: name.to_string(),
                image_id: Some(image_id.to_string()),
                requested_ms: now_ms,
            }),
        }
    }

    /// Forgets a retired image.
    pub fn forget(&mut self, image_id: &str) {
        self.images
            .retain(|e| e.image_id.as_deref() != Some(image_id));
    }
}

/// What the ledger knows of an instance tagged for backups: its latest incident and the
/// backup run's record.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Known {
    pub head: Option<Head>,
    pub made: Made,
}

/// Why the instance's latest incident keeps its backups as they are (no new one, none
/// retired), if it does: until it closed as recovered, the images from before it are the
/// last known good ones, and a new one might be of a broken instance.
pub fn held_back_by(head: Option<&Head>) -> Option<String> {
    let h = head?;
    let failed = h.result == Some(Verdict::Failed);
    let id = &h.incident_id;
    match h.status {
        Status::Closed if !failed => None,
        Status::Closed => Some(format!("incident {id} closed as failed")),
        Status::Settled if failed => Some(format!("incident {id} failed")),
        Status::Settled => Some(format!(
            "incident {id} is not closed yet ({})",
            match (h.action, h.result) {
                (Some(a), Some(r)) => format!("{} {}", a.as_str(), r.as_str()),
                _ => "settled".into(),
            }
        )),
        Status::Repairing => Some(format!("incident {id} is under repair")),
    }
}

/// The tick's plan: per instance, the record to write and the calls to make.
#[derive(Debug, Default, PartialEq)]
pub struct Plan {
    pub jobs: Vec<Job>,
    /// What a `dry-run` tag holds back: said, not done.
    pub would: Vec<String>,
    /// Instances left alone, and why.
    pub skipped: Vec<String>,
    /// Instances whose latest incident keeps their backups as they are, and why.
    pub held_back: Vec<String>,
    /// Tagged for backups, without the deployer's selector tag: left alone.
    pub unselected: Vec<String>,
    /// Images tagged as backups of a selected instance that its backup run never recorded:
    /// left alone, named every time.
    pub suspicious: Vec<String>,
    /// Tags that could not be read, said plainly.
    pub problems: Vec<String>,
}

/// One instance's work.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub instance_id: String,
    /// The record brought up to date with what EC2 lists (answers found, images gone
    /// dropped, new suspects flagged) and with the image about to be asked for.
    pub made: Made,
    /// `made` differs from the stored record: written before any call, on the version read.
    pub write: bool,
    /// The name to ask EC2 for an image under.
    pub create: Option<String>,
    pub retire: Vec<Backup>,
    /// What to report once the record holds them as flagged.
    pub newly_suspicious: Vec<String>,
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

/// `stored` brought up to date with the images EC2 lists: an answer lost after a request is
/// found under the request's name (an image `CreateImage` made from the instance after it); images no longer listed (retired, deregistered by
/// hand, untagged) or made from another instance are dropped; images tagged as the
/// instance's backups but not recorded are flagged.
fn reconcile<'a>(id: &str, stored: &Made, backups: &'a [Backup], now_ms: i64) -> Reconciled<'a> {
    let listed = |image: &str| backups.iter().find(|b| b.image_id == image);
    let mut made = Made {
        images: vec![],
        flagged: vec![],
        ..stored.clone()
    };
    for e in &stored.images {
        match &e.image_id {
            Some(image) => {
                if listed(image).is_some_and(|b| b.may_be_from(id)) {
                    made.images.push(e.clone());
                }
            }
            None => {
                // Made by CreateImage from this instance (EC2 says so), after the request.
                let answer = backups.iter().find(|b| {
                    b.name == e.name
                        && b.source == id
                        && b.source_instance.as_deref() == Some(id)
                        && b.created_ms >= e.requested_ms - ADOPT_SKEW_MS
                        && !made.recorded().any(|r| r == b.image_id)
                });
                match answer {
                    Some(b) => made.images.push(Entry {
                        image_id: Some(b.image_id.clone()),
                        ..e.clone()
                    }),
                    None if now_ms - e.requested_ms < PENDING_MS => made.images.push(e.clone()),
                    None => {}
                }
            }
        }
    }
    let own: Vec<(&Backup, i64)> = made
        .images
        .iter()
        .filter_map(|e| Some((listed(e.image_id.as_deref()?)?, e.requested_ms)))
        .collect();
    let suspicious: Vec<&Backup> = backups
        .iter()
        .filter(|b| b.source == id && !own.iter().any(|(o, _)| o.image_id == b.image_id))
        .collect();
    let new: Vec<&Backup> = suspicious
        .iter()
        .filter(|b| !stored.flagged.contains(&b.image_id))
        .copied()
        .collect();
    made.flagged = suspicious.iter().map(|b| b.image_id.clone()).collect();
    Reconciled {
        made,
        own,
        suspicious,
        new,
    }
}

/// A record brought up to date (`reconcile`).
struct Reconciled<'a> {
    made: Made,
    /// Its own images, with when the run asked for each (its clock orders them).
    own: Vec<(&'a Backup, i64)>,
    /// Images tagged as its backups it did not make ...
    suspicious: Vec<&'a Backup>,
    /// ... and those of them not flagged before.
    new: Vec<&'a Backup>,
}

/// Backups of instances no longer tagged or selected, or no longer existing, are never
/// touched: they may be the only copy left. `known`: by instance id, what the ledger knows
/// of the selected ones; `open`: instances with an open incident.
pub fn plan(
    tagged: &[Tagged],
    backups: &[Backup],
    known: &HashMap<String, Known>,
    open: &HashSet<&str>,
    now_ms: i64,
) -> Plan {
    let mut plan = Plan::default();
    let nothing = Known::default();
    for t in tagged {
        let id = &t.instance_id;
        if !t.selected {
            plan.unselected.push(id.clone());
            continue;
        }
        let known = known.get(id).unwrap_or(&nothing);
        let Reconciled {
            made,
            own,
            suspicious,
            new,
        } = reconcile(id, &known.made, backups, now_ms);
        for b in &suspicious {
            plan.suspicious
                .push(format!("{} ({:?}) of {id}", b.image_id, b.name));
        }
        let newly_suspicious = new
            .iter()
            .map(|b| {
                format!(
                    "{}: image {:?} is tagged {BACKUP_OF_TAG}={id} but autoheal's backup run never recorded it{}: left alone, never relaunched from nor deleted; find out who made it",
                    b.image_id,
                    b.name,
                    b.source_instance
                        .as_deref()
                        .filter(|s| s != id)
                        .map_or(String::new(), |s| format!(" (EC2 says it was made from {s})"))
                )
            })
            .collect();
        let mut job = Job {
            instance_id: id.clone(),
            made,
            write: false,
            create: None,
            retire: vec![],
            newly_suspicious,
        };
        calls(t, known, &own, now_ms, &mut job, &mut plan, open);
        let renew =
            known.made.version > 0 && known.made.expires_at - now_ms / 1000 < RENEW_BEFORE_SECONDS;
        job.write = job.made != known.made || renew;
        if job.write || job.create.is_some() || !job.retire.is_empty() {
            plan.jobs.push(job);
        }
    }
    plan
}

/// The calls for one selected instance (into `job`), or why none.
fn calls(
    t: &Tagged,
    known: &Known,
    own: &[(&Backup, i64)],
    now_ms: i64,
    job: &mut Job,
    plan: &mut Plan,
    open: &HashSet<&str>,
) {
    let id = &t.instance_id;
    let tags: BTreeMap<String, String> = t
        .mode_tag
        .iter()
        .map(|v| (policy::MODE_TAG.to_string(), v.clone()))
        .collect();
    let mode = policy::policy_for(false, &tags, None).mode;
    let left_alone = left_alone(t, open, mode);
    if let Some(why) = left_alone {
        plan.skipped.push(format!("{id}: {why}"));
        return;
    }
    if let Some(why) = held_back_by(known.head.as_ref()) {
        plan.held_back.push(format!("{id} ({why})"));
        return;
    }
    let Some(hours) = positive::<f64>(&t.backup_tag) else {
        plan.problems.push(format!(
            "{id}: {BACKUP_TAG}={:?} is not a positive number of hours",
            t.backup_tag
        ));
        return;
    };
    let keep = keep_count(t, plan);
    let mut own = own.to_vec();
    own.sort_by_key(|(_, asked_ms)| std::cmp::Reverse(*asked_ms));
    let newest = own
        .iter()
        .find(|(b, _)| b.state == "available" || b.state == "pending");
    // A request not answered yet may still be: a second one would be a second image.
    let asked = job
        .made
        .images
        .iter()
        .any(|e| e.image_id.is_none() && now_ms - e.requested_ms < IN_FLIGHT_MS);
    // A backup still being taken is not followed by another (a first image of a large
    // volume can take over half an hour).
    let due = !asked
        && match newest {
            None => true,
            Some((b, _)) if b.state == "pending" => false,
            Some((_, asked_ms)) => (now_ms - asked_ms) as f64 >= hours * 3_600_000.0,
        };
    let retire: Vec<Backup> = own
        .iter()
        .filter(|(b, _)| b.state == "available")
        .skip(keep)
        .map(|(b, _)| (*b).clone())
        .collect();
    if mode == Mode::DryRun {
        let create = if due { vec![id.clone()] } else { vec![] };
        plan.would.extend(would(&create, &retire));
        return;
    }
    if due {
        let name = backup_name(id, now_ms);
        job.made.images.push(Entry {
            name: name.clone(),
            image_id: None,
            requested_ms: now_ms,
        });
        job.create = Some(name);
    }
    job.retire = retire;
}

/// Why the backup run leaves the instance alone, if it does: an open incident, replaced
/// by a copy, or its `autoheal` tag says off or notify.
fn left_alone(t: &Tagged, open: &HashSet<&str>, mode: Mode) -> Option<String> {
    if open.contains(t.instance_id.as_str()) {
        Some("an incident is open: its images are evidence, no backup until it closes".to_string())
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
    }
}

/// `autoheal:backup-keep`, or the default with a problem said.
fn keep_count(t: &Tagged, plan: &mut Plan) -> usize {
    let id = &t.instance_id;
    match &t.keep_tag {
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
    }
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
    use crate::model::outcome::Action;
    use crate::rules::incident::AlarmContext;

    const H: i64 = 3_600_000;
    const NOW: i64 = 100 * H;

    fn tagged(id: &str, every: &str, keep: Option<&str>) -> Tagged {
        Tagged {
            instance_id: id.into(),
            backup_tag: every.into(),
            keep_tag: keep.map(str::to_string),
            selected: true,
            ..Default::default()
        }
    }

    fn backup(id: &str, source: &str, age_h: i64, state: &str) -> Backup {
        Backup {
            image_id: id.into(),
            name: backup_name(source, NOW - age_h * H),
            source: source.into(),
            source_instance: Some(source.into()),
            created_ms: NOW - age_h * H,
            state: state.into(),
            snapshots: vec![format!("snap-{id}")],
        }
    }

    /// The ledger's record of `images`, each asked for when EC2 says it was made.
    fn made(backups: &[Backup], images: &[&str]) -> Made {
        Made {
            images: images
                .iter()
                .map(|i| {
                    let b = backups.iter().find(|b| b.image_id == *i).unwrap();
                    Entry {
                        name: b.name.clone(),
                        image_id: Some(b.image_id.clone()),
                        requested_ms: b.created_ms,
                    }
                })
                .collect(),
            flagged: vec![],
            version: 1,
            expires_at: NOW / 1000 + 30 * 24 * 3600,
        }
    }

    /// Every backup listed recorded for its instance.
    fn all_recorded(backups: &[Backup]) -> HashMap<String, Known> {
        let mut known: HashMap<String, Known> = HashMap::new();
        for b in backups {
            let k = known.entry(b.source.clone()).or_default();
            let m = made(backups, &[&b.image_id]);
            k.made.images.extend(m.images);
            k.made.version = 1;
            k.made.expires_at = m.expires_at;
        }
        known
    }

    fn ids(p: &Plan) -> (Vec<String>, Vec<String>) {
        let created = p
            .jobs
            .iter()
            .filter(|j| j.create.is_some())
            .map(|j| j.instance_id.clone())
            .collect();
        let retired = p
            .jobs
            .iter()
            .flat_map(|j| j.retire.iter().map(|b| b.image_id.clone()))
            .collect();
        (created, retired)
    }

    fn head(status: Status, action: Action, result: Verdict) -> Head {
        Head {
            instance_id: "i-h".into(),
            incident_id: "i-h-20261123T031245Z".into(),
            status,
            opened_ms: NOW - H,
            alarm_ms: NOW - H,
            closed_ms: (status == Status::Closed).then_some(NOW - H / 2),
            transitions: vec![],
            lease_until_ms: 0,
            version: 3,
            attempts: 1,
            action: Some(action),
            result: Some(result),
            reason: None,
            group: None,
            alarm: AlarmContext::default(),
            progress: Default::default(),
            hold_until_ms: None,
            rungs: vec![],
            hold_kind: None,
            hold_scope: None,
            member_steps: vec![],
            ec2_heard: vec![],
        }
    }

    #[test]
    fn plan_table() {
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
        let p = plan(
            &tagged,
            &backups,
            &all_recorded(&backups),
            &HashSet::new(),
            NOW,
        );
        let (created, retired) = ids(&p);
        assert_eq!(created, ["i-b", "i-d", "i-f"]);
        assert_eq!(retired, ["b3", "b4"]);
        assert_eq!(p.problems.len(), 2);
        assert!(p.problems[0].contains("i-e") && p.problems[0].contains("hours"));
        assert!(p.problems[1].contains("i-f") && p.problems[1].contains("keeping 3"));
        assert!(p.suspicious.is_empty(), "{:?}", p.suspicious);
        // The request is in the record before the call: written first, on the version read.
        let d = p.jobs.iter().find(|j| j.instance_id == "i-d").unwrap();
        assert!(d.write);
        assert_eq!(d.create.as_deref(), Some(backup_name("i-d", NOW).as_str()));
        assert_eq!(
            d.made.images,
            [Entry {
                name: backup_name("i-d", NOW),
                image_id: None,
                requested_ms: NOW
            }]
        );
    }

    #[test]
    fn retention_touches_only_what_autoheal_made_and_nothing_under_repair() {
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
        let mut known = all_recorded(&backups);
        known.get_mut("i-b").unwrap().made.forget("x1");
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
        let p = plan(&tagged, &backups, &known, &open, NOW);
        let (created, retired) = ids(&p);
        assert_eq!(created, ["i-b"], "only the instance nobody holds back");
        assert_eq!(
            retired,
            ["b2"],
            "never a foreign image, an open or replaced instance's"
        );
        assert_eq!(p.suspicious, [r#"x1 ("my-own-golden-image") of i-b"#]);
        assert_eq!(p.would, ["image i-dry", "deregister d2"]);
        assert_eq!(p.skipped.len(), 4, "{:?}", p.skipped);
        assert!(p.skipped[0].starts_with("i-open: an incident is open"));
        assert!(p.skipped[1].starts_with("i-old: replaced by i-copy"));
        assert!(p.skipped[2].starts_with("i-off: tag autoheal=OFF"));
    }

    /// Someone who may tag and image plants an image of another instance as the victim's
    /// newest backup: it is neither the backup the victim is judged by, nor rotated out,
    /// and it is named, once as a problem.
    #[test]
    fn a_planted_image_is_not_a_backup_and_is_named() {
        let mut planted = backup("evil", "i-v", 0, "available");
        planted.source_instance = Some("i-attacker".into());
        let mut untraced = backup("registered", "i-v", 1, "available");
        untraced.source_instance = None;
        let backups = vec![
            planted,
            untraced,
            backup("v1", "i-v", 30, "available"),
            backup("v2", "i-v", 54, "available"),
        ];
        let mut known = HashMap::from([(
            "i-v".to_string(),
            Known {
                head: None,
                made: made(&backups, &["v1", "v2"]),
            },
        )]);
        let tagged = vec![tagged("i-v", "24", Some("1"))];
        let p = plan(&tagged, &backups, &known, &HashSet::new(), NOW);
        let (created, retired) = ids(&p);
        assert_eq!(created, ["i-v"], "due: its own newest backup is 30 h old");
        assert_eq!(retired, ["v2"], "only its own, beyond the newest one");
        assert_eq!(p.suspicious.len(), 2, "{:?}", p.suspicious);
        let job = &p.jobs[0];
        assert_eq!(job.made.flagged, ["evil", "registered"]);
        assert_eq!(job.newly_suspicious.len(), 2);
        assert!(
            job.newly_suspicious[0].starts_with("evil: image")
                && job.newly_suspicious[0].contains("made from i-attacker")
                && job.newly_suspicious[0].contains("never recorded"),
            "{}",
            job.newly_suspicious[0]
        );
        // Flagged once: named every time, reported no more.
        known.get_mut("i-v").unwrap().made.flagged = job.made.flagged.clone();
        let p = plan(&tagged, &backups, &known, &HashSet::new(), NOW);
        assert_eq!(p.suspicious.len(), 2);
        assert!(p.jobs[0].newly_suspicious.is_empty());
        // A record naming an image EC2 says was made from another instance is not proof.
        known.get_mut("i-v").unwrap().made = made(&backups, &["evil", "v1"]);
        let p = plan(&tagged, &backups, &known, &HashSet::new(), NOW);
        assert_eq!(p.jobs[0].made.recorded().collect::<Vec<_>>(), ["v1"]);
        assert_eq!(p.jobs[0].made.flagged, ["evil", "registered", "v2"]);
    }

    #[test]
    fn the_record_finds_lost_answers_and_drops_what_is_gone() {
        let backups = vec![
            backup("late", "i-a", 0, "pending"),
            // Made before the request under the name it was going to use.
            Backup {
                name: backup_name("i-b", NOW - H),
                ..backup("squat", "i-b", 2, "available")
            },
            // Registered from snapshots under a request's name: EC2 names no instance.
            Backup {
                name: "registered-name".into(),
                source_instance: None,
                ..backup("registered", "i-e", 0, "available")
            },
        ];
        let asked = |name: &str, at: i64| Entry {
            name: name.into(),
            image_id: None,
            requested_ms: at,
        };
        let record = |images: Vec<Entry>| Known {
            head: None,
            made: Made {
                images,
                flagged: vec![],
                version: 4,
                expires_at: NOW / 1000 + 30 * 24 * 3600,
            },
        };
        let known = HashMap::from([
            (
                "i-a".to_string(),
                record(vec![
                    asked(&backups[0].name, NOW - 60_000),
                    Entry {
                        image_id: Some("retired-by-hand".into()),
                        ..asked("old", NOW - 50 * H)
                    },
                ]),
            ),
            (
                "i-b".to_string(),
                record(vec![asked(&backups[1].name, NOW - H)]),
            ),
            ("i-c".to_string(), record(vec![asked("never", NOW - 2 * H)])),
            (
                "i-d".to_string(),
                record(vec![asked("in-flight", NOW - 60_000)]),
            ),
            (
                "i-e".to_string(),
                record(vec![asked("registered-name", NOW - 60_000)]),
            ),
        ]);
        let tagged: Vec<Tagged> = ["i-a", "i-b", "i-c", "i-d", "i-e"]
            .into_iter()
            .map(|id| tagged(id, "24", None))
            .collect();
        let p = plan(&tagged, &backups, &known, &HashSet::new(), NOW);
        let job = |id: &str| p.jobs.iter().find(|j| j.instance_id == id).unwrap();
        // The answer under the request's name, made after it: the run's own, pending.
        assert_eq!(job("i-a").made.recorded().collect::<Vec<_>>(), ["late"]);
        assert!(job("i-a").write && job("i-a").create.is_none());
        // An image under that name made before the request is not the one asked for.
        assert_eq!(job("i-b").made.flagged, ["squat"]);
        assert_eq!(job("i-b").create, Some(backup_name("i-b", NOW)));
        // A request never answered within the hour is dropped; a new one is due.
        assert_eq!(job("i-c").made.images.len(), 1);
        assert_eq!(job("i-c").made.images[0].requested_ms, NOW);
        // A request a minute old may still be answered: no second one meanwhile.
        assert!(p.jobs.iter().all(|j| j.instance_id != "i-d"));
        // Only an image CreateImage made from the instance answers a request.
        assert_eq!(job("i-e").made.recorded().count(), 0);
        assert_eq!(job("i-e").made.flagged, ["registered"]);
    }

    #[test]
    fn the_latest_incident_must_have_closed_as_recovered() {
        let backups = vec![
            backup("h1", "i-h", 30, "available"),
            backup("h2", "i-h", 54, "available"),
        ];
        let tagged = vec![tagged("i-h", "24", Some("1"))];
        let with = |h: Option<Head>| {
            let known = HashMap::from([(
                "i-h".to_string(),
                Known {
                    head: h,
                    made: made(&backups, &["h1", "h2"]),
                },
            )]);
            plan(&tagged, &backups, &known, &HashSet::new(), NOW)
        };
        let (closed, settled) = (Status::Closed, Status::Settled);
        for (h, held) in [
            (None, None),
            (Some(head(closed, Action::Verify, Verdict::Done)), None),
            // Closed untouched (recovered by itself, or never confirmed by EC2).
            (Some(head(closed, Action::None, Verdict::Held)), None),
            (
                Some(head(closed, Action::CreateImage, Verdict::Failed)),
                Some("closed as failed"),
            ),
            (
                Some(head(settled, Action::LaunchReplacement, Verdict::Failed)),
                Some("i-h-20261123T031245Z failed"),
            ),
            (
                Some(head(settled, Action::Reboot, Verdict::Done)),
                Some("is not closed yet (reboot done)"),
            ),
            (
                Some(head(
                    Status::Repairing,
                    Action::CreateImage,
                    Verdict::InProgress,
                )),
                Some("is under repair"),
            ),
        ] {
            let what = format!("{:?}", h.as_ref().map(|h| (h.status, h.result)));
            let p = with(h);
            match held {
                None => {
                    assert_eq!(ids(&p), (vec!["i-h".into()], vec!["h2".into()]), "{what}");
                    assert!(p.held_back.is_empty(), "{what}");
                }
                Some(why) => {
                    assert!(p.jobs.is_empty(), "{what}: {:?}", p.jobs);
                    assert_eq!(p.held_back.len(), 1, "{what}");
                    assert!(p.held_back[0].contains(why), "{what}: {:?}", p.held_back);
                }
            }
        }
    }

    #[test]
    fn only_selected_instances_and_records_renewed_before_they_expire() {
        let backups = vec![backup("a1", "i-a", 1, "available")];
        let mut known = all_recorded(&backups);
        let tagged = vec![
            tagged("i-a", "24", None),
            Tagged {
                selected: false,
                ..tagged("i-tagged-by-anyone", "1", None)
            },
        ];
        let p = plan(&tagged, &backups, &known, &HashSet::new(), NOW);
        assert!(p.jobs.is_empty(), "{:?}", p.jobs);
        assert_eq!(p.unselected, ["i-tagged-by-anyone"]);
        known.get_mut("i-a").unwrap().made.expires_at = NOW / 1000 + 24 * 3600;
        let p = plan(&tagged, &backups, &known, &HashSet::new(), NOW);
        assert_eq!(p.jobs.len(), 1);
        assert!(p.jobs[0].write && p.jobs[0].create.is_none());
    }

    #[test]
    fn selectors_are_a_key_and_a_value_of_the_deployers() {
        let s = Selector::parse(" backup-approved = yes ").unwrap();
        assert_eq!(s.to_string(), "backup-approved=yes");
        assert!(s.selects(|k| (k == "backup-approved").then_some("yes")));
        assert!(!s.selects(|k| (k == "backup-approved").then_some("YES")));
        assert!(!s.selects(|_| None));
        let long = format!("{}=1", "k".repeat(129));
        for bad in [
            "yes",
            "=yes",
            "k=",
            "autoheal=on",
            "autoheal:backup=1",
            long.as_str(),
        ] {
            assert!(Selector::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_are_per_instance_and_minute() {
        assert_eq!(
            backup_name("i-1", 1_795_403_565_123),
            "autoheal-backup-i-1-20261123T0312Z"
        );
    }
}
