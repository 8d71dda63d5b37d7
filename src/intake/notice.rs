//! EC2's scheduled changes announced by AWS Health (`eventTypeCategory: scheduledChange`,
//! service EC2): one `Notice` per instance the event names. Pure, like the rest of the
//! intake. The pipeline records each once and tells people once (`pipeline::notice`).

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use chrono::DateTime;
use serde_json::Value;

use crate::model::notice::{Notice, NoticeSource, NoticeState, HEALTH_NOTICES};

/// What the handler answers, once the notices are read, when `AUTOHEAL_NOTICES=off`.
pub const OFF: &str = "AUTOHEAL_NOTICES=off: not recorded";

/// The notices of a Health event of one of `HEALTH_NOTICES`' codes (`None`: another code),
/// or why the event is not one.
pub(super) fn notices(
    event: &EventBridgeEvent<Value>,
    code: &str,
) -> Option<Result<Vec<Notice>, String>> {
    let &(_, kind) = HEALTH_NOTICES.iter().find(|(c, _)| *c == code)?;
    let d = &event.detail;
    let text = |key: &str| d.get(key).and_then(Value::as_str);
    let service = text("service").unwrap_or_default();
    if service != "EC2" {
        return Some(Err(format!(
            "AWS Health event {code} is about service {service:?}, not EC2"
        )));
    }
    let category = text("eventTypeCategory").unwrap_or_default();
    if category != "scheduledChange" {
        return Some(Err(format!(
            "AWS Health event {code} is of category {category:?}, not scheduledChange"
        )));
    }
    let instances = affected(event);
    if instances.is_empty() {
        return Some(Err(format!("AWS Health event {code} names no instance")));
    }
    let closed = text("statusCode") == Some("closed");
    let region = text("eventRegion")
        .map(str::to_string)
        .or_else(|| event.region.clone())
        .filter(|r| !r.is_empty());
    let notice = |(instance_id, resolved): (String, bool)| Notice {
        instance_id,
        region: region.clone(),
        account: event.account.clone().filter(|a| !a.is_empty()),
        kind,
        source: NoticeSource::Health {
            event_arn: text("eventArn").unwrap_or_default().to_string(),
            code: code.to_string(),
        },
        not_before_ms: text("startTime").and_then(health_time),
        not_after_ms: text("endTime").and_then(health_time),
        deadline_ms: None,
        state: match closed || resolved {
            true => NoticeState::Closed,
            false => NoticeState::Scheduled,
        },
        description: description(d),
    };
    Some(Ok(instances.into_iter().map(notice).collect()))
}

/// The instances the event names, each once, with whether its entity is `RESOLVED`:
/// `affectedEntities` first, then `resources`.
fn affected(event: &EventBridgeEvent<Value>) -> Vec<(String, bool)> {
    let entities = event
        .detail
        .get("affectedEntities")
        .and_then(Value::as_array);
    let from_entities = entities.into_iter().flatten().filter_map(|e| {
        let id = e.get("entityValue").and_then(Value::as_str)?;
        let resolved = e.get("status").and_then(Value::as_str) == Some("RESOLVED");
        Some((id, resolved))
    });
    let from_resources = event
        .resources
        .iter()
        .flatten()
        .map(|r| (r.as_str(), false));
    let mut out: Vec<(String, bool)> = Vec::new();
    for (id, resolved) in from_entities.chain(from_resources) {
        if super::is_instance_id(id) && !out.iter().any(|(seen, _)| seen == id) {
            out.push((id.to_string(), resolved));
        }
    }
    out
}

/// Health writes `Thu, 26 Nov 2026 03:00:00 GMT`; RFC 3339 is taken too.
fn health_time(s: &str) -> Option<i64> {
    DateTime::parse_from_rfc2822(s)
        .ok()
        .map(|t| t.timestamp_millis())
        .or_else(|| super::parse_time(s).map(|t| t.timestamp_millis()))
}

/// The English description, else the first.
fn description(detail: &Value) -> String {
    let all: Vec<&Value> = detail
        .get("eventDescription")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .collect();
    let english = all
        .iter()
        .find(|d| d.get("language").and_then(Value::as_str) == Some("en_US"));
    english
        .or(all.first())
        .and_then(|d| d.get("latestDescription"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// The `ignored` reason for the notices of one event: what EC2 will do, to which
/// instances, from when; then `why`.
pub fn heard(notices: &[Notice], why: &str) -> String {
    let first = &notices[0];
    let ids: Vec<&str> = notices.iter().map(|n| n.instance_id.as_str()).collect();
    let when = first
        .not_before_ms
        .and_then(DateTime::from_timestamp_millis)
        .map(|t| format!(" from {}", t.format("%Y-%m-%d %H:%M UTC")))
        .unwrap_or_default();
    let code = match &first.source {
        NoticeSource::Health { code, .. } => code.as_str(),
        NoticeSource::Status { .. } => first.kind.code(),
    };
    let state = match notices.iter().all(|n| n.state != NoticeState::Scheduled) {
        true => " (closed)",
        false => "",
    };
    format!(
        "scheduled notice heard: EC2 will {} {}{when} ({code}){state}; {why}",
        first.kind.said(),
        ids.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intake::{parse, Intake};
    use crate::model::notice::NoticeKind;
    use serde::Deserialize;

    const IID: &str = "i-0123456789abcdef0";
    const OTHER: &str = "i-0fedcba9876543210";
    const RETIREMENT: &str = "health-retirement-scheduled.json";
    const SYSTEM_REBOOT: &str = "health-system-reboot-scheduled.json";

    fn fixture(name: &str, edit: impl FnOnce(&mut Value)) -> Value {
        let path = format!("{}/events/{name}", env!("CARGO_MANIFEST_DIR"));
        let mut event: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        edit(&mut event);
        event
    }

    fn read(event: &Value) -> Result<Vec<Notice>, String> {
        let event = EventBridgeEvent::<Value>::deserialize(event).unwrap();
        let code = event.detail["eventTypeCode"].as_str().unwrap().to_string();
        notices(&event, &code).expect("a notice code")
    }

    /// The one intake the whole event gives, as the handler receives it.
    fn intake(event: &Value) -> (Option<String>, String) {
        let intakes = parse(&serde_json::to_vec(event).unwrap());
        match &intakes[..] {
            [Intake::Ignored {
                instance_id,
                reason,
            }] => (instance_id.clone(), reason.clone()),
            [Intake::Notice(notices)] => {
                (Some(notices[0].instance_id.clone()), heard(notices, OFF))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_scheduled_change_is_its_notices_said_with_what_it_announced() {
        let table = [
            (
                fixture(RETIREMENT, |_| {}),
                "scheduled notice heard: EC2 will retire i-0123456789abcdef0 from 2026-12-07 03:00 UTC (AWS_EC2_PERSISTENT_INSTANCE_RETIREMENT_SCHEDULED); AUTOHEAL_NOTICES=off: not recorded",
            ),
            (
                fixture(SYSTEM_REBOOT, |_| {}),
                "scheduled notice heard: EC2 will reboot the host of i-0123456789abcdef0, i-0fedcba9876543210 from 2026-12-06 02:00 UTC (AWS_EC2_SYSTEM_REBOOT_MAINTENANCE_SCHEDULED); AUTOHEAL_NOTICES=off: not recorded",
            ),
            (
                fixture(RETIREMENT, |e| e["detail"]["statusCode"] = "closed".into()),
                "scheduled notice heard: EC2 will retire i-0123456789abcdef0 from 2026-12-07 03:00 UTC (AWS_EC2_PERSISTENT_INSTANCE_RETIREMENT_SCHEDULED) (closed); AUTOHEAL_NOTICES=off: not recorded",
            ),
        ];
        for (event, reason) in table {
            assert_eq!(intake(&event), (Some(IID.to_string()), reason.to_string()));
        }
    }

    #[test]
    fn each_instance_named_is_one_notice_with_the_events_times() {
        let [n] = &read(&fixture(RETIREMENT, |_| {})).unwrap()[..] else {
            panic!("one notice")
        };
        assert_eq!(n.instance_id, IID);
        assert_eq!(n.kind, NoticeKind::InstanceRetirement);
        assert_eq!(
            (n.not_before_ms, n.not_after_ms, n.deadline_ms),
            (Some(1_796_612_400_000), Some(1_796_612_400_000), None)
        );
        assert_eq!(
            (n.region.as_deref(), n.account.as_deref()),
            (Some("us-east-1"), Some("123456789012"))
        );
        assert_eq!(n.state, NoticeState::Scheduled);
        assert!(n.description.starts_with("EC2 has detected degradation"));
        assert_eq!(n.event_id(), None, "only DescribeInstanceStatus gives it");
        match &n.source {
            NoticeSource::Health { event_arn, code } => {
                assert_eq!(code, "AWS_EC2_PERSISTENT_INSTANCE_RETIREMENT_SCHEDULED");
                assert!(event_arn.starts_with("arn:aws:health:us-east-1::event/EC2/"));
            }
            other => panic!("{other:?}"),
        }

        let two = read(&fixture(SYSTEM_REBOOT, |e| {
            e["detail"]["affectedEntities"][1]["status"] = "RESOLVED".into();
            e["detail"]["eventRegion"] = Value::Null;
            e["region"] = "eu-west-1".into();
        }))
        .unwrap();
        let got: Vec<_> = two
            .iter()
            .map(|n| {
                (
                    n.instance_id.as_str(),
                    n.state,
                    n.not_before_ms,
                    n.not_after_ms,
                )
            })
            .collect();
        let (start, end) = (Some(1_796_522_400_000), Some(1_796_529_600_000));
        assert_eq!(
            got,
            [
                (IID, NoticeState::Scheduled, start, end),
                (OTHER, NoticeState::Closed, start, end)
            ]
        );
        assert!(two.iter().all(
            |n| n.kind == NoticeKind::SystemReboot && n.region.as_deref() == Some("eu-west-1")
        ));

        // No entities: the resources name the instances; a repeat is taken once.
        let from_resources = read(&fixture(SYSTEM_REBOOT, |e| {
            e["detail"]["affectedEntities"] = Value::Null;
            e["resources"] =
                serde_json::json!([OTHER, "arn:aws:ec2:us-east-1:1:volume/vol-1", OTHER]);
        }))
        .unwrap();
        assert_eq!(from_resources.len(), 1);
        assert_eq!(from_resources[0].instance_id, OTHER);
    }

    #[test]
    fn every_code_of_an_ec2_scheduled_change_names_its_kind() {
        for (code, kind) in HEALTH_NOTICES {
            let notices = read(&fixture(RETIREMENT, |e| {
                e["detail"]["eventTypeCode"] = (*code).into()
            }))
            .unwrap();
            assert_eq!(notices[0].kind, *kind, "{code}");
        }
    }

    #[test]
    fn what_is_not_a_scheduled_change_to_an_instance_is_ignored_with_the_reason() {
        let table = [
            (
                fixture(RETIREMENT, |e| e["detail"]["service"] = "RDS".into()),
                "AWS Health event AWS_EC2_PERSISTENT_INSTANCE_RETIREMENT_SCHEDULED is about service \"RDS\", not EC2",
            ),
            (
                fixture(RETIREMENT, |e| e["detail"]["eventTypeCategory"] = "issue".into()),
                "is of category \"issue\", not scheduledChange",
            ),
            (
                fixture(SYSTEM_REBOOT, |e| {
                    e["detail"]["affectedEntities"] = serde_json::json!([{"entityValue": "vol-0123456789abcdef0"}]);
                    e["resources"] = serde_json::json!([]);
                }),
                "AWS Health event AWS_EC2_SYSTEM_REBOOT_MAINTENANCE_SCHEDULED names no instance",
            ),
            (
                fixture(RETIREMENT, |e| {
                    e["detail"]["eventTypeCode"] = "AWS_EC2_DEDICATED_HOST_RETIREMENT_SCHEDULED".into()
                }),
                "AWS Health event \"AWS_EC2_DEDICATED_HOST_RETIREMENT_SCHEDULED\" is neither EC2's automatic recovery nor a scheduled change to an instance",
            ),
            (
                fixture(RETIREMENT, |e| e["source"] = "aws.ec2".into()),
                "AWS Health Event from \"aws.ec2\", not aws.health",
            ),
        ];
        for (event, why) in table {
            let (instance, reason) = intake(&event);
            assert_eq!(instance, None, "{reason}");
            assert!(reason.contains(why), "{reason:?} should contain {why:?}");
        }
    }
}
