//! Every outcome leaves one structured log line and one CloudWatch Embedded Metric Format
//! line (namespace `autoheal`, dimensions action/result, metric `outcomes`).

use crate::outcome::Outcome;
use serde_json::json;

pub const METRIC_NAMESPACE: &str = "autoheal";

pub fn emit(outcome: &Outcome) {
    tracing::info!(
        instance_id = outcome.instance_id.as_deref(),
        incident = outcome.incident.as_deref(),
        group = outcome.group.as_deref(),
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
    use crate::outcome::{Action, Verdict};

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
