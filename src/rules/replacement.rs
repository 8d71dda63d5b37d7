//! After a group member is marked Unhealthy: is Auto Scaling's replacement done? The
//! marked instance must leave the group (terminating or gone) and the group be back at its
//! desired capacity with every other member `InService` and `Healthy`. Pure: the runner
//! (`pipeline::replacement`) reads the group, records the steps this returns and reports.

use crate::model::progress::human;

/// A step of a member's replacement, recorded when first seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// `SetInstanceHealth` answered.
    Marked,
    /// The marked instance is terminating or no longer in the group.
    Left,
    /// The group is back at desired capacity, every member in service and healthy.
    InService,
}

impl Step {
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Marked => "marked",
            Step::Left => "left",
            Step::InService => "in-service",
        }
    }
    pub fn parse(s: &str) -> Option<Step> {
        [Step::Marked, Step::Left, Step::InService]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
    fn said(self) -> &'static str {
        match self {
            Step::Marked => "marked Unhealthy",
            Step::Left => "left the group",
            Step::InService => "replacement in service",
        }
    }
}

/// A step and when it was seen (epoch ms).
pub type Mark = (Step, i64);

/// One member as Auto Scaling lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub instance_id: String,
    pub lifecycle: String,
    pub health: String,
}

/// The group now; None when it no longer exists.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Group {
    pub desired: i32,
    pub members: Vec<Member>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Not yet; what is missing.
    Waiting(String),
    /// Done: the steps' times are in the marks.
    Verified,
    /// Past the verify timeout; what is missing.
    TimedOut(String),
}

/// What the group shows about the replacement of `marked`: the marks to keep (the old
/// ones and any step seen for the first time now) and the verdict. `opened_ms`: when the
/// incident opened (its trusted time); `timeout_ms`: `AUTOHEAL_VERIFY_TIMEOUT`.
pub fn assess(
    marked: &str,
    group: Option<&Group>,
    marks: &[Mark],
    now_ms: i64,
    opened_ms: i64,
    timeout_ms: i64,
) -> (Vec<Mark>, Verdict) {
    let mut marks = marks.to_vec();
    let Some(g) = group else {
        let missing = "the group no longer exists".to_string();
        return (marks, out_of_time(missing, now_ms, opened_ms, timeout_ms));
    };
    let me = g.members.iter().find(|m| m.instance_id == marked);
    let left = me.is_none_or(|m| m.lifecycle.starts_with("Terminat"));
    let serving = g
        .members
        .iter()
        .filter(|m| m.instance_id != marked)
        .filter(|m| m.lifecycle == "InService" && m.health.eq_ignore_ascii_case("healthy"))
        .count();
    let desired = g.desired.max(0) as usize;
    let back = left && serving >= desired;
    let mut see = |step: Step, seen: bool| {
        if seen && !marks.iter().any(|(s, _)| *s == step) {
            marks.push((step, now_ms));
        }
    };
    see(Step::Left, left);
    see(Step::InService, back);
    if back {
        return (marks, Verdict::Verified);
    }
    let mut missing = vec![];
    if let Some(m) = me.filter(|_| !left) {
        missing.push(format!(
            "{marked} is still in the group ({}, {})",
            m.lifecycle, m.health
        ));
    }
    if serving < desired {
        missing.push(format!(
            "{serving} of {desired} other members InService and Healthy"
        ));
    }
    (
        marks,
        out_of_time(missing.join("; "), now_ms, opened_ms, timeout_ms),
    )
}

fn out_of_time(missing: String, now_ms: i64, opened_ms: i64, timeout_ms: i64) -> Verdict {
    if now_ms - opened_ms >= timeout_ms {
        Verdict::TimedOut(missing)
    } else {
        Verdict::Waiting(missing)
    }
}

/// The steps with their times since the alarm's state change (`opened_ms`), for people:
/// `marked Unhealthy +4s, left the group +1m02s, replacement in service +3m10s`.
pub fn times(marks: &[Mark], opened_ms: i64) -> String {
    let mut marks = marks.to_vec();
    marks.sort_by_key(|(_, t)| *t);
    marks
        .iter()
        .map(|(s, t)| format!("{} +{}", s.said(), human(t - opened_ms)))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = 1_795_403_565_000;
    const TIMEOUT: i64 = 900_000;

    fn member(id: &str, lifecycle: &str, health: &str) -> Member {
        Member {
            instance_id: id.into(),
            lifecycle: lifecycle.into(),
            health: health.into(),
        }
    }

    fn group(desired: i32, members: &[(&str, &str, &str)]) -> Group {
        Group {
            desired,
            members: members.iter().map(|(i, l, h)| member(i, l, h)).collect(),
        }
    }

    #[test]
    fn table() {
        let marked = [(Step::Marked, T + 4_000)];
        let now = T + 120_000;
        // (case, the group now, when, verdict, steps recorded)
        type Case = (&'static str, Option<Group>, i64, Verdict, Vec<Step>);
        let cases: Vec<Case> = vec![
            (
                "still in service: waiting",
                Some(group(2, &[("i-a", "InService", "Unhealthy"), ("i-b", "InService", "Healthy")])),
                now,
                Verdict::Waiting("i-a is still in the group (InService, Unhealthy); 1 of 2 other members InService and Healthy".into()),
                vec![Step::Marked],
            ),
            (
                "terminating, no replacement yet",
                Some(group(2, &[("i-a", "Terminating", "Unhealthy"), ("i-b", "InService", "Healthy")])),
                now,
                Verdict::Waiting("1 of 2 other members InService and Healthy".into()),
                vec![Step::Marked, Step::Left],
            ),
            (
                "replacement pending",
                Some(group(2, &[("i-b", "InService", "Healthy"), ("i-c", "Pending", "Healthy")])),
                now,
                Verdict::Waiting("1 of 2 other members InService and Healthy".into()),
                vec![Step::Marked, Step::Left],
            ),
            (
                "gone and replaced: verified",
                Some(group(2, &[("i-b", "InService", "Healthy"), ("i-c", "InService", "HEALTHY")])),
                now,
                Verdict::Verified,
                vec![Step::Marked, Step::Left, Step::InService],
            ),
            (
                "still terminating but the replacement serves: verified",
                Some(group(2, &[("i-a", "Terminating:Wait", "Unhealthy"), ("i-b", "InService", "Healthy"), ("i-c", "InService", "Healthy")])),
                now,
                Verdict::Verified,
                vec![Step::Marked, Step::Left, Step::InService],
            ),
            (
                "a replacement unhealthy is not done",
                Some(group(2, &[("i-b", "InService", "Healthy"), ("i-c", "InService", "Unhealthy")])),
                now,
                Verdict::Waiting("1 of 2 other members InService and Healthy".into()),
                vec![Step::Marked, Step::Left],
            ),
            (
                "never replaced: out of time",
                Some(group(2, &[("i-a", "InService", "Unhealthy"), ("i-b", "InService", "Healthy")])),
                T + TIMEOUT,
                Verdict::TimedOut("i-a is still in the group (InService, Unhealthy); 1 of 2 other members InService and Healthy".into()),
                vec![Step::Marked],
            ),
            (
                "the group was deleted",
                None,
                now,
                Verdict::Waiting("the group no longer exists".into()),
                vec![Step::Marked],
            ),
            (
                "scaled in to zero meanwhile: verified once it left",
                Some(group(0, &[])),
                now,
                Verdict::Verified,
                vec![Step::Marked, Step::Left, Step::InService],
            ),
        ];
        for (name, g, at, verdict, steps) in cases {
            let (marks, got) = assess("i-a", g.as_ref(), &marked, at, T, TIMEOUT);
            assert_eq!(got, verdict, "{name}");
            assert_eq!(
                marks.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
                steps,
                "{name}"
            );
        }
    }

    #[test]
    fn a_step_keeps_the_time_it_was_first_seen() {
        let g = group(1, &[("i-a", "Terminating", "Unhealthy")]);
        let (marks, _) = assess(
            "i-a",
            Some(&g),
            &[(Step::Marked, T)],
            T + 60_000,
            T,
            TIMEOUT,
        );
        let g = group(1, &[("i-c", "InService", "Healthy")]);
        let (marks, v) = assess("i-a", Some(&g), &marks, T + 180_000, T, TIMEOUT);
        assert_eq!(v, Verdict::Verified);
        assert_eq!(
            marks,
            vec![
                (Step::Marked, T),
                (Step::Left, T + 60_000),
                (Step::InService, T + 180_000)
            ]
        );
        assert_eq!(
            times(&marks, T - 2_000),
            "marked Unhealthy +2s, left the group +1m02s, replacement in service +3m02s"
        );
        for s in [Step::Marked, Step::Left, Step::InService] {
            assert_eq!(Step::parse(s.as_str()), Some(s));
        }
    }
}
