//! The escalation ladder at the edges: which rung now (reading the instance's status when
//! the combined metric needs it), and the rungs that are not a relaunch — reboot, waiting
//! for EC2's recovery, stop and start — each a ledger step with its timeout, listed for
//! the tick, and reported.

use crate::app::Run;
use crate::error::Error;
use crate::intake::Signal;
use crate::model::facts::{Facts, InstanceFacts};
use crate::model::outcome::{Action, Outcome, Verdict};
use crate::pipeline::commit::{fail, list};
use crate::pipeline::report;
use crate::rules::history;
use crate::rules::incident::{self, Head};
use crate::rules::ladder::{Next, Rung};

/// The facts only the ladder needs, read for a standalone instance in one round: whether
/// its type supports EC2's automatic recovery (cached per container) and whether it is
/// stop-protected. What cannot be read stays unknown: the rung is then tried (waiting for
/// EC2's recovery is harmless; a refused stop is a failed rung, reported).
pub async fn enrich(run: &Run<'_>, region: &str, instance: &InstanceFacts) -> InstanceFacts {
    let itype = instance.instance_type.clone().unwrap_or_default();
    let (supported, protected) = tokio::join!(
        run.fleet.recovery_supported(region, &itype),
        run.fleet.stop_protected(region, &instance.instance_id),
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
    let ladders = &run.config.ladders;
    let timeout = |rung| ladders.timeout_ms(rung);
    let Some(start) = incident::start_rung(&head, next, timeout, run.now_ms()) else {
        let e = Error::Permanent {
            op: "ladder",
            code: None,
            detail: "the ladder named no rung to start".into(),
        };
        return fail(run, &head, s, Some(facts), Action::None, e).await;
    };
    if let Some(p) = start.power {
        if let Err(e) = run.fleet.power(head.region(), &head.instance_id, p).await {
            return fail(run, &head, s, Some(facts), start.rung.action(), e).await;
        }
    }
    // Listed for the tick before the head says so: a rung the tick cannot find would
    // wait for the next alarm.
    if let Err(e) = list(run, &head, true).await {
        tracing::warn!(error = %e, incident = %head.incident_id, "could not list the rung for the tick");
    }
    if let Err(e) = run.ledger.write(&start.next, run.now_ms() / 1000).await {
        tracing::error!(error = %e, incident = %head.incident_id, "could not record the rung in the ledger");
    }
    let reason = start.next.reason.clone().unwrap_or_default();
    let action = start.rung.action();
    let mut outcome = Outcome::new(
        Some(head.instance_id.clone()),
        action,
        Verdict::InProgress,
        reason,
    );
    outcome.incident = Some(head.incident_id.clone());
    outcome.inputs = Some(history::inputs(s, Some(facts), run.config.dry_run));
    Ok(report::decision(run, s, Some(facts), outcome).await)
}

/// A rung under way (a new alarm transition, or a stop not finished yet): give the incident
/// back until `until_ms`, say nothing.
pub async fn wait(run: &Run<'_>, head: Head, rung: Rung, until_ms: i64) -> Result<Outcome, Error> {
    let mut next = incident::release(&head);
    next.hold_until_ms = Some(until_ms);
    if let Err(e) = run.ledger.write(&next, run.now_ms() / 1000).await {
        tracing::warn!(error = %e, incident = %head.incident_id, "could not give the incident back; it is taken again when its lease ends");
    }
    let mut o = Outcome::new(
        Some(head.instance_id.clone()),
        rung.action(),
        Verdict::InProgress,
        format!("{} under way; looked at again by the tick", rung.as_str()),
    );
    o.incident = Some(head.incident_id.clone());
    Ok(o)
}
