//! A hold — in its grace period, unconfirmed by EC2, behind a repair guard or the breaker:
//! the incident given back with the time to look again, listed for the tick, and told once
//! per reason.

use super::close::close;
use crate::app::Run;
use crate::error::Error;
use crate::intake::Signal;
use crate::model::facts::Facts;
use crate::model::handover::Handover;
use crate::model::outcome::{Action, Outcome, Verdict};
use crate::model::progress::human;
use crate::pipeline::commit::{fail, list, replace};
use crate::pipeline::report::{self, clock_text};
use crate::rules::history;
use crate::rules::incident::{self, ConfirmWindow, Head, HoldKind};

/// How people hear of a hold.
pub(crate) enum Telling {
    /// A message about this instance (once per reason).
    Report,
    /// Covered by one summary for many instances; `Some`: this invocation sent it, and
    /// where it went.
    Summarised(Option<String>),
}

/// A hold as decided: until when, why, of what kind, and how it is told.
pub(crate) struct Held {
    pub until_ms: i64,
    pub why: String,
    pub told: Telling,
    pub kind: HoldKind,
    /// Behind a breaker: its scope, which the tick waits on.
    pub scope: Option<String>,
}

/// Holds the incident: listed in the open index first, so that the tick acts after it
/// unless an OK came, then the head (`incident::hold`). Told once per reason
/// (`incident::repeats_hold`), not every minute.
pub(crate) async fn hold(
    run: &Run<'_>,
    head: Head,
    s: &Signal,
    facts: &Facts,
    held: Held,
) -> Result<Outcome, Error> {
    // A hold the tick cannot find would wait for the next alarm. A head held before is
    // listed already (settling unlists it and clears its hold).
    if head.hold_until_ms.is_none() {
        if let Err(e) = list(run, &head, true).await {
            return fail(run, &head, s, Some(facts), Action::None, e).await;
        }
    }
    let repeat = incident::repeats_hold(&head, held.kind, &held.why);
    let mut next = incident::hold(&head, held.until_ms, held.kind, &held.why);
    next.hold_scope = held.scope;
    if let Some(outcome) = replace(run, &head, &next, s, facts).await? {
        return Ok(outcome);
    }
    let mut outcome = Outcome::new(
        Some(s.instance_id.clone()),
        Action::None,
        Verdict::Held,
        held.why,
    );
    outcome.incident = Some(head.incident_id.clone());
    outcome.group = facts.group.as_ref().map(|g| g.name.clone());
    outcome.inputs = Some(history::inputs(s, Some(facts), run.config.dry_run));
    outcome.resumes = true;
    // Behind the breaker: people look for the common cause (its summary links the section).
    if held.kind == HoldKind::Breaker {
        outcome.handover = Some(Handover::Breaker);
    }
    match held.told {
        Telling::Summarised(summary) => {
            outcome.notification = summary;
            Ok(outcome)
        }
        Telling::Report if repeat => Ok(outcome),
        Telling::Report => Ok(report::decision(run, s, Some(facts), outcome).await),
    }
}

/// EC2 does not report the failure the alarm is about: held and looked at again by every
/// tick until the confirmation window (from `since_ms`) ends; then told to people once and
/// closed without any repair. An OK meanwhile closes it too.
pub(crate) async fn unconfirmed(
    run: &Run<'_>,
    head: Head,
    s: &Signal,
    facts: &Facts,
    since_ms: i64,
    why: String,
) -> Result<Outcome, Error> {
    let (now, window) = (run.now_ms(), run.config.confirm_window_ms);
    match incident::confirm_window(since_ms, window, now) {
        ConfirmWindow::Open { until_ms } => {
            let held = Held {
                until_ms: now,
                why: format!(
                    "{why}; looking again every minute until {}",
                    clock_text(until_ms)
                ),
                told: Telling::Report,
                kind: HoldKind::Confirm,
                scope: None,
            };
            hold(run, head, s, facts, held).await
        }
        ConfirmWindow::Over => {
            let outcome = Outcome::new(
                Some(s.instance_id.clone()),
                Action::None,
                Verdict::Held,
                format!(
                    "{why}; EC2 did not confirm the alarm within {}: incident closed without any repair — look at the instance if the alarm stays on (docs/RUNBOOK.md)",
                    human(window)
                ),
            )
            .for_people(Handover::Unconfirmed);
            close(run, head, s, facts, outcome).await
        }
    }
}
