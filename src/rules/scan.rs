//! The tick's scan for instances nobody watches, pure: impaired instances EC2 reports
//! become alarm-like signals "found by the scan", at most a bound per tick, oldest
//! impairment first. The pipeline takes them as it takes an alarm (claim, confirm, decide,
//! guards, breaker); `incident::claim_scan` keeps them off instances autoheal already knows.

use crate::intake::{AlarmState, Metric, Signal, SCAN_ALARM};
use chrono::DateTime;

/// An instance EC2 reports impaired (`DescribeInstanceStatus`).
#[derive(Debug, Clone, PartialEq)]
pub struct Impaired {
    pub instance_id: String,
    pub system: bool,
    pub instance: bool,
    /// The earliest `ImpairedSince` of its failed checks (epoch ms), when EC2 gave one.
    pub since_ms: Option<i64>,
}

/// The signals for the instances found in `region`, leaving out those already open
/// (`open`: the open index's keys), at most `limit`; and how many were left for the next
/// tick.
pub fn signals(
    found: &[Impaired],
    region: &str,
    account: Option<&str>,
    open: &[String],
    limit: usize,
    now_ms: i64,
) -> (Vec<Signal>, usize) {
    let mut new: Vec<&Impaired> = found
        .iter()
        .filter(|f| !open.contains(&crate::model::keys::key(region, &f.instance_id)))
        .collect();
    new.sort_by_key(|f| (f.since_ms.unwrap_or(now_ms), f.instance_id.clone()));
    let left = new.len().saturating_sub(limit);
    let signals = new
        .into_iter()
        .take(limit)
        .map(|f| signal(f, region, account, now_ms))
        .collect();
    (signals, left)
}

fn signal(f: &Impaired, region: &str, account: Option<&str>, now_ms: i64) -> Signal {
    let (metric, which) = match (f.system, f.instance) {
        (true, false) => (Metric::StatusCheckFailedSystem, "the system status check"),
        (false, true) => (
            Metric::StatusCheckFailedInstance,
            "the instance status check",
        ),
        _ => (Metric::StatusCheckFailed, "both status checks"),
    };
    // EC2's own time of the impairment: what identifies it from one scan to the next.
    let since = f.since_ms.unwrap_or(now_ms);
    let at = DateTime::from_timestamp_millis(since).unwrap_or_default();
    Signal {
        instance_id: f.instance_id.clone(),
        metric,
        state: AlarmState::Alarm,
        changed_at: at,
        alarm_name: SCAN_ALARM.to_string(),
        alarm_arn: None,
        by_notice: false,
        region: Some(region.to_string()),
        account: account.map(str::to_string),
        reason: format!(
            "found by the scan: no alarm reported it; EC2 reports {which} impaired since {}",
            at.format("%Y-%m-%d %H:%M:%S UTC")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_403_565_000;

    fn impaired(id: &str, system: bool, instance: bool, since_ms: Option<i64>) -> Impaired {
        Impaired {
            instance_id: id.into(),
            system,
            instance,
            since_ms,
        }
    }

    #[test]
    fn found_instances_become_signals_oldest_first_bounded_and_not_twice() {
        let found = [
            impaired("i-0000000000000000c", true, true, Some(NOW - 60_000)),
            impaired("i-0000000000000000a", true, false, Some(NOW - 300_000)),
            impaired("i-0000000000000000b", false, true, None),
            impaired("i-0000000000000000d", true, true, Some(NOW - 900_000)),
        ];
        let open = vec!["us-east-1/i-0000000000000000d".to_string()];
        let (first, left) = signals(&found, "us-east-1", Some("1"), &open, 2, NOW);
        let got: Vec<(&str, Metric, i64)> = first
            .iter()
            .map(|s| {
                (
                    s.instance_id.as_str(),
                    s.metric,
                    s.changed_at.timestamp_millis(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    "i-0000000000000000a",
                    Metric::StatusCheckFailedSystem,
                    NOW - 300_000
                ),
                (
                    "i-0000000000000000c",
                    Metric::StatusCheckFailed,
                    NOW - 60_000
                ),
            ]
        );
        assert_eq!(left, 1, "b waits for the next tick; d is open already");
        let s = &first[0];
        assert_eq!(
            (s.alarm_name.as_str(), s.state),
            (SCAN_ALARM, AlarmState::Alarm)
        );
        assert_eq!(s.region.as_deref(), Some("us-east-1"));
        assert!(s.reason.starts_with(
            "found by the scan: no alarm reported it; EC2 reports the system status check impaired since"
        ));
        // The same impairment found again is the same transition: the ledger keeps it once.
        let (again, _) = signals(&found, "us-east-1", Some("1"), &open, 2, NOW + 60_000);
        assert_eq!(again[0].transition_key(), s.transition_key());
        let (none, left) = signals(&found, "us-east-1", None, &open, 0, NOW);
        assert!(none.is_empty());
        assert_eq!(left, 3);
    }
}
