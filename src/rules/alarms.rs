//! The status-check alarms autoheal keeps: their names, their settings, and which to make
//! or delete so that nothing it (or Auto Scaling, in a group it watches) launches goes
//! unwatched. Shared with `autoheal-admin alarms sync`.

use std::collections::{BTreeMap, HashMap, HashSet};

/// The stack's `AlarmNamePrefix` by default: its EventBridge rule hears only alarms named
/// with it, and the function's role may write only those.
pub const DEFAULT_NAME_PREFIX: &str = "autoheal-";

/// Alarms autoheal manages are named `<name prefix>StatusCheckFailed-<instance>`; it never
/// touches any other alarm.
pub fn managed_prefix(name_prefix: &str) -> String {
    format!("{name_prefix}StatusCheckFailed-")
}

/// `managed`: `managed_prefix`'s.
pub fn alarm_name(managed: &str, instance_id: &str) -> String {
    format!("{managed}{instance_id}")
}

/// The settings compared between what should be and what CloudWatch has.
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmShape {
    pub namespace: String,
    pub metric: String,
    pub statistic: String,
    pub dimensions: Vec<(String, String)>,
    pub period: i32,
    pub evaluation_periods: i32,
    pub datapoints_to_alarm: i32,
    pub threshold: f64,
    pub comparison: String,
    pub treat_missing_data: String,
    pub actions_enabled: bool,
    pub alarm_actions: Vec<String>,
    pub ok_actions: Vec<String>,
}

impl AlarmShape {
    /// The instance its `InstanceId` dimension names.
    pub fn instance_id(&self) -> Option<&str> {
        self.dimensions
            .iter()
            .find(|(k, _)| k == "InstanceId")
            .map(|(_, v)| v.as_str())
    }

    /// The same alarm about another instance: only the `InstanceId` dimension changes.
    /// None when it has no such dimension (nothing to point at the other instance).
    pub fn about(&self, instance_id: &str) -> Option<AlarmShape> {
        self.instance_id()?;
        let mut shape = self.clone();
        for (k, v) in &mut shape.dimensions {
            if k == "InstanceId" {
                *v = instance_id.to_string();
            }
        }
        Some(shape)
    }
}

/// The alarm one instance should have.
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmSpec {
    pub name: String,
    pub instance_id: String,
    pub description: String,
    pub shape: AlarmShape,
}

/// A managed alarm as CloudWatch holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct Managed {
    pub name: String,
    pub shape: AlarmShape,
}

impl Managed {
    /// The instance its name is about (`managed` + id).
    pub fn instance_id<'a>(&'a self, managed: &str) -> Option<&'a str> {
        self.name.strip_prefix(managed).filter(|id| !id.is_empty())
    }
}

/// `StatusCheckFailed` every 60 s, 2 of 2 datapoints, missing data as-is (`missing`): both
/// transitions go to the topic, because `OK` closes autoheal's incident.
pub fn standard(
    instance_id: &str,
    label: Option<&str>,
    topic_arn: &str,
    managed: &str,
    made_by: &str,
) -> AlarmSpec {
    let named = label.map(|n| format!(" ({n})")).unwrap_or_default();
    AlarmSpec {
        name: alarm_name(managed, instance_id),
        instance_id: instance_id.to_string(),
        description: format!("Status checks of {instance_id}{named}; {made_by}"),
        shape: AlarmShape {
            namespace: "AWS/EC2".into(),
            metric: "StatusCheckFailed".into(),
            statistic: "Maximum".into(),
            dimensions: vec![("InstanceId".into(), instance_id.to_string())],
            period: 60,
            evaluation_periods: 2,
            datapoints_to_alarm: 2,
            threshold: 1.0,
            comparison: "GreaterThanOrEqualToThreshold".into(),
            treat_missing_data: "missing".into(),
            actions_enabled: true,
            alarm_actions: vec![topic_arn.to_string()],
            ok_actions: vec![topic_arn.to_string()],
        },
    }
}

/// What watches a verified copy, decided from the source's managed alarm.
#[derive(Debug, Clone, PartialEq)]
pub struct CopyWatch {
    /// The copy's alarm; None: nothing to make it from.
    pub put: Option<AlarmSpec>,
    /// The source's managed alarm, which would watch a stopped or terminated instance.
    pub delete: Option<String>,
    /// Why the copy gets no alarm, or which settings it got.
    pub note: String,
}

/// The copy gets the source's managed alarm (same settings and actions, its own
/// dimension), or the standard one to `topic` when the source had none; the source's is
/// deleted once the copy's is made. `opening_alarm`: the alarm that opened the incident.
pub fn watch_copy(
    source: &str,
    copy: &str,
    source_alarm: Option<&Managed>,
    opening_alarm: &str,
    topic: Option<&str>,
    managed: &str,
) -> CopyWatch {
    let made_by = format!("made by autoheal for {copy}, the copy of {source}");
    let from_source = source_alarm.and_then(|a| Some((a, a.shape.about(copy)?)));
    if let Some((alarm, shape)) = from_source {
        return CopyWatch {
            put: Some(AlarmSpec {
                name: alarm_name(managed, copy),
                instance_id: copy.to_string(),
                description: format!("Status checks of {copy}; {made_by}"),
                shape,
            }),
            delete: Some(alarm.name.clone()),
            note: format!(
                "alarm {} watches the copy ({}'s settings; that alarm deleted)",
                alarm_name(managed, copy),
                alarm.name
            ),
        };
    }
    let theirs = match opening_alarm.starts_with(managed) || opening_alarm.is_empty() {
        true => String::new(),
        false => {
            format!("; the alarm {opening_alarm} still watches {source}, not autoheal's to change")
        }
    };
    match topic {
        Some(topic) => CopyWatch {
            put: Some(standard(copy, None, topic, managed, &made_by)),
            delete: None,
            note: format!(
                "alarm {} watches the copy (the standard one){theirs}",
                alarm_name(managed, copy)
            ),
        },
        None => CopyWatch {
            put: None,
            delete: None,
            note: format!(
                "no alarm watches the copy: {source} had no alarm {} to copy and no alarm topic is configured; run autoheal-admin alarms sync{theirs}",
                alarm_name(managed, source)
            ),
        },
    }
}

/// An Auto Scaling group's members: (instance id, lifecycle state).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Members {
    pub group: String,
    pub members: Vec<(String, String)>,
}

/// What the tick does about the alarms of a region.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WatchPlan {
    /// Alarms for members of watched groups that have none.
    pub create: Vec<AlarmSpec>,
    /// Managed alarms about instances in no group, instance id -> alarm name: EC2 says
    /// whether they are gone.
    pub unplaced: BTreeMap<String, String>,
    /// Members without an alarm left for the next tick (`limit`).
    pub left: usize,
}

/// A group is watched when one of its members has a managed alarm; its in-service members
/// without one get a sibling's settings (the lowest instance id's, so every tick picks the
/// same), at most `limit` of them.
pub fn watch_members(
    groups: &[Members],
    alarms: &[Managed],
    managed: &str,
    limit: usize,
) -> WatchPlan {
    let by_instance: BTreeMap<&str, &Managed> = alarms
        .iter()
        .filter_map(|a| Some((a.instance_id(managed)?, a)))
        .collect();
    let mut plan = WatchPlan::default();
    let mut placed = HashSet::new();
    for g in groups {
        let mut ids: Vec<&(String, String)> = g.members.iter().collect();
        ids.sort();
        placed.extend(ids.iter().map(|(id, _)| id.as_str()));
        let sibling = ids
            .iter()
            .filter_map(|(id, _)| by_instance.get(id.as_str()))
            .find(|a| a.shape.instance_id().is_some());
        let Some(sibling) = sibling else { continue };
        for (id, lifecycle) in ids {
            if lifecycle != "InService" || by_instance.contains_key(id.as_str()) {
                continue;
            }
            if plan.create.len() == limit {
                plan.left += 1;
                continue;
            }
            let Some(shape) = sibling.shape.about(id) else {
                continue;
            };
            plan.create.push(AlarmSpec {
                name: alarm_name(managed, id),
                instance_id: id.clone(),
                description: format!(
                    "Status checks of {id}; made by autoheal for a new member of {}",
                    g.group
                ),
                shape,
            });
        }
    }
    plan.unplaced = by_instance
        .iter()
        .filter(|(id, _)| !placed.contains(*id))
        .map(|(id, a)| (id.to_string(), a.name.clone()))
        .collect();
    plan
}

/// The managed alarms (of `unplaced`) whose instance EC2 says is terminated or does not
/// know: deleted. `states`: instance id -> state, for the ids EC2 returned.
pub fn gone(unplaced: &BTreeMap<String, String>, states: &HashMap<String, String>) -> Vec<String> {
    unplaced
        .iter()
        .filter(|(id, _)| {
            matches!(
                states.get(*id).map(String::as_str),
                None | Some("terminated") | Some("shutting-down")
            )
        })
        .map(|(_, name)| name.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANAGED: &str = "autoheal-StatusCheckFailed-";
    const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:autoheal";

    fn managed(id: &str) -> Managed {
        let mut spec = standard(id, None, TOPIC, MANAGED, "test");
        spec.shape.period = 300; // not the standard: proves the settings are copied
        spec.shape
            .alarm_actions
            .push("arn:aws:sns:us-east-1:123456789012:pager".into());
        Managed {
            name: spec.name,
            shape: spec.shape,
        }
    }

    fn group(name: &str, members: &[(&str, &str)]) -> Members {
        Members {
            group: name.into(),
            members: members
                .iter()
                .map(|(i, l)| (i.to_string(), l.to_string()))
                .collect(),
        }
    }

    #[test]
    fn a_copy_gets_the_sources_alarm_and_the_sources_goes() {
        let src = managed("i-src");
        let w = watch_copy(
            "i-src",
            "i-copy",
            Some(&src),
            &src.name,
            Some(TOPIC),
            MANAGED,
        );
        let put = w.put.unwrap();
        assert_eq!(put.name, "autoheal-StatusCheckFailed-i-copy");
        assert_eq!(put.shape.instance_id(), Some("i-copy"));
        assert_eq!(put.shape.period, 300);
        assert_eq!(put.shape.alarm_actions, src.shape.alarm_actions);
        assert_eq!(put.shape.ok_actions, src.shape.ok_actions);
        assert_eq!(
            w.delete.as_deref(),
            Some("autoheal-StatusCheckFailed-i-src")
        );
    }

    #[test]
    fn a_copy_without_a_source_alarm_gets_the_standard_one_or_a_note() {
        let w = watch_copy("i-src", "i-copy", None, "team-alarm", Some(TOPIC), MANAGED);
        let put = w.put.unwrap();
        assert_eq!(
            put.shape,
            standard("i-copy", None, TOPIC, MANAGED, "").shape
        );
        assert_eq!(
            w.delete, None,
            "never deletes an alarm that is not autoheal's"
        );
        assert!(
            w.note.contains("team-alarm still watches i-src"),
            "{}",
            w.note
        );
        let w = watch_copy("i-src", "i-copy", None, "", None, MANAGED);
        assert_eq!((w.put, w.delete), (None, None));
        assert!(w.note.contains("no alarm watches the copy"), "{}", w.note);
    }

    #[test]
    fn a_source_alarm_without_an_instance_dimension_is_not_copied() {
        let mut odd = managed("i-src");
        odd.shape.dimensions = vec![("AutoScalingGroupName".into(), "web".into())];
        let w = watch_copy(
            "i-src",
            "i-copy",
            Some(&odd),
            &odd.name,
            Some(TOPIC),
            MANAGED,
        );
        assert_eq!(w.put.unwrap().shape.period, 60, "the standard alarm");
        assert_eq!(w.delete, None);
    }

    #[test]
    fn members_plan_table() {
        // (what, groups, alarms, limit, created, unplaced, left)
        type Case<'a> = (
            &'a str,
            Vec<Members>,
            Vec<Managed>,
            usize,
            Vec<&'a str>,
            Vec<&'a str>,
            usize,
        );
        let cases: Vec<Case> = vec![
            (
                "a new in-service member of a watched group gets its alarm",
                vec![group(
                    "web",
                    &[("i-a", "InService"), ("i-new", "InService")],
                )],
                vec![managed("i-a")],
                10,
                vec!["i-new"],
                vec![],
                0,
            ),
            (
                "a group none of whose members has an alarm is not watched",
                vec![group("batch", &[("i-b", "InService")])],
                vec![],
                10,
                vec![],
                vec![],
                0,
            ),
            (
                "pending and leaving members wait",
                vec![group(
                    "web",
                    &[
                        ("i-a", "InService"),
                        ("i-p", "Pending"),
                        ("i-t", "Terminating"),
                    ],
                )],
                vec![managed("i-a")],
                10,
                vec![],
                vec![],
                0,
            ),
            (
                "bounded per tick, the rest counted",
                vec![group(
                    "web",
                    &[
                        ("i-a", "InService"),
                        ("i-n1", "InService"),
                        ("i-n2", "InService"),
                        ("i-n3", "InService"),
                    ],
                )],
                vec![managed("i-a")],
                2,
                vec!["i-n1", "i-n2"],
                vec![],
                1,
            ),
            (
                "an alarm whose instance is in no group is for EC2 to place",
                vec![group("web", &[("i-a", "InService")])],
                vec![managed("i-a"), managed("i-old")],
                10,
                vec![],
                vec!["autoheal-StatusCheckFailed-i-old"],
                0,
            ),
        ];
        for (what, groups, alarms, limit, created, unplaced, left) in cases {
            let plan = watch_members(&groups, &alarms, MANAGED, limit);
            let ids: Vec<&str> = plan.create.iter().map(|s| s.instance_id.as_str()).collect();
            assert_eq!(ids, created, "{what}");
            assert_eq!(
                plan.unplaced.values().collect::<Vec<_>>(),
                unplaced,
                "{what}"
            );
            assert_eq!(plan.left, left, "{what}");
            for s in &plan.create {
                assert_eq!(
                    s.shape.instance_id(),
                    Some(s.instance_id.as_str()),
                    "{what}"
                );
                assert_eq!(s.shape.period, 300, "{what}: a sibling's settings");
            }
        }
    }

    #[test]
    fn only_alarms_of_terminated_or_unknown_instances_go() {
        let unplaced: BTreeMap<String, String> = ["i-dead", "i-gone", "i-stopped", "i-up"]
            .iter()
            .map(|i| (i.to_string(), alarm_name(MANAGED, i)))
            .collect();
        let states: HashMap<String, String> = [
            ("i-dead", "terminated"),
            ("i-stopped", "stopped"),
            ("i-up", "running"),
        ]
        .iter()
        .map(|(i, s)| (i.to_string(), s.to_string()))
        .collect();
        assert_eq!(
            gone(&unplaced, &states),
            vec![
                "autoheal-StatusCheckFailed-i-dead".to_string(),
                "autoheal-StatusCheckFailed-i-gone".to_string()
            ]
        );
    }
}
