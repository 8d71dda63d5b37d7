//! Why an incident is handed to people: a closed set of kinds, each with its section of
//! docs/RUNBOOK.md. An outcome that ends an incident with people, or holds it for them,
//! carries its kind beside the human reason; the report links the kind's section, and a
//! test (`tests/runbook.rs`) fails when a kind has no section or a section no kind.

use serde::{Serialize, Serializer};

macro_rules! handovers {
    ($($(#[$m:meta])* $kind:ident => $anchor:literal, $title:literal;)+) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Handover { $($(#[$m])* $kind),+ }

        impl Handover {
            /// Every kind, in the runbook's order: listed here by the same macro that
            /// declares them, so no kind can be left out.
            pub const ALL: &'static [Handover] = &[$(Handover::$kind),+];

            /// The runbook section's anchor (GitHub's: the title lowercased, spaces to
            /// `-`, punctuation dropped); also the kind's name in the invocation result.
            pub fn anchor(self) -> &'static str {
                match self { $(Handover::$kind => $anchor),+ }
            }

            /// The runbook section's heading.
            pub fn title(self) -> &'static str {
                match self { $(Handover::$kind => $title),+ }
            }
        }
    };
}

handovers! {
    /// `StatusCheckFailed_AttachedEBS`: reported only.
    AttachedEbs => "attached-ebs-check-failed", "Attached EBS check failed";
    /// A group member in `Standby`, `Detaching`, ...: Auto Scaling would not replace it.
    MemberNotReplaceable => "member-auto-scaling-would-not-replace", "Member Auto Scaling would not replace";
    /// `autoheal=notify`: what autoheal would do, reported, not done.
    ReportOnly => "report-only-notify-tag", "Report only (notify tag)";
    /// A standalone instance whose root device is instance store: cannot be imaged.
    InstanceStoreRoot => "instance-store-root", "Instance-store root";
    /// autoheal's own copy failing again within `AUTOHEAL_LINEAGE_WINDOW`.
    RelaunchBudget => "relaunch-budget-spent", "Relaunch budget spent";
    /// The relaunch ended in its imaging phase (or before it).
    RelaunchImaging => "relaunch-failed-while-imaging", "Relaunch failed while imaging";
    RelaunchLaunching => "relaunch-failed-while-launching", "Relaunch failed while launching";
    RelaunchTakingOver => "relaunch-failed-while-taking-over", "Relaunch failed while taking over";
    RelaunchVerifying => "relaunch-failed-while-verifying", "Relaunch failed while verifying";
    /// Imaged, but no copy: EC2 would refuse to stop the stop-protected source.
    StopProtected => "relaunch-stopped-by-stop-protection", "Relaunch stopped by stop protection";
    /// The `autoheal` tag or dry run changed during the relaunch: it stopped where it stood.
    RelaunchHalted => "relaunch-stopped-by-a-tag-or-dry-run", "Relaunch stopped by a tag or dry run";
    /// A new alarm of an incident whose relaunch already ended: not retried.
    RelaunchOver => "relaunch-already-ended", "Relaunch already ended";
    /// A member marked Unhealthy that Auto Scaling did not replace within the verify timeout.
    MemberNotReplaced => "member-not-replaced-in-time", "Member not replaced in time";
    /// Following a marked member's replacement failed for good (its group not readable).
    MemberReplacementFailed => "member-replacement-failed", "Member replacement failed";
    /// The `autoheal:ladder` tag does not parse.
    BadLadderTag => "bad-ladder-tag", "Bad ladder tag";
    /// No rung of the ladder applies to this instance.
    NoRung => "no-rung-applies", "No rung applies";
    /// Still failing after every rung of its ladder.
    LadderEnded => "ladder-ended-still-failing", "Ladder ended, still failing";
    /// EC2 never confirmed the alarm within `AUTOHEAL_CONFIRM_WINDOW`: closed untouched.
    Unconfirmed => "alarm-ec2-never-confirmed", "Alarm EC2 never confirmed";
    /// AWS refused a call for good (mark, reboot, stop-start, a read).
    AwsRefused => "aws-refused-a-call", "AWS refused a call";
    /// The ledger refused the incident's item for good.
    LedgerUnusable => "ledger-item-unusable", "Ledger item unusable";
    /// Another controller's instance (Karpenter, a fleet, EMR, a detached member, Spot).
    OtherController => "another-controllers-instance", "Another controller's instance";
    /// A person stopped the instance after a rung: the incident is theirs.
    TakenOver => "taken-over-by-a-person", "Taken over by a person";
    /// Many members of one group or cluster failed at once: repairs stopped there.
    Breaker => "breaker-open", "Breaker open";
    /// The tick could not do part of its work: backups, the scan, re-sends, the open index.
    TickWarning => "tick-warning", "Tick warning";
    /// Dry run: autoheal decided and did nothing; the instance is still failing.
    DryRun => "dry-run-nothing-done", "Dry run, nothing done";
    /// EC2 announced a retirement, stop, reboot or maintenance ahead: recorded, planned,
    /// told once; this version does not act on it.
    ScheduledNotice => "scheduled-notice", "Scheduled notice";
}

impl Serialize for Handover {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.anchor())
    }
}

/// GitHub's anchor for a heading: lowercased, spaces to `-`, every character but letters,
/// digits, `-` and `_` dropped.
pub fn github_anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_anchor_is_githubs_for_its_title_and_names_one_kind() {
        let mut seen = std::collections::BTreeSet::new();
        for &kind in Handover::ALL {
            assert_eq!(kind.anchor(), github_anchor(kind.title()), "{kind:?}");
            assert!(seen.insert(kind.anchor()), "{kind:?}: anchor used twice");
            assert_eq!(
                serde_json::to_value(kind).unwrap(),
                serde_json::json!(kind.anchor())
            );
        }
        assert_eq!(
            github_anchor("Another controller's instance (Spot, EMR) — 2"),
            "another-controllers-instance-spot-emr--2"
        );
    }
}
