//! The repair guards, pure. A scope's members under repair are capped: instances sharing
//! an `autoheal:cluster` tag, and Auto Scaling groups of desired capacity ≤ 3, one at a
//! time (the quorum guard: an operator once took a 3-node cluster down repairing
//! one node); larger groups at most `AUTOHEAL_MAX_INFLIGHT_PERCENT` of their desired
//! capacity (at least 1). The members admitted are kept in the scope's item in the ledger
//! (`ledger::scope`); whether each is still under repair is read from its own head, so
//! nothing has to remember to release it.

use crate::model::facts::InstanceFacts;
use crate::model::outcome::{Action, Verdict};
use crate::model::progress::Phase;
use crate::model::scope::ScopeKey;
use crate::rules::incident::{Head, Status};

pub const CLUSTER_TAG: &str = "autoheal:cluster";

/// Groups this small (desired capacity) are repaired one member at a time.
pub const SMALL_GROUP: i32 = 3;

/// The cluster an instance belongs to, if tagged.
pub fn cluster_of(instance: &InstanceFacts) -> Option<&str> {
    instance
        .tags
        .get(CLUSTER_TAG)
        .map(|c| c.trim())
        .filter(|c| !c.is_empty())
}

/// Where a cap applies, and how many may be under repair there at once.
#[derive(Debug, Clone, PartialEq)]
pub struct Scope {
    /// Its item in the ledger, and its label for people.
    pub key: ScopeKey,
    pub limit: usize,
    /// The rule, for the report.
    pub rule: String,
    /// Counting repairs *started* within this window of alarm times (the account budget)
    /// rather than repairs still under way.
    pub window_ms: Option<i64>,
}

/// The account budget's window: new repairs per 10 minutes of alarm time.
pub const ACCOUNT_WINDOW_MS: i64 = 600_000;

/// Holds in one scope are reported once per this period, not one by one.
pub const HOLD_REPORT_PERIOD_MS: i64 = 600_000;

/// Added to the one reported hold of a scope's period.
pub fn summary_note(scope: &Scope) -> String {
    format!(
        "Other holds in {} in the next 10 minutes are not reported one by one (`autoheal-admin history` lists them)",
        scope.key.label()
    )
}

/// `AUTOHEAL_ACCOUNT_MAX_REPAIRS` (None: off).
pub fn account_scope(max_repairs: Option<u32>) -> Option<Scope> {
    max_repairs.map(|n| Scope {
        key: ScopeKey::Account,
        limit: n as usize,
        rule: format!("account budget: {n} new repairs per 10 minutes"),
        window_ms: Some(ACCOUNT_WINDOW_MS),
    })
}

/// For the account budget: the admitted member's repair started within `window_ms` of
/// `alarm_ms` (the alarm asking now), measured on alarm times.
pub fn started_within(
    head: Option<&Head>,
    incident_id: &str,
    alarm_ms: i64,
    window_ms: i64,
) -> bool {
    head.is_some_and(|h| {
        h.incident_id == incident_id && !h.is_held() && (alarm_ms - h.opened_ms).abs() < window_ms
    })
}

/// Whether `scope_for` needs the group's desired capacity (one more read) to decide.
pub fn needs_group_size(
    instance: &InstanceFacts,
    quorum: bool,
    inflight_percent: Option<u32>,
) -> bool {
    let cluster_scope = quorum && cluster_of(instance).is_some();
    !cluster_scope && (quorum || inflight_percent.is_some())
}

/// The guards that apply (`quorum`: `AUTOHEAL_QUORUM_GUARD`; `inflight_percent`:
/// `AUTOHEAL_MAX_INFLIGHT_PERCENT`, None = off). `group`: name and desired capacity.
/// The key `scope_for` gives the instance's scope in `region` when it gives one, known
/// before the group's size: the scope item can be read ahead, in the round that reads it.
pub fn scope_key(
    instance: &InstanceFacts,
    group: Option<&str>,
    quorum: bool,
    inflight_percent: Option<u32>,
    region: &str,
) -> Option<ScopeKey> {
    let key = match (cluster_of(instance).filter(|_| quorum), group) {
        (Some(cluster), _) => ScopeKey::cluster(cluster),
        (None, Some(name)) if quorum || inflight_percent.is_some() => ScopeKey::group(name),
        _ => return None,
    };
    Some(key.in_region(region))
}

pub fn scope_for(
    instance: &InstanceFacts,
    group: Option<(&str, i32)>,
    quorum: bool,
    inflight_percent: Option<u32>,
) -> Option<Scope> {
    if let Some(cluster) = cluster_of(instance).filter(|_| quorum) {
        return Some(Scope {
            key: ScopeKey::cluster(cluster),
            limit: 1,
            rule: "quorum guard: one member of a cluster at a time".into(),
            window_ms: None,
        });
    }
    let (name, desired) = group?;
    let key = ScopeKey::group(name);
    if quorum && desired <= SMALL_GROUP {
        return Some(Scope {
            key,
            limit: 1,
            rule: format!("quorum guard: one member at a time in a group of {desired}"),
            window_ms: None,
        });
    }
    let percent = inflight_percent?;
    let limit = ((desired.max(0) as u64 * percent as u64) / 100).max(1) as usize;
    Some(Scope {
        key,
        limit,
        rule: format!("in-flight budget: {percent}% of {desired} = {limit} at a time"),
        window_ms: None,
    })
}

/// Whether the member admitted with `incident_id` is still under repair, from its head.
/// Released: its incident ended (a later one replaced it, or the alarm returned to OK), its
/// copy was verified, or — a member marked Unhealthy — following its replacement ended
/// (verified, or out of time and told to people). A relaunch that failed stays under
/// repair: people decide, and the guard keeps automation off the rest of the scope until
/// that incident closes.
pub fn still_under_repair(head: Option<&Head>, incident_id: &str) -> bool {
    let Some(h) = head else { return false };
    if h.incident_id != incident_id || h.status == Status::Closed || h.is_held() {
        return false;
    }
    if h.progress.phase == Some(Phase::Recovered) {
        return false;
    }
    let member_ended = h.status == Status::Settled
        && h.progress.phase.is_none()
        && matches!(h.action, Some(Action::MarkUnhealthy | Action::Verify));
    !member_ended
}

/// Whether people may free by hand (`autoheal-admin release`) the guard places that
/// `incident_id` holds, judged from its instance's head. Ok: autoheal no longer works on
/// it, and why (for the audit trail); Err: it still does, and frees them itself.
pub fn may_release(head: Option<&Head>, incident_id: &str) -> Result<String, String> {
    let Some(h) = head.filter(|h| h.incident_id == incident_id) else {
        return Ok("its instance's ledger head holds another incident or none".into());
    };
    let said = |v: Option<Verdict>| v.map_or("none", Verdict::as_str);
    let for_people = matches!(h.result, Some(Verdict::Failed | Verdict::Held))
        || h.progress.phase == Some(Phase::Failed);
    match h.status {
        Status::Closed => Ok("the incident is closed".into()),
        Status::Settled if for_people => Ok(format!(
            "the incident ended {} for people",
            said(h.result)
        )),
        status => Err(format!(
            "incident {incident_id} is still in progress ({}, result {}{}): autoheal frees its places itself when it ends; release only an incident that ended failed or held for people",
            status.as_str(),
            said(h.result),
            h.progress
                .phase
                .map_or(String::new(), |p| format!(", relaunch {}", p.as_str()))
        )),
    }
}

#[derive(Debug, PartialEq)]
pub enum Admission {
    /// Go; the scope item becomes this list (instance, incident).
    Admit(Vec<(String, String)>),
    /// Wait; why, for the report.
    Hold(String),
}

/// `live`: the scope's members still under repair. An entry of this instance with another
/// incident is another repair (a late invocation of an older incident must not drop it).
pub fn admit(scope: &Scope, me: (&str, &str), live: &[(String, String)]) -> Admission {
    let others: Vec<&(String, String)> = live
        .iter()
        .filter(|(id, inc)| (id.as_str(), inc.as_str()) != me)
        .collect();
    if others.len() < scope.limit {
        let mut list: Vec<(String, String)> = others.into_iter().cloned().collect();
        list.push((me.0.to_string(), me.1.to_string()));
        Admission::Admit(list)
    } else {
        // Members are ledger keys; people read instance ids (a group's label names its
        // region).
        let ids: Vec<&str> = others
            .iter()
            .map(|(key, _)| crate::model::keys::instance_of(key))
            .collect();
        Admission::Hold(format!(
            "{}: {} already has {} under repair; this member waits until a repair there is verified (checked every minute)",
            scope.rule,
            scope.key.label(),
            ids.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::progress::Progress;
    use crate::rules::incident::AlarmContext;

    const T: i64 = 1_795_403_565_123;

    fn head(status: Status, action: Option<Action>, phase: Option<Phase>) -> Head {
        Head {
            instance_id: "i-1".into(),
            incident_id: "inc-1".into(),
            status,
            opened_ms: T,
            alarm_ms: T,
            closed_ms: None,
            transitions: vec![],
            lease_until_ms: 0,
            version: 2,
            attempts: 1,
            action,
            result: action.map(|_| Verdict::Done),
            reason: None,
            group: None,
            alarm: AlarmContext::default(),
            progress: Progress {
                phase,
                ..Progress::default()
            },
            hold_until_ms: None,
            rungs: vec![],
            hold_kind: None,
            hold_scope: None,
            member_steps: vec![],
            ec2_heard: vec![],
        }
    }

    #[test]
    fn the_scope_key_read_ahead_is_the_scopes() {
        let mut clustered = InstanceFacts::default();
        clustered.tags.insert(CLUSTER_TAG.into(), "db".into());
        let plain = InstanceFacts::default();
        for instance in [&clustered, &plain] {
            for group in [None, Some("web")] {
                for desired in [1, 3, 4, 40] {
                    for quorum in [true, false] {
                        for percent in [None, Some(10)] {
                            let size = group.map(|g| (g, desired));
                            let scope = scope_for(instance, size, quorum, percent);
                            let key = scope_key(instance, group, quorum, percent, "r");
                            if let Some(scope) = scope {
                                assert_eq!(
                                    Some(scope.key.in_region("r")),
                                    key,
                                    "{group:?} {desired} {quorum} {percent:?}"
                                );
                            }
                        }
                    }
                }
            }
        }
        assert_eq!(
            scope_key(&clustered, Some("web"), true, None, "r").map(|k| k.to_string()),
            Some("cluster:db@r".to_string())
        );
        assert_eq!(scope_key(&plain, Some("web"), false, None, "r"), None);
    }

    #[test]
    fn under_repair_table() {
        use Status::*;
        let relaunching = head(Repairing, None, Some(Phase::Launching));
        let cases: Vec<(&str, Option<Head>, &str, bool)> = vec![
            ("no head any more", None, "inc-1", false),
            (
                "a relaunch under way",
                Some(relaunching.clone()),
                "inc-1",
                true,
            ),
            (
                "another incident replaced it",
                Some(relaunching),
                "inc-0",
                false,
            ),
            (
                "copy verified",
                Some(head(Settled, Some(Action::Verify), Some(Phase::Recovered))),
                "inc-1",
                false,
            ),
            (
                "relaunch failed: people decide",
                Some(head(Settled, Some(Action::Verify), Some(Phase::Failed))),
                "inc-1",
                true,
            ),
            (
                "alarm returned to OK",
                Some(head(Closed, Some(Action::Verify), Some(Phase::Failed))),
                "inc-1",
                false,
            ),
            (
                "marked Unhealthy, replacement followed",
                Some(Head {
                    result: Some(Verdict::InProgress),
                    ..head(Repairing, Some(Action::MarkUnhealthy), None)
                }),
                "inc-1",
                true,
            ),
            (
                "replacement verified",
                Some(head(Settled, Some(Action::Verify), None)),
                "inc-1",
                false,
            ),
            (
                "replacement out of time, told to people",
                Some(Head {
                    result: Some(Verdict::Failed),
                    ..head(Settled, Some(Action::Verify), None)
                }),
                "inc-1",
                false,
            ),
            (
                "Auto Scaling had it already",
                Some(head(Settled, Some(Action::MarkUnhealthy), None)),
                "inc-1",
                false,
            ),
            (
                "claimed, not yet acted",
                Some(head(Repairing, None, None)),
                "inc-1",
                true,
            ),
            (
                "held (grace, another guard): nothing under way",
                Some(Head {
                    result: Some(Verdict::Held),
                    hold_until_ms: Some(T),
                    ..head(Repairing, None, None)
                }),
                "inc-1",
                false,
            ),
        ];
        for (what, h, incident, want) in cases {
            assert_eq!(still_under_repair(h.as_ref(), incident), want, "{what}");
        }
    }

    #[test]
    fn only_an_incident_people_have_may_be_released_by_hand() {
        use Status::*;
        let with = |status, result, phase| Head {
            result,
            ..head(status, None, phase)
        };
        // (what, head, incident, released)
        let cases: Vec<(&str, Option<Head>, &str, bool)> = vec![
            ("no head any more", None, "inc-1", true),
            (
                "a later incident",
                Some(with(Repairing, None, None)),
                "inc-0",
                true,
            ),
            (
                "closed",
                Some(with(Closed, Some(Verdict::Done), None)),
                "inc-1",
                true,
            ),
            (
                "a relaunch failed",
                Some(with(Settled, Some(Verdict::Failed), Some(Phase::Failed))),
                "inc-1",
                true,
            ),
            (
                "a relaunch refused by AWS mid-way",
                Some(with(Settled, Some(Verdict::Failed), Some(Phase::Launching))),
                "inc-1",
                true,
            ),
            (
                "the ladder ended: held for people",
                Some(with(Settled, Some(Verdict::Held), None)),
                "inc-1",
                true,
            ),
            (
                "a relaunch stopped by a tag",
                Some(with(Settled, Some(Verdict::Ignored), Some(Phase::Failed))),
                "inc-1",
                true,
            ),
            (
                "a relaunch under way",
                Some(with(
                    Repairing,
                    Some(Verdict::InProgress),
                    Some(Phase::Launching),
                )),
                "inc-1",
                false,
            ),
            (
                "a rung under way",
                Some(with(Repairing, Some(Verdict::InProgress), None)),
                "inc-1",
                false,
            ),
            (
                "held by a guard",
                Some(Head {
                    hold_until_ms: Some(T),
                    ..with(Repairing, Some(Verdict::Held), None)
                }),
                "inc-1",
                false,
            ),
            (
                "marked, its replacement followed",
                Some(with(Repairing, Some(Verdict::InProgress), None)),
                "inc-1",
                false,
            ),
            (
                "settled, waiting for its OK",
                Some(with(Settled, Some(Verdict::Done), None)),
                "inc-1",
                false,
            ),
        ];
        for (what, h, incident, want) in cases {
            let got = may_release(h.as_ref(), incident);
            assert_eq!(got.is_ok(), want, "{what}: {got:?}");
        }
        let refused = may_release(
            Some(&with(
                Repairing,
                Some(Verdict::InProgress),
                Some(Phase::Launching),
            )),
            "inc-1",
        );
        assert_eq!(
            refused.unwrap_err(),
            "incident inc-1 is still in progress (repairing, result in_progress, relaunch launching): autoheal frees its places itself when it ends; release only an incident that ended failed or held for people"
        );
    }

    #[test]
    fn scope_table() {
        let tagged = |cluster: Option<&str>| InstanceFacts {
            tags: cluster
                .map(|v| (CLUSTER_TAG.to_string(), v.to_string()))
                .into_iter()
                .collect(),
            ..Default::default()
        };
        let limit = |i: &InstanceFacts, g: Option<(&str, i32)>, q: bool, p: Option<u32>| {
            scope_for(i, g, q, p).map(|s| (s.key.to_string(), s.limit))
        };
        let db = tagged(Some("db"));
        let plain = tagged(None);
        // (what, got: scope key and limit, want)
        type Case<'a> = (&'a str, Option<(String, usize)>, Option<(&'a str, usize)>);
        let cases: Vec<Case> = vec![
            (
                "cluster",
                limit(&db, None, true, Some(10)),
                Some(("cluster:db", 1)),
            ),
            (
                "cluster wins over its group",
                limit(&db, Some(("web", 40)), true, Some(10)),
                Some(("cluster:db", 1)),
            ),
            (
                "quorum off: the group's budget",
                limit(&db, Some(("web", 40)), false, Some(10)),
                Some(("group:web", 4)),
            ),
            (
                "blank cluster tag",
                limit(&tagged(Some(" ")), None, true, Some(10)),
                None,
            ),
            (
                "standalone, untagged",
                limit(&plain, None, true, Some(10)),
                None,
            ),
            (
                "group of 3",
                limit(&plain, Some(("web", 3)), true, Some(10)),
                Some(("group:web", 1)),
            ),
            (
                "group of 40 at 10%",
                limit(&plain, Some(("web", 40)), true, Some(10)),
                Some(("group:web", 4)),
            ),
            (
                "group of 5 at 10%: at least 1",
                limit(&plain, Some(("web", 5)), true, Some(10)),
                Some(("group:web", 1)),
            ),
            (
                "group of 200 at 25%",
                limit(&plain, Some(("web", 200)), true, Some(25)),
                Some(("group:web", 50)),
            ),
            (
                "budget off",
                limit(&plain, Some(("web", 40)), true, None),
                None,
            ),
            (
                "all off",
                limit(&plain, Some(("web", 3)), false, None),
                None,
            ),
            (
                "quorum off, small group: budget",
                limit(&plain, Some(("web", 3)), false, Some(10)),
                Some(("group:web", 1)),
            ),
        ];
        for (what, got, want) in cases {
            assert_eq!(got, want.map(|(k, l)| (k.to_string(), l)), "{what}");
        }
        // The group's size is read only when a group rule can apply.
        assert!(
            !needs_group_size(&db, true, Some(10)),
            "the cluster rule wins"
        );
        assert!(
            needs_group_size(&db, false, Some(10)),
            "quorum off: the group's budget"
        );
        assert!(needs_group_size(&plain, true, None));
        assert!(!needs_group_size(&plain, false, None), "all off");
    }

    #[test]
    fn the_account_budget_counts_repairs_started_within_ten_minutes_of_alarm_time() {
        let scope = account_scope(Some(5)).unwrap();
        assert_eq!(
            (scope.key.to_string().as_str(), scope.limit),
            ("account", 5)
        );
        assert_eq!(scope.rule, "account budget: 5 new repairs per 10 minutes");
        assert!(account_scope(None).is_none());
        let started = head(Status::Settled, Some(Action::MarkUnhealthy), None);
        let w = ACCOUNT_WINDOW_MS;
        assert!(started_within(Some(&started), "inc-1", T + w - 1, w));
        assert!(
            !started_within(Some(&started), "inc-1", T + w, w),
            "older than the window"
        );
        assert!(
            !started_within(Some(&started), "inc-0", T, w),
            "another incident"
        );
        assert!(!started_within(None, "inc-1", T, w));
        let held = Head {
            result: Some(Verdict::Held),
            hold_until_ms: Some(T),
            ..head(Status::Repairing, None, None)
        };
        assert!(
            !started_within(Some(&held), "inc-1", T, w),
            "held: not started"
        );
    }

    #[test]
    fn admission_up_to_the_limit() {
        let live = |ids: &[&str]| -> Vec<(String, String)> {
            ids.iter()
                .map(|i| (i.to_string(), format!("inc-{i}")))
                .collect()
        };
        let scope = |limit| Scope {
            key: ScopeKey::cluster("db"),
            limit,
            rule: "quorum guard: one member of a cluster at a time".into(),
            window_ms: None,
        };
        assert_eq!(
            admit(&scope(1), ("i-2", "inc-i-2"), &live(&[])),
            Admission::Admit(live(&["i-2"]))
        );
        assert_eq!(
            admit(&scope(1), ("i-2", "inc-i-2"), &live(&["i-2"])),
            Admission::Admit(live(&["i-2"])),
            "a resumed repair is already in"
        );
        assert!(
            matches!(
                admit(&scope(1), ("i-2", "inc-old"), &live(&["i-2"])),
                Admission::Hold(_)
            ),
            "a late invocation of an older incident does not displace the current repair"
        );
        let Admission::Hold(why) = admit(&scope(1), ("i-2", "inc-i-2"), &live(&["i-1"])) else {
            panic!()
        };
        assert_eq!(why, "quorum guard: one member of a cluster at a time: cluster db already has i-1 under repair; this member waits until a repair there is verified (checked every minute)");
        assert_eq!(
            admit(&scope(2), ("i-3", "inc-i-3"), &live(&["i-1"])),
            Admission::Admit(live(&["i-1", "i-3"]))
        );
        assert!(matches!(
            admit(&scope(2), ("i-3", "inc-i-3"), &live(&["i-1", "i-2"])),
            Admission::Hold(_)
        ));
    }

    /// Property: for random interleavings of alarms, OKs, ticks, verifications and the
    /// two halves of concurrent admissions (read the scope item and heads; write the scope
    /// item on the version read), the members actually under repair never exceed the
    /// scope's limit.
    #[test]
    fn random_interleavings_never_exceed_the_guard() {
        struct Task {
            member: usize,
            incident: String,
            /// Some: read done, the list to write and the version it was read at.
            read: Option<(Vec<(String, String)>, i64)>,
        }
        fn repairing(h: &Head) -> bool {
            h.status == Status::Repairing && h.progress.phase == Some(Phase::Launching)
        }
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        let mut admitted_total = 0;
        for (members, limit) in [(3usize, 1usize), (6, 2), (10, 1)] {
            let scope = Scope {
                key: ScopeKey::cluster("db"),
                limit,
                rule: "quorum guard".into(),
                window_ms: None,
            };
            for _run in 0..500 {
                let ids: Vec<String> = (0..members).map(|m| format!("i-{m}")).collect();
                let mut heads: Vec<Option<Head>> = vec![None; members];
                let mut item: (Vec<(String, String)>, i64) = (vec![], 0);
                let mut tasks: Vec<Task> = vec![];
                let mut serial = 0;
                for _event in 0..80 {
                    match next(6) {
                        // An alarm opens an incident unless one is open.
                        0 => {
                            let m = next(members);
                            let open = heads[m]
                                .as_ref()
                                .is_some_and(|h| h.status == Status::Repairing);
                            if !open {
                                serial += 1;
                                let mut h = head(Status::Repairing, None, None);
                                h.instance_id = ids[m].clone();
                                h.incident_id = format!("inc-{serial}");
                                tasks.push(Task {
                                    member: m,
                                    incident: h.incident_id.clone(),
                                    read: None,
                                });
                                heads[m] = Some(h);
                            }
                        }
                        // OK: the incident closes.
                        1 => {
                            if let Some(h) = heads[next(members)].as_mut() {
                                h.status = Status::Closed;
                            }
                        }
                        // A repair under way is verified.
                        2 => {
                            if let Some(h) = heads[next(members)].as_mut().filter(|h| repairing(h))
                            {
                                h.status = Status::Settled;
                                h.progress.phase = Some(Phase::Recovered);
                            }
                        }
                        // The tick takes every held incident on again.
                        3 => {
                            for (m, h) in heads.iter().enumerate() {
                                let Some(h) = h
                                    .as_ref()
                                    .filter(|h| h.is_held() && h.status == Status::Repairing)
                                else {
                                    continue;
                                };
                                if !tasks.iter().any(|t| t.member == m) {
                                    tasks.push(Task {
                                        member: m,
                                        incident: h.incident_id.clone(),
                                        read: None,
                                    });
                                }
                            }
                        }
                        // One half-step of one admission in flight.
                        _ if !tasks.is_empty() => {
                            let k = next(tasks.len());
                            let task = &mut tasks[k];
                            let (me, inc) = (ids[task.member].clone(), task.incident.clone());
                            match task.read.take() {
                                None => {
                                    let live: Vec<(String, String)> = item
                                        .0
                                        .iter()
                                        .filter(|(id, i)| {
                                            let m: usize = id[2..].parse().unwrap();
                                            still_under_repair(heads[m].as_ref(), i)
                                        })
                                        .cloned()
                                        .collect();
                                    match admit(&scope, (&me, &inc), &live) {
                                        Admission::Admit(list) => task.read = Some((list, item.1)),
                                        Admission::Hold(_) => {
                                            let m = task.member;
                                            tasks.remove(k);
                                            if let Some(h) = heads[m].as_mut().filter(|h| {
                                                h.incident_id == inc
                                                    && h.status == Status::Repairing
                                            }) {
                                                h.result = Some(Verdict::Held);
                                                h.hold_until_ms = Some(T);
                                            }
                                        }
                                    }
                                }
                                Some((list, version)) if version == item.1 => {
                                    item = (list, version + 1);
                                    let m = task.member;
                                    tasks.remove(k);
                                    // The repair starts on the incident it was admitted for,
                                    // unless an OK closed it meanwhile.
                                    if let Some(h) = heads[m].as_mut().filter(|h| {
                                        h.incident_id == inc && h.status == Status::Repairing
                                    }) {
                                        h.result = None;
                                        h.hold_until_ms = None;
                                        h.progress.phase = Some(Phase::Launching);
                                        admitted_total += 1;
                                    }
                                }
                                // Lost the race: read again.
                                Some(_) => {}
                            }
                        }
                        _ => {}
                    }
                    let under_repair = heads.iter().flatten().filter(|h| repairing(h)).count();
                    assert!(
                        under_repair <= limit,
                        "{under_repair} under repair in a scope of limit {limit}: {heads:#?}"
                    );
                }
            }
        }
        assert!(
            admitted_total > 1000,
            "the runs did repair: {admitted_total}"
        );
    }
}
