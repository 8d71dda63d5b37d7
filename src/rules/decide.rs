//! The judgement: `Policy x Signal x Facts -> Step` (here), and the order of the rules on a
//! claimed incident (`plan`). Pure; every branch is in the table tests.

use crate::intake::{Metric, Signal};
use crate::model::facts::{Facts, GroupFacts, InstanceFacts};
use crate::model::handover::Handover;
use crate::model::outcome::{Action, Verdict};
use crate::model::tags::REPLACED_BY_TAG;
use crate::rules::policy::{policy_for, Mode};

/// `AUTOHEAL_GRACE_SECONDS`: unset -> 0 for Auto Scaling members (a replacement is cheap)
/// and 120 s for standalone instances (a relaunch is not); a duration -> both; `off` -> 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grace {
    pub group_member_ms: i64,
    pub standalone_ms: i64,
}

pub const DEFAULT_STANDALONE_GRACE_SECONDS: i64 = 120;

impl Default for Grace {
    fn default() -> Grace {
        Grace {
            group_member_ms: 0,
            standalone_ms: DEFAULT_STANDALONE_GRACE_SECONDS * 1000,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// `SetInstanceHealth(Unhealthy, ShouldRespectGracePeriod=false)`.
    MarkUnhealthy { group: String },
    /// Image the standalone instance without reboot and launch a copy (src/relaunch).
    Relaunch,
    /// Call nothing; report this (for people, when `handover` says why).
    Report {
        action: Action,
        result: Verdict,
        reason: String,
        handover: Option<Handover>,
    },
}

fn report(action: Action, result: Verdict, reason: impl Into<String>) -> Step {
    Step::Report {
        action,
        result,
        reason: reason.into(),
        handover: None,
    }
}

/// A report that hands the instance to people, for `kind`.
pub fn for_people(
    kind: Handover,
    action: Action,
    result: Verdict,
    reason: impl Into<String>,
) -> Step {
    Step::Report {
        action,
        result,
        reason: reason.into(),
        handover: Some(kind),
    }
}

/// Decide what to do about an ALARM transition. `other_controllers`: the deployer's own
/// tag keys of other controllers (`owner::other_owner`).
pub fn decide(
    signal: &Signal,
    facts: &Facts,
    env_dry_run: bool,
    other_controllers: &[String],
) -> Step {
    let Some(instance) = &facts.instance else {
        return report(
            Action::None,
            Verdict::Ignored,
            "instance not found in this account and region",
        );
    };
    if matches!(instance.state.as_str(), "terminated" | "shutting-down") {
        return report(
            Action::None,
            Verdict::Ignored,
            format!("instance is {}", instance.state),
        );
    }
    let policy = policy_for(
        env_dry_run,
        &instance.tags,
        facts.group.as_ref().map(|g| &g.tags),
    );
    if policy.mode == Mode::Off {
        return report(
            Action::None,
            Verdict::Ignored,
            format!("opted out ({})", policy.source),
        );
    }
    if signal.metric == Metric::StatusCheckFailedAttachedEbs {
        return for_people(
            Handover::AttachedEbs,
            Action::None,
            Verdict::Held,
            "attached EBS volume check failed: reported only, no automated action",
        );
    }
    if let Some(why) =
        crate::rules::owner::other_owner(instance, facts.group.as_ref(), other_controllers)
    {
        return for_people(
            Handover::OtherController,
            Action::None,
            Verdict::Held,
            format!("not autoheal's to repair: {why}"),
        );
    }
    match &facts.group {
        None => decide_standalone(instance, policy.mode, &policy.source),
        Some(group) => decide_member(group, policy.mode, &policy.source),
    }
}

/// An Auto Scaling member: marked Unhealthy unless Auto Scaling has it already or would
/// not replace it.
fn decide_member(group: &GroupFacts, mode: Mode, source: &str) -> Step {
    let lifecycle = group.lifecycle.as_str();
    if lifecycle.starts_with("Terminat") {
        return report(
            Action::MarkUnhealthy,
            Verdict::Duplicate,
            format!("already {lifecycle} in group {}", group.name),
        );
    }
    if group.health.eq_ignore_ascii_case("unhealthy") {
        return report(
            Action::MarkUnhealthy,
            Verdict::Duplicate,
            format!("already Unhealthy in group {}", group.name),
        );
    }
    if !(lifecycle == "InService" || lifecycle.starts_with("Pending")) {
        return for_people(
            Handover::MemberNotReplaceable,
            Action::None,
            Verdict::Held,
            format!(
                "instance is {lifecycle} in group {}: Auto Scaling would not replace it",
                group.name
            ),
        );
    }
    let would = format!("mark Unhealthy in group {}", group.name);
    match mode {
        Mode::Act => Step::MarkUnhealthy {
            group: group.name.clone(),
        },
        Mode::DryRun => for_people(
            Handover::DryRun,
            Action::MarkUnhealthy,
            Verdict::DryRun,
            format!("dry run ({}): would {would}", source),
        ),
        Mode::Notify => for_people(
            Handover::ReportOnly,
            Action::None,
            Verdict::Held,
            format!("report only ({}): would {would}", source),
        ),
        Mode::Off => unreachable!("handled above"),
    }
}

fn decide_standalone(instance: &InstanceFacts, mode: Mode, source: &str) -> Step {
    if let Some(copy) = instance.tags.get(REPLACED_BY_TAG) {
        return report(
            Action::LaunchReplacement,
            Verdict::Duplicate,
            format!("already replaced by {copy}"),
        );
    }
    if instance.root_device_type.as_deref() == Some("instance-store") {
        return for_people(
            Handover::InstanceStoreRoot,
            Action::None,
            Verdict::Held,
            "instance-store root device cannot be imaged: needs a person (see the runbook)",
        );
    }
    let would = "image it without reboot and launch a copy with the same environment";
    match mode {
        Mode::Act => Step::Relaunch,
        Mode::DryRun => for_people(
            Handover::DryRun,
            Action::CreateImage,
            Verdict::DryRun,
            format!("dry run ({source}): would {would}"),
        ),
        Mode::Notify => for_people(
            Handover::ReportOnly,
            Action::None,
            Verdict::Held,
            format!("report only ({source}): would {would}"),
        ),
        Mode::Off => unreachable!("handled by the caller"),
    }
}

/// One relaunch per lineage per window: an instance that is itself autoheal's copy of
/// another (tag `autoheal:source-instance`), launched less than `window_ms` ago, is not
/// relaunched again: a copy failing again soon is not a broken host, and goes to people.
/// `window_ms` 0: off. Other steps pass through.
pub fn limit_lineage(step: Step, instance: &InstanceFacts, window_ms: i64, now_ms: i64) -> Step {
    let (Step::Relaunch, Some(source), Some(launched)) = (
        &step,
        instance.tags.get(crate::model::tags::SOURCE_TAG),
        instance.launch_ms,
    ) else {
        return step;
    };
    if window_ms <= 0 || now_ms - launched >= window_ms {
        return step;
    }
    for_people(
        Handover::RelaunchBudget,
        Action::LaunchReplacement,
        Verdict::Held,
        format!(
            "relaunch budget: this instance is autoheal's copy of {source}, launched {} min ago; a copy failing again within {} h is not relaunched again — it needs a person (docs/RUNBOOK.md)",
            (now_ms - launched) / 60_000,
            window_ms / 3_600_000
        ),
    )
}

/// Grace (a failed node often comes back by itself minutes later): an action
/// waits until the grace after the state change of the alarm that opened the incident
/// (`alarm_ms`) — measured on that time, not on when the event arrived, and not restarted
/// by later alarms of the same incident. Returns when to act and why it waits; None: now.
pub fn grace_hold(step: &Step, alarm_ms: i64, grace: Grace, now_ms: i64) -> Option<(i64, String)> {
    let (wait_ms, whom) = match step {
        Step::MarkUnhealthy { .. } => (grace.group_member_ms, "Auto Scaling members"),
        Step::Relaunch => (grace.standalone_ms, "standalone instances"),
        Step::Report { .. } => return None,
    };
    if wait_ms <= 0 {
        return None;
    }
    let until = alarm_ms + wait_ms;
    (now_ms < until).then(|| {
        let at = chrono::DateTime::from_timestamp_millis(until).unwrap_or_default();
        (
            until,
            format!(
                "grace period: waiting until {} ({} s after the alarm, for {whom}) in case it recovers by itself; then acts if the alarm has not cleared",
                at.format("%H:%M:%SZ"),
                wait_ms / 1000
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intake::AlarmState;
    use crate::model::facts::GroupFacts;

    #[test]
    fn lineage_table() {
        const H: i64 = 3_600_000;
        let now = 100 * H;
        let copy = |launched_h_ago: Option<i64>, source: bool| InstanceFacts {
            tags: source
                .then(|| {
                    (
                        crate::model::tags::SOURCE_TAG.to_string(),
                        "i-old".to_string(),
                    )
                })
                .into_iter()
                .collect(),
            launch_ms: launched_h_ago.map(|h| now - h * H),
            ..Default::default()
        };
        let held = |s: &Step| {
            matches!(
                s,
                Step::Report {
                    result: Verdict::Held,
                    ..
                }
            )
        };
        // (what, instance, window, step, held)
        let cases: Vec<(&str, InstanceFacts, i64, Step, bool)> = vec![
            (
                "a copy failing 2 h after its launch",
                copy(Some(2), true),
                24 * H,
                Step::Relaunch,
                true,
            ),
            (
                "a copy failing 25 h after",
                copy(Some(25), true),
                24 * H,
                Step::Relaunch,
                false,
            ),
            (
                "not a copy",
                copy(Some(2), false),
                24 * H,
                Step::Relaunch,
                false,
            ),
            (
                "launch time unknown",
                copy(None, true),
                24 * H,
                Step::Relaunch,
                false,
            ),
            ("budget off", copy(Some(2), true), 0, Step::Relaunch, false),
            (
                "a group member is not relaunched anyway",
                copy(Some(2), true),
                24 * H,
                Step::MarkUnhealthy { group: "g".into() },
                false,
            ),
        ];
        for (what, instance, window, step, want) in cases {
            assert_eq!(
                held(&limit_lineage(step, &instance, window, now)),
                want,
                "{what}"
            );
        }
        let Step::Report { action, reason, .. } =
            limit_lineage(Step::Relaunch, &copy(Some(2), true), 24 * H, now)
        else {
            panic!()
        };
        assert_eq!(action, Action::LaunchReplacement);
        assert!(
            reason.contains("copy of i-old, launched 120 min ago"),
            "{reason}"
        );
    }

    #[test]
    fn grace_table() {
        let s = signal(Metric::StatusCheckFailed);
        let t = s.changed_at.timestamp_millis();
        let g = Grace {
            group_member_ms: 30_000,
            standalone_ms: 120_000,
        };
        let mark = Step::MarkUnhealthy { group: "g".into() };
        let nothing = report(Action::None, Verdict::Ignored, "x");
        let held =
            |step: &Step, now: i64, g: Grace| grace_hold(step, t, g, now).map(|(u, _)| u - t);
        // (what, step, now - alarm time, grace, held until (relative))
        let cases: Vec<(&str, &Step, i64, Grace, Option<i64>)> = vec![
            ("member, inside its grace", &mark, 10_000, g, Some(30_000)),
            ("member, grace over", &mark, 30_000, g, None),
            (
                "standalone, inside its grace",
                &Step::Relaunch,
                60_000,
                g,
                Some(120_000),
            ),
            ("standalone, grace over", &Step::Relaunch, 121_000, g, None),
            (
                "a late delivery is measured on the alarm time",
                &Step::Relaunch,
                600_000,
                g,
                None,
            ),
            (
                "grace off",
                &Step::Relaunch,
                0,
                Grace {
                    group_member_ms: 0,
                    standalone_ms: 0,
                },
                None,
            ),
            (
                "grace off, alarm time ahead of our clock",
                &Step::Relaunch,
                -5_000,
                Grace {
                    group_member_ms: 0,
                    standalone_ms: 0,
                },
                None,
            ),
            ("nothing to do, nothing to wait for", &nothing, 0, g, None),
        ];
        for (what, step, after, g, want) in cases {
            assert_eq!(held(step, t + after, g), want, "{what}");
        }
        let (_, why) = grace_hold(&Step::Relaunch, t, g, t).unwrap();
        assert!(why.starts_with("grace period: waiting until "), "{why}");
        assert!(
            why.contains("120 s after the alarm, for standalone instances"),
            "{why}"
        );
    }

    fn signal(metric: Metric) -> Signal {
        Signal {
            instance_id: "i-0123456789abcdef0".into(),
            metric,
            state: AlarmState::Alarm,
            changed_at: chrono::DateTime::from_timestamp(1_795_403_565, 0).unwrap(),
            alarm_name: "a".into(),
            alarm_arn: None,
            by_notice: false,
            region: None,
            account: None,
            reason: String::new(),
        }
    }

    fn instance(state: &str, tag: Option<&str>) -> Option<InstanceFacts> {
        Some(InstanceFacts {
            instance_id: "i-0123456789abcdef0".into(),
            state: state.into(),
            tags: tag
                .map(|t| ("autoheal".to_string(), t.to_string()))
                .into_iter()
                .collect(),
            ..Default::default()
        })
    }

    fn replaced() -> Option<InstanceFacts> {
        let mut i = instance("running", None);
        i.as_mut()
            .unwrap()
            .tags
            .insert(REPLACED_BY_TAG.into(), "i-0copy".into());
        i
    }

    fn tagged(key: &str) -> Option<InstanceFacts> {
        let mut i = instance("running", None);
        i.as_mut().unwrap().tags.insert(key.into(), "web".into());
        i
    }

    fn spot() -> Option<InstanceFacts> {
        let mut i = instance("running", None);
        i.as_mut().unwrap().lifecycle = Some("spot".into());
        i
    }

    fn instance_store() -> Option<InstanceFacts> {
        let mut i = instance("running", None);
        i.as_mut().unwrap().root_device_type = Some("instance-store".into());
        i
    }

    fn group(health: &str, lifecycle: &str, tag: Option<&str>) -> Option<GroupFacts> {
        Some(GroupFacts {
            name: "web".into(),
            health: health.into(),
            lifecycle: lifecycle.into(),
            tags: tag
                .map(|t| ("autoheal".to_string(), t.to_string()))
                .into_iter()
                .collect(),
        })
    }

    #[test]
    fn decision_table() {
        use Metric::*;
        let running = || instance("running", None);
        let in_service = || group("HEALTHY", "InService", None);
        // (metric, instance, group, env dry run, expected)
        type Row = (
            Metric,
            Option<InstanceFacts>,
            Option<GroupFacts>,
            bool,
            &'static str,
        );
        let table: Vec<Row> = vec![
            (StatusCheckFailed, None, None, false, "none ignored: instance not found"),
            (StatusCheckFailed, instance("terminated", None), in_service(), false, "none ignored: instance is terminated"),
            (StatusCheckFailed, instance("shutting-down", None), None, false, "none ignored: instance is shutting-down"),
            (StatusCheckFailed, instance("running", Some("off")), in_service(), false, "none ignored: opted out (tag autoheal=off on the instance)"),
            (StatusCheckFailed, running(), group("HEALTHY", "InService", Some("off")), true, "none ignored: opted out (tag autoheal=off on the Auto Scaling group)"),
            (StatusCheckFailedAttachedEbs, running(), in_service(), false, "none held: attached EBS"),
            (StatusCheckFailed, running(), None, false, "relaunch"),
            (StatusCheckFailedInstance, instance("stopped", None), None, false, "relaunch"),
            (StatusCheckFailed, running(), None, true, "create_image dry_run: dry run (AUTOHEAL_DRY_RUN=true): would image it without reboot"),
            (StatusCheckFailed, instance("running", Some("notify")), None, false, "none held: report only (tag autoheal=notify on the instance): would image"),
            (StatusCheckFailed, instance("running", Some("off")), None, false, "none ignored: opted out"),
            (StatusCheckFailed, replaced(), None, false, "launch_replacement duplicate: already replaced by i-0copy"),
            (StatusCheckFailed, instance_store(), None, false, "none held: instance-store root device cannot be imaged"),
            (StatusCheckFailed, running(), group("HEALTHY", "Terminating:Wait", None), false, "mark_unhealthy duplicate: already Terminating:Wait in group web"),
            (StatusCheckFailed, running(), group("UNHEALTHY", "InService", None), false, "mark_unhealthy duplicate: already Unhealthy in group web"),
            (StatusCheckFailed, running(), group("HEALTHY", "Standby", None), false, "none held: instance is Standby in group web"),
            (StatusCheckFailed, running(), group("HEALTHY", "Detaching", None), false, "none held: instance is Detaching"),
            (StatusCheckFailed, running(), in_service(), false, "mark web"),
            (StatusCheckFailedSystem, running(), group("HEALTHY", "Pending:Wait", None), false, "mark web"),
            (StatusCheckFailedInstance, instance("stopped", None), in_service(), false, "mark web"),
            (StatusCheckFailed, running(), in_service(), true, "mark_unhealthy dry_run: dry run (AUTOHEAL_DRY_RUN=true): would mark Unhealthy in group web"),
            (StatusCheckFailed, running(), group("HEALTHY", "InService", Some("dry-run")), false, "mark_unhealthy dry_run: dry run (tag autoheal=dry-run on the Auto Scaling group)"),
            (StatusCheckFailed, instance("running", Some("notify")), in_service(), false, "none held: report only (tag autoheal=notify on the instance): would mark Unhealthy in group web"),
            // The stricter of the two tags wins: a member's `act` does not lift its group's `notify`.
            (StatusCheckFailed, instance("running", Some("act")), group("HEALTHY", "InService", Some("notify")), false, "none held: report only (tag autoheal=notify on the Auto Scaling group): would mark Unhealthy in group web"),
            (StatusCheckFailed, instance("running", Some("notify")), group("HEALTHY", "InService", Some("act")), false, "none held: report only (tag autoheal=notify on the instance): would mark Unhealthy in group web"),
            (StatusCheckFailed, tagged("aws:autoscaling:groupName"), None, false, "none held: not autoheal's to repair: it left Auto Scaling group"),
            (StatusCheckFailed, tagged("aws:autoscaling:groupName"), in_service(), false, "mark web"),
            (StatusCheckFailed, tagged("karpenter.sh/nodepool"), None, false, "none held: not autoheal's to repair: managed by Karpenter"),
            (StatusCheckFailed, tagged("team.example/scheduler"), None, false, "none held: not autoheal's to repair: managed by the controller that writes team.example/*"),
            (StatusCheckFailed, spot(), None, false, "none held: not autoheal's to repair: a Spot instance"),
        ];
        for (metric, inst, grp, dry, expected) in table {
            let facts = Facts {
                instance: inst,
                group: grp,
                ..Default::default()
            };
            let extra = ["team.example/*".to_string()];
            let got = match decide(&signal(metric), &facts, dry, &extra) {
                Step::MarkUnhealthy { group } => format!("mark {group}"),
                Step::Relaunch => "relaunch".to_string(),
                Step::Report {
                    action,
                    result,
                    reason,
                    handover,
                } => {
                    // Every hold and dry run is handed to people, with its kind; nothing else.
                    let for_people = matches!(result, Verdict::Held | Verdict::DryRun);
                    assert_eq!(handover.is_some(), for_people, "{reason}");
                    let kind = handover.map_or("", |h| h.anchor());
                    format!("{} {}: {reason} [{kind}]", action.as_str(), result.as_str())
                }
            };
            assert!(
                got.starts_with(expected),
                "{facts:?} dry={dry}: {got:?} != {expected:?}"
            );
        }
    }

    #[test]
    fn each_hand_over_names_its_kind() {
        use Handover::*;
        let running = || instance("running", None);
        let in_service = || group("HEALTHY", "InService", None);
        let notify = || instance("running", Some("notify"));
        // (metric, instance, group, env dry run, kind)
        type Row = (
            Metric,
            Option<InstanceFacts>,
            Option<GroupFacts>,
            bool,
            Handover,
        );
        let cases: Vec<Row> = vec![
            (
                Metric::StatusCheckFailedAttachedEbs,
                running(),
                None,
                false,
                AttachedEbs,
            ),
            (
                Metric::StatusCheckFailed,
                tagged("karpenter.sh/nodepool"),
                None,
                false,
                OtherController,
            ),
            (
                Metric::StatusCheckFailed,
                running(),
                group("HEALTHY", "Standby", None),
                false,
                MemberNotReplaceable,
            ),
            (
                Metric::StatusCheckFailed,
                notify(),
                in_service(),
                false,
                ReportOnly,
            ),
            (Metric::StatusCheckFailed, notify(), None, false, ReportOnly),
            (
                Metric::StatusCheckFailed,
                instance_store(),
                None,
                false,
                InstanceStoreRoot,
            ),
            (
                Metric::StatusCheckFailed,
                running(),
                in_service(),
                true,
                DryRun,
            ),
            (Metric::StatusCheckFailed, running(), None, true, DryRun),
        ];
        for (metric, instance, group, dry, kind) in cases {
            let facts = Facts {
                instance,
                group,
                ..Default::default()
            };
            let step = decide(&signal(metric), &facts, dry, &[]);
            assert!(
                matches!(step, Step::Report { handover: Some(k), .. } if k == kind),
                "{kind:?}: {step:?}"
            );
        }
        let copy = InstanceFacts {
            tags: [(
                crate::model::tags::SOURCE_TAG.to_string(),
                "i-old".to_string(),
            )]
            .into(),
            launch_ms: Some(0),
            ..Default::default()
        };
        assert!(matches!(
            limit_lineage(Step::Relaunch, &copy, 3_600_000, 60_000),
            Step::Report {
                handover: Some(RelaunchBudget),
                ..
            }
        ));
    }
}
