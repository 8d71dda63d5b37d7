//! `audit`, the pure part: from what the fleet reads returned, the instances that will hurt
//! when they fail (or that autoheal cannot help), each with a severity and a reason.

use autoheal::rules::backup::{Backup, BACKUP_TAG};
use autoheal::rules::policy::{policy_for, Mode};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};

/// An instance as the fleet read sees it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Instance {
    pub instance_id: String,
    pub state: String,
    pub instance_type: String,
    pub image_id: String,
    pub virtualization: String,
    pub kernel_id: Option<String>,
    pub root_device_type: String,
    pub tags: BTreeMap<String, String>,
}

/// A scheduled EC2 event of an instance.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub code: String,
    pub description: String,
    pub not_before: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// `--fail-on`: the lowest severity that makes the audit exit non-zero, or never.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailOn(pub Option<Severity>);

impl std::str::FromStr for FailOn {
    type Err = String;
    fn from_str(s: &str) -> Result<FailOn, String> {
        Ok(FailOn(match s {
            "info" => Some(Severity::Info),
            "warning" => Some(Severity::Warning),
            "critical" => Some(Severity::Critical),
            "never" => None,
            _ => return Err(format!("{s:?}: use info, warning, critical or never")),
        }))
    }
}

impl FailOn {
    pub fn fails(self, findings: &[Finding]) -> bool {
        self.0
            .is_some_and(|min| findings.iter().any(|f| f.severity >= min))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub severity: Severity,
    pub kind: &'static str,
    pub instance_id: String,
    pub name: String,
    pub detail: String,
}

/// A PV-GRUB kernel: instances on it may not come back from a reboot.
pub use autoheal::model::facts::RISKY_KERNEL;

/// Everything the findings are computed from.
#[derive(Debug, Default)]
pub struct Inventory {
    pub instances: Vec<Instance>,
    /// Instances some alarm watches the status checks of.
    pub watched: HashSet<String>,
    /// Image id -> its ephemeral (instance-store) mappings; absent: image gone.
    pub image_ephemeral: HashMap<String, Vec<String>>,
    /// Instance type -> has instance-store volumes.
    pub type_has_instance_store: HashMap<String, bool>,
    pub backups: Vec<Backup>,
    pub events: HashMap<String, Vec<Event>>,
    /// Auto Scaling group -> its `autoheal` tag.
    pub group_modes: HashMap<String, String>,
    pub now_ms: i64,
}

const GROUP_TAG: &str = "aws:autoscaling:groupName";

/// The instances an audit looks at: all but the terminated (and terminating) ones.
pub fn audited(inv: &Inventory) -> impl Iterator<Item = &Instance> {
    inv.instances
        .iter()
        .filter(|i| !matches!(i.state.as_str(), "terminated" | "shutting-down"))
}

pub fn findings(inv: &Inventory) -> Vec<Finding> {
    let mut out = vec![];
    for i in audited(inv) {
        let found = [watch_and_boot(inv, i), mode(inv, i), scheduled(inv, i)].concat();
        out.extend(found.into_iter().map(|(severity, kind, detail)| Finding {
            severity,
            kind,
            instance_id: i.instance_id.clone(),
            name: i.tags.get("Name").cloned().unwrap_or_default(),
            detail,
        }));
    }
    out.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(a.kind.cmp(b.kind))
            .then(a.instance_id.cmp(&b.instance_id))
    });
    out
}

/// A finding before it is named: severity, kind, detail.
type Found = (Severity, &'static str, String);

/// Whether autoheal hears of the instance, and what would keep it from coming back.
fn watch_and_boot(inv: &Inventory, i: &Instance) -> Vec<Found> {
    let mut out = vec![];
    let mut add = |severity, kind, detail: String| out.push((severity, kind, detail));
    if matches!(i.state.as_str(), "running" | "pending") && !inv.watched.contains(&i.instance_id) {
        add(
            Severity::Warning,
            "no-alarm",
            "no StatusCheckFailed alarm watches it: autoheal never hears of its failure (run `autoheal-admin alarms sync`)".into(),
        );
    }
    if i.virtualization == "paravirtual" {
        add(
            Severity::Critical,
            "reboot-risk",
            "paravirtual: may not come back from a reboot or stop/start; migrate to HVM".into(),
        );
    }
    if i.kernel_id.as_deref() == Some(RISKY_KERNEL) {
        add(
            Severity::Critical,
            "reboot-risk",
            format!(
                "kernel {RISKY_KERNEL}: known not to boot after a reboot; move to a current image"
            ),
        );
    }
    if inv.type_has_instance_store.get(&i.instance_type) == Some(&false) {
        if let Some(mappings) = inv
            .image_ephemeral
            .get(&i.image_id)
            .filter(|m| !m.is_empty())
        {
            add(
                Severity::Warning,
                "recovery-blocked",
                format!(
                    "image {} maps {} but {} has no instance store: EC2 automatic recovery will not act",
                    i.image_id,
                    mappings.join(", "),
                    i.instance_type
                ),
            );
        }
    }
    if i.root_device_type == "instance-store" {
        add(
            Severity::Warning,
            "instance-store-root",
            "root device is instance store: it cannot be imaged, so autoheal cannot relaunch it"
                .into(),
        );
    }
    if let Some(hours) = i.tags.get(BACKUP_TAG) {
        if let Some(detail) = stale_backup(inv, &i.instance_id, hours) {
            add(Severity::Warning, "stale-backup", detail);
        }
    }
    out
}

/// The `autoheal` tag (the instance's, or its group's): what autoheal may do.
fn mode(inv: &Inventory, i: &Instance) -> Vec<Found> {
    let mut out = vec![];
    let mut add = |severity, kind, detail: String| out.push((severity, kind, detail));
    let group_tags: Option<BTreeMap<String, String>> = i.tags.get(GROUP_TAG).map(|g| {
        inv.group_modes
            .get(g)
            .map(|v| (autoheal::rules::policy::MODE_TAG.to_string(), v.clone()))
            .into_iter()
            .collect()
    });
    let policy = policy_for(false, &i.tags, group_tags.as_ref());
    match policy.mode {
        Mode::Off => add(
            Severity::Info,
            "opted-out",
            format!("{}: never repaired", policy.source),
        ),
        Mode::Notify => add(
            Severity::Info,
            "opted-out",
            format!("{}: reported, never repaired", policy.source),
        ),
        Mode::DryRun => add(
            Severity::Info,
            "opted-out",
            format!("{}: dry run only", policy.source),
        ),
        Mode::Act => {}
    }
    out
}

/// EC2's scheduled events still to come.
fn scheduled(inv: &Inventory, i: &Instance) -> Vec<Found> {
    let mut out = vec![];
    let mut add = |severity, kind, detail: String| out.push((severity, kind, detail));
    for e in inv.events.get(&i.instance_id).into_iter().flatten() {
        // AWS keeps finished events listed, marked in the description.
        if e.description.starts_with("[Completed]") || e.description.starts_with("[Canceled]") {
            continue;
        }
        let severity = if e.code.contains("retirement") || e.code == "instance-stop" {
            Severity::Critical
        } else {
            Severity::Warning
        };
        add(
            severity,
            "scheduled-event",
            format!(
                "{} not before {}: {}",
                e.code,
                e.not_before.as_deref().unwrap_or("unknown"),
                e.description
            ),
        );
    }
    out
}

fn stale_backup(inv: &Inventory, instance_id: &str, hours_tag: &str) -> Option<String> {
    let Some(hours) = hours_tag.trim().parse::<f64>().ok().filter(|h| *h > 0.0) else {
        return Some(format!(
            "{BACKUP_TAG}={hours_tag:?} is not a positive number of hours: no backups are taken"
        ));
    };
    let newest = inv
        .backups
        .iter()
        .filter(|b| b.source == instance_id && b.state == "available")
        .map(|b| b.created_ms)
        .max();
    let limit_ms = hours * 3_600_000.0;
    match newest {
        None => Some(format!(
            "asks for a backup every {hours_tag} h; none is available"
        )),
        Some(t) if (inv.now_ms - t) as f64 > limit_ms => Some(format!(
            "asks for a backup every {hours_tag} h; the newest is {:.1} h old",
            (inv.now_ms - t) as f64 / 3_600_000.0
        )),
        Some(_) => None,
    }
}

pub fn counts(findings: &[Finding]) -> BTreeMap<&'static str, usize> {
    let mut c: BTreeMap<&'static str, usize> =
        [Severity::Critical, Severity::Warning, Severity::Info]
            .iter()
            .map(|s| (s.as_str(), 0))
            .collect();
    for f in findings {
        *c.entry(f.severity.as_str()).or_default() += 1;
    }
    c
}

pub fn render_table(findings: &[Finding], scanned: usize) -> String {
    let header = ["SEVERITY", "FINDING", "INSTANCE", "NAME", "DETAIL"];
    let rows: Vec<[String; 5]> = findings
        .iter()
        .map(|f| {
            [
                f.severity.as_str().to_string(),
                f.kind.to_string(),
                f.instance_id.clone(),
                f.name.clone(),
                f.detail.clone(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 5]| {
        let mut s = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i == 4 {
                s += cell;
            } else {
                s += &format!("{cell:<w$}  ", w = widths[i]);
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = String::new();
    if !rows.is_empty() {
        out += &line(header);
        for r in &rows {
            out += &line([&r[0], &r[1], &r[2], &r[3], &r[4]]);
        }
    }
    let c = counts(findings);
    out += &format!(
        "{scanned} instances scanned: {} critical, {} warning, {} info\n",
        c["critical"], c["warning"], c["info"]
    );
    out
}

pub fn render_json(findings: &[Finding], scanned: usize) -> String {
    serde_json::json!({
        "scanned": scanned,
        "counts": counts(findings),
        "findings": findings,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000;
    const NOW: i64 = 1_000 * HOUR;

    fn inst(id: &str) -> Instance {
        Instance {
            instance_id: id.into(),
            state: "running".into(),
            instance_type: "m5.large".into(),
            image_id: "ami-1".into(),
            virtualization: "hvm".into(),
            root_device_type: "ebs".into(),
            ..Instance::default()
        }
    }

    fn with(mut i: Instance, f: impl FnOnce(&mut Instance)) -> Instance {
        f(&mut i);
        i
    }

    fn tagged(i: Instance, k: &str, v: &str) -> Instance {
        with(i, |i| {
            i.tags.insert(k.into(), v.into());
        })
    }

    fn backup(source: &str, age_h: i64, state: &str) -> Backup {
        Backup {
            image_id: format!("ami-b{age_h}"),
            name: autoheal::rules::backup::backup_name(source, NOW - age_h * HOUR),
            source: source.into(),
            source_instance: Some(source.into()),
            created_ms: NOW - age_h * HOUR,
            state: state.into(),
            snapshots: vec![],
        }
    }

    /// A world where `i` is watched and nothing else is wrong, changed by `f`.
    fn audit(i: Instance, f: impl FnOnce(&mut Inventory)) -> Vec<(Severity, &'static str, String)> {
        let mut inv = Inventory {
            watched: [i.instance_id.clone()].into(),
            image_ephemeral: [("ami-1".to_string(), vec![])].into(),
            type_has_instance_store: [
                ("m5.large".to_string(), false),
                ("m5d.large".to_string(), true),
            ]
            .into(),
            now_ms: NOW,
            instances: vec![i],
            ..Inventory::default()
        };
        f(&mut inv);
        findings(&inv)
            .into_iter()
            .map(|f| (f.severity, f.kind, f.detail))
            .collect()
    }

    fn kinds(v: &[(Severity, &'static str, String)]) -> Vec<(Severity, &'static str)> {
        v.iter().map(|(s, k, _)| (*s, *k)).collect()
    }

    #[test]
    fn findings_table() {
        use Severity::*;
        let ephemeral = |inv: &mut Inventory| {
            inv.image_ephemeral
                .insert("ami-1".into(), vec!["ephemeral0 on /dev/sdb".into()]);
        };
        let event = |code: &str, description: &str| {
            let (code, description) = (code.to_string(), description.to_string());
            move |inv: &mut Inventory| {
                inv.events.insert(
                    "i-1".into(),
                    vec![Event {
                        code,
                        description,
                        not_before: Some("2026-12-01T00:00:00Z".into()),
                    }],
                );
            }
        };
        let cases: Vec<(&str, Vec<(Severity, &str)>)> = vec![
            (
                "healthy, watched instance: nothing",
                kinds(&audit(inst("i-1"), |_| {})),
            ),
            (
                "unwatched running instance",
                kinds(&audit(inst("i-1"), |inv| inv.watched.clear())),
            ),
            (
                "unwatched stopped instance: no checks to alarm on",
                kinds(&audit(
                    with(inst("i-1"), |i| i.state = "stopped".into()),
                    |inv| inv.watched.clear(),
                )),
            ),
            (
                "terminated instances are not audited",
                kinds(&audit(
                    with(inst("i-1"), |i| i.state = "terminated".into()),
                    |inv| inv.watched.clear(),
                )),
            ),
            (
                "paravirtual",
                kinds(&audit(
                    with(inst("i-1"), |i| i.virtualization = "paravirtual".into()),
                    |_| {},
                )),
            ),
            (
                "risky kernel",
                kinds(&audit(
                    with(inst("i-1"), |i| i.kernel_id = Some(RISKY_KERNEL.into())),
                    |_| {},
                )),
            ),
            (
                "other kernel",
                kinds(&audit(
                    with(inst("i-1"), |i| i.kernel_id = Some("aki-00000000".into())),
                    |_| {},
                )),
            ),
            (
                "EBS-only type, image maps ephemeral",
                kinds(&audit(inst("i-1"), ephemeral)),
            ),
            (
                "instance-store type, image maps ephemeral: fine",
                kinds(&audit(
                    with(inst("i-1"), |i| i.instance_type = "m5d.large".into()),
                    ephemeral,
                )),
            ),
            (
                "unknown type: no claim",
                kinds(&audit(
                    with(inst("i-1"), |i| i.instance_type = "x9.huge".into()),
                    ephemeral,
                )),
            ),
            (
                "instance-store root",
                kinds(&audit(
                    with(inst("i-1"), |i| {
                        i.root_device_type = "instance-store".into()
                    }),
                    |_| {},
                )),
            ),
            (
                "backup fresh",
                kinds(&audit(tagged(inst("i-1"), BACKUP_TAG, "24"), |inv| {
                    inv.backups = vec![backup("i-1", 3, "available")]
                })),
            ),
            (
                "backup stale",
                kinds(&audit(tagged(inst("i-1"), BACKUP_TAG, "24"), |inv| {
                    inv.backups = vec![backup("i-1", 30, "available"), backup("i-1", 1, "failed")]
                })),
            ),
            (
                "backup missing (another instance's does not count)",
                kinds(&audit(tagged(inst("i-1"), BACKUP_TAG, "24"), |inv| {
                    inv.backups = vec![backup("i-2", 1, "available")]
                })),
            ),
            (
                "backup tag unreadable",
                kinds(&audit(tagged(inst("i-1"), BACKUP_TAG, "daily"), |_| {})),
            ),
            (
                "opted out on the instance",
                kinds(&audit(tagged(inst("i-1"), "autoheal", "off"), |_| {})),
            ),
            (
                "report-only on the group",
                kinds(&audit(tagged(inst("i-1"), GROUP_TAG, "g"), |inv| {
                    inv.group_modes.insert("g".into(), "notify".into());
                })),
            ),
            (
                "group without the tag: acts",
                kinds(&audit(tagged(inst("i-1"), GROUP_TAG, "g"), |_| {})),
            ),
            (
                "retirement scheduled",
                kinds(&audit(
                    inst("i-1"),
                    event(
                        "instance-retirement",
                        "The instance is running on degraded hardware",
                    ),
                )),
            ),
            (
                "reboot scheduled",
                kinds(&audit(
                    inst("i-1"),
                    event("system-reboot", "scheduled reboot"),
                )),
            ),
            (
                "completed event ignored",
                kinds(&audit(
                    inst("i-1"),
                    event("system-reboot", "[Completed] scheduled reboot"),
                )),
            ),
        ];
        let want: Vec<Vec<(Severity, &str)>> = vec![
            vec![],
            vec![(Warning, "no-alarm")],
            vec![],
            vec![],
            vec![(Critical, "reboot-risk")],
            vec![(Critical, "reboot-risk")],
            vec![],
            vec![(Warning, "recovery-blocked")],
            vec![],
            vec![],
            vec![(Warning, "instance-store-root")],
            vec![],
            vec![(Warning, "stale-backup")],
            vec![(Warning, "stale-backup")],
            vec![(Warning, "stale-backup")],
            vec![(Info, "opted-out")],
            vec![(Info, "opted-out")],
            vec![],
            vec![(Critical, "scheduled-event")],
            vec![(Warning, "scheduled-event")],
            vec![],
        ];
        assert_eq!(cases.len(), want.len());
        for ((what, got), want) in cases.into_iter().zip(want) {
            assert_eq!(got, want, "{what}");
        }
    }

    #[test]
    fn details_say_why() {
        let stale = audit(tagged(inst("i-1"), BACKUP_TAG, "24"), |inv| {
            inv.backups = vec![backup("i-1", 30, "available")]
        });
        assert_eq!(
            stale[0].2,
            "asks for a backup every 24 h; the newest is 30.0 h old"
        );
        let group = audit(tagged(inst("i-1"), GROUP_TAG, "g"), |inv| {
            inv.group_modes.insert("g".into(), "off".into());
        });
        assert_eq!(
            group[0].2,
            "tag autoheal=off on the Auto Scaling group: never repaired"
        );
        let ev = audit(inst("i-1"), |inv| {
            inv.events.insert(
                "i-1".into(),
                vec![Event {
                    code: "instance-retirement".into(),
                    description: "degraded".into(),
                    not_before: Some("2026-12-01T00:00:00Z".into()),
                }],
            );
        });
        assert_eq!(
            ev[0].2,
            "instance-retirement not before 2026-12-01T00:00:00Z: degraded"
        );
    }

    #[test]
    fn sorted_most_severe_first_and_fail_on() {
        let inv = Inventory {
            instances: vec![
                tagged(inst("i-b"), "autoheal", "off"),
                with(inst("i-a"), |i| i.virtualization = "paravirtual".into()),
            ],
            now_ms: NOW,
            ..Inventory::default()
        };
        let f = findings(&inv);
        let order: Vec<_> = f
            .iter()
            .map(|f| (f.severity, f.instance_id.as_str()))
            .collect();
        assert_eq!(
            order,
            vec![
                (Severity::Critical, "i-a"),
                (Severity::Warning, "i-a"),
                (Severity::Warning, "i-b"),
                (Severity::Info, "i-b")
            ]
        );
        let fail = |s: &str| s.parse::<FailOn>().unwrap().fails(&f);
        assert!(fail("critical") && fail("warning") && fail("info") && !fail("never"));
        let mild = &f[3..];
        assert!(!"critical".parse::<FailOn>().unwrap().fails(mild));
        assert!("info".parse::<FailOn>().unwrap().fails(mild));
        assert!("high".parse::<FailOn>().is_err());
    }

    #[test]
    fn renders() {
        let f = vec![Finding {
            severity: Severity::Critical,
            kind: "reboot-risk",
            instance_id: "i-1".into(),
            name: "db".into(),
            detail: "paravirtual".into(),
        }];
        let table = render_table(&f, 7);
        assert_eq!(
            table,
            "SEVERITY  FINDING      INSTANCE  NAME  DETAIL\ncritical  reboot-risk  i-1       db    paravirtual\n7 instances scanned: 1 critical, 0 warning, 0 info\n"
        );
        assert_eq!(
            render_table(&[], 3),
            "3 instances scanned: 0 critical, 0 warning, 0 info\n"
        );
        let json: serde_json::Value = serde_json::from_str(&render_json(&f, 7)).unwrap();
        assert_eq!(json["scanned"], 7);
        assert_eq!(json["counts"]["critical"], 1);
        assert_eq!(json["findings"][0]["kind"], "reboot-risk");
        assert_eq!(json["findings"][0]["severity"], "critical");
    }
}
