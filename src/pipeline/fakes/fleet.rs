//! EC2 and Auto Scaling in memory: instances (state, tags, status checks, group membership
//! and health) and groups (desired capacity). Every call is recorded in the journal, those
//! that change the world marked as such. One region: the region argument is not looked at.
//!
//! Played: the reads and acts of a mark and of the ladder's power rungs, the group's
//! members, the scan's impaired list, the managed status-check alarms. Not played: images, copies, Elastic IPs and backups
//! (a relaunch, the backup run) — those calls are recorded, then answer a permanent error
//! saying the fake does not play them.

use super::{Failures, Journal, Seen};
use crate::aws::fleet::{Fleet, Found};
use crate::error::Error;
use crate::model::facts::{Checks, Facts, GroupFacts, InstanceFacts};
use crate::model::notice::{EventWindow, Notice};
use crate::rules::alarms::{AlarmSpec, Managed, Members};
use crate::rules::backup::{Backup, Selector, Tagged};
use crate::rules::ladder::Power;
use crate::rules::relaunch::spec::Source;
use crate::rules::replacement::{Group, Member};
use crate::rules::scan::Impaired;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

/// One instance as the fake holds it.
#[derive(Debug, Clone)]
pub struct Machine {
    pub id: String,
    /// EC2's state name.
    pub state: String,
    pub tags: BTreeMap<String, String>,
    pub checks: Checks,
    /// The Auto Scaling group it is a member of.
    pub group: Option<String>,
    /// Auto Scaling's health of a member.
    pub healthy: bool,
    /// A member's lifecycle state.
    pub lifecycle: String,
    /// Its Availability Zone.
    pub zone: Option<String>,
}

impl Machine {
    /// A running instance with these checks, in no group.
    pub fn running(id: &str, checks: Checks) -> Machine {
        Machine {
            id: id.to_string(),
            state: "running".into(),
            tags: BTreeMap::new(),
            checks,
            group: None,
            healthy: true,
            lifecycle: "InService".into(),
            zone: None,
        }
    }

    /// The same, in the Availability Zone `zone`.
    pub fn in_zone(self, zone: &str) -> Machine {
        Machine {
            zone: Some(zone.to_string()),
            ..self
        }
    }

    /// The same, a healthy member of `group` in service.
    pub fn in_group(self, group: &str) -> Machine {
        Machine {
            group: Some(group.to_string()),
            ..self
        }
    }
}

pub struct FakeFleet {
    journal: Journal,
    failures: Failures,
    machines: Mutex<BTreeMap<String, Machine>>,
    /// Each group's desired capacity.
    desired: Mutex<HashMap<String, i32>>,
    /// CloudWatch's metric alarms, by name.
    alarms: Mutex<BTreeMap<String, Managed>>,
    /// ARC's shifts in progress.
    shifts: Mutex<Vec<crate::rules::storm::Shift>>,
    /// EC2's scheduled events, as `DescribeInstanceStatus` lists them.
    pub events: Mutex<Vec<Notice>>,
    /// Groups' tags: (group, key) -> value.
    pub group_tags: Mutex<HashMap<(String, String), String>>,
    /// EC2's instance event windows.
    pub event_windows: Mutex<Vec<EventWindow>>,
}

/// The answer to a call the fake does not play.
fn not_played(call: &'static str) -> Error {
    Error::Permanent {
        op: "fake fleet",
        code: None,
        detail: format!("the fake fleet does not play {call}"),
    }
}

impl FakeFleet {
    /// Every group of `machines` at desired capacity: its members' count.
    pub fn new(journal: Journal, machines: Vec<Machine>) -> FakeFleet {
        let mut desired = HashMap::new();
        for g in machines.iter().filter_map(|m| m.group.clone()) {
            *desired.entry(g).or_insert(0) += 1;
        }
        FakeFleet {
            journal,
            failures: Failures::default(),
            machines: Mutex::new(machines.into_iter().map(|m| (m.id.clone(), m)).collect()),
            desired: Mutex::new(desired),
            alarms: Mutex::default(),
            shifts: Mutex::default(),
            events: Mutex::default(),
            group_tags: Mutex::default(),
            event_windows: Mutex::default(),
        }
    }

    /// ARC shifts traffic away from `zone` (`said` what it is), or, None, stops doing so.
    pub fn shift(&self, zone: &str, said: Option<&str>) {
        let mut shifts = self.shifts.lock().unwrap();
        shifts.retain(|s| s.zone != zone);
        if let Some(said) = said {
            shifts.push(crate::rules::storm::Shift {
                zone: zone.to_string(),
                said: said.to_string(),
            });
        }
    }

    /// The alarms CloudWatch holds now.
    pub fn alarm_names(&self) -> Vec<String> {
        self.alarms.lock().unwrap().keys().cloned().collect()
    }

    /// An alarm made by someone (an operator's `alarms sync`).
    pub fn add_alarm(&self, alarm: Managed) {
        self.alarms
            .lock()
            .unwrap()
            .insert(alarm.name.clone(), alarm);
    }

    /// The next call of `call` (a `Fleet` method's name) is recorded, then fails.
    pub fn fail_once(&self, call: &'static str, transient: bool) {
        self.failures.arm(call, transient);
    }

    /// EC2's status checks of the instance change (it recovers, or fails).
    pub fn set_checks(&self, id: &str, checks: Checks) {
        if let Some(m) = self.machines.lock().unwrap().get_mut(id) {
            m.checks = checks;
        }
    }

    pub fn machine(&self, id: &str) -> Option<Machine> {
        self.machines.lock().unwrap().get(id).cloned()
    }

    /// Records the call; the failure armed for it, if any.
    fn call(&self, call: &'static str, target: &str, mutating: bool) -> Result<(), Error> {
        self.journal.push(Seen::Called {
            call,
            target: target.to_string(),
            mutating,
        });
        self.failures.take(call)
    }

    pub fn change(&self, id: &str, how: impl FnOnce(&mut Machine)) {
        if let Some(m) = self.machines.lock().unwrap().get_mut(id) {
            how(m);
        }
    }

    fn described(&self, id: &str) -> Option<InstanceFacts> {
        self.machine(id).map(|m| InstanceFacts {
            instance_id: m.id,
            state: m.state,
            instance_type: Some("m5.large".into()),
            root_device_type: Some("ebs".into()),
            availability_zone: m.zone,
            tags: m.tags,
            ..InstanceFacts::default()
        })
    }
}

#[async_trait::async_trait(?Send)]
impl Fleet for FakeFleet {
    async fn observe(&self, _: &str, instance_id: &str) -> Result<Facts, Error> {
        self.call("observe", instance_id, false)?;
        let m = self.machine(instance_id);
        let group = m.as_ref().and_then(|m| {
            Some(GroupFacts {
                name: m.group.clone()?,
                health: if m.healthy { "HEALTHY" } else { "UNHEALTHY" }.into(),
                lifecycle: m.lifecycle.clone(),
                tags: BTreeMap::new(),
            })
        });
        Ok(Facts {
            instance: self.described(instance_id),
            group,
            checks: m.map(|m| m.checks).unwrap_or_default(),
        })
    }
    async fn describe_instance(&self, _: &str, id: &str) -> Result<Option<InstanceFacts>, Error> {
        self.call("describe_instance", id, false)?;
        Ok(self.described(id))
    }
    async fn status_checks(&self, _: &str, instance_id: &str) -> Result<Checks, Error> {
        self.call("status_checks", instance_id, false)?;
        Ok(self
            .machine(instance_id)
            .map(|m| m.checks)
            .unwrap_or_default())
    }
    async fn recovery_supported(&self, _: &str, instance_type: &str) -> Result<bool, Error> {
        self.call("recovery_supported", instance_type, false)?;
        Ok(false)
    }
    async fn stop_protected(&self, _: &str, instance_id: &str) -> Result<bool, Error> {
        self.call("stop_protected", instance_id, false)?;
        Ok(false)
    }
    async fn cluster_size(&self, _: &str, cluster: &str) -> Result<usize, Error> {
        self.call("cluster_size", cluster, false)?;
        let machines = self.machines.lock().unwrap();
        let tag = crate::rules::guard::CLUSTER_TAG;
        let tagged = machines.values().filter(|m| {
            m.tags.get(tag).map(String::as_str) == Some(cluster) && m.state != "terminated"
        });
        Ok(tagged.count())
    }
    async fn zone_size(&self, _: &str, zone: &str) -> Result<usize, Error> {
        self.call("zone_size", zone, false)?;
        let machines = self.machines.lock().unwrap();
        let there = machines
            .values()
            .filter(|m| m.zone.as_deref() == Some(zone) && m.state != "terminated");
        Ok(there.count())
    }
    async fn zonal_shifts(&self, region: &str) -> Result<Vec<crate::rules::storm::Shift>, Error> {
        self.call("zonal_shifts", region, false)?;
        Ok(self.shifts.lock().unwrap().clone())
    }
    async fn group(&self, _: &str, name: &str) -> Result<Option<Group>, Error> {
        self.call("group", name, false)?;
        let Some(desired) = self.desired.lock().unwrap().get(name).copied() else {
            return Ok(None);
        };
        let machines = self.machines.lock().unwrap();
        let members = machines
            .values()
            .filter(|m| m.group.as_deref() == Some(name))
            .map(|m| Member {
                instance_id: m.id.clone(),
                lifecycle: m.lifecycle.clone(),
                health: if m.healthy { "Healthy" } else { "Unhealthy" }.into(),
            })
            .collect();
        Ok(Some(Group { desired, members }))
    }
    async fn impaired(&self, region: &str) -> Result<Vec<Impaired>, Error> {
        self.call("impaired", region, false)?;
        let machines = self.machines.lock().unwrap();
        let impaired = machines.values().filter(|m| m.checks.any_impaired());
        Ok(impaired
            .map(|m| Impaired {
                instance_id: m.id.clone(),
                system: m.checks.system == crate::model::facts::Check::Impaired,
                instance: m.checks.instance == crate::model::facts::Check::Impaired,
                since_ms: None,
            })
            .collect())
    }
    async fn image_state(&self, _: &str, image_id: &str) -> Result<Found, Error> {
        self.call("image_state", image_id, false)?;
        Err(not_played("image_state"))
    }
    async fn image_named(&self, _: &str, name: &str) -> Result<Found, Error> {
        self.call("image_named", name, false)?;
        Err(not_played("image_named"))
    }
    async fn launched_with(&self, _: &str, token: &str) -> Result<Found, Error> {
        self.call("launched_with", token, false)?;
        Err(not_played("launched_with"))
    }
    async fn strangers(&self, _: &str, incident: &str, _: &[&str]) -> Result<Vec<String>, Error> {
        self.call("strangers", incident, false)?;
        Err(not_played("strangers"))
    }
    async fn describe_source(&self, _: &str, instance_id: &str) -> Result<Source, Error> {
        self.call("describe_source", instance_id, false)?;
        Err(not_played("describe_source"))
    }
    async fn newest_backup(
        &self,
        _: &str,
        instance_id: &str,
        _: &[String],
    ) -> Result<Option<(String, i64)>, Error> {
        self.call("newest_backup", instance_id, false)?;
        Err(not_played("newest_backup"))
    }
    async fn tagged_instances(
        &self,
        region: &str,
        _: Option<&Selector>,
    ) -> Result<Vec<Tagged>, Error> {
        self.call("tagged_instances", region, false)?;
        Err(not_played("tagged_instances"))
    }
    async fn backups(&self, region: &str) -> Result<Vec<Backup>, Error> {
        self.call("backups", region, false)?;
        Err(not_played("backups"))
    }
    async fn alarms(&self, region: &str, prefix: &str) -> Result<Vec<Managed>, Error> {
        self.call("alarms", region, false)?;
        let alarms = self.alarms.lock().unwrap();
        Ok(alarms
            .values()
            .filter(|a| a.name.starts_with(prefix))
            .cloned()
            .collect())
    }
    async fn groups(&self, region: &str) -> Result<Vec<Members>, Error> {
        self.call("groups", region, false)?;
        let mut groups: BTreeMap<String, Members> = BTreeMap::new();
        for m in self.machines.lock().unwrap().values() {
            if let Some(g) = &m.group {
                let entry = groups.entry(g.clone()).or_insert_with(|| Members {
                    group: g.clone(),
                    members: vec![],
                });
                entry.members.push((m.id.clone(), m.lifecycle.clone()));
            }
        }
        Ok(groups.into_values().collect())
    }
    async fn instance_states(
        &self,
        region: &str,
        ids: &[String],
    ) -> Result<HashMap<String, String>, Error> {
        self.call("instance_states", region, false)?;
        Ok(ids
            .iter()
            .filter_map(|id| Some((id.clone(), self.machine(id)?.state)))
            .collect())
    }
    async fn scheduled_events(&self, region: &str) -> Result<Vec<Notice>, Error> {
        self.call("scheduled_events", region, false)?;
        Ok(self.events.lock().unwrap().clone())
    }
    async fn group_tag(&self, _: &str, group: &str, key: &str) -> Result<Option<String>, Error> {
        self.call("group_tag", group, false)?;
        let tags = self.group_tags.lock().unwrap();
        Ok(tags.get(&(group.to_string(), key.to_string())).cloned())
    }
    async fn event_windows(&self, region: &str) -> Result<Vec<EventWindow>, Error> {
        self.call("event_windows", region, false)?;
        Ok(self.event_windows.lock().unwrap().clone())
    }
    async fn mark_unhealthy(&self, _: &str, instance_id: &str) -> Result<(), Error> {
        self.call("mark_unhealthy", instance_id, true)?;
        self.change(instance_id, |m| m.healthy = false);
        Ok(())
    }
    async fn power(&self, _: &str, instance_id: &str, what: Power) -> Result<(), Error> {
        self.call("power", instance_id, true)?;
        self.change(instance_id, |m| match what {
            Power::Reboot => {}
            Power::Stop => m.state = "stopped".into(),
            Power::Start => m.state = "running".into(),
        });
        // Started again, it runs on another host: its scheduled events are gone.
        if what == Power::Start {
            let mut events = self.events.lock().unwrap();
            events.retain(|n| n.instance_id != instance_id);
        }
        Ok(())
    }
    async fn move_event(
        &self,
        _: &str,
        instance_id: &str,
        event_id: &str,
        to_ms: i64,
    ) -> Result<(), Error> {
        self.call("move_event", instance_id, true)?;
        let mut events = self.events.lock().unwrap();
        let moved = events
            .iter_mut()
            .filter(|n| n.instance_id == instance_id && n.event_id() == Some(event_id));
        moved.for_each(|n| n.not_before_ms = Some(to_ms));
        Ok(())
    }
    async fn create_image(
        &self,
        _: &str,
        instance_id: &str,
        _: &str,
        _: &[(String, String)],
    ) -> Result<String, Error> {
        self.call("create_image", instance_id, true)?;
        Err(not_played("create_image"))
    }
    async fn run_copy(
        &self,
        _: &str,
        source: &Source,
        _: &str,
        _: &str,
        _: &str,
    ) -> Result<String, Error> {
        self.call("run_copy", &source.instance_id, true)?;
        Err(not_played("run_copy"))
    }
    async fn move_addresses(&self, _: &str, from: &str, _: &str) -> Result<Vec<String>, Error> {
        self.call("move_addresses", from, true)?;
        Err(not_played("move_addresses"))
    }
    async fn retire(&self, _: &str, old: &str, _: &str, _: bool, _: bool) -> Result<(), Error> {
        self.call("retire", old, true)?;
        Err(not_played("retire"))
    }
    async fn create_backup(&self, _: &str, id: &str, _: &str) -> Result<Option<String>, Error> {
        self.call("create_backup", id, true)?;
        Err(not_played("create_backup"))
    }
    async fn retire_backup(&self, _: &str, backup: &Backup) -> Result<usize, Error> {
        self.call("retire_backup", &backup.image_id, true)?;
        Err(not_played("retire_backup"))
    }
    async fn put_alarm(&self, _: &str, spec: &AlarmSpec) -> Result<(), Error> {
        self.call("put_alarm", &spec.instance_id, true)?;
        self.add_alarm(Managed {
            name: spec.name.clone(),
            shape: spec.shape.clone(),
        });
        Ok(())
    }
    async fn delete_alarms(&self, _: &str, names: &[String]) -> Result<(), Error> {
        self.call("delete_alarms", &names.join(","), true)?;
        let mut alarms = self.alarms.lock().unwrap();
        names.iter().for_each(|n| {
            alarms.remove(n);
        });
        Ok(())
    }
}
