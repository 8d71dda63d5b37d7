//! The Slack message: Block Kit plus a plain-text fallback. Pure.

use crate::decide::Facts;
use crate::intake::Signal;
use crate::outcome::{Action, Outcome, Verdict};
use serde_json::{json, Value};

/// Everything a report says about one outcome.
pub struct Report<'a> {
    pub signal: &'a Signal,
    pub facts: Option<&'a Facts>,
    pub outcome: &'a Outcome,
    /// The alarm's region (from its ARN), else the function's.
    pub region: &'a str,
}

fn emoji(o: &Outcome) -> &'static str {
    match (o.action, o.result) {
        (Action::Verify, Verdict::Done) => ":large_green_circle:",
        (_, Verdict::Done) => ":white_check_mark:",
        (_, Verdict::InProgress) => ":hourglass_flowing_sand:",
        (_, Verdict::Duplicate) => ":repeat:",
        (_, Verdict::Ignored) => ":zzz:",
        (_, Verdict::Held) => ":raised_hand:",
        (_, Verdict::DryRun) => ":test_tube:",
        (_, Verdict::Failed) => ":rotating_light:",
    }
}

fn title(o: &Outcome, s: &Signal) -> String {
    match (o.action, o.result) {
        (Action::Verify, Verdict::Done) if s.state != crate::intake::AlarmState::Ok => {
            "recovered: replaced by a verified copy".into()
        }
        (Action::MarkUnhealthy, Verdict::Done) => {
            "marked Unhealthy; Auto Scaling will replace it".into()
        }
        (Action::Verify, Verdict::Done) => "recovered: status check alarm back to OK".into(),
        (_, Verdict::Failed) => format!("repair failed ({})", o.action.as_str()),
        (_, Verdict::DryRun) => format!("dry run, nothing changed ({})", o.action.as_str()),
        (_, Verdict::Held) if o.resumes => {
            "waiting: repair held back for now, proceeds by itself".into()
        }
        (_, Verdict::Held) => "needs a person: no automated action".into(),
        (_, Verdict::InProgress) => format!("repair in progress ({})", o.action.as_str()),
        (action, result) => format!("{} {}", action.as_str(), result.as_str()),
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub struct Links {
    pub instance: String,
    pub alarm: String,
    pub group_activity: Option<String>,
}

pub fn console_links(
    region: &str,
    instance_id: &str,
    alarm_name: &str,
    group: Option<&str>,
) -> Links {
    let base = format!("https://{region}.console.aws.amazon.com");
    Links {
        instance: format!(
            "{base}/ec2/home?region={region}#InstanceDetails:instanceId={instance_id}"
        ),
        alarm: format!(
            "{base}/cloudwatch/home?region={region}#alarmsV2:alarm/{}",
            encode(alarm_name)
        ),
        group_activity: group.map(|g| {
            format!(
                "{base}/ec2/home?region={region}#AutoScalingGroupDetails:id={};view=activity",
                encode(g)
            )
        }),
    }
}

/// The one-line fallback text (also what the log-only notifier prints).
pub fn fallback_text(r: &Report) -> String {
    let o = r.outcome;
    let s = r.signal;
    let name = r
        .facts
        .and_then(|f| f.instance.as_ref())
        .and_then(|i| i.name())
        .map(|n| format!(" ({n})"))
        .unwrap_or_default();
    format!(
        "{} autoheal: {}{} {} — {}. Alarm {} ({} {} at {}) in {}.",
        emoji(o),
        s.instance_id,
        name,
        title(o, s),
        o.reason,
        s.alarm_name,
        s.metric.name(),
        state_word(s),
        s.changed_at.format("%Y-%m-%d %H:%M:%S UTC"),
        r.region,
    )
}

fn state_word(s: &Signal) -> &'static str {
    match s.state {
        crate::intake::AlarmState::Alarm => "ALARM",
        crate::intake::AlarmState::Ok => "OK",
        crate::intake::AlarmState::InsufficientData => "INSUFFICIENT_DATA",
    }
}

pub fn slack_payload(r: &Report) -> Value {
    let o = r.outcome;
    let s = r.signal;
    let instance = r.facts.and_then(|f| f.instance.as_ref());
    let group = o.group.clone().or_else(|| {
        r.facts
            .and_then(|f| f.group.as_ref())
            .map(|g| g.name.clone())
    });
    let dash = || "—".to_string();
    let field = |label: &str, value: String| json!({"type": "mrkdwn", "text": format!("*{label}*\n{value}")});
    let fields = vec![
        field("Instance", format!("`{}`", s.instance_id)),
        field(
            "Name",
            instance
                .and_then(|i| i.name())
                .map_or_else(dash, str::to_string),
        ),
        field("Auto Scaling group", group.clone().unwrap_or_else(dash)),
        field(
            "Availability zone",
            instance
                .and_then(|i| i.availability_zone.clone())
                .unwrap_or_else(dash),
        ),
        field(
            "Instance type",
            instance
                .and_then(|i| i.instance_type.clone())
                .unwrap_or_else(dash),
        ),
        field(
            "Account / region",
            format!("{} / {}", s.account.clone().unwrap_or_else(dash), r.region),
        ),
        field(
            "Alarm",
            format!("{} ({} → {})", s.alarm_name, s.metric.name(), state_word(s)),
        ),
        field(
            "State changed",
            s.changed_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        ),
        field(
            "Action / result",
            format!("`{}` / `{}`", o.action.as_str(), o.result.as_str()),
        ),
        field("Incident", o.incident.clone().unwrap_or_else(dash)),
    ];
    let links = console_links(r.region, &s.instance_id, &s.alarm_name, group.as_deref());
    let mut link_text = format!("<{}|Instance> · <{}|Alarm>", links.instance, links.alarm);
    if let Some(g) = links.group_activity {
        link_text.push_str(&format!(" · <{g}|Group activity>"));
    }
    json!({
        "text": fallback_text(r),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "emoji": true,
                "text": format!("{} {} {}", emoji(o), s.instance_id, title(o, s))}},
            {"type": "section", "text": {"type": "mrkdwn", "text": format!("*Why:* {}", o.reason)}},
            {"type": "section", "fields": &fields[..8]},
            {"type": "section", "fields": &fields[8..]},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": format!("Alarm reason: {}", if s.reason.is_empty() { "—" } else { &s.reason })}]},
            {"type": "section", "text": {"type": "mrkdwn", "text": link_text}},
        ]
    })
}

/// A message about many instances at once (a summary), text only.
pub fn summary_payload(text: &str) -> Value {
    json!({
        "text": text,
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::{GroupFacts, InstanceFacts};
    use crate::intake::{parse, Intake};

    fn alarm() -> Signal {
        let bytes = std::fs::read(format!(
            "{}/events/sns-alarm.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        match parse(&bytes).remove(0) {
            Intake::Signal(s) => s,
            other => panic!("{other:?}"),
        }
    }

    fn facts() -> Facts {
        Facts {
            instance: Some(InstanceFacts {
                instance_id: "i-0123456789abcdef0".into(),
                state: "running".into(),
                instance_type: Some("m5.large".into()),
                availability_zone: Some("us-east-1a".into()),
                root_device_type: Some("ebs".into()),
                tags: [("Name".to_string(), "web-3".to_string())].into(),
                launch_ms: None,
                auto_recovery: None,
                virtualization: None,
                kernel_id: None,
            }),
            group: Some(GroupFacts {
                name: "web asg".into(),
                health: "HEALTHY".into(),
                lifecycle: "InService".into(),
                tags: Default::default(),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn the_message_says_what_happened_and_where() {
        let s = alarm();
        let f = facts();
        let mut o = Outcome::new(
            Some(s.instance_id.clone()),
            Action::MarkUnhealthy,
            Verdict::Done,
            "marked Unhealthy",
        );
        o.incident = Some("i-0123456789abcdef0-20261123T031245Z".into());
        let msg = slack_payload(&Report {
            signal: &s,
            facts: Some(&f),
            outcome: &o,
            region: "us-east-1",
        });
        let text = msg["text"].as_str().unwrap();
        assert!(
            text.contains("i-0123456789abcdef0 (web-3) marked Unhealthy"),
            "{text}"
        );
        assert!(text.contains("2026-11-23 03:12:45 UTC"), "{text}");
        let all = msg.to_string();
        for needle in [
            "web asg",
            "us-east-1a",
            "m5.large",
            "123456789012 / us-east-1",
            "autoheal-StatusCheckFailed-i-0123456789abcdef0 (StatusCheckFailed → ALARM)",
            "`mark_unhealthy` / `done`",
            "i-0123456789abcdef0-20261123T031245Z",
            "Threshold Crossed",
            "#InstanceDetails:instanceId=i-0123456789abcdef0",
            "#alarmsV2:alarm/autoheal-StatusCheckFailed-i-0123456789abcdef0",
            "#AutoScalingGroupDetails:id=web%20asg;view=activity",
        ] {
            assert!(all.contains(needle), "missing {needle:?} in {all}");
        }
        // Slack allows at most 10 fields per section.
        for block in msg["blocks"].as_array().unwrap() {
            assert!(
                block
                    .get("fields")
                    .map_or(0, |f| f.as_array().unwrap().len())
                    <= 10
            );
        }
    }

    #[test]
    fn titles_follow_the_outcome() {
        let s = alarm();
        let cases = [
            (
                Action::Verify,
                Verdict::Done,
                ":large_green_circle:",
                "recovered: replaced by a verified copy",
            ),
            (
                Action::CreateImage,
                Verdict::InProgress,
                ":hourglass_flowing_sand:",
                "repair in progress (create_image)",
            ),
            (
                Action::None,
                Verdict::Held,
                ":raised_hand:",
                "needs a person",
            ),
            (
                Action::MarkUnhealthy,
                Verdict::Failed,
                ":rotating_light:",
                "repair failed (mark_unhealthy)",
            ),
            (
                Action::MarkUnhealthy,
                Verdict::DryRun,
                ":test_tube:",
                "dry run",
            ),
            (Action::None, Verdict::Ignored, ":zzz:", "none ignored"),
        ];
        for (action, result, emoji, words) in cases {
            let o = Outcome::new(None, action, result, "r");
            let text = fallback_text(&Report {
                signal: &s,
                facts: None,
                outcome: &o,
                region: "eu-west-1",
            });
            assert!(
                text.starts_with(emoji) && text.contains(words) && text.contains("in eu-west-1"),
                "{text}"
            );
        }
        for reason in [
            "grace period: waiting until 03:14:45Z",
            "quorum guard: one member of a cluster at a time: ...",
            "in-flight budget: 10% of 40 = 4 at a time: ...",
        ] {
            let mut o = Outcome::new(None, Action::None, Verdict::Held, reason);
            o.resumes = true;
            let text = fallback_text(&Report {
                signal: &s,
                facts: None,
                outcome: &o,
                region: "eu-west-1",
            });
            assert!(text.contains("waiting: repair held back for now"), "{text}");
        }
        let mut ok = alarm();
        ok.state = crate::intake::AlarmState::Ok;
        let o = Outcome::new(None, Action::Verify, Verdict::Done, "r");
        let text = fallback_text(&Report {
            signal: &ok,
            facts: None,
            outcome: &o,
            region: "eu-west-1",
        });
        assert!(
            text.contains("recovered: status check alarm back to OK"),
            "{text}"
        );
    }
}
