//! The incident record kept in the ledger, and the pure rules that move it on.
//!
//! One record per instance (its "head") holds the instance's current or last incident.
//! Every change is a conditional write on `version`, so of two invocations that read the
//! same head only one can move it; the other re-reads and sees what the first did.

use crate::intake::{AlarmState, Heard, Metric, Signal};
use crate::model::handover::Handover;
use crate::model::keys::key;
use crate::model::outcome::{Action, Outcome, Verdict};
use crate::model::progress::Progress;
use chrono::{DateTime, Utc};

mod change;
mod claim;
mod close;
mod turn;

pub use change::*;
pub use claim::*;
pub use close::*;
pub use turn::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Claimed by one invocation until `lease_until_ms`; after that anyone may resume it.
    /// A multi-step repair waiting on the world (an image, a launch) is `Repairing` with
    /// its lease given back.
    Repairing,
    /// Decided and acted on; waits for the alarm to return to OK.
    Settled,
    /// The alarm returned to OK.
    Closed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Repairing => "repairing",
            Status::Settled => "settled",
            Status::Closed => "closed",
        }
    }
    pub fn parse(s: &str) -> Option<Status> {
        Some(match s {
            "repairing" => Status::Repairing,
            "settled" => Status::Settled,
            "closed" => Status::Closed,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Head {
    pub instance_id: String,
    pub incident_id: String,
    pub status: Status,
    /// When the incident opened, as autoheal measures windows from it: the opening alarm's
    /// state-change time when plausible, else when it was received (`trust::alarm_clock`).
    pub opened_ms: i64,
    /// The opening alarm's own state-change time, as the event said (what identifies it).
    pub alarm_ms: i64,
    pub closed_ms: Option<i64>,
    /// Alarm transitions already taken into this incident.
    pub transitions: Vec<String>,
    pub lease_until_ms: i64,
    pub version: i64,
    /// How many times a repair was started (more than one: resumed after a failure).
    pub attempts: i64,
    pub action: Option<Action>,
    pub result: Option<Verdict>,
    pub reason: Option<String>,
    pub group: Option<String>,
    /// The alarm that opened the incident, so that any later trigger can report on it.
    pub alarm: AlarmContext,
    /// Steps of a standalone relaunch; empty for other repairs.
    pub progress: Progress,
    /// Held in its grace period until then (alarm time + grace): only the tick takes it,
    /// and only after this; an OK before it closes the incident as recovered by itself.
    pub hold_until_ms: Option<i64>,
    /// The escalation ladder's rungs begun so far (standalone instances).
    pub rungs: Vec<crate::rules::ladder::Mark>,
    /// Why it is held, when it is (`hold_until_ms`).
    pub hold_kind: Option<HoldKind>,
    /// Behind an open breaker: that breaker's scope (`ScopeKey` text); the tick takes the
    /// incident up only once the scope is out of the storm.
    pub hold_scope: Option<String>,
    /// A group member marked Unhealthy: the steps of its replacement seen so far
    /// (`replacement::assess`); empty for other repairs.
    pub member_steps: Vec<crate::rules::replacement::Mark>,
    /// What EC2 announced of its automatic recoveries of the instance (AWS Health) in the
    /// last 24 hours, across incidents: EC2 tries at most three times a day.
    pub ec2_heard: Vec<crate::rules::ladder::Announcement>,
}

/// Why an incident waits before acting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldKind {
    /// In case it recovers by itself.
    Grace,
    /// EC2 does not (yet) report the failure the alarm is about.
    Confirm,
    /// A repair guard (quorum, in-flight, account budget).
    Guard,
    /// Behind an open correlated-failure breaker: its one summary stands for it.
    Breaker,
}

impl HoldKind {
    pub fn as_str(self) -> &'static str {
        match self {
            HoldKind::Grace => "grace",
            HoldKind::Confirm => "confirm",
            HoldKind::Guard => "guard",
            HoldKind::Breaker => "breaker",
        }
    }
    pub fn parse(s: &str) -> Option<HoldKind> {
        [
            HoldKind::Grace,
            HoldKind::Confirm,
            HoldKind::Guard,
            HoldKind::Breaker,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct AlarmContext {
    pub alarm_name: String,
    pub metric: String,
    pub reason: String,
    pub account: Option<String>,
    pub region: Option<String>,
}

impl AlarmContext {
    pub fn of(signal: &Signal) -> AlarmContext {
        AlarmContext {
            alarm_name: signal.alarm_name.clone(),
            metric: signal.metric.name().to_string(),
            reason: signal.reason.clone(),
            account: signal.account.clone(),
            region: signal.region.clone(),
        }
    }
}

impl Head {
    /// When EC2 announced, for this incident, that its recovery of the instance `went`.
    pub fn heard(&self, went: Heard) -> Option<i64> {
        crate::rules::ladder::heard_since(&self.ec2_heard, self.opened_ms)
            .filter(|(h, _)| *h == went)
            .map(|(_, t)| *t)
            .last()
    }

    /// The instance's region (the opening alarm's, resolved when it was received).
    pub fn region(&self) -> &str {
        self.alarm.region.as_deref().unwrap_or_default()
    }

    /// The ledger's name for the instance.
    pub fn key(&self) -> String {
        key(self.region(), &self.instance_id)
    }

    /// The opening alarm again, for reports made by later triggers (a tick, an AMI event).
    pub fn opening_signal(&self) -> Signal {
        Signal {
            instance_id: self.instance_id.clone(),
            metric: Metric::from_name(&self.alarm.metric).unwrap_or(Metric::StatusCheckFailed),
            state: AlarmState::Alarm,
            changed_at: DateTime::from_timestamp_millis(self.alarm_ms).unwrap_or_default(),
            alarm_name: self.alarm.alarm_name.clone(),
            alarm_arn: None,
            by_notice: self.by_notice(),
            region: self.alarm.region.clone(),
            account: self.alarm.account.clone(),
            reason: self.alarm.reason.clone(),
        }
    }

    /// A group member marked Unhealthy whose replacement is being followed
    /// (`pipeline::replacement`).
    pub fn is_verifying(&self) -> bool {
        self.status == Status::Repairing
            && self.action == Some(Action::MarkUnhealthy)
            && self.result == Some(Verdict::InProgress)
    }

    /// Held back (grace period, a repair guard) and never acted on.
    pub fn is_held(&self) -> bool {
        self.hold_until_ms.is_some()
            && self.result == Some(Verdict::Held)
            && self.action.is_none()
            && self.progress.phase.is_none()
    }

    /// Why people have this incident when `action`, a step of its repair, failed for good
    /// in the operation `op`: the relaunch's phase, a marked member's replacement, the
    /// ledger, or another AWS call.
    pub fn failed_for_good(&self, action: Action, op: &str) -> Handover {
        let relaunch = matches!(action, Action::CreateImage | Action::LaunchReplacement);
        if relaunch || self.progress.phase.is_some() {
            crate::rules::relaunch::said::failed_in(&self.progress)
        } else if self.is_verifying() {
            Handover::MemberReplacementFailed
        } else if op.starts_with("dynamodb:") {
            Handover::LedgerUnusable
        } else {
            Handover::AwsRefused
        }
    }

    /// Opened by a scheduled notice's repair ahead of EC2 (`claim_notice`), not an alarm.
    pub fn by_notice(&self) -> bool {
        self.transitions
            .first()
            .is_some_and(|t| t.starts_with(NOTICE_TRANSITION))
    }

    /// Since when its reports count: "the alarm", or the notice's repair.
    pub fn opened_by(&self) -> &'static str {
        match self.by_notice() {
            true => "the notice's repair began",
            false => "the alarm",
        }
    }

    /// A copy a scheduled notice opened (`claim_notice`), not finished: resumed as a
    /// relaunch under way, before its first phase too (no alarm, nothing for EC2 to confirm).
    pub fn relaunch_by_notice(&self) -> bool {
        self.by_notice()
            && self
                .rungs
                .iter()
                .any(|(r, _)| *r == crate::rules::ladder::Rung::Relaunch)
            && !self.progress.is_finished()
    }

    /// Waiting for the world with nobody holding it: a trigger may pick it up.
    pub fn is_waiting(&self, now_ms: i64) -> bool {
        self.status == Status::Repairing
            && self.lease_until_ms <= now_ms
            && self.hold_until_ms.is_none_or(|t| t <= now_ms)
    }

    /// Held behind a breaker and free: the tick may take it up before its hold's time,
    /// once the breaker closed (`turns` knows; the decision looks at the breaker again).
    pub fn is_behind_breaker(&self, now_ms: i64) -> bool {
        self.status == Status::Repairing
            && self.lease_until_ms <= now_ms
            && self.hold_kind == Some(HoldKind::Breaker)
    }
}

pub fn incident_id(instance_id: &str, opened: DateTime<Utc>) -> String {
    format!("{instance_id}-{}", opened.format("%Y%m%dT%H%M%SZ"))
}

/// What an invocation may do, given the head it read.
// A Move lives for one ledger round trip; boxing the head would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Move {
    /// Write this head (conditionally on the version read), then go on.
    Take(Head),
    /// Do nothing more: someone else has it, it is already handled, or it is stale.
    Skip(Outcome),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intake::{AlarmState, Metric, Recovery};

    pub(super) const T0: i64 = 1_795_403_565_123;

    pub(super) fn signal(state: AlarmState, t_ms: i64) -> Signal {
        Signal {
            instance_id: "i-0123456789abcdef0".into(),
            metric: Metric::StatusCheckFailed,
            state,
            changed_at: DateTime::from_timestamp_millis(t_ms).unwrap(),
            alarm_name: "a".into(),
            alarm_arn: None,
            by_notice: false,
            region: None,
            account: None,
            reason: String::new(),
        }
    }

    pub(super) fn head(status: Status, lease_until_ms: i64) -> Head {
        let s = signal(AlarmState::Alarm, T0);
        Head {
            instance_id: s.instance_id.clone(),
            incident_id: incident_id(&s.instance_id, s.changed_at),
            status,
            opened_ms: T0,
            alarm_ms: T0,
            closed_ms: (status == Status::Closed).then_some(T0 + 60_000),
            transitions: vec![s.transition_key()],
            lease_until_ms,
            version: 4,
            attempts: 1,
            action: Some(Action::MarkUnhealthy),
            result: Some(Verdict::Done),
            reason: None,
            group: Some("g".into()),
            alarm: AlarmContext::of(&s),
            progress: Progress::default(),
            hold_until_ms: None,
            rungs: vec![],
            hold_kind: None,
            hold_scope: None,
            member_steps: vec![],
            ec2_heard: vec![],
        }
    }

    fn verdict(c: &Move) -> String {
        match c {
            Move::Take(h) if h.attempts == 1 => format!("new v{}", h.version),
            Move::Take(h) => format!("resume v{} attempt {}", h.version, h.attempts),
            Move::Skip(o) => format!("skip {}: {}", o.result.as_str(), o.reason),
        }
    }

    #[test]
    fn claim_table() {
        // Received a second after the latest alarm of the table changed state.
        let now = T0 + 121_000;
        let same = signal(AlarmState::Alarm, T0);
        let later = signal(AlarmState::Alarm, T0 + 120_000);
        let earlier = signal(AlarmState::Alarm, T0 - 120_000);
        let table: Vec<(Option<Head>, &Signal, &str)> = vec![
            (None, &same, "new v1"),
            (Some(head(Status::Repairing, now + 30_000)), &same, "skip duplicate: incident i-0123456789abcdef0-20261123T031245Z is being repaired by another invocation"),
            (Some(head(Status::Repairing, now + 30_000)), &later, "skip duplicate: incident i-0123456789abcdef0-20261123T031245Z is being repaired"),
            (Some(head(Status::Repairing, now - 1)), &same, "resume v5 attempt 2"),
            (Some(head(Status::Repairing, 0)), &later, "resume v5 attempt 2"),
            (Some(head(Status::Settled, 0)), &same, "skip duplicate: already handled: mark_unhealthy done"),
            (Some(head(Status::Settled, 0)), &later, "resume v5 attempt 2"),
            (Some(head(Status::Closed, 0)), &later, "new v5"),
            (Some(head(Status::Closed, 0)), &same, "skip duplicate: stale alarm"),
            (Some(head(Status::Closed, 0)), &earlier, "skip duplicate: stale alarm"),
            // Held in its grace: the same alarm again is a duplicate, a new one looks again.
            (Some(held(now + 60_000)), &same, "skip duplicate: incident i-0123456789abcdef0-20261123T031245Z is held (grace); looked at again by the tick"),
            (Some(held(now + 60_000)), &later, "resume v5 attempt 2"),
            (Some(held(now - 1)), &same, "resume v5 attempt 2"),
        ];
        for (current, s, expected) in table {
            let got = verdict(&claim_alarm(current.as_ref(), s, now, now + 30_000));
            assert!(
                got.starts_with(expected),
                "{current:?} / {s:?}: {got} != {expected}"
            );
        }
    }

    fn held(until_ms: i64) -> Head {
        Head {
            hold_until_ms: Some(until_ms),
            hold_kind: Some(HoldKind::Grace),
            hold_scope: None,
            member_steps: vec![],
            ec2_heard: vec![],
            action: None,
            result: Some(Verdict::Held),
            ..head(Status::Repairing, 0)
        }
    }

    #[test]
    fn the_tick_takes_a_hold_only_after_its_grace() {
        let now = T0 + 1_000;
        let waiting = |h: &Head| verdict(&claim_waiting(Some(h), now, now + 30_000));
        assert!(waiting(&held(now + 1)).starts_with("skip duplicate: nothing waiting here"));
        assert_eq!(waiting(&held(now)), "resume v5 attempt 2");
        assert!(!held(now + 1).is_waiting(now) && held(now).is_waiting(now));
    }

    #[test]
    fn a_taken_claim_records_the_transition_and_lease() {
        let later = signal(AlarmState::Alarm, T0 + 120_000);
        let now = T0 + 120_000;
        let Move::Take(h) = claim_alarm(Some(&head(Status::Settled, 0)), &later, now, T0 + 9)
        else {
            panic!()
        };
        assert_eq!(h.status, Status::Repairing);
        assert_eq!(h.lease_until_ms, T0 + 9);
        assert_eq!(h.transitions.len(), 2);
        let Move::Take(fresh) = claim_alarm(Some(&head(Status::Closed, 0)), &later, now, T0 + 9)
        else {
            panic!()
        };
        assert_eq!(fresh.incident_id, "i-0123456789abcdef0-20261123T031445Z");
        assert_eq!(fresh.transitions, vec![later.transition_key()]);
    }

    #[test]
    fn close_table() {
        // Received when it says it changed state.
        let now = T0 + 600_000;
        let ok = signal(AlarmState::Ok, now);
        let old_ok = signal(AlarmState::Ok, T0 - 1);
        let future_ok = signal(AlarmState::Ok, 4_102_444_800_000);
        let leased = head(Status::Repairing, now + 5_000);
        let mut relaunching = head(Status::Repairing, 0);
        relaunching.progress.phase = Some(crate::model::progress::Phase::Imaging);
        // A relaunch whose step failed for good is settled where it stopped: over.
        let mut failed_relaunch = head(Status::Settled, 0);
        failed_relaunch.progress.phase = Some(crate::model::progress::Phase::Imaging);
        let impaired = Some("EC2 reports both status checks impaired");
        // (head, OK, what EC2 says against it, expected)
        let table: Vec<(Option<Head>, &Signal, Option<&str>, &str)> = vec![
            (
                None,
                &ok,
                None,
                "skip ignored: alarm returned to OK; no incident was open",
            ),
            (Some(head(Status::Settled, 0)), &ok, None, "close"),
            (Some(failed_relaunch), &ok, None, "close"),
            (Some(head(Status::Repairing, T0 + 5_000)), &ok, None, "close"),
            // A forged OK from the future closes on autoheal's own time.
            (Some(head(Status::Settled, 0)), &future_ok, None, "close"),
            (
                Some(head(Status::Settled, 0)),
                &ok,
                impaired,
                "skip held: OK not confirmed by EC2: EC2 reports both status checks impaired; incident i-0123456789abcdef0-20261123T031245Z goes on",
            ),
            (
                Some(leased),
                &ok,
                None,
                "skip duplicate: alarm returned to OK while incident i-0123456789abcdef0-20261123T031245Z is being repaired by another invocation",
            ),
            (
                Some(relaunching),
                &ok,
                None,
                "skip ignored: alarm returned to OK during the relaunch",
            ),
            (
                Some(head(Status::Settled, 0)),
                &old_ok,
                None,
                "skip ignored: stale OK",
            ),
            (
                Some(head(Status::Closed, 0)),
                &ok,
                None,
                "skip duplicate: incident i-0123456789abcdef0-20261123T031245Z is already closed",
            ),
        ];
        for (current, s, ec2, expected) in table {
            let got = match close_on_ok(current.as_ref(), s, ec2, now) {
                Move::Take(h) => {
                    assert_eq!(
                        (h.status, h.closed_ms, h.version),
                        (Status::Closed, Some(now), 5)
                    );
                    "close".to_string()
                }
                Move::Skip(o) => format!("skip {}: {}", o.result.as_str(), o.reason),
            };
            assert!(got.starts_with(expected), "{got} != {expected}");
        }
    }

    #[test]
    fn no_date_makes_a_later_alarm_stale() {
        // A forged ALARM dated 2100 opens (on autoheal's time) and is closed without an OK.
        let now = T0 + 60_000;
        let forged = signal(AlarmState::Alarm, 4_102_444_800_000);
        let Move::Take(h) = claim_alarm(None, &forged, now, now + 9) else {
            panic!()
        };
        assert_eq!(h.opened_ms, now);
        assert_eq!(h.incident_id, incident_id(&h.instance_id, forged_free(now)));
        let closed = close_without_ok(
            &h,
            &Outcome::new(None, Action::None, Verdict::Held, "unconfirmed"),
            now + 600_000,
        );
        assert_eq!(closed.closed_ms, Some(now + 600_000));
        // The real alarm a minute later opens a new incident.
        let later = now + 660_000;
        let real = signal(AlarmState::Alarm, later);
        let Move::Take(fresh) = claim_alarm(Some(&closed), &real, later, later + 9) else {
            panic!("the real alarm was refused")
        };
        assert_eq!(fresh.opened_ms, later);
        // A repeat of the forged message is still the same transition: a duplicate.
        assert!(matches!(
            claim_alarm(Some(&closed), &forged, later, later + 9),
            Move::Skip(o) if o.result == Verdict::Duplicate
        ));
    }

    fn forged_free(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(ms).unwrap()
    }

    #[test]
    fn settle_and_release_bump_the_version_and_free_the_lease() {
        let h = head(Status::Repairing, T0 + 30_000);
        let mut o = Outcome::new(None, Action::MarkUnhealthy, Verdict::Done, "marked");
        o.group = Some("web".into());
        let s = settle(&h, &o);
        assert_eq!(
            (s.status, s.lease_until_ms, s.version),
            (Status::Settled, 0, 5)
        );
        assert_eq!(
            (s.action, s.result, s.group.as_deref()),
            (
                Some(Action::MarkUnhealthy),
                Some(Verdict::Done),
                Some("web")
            )
        );
        let r = release(&h);
        assert_eq!(
            (r.status, r.lease_until_ms, r.version),
            (Status::Repairing, 0, 5)
        );
        // A transient failure: released and due for the tick now, an earlier hold kept.
        let now = T0 + 1_000;
        let again = retry_later(&h, now);
        assert_eq!((again.lease_until_ms, again.hold_until_ms), (0, Some(now)));
        assert!(again.is_waiting(now));
        let held = Head {
            hold_until_ms: Some(now - 5),
            ..h.clone()
        };
        assert_eq!(retry_later(&held, now).hold_until_ms, Some(now - 5));
    }

    #[test]
    fn what_ec2_announces_is_kept_and_taken_when_its_rung_waits() {
        use crate::rules::ladder::Rung;
        let recovery = |heard: Heard, at_ms: i64| Recovery {
            instance_id: "i-0123456789abcdef0".into(),
            region: Some("us-east-1".into()),
            account: None,
            heard,
            code: "AWS_EC2_SIMPLIFIED_AUTO_RECOVERY_FAILURE".into(),
            at: DateTime::from_timestamp_millis(at_ms).unwrap(),
        };
        let now = T0 + 5 * 60_000;
        let lease = now + 60_000;
        let waiting = Head {
            rungs: vec![(Rung::Ec2Recovery, T0)],
            hold_until_ms: Some(T0 + 10 * 60_000),
            ..head(Status::Repairing, 0)
        };
        let leased = Head {
            lease_until_ms: now + 1,
            ..waiting.clone()
        };
        let rebooting = Head {
            rungs: vec![(Rung::Reboot, T0)],
            ..head(Status::Repairing, 0)
        };
        let old = Head {
            ec2_heard: vec![
                (Heard::Recovered, now - 25 * 3_600_000),
                (Heard::Failed, now - 3_600_000),
            ],
            ..head(Status::Settled, 0)
        };
        let r = recovery(Heard::Failed, now - 1_000);
        let heard_again = Head {
            ec2_heard: vec![(Heard::Failed, now - 1_000)],
            ..waiting.clone()
        };
        // (what, head, want: verdict text, lease taken, hold due now, heard kept)
        type Case<'a> = (&'a str, Option<&'a Head>, &'a str, bool, bool, Vec<Heard>);
        let cases: Vec<Case> = vec![
            ("no incident", None, "skip ignored: EC2 announced that its automatic recovery of the instance failed (AWS_EC2_SIMPLIFIED_AUTO_RECOVERY_FAILURE at 03:17:44Z); autoheal has no incident for it", false, false, vec![]),
            ("waiting on the rung: taken", Some(&waiting), "resume v5 attempt 2", true, true, vec![Heard::Failed]),
            ("held by another invocation: due for the tick", Some(&leased), "new v5", false, true, vec![Heard::Failed]),
            ("another rung: kept only", Some(&rebooting), "new v5", false, false, vec![Heard::Failed]),
            ("a day's attempts kept, older ones dropped", Some(&old), "new v5", false, false, vec![Heard::Failed, Heard::Failed]),
            ("delivered twice", Some(&heard_again), "skip duplicate: EC2 announced that its automatic recovery of the instance failed (AWS_EC2_SIMPLIFIED_AUTO_RECOVERY_FAILURE at 03:17:44Z); already heard", false, false, vec![]),
        ];
        for (what, h, want, taken, due, kept) in cases {
            let m = hear(h, &r, now, lease);
            assert_eq!(verdict(&m), want, "{what}");
            if let Move::Take(next) = m {
                assert_eq!(next.lease_until_ms == lease, taken, "{what}");
                assert_eq!(next.hold_until_ms == Some(now), due, "{what}");
                let heard: Vec<Heard> = next.ec2_heard.iter().map(|(h, _)| *h).collect();
                assert_eq!(heard, kept, "{what}");
            }
        }
        // A new incident on the same instance keeps the day's attempts.
        let s = signal(AlarmState::Alarm, now);
        match claim_alarm(Some(&old), &s, now, lease) {
            Move::Take(fresh) => assert_eq!(fresh.ec2_heard, old.ec2_heard),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_step_failed_for_good_goes_to_the_section_of_what_was_being_repaired() {
        use crate::model::progress::Phase;
        let member = head(Status::Repairing, 0);
        let mut following = member.clone();
        following.result = Some(Verdict::InProgress);
        let mut relaunching = member.clone();
        relaunching.action = None;
        relaunching.progress.enter(Phase::Imaging, T0);
        relaunching.progress.enter(Phase::Launching, T0 + 1);
        let mut rebooting = member.clone();
        rebooting.action = None;
        // (what, head, action, operation, kind)
        let cases = [
            (
                "the mark refused",
                &member,
                Action::MarkUnhealthy,
                "autoscaling:SetInstanceHealth",
                Handover::AwsRefused,
            ),
            (
                "a reboot refused",
                &rebooting,
                Action::Reboot,
                "ec2:RebootInstances",
                Handover::AwsRefused,
            ),
            (
                "the ledger refused a hold",
                &rebooting,
                Action::None,
                "dynamodb:PutItem",
                Handover::LedgerUnusable,
            ),
            (
                "the group unreadable while following its replacement",
                &following,
                Action::Verify,
                "autoscaling:DescribeAutoScalingGroups",
                Handover::MemberReplacementFailed,
            ),
            (
                "the first image refused",
                &rebooting,
                Action::CreateImage,
                "ec2:CreateImage",
                Handover::RelaunchImaging,
            ),
            (
                "the copy refused",
                &relaunching,
                Action::LaunchReplacement,
                "ec2:RunInstances",
                Handover::RelaunchLaunching,
            ),
            (
                "the copy's checks unreadable",
                &relaunching,
                Action::Verify,
                "ec2:DescribeInstanceStatus",
                Handover::RelaunchLaunching,
            ),
        ];
        for (what, h, action, op, want) in cases {
            assert_eq!(h.failed_for_good(action, op), want, "{what}");
        }
    }
}
