//! `alarms sync`, the pure part: which status-check alarms to create, update or delete so
//! that every selected running instance has exactly the alarm autoheal needs.

use super::audit::Instance;
use std::collections::{BTreeMap, HashMap};

pub use autoheal::rules::alarms::{
    alarm_name, managed_prefix, AlarmShape, AlarmSpec, DEFAULT_NAME_PREFIX,
};
pub const MANAGED_TAG: &str = "autoheal:managed";

#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Create(AlarmSpec),
    /// What differs, as `field: old -> new`.
    Update(AlarmSpec, Vec<String>),
    Delete {
        name: String,
        why: String,
    },
}

#[derive(Debug, Default, PartialEq)]
pub struct SyncPlan {
    pub changes: Vec<Change>,
    pub unchanged: usize,
}

/// The standard alarm (`rules::alarms::standard`), described as this command's.
pub fn spec_for(instance: &Instance, topic_arn: &str, managed: &str) -> AlarmSpec {
    autoheal::rules::alarms::standard(
        &instance.instance_id,
        instance.tags.get("Name").map(String::as_str),
        topic_arn,
        managed,
        "managed by autoheal-admin alarms sync",
    )
}

/// `KEY=VALUE` selectors; every one must match an instance tag.
pub fn parse_selector(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("--tag wants KEY=VALUE, got {s:?}")),
    }
}

fn selected(instance: &Instance, selectors: &[(String, String)]) -> bool {
    instance.state == "running"
        && selectors
            .iter()
            .all(|(k, v)| instance.tags.get(k).is_some_and(|t| t == v))
}

fn differences(old: &AlarmShape, new: &AlarmShape) -> Vec<String> {
    type Field = (&'static str, fn(&AlarmShape) -> String);
    let fields: [Field; 13] = [
        ("namespace", |a| a.namespace.clone()),
        ("metric", |a| a.metric.clone()),
        ("statistic", |a| a.statistic.clone()),
        ("dimensions", |a| format!("{:?}", a.dimensions)),
        ("period", |a| a.period.to_string()),
        ("evaluation periods", |a| a.evaluation_periods.to_string()),
        ("datapoints to alarm", |a| a.datapoints_to_alarm.to_string()),
        ("threshold", |a| a.threshold.to_string()),
        ("comparison", |a| a.comparison.clone()),
        ("missing data", |a| a.treat_missing_data.clone()),
        ("actions enabled", |a| a.actions_enabled.to_string()),
        ("alarm actions", |a| format!("{:?}", a.alarm_actions)),
        ("OK actions", |a| format!("{:?}", a.ok_actions)),
    ];
    fields
        .iter()
        .filter_map(|(name, get)| {
            let (a, b) = (get(old), get(new));
            (a != b).then(|| format!("{name}: {a} -> {b}"))
        })
        .collect()
}

/// `instances`: every instance of the region (any state); `existing`: the managed alarms by
/// name. Selected running instances get their alarm created or corrected; managed alarms
/// whose instance is terminated or gone are deleted. Alarms of instances that are merely
/// stopped, or not selected by `selectors`, are left alone.
pub fn plan(
    instances: &[Instance],
    existing: &BTreeMap<String, AlarmShape>,
    topic_arn: &str,
    selectors: &[(String, String)],
    managed: &str,
) -> SyncPlan {
    let mut plan = SyncPlan::default();
    let states: HashMap<&str, &str> = instances
        .iter()
        .map(|i| (i.instance_id.as_str(), i.state.as_str()))
        .collect();
    let mut wanted: Vec<&Instance> = instances
        .iter()
        .filter(|i| selected(i, selectors))
        .collect();
    wanted.sort_by(|a, b| a.instance_id.cmp(&b.instance_id));
    for instance in wanted {
        let spec = spec_for(instance, topic_arn, managed);
        match existing.get(&spec.name) {
            None => plan.changes.push(Change::Create(spec)),
            Some(old) => {
                let diff = differences(old, &spec.shape);
                if diff.is_empty() {
                    plan.unchanged += 1;
                } else {
                    plan.changes.push(Change::Update(spec, diff));
                }
            }
        }
    }
    for name in existing.keys() {
        let Some(id) = name.strip_prefix(managed) else {
            continue;
        };
        let why = match states.get(id) {
            None => "instance no longer exists",
            Some(&"terminated") | Some(&"shutting-down") => "instance terminated",
            Some(_) => continue,
        };
        plan.changes.push(Change::Delete {
            name: name.clone(),
            why: why.into(),
        });
    }
    plan
}

/// The diff, one line per change, and a count line.
pub fn render(plan: &SyncPlan, dry_run: bool) -> String {
    let mut out = String::new();
    let (mut created, mut updated, mut deleted) = (0, 0, 0);
    for change in &plan.changes {
        match change {
            Change::Create(spec) => {
                created += 1;
                out += &format!("+ {}  (new: {})\n", spec.name, spec.instance_id);
            }
            Change::Update(spec, diff) => {
                updated += 1;
                out += &format!("~ {}  ({})\n", spec.name, diff.join("; "));
            }
            Change::Delete { name, why } => {
                deleted += 1;
                out += &format!("- {name}  ({why})\n");
            }
        }
    }
    let verb = if dry_run { "would be " } else { "" };
    out += &format!(
        "{created} {verb}created, {updated} {verb}updated, {deleted} {verb}deleted, {} unchanged{}\n",
        plan.unchanged,
        if dry_run { " (dry run: nothing changed)" } else { "" }
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANAGED: &str = "autoheal-StatusCheckFailed-";

    const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:autoheal";

    fn inst(id: &str, state: &str, tags: &[(&str, &str)]) -> Instance {
        Instance {
            instance_id: id.into(),
            state: state.into(),
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Instance::default()
        }
    }

    fn existing(pairs: &[(&str, AlarmShape)]) -> BTreeMap<String, AlarmShape> {
        pairs
            .iter()
            .map(|(n, s)| (n.to_string(), s.clone()))
            .collect()
    }

    fn kinds(plan: &SyncPlan) -> Vec<String> {
        plan.changes
            .iter()
            .map(|c| match c {
                Change::Create(s) => format!("create {}", s.instance_id),
                Change::Update(s, d) => format!("update {} {}", s.instance_id, d.join("; ")),
                Change::Delete { name, why } => format!("delete {name} {why}"),
            })
            .collect()
    }

    #[test]
    fn the_alarm_autoheal_needs() {
        let s = spec_for(&inst("i-1", "running", &[("Name", "web")]), TOPIC, MANAGED);
        assert_eq!(s.name, "autoheal-StatusCheckFailed-i-1");
        assert!(s.description.contains("i-1 (web)"));
        let shape = s.shape;
        assert_eq!(
            (
                shape.period,
                shape.evaluation_periods,
                shape.datapoints_to_alarm
            ),
            (60, 2, 2)
        );
        assert_eq!(shape.treat_missing_data, "missing");
        assert_eq!(shape.metric, "StatusCheckFailed");
        assert_eq!(shape.alarm_actions, vec![TOPIC.to_string()]);
        assert_eq!(shape.ok_actions, vec![TOPIC.to_string()]);
        assert_eq!(
            shape.dimensions,
            vec![("InstanceId".to_string(), "i-1".to_string())]
        );
    }

    #[test]
    fn plan_table() {
        let good = spec_for(&inst("i-ok", "running", &[]), TOPIC, MANAGED).shape;
        let mut slow = spec_for(&inst("i-slow", "running", &[]), TOPIC, MANAGED).shape;
        slow.period = 300;
        let elsewhere = spec_for(&inst("i-moved", "running", &[]), "arn:old", MANAGED).shape;
        let any = good.clone();
        // (what, instances, existing alarms, selectors, changes, unchanged)
        type Case<'a> = (
            &'a str,
            Vec<Instance>,
            BTreeMap<String, AlarmShape>,
            Vec<(String, String)>,
            Vec<&'a str>,
            usize,
        );
        let cases: Vec<Case> = vec![
            ("new running instance gets an alarm",
             vec![inst("i-new", "running", &[])], existing(&[]), vec![],
             vec!["create i-new"], 0),
            ("stopped and pending instances are not selected",
             vec![inst("i-s", "stopped", &[]), inst("i-p", "pending", &[])], existing(&[]), vec![],
             vec![], 0),
            ("an equal alarm is unchanged",
             vec![inst("i-ok", "running", &[])], existing(&[("autoheal-StatusCheckFailed-i-ok", good.clone())]), vec![],
             vec![], 1),
            ("a drifted alarm is updated with what differs",
             vec![inst("i-slow", "running", &[])], existing(&[("autoheal-StatusCheckFailed-i-slow", slow)]), vec![],
             vec!["update i-slow period: 300 -> 60"], 0),
            ("a new topic updates the actions",
             vec![inst("i-moved", "running", &[])], existing(&[("autoheal-StatusCheckFailed-i-moved", elsewhere)]), vec![],
             vec!["update i-moved alarm actions: [\"arn:old\"] -> [\"arn:aws:sns:us-east-1:123456789012:autoheal\"]; OK actions: [\"arn:old\"] -> [\"arn:aws:sns:us-east-1:123456789012:autoheal\"]"], 0),
            ("alarm of a terminated instance is deleted",
             vec![inst("i-dead", "terminated", &[])], existing(&[("autoheal-StatusCheckFailed-i-dead", any.clone())]), vec![],
             vec!["delete autoheal-StatusCheckFailed-i-dead instance terminated"], 0),
            ("alarm of a vanished instance is deleted",
             vec![], existing(&[("autoheal-StatusCheckFailed-i-gone", any.clone())]), vec![],
             vec!["delete autoheal-StatusCheckFailed-i-gone instance no longer exists"], 0),
            ("alarm of a stopped instance is kept",
             vec![inst("i-s", "stopped", &[])], existing(&[("autoheal-StatusCheckFailed-i-s", any.clone())]), vec![],
             vec![], 0),
            ("tag selectors narrow the running set, all must match",
             vec![inst("i-a", "running", &[("team", "a"), ("env", "prod")]), inst("i-b", "running", &[("team", "b")]), inst("i-c", "running", &[("team", "a")])],
             existing(&[]), vec![("team".into(), "a".into()), ("env".into(), "prod".into())],
             vec!["create i-a"], 0),
            ("unselected running instance keeps its alarm",
             vec![inst("i-b", "running", &[("team", "b")])], existing(&[("autoheal-StatusCheckFailed-i-b", slow_clone(&good))]),
             vec![("team".into(), "a".into())],
             vec![], 0),
        ];
        for (what, instances, existing, selectors, want, unchanged) in cases {
            let plan = plan(&instances, &existing, TOPIC, &selectors, MANAGED);
            assert_eq!(kinds(&plan), want, "{what}");
            assert_eq!(plan.unchanged, unchanged, "{what}");
        }
    }

    fn slow_clone(s: &AlarmShape) -> AlarmShape {
        AlarmShape {
            period: 300,
            ..s.clone()
        }
    }

    #[test]
    fn another_name_prefix_names_its_own_alarms_and_leaves_the_others() {
        let team = managed_prefix("team-a-");
        let plan = plan(
            &[inst("i-new", "running", &[])],
            &existing(&[(
                "autoheal-StatusCheckFailed-i-gone",
                spec_for(&inst("i-gone", "running", &[]), TOPIC, MANAGED).shape,
            )]),
            TOPIC,
            &[],
            &team,
        );
        let names: Vec<String> = plan
            .changes
            .iter()
            .map(|c| match c {
                Change::Create(s) | Change::Update(s, _) => s.name.clone(),
                Change::Delete { name, .. } => name.clone(),
            })
            .collect();
        assert_eq!(names, vec!["team-a-StatusCheckFailed-i-new"]);
    }

    #[test]
    fn selectors_parse() {
        assert_eq!(parse_selector("team=a"), Ok(("team".into(), "a".into())));
        assert_eq!(parse_selector("env="), Ok(("env".into(), "".into())));
        assert!(parse_selector("team").is_err());
        assert!(parse_selector("=a").is_err());
    }

    #[test]
    fn render_says_what_and_how_many() {
        let plan = plan(
            &[inst("i-new", "running", &[])],
            &existing(&[(
                "autoheal-StatusCheckFailed-i-gone",
                spec_for(&inst("i-gone", "running", &[]), TOPIC, MANAGED).shape,
            )]),
            TOPIC,
            &[],
            MANAGED,
        );
        let text = render(&plan, true);
        assert!(
            text.contains("+ autoheal-StatusCheckFailed-i-new"),
            "{text}"
        );
        assert!(
            text.contains("- autoheal-StatusCheckFailed-i-gone  (instance no longer exists)"),
            "{text}"
        );
        assert!(text.ends_with("1 would be created, 0 would be updated, 1 would be deleted, 0 unchanged (dry run: nothing changed)\n"), "{text}");
        assert!(render(&plan, false).ends_with("1 created, 0 updated, 1 deleted, 0 unchanged\n"));
    }
}
