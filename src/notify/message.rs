//! The Slack message: Block Kit plus a plain-text fallback. Pure.
//!
//! Data cannot steer a message: every value that comes from tags, alarms or AWS answers is
//! escaped for Slack's mrkdwn (`&`, `<`, `>`), so `<!channel>` in a Name tag shows as
//! text and pings nobody; only the link markup autoheal builds itself stays markup, and
//! the URLs in it percent-encode their parts. Every text is then cut to Block Kit's limit
//! (never inside an entity), so no value can make Slack refuse the whole message.

use crate::intake::Signal;
use crate::model::facts::Facts;
use crate::model::handover::Handover;
use crate::model::outcome::{Action, Outcome, Recovered, Verdict};
use serde_json::{json, Value};

/// Block Kit's limits, in characters (Unicode scalar values, as slack_sdk counts them with
/// Python's `len`): `HeaderBlock.text_max_length`, `SectionBlock.text_max_length`, and the
/// documented per-field and per-context-element limits.
pub const HEADER_TEXT_MAX: usize = 150;
pub const SECTION_TEXT_MAX: usize = 3000;
pub const FIELD_TEXT_MAX: usize = 2000;
pub const CONTEXT_TEXT_MAX: usize = 2000;
/// The top-level `text` (the notification and the fallback), kept as short as a section.
pub const FALLBACK_TEXT_MAX: usize = 3000;
/// A console URL longer than this (a very long alarm or group name, percent-encoded) is
/// replaced by the list page it belongs to, so the three links always fit one section.
pub const LINK_URL_MAX: usize = 900;

/// Escapes a value for Slack mrkdwn: `&` -> `&amp;`, `<` -> `&lt;`, `>` -> `&gt;`. Nothing
/// else (`*`, `_`, `` ` `` still format, but cannot mention, link or ping).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

const ENTITIES: [&str; 3] = ["&amp;", "&lt;", "&gt;"];

/// Cuts `s` to at most `max` characters, ending in `…` when anything was cut. The cut is
/// on a character boundary and never inside one of the entities `escape` writes: it backs
/// off to before the `&`.
pub fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let keep = max.saturating_sub(1);
    let mut end = s.char_indices().nth(keep).map_or(s.len(), |(i, _)| i);
    // An entity starting in the last 4 bytes kept and running past `end` would be split.
    let from = end.saturating_sub(4);
    if let Some(amp) = s[..end].rfind('&').filter(|&i| i >= from) {
        if ENTITIES
            .iter()
            .any(|e| s[amp..].starts_with(e) && amp + e.len() > end)
        {
            end = amp;
        }
    }
    let mut out = s[..end].to_string();
    out.push('…');
    out
}

/// Escapes, then cuts: the form every data-bearing text takes.
fn fit(s: &str, max: usize) -> String {
    cut(&escape(s), max)
}

/// The region as it may appear in a URL: AWS region names only (`[a-z0-9-]`, at most 32
/// characters). The region comes from the alarm's ARN, which is data.
pub fn safe_region(region: &str) -> Option<&str> {
    let ok = !region.is_empty()
        && region.len() <= 32
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    ok.then_some(region)
}

/// Everything a report says about one outcome.
pub struct Report<'a> {
    pub signal: &'a Signal,
    pub facts: Option<&'a Facts>,
    pub outcome: &'a Outcome,
    /// The alarm's region (from its ARN), else the function's.
    pub region: &'a str,
    /// `AUTOHEAL_RUNBOOK_URL`: where the deployer keeps docs/RUNBOOK.md.
    pub runbook: Option<&'a str>,
}

/// The runbook in the repository, named when the deployer gave no URL for it.
pub const RUNBOOK_PATH: &str = "docs/RUNBOOK.md";

/// The pointer to `kind`'s runbook section: a link `<url#anchor|Runbook: title>` to the
/// deployer's copy (`runbook`: its URL, checked at start-up to hold no markup character;
/// an `&` is written as the entity Slack decodes), else the section's path.
pub fn runbook_link(kind: Handover, runbook: Option<&str>) -> String {
    match runbook {
        Some(url) => format!(
            "<{}#{}|Runbook: {}>",
            url.replace('&', "&amp;"),
            kind.anchor(),
            kind.title()
        ),
        None => format!(
            "Runbook: `{RUNBOOK_PATH}#{}` ({})",
            kind.anchor(),
            kind.title()
        ),
    }
}

/// `AUTOHEAL_RUNBOOK_URL` if it may stand for the runbook in our link markup, else why not
/// (checked at start-up): `https://` with a host, at most 1,000 of the characters a URL
/// holds unencoded but `#` (the section's anchor is appended), so none of `<`, `>`, `|`, a
/// quote or a space.
pub fn runbook_url(url: String) -> Result<String, String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-._~:/?[]@!$&()*+,;=%".contains(c);
    let host = url
        .strip_prefix("https://")
        .map(|rest| rest.split(['/', '?']).next().unwrap_or_default());
    match host.is_some_and(|h| !h.is_empty()) && url.len() <= 1000 && url.chars().all(allowed) {
        true => Ok(url),
        false => Err(format!("expected an https:// URL of docs/RUNBOOK.md without '#', spaces or quotes (e.g. https://git.example.com/ops/autoheal/blob/main/docs/RUNBOOK.md), got {url:?}")),
    }
}

/// `text`, cut so that `tail` still fits after it within `max`, then `tail`: the runbook's
/// pointer is never what a cut takes.
fn ending_with(text: &str, tail: Option<String>, max: usize) -> String {
    match tail {
        None => cut(text, max),
        Some(tail) => {
            let room = max.saturating_sub(tail.chars().count() + 1);
            format!("{} {tail}", cut(text, room))
        }
    }
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

fn title(o: &Outcome) -> String {
    match (o.action, o.result) {
        (Action::Verify, Verdict::Done) => match o.recovered {
            // After a rung (the reason says which).
            Some(Recovered::ChecksOk) => "recovered: EC2 reports the status checks ok",
            Some(Recovered::Copy) => "recovered: replaced by a verified copy",
            Some(Recovered::Replacement) => {
                "recovered: replaced by Auto Scaling, the group whole again"
            }
            None => "recovered: status check alarm back to OK",
        }
        .into(),
        (Action::MarkUnhealthy, Verdict::Done) => {
            "marked Unhealthy; Auto Scaling will replace it".into()
        }
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

/// Console links for the report. Every data part is percent-encoded; a region that is not
/// an AWS region name is left out (the console's own default region is used); a URL
/// longer than `LINK_URL_MAX` becomes its list page.
pub fn console_links(
    region: &str,
    instance_id: &str,
    alarm_name: &str,
    group: Option<&str>,
) -> Links {
    let (base, query) = match safe_region(region) {
        Some(r) => (
            format!("https://{r}.console.aws.amazon.com"),
            format!("?region={r}"),
        ),
        None => ("https://console.aws.amazon.com".to_string(), String::new()),
    };
    let or_list = |url: String, list: &str| {
        if url.len() > LINK_URL_MAX {
            format!("{base}{list}")
        } else {
            url
        }
    };
    Links {
        instance: or_list(
            format!(
                "{base}/ec2/home{query}#InstanceDetails:instanceId={}",
                encode(instance_id)
            ),
            &format!("/ec2/home{query}#Instances:"),
        ),
        alarm: or_list(
            format!(
                "{base}/cloudwatch/home{query}#alarmsV2:alarm/{}",
                encode(alarm_name)
            ),
            &format!("/cloudwatch/home{query}#alarmsV2:"),
        ),
        group_activity: group.map(|g| {
            or_list(
                format!(
                    "{base}/ec2/home{query}#AutoScalingGroupDetails:id={};view=activity",
                    encode(g)
                ),
                &format!("/ec2/home{query}#AutoScalingGroups:"),
            )
        }),
    }
}

/// The one-line fallback text (also what the log-only notifier prints). Slack parses it
/// as mrkdwn: every value is escaped, the long ones cut so the alarm and time still show.
pub fn fallback_text(r: &Report) -> String {
    let link = r.outcome.handover.map(|k| runbook_link(k, r.runbook));
    ending_with(&fallback_words(r), link, FALLBACK_TEXT_MAX)
}

fn fallback_words(r: &Report) -> String {
    let o = r.outcome;
    let s = r.signal;
    let name = r
        .facts
        .and_then(|f| f.instance.as_ref())
        .and_then(|i| i.name())
        .map(|n| format!(" ({})", fit(n, 300)))
        .unwrap_or_default();
    let at = s.changed_at.format("%Y-%m-%d %H:%M:%S UTC");
    let cause = match s.by_notice {
        true => format!("Cause: {} (repair began {at})", fit(&s.alarm_name, 600)),
        false => format!(
            "Alarm {} ({} {} at {at})",
            fit(&s.alarm_name, 600),
            s.metric.name(),
            state_word(s)
        ),
    };
    let text = format!(
        "{} autoheal: {}{} {} — {}. {cause} in {}.",
        emoji(o),
        fit(&s.instance_id, 100),
        name,
        title(o),
        fit(&o.reason, 1500),
        fit(r.region, 100),
    );
    cut(&text, FALLBACK_TEXT_MAX)
}

fn state_word(s: &Signal) -> &'static str {
    match s.state {
        crate::intake::AlarmState::Alarm => "ALARM",
        crate::intake::AlarmState::Ok => "OK",
        crate::intake::AlarmState::InsufficientData => "INSUFFICIENT_DATA",
    }
}

/// What opened the incident, as two fields (label, value; the time's label): the alarm and
/// its transition, or a scheduled notice (no alarm).
fn cause_fields(s: &Signal) -> (&'static str, String, &'static str) {
    match s.by_notice {
        true => ("Cause", escape(&s.alarm_name), "Repair began"),
        false => (
            "Alarm",
            format!(
                "{} ({} → {})",
                escape(&s.alarm_name),
                s.metric.name(),
                state_word(s)
            ),
            "State changed",
        ),
    }
}

/// Our own markup: the URLs percent-encode every data part (no `|`, `>` or space survives)
/// and are at most LINK_URL_MAX long, so this section is never cut. A notice's repair has no
/// alarm: its instance's page lists EC2's scheduled events.
fn link_section(region: &str, s: &Signal, group: Option<&str>) -> String {
    let links = console_links(region, &s.instance_id, &s.alarm_name, group);
    let mut text = match s.by_notice {
        true => format!("<{}|Instance and its scheduled events>", links.instance),
        false => format!("<{}|Instance> · <{}|Alarm>", links.instance, links.alarm),
    };
    if let Some(g) = links.group_activity {
        text.push_str(&format!(" · <{g}|Group activity>"));
    }
    text
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
    // `value` is already escaped; the label is ours.
    let field = |label: &str, value: String| json!({"type": "mrkdwn", "text": cut(&format!("*{label}*\n{value}"), FIELD_TEXT_MAX)});
    let or_dash = |v: Option<&str>| v.map_or_else(dash, escape);
    let cause = cause_fields(s);
    let fields = vec![
        field("Instance", format!("`{}`", escape(&s.instance_id))),
        field("Name", or_dash(instance.and_then(|i| i.name()))),
        field("Auto Scaling group", or_dash(group.as_deref())),
        field(
            "Availability zone",
            or_dash(instance.and_then(|i| i.availability_zone.as_deref())),
        ),
        field(
            "Instance type",
            or_dash(instance.and_then(|i| i.instance_type.as_deref())),
        ),
        field(
            "Account / region",
            format!("{} / {}", or_dash(s.account.as_deref()), escape(r.region)),
        ),
        field(cause.0, cause.1),
        field(
            cause.2,
            s.changed_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        ),
        field(
            "Action / result",
            format!("`{}` / `{}`", o.action.as_str(), o.result.as_str()),
        ),
        field("Incident", or_dash(o.incident.as_deref())),
        field("Status", going(o).to_string()),
    ];
    let link_text = link_section(r.region, s, group.as_deref());
    let alarm_reason = if s.reason.is_empty() {
        "—".to_string()
    } else {
        escape(&s.reason)
    };
    json!({
        "text": fallback_text(r),
        "blocks": [
            // plain_text is not parsed as mrkdwn; escaped all the same (docs/slack.md).
            {"type": "header", "text": {"type": "plain_text", "emoji": true,
                "text": cut(&format!("{} {} {}", emoji(o), escape(&s.instance_id), title(o)), HEADER_TEXT_MAX)}},
            {"type": "section", "text": {"type": "mrkdwn",
                "text": cut(&format!("*Why:* {}", escape(&o.reason)), SECTION_TEXT_MAX)}},
            {"type": "section", "fields": &fields[..8]},
            {"type": "section", "fields": &fields[8..]},
            {"type": "context", "elements": [{"type": "mrkdwn",
                "text": cut(&format!("Alarm reason: {alarm_reason}"), CONTEXT_TEXT_MAX)}]},
            {"type": "section", "text": {"type": "mrkdwn", "text": link_text}},
            {"type": "context", "elements": [{"type": "mrkdwn",
                "text": next_steps(o, &s.instance_id, r.runbook)}]},
        ]
    })
}

/// Whether the repair is still going (autoheal looks again by itself) or ended.
fn going(o: &Outcome) -> &'static str {
    match o.result {
        Verdict::InProgress => "still going: autoheal looks again every minute",
        Verdict::Held if o.resumes => "still going: held, proceeds by itself",
        Verdict::Held => "ended: needs a person (runbook below)",
        Verdict::Failed => "ended: failed, a person takes over (runbook below)",
        Verdict::DryRun => "ended: dry run, nothing done; a person decides (runbook below)",
        _ => "ended",
    }
}

/// Where to look next: the audit trail, and — the last words, when people have work — the
/// runbook section of why they have it.
fn next_steps(o: &Outcome, instance_id: &str, runbook: Option<&str>) -> String {
    let history = format!(
        "Audit trail: `autoheal-admin history --instance {} --since 24h` (AUTOHEAL_TABLE: the stack's LedgerTable, in its region)",
        escape(instance_id)
    );
    let link = o
        .handover
        .map(|k| format!("· {}", runbook_link(k, runbook)));
    ending_with(&history, link, CONTEXT_TEXT_MAX)
}

/// A message about many instances at once (a summary), text only. The text is built by
/// autoheal from data (group names, instance ids, AWS errors), so all of it is escaped:
/// `*bold*` and `` `code` `` still format, no `<...>` markup survives.
pub fn summary_payload(text: &str) -> Value {
    let text = escape(text);
    json!({
        "text": cut(&text, FALLBACK_TEXT_MAX),
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": cut(&text, SECTION_TEXT_MAX)}}]
    })
}

/// A summary that hands many instances to people for `kind`: it ends with the runbook
/// section's pointer (`runbook`: as `runbook_link` takes it).
pub fn summary_for_people(text: &str, kind: Handover, runbook: Option<&str>) -> Value {
    let link = runbook_link(kind, runbook);
    let text = escape(text);
    json!({
        "text": ending_with(&text, Some(link.clone()), FALLBACK_TEXT_MAX),
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": cut(&text, SECTION_TEXT_MAX)}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": link}]},
        ]
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intake::{parse, Intake};
    use crate::model::facts::{GroupFacts, InstanceFacts};

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
                ..Default::default()
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
    fn a_notices_repair_names_the_notice_as_its_cause_and_links_no_alarm() {
        let s = Signal {
            alarm_name: "EC2 scheduled event instance-stop at 2026-12-07 03:00 UTC".into(),
            by_notice: true,
            reason: String::new(),
            ..alarm()
        };
        let o = Outcome::new(
            Some(s.instance_id.clone()),
            Action::CreateImage,
            Verdict::InProgress,
            "step imaging: imaging without reboot as ami-1",
        );
        let msg = slack_payload(&Report {
            signal: &s,
            facts: Some(&facts()),
            outcome: &o,
            region: "us-east-1",
            runbook: None,
        });
        let text = msg["text"].as_str().unwrap();
        assert!(
            text.contains(". Cause: EC2 scheduled event instance-stop at 2026-12-07 03:00 UTC (repair began 2026-11-23 03:12:45 UTC) in us-east-1."),
            "{text}"
        );
        let all = msg.to_string();
        assert!(
            all.contains("*Cause*\\nEC2 scheduled event instance-stop at 2026-12-07 03:00 UTC"),
            "{all}"
        );
        assert!(all.contains("|Instance and its scheduled events>"), "{all}");
        for absent in ["alarmsV2", "StatusCheckFailed", "ALARM", "*Alarm*"] {
            assert!(!all.contains(absent), "{absent:?} in {all}");
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
            runbook: None,
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
            "*Status*\\nended",
            "autoheal-admin history --instance i-0123456789abcdef0 --since 24h",
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
                "recovered: status check alarm back to OK",
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
                runbook: None,
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
                runbook: None,
            });
            assert!(text.contains("waiting: repair held back for now"), "{text}");
        }
        for (how, words) in [
            (
                Recovered::ChecksOk,
                "recovered: EC2 reports the status checks ok",
            ),
            (Recovered::Copy, "recovered: replaced by a verified copy"),
            (
                Recovered::Replacement,
                "recovered: replaced by Auto Scaling",
            ),
        ] {
            let o = Outcome::recovered("i-1".into(), how, "recovered after reboot");
            let text = fallback_text(&Report {
                signal: &s,
                facts: None,
                outcome: &o,
                region: "eu-west-1",
                runbook: None,
            });
            assert!(text.contains(words), "{how:?}: {text}");
        }
        let mut ok = alarm();
        ok.state = crate::intake::AlarmState::Ok;
        let o = Outcome::new(None, Action::Verify, Verdict::Done, "r");
        let text = fallback_text(&Report {
            signal: &ok,
            facts: None,
            outcome: &o,
            region: "eu-west-1",
            runbook: None,
        });
        assert!(
            text.contains("recovered: status check alarm back to OK"),
            "{text}"
        );
    }

    #[test]
    fn escaping_and_cutting() {
        assert_eq!(
            escape("<!channel> db & <https://evil.example|click>"),
            "&lt;!channel&gt; db &amp; &lt;https://evil.example|click&gt;"
        );
        assert_eq!(escape("*bold* `code` _it_"), "*bold* `code` _it_");
        // (text, max, cut)
        let table = [
            ("short", 10, "short"),
            ("exactly10!", 10, "exactly10!"),
            ("eleven chars", 10, "eleven ch…"),
            ("ünïcödé ünïcödé", 8, "ünïcödé…"),
            // The cut would fall inside `&amp;`: back off to before the `&`.
            ("abc&amp;def", 6, "abc…"),
            ("abc&amp;def", 8, "abc…"),
            ("abc&amp;def", 9, "abc&amp;…"),
            ("abcd&lt;", 7, "abcd…"),
            ("ab&gt;&gt;", 8, "ab&gt;…"),
            // A bare `&` (not an entity of ours) is cut like any character.
            ("a&b c d e f", 4, "a&b…"),
            ("", 0, ""),
            ("x", 0, "…"),
        ];
        for (text, max, expected) in table {
            let got = cut(text, max);
            assert_eq!(got, expected, "{text:?} {max}");
            assert!(got.chars().count() <= max.max(1), "{text:?} {max}");
        }
        for region in ["us-east-1", "eu-west-3", "us-gov-west-1", "cn-north-1"] {
            assert_eq!(safe_region(region), Some(region));
        }
        for region in [
            "",
            "US-EAST-1",
            "us-east-1.evil.example",
            "us-east-1/#x",
            "a|b",
            "<!here>",
        ] {
            assert_eq!(safe_region(region), None, "{region}");
        }
    }

    /// A report whose every data value is hostile.
    fn hostile() -> (Signal, Facts, Outcome) {
        let mut s = alarm();
        s.alarm_name = "<https://evil.example|click> & <!here>".into();
        s.reason = format!("<!channel> {}", "reason & more ".repeat(360));
        assert!(s.reason.chars().count() > 5_000);
        s.account = Some("<@U0123> & co".into());
        s.region = Some("us-east-1.evil.example/#<x>".into());
        let mut f = facts();
        let i = f.instance.as_mut().unwrap();
        i.tags.insert("Name".into(), "<!channel> db".into());
        i.availability_zone = Some("a & b".into());
        i.instance_type = Some("<!subteam^S012|ops>".into());
        let group = format!("<https://evil.example|click>{}", "g&".repeat(86));
        assert_eq!(group.chars().count(), 200);
        f.group.as_mut().unwrap().name = group.clone();
        let mut o = Outcome::new(
            Some(s.instance_id.clone()),
            Action::MarkUnhealthy,
            Verdict::Done,
            format!("marked Unhealthy in group {group}; Name tag <!channel> db"),
        );
        o.incident = Some("<!everyone>".into());
        (s, f, o)
    }

    /// Every text object in the payload: (where, type, text).
    fn texts(payload: &Value) -> Vec<(String, String, String)> {
        let mut out = vec![(
            "text".to_string(),
            "mrkdwn".to_string(),
            payload["text"].as_str().unwrap().to_string(),
        )];
        for (b, block) in payload["blocks"].as_array().unwrap().iter().enumerate() {
            let kind = block["type"].as_str().unwrap();
            let mut objs = vec![];
            if let Some(t) = block.get("text") {
                objs.push(("text".to_string(), t));
            }
            for (k, list) in [("fields", "fields"), ("elements", "elements")] {
                for (n, t) in block
                    .get(list)
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .enumerate()
                {
                    objs.push((format!("{k}[{n}]"), t));
                }
            }
            for (k, t) in objs {
                out.push((
                    format!("blocks[{b}] {kind} {k}"),
                    t["type"].as_str().unwrap().to_string(),
                    t["text"].as_str().unwrap().to_string(),
                ));
            }
        }
        out
    }

    fn limit(place: &str) -> usize {
        if place == "text" {
            FALLBACK_TEXT_MAX
        } else if place.contains(" header ") {
            HEADER_TEXT_MAX
        } else if place.contains("fields[") {
            FIELD_TEXT_MAX
        } else if place.contains(" context ") {
            CONTEXT_TEXT_MAX
        } else {
            SECTION_TEXT_MAX
        }
    }

    /// The deployer's runbook, as the payloads under test link it: with an `&` to escape.
    const RUNBOOK_URL: &str =
        "https://git.example.com/ops/autoheal/-/blob/main/docs/RUNBOOK.md?ref=main&plain=1";

    /// Every `<` opens one of our links: a console link,
    /// `<https://[region.]console.aws.amazon.com/...|Label>`, or a runbook section's,
    /// `<RUNBOOK_URL#anchor|Runbook: title>` (its `&` as the entity).
    fn only_our_links(text: &str) -> Result<(), String> {
        for (i, _) in text.match_indices('<') {
            let rest = &text[i + 1..];
            let link = rest.split('>').next().unwrap_or_default();
            let (url, label) = link
                .split_once('|')
                .ok_or(format!("bare < at {i}: {rest:.40}"))?;
            let runbook = Handover::ALL.iter().any(|k| {
                let ours = format!("{}#{}", RUNBOOK_URL.replace('&', "&amp;"), k.anchor());
                url == ours && label == format!("Runbook: {}", k.title())
            });
            if runbook {
                continue;
            }
            let host = url
                .strip_prefix("https://")
                .and_then(|u| u.split('/').next())
                .ok_or(format!("not https at {i}: {url:.40}"))?;
            let ours = host == "console.aws.amazon.com"
                || host
                    .strip_suffix(".console.aws.amazon.com")
                    .is_some_and(|r| safe_region(r).is_some());
            if !ours || !["Instance", "Alarm", "Group activity"].contains(&label) {
                return Err(format!("not our link at {i}: {link:.60}"));
            }
        }
        Ok(())
    }

    fn hostile_payloads() -> Vec<Value> {
        let (s, f, o) = hostile();
        let failed = Outcome {
            result: Verdict::Failed,
            ..o.clone()
        }
        .for_people(Handover::AwsRefused);
        let mut long_id = s.clone();
        long_id.instance_id = format!("i-{}", "<&>".repeat(1_000));
        let report = |signal, facts, outcome, region, runbook| {
            slack_payload(&Report {
                signal,
                facts,
                outcome,
                region,
                runbook,
            })
        };
        let hostile_text = format!(
            ":warning: autoheal *backups*: <!channel> {}",
            "<https://evil.example|x> & ".repeat(300)
        );
        vec![
            report(&s, Some(&f), &o, s.region.as_deref().unwrap(), None),
            report(&s, Some(&f), &o, "us-east-1", None),
            report(&s, None, &o, "eu-west-1", None),
            summary_payload(&hostile_text),
            summary_payload(&"&".repeat(4_000)),
            report(&s, Some(&f), &failed, "us-east-1", Some(RUNBOOK_URL)),
            report(&long_id, Some(&f), &failed, "us-east-1", Some(RUNBOOK_URL)),
            report(&long_id, None, &failed, "us-east-1", None),
            summary_for_people(&hostile_text, Handover::Breaker, Some(RUNBOOK_URL)),
            summary_for_people(&hostile_text, Handover::Breaker, None),
        ]
    }

    #[test]
    fn a_report_for_people_ends_with_its_runbook_section() {
        let (mut s, f, o) = hostile();
        for long in [false, true] {
            if long {
                s.instance_id = format!("i-{}", "&".repeat(3_000));
            }
            for &kind in Handover::ALL {
                let o = o.clone().for_people(kind);
                let (anchor, title) = (kind.anchor(), kind.title());
                let cases = [
                    (
                        Some(RUNBOOK_URL),
                        format!("<https://git.example.com/ops/autoheal/-/blob/main/docs/RUNBOOK.md?ref=main&amp;plain=1#{anchor}|Runbook: {title}>"),
                    ),
                    (None, format!("Runbook: `docs/RUNBOOK.md#{anchor}` ({title})")),
                ];
                for (runbook, link) in cases {
                    let r = Report {
                        signal: &s,
                        facts: Some(&f),
                        outcome: &o,
                        region: "us-east-1",
                        runbook,
                    };
                    let payload = slack_payload(&r);
                    let (place, _, last) = texts(&payload).pop().unwrap();
                    assert!(
                        last.ends_with(&format!("· {link}")),
                        "{kind:?} {long}: {last}"
                    );
                    assert!(last.chars().count() <= limit(&place), "{kind:?} {long}");
                    let text = fallback_text(&r);
                    assert!(
                        text.ends_with(&format!(" {link}")),
                        "{kind:?} {long}: {text}"
                    );
                    assert!(text.chars().count() <= FALLBACK_TEXT_MAX, "{kind:?} {long}");
                }
            }
        }
        // Not for people: no runbook.
        let r = Report {
            signal: &s,
            facts: Some(&f),
            outcome: &o,
            region: "us-east-1",
            runbook: Some(RUNBOOK_URL),
        };
        assert!(!slack_payload(&r).to_string().contains("Runbook"));
        let summary = summary_for_people("*breaker open*", Handover::Breaker, Some(RUNBOOK_URL));
        let (_, _, last) = texts(&summary).pop().unwrap();
        assert!(
            last.ends_with("#breaker-open|Runbook: Breaker open>"),
            "{last}"
        );
    }

    #[test]
    fn hostile_values_come_out_escaped_and_within_limits() {
        let payloads = hostile_payloads();
        for payload in &payloads {
            for (place, kind, text) in texts(payload) {
                let n = text.chars().count();
                assert!(n <= limit(&place), "{place}: {n} chars");
                if kind == "mrkdwn" {
                    only_our_links(&text).unwrap_or_else(|e| panic!("{place}: {e}\n{text}"));
                }
                // Escaped everywhere, plain_text too; a cut never leaves half an entity.
                for bad in ["<!", "<@", "<http"] {
                    assert!(
                        !text.contains(bad) || (bad == "<http" && kind == "mrkdwn"),
                        "{place}: {bad} in {text}"
                    );
                }
                for (i, _) in text.match_indices('&') {
                    assert!(
                        ENTITIES.iter().any(|e| text[i..].starts_with(e)),
                        "{place}: a bare or split entity at {i}"
                    );
                }
            }
            for block in payload["blocks"].as_array().unwrap() {
                assert!(
                    block
                        .get("fields")
                        .map_or(0, |f| f.as_array().unwrap().len())
                        <= 10
                );
            }
        }
        let all = payloads[0].to_string();
        for needle in [
            "&lt;!channel&gt; db",
            "&lt;https://evil.example|click&gt; &amp; &lt;!here&gt;",
            "*Availability zone*\\na &amp; b",
            "&lt;@U0123&gt; &amp; co / us-east-1.evil.example/#&lt;x&gt;",
            "*Incident*\\n&lt;!everyone&gt;",
            "<https://console.aws.amazon.com/ec2/home#InstanceDetails:instanceId=i-0123456789abcdef0|Instance>",
            "#alarmsV2:alarm/%3Chttps%3A%2F%2Fevil.example%7Cclick%3E%20%26%20%3C%21here%3E|Alarm>",
            "#AutoScalingGroupDetails:id=%3Chttps%3A%2F%2Fevil.example%7Cclick%3Eg%26g%26",
        ] {
            assert!(all.contains(needle), "missing {needle:?} in {all}");
        }
        // The unsafe region is shown (escaped) but never in a URL.
        assert!(!all.contains("https://us-east-1.evil"), "{all}");
        // Cut, with the mark.
        let reason = texts(&payloads[0])
            .into_iter()
            .find(|(p, _, _)| p.contains(" context "))
            .unwrap()
            .2;
        assert!(
            reason.starts_with("Alarm reason: &lt;!channel&gt; reason &amp; more")
                && reason.ends_with('…')
        );
        // The fallback keeps the alarm and the time even with a 5,000-char reason.
        let text = payloads[1]["text"].as_str().unwrap();
        assert!(
            text.contains("Alarm &lt;https://evil.example|click&gt;")
                && text.contains("2026-11-23 03:12:45 UTC) in us-east-1."),
            "{text}"
        );
        // Our own markup in a summary still formats.
        assert!(payloads[3]["text"]
            .as_str()
            .unwrap()
            .starts_with(":warning: autoheal *backups*: &lt;!channel&gt; "));
    }

    #[test]
    fn long_alarm_and_group_names_link_their_list_pages() {
        let links = console_links(
            "us-east-1",
            "i-0123456789abcdef0",
            &"ä".repeat(255),
            Some(&"ö".repeat(255)),
        );
        assert_eq!(
            links.alarm,
            "https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1#alarmsV2:"
        );
        assert_eq!(links.group_activity.as_deref(), Some("https://us-east-1.console.aws.amazon.com/ec2/home?region=us-east-1#AutoScalingGroups:"));
        assert!(links
            .instance
            .ends_with("#InstanceDetails:instanceId=i-0123456789abcdef0"));
        let (mut s, f, o) = hostile();
        s.alarm_name = "<".repeat(300);
        let payload = slack_payload(&Report {
            signal: &s,
            facts: Some(&f),
            outcome: &o,
            region: "us-east-1",
            runbook: None,
        });
        let link = texts(&payload).pop().unwrap().2;
        assert!(
            link.chars().count() <= SECTION_TEXT_MAX && only_our_links(&link).is_ok(),
            "{link}"
        );
    }

    /// The same payloads through Slack's own SDK models (tools/slack_check.py).
    #[test]
    fn slack_sdk_accepts_the_hostile_payloads() {
        let root = env!("CARGO_MANIFEST_DIR");
        let python = format!("{root}/.venv/bin/python");
        assert!(
            std::path::Path::new(&python).exists(),
            "{python} is missing: run `make .venv/.installed` (slack_sdk checks these payloads)"
        );
        let mut lines = String::new();
        let mut payloads = hostile_payloads();
        let (s, f, mut o) = hostile();
        o.reason = "r".into();
        payloads.push(slack_payload(&Report {
            signal: &alarm(),
            facts: Some(&facts()),
            outcome: &o,
            region: "us-east-1",
            runbook: None,
        }));
        payloads.push(slack_payload(&Report {
            signal: &s,
            facts: Some(&f),
            outcome: &o,
            region: "us-east-1",
            runbook: None,
        }));
        for p in &payloads {
            lines.push_str(&p.to_string());
            lines.push('\n');
        }
        let path =
            std::env::temp_dir().join(format!("autoheal-slack-{}.jsonl", std::process::id()));
        std::fs::write(&path, lines).unwrap();
        let out = std::process::Command::new(&python)
            .arg(format!("{root}/tools/slack_check.py"))
            .args(["--runbook-url", RUNBOOK_URL])
            .arg(&path)
            .output()
            .unwrap();
        let _ = std::fs::remove_file(&path);
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "slack_check.py refused them:\n{said}");
        assert!(
            said.contains(&format!("ok {} payloads", payloads.len())),
            "{said}"
        );
    }
}
