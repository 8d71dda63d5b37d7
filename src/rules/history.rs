//! The audit trail: every decision about an instance (including holds, ignores, duplicates
//! and dry runs) with its reason and inputs, kept in the ledger by day
//! (`pk = history#<YYYY-MM-DD>`, `sk = <time>#<instance>#<incident>`) for
//! `autoheal-admin history`. Keys, the record and rendering are here; the writes and reads
//! are in `ledger`.

use crate::intake::Signal;
use crate::model::facts::Facts;
use crate::model::outcome::Outcome;
use crate::rules::policy::policy_for;
use serde::{Deserialize, Serialize};

/// Also the stored form: its fields are the ledger's attributes (`ledger::history`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// RFC 3339, milliseconds, UTC.
    pub at: String,
    pub instance_id: String,
    pub action: String,
    pub result: String,
    #[serde(default)]
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incident: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inputs: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notification: Option<String>,
}

fn at(ms: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

pub fn partition(ms: i64) -> String {
    format!("history#{}", at(ms).format("%Y-%m-%d"))
}

/// The partition a record is kept in: the day of its time.
pub fn partition_of(r: &Record) -> String {
    format!("history#{}", r.at.get(..10).unwrap_or(""))
}

/// The day partitions from `since_ms` to `now_ms`, oldest first.
pub fn partitions(since_ms: i64, now_ms: i64) -> Vec<String> {
    let (mut day, last) = (at(since_ms).date_naive(), at(now_ms).date_naive());
    let mut out = vec![];
    while day <= last {
        out.push(format!("history#{}", day.format("%Y-%m-%d")));
        match day.succ_opt() {
            Some(next) => day = next,
            None => break,
        }
    }
    out
}

/// A record of this outcome, or None when it is about no instance (bad input: no AWS call).
pub fn record(outcome: &Outcome, ms: i64) -> Option<Record> {
    Some(Record {
        at: at(ms).format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        instance_id: outcome.instance_id.clone()?,
        action: outcome.action.as_str().into(),
        result: outcome.result.as_str().into(),
        reason: outcome.reason.clone(),
        incident: outcome.incident.clone(),
        group: outcome.group.clone(),
        inputs: outcome.inputs.clone(),
        notification: outcome.notification.clone(),
    })
}

/// What a decision was made from, in one line: the alarm, and what was seen of the
/// instance, its group and the policy.
pub fn inputs(signal: &Signal, facts: Option<&Facts>, env_dry_run: bool) -> String {
    let mut out = format!(
        "alarm {:?} {} {} at {}",
        signal.alarm_name,
        signal.metric.name(),
        signal.state.as_str(),
        signal.changed_at.format("%Y-%m-%dT%H:%M:%S%.3fZ"),
    );
    let Some(facts) = facts else {
        return out;
    };
    match &facts.instance {
        None => out += "; instance unknown to EC2",
        Some(i) => {
            out += &format!(
                "; instance {} {} {} root {}",
                i.state,
                i.instance_type.as_deref().unwrap_or("?"),
                i.availability_zone.as_deref().unwrap_or("?"),
                i.root_device_type.as_deref().unwrap_or("?"),
            );
            out += &match &facts.group {
                Some(g) => format!("; group {} {} {}", g.name, g.lifecycle, g.health),
                None => "; no Auto Scaling group".into(),
            };
            let policy = policy_for(env_dry_run, &i.tags, facts.group.as_ref().map(|g| &g.tags));
            let mode = format!("{:?}", policy.mode).to_lowercase();
            out += &format!("; mode {mode} ({})", policy.source);
            out += &format!("; {}", facts.checks.said());
        }
    }
    out
}

pub fn sort_key(r: &Record) -> String {
    format!(
        "{}#{}#{}",
        r.at,
        r.instance_id,
        r.incident.as_deref().unwrap_or("-")
    )
}

/// `24h`, `7d`, `90m` ago, or an RFC 3339 time -> epoch ms. Any text is an answer or an
/// error naming `--since`, never a panic; a duration reaching before the epoch is the epoch
/// (the ledger reads no further back than it keeps decisions anyway).
pub fn parse_since(s: &str, now_ms: i64) -> Result<i64, String> {
    let s = s.trim();
    let unit_ms = |c: char| match c {
        'm' => Some(60_000),
        'h' => Some(3_600_000),
        'd' => Some(86_400_000),
        _ => None,
    };
    if let Some((at, last)) = s.char_indices().last() {
        let number = &s[..at];
        if let Some(ms) = unit_ms(last) {
            if !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()) {
                return Ok(match number.parse::<i64>() {
                    Ok(n) => now_ms.saturating_sub(n.saturating_mul(ms)).max(0),
                    Err(_) => 0,
                });
            }
        }
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp_millis())
        .map_err(|_| format!("--since {s:?}: use e.g. 90m, 24h, 7d or 2026-11-24T03:00:00Z"))
}

pub fn render_table(records: &[Record]) -> String {
    let mut out = String::new();
    for r in records {
        out += &format!(
            "{}  {}  {} {}  {}{}\n",
            r.at,
            r.instance_id,
            r.action,
            r.result,
            r.reason,
            r.incident
                .as_deref()
                .map(|i| format!("  [incident {i}]"))
                .unwrap_or_default()
        );
        if let Some(inputs) = &r.inputs {
            out += &format!("    inputs: {inputs}\n");
        }
    }
    out += &format!("{} decisions\n", records.len());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::outcome::{Action, Verdict};

    const T: i64 = 1_795_000_000_123; // 2026-11-18T...

    #[test]
    fn partitions_cover_every_day_in_range() {
        let day = 86_400_000;
        assert_eq!(partitions(T, T), vec![partition(T)]);
        let p = partitions(T - 2 * day, T);
        assert_eq!(p.len(), 3);
        assert_eq!(p[2], partition(T));
        assert!(partitions(T, T - day).is_empty());
    }

    #[test]
    fn records_only_outcomes_about_an_instance() {
        let mut o = Outcome::new(Some("i-1".into()), Action::None, Verdict::Held, "why");
        o.inputs = Some("alarm x".into());
        let r = record(&o, T).unwrap();
        assert_eq!((r.action.as_str(), r.result.as_str()), ("none", "held"));
        assert_eq!(r.inputs.as_deref(), Some("alarm x"));
        assert!(r.at.ends_with(".123Z"), "{}", r.at);
        assert!(sort_key(&r).starts_with(&r.at));
        assert_eq!(partition_of(&r), partition(T));
        assert!(record(&Outcome::new(None, Action::None, Verdict::Ignored, "x"), T).is_none());
    }

    #[test]
    fn since_accepts_durations_and_times() {
        assert_eq!(parse_since("24h", T), Ok(T - 86_400_000));
        assert_eq!(parse_since("90m", T), Ok(T - 5_400_000));
        assert_eq!(parse_since("7d", T), Ok(T - 7 * 86_400_000));
        assert_eq!(
            parse_since("2026-11-24T03:00:00Z", T),
            Ok(1_795_489_200_000)
        );
        // Far back is the epoch, not an overflow.
        for far in [
            "9223372036854775807d",
            "99999999999999999999999h",
            "100000000000m",
        ] {
            assert_eq!(parse_since(far, T), Ok(0), "{far}");
        }
        // Bad text of every kind is an error naming the flag, never a panic.
        let bad = [
            "",
            " ",
            "h",
            "-1h",
            "+1h",
            "1.5h",
            "1 h",
            "24H",
            "24hh",
            "yesterday",
            "24x",
            "5é",
            "é",
            "éh",
            "5\u{301}h",
            "２４h",
            "٣h",
            "24h\u{0}",
            "\u{202e}24h",
            "ｈ",
            "24ｈ",
            "2026-13-01T00:00:00Z",
            "2026-11-24T03:00:00",
            "🕐",
            "5🕐",
            "d",
            "0x10m",
        ];
        for bad in bad {
            let err = parse_since(bad, T).unwrap_err();
            assert!(err.starts_with("--since "), "{bad:?}: {err}");
        }
    }

    #[test]
    fn table_shows_reason_and_inputs() {
        let mut o = Outcome::new(
            Some("i-1".into()),
            Action::MarkUnhealthy,
            Verdict::DryRun,
            "would mark",
        );
        o.incident = Some("inc".into());
        o.inputs = Some("group web InService".into());
        let text = render_table(&[record(&o, T).unwrap()]);
        assert!(
            text.contains("i-1  mark_unhealthy dry_run  would mark  [incident inc]"),
            "{text}"
        );
        assert!(text.contains("    inputs: group web InService\n"), "{text}");
        assert!(text.ends_with("1 decisions\n"));
    }
}
