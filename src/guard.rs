//! The quorum guard, pure: instances sharing an `autoheal:cluster` tag never have more than
//! one member under repair at a time (CONTEXT §002: an operator took a 3-node cluster down
//! repairing one node). The members admitted are kept in the cluster's scope item in the
//! ledger (`aws::scope`); whether each is still under repair is read from its own head, so
//! nothing has to remember to release it.

use crate::decide::InstanceFacts;
use crate::incident::{Head, Status};
use crate::outcome::{Action, Verdict};
use crate::relaunch::plan::Phase;

pub const CLUSTER_TAG: &str = "autoheal:cluster";

/// The cluster an instance belongs to, if tagged.
pub fn cluster_of(instance: &InstanceFacts) -> Option<&str> {
    instance
        .tags
        .get(CLUSTER_TAG)
        .map(|c| c.trim())
        .filter(|c| !c.is_empty())
}

/// Whether the member admitted with `incident_id` is still under repair, from its head.
/// Released: its incident ended (a later one replaced it, or the alarm returned to OK), or
/// its copy was verified. A relaunch that failed stays under repair: people decide, and
/// the guard keeps automation off the rest of the cluster until that incident closes. A
/// member marked Unhealthy counts until `settle_window_ms` after it was marked — the time
/// its group needs to replace it (autoheal does not watch the replacement).
pub fn still_under_repair(
    head: Option<&Head>,
    incident_id: &str,
    now_ms: i64,
    settle_window_ms: i64,
) -> bool {
    let Some(h) = head else { return false };
    if h.incident_id != incident_id || h.status == Status::Closed {
        return false;
    }
    if h.progress.phase == Some(Phase::Recovered) {
        return false;
    }
    let marked = h.status == Status::Settled
        && h.action == Some(Action::MarkUnhealthy)
        && h.result == Some(Verdict::Done);
    !(marked && now_ms - h.opened_ms >= settle_window_ms)
}

#[derive(Debug, PartialEq)]
pub enum Admission {
    /// Go; the scope item becomes this list (instance, incident).
    Admit(Vec<(String, String)>),
    /// Wait; why, for the report.
    Hold(String),
}

/// `live`: the members still under repair. At most one at a time.
pub fn admit(cluster: &str, me: (&str, &str), live: &[(String, String)]) -> Admission {
    let others: Vec<&str> = live
        .iter()
        .filter(|(id, _)| id != me.0)
        .map(|(id, _)| id.as_str())
        .collect();
    if others.is_empty() {
        Admission::Admit(vec![(me.0.to_string(), me.1.to_string())])
    } else {
        Admission::Hold(format!(
            "quorum guard: cluster {cluster} already has {} under repair; this member waits until that repair is verified (checked every minute)",
            others.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incident::AlarmContext;
    use crate::relaunch::plan::Progress;

    const T: i64 = 1_795_403_565_123;
    const WINDOW: i64 = 900_000;

    fn head(status: Status, action: Option<Action>, phase: Option<Phase>) -> Head {
        Head {
            instance_id: "i-1".into(),
            incident_id: "inc-1".into(),
            status,
            opened_ms: T,
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
        }
    }

    #[test]
    fn under_repair_table() {
        use Status::*;
        let relaunching = head(Repairing, None, Some(Phase::Launching));
        let cases: Vec<(&str, Option<Head>, &str, i64, bool)> = vec![
            ("no head any more", None, "inc-1", T, false),
            (
                "a relaunch under way",
                Some(relaunching.clone()),
                "inc-1",
                T,
                true,
            ),
            (
                "another incident replaced it",
                Some(relaunching),
                "inc-0",
                T,
                false,
            ),
            (
                "copy verified",
                Some(head(Settled, Some(Action::Verify), Some(Phase::Recovered))),
                "inc-1",
                T,
                false,
            ),
            (
                "relaunch failed: people decide",
                Some(head(Settled, Some(Action::Verify), Some(Phase::Failed))),
                "inc-1",
                T,
                true,
            ),
            (
                "alarm returned to OK",
                Some(head(Closed, Some(Action::Verify), Some(Phase::Failed))),
                "inc-1",
                T,
                false,
            ),
            (
                "marked Unhealthy just now",
                Some(head(Settled, Some(Action::MarkUnhealthy), None)),
                "inc-1",
                T + 60_000,
                true,
            ),
            (
                "marked Unhealthy a window ago",
                Some(head(Settled, Some(Action::MarkUnhealthy), None)),
                "inc-1",
                T + WINDOW,
                false,
            ),
            (
                "claimed, not yet acted",
                Some(head(Repairing, None, None)),
                "inc-1",
                T + WINDOW,
                true,
            ),
        ];
        for (what, h, incident, now, want) in cases {
            assert_eq!(
                still_under_repair(h.as_ref(), incident, now, WINDOW),
                want,
                "{what}"
            );
        }
    }

    #[test]
    fn one_member_at_a_time() {
        let live = |ids: &[&str]| -> Vec<(String, String)> {
            ids.iter()
                .map(|i| (i.to_string(), format!("inc-{i}")))
                .collect()
        };
        assert_eq!(
            admit("db", ("i-2", "inc-i-2"), &live(&[])),
            Admission::Admit(live(&["i-2"]))
        );
        assert_eq!(
            admit("db", ("i-2", "inc-i-2"), &live(&["i-2"])),
            Admission::Admit(live(&["i-2"])),
            "a resumed repair is already in"
        );
        let Admission::Hold(why) = admit("db", ("i-2", "inc-i-2"), &live(&["i-1"])) else {
            panic!()
        };
        assert!(
            why.starts_with("quorum guard: cluster db already has i-1 under repair"),
            "{why}"
        );
        let tags = |v: Option<&str>| InstanceFacts {
            tags: v
                .map(|v| (CLUSTER_TAG.to_string(), v.to_string()))
                .into_iter()
                .collect(),
            ..Default::default()
        };
        assert_eq!(cluster_of(&tags(Some("db"))), Some("db"));
        assert_eq!(cluster_of(&tags(Some(" "))), None);
        assert_eq!(cluster_of(&tags(None)), None);
    }
}
