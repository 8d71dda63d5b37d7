//! The last stage: a decision told to people (Slack, or the log) with its audit record
//! written beside it; a relaunch's progress told; and every outcome left as one structured
//! log line and one CloudWatch Embedded Metric Format line (namespace `autoheal`,
//! dimensions action/result, metric `outcomes`).

use crate::app::Run;
use crate::error::Error;
use crate::intake::Signal;
use crate::model::facts::Facts;
use crate::model::handover::Handover;
use crate::model::outcome::{Action, Outcome, Verdict};
pub(crate) use crate::model::progress::clock_text;
use crate::notify::message::{slack_payload, Report};
use crate::notify::Delivery;
use crate::rules::{history, trust};
use serde_json::{json, Value};

/// Reports a decision. While the run decides an alarm, the decision's audit record is
/// written beside the report (and the outcome marked recorded); otherwise the caller
/// records it with the others of its trigger.
pub(crate) async fn decision(
    run: &Run<'_>,
    s: &Signal,
    facts: Option<&Facts>,
    mut outcome: Outcome,
) -> Outcome {
    let payload = payload(run, s, facts, &outcome);
    let Some(deciding) = &run.deciding else {
        outcome.notification = Some(run.tell(&payload).await);
        return outcome;
    };
    let mut audited = outcome.clone();
    complete(
        &mut audited,
        &deciding.signal,
        deciding.received_ms,
        run.config.dry_run,
    );
    // It says where the report is sent; one Slack does not take is kept in the outbox and
    // shown in the result.
    audited.notification = Some(Delivery::Sent(run.teller.sink()).as_notification());
    let (told, ()) = tokio::join!(
        run.tell(&payload),
        record(run, std::slice::from_ref(&audited))
    );
    outcome.notification = Some(told);
    outcome.recorded = true;
    outcome
}

/// A report that is not a decision (a relaunch's step): told, not recorded.
pub(crate) async fn progress(run: &Run<'_>, s: &Signal, outcome: &Outcome) {
    run.tell(&payload(run, s, None, outcome)).await;
}

/// The ledger could not take the claim for good: nothing was done, people are told.
pub(crate) async fn ledger_unusable(
    run: &Run<'_>,
    s: &Signal,
    facts: Option<&Facts>,
    e: Error,
) -> Outcome {
    let outcome = Outcome::new(
        Some(s.instance_id.clone()),
        Action::None,
        Verdict::Failed,
        format!("ledger unusable, nothing done: {e}"),
    )
    .for_people(Handover::LedgerUnusable);
    decision(run, s, facts, outcome).await
}

fn payload(run: &Run<'_>, s: &Signal, facts: Option<&Facts>, outcome: &Outcome) -> Value {
    let region = s.region.as_deref().unwrap_or(&run.config.region);
    slack_payload(&Report {
        signal: s,
        facts,
        outcome,
        region,
        runbook: run.config.runbook_url.as_deref(),
    })
}

/// The audit trail: one record per decision about an instance. A failed write is logged;
/// the decision stands.
pub(crate) async fn record(run: &Run<'_>, outcomes: &[Outcome]) {
    let now = run.now_ms();
    let writes = outcomes
        .iter()
        .filter(|o| !o.recorded)
        .filter_map(|o| history::record(o, now))
        .map(|r| async move {
            if let Err(e) = run.ledger.record(&r, now / 1000).await {
                tracing::warn!(error = %e, instance_id = %r.instance_id, "could not record the decision in the audit trail");
            }
        });
    futures::future::join_all(writes).await;
}

/// An alarm's outcome as the result and the audit trail show it: its times, and what it
/// was decided from.
pub(crate) fn complete(outcome: &mut Outcome, s: &Signal, received_ms: i64, dry_run: bool) {
    stamp_times(outcome, s, received_ms);
    outcome
        .inputs
        .get_or_insert_with(|| history::inputs(s, None, dry_run));
    if outcome.alarm_time_trusted == Some(false) {
        if let Some(inputs) = outcome.inputs.as_mut() {
            inputs.push_str(&format!(
                "; alarm time not trusted as a clock, windows measured from its receipt at {}",
                outcome.received_time.as_deref().unwrap_or("?")
            ));
        }
    }
}

/// The alarm's own time and when it was received, and whether the first was trusted as a
/// clock (`trust::alarm_clock`).
fn stamp_times(outcome: &mut Outcome, s: &Signal, received_ms: i64) {
    let event_ms = s.changed_at.timestamp_millis();
    let (_, trusted) = trust::alarm_clock(event_ms, received_ms);
    let rfc = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .unwrap_or_default()
            .format("%Y-%m-%dT%H:%M:%S%.3fZ")
            .to_string()
    };
    outcome.alarm_time = Some(rfc(event_ms));
    outcome.received_time = Some(rfc(received_ms));
    outcome.alarm_time_trusted = Some(trusted);
}

pub const METRIC_NAMESPACE: &str = "autoheal";

pub fn emit(outcome: &Outcome) {
    debug_assert!(
        !outcome.asks_people() || outcome.handover.is_some(),
        "an outcome for people without its runbook section: {outcome:?}"
    );
    tracing::info!(
        instance_id = outcome.instance_id.as_deref(),
        incident = outcome.incident.as_deref(),
        group = outcome.group.as_deref(),
        handover = outcome.handover.map(|h| h.anchor()),
        action = outcome.action.as_str(),
        result = outcome.result.as_str(),
        reason = %outcome.reason,
        notification = outcome.notification.as_deref(),
        "outcome"
    );
    println!(
        "{}",
        emf_line(outcome, chrono::Utc::now().timestamp_millis())
    );
}

pub fn emf_line(outcome: &Outcome, timestamp_ms: i64) -> String {
    json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": METRIC_NAMESPACE,
                "Dimensions": [["action", "result"]],
                "Metrics": [{"Name": "outcomes", "Unit": "Count"}]
            }]
        },
        "action": outcome.action.as_str(),
        "result": outcome.result.as_str(),
        "outcomes": 1,
        "instance_id": outcome.instance_id,
        "incident": outcome.incident,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::outcome::{Action, Verdict};

    #[test]
    fn emf_line_has_the_metric_and_its_dimensions() {
        let o = Outcome::new(
            Some("i-1".into()),
            Action::MarkUnhealthy,
            Verdict::Done,
            "r",
        );
        let v: serde_json::Value = serde_json::from_str(&emf_line(&o, 7)).unwrap();
        assert_eq!(v["_aws"]["Timestamp"], 7);
        let directive = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "autoheal");
        assert_eq!(directive["Dimensions"], json!([["action", "result"]]));
        assert_eq!(directive["Metrics"][0]["Name"], "outcomes");
        // Every dimension and metric named in the directive is a member of the line.
        assert_eq!(
            (
                v["action"].as_str(),
                v["result"].as_str(),
                v["outcomes"].as_i64()
            ),
            (Some("mark_unhealthy"), Some("done"), Some(1))
        );
    }
}
