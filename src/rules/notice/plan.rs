//! The plan for one scheduled notice, as data: what to do ahead of EC2, and when. A group
//! member is replaced by its group; a standalone EBS-backed instance is stopped and
//! started (a new host clears the event); one that cannot be stopped goes to people early
//! (or is imaged and relaunched); an instance reboot is moved into the maintenance window
//! when EC2 allows it; an instance that may not come back from a reboot is never rebooted
//! or stopped by autoheal, only reported, urgently. Acting happens inside a maintenance
//! window before the notice; with no window, a lead time before it; already too close,
//! at once. The repair guards (one member of a group or cluster at a time) and the
//! `autoheal` tag apply as to any repair: the shell admits each acting step.

use super::window::{WindowError, Windows};
use super::{Notice, NoticeKind, NoticeState};
use crate::model::facts::{Facts, GroupFacts, InstanceFacts};
use crate::rules::owner::other_owner;
use crate::rules::policy::{Mode, Policy};

/// EC2 moves an event only to a start at least this far ahead of the request.
pub const RESCHEDULE_AHEAD_MS: i64 = 60 * 60_000;
/// EC2 refuses to move an event that starts within this.
pub const RESCHEDULE_CLOSED_MS: i64 = 5 * 60_000;
/// How long before a notice autoheal acts when the instance has no maintenance window.
pub const DEFAULT_LEAD_MS: i64 = 60 * 60_000;

/// One step of a plan. Times are epoch ms; an acting step at a time already past is due.
/// Kept with the notice's record (`record::Recorded::plan`) for the tick to carry out.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Step {
    /// Mark the member Unhealthy at `at_ms` so that its group replaces it.
    ReplaceMember {
        at_ms: i64,
    },
    /// Stop and start at `at_ms` (a new host), verified; imaged without reboot first when
    /// `image_first` (the hardware is degraded: the stop may not come back).
    StopStart {
        at_ms: i64,
        image_first: bool,
    },
    /// Image without reboot and launch a copy at `at_ms`: planned in place of a stop that
    /// never completed (`act::instead_copy`).
    Relaunch {
        at_ms: i64,
    },
    /// Move EC2's event (`ModifyInstanceEventStartTime`) to start at `to_ms`.
    Reschedule {
        event_id: String,
        to_ms: i64,
    },
    /// Urgent report: the instance may not survive what EC2 will do to it.
    Warn {
        finding: String,
    },
    /// Tell people now.
    Report {
        why: String,
    },
    Nothing {
        why: String,
    },
}

impl Step {
    pub fn acts(&self) -> bool {
        matches!(
            self,
            Step::ReplaceMember { .. }
                | Step::StopStart { .. }
                | Step::Relaunch { .. }
                | Step::Reschedule { .. }
        )
    }

    /// What an acting step would do, for a report.
    fn said(&self) -> String {
        match self {
            Step::ReplaceMember { at_ms } => {
                format!(
                    "mark it Unhealthy at {} for its group to replace it",
                    date(*at_ms)
                )
            }
            Step::StopStart { at_ms, .. } => format!("stop and start it at {}", date(*at_ms)),
            Step::Relaunch { at_ms } => {
                format!("image it and launch a copy at {}", date(*at_ms))
            }
            Step::Reschedule { to_ms, .. } => format!("move the event to {}", date(*to_ms)),
            _ => String::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoticePlan {
    pub steps: Vec<Step>,
    /// `AUTOHEAL_DRY_RUN` or tag `dry-run`: the acting steps are said, not taken.
    pub dry_run: bool,
}

/// What the plan is made from.
pub struct Inputs<'a> {
    pub notice: &'a Notice,
    pub facts: &'a Facts,
    /// `window::windows_for`: the windows that apply and where from, or why the text is
    /// not a window.
    pub windows: &'a Result<Option<(Windows, String)>, WindowError>,
    /// Acting this long before the notice when there is no window.
    pub lead_ms: i64,
    pub now_ms: i64,
    pub policy: &'a Policy,
    /// `AUTOHEAL_OTHER_CONTROLLER_TAGS`.
    pub other_controllers: &'a [String],
}

pub fn plan(i: &Inputs) -> NoticePlan {
    let steps = steps(i);
    let dry_run = i.policy.mode == Mode::DryRun && steps.iter().any(Step::acts);
    NoticePlan { steps, dry_run }
}

fn nothing(why: impl Into<String>) -> Vec<Step> {
    vec![Step::Nothing { why: why.into() }]
}

fn steps(i: &Inputs) -> Vec<Step> {
    let n = i.notice;
    if let Some(why) = over(n, i.now_ms) {
        return nothing(why);
    }
    let Some(instance) = &i.facts.instance else {
        return nothing("EC2 does not know the instance");
    };
    match instance.state.as_str() {
        "running" | "pending" => {}
        "stopped" | "stopping" => {
            return nothing(format!(
                "the instance is {}: started again, it runs on another host",
                instance.state
            ))
        }
        other => return nothing(format!("the instance is {other}")),
    }
    if i.policy.mode == Mode::Off {
        return nothing(format!("{}: autoheal leaves it alone", i.policy.source));
    }
    let group = i.facts.group.as_ref();
    if let Some(owner) = other_owner(instance, group, i.other_controllers) {
        return vec![Step::Report {
            why: format!("{}: not autoheal's to move ahead; {owner}", heard(n)),
        }];
    }
    let (windows, mut steps) = match i.windows {
        Ok(w) => (w.as_ref(), vec![]),
        Err(e) => (
            None,
            vec![Step::Report {
                why: format!("{e}: planned as if the instance had no window"),
            }],
        ),
    };
    let when = when(n, windows, i.lead_ms, i.now_ms);
    match group {
        Some(g) => steps.extend(member(n, instance, g, &when, i.now_ms)),
        None => steps.extend(standalone(n, instance, windows, &when, i.now_ms)),
    }
    match i.policy.mode {
        Mode::Notify => steps.into_iter().map(|s| notify(n, i.policy, s)).collect(),
        _ => steps,
    }
}

/// Why the notice needs nothing any more, if so.
fn over(n: &Notice, now_ms: i64) -> Option<String> {
    match n.state {
        NoticeState::Scheduled => {}
        NoticeState::Completed => return Some("EC2 says the event is completed".into()),
        NoticeState::Canceled => return Some("EC2 says the event is canceled".into()),
        NoticeState::Closed => return Some("AWS Health closed the event".into()),
    }
    match n.not_after_ms {
        Some(end) if now_ms >= end => Some(format!("the event's time ended {}", date(end))),
        _ => None,
    }
}

/// When to act, and what to tell people first about that choice.
enum When {
    /// Inside a maintenance window, before the notice (the window's source).
    Window(i64),
    /// No window: a lead time before the notice; told at once.
    Lead(i64, String),
    /// Too close for anything else: now; told at once.
    Now(String),
}

fn when(n: &Notice, windows: Option<&(Windows, String)>, lead_ms: i64, now_ms: i64) -> When {
    let Some(start) = n.not_before_ms else {
        return When::Now(format!("{}: EC2 gave no start time", heard(n)));
    };
    let latest = start - lead_ms;
    if now_ms >= start {
        return When::Now(format!("{}: its start has passed", heard(n)));
    }
    if now_ms >= latest {
        return When::Now(format!(
            "{}: within the lead time of {}",
            heard(n),
            span(lead_ms)
        ));
    }
    match windows {
        Some((w, source)) => match w.first_between(now_ms, latest) {
            Some(at) => When::Window(at),
            None => When::Now(format!(
                "{}: no maintenance window ({source}) opens before {}",
                heard(n),
                date(latest)
            )),
        },
        None => When::Lead(
            latest,
            format!(
                "{}: no maintenance window; acting {} before it",
                heard(n),
                span(lead_ms)
            ),
        ),
    }
}

/// An acting step at the time `when` says, with the report that comes first.
fn at(when: &When, now_ms: i64, step: impl Fn(i64) -> Step) -> Vec<Step> {
    match when {
        When::Window(at) => vec![step(*at)],
        When::Lead(at, why) => vec![Step::Report { why: why.clone() }, step(*at)],
        When::Now(why) => vec![
            Step::Report {
                why: format!("{why}: acting now"),
            },
            step(now_ms),
        ],
    }
}

fn member(
    n: &Notice,
    instance: &InstanceFacts,
    g: &GroupFacts,
    when: &When,
    now_ms: i64,
) -> Vec<Step> {
    let lifecycle = g.lifecycle.as_str();
    if lifecycle.starts_with("Terminating") || g.health.eq_ignore_ascii_case("UNHEALTHY") {
        return nothing(format!("group {} is replacing it already", g.name));
    }
    if !(lifecycle.starts_with("InService") || lifecycle.starts_with("Pending")) {
        return vec![Step::Report {
            why: format!(
                "{}: the member is {lifecycle} in group {}, which Auto Scaling would not replace",
                heard(n),
                g.name
            ),
        }];
    }
    // A replacement never reboots the member: a reboot risk is told, not a reason to wait.
    let mut steps: Vec<Step> = warned(n, instance).into_iter().collect();
    steps.extend(at(when, now_ms, |at_ms| Step::ReplaceMember { at_ms }));
    steps
}

fn standalone(
    n: &Notice,
    instance: &InstanceFacts,
    windows: Option<&(Windows, String)>,
    when: &When,
    now_ms: i64,
) -> Vec<Step> {
    if let Some(warn) = warned(n, instance) {
        return vec![warn];
    }
    if n.kind == NoticeKind::InstanceReboot {
        return reboot(n, windows, now_ms);
    }
    if instance.root_device_type.as_deref() == Some("instance-store") {
        return vec![Step::Report {
            why: format!(
                "{}: its root device is instance store, so it can be neither stopped and started nor imaged; move its work to another instance before then",
                heard(n)
            ),
        }];
    }
    // A copy would need the source stopped too, when it takes over: people decide.
    if instance.disable_api_stop == Some(true) {
        return vec![Step::Report {
            why: format!(
                "{}: stop protection is on, so autoheal neither stops and starts it nor takes a copy's place with it; lift it to let autoheal act, or move its work before then",
                heard(n)
            ),
        }];
    }
    let image_first = n.kind == NoticeKind::InstanceRetirement;
    at(when, now_ms, |at_ms| Step::StopStart { at_ms, image_first })
}

/// An instance reboot: a stop/start does not avoid it; moved into the window when EC2
/// allows it (an event with a deadline, not about to start, to a start an hour ahead at
/// least and no later than the deadline).
fn reboot(n: &Notice, windows: Option<&(Windows, String)>, now_ms: i64) -> Vec<Step> {
    let report = |why: String| vec![Step::Report { why }];
    let (Some(start), Some(deadline), Some(event_id)) =
        (n.not_before_ms, n.deadline_ms, n.event_id())
    else {
        return report(format!(
            "{}: EC2 gives no deadline to move it to, so it stays where EC2 put it",
            heard(n)
        ));
    };
    let Some((w, source)) = windows else {
        return report(format!(
            "{}: no maintenance window to move it into (deadline {})",
            heard(n),
            date(deadline)
        ));
    };
    if w.open_at(start).is_some() {
        return nothing(format!(
            "it starts inside the maintenance window ({source})"
        ));
    }
    if now_ms >= start - RESCHEDULE_CLOSED_MS {
        return report(format!("{}: too close to its start to move", heard(n)));
    }
    match w.first_between(now_ms + RESCHEDULE_AHEAD_MS, deadline) {
        Some(to_ms) => vec![Step::Reschedule {
            event_id: event_id.to_string(),
            to_ms,
        }],
        None => report(format!(
            "{}: no maintenance window ({source}) opens before its deadline {}",
            heard(n),
            date(deadline)
        )),
    }
}

/// The urgent report for an instance that may not come back from what EC2 will do.
fn warned(n: &Notice, instance: &InstanceFacts) -> Option<Step> {
    let risk = instance.reboot_risk()?;
    Some(Step::Warn {
        finding: format!(
            "{}: {risk}; autoheal never reboots or stops it: move its work to an instance on a current kernel before then",
            heard(n)
        ),
    })
}

/// Tag `notify`: an acting step becomes what autoheal would do, for people.
fn notify(n: &Notice, policy: &Policy, step: Step) -> Step {
    if !step.acts() {
        return step;
    }
    Step::Report {
        why: format!(
            "{}: {}: autoheal would {}; do it by hand",
            heard(n),
            policy.source,
            step.said()
        ),
    }
}

/// "EC2 will retire i-1 from 2026-11-29 03:00 UTC".
fn heard(n: &Notice) -> String {
    match n.not_before_ms {
        Some(start) => format!(
            "EC2 will {} {} from {}",
            n.kind.said(),
            n.instance_id,
            date(start)
        ),
        None => format!("EC2 will {} {}", n.kind.said(), n.instance_id),
    }
}

fn date(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| d.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| format!("{ms} ms"))
}

fn span(ms: i64) -> String {
    match ms {
        ms if ms % 3_600_000 == 0 => format!("{} h", ms / 3_600_000),
        ms => format!("{} min", ms / 60_000),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::notice::NoticeSource;
    use crate::rules::notice::window::{parse, WINDOW_TAG};
    use crate::rules::policy::policy_for;
    use std::collections::BTreeMap;

    const MIN: i64 = 60_000;
    const H: i64 = 60 * MIN;
    const DAY: i64 = 24 * H;
    /// Sunday 2026-11-22 00:00 UTC.
    const SUNDAY: i64 = 1_795_305_600_000;
    /// Wednesday 2026-11-18 12:00 UTC.
    const NOW: i64 = SUNDAY - 4 * DAY + 12 * H;
    /// The notice: Sunday 2026-11-29 10:00 to 12:00 UTC.
    const START: i64 = SUNDAY + 7 * DAY + 10 * H;
    /// The first Sunday window `Sun 03:00-05:00 UTC` opens after NOW.
    const WINDOW: i64 = SUNDAY + 3 * H;

    struct Case {
        notice: Notice,
        facts: Facts,
        windows: Result<Option<(Windows, String)>, WindowError>,
        now_ms: i64,
        policy: Policy,
    }

    fn case(kind: NoticeKind) -> Case {
        Case {
            notice: Notice {
                instance_id: "i-1".into(),
                region: Some("us-east-1".into()),
                account: None,
                kind,
                source: NoticeSource::Status {
                    event_id: "instance-event-0d59937288b749b32".into(),
                },
                not_before_ms: Some(START),
                not_after_ms: Some(START + 2 * H),
                deadline_ms: Some(START + 6 * DAY),
                state: NoticeState::Scheduled,
                description: "The instance is running on degraded hardware".into(),
            },
            facts: Facts {
                instance: Some(InstanceFacts {
                    instance_id: "i-1".into(),
                    state: "running".into(),
                    root_device_type: Some("ebs".into()),
                    virtualization: Some("hvm".into()),
                    ..Default::default()
                }),
                ..Default::default()
            },
            windows: Ok(Some((
                parse("Sun 03:00-05:00 UTC").unwrap(),
                format!("tag {WINDOW_TAG} on the instance"),
            ))),
            now_ms: NOW,
            policy: policy_for(false, &BTreeMap::new(), None),
        }
    }

    impl Case {
        fn with(mut self, edit: impl FnOnce(&mut Case)) -> Case {
            edit(&mut self);
            self
        }

        fn instance(self, edit: impl FnOnce(&mut InstanceFacts)) -> Case {
            self.with(|c| edit(c.facts.instance.as_mut().unwrap()))
        }

        fn member(self, lifecycle: &str, health: &str) -> Case {
            self.with(|c| {
                c.facts.group = Some(GroupFacts {
                    name: "web".into(),
                    health: health.into(),
                    lifecycle: lifecycle.into(),
                    tags: BTreeMap::new(),
                })
            })
        }

        fn no_window(self) -> Case {
            self.with(|c| c.windows = Ok(None))
        }

        fn plan(&self) -> NoticePlan {
            plan(&Inputs {
                notice: &self.notice,
                facts: &self.facts,
                windows: &self.windows,
                lead_ms: DEFAULT_LEAD_MS,
                now_ms: self.now_ms,
                policy: &self.policy,
                other_controllers: &[],
            })
        }
    }

    /// A step as the tables write it: its kind and its time, or the words its text has.
    #[derive(Debug)]
    enum Want {
        Replace(i64),
        StopStart(i64, bool),
        Reschedule(i64),
        Warn(&'static str),
        Report(&'static str),
        Nothing(&'static str),
    }

    fn check(name: &str, c: Case, want: &[Want]) {
        let plan = c.plan();
        assert_eq!(plan.steps.len(), want.len(), "{name}: {plan:#?}");
        for (got, want) in plan.steps.iter().zip(want) {
            let ok = match (got, want) {
                (Step::ReplaceMember { at_ms }, Want::Replace(t)) => at_ms == t,
                (Step::StopStart { at_ms, image_first }, Want::StopStart(t, i)) => {
                    at_ms == t && image_first == i
                }
                (Step::Reschedule { event_id, to_ms }, Want::Reschedule(t)) => {
                    to_ms == t && event_id == "instance-event-0d59937288b749b32"
                }
                (Step::Warn { finding: s }, Want::Warn(w))
                | (Step::Report { why: s }, Want::Report(w))
                | (Step::Nothing { why: s }, Want::Nothing(w)) => s.contains(w),
                _ => false,
            };
            assert!(ok, "{name}: {got:?} is not {want:?}\n{plan:#?}");
        }
    }

    #[test]
    fn nothing_is_planned_for_a_notice_that_needs_nothing() {
        use NoticeKind::*;
        let table = [
            (
                "completed",
                case(SystemReboot).with(|c| c.notice.state = NoticeState::Completed),
                "EC2 says the event is completed",
            ),
            (
                "canceled",
                case(SystemReboot).with(|c| c.notice.state = NoticeState::Canceled),
                "EC2 says the event is canceled",
            ),
            (
                "closed by AWS Health",
                case(SystemReboot).with(|c| c.notice.state = NoticeState::Closed),
                "AWS Health closed the event",
            ),
            (
                "its time has ended",
                case(SystemReboot).with(|c| c.now_ms = START + 2 * H),
                "the event's time ended 2026-11-29 12:00 UTC",
            ),
            (
                "unknown instance",
                case(InstanceRetirement).with(|c| c.facts.instance = None),
                "EC2 does not know the instance",
            ),
            (
                "stopped",
                case(InstanceRetirement).instance(|i| i.state = "stopped".into()),
                "the instance is stopped: started again, it runs on another host",
            ),
            (
                "terminated",
                case(InstanceStop).instance(|i| i.state = "terminated".into()),
                "the instance is terminated",
            ),
            (
                "tag off",
                case(InstanceRetirement).with(|c| {
                    c.policy = policy_for(
                        true,
                        &[("autoheal".to_string(), "off".to_string())].into(),
                        None,
                    )
                }),
                "tag autoheal=off on the instance: autoheal leaves it alone",
            ),
            (
                "a member being replaced",
                case(InstanceRetirement).member("Terminating:Wait", "UNHEALTHY"),
                "group web is replacing it already",
            ),
            (
                "a member marked Unhealthy",
                case(InstanceRetirement).member("InService", "UNHEALTHY"),
                "group web is replacing it already",
            ),
        ];
        for (name, c, why) in table {
            check(name, c, &[Want::Nothing(why)]);
        }
    }

    #[test]
    fn a_group_member_is_replaced_ahead_inside_its_window() {
        use NoticeKind::*;
        let table = [
            (
                "window",
                case(InstanceRetirement).member("InService", "HEALTHY"),
                vec![Want::Replace(WINDOW)],
            ),
            (
                "an instance reboot too: a replacement avoids it",
                case(InstanceReboot).member("Pending", "HEALTHY"),
                vec![Want::Replace(WINDOW)],
            ),
            (
                "no window: told now, acting the lead time before",
                case(SystemMaintenance).member("InService", "HEALTHY").no_window(),
                vec![
                    Want::Report("EC2 will maintain the host of i-1 from 2026-11-29 10:00 UTC: no maintenance window; acting 1 h before it"),
                    Want::Replace(START - H),
                ],
            ),
            (
                "a reboot risk is told; the replacement never reboots it",
                case(SystemReboot)
                    .member("InService", "HEALTHY")
                    .instance(|i| i.kernel_id = Some("aki-44992845".into())),
                vec![
                    Want::Warn("kernel aki-44992845 may not come back from a reboot; autoheal never reboots or stops it"),
                    Want::Replace(WINDOW),
                ],
            ),
            (
                "Standby: Auto Scaling would not replace it",
                case(InstanceRetirement).member("Standby", "HEALTHY"),
                vec![Want::Report("the member is Standby in group web, which Auto Scaling would not replace")],
            ),
        ];
        for (name, c, want) in table {
            check(name, c, &want);
        }
    }

    #[test]
    fn a_standalone_instance_is_stopped_and_started_ahead_unless_it_cannot_be() {
        use NoticeKind::*;
        let table = [
            (
                "retirement: imaged first, the hardware is degraded",
                case(InstanceRetirement),
                vec![Want::StopStart(WINDOW, true)],
            ),
            (
                "system reboot",
                case(SystemReboot),
                vec![Want::StopStart(WINDOW, false)],
            ),
            (
                "instance stop, stop protection unknown",
                case(InstanceStop).instance(|i| i.disable_api_stop = None),
                vec![Want::StopStart(WINDOW, false)],
            ),
            (
                "no window",
                case(SystemReboot).no_window(),
                vec![Want::Report("no maintenance window; acting 1 h before it"), Want::StopStart(START - H, false)],
            ),
            (
                "within the lead time",
                case(SystemReboot).with(|c| c.now_ms = START - 30 * MIN),
                vec![Want::Report("within the lead time of 1 h: acting now"), Want::StopStart(START - 30 * MIN, false)],
            ),
            (
                "already started, not yet ended",
                case(InstanceRetirement).with(|c| c.now_ms = START + 10 * MIN),
                vec![Want::Report("its start has passed: acting now"), Want::StopStart(START + 10 * MIN, true)],
            ),
            (
                "too close for its next window",
                case(SystemReboot).with(|c| {
                    c.now_ms = SUNDAY + 6 * H;
                    c.notice.not_before_ms = Some(SUNDAY + 7 * DAY + 2 * H);
                }),
                vec![
                    Want::Report("no maintenance window (tag autoheal:maintenance-window on the instance) opens before 2026-11-29 01:00 UTC: acting now"),
                    Want::StopStart(SUNDAY + 6 * H, false),
                ],
            ),
            (
                "no start time",
                case(SystemReboot).with(|c| c.notice.not_before_ms = None),
                vec![Want::Report("EC2 will reboot the host of i-1: EC2 gave no start time: acting now"), Want::StopStart(NOW, false)],
            ),
            (
                "instance-store root: people, early, with the date",
                case(InstanceRetirement).instance(|i| i.root_device_type = Some("instance-store".into())),
                vec![Want::Report("EC2 will retire i-1 from 2026-11-29 10:00 UTC: its root device is instance store")],
            ),
            (
                "stop protection: people, early, with the date",
                case(InstanceRetirement).instance(|i| i.disable_api_stop = Some(true)),
                vec![Want::Report("EC2 will retire i-1 from 2026-11-29 10:00 UTC: stop protection is on")],
            ),
            (
                "a risky kernel: urgent report, never a stop",
                case(InstanceRetirement).instance(|i| i.kernel_id = Some("aki-44992845".into())),
                vec![Want::Warn("EC2 will retire i-1 from 2026-11-29 10:00 UTC: kernel aki-44992845 may not come back from a reboot")],
            ),
            (
                "paravirtual: the same",
                case(SystemMaintenance).instance(|i| i.virtualization = Some("paravirtual".into())),
                vec![Want::Warn("a paravirtual instance may not come back from a reboot")],
            ),
            (
                "another controller's: people",
                case(SystemReboot).instance(|i| {
                    i.tags.insert("karpenter.sh/nodepool".into(), "default".into());
                }),
                vec![Want::Report("not autoheal's to move ahead; managed by Karpenter")],
            ),
        ];
        for (name, c, want) in table {
            check(name, c, &want);
        }
    }

    #[test]
    fn an_instance_reboot_is_moved_into_the_window_when_ec2_allows_it() {
        let reboot = || case(NoticeKind::InstanceReboot);
        let table = [
            ("moved", reboot(), vec![Want::Reschedule(WINDOW)]),
            (
                "moved at least an hour ahead, inside the open window",
                reboot().with(|c| c.now_ms = WINDOW + 30 * MIN),
                vec![Want::Reschedule(WINDOW + 90 * MIN)],
            ),
            (
                "heard from AWS Health: no deadline",
                reboot().with(|c| {
                    c.notice.deadline_ms = None;
                    c.notice.source = NoticeSource::Health {
                        event_arn: "arn".into(),
                        code: "AWS_EC2_INSTANCE_REBOOT_MAINTENANCE_SCHEDULED".into(),
                    };
                }),
                vec![Want::Report("EC2 will reboot i-1 from 2026-11-29 10:00 UTC: EC2 gives no deadline to move it to")],
            ),
            (
                "no window",
                reboot().no_window(),
                vec![Want::Report("no maintenance window to move it into (deadline 2026-12-05 10:00 UTC)")],
            ),
            (
                "already inside the window",
                reboot().with(|c| c.notice.not_before_ms = Some(SUNDAY + 7 * DAY + 4 * H)),
                vec![Want::Nothing("it starts inside the maintenance window (tag autoheal:maintenance-window on the instance)")],
            ),
            (
                "about to start",
                reboot().with(|c| c.now_ms = START - 3 * MIN),
                vec![Want::Report("too close to its start to move")],
            ),
            (
                "no window before the deadline",
                reboot().with(|c| {
                    c.now_ms = SUNDAY + 5 * DAY;
                    c.notice.deadline_ms = Some(START + DAY);
                    c.windows = Ok(Some((parse("Wed 01:00-02:00 UTC").unwrap(), "the stack's default".into())));
                }),
                vec![Want::Report("no maintenance window (the stack's default) opens before its deadline 2026-11-30 10:00 UTC")],
            ),
        ];
        for (name, c, want) in table {
            check(name, c, &want);
        }
    }

    #[test]
    fn the_policy_and_a_bad_window_shape_the_plan() {
        let tagged = |v: &str| {
            policy_for(
                false,
                &[("autoheal".to_string(), v.to_string())].into(),
                None,
            )
        };
        let notify = case(NoticeKind::InstanceRetirement).with(|c| c.policy = tagged("notify"));
        check(
            "notify: what it would do, for people",
            notify,
            &[Want::Report("EC2 will retire i-1 from 2026-11-29 10:00 UTC: tag autoheal=notify on the instance: autoheal would stop and start it at 2026-11-22 03:00 UTC; do it by hand")],
        );
        let notify_member = case(NoticeKind::SystemReboot)
            .member("InService", "HEALTHY")
            .no_window()
            .with(|c| c.policy = tagged("notify"));
        check(
            "notify, no window: both said",
            notify_member,
            &[
                Want::Report("no maintenance window; acting 1 h before it"),
                Want::Report("autoheal would mark it Unhealthy at 2026-11-29 09:00 UTC for its group to replace it"),
            ],
        );
        let dry = case(NoticeKind::InstanceReboot)
            .with(|c| c.policy = policy_for(true, &BTreeMap::new(), None));
        assert!(dry.plan().dry_run);
        check("dry run: the same steps", dry, &[Want::Reschedule(WINDOW)]);
        let dry_nothing = case(NoticeKind::InstanceReboot)
            .with(|c| c.policy = tagged("dry-run"))
            .no_window();
        assert!(
            !dry_nothing.plan().dry_run,
            "nothing to do is not a dry run"
        );
        assert!(!case(NoticeKind::SystemReboot).plan().dry_run);

        let bad = case(NoticeKind::SystemReboot).with(|c| {
            c.windows = crate::rules::notice::window::windows_for(
                &[(WINDOW_TAG.to_string(), "Sundays at 3".to_string())].into(),
                None,
                None,
                None,
            )
        });
        check(
            "a bad window is told, and the plan goes on without one",
            bad,
            &[
                Want::Report("maintenance window \"Sundays at 3\" (tag autoheal:maintenance-window on the instance) is not understood"),
                Want::Report("no maintenance window; acting 1 h before it"),
                Want::StopStart(START - H, false),
            ],
        );
    }
}
