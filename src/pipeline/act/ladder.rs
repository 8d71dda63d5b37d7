//! The escalation ladder at the edges: which rung now (reading the instance's status when
//! the combined metric needs it), and the rungs that are not a relaunch — reboot, waiting
//! for EC2's recovery, stop and start — each a ledger step with its timeout, listed for
//! the tick, and reported.

use crate::app::Run;
use crate::aws::{self, ec2::Power};
use crate::error::Error;
use crate::intake::{Heard, Signal};
use crate::model::facts::{Facts, InstanceFacts};
use crate::model::outcome::{Action, Outcome, Verdict};
use crate::pipeline::commit::fail;
use crate::pipeline::report::{self, clock_text};
use crate::rules::history;
use crate::rules::incident::{self, Head};
use crate::rules::ladder::{Next, Rung};

/// The facts only the ladder needs, read for a standalone instance in one round: whether
/// its type supports EC2's automatic recovery (cached per container) and whether it is
/// stop-protected. What cannot be read stays unknown: the rung is then tried (waiting for
/// EC2's recovery is harmless; a refused stop is a failed rung, reported).
pub async fn enrich(run: &Run<'_>, region: &str, instance: &InstanceFacts) -> InstanceFacts {
    let ec2 = &run.cloud(region).ec2;
    let itype = instance.instance_type.clone().unwrap_or_default();
    let (supported, protected) = tokio::join!(
        run.recovery_by_type.supports(ec2, region, &itype),
        aws::ec2::stop_protected(ec2, &instance.instance_id),
    );
    let known = |r: Result<bool, Error>, what: &str| {
        r.map_err(
            |e| tracing::warn!(error = %e, instance = %instance.instance_id, "{what} unknown"),
        )
        .ok()
    };
    InstanceFacts {
        auto_recovery_supported: known(supported, "automatic recovery support"),
        disable_api_stop: known(protected, "stop protection"),
        ..instance.clone()
    }
}

/// Starts a rung other than relaunch (or starts a stopped instance again) and waits for
/// the alarm to clear: listed for the tick, which takes the next rung after the timeout.
pub async fn climb(
    run: &Run<'_>,
    head: Head,
    s: &Signal,
    facts: &Facts,
    next: Next,
) -> Result<Outcome, Error> {
    let now = run.clock.now_ms();
    let id = head.instance_id.clone();
    let ladders = &run.config.ladders;
    let (rung, power, skipped) = match next {
        Next::Start { rung, skipped } => (
            rung,
            match rung {
                Rung::Reboot => Some(Power::Reboot),
                Rung::StopStart => Some(Power::Stop),
                Rung::Ec2Recovery | Rung::Relaunch => None,
            },
            skipped,
        ),
        Next::StartAgain => (Rung::StopStart, Some(Power::Start), vec![]),
        other => unreachable!("not a rung to start: {other:?}"),
    };
    if let Some(p) = power {
        if let Err(e) = aws::ec2::power(&run.cloud(head.region()).ec2, &id, p).await {
            let action = action_of(rung);
            return fail(run, &head, s, Some(facts), action, e).await;
        }
    }
    let timeout = ladders.timeout_ms(rung);
    let (until, what) = match power {
        Some(Power::Reboot) => (now + timeout, "rebooted".to_string()),
        // Looked at every tick until it is stopped (or the timeout passes).
        Some(Power::Stop) => (now, "stopping it to start it on a new host".to_string()),
        Some(Power::Start) => (
            now + timeout,
            "stopped, started again (a new host)".to_string(),
        ),
        None => (
            now + timeout,
            "EC2's automatic recovery applies: waiting for it".to_string(),
        ),
    };
    let mut reason = format!(
        "{} ({}): {what}; {}",
        rung.as_str(),
        rung_number(&head, rung),
        match power {
            Some(Power::Stop) => format!(
                "started again once stopped (up to {})",
                crate::model::progress::human(timeout)
            ),
            _ => format!(
                "the next rung if the alarm has not cleared by {}",
                chrono::DateTime::from_timestamp_millis(until)
                    .unwrap_or_default()
                    .format("%H:%M:%SZ")
            ),
        }
    );
    if !skipped.is_empty() {
        reason.push_str(&format!(" (skipped: {})", skipped.join("; ")));
    }
    let after_recovery = head
        .rungs
        .last()
        .is_some_and(|(r, _)| *r == Rung::Ec2Recovery);
    if let Some(t) = head.heard(Heard::Failed).filter(|_| after_recovery) {
        reason.push_str(&format!(
            " (EC2 announced at {} that its automatic recovery failed)",
            clock_text(t)
        ));
    }
    let mut next = head.clone();
    next.rungs.push((rung, now));
    next.action = Some(action_of(rung));
    next.result = Some(Verdict::InProgress);
    next.reason = Some(reason.clone());
    next.hold_until_ms = Some(until);
    next.lease_until_ms = 0;
    next.version += 1;
    let now_secs = now / 1000;
    // Listed for the tick before the head says so: a rung the tick cannot find would
    // wait for the next alarm.
    if let Err(e) = run.ledger.set_open(&head.key(), true, now_secs).await {
        tracing::warn!(error = %e, incident = %head.incident_id, "could not list the rung for the tick");
    }
    if let Err(e) = run.ledger.write(&next, now_secs).await {
        tracing::error!(error = %e, incident = %head.incident_id, "could not record the rung in the ledger");
    }
    let mut outcome = Outcome::new(Some(id), action_of(rung), Verdict::InProgress, reason);
    outcome.incident = Some(head.incident_id.clone());
    outcome.inputs = Some(history::inputs(s, Some(facts), run.config.dry_run));
    Ok(report::decision(run, s, Some(facts), outcome).await)
}

/// A rung under way (a new alarm transition, or a stop not finished yet): give the incident
/// back until `until_ms`, say nothing.
pub async fn wait(run: &Run<'_>, head: Head, rung: Rung, until_ms: i64) -> Result<Outcome, Error> {
    let mut next = incident::release(&head);
    next.hold_until_ms = Some(until_ms);
    if let Err(e) = run.ledger.write(&next, run.clock.now_ms() / 1000).await {
        tracing::warn!(error = %e, incident = %head.incident_id, "could not give the incident back; it is taken again when its lease ends");
    }
    let mut o = Outcome::new(
        Some(head.instance_id.clone()),
        action_of(rung),
        Verdict::InProgress,
        format!("{} under way; looked at again by the tick", rung.as_str()),
    );
    o.incident = Some(head.incident_id.clone());
    Ok(o)
}

fn action_of(rung: Rung) -> Action {
    match rung {
        Rung::Reboot => Action::Reboot,
        Rung::StopStart => Action::StopStart,
        Rung::Ec2Recovery => Action::None,
        Rung::Relaunch => Action::CreateImage,
    }
}

/// "rung 2" of the incident (stop-start's start counts with its stop).
fn rung_number(head: &Head, rung: Rung) -> String {
    let mut seen: Vec<Rung> = head.rungs.iter().map(|(r, _)| *r).collect();
    seen.dedup();
    let n = if seen.last() == Some(&rung) {
        seen.len()
    } else {
        seen.len() + 1
    };
    format!("rung {n}")
}
