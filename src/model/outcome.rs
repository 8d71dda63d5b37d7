//! The invocation result (contract): one outcome per record/event.

use super::handover::Handover;
use serde::Serialize;

macro_rules! wire_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident => $wire:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
        pub enum $name { $(#[serde(rename = $wire)] $variant),+ }
        impl $name {
            pub fn as_str(self) -> &'static str { match self { $($name::$variant => $wire),+ } }
            pub fn parse(s: &str) -> Option<$name> { match s { $($wire => Some($name::$variant),)+ _ => None } }
        }
    };
}

wire_enum!(
    /// What autoheal did or would do.
    Action {
        MarkUnhealthy => "mark_unhealthy",
        CreateImage => "create_image",
        LaunchReplacement => "launch_replacement",
        Reboot => "reboot",
        StopStart => "stop_start",
        Verify => "verify",
        None => "none",
    }
);

wire_enum!(
    /// How it went.
    Verdict {
        Done => "done",
        InProgress => "in_progress",
        Duplicate => "duplicate",
        Ignored => "ignored",
        Held => "held",
        DryRun => "dry_run",
        Failed => "failed",
    }
);

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    pub instance_id: Option<String>,
    pub action: Action,
    pub result: Verdict,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incident: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Why people have it, when they do: the runbook section the report links.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handover: Option<Handover>,
    /// Where the report went: `slack`, `log` (no webhook configured), `failed: ...`, or
    /// absent when nothing was worth reporting (bad input, a duplicate delivery).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notification: Option<String>,
    /// The alarm's own state-change time (RFC 3339), as the event said.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alarm_time: Option<String>,
    /// When autoheal received the event.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub received_time: Option<String>,
    /// false: the alarm's time was implausible (late, redriven, ahead of our clock), so the
    /// grace, budgets and breaker measured from `received_time` instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alarm_time_trusted: Option<bool>,
    /// What the decision was made from (alarm, instance, group, policy), for the audit
    /// trail in the ledger; not part of the invocation result.
    #[serde(skip)]
    pub inputs: Option<String>,
    /// A hold that proceeds by itself later (grace period, a repair guard): the tick looks
    /// again. Not part of the invocation result.
    #[serde(skip)]
    pub resumes: bool,
    /// Its audit record is written already (beside its report). Not part of the result.
    #[serde(skip)]
    pub recorded: bool,
    /// How an incident ended well, for the report's title; None for an alarm back to OK.
    /// Not part of the result.
    #[serde(skip)]
    pub recovered: Option<Recovered>,
}

/// What closed an incident as recovered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovered {
    /// After a rung, EC2 reports the status checks ok.
    ChecksOk,
    /// A relaunched copy took over and EC2 reports its checks ok.
    Copy,
    /// Auto Scaling replaced the member marked Unhealthy, and the group is whole again.
    Replacement,
}

impl Outcome {
    /// A `verify` / `done` outcome: the incident ended well, `how`.
    pub fn recovered(instance_id: String, how: Recovered, reason: impl Into<String>) -> Outcome {
        let mut o = Outcome::new(Some(instance_id), Action::Verify, Verdict::Done, reason);
        o.recovered = Some(how);
        o
    }

    /// This outcome, handed to people for `kind`.
    pub fn for_people(mut self, kind: Handover) -> Outcome {
        self.handover = Some(kind);
        self
    }

    /// Whether its report hands the instance to people: a failure, a dry run, or a hold
    /// that does not proceed by itself. Each of these carries its `handover`.
    pub fn asks_people(&self) -> bool {
        match self.result {
            Verdict::Failed | Verdict::DryRun => true,
            Verdict::Held => !self.resumes,
            _ => false,
        }
    }

    pub fn new(
        instance_id: Option<String>,
        action: Action,
        result: Verdict,
        reason: impl Into<String>,
    ) -> Outcome {
        Outcome {
            instance_id,
            action,
            result,
            reason: reason.into(),
            incident: None,
            group: None,
            handover: None,
            notification: None,
            alarm_time: None,
            received_time: None,
            alarm_time_trusted: None,
            inputs: None,
            resumes: false,
            recorded: false,
            recovered: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Response {
    pub outcomes: Vec<Outcome>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_round_trip_and_serialize_as_the_contract_says() {
        for a in [
            Action::MarkUnhealthy,
            Action::StopStart,
            Action::None,
            Action::Verify,
        ] {
            assert_eq!(Action::parse(a.as_str()), Some(a));
            assert_eq!(serde_json::to_value(a).unwrap(), a.as_str());
        }
        for v in [
            Verdict::Done,
            Verdict::DryRun,
            Verdict::InProgress,
            Verdict::Failed,
        ] {
            assert_eq!(Verdict::parse(v.as_str()), Some(v));
        }
        let o = Outcome::new(None, Action::None, Verdict::Ignored, "why");
        assert_eq!(
            serde_json::to_value(&o).unwrap(),
            serde_json::json!({"instance_id": null, "action": "none", "result": "ignored", "reason": "why"})
        );
    }
}
