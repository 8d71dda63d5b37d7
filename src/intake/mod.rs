//! Event in: every accepted event shape becomes one `Signal` per alarm, or an `Ignored`
//! with the reason. Pure: no AWS call, no panic, whatever the bytes.

use chrono::{DateTime, Utc};
use serde_json::Value;

use aws_lambda_events::event::cloudwatch_alarms::{
    CloudWatchAlarm, CloudWatchAlarmData, CloudWatchAlarmStateValue,
};
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::sns::SnsRecord;

pub mod notice;
mod signal;
pub use signal::*;

use crate::model::scope::ScopeKey;

/// Key of the object that stands in for a payload that is not JSON (see `guard_payload`).
const UNPARSEABLE_KEY: &str = "autoheal:unparseable";

fn ignored(reason: impl Into<String>) -> Intake {
    Intake::Ignored {
        instance_id: None,
        reason: reason.into(),
    }
}

/// Why these bytes cannot be an event at all, if they cannot. The Lambda adapter swaps such
/// a payload for a small JSON stand-in so that the runtime hands it to us instead of failing
/// the invocation (which would make Lambda retry input that can never succeed).
pub fn unparseable_reason(body: &[u8]) -> Option<String> {
    if body.len() > MAX_PAYLOAD_BYTES {
        return Some(format!(
            "payload of {} bytes exceeds the {} byte limit",
            body.len(),
            MAX_PAYLOAD_BYTES
        ));
    }
    let text = match std::str::from_utf8(body) {
        Ok(t) => t,
        Err(e) => return Some(format!("payload is not UTF-8 text ({e})")),
    };
    match serde_json::from_str::<serde::de::IgnoredAny>(text) {
        Ok(_) => None,
        Err(e) => Some(format!("payload is not JSON ({e})")),
    }
}

/// The JSON stand-in for an unparseable payload.
pub fn unparseable_stand_in(reason: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({ UNPARSEABLE_KEY: reason }))
        .expect("a string map serializes")
}

/// Raw bytes to intakes: the whole path a payload takes, for tests and tools.
pub fn parse(body: &[u8]) -> Vec<Intake> {
    match unparseable_reason(body) {
        Some(reason) => vec![ignored(reason)],
        None => parse_value(&serde_json::from_slice(body).unwrap_or(Value::Null)),
    }
}

/// A JSON event to intakes, one per SNS record or one for the whole event.
pub fn parse_value(event: &Value) -> Vec<Intake> {
    if let Some(reason) = event.get(UNPARSEABLE_KEY).and_then(Value::as_str) {
        return vec![ignored(reason)];
    }
    if let Some(command) = event.get("autoheal") {
        return vec![parse_command(command, event.get("scope"))];
    }
    if let Some(records) = event.get("Records") {
        let Some(records) = records.as_array() else {
            return vec![ignored("Records is not a list")];
        };
        if records.is_empty() {
            return vec![ignored("event has no records")];
        }
        let beyond = (MAX_RECORDS..records.len()).map(|i| {
            ignored(format!(
                "record {} of {}: only the first {MAX_RECORDS} records of an event are handled",
                i + 1,
                records.len()
            ))
        });
        return records
            .iter()
            .take(MAX_RECORDS)
            .map(parse_record)
            .chain(beyond)
            .collect();
    }
    if event.get("detail-type").is_some() {
        return vec![parse_eventbridge(event).unwrap_or_else(ignored)];
    }
    if event.get("alarmData").is_some() {
        return vec![parse_alarm_action(event).unwrap_or_else(ignored)];
    }
    vec![ignored(
        "not an alarm event: no SNS Records, EventBridge detail-type or alarmData",
    )]
}

/// The envelope as `aws_lambda_events` models it, or why it is not one.
fn typed<T: serde::de::DeserializeOwned>(value: &Value, what: &str) -> Result<T, String> {
    T::deserialize(value).map_err(|e| format!("{what} is not in the shape AWS sends ({e})"))
}

/// An operator's command, invoked directly: only `resume` (a breaker) so far.
fn parse_command(command: &Value, scope: Option<&Value>) -> Intake {
    if command.as_str() != Some("resume") {
        return ignored(format!(
            "unknown autoheal command {command}: the only one is \"resume\""
        ));
    }
    let scope = scope.and_then(Value::as_str).unwrap_or_default().trim();
    match scope.parse::<ScopeKey>() {
        Ok(key) => Intake::Resume { scope: key },
        _ => ignored(format!(
            "resume needs a scope \"group:<name>\", \"cluster:<name>\" or \"zone:<name>\" (with \"@<region>\" for another region than the function's), or \"account\", got {scope:?}"
        )),
    }
}

fn parse_record(record: &Value) -> Intake {
    if record.get("Sns").is_none() {
        let source = record
            .get("EventSource")
            .or_else(|| record.get("eventSource"))
            .and_then(Value::as_str)
            .unwrap_or("unknown source");
        return ignored(format!("record from {source} is not an SNS notification"));
    }
    let record: SnsRecord = match typed(record, "SNS record") {
        Ok(r) => r,
        Err(reason) => return ignored(reason),
    };
    if record.sns.sns_message_type != "Notification" {
        return ignored(format!(
            "SNS {} is not a notification",
            record.sns.sns_message_type
        ));
    }
    match serde_json::from_str::<Value>(&record.sns.message) {
        Ok(alarm) if alarm.is_object() => parse_sns_alarm(&alarm),
        Ok(_) => ignored("SNS Message is JSON but not an object"),
        Err(e) => ignored(format!("SNS Message is not JSON ({e})")),
    }
}

/// The classic alarm notification: `Trigger.Dimensions` is a list of `{name, value}`.
/// Read by hand: `aws_lambda_events`' `CloudWatchAlarmPayload` refuses what CloudWatch sends
/// (a `null` `AlarmDescription`, a composite alarm's missing `Trigger`).
fn parse_sns_alarm(alarm: &Value) -> Intake {
    let name = alarm.get("AlarmName").and_then(Value::as_str);
    if alarm.get("AlarmRule").is_some() {
        return composite(name);
    }
    let trigger = &alarm["Trigger"];
    let mut candidates: Vec<(String, Option<String>)> = Vec::new();
    if let Some(name) = trigger.get("MetricName").and_then(Value::as_str) {
        candidates.push((name.to_string(), instance_in_list(&trigger["Dimensions"])));
    }
    for m in trigger
        .get("Metrics")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let metric = &m["MetricStat"]["Metric"];
        if let Some(name) = metric.get("MetricName").and_then(Value::as_str) {
            candidates.push((name.to_string(), instance_in_list(&metric["Dimensions"])));
        }
    }
    let time = alarm.get("StateChangeTime").and_then(Value::as_str);
    build(Parts {
        alarm_name: name,
        arn: alarm.get("AlarmArn").and_then(Value::as_str),
        account: alarm.get("AWSAccountId").and_then(Value::as_str),
        state: alarm.get("NewStateValue").and_then(Value::as_str),
        reason: alarm.get("NewStateReason").and_then(Value::as_str),
        changed_at: time.and_then(parse_time),
        time_text: format!("{time:?}"),
        candidates,
    })
}

fn composite(name: Option<&str>) -> Intake {
    ignored(format!(
        "composite alarm {:?}: autoheal acts on the status-check alarm of one instance, not on a composite of alarms",
        name.unwrap_or_default()
    ))
}

/// An intake, or why the envelope is not one (`Err`: the reason it is ignored).
fn parse_eventbridge(event: &Value) -> Result<Intake, String> {
    let event: EventBridgeEvent<Value> = typed(event, "EventBridge event")?;
    let detail_type = event.detail_type.clone();
    let detail_type = detail_type.as_str();
    if detail_type == "CloudWatch Alarm State Change" {
        let arn = event.resources.iter().flatten().next();
        let data = typed(&event.detail, "the alarm state change's detail")?;
        return Ok(parse_alarm_data(
            data,
            arn.map(String::as_str),
            event.account.as_deref(),
        ));
    }
    if detail_type == "AWS Health Event" {
        return parse_health(event);
    }
    if let Some(trigger) = Trigger::parse(detail_type) {
        return Ok(Intake::Advance { trigger });
    }
    Ok(ignored(format!(
        "EventBridge events of type {detail_type:?} are not handled by this version"
    )))
}

/// EC2's automatic recovery of one instance, announced by AWS Health. Only `aws.health`
/// events of the recovery types are taken; what they say is checked against EC2's status
/// checks before it closes or escalates anything. A scheduled change is read into its
/// notices (`notice`).
fn parse_health(event: EventBridgeEvent<Value>) -> Result<Intake, String> {
    if event.source != "aws.health" {
        return Err(format!(
            "AWS Health Event from {:?}, not aws.health",
            event.source
        ));
    }
    let code = event
        .detail
        .get("eventTypeCode")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let Some(&(_, heard)) = RECOVERY_EVENTS.iter().find(|(c, _)| *c == code) else {
        return match notice::notices(&event, code) {
            Some(notices) => notices.map(Intake::Notice),
            None => Err(format!(
                "AWS Health event {code:?} is neither EC2's automatic recovery nor a scheduled change to an instance"
            )),
        };
    };
    let entities = event
        .detail
        .get("affectedEntities")
        .and_then(Value::as_array);
    let from_entities = entities
        .into_iter()
        .flatten()
        .filter_map(|e| e.get("entityValue").and_then(Value::as_str));
    let mut instances = from_entities
        .chain(event.resources.iter().flatten().map(String::as_str))
        .filter(|id| is_instance_id(id));
    let Some(instance_id) = instances.next() else {
        return Err(format!("AWS Health event {code} names no instance"));
    };
    let Some(at) = event.time else {
        return Err(format!("AWS Health event {code} has no time"));
    };
    Ok(Intake::Recovery(Recovery {
        instance_id: instance_id.to_string(),
        region: event.region.filter(|r| !r.is_empty()),
        account: event.account.filter(|a| !a.is_empty()),
        heard,
        code: code.to_string(),
        at,
    }))
}

/// The event CloudWatch sends when the alarm's action is the function itself.
fn parse_alarm_action(event: &Value) -> Result<Intake, String> {
    let event: CloudWatchAlarm<Value, Value> = typed(event, "alarm action event")?;
    if event.source.as_deref() != Some("aws.cloudwatch") {
        return Ok(ignored(format!(
            "alarm action event from {:?}, not aws.cloudwatch",
            event.source.unwrap_or_default()
        )));
    }
    Ok(parse_alarm_data(
        event.alarm_data,
        event.alarm_arn.as_deref(),
        event.account_id.as_deref(),
    ))
}

/// EventBridge `detail` and the alarm action's `alarmData` share one shape. The metrics are
/// read by hand: a metric-math entry has no `metricStat`, which the crate's metric alarm
/// configuration requires.
fn parse_alarm_data(
    data: CloudWatchAlarmData<Value, Value>,
    arn: Option<&str>,
    account: Option<&str>,
) -> Intake {
    let name = Some(data.alarm_name.as_str());
    if data.configuration.get("alarmRule").is_some() {
        return composite(name);
    }
    let mut candidates = Vec::new();
    for m in data
        .configuration
        .get("metrics")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let metric = &m["metricStat"]["metric"];
        if let Some(name) = metric.get("name").and_then(Value::as_str) {
            let instance = metric
                .pointer("/dimensions/InstanceId")
                .and_then(Value::as_str)
                .map(str::to_string);
            candidates.push((name.to_string(), instance));
        }
    }
    let state = data.state.as_ref();
    build(Parts {
        alarm_name: name,
        arn,
        account,
        state: state.and_then(|s| match s.value {
            CloudWatchAlarmStateValue::Alarm => Some("ALARM"),
            CloudWatchAlarmStateValue::Ok => Some("OK"),
            CloudWatchAlarmStateValue::InsufficientData => Some("INSUFFICIENT_DATA"),
            _ => None,
        }),
        reason: state.map(|s| s.reason.as_str()),
        changed_at: state.map(|s| s.timestamp),
        time_text: "missing".to_string(),
        candidates,
    })
}

fn instance_in_list(dimensions: &Value) -> Option<String> {
    dimensions.as_array()?.iter().find_map(|d| {
        let name = d.get("name").or_else(|| d.get("Name"))?.as_str()?;
        let value = d.get("value").or_else(|| d.get("Value"))?.as_str()?;
        (name == "InstanceId").then(|| value.to_string())
    })
}

struct Parts<'a> {
    alarm_name: Option<&'a str>,
    arn: Option<&'a str>,
    account: Option<&'a str>,
    state: Option<&'a str>,
    reason: Option<&'a str>,
    changed_at: Option<DateTime<Utc>>,
    /// What the time was, for the reason when `changed_at` is `None`.
    time_text: String,
    /// (metric name, InstanceId dimension) for each metric the alarm watches.
    candidates: Vec<(String, Option<String>)>,
}

fn build(p: Parts) -> Intake {
    let status_checks: Vec<(Metric, Option<String>)> = p
        .candidates
        .iter()
        .filter_map(|(name, instance)| Metric::from_name(name).map(|m| (m, instance.clone())))
        .collect();
    let Some((metric, instance)) = status_checks
        .iter()
        .find(|(_, i)| i.is_some())
        .or_else(|| status_checks.first())
        .cloned()
    else {
        let names: Vec<&str> = p.candidates.iter().map(|(n, _)| n.as_str()).collect();
        return ignored(if names.is_empty() {
            "alarm names no metric".to_string()
        } else {
            format!("metric {} is not an EC2 status check", names.join(", "))
        });
    };
    let Some(instance_id) = instance else {
        return ignored(format!(
            "{} alarm has no InstanceId dimension",
            metric.name()
        ));
    };
    if !is_instance_id(&instance_id) {
        return ignored(format!(
            "InstanceId {instance_id:?} is not an EC2 instance id"
        ));
    }
    let with_instance = |reason: String| Intake::Ignored {
        instance_id: Some(instance_id.clone()),
        reason,
    };
    let state = match p.state {
        Some("ALARM") => AlarmState::Alarm,
        Some("OK") => AlarmState::Ok,
        Some("INSUFFICIENT_DATA") => AlarmState::InsufficientData,
        other => return with_instance(format!("unknown alarm state {other:?}")),
    };
    let Some(changed_at) = p.changed_at else {
        return with_instance(format!(
            "alarm state-change time {} is missing or unreadable",
            p.time_text
        ));
    };
    let Some(alarm_name) = p.alarm_name.filter(|n| !n.is_empty()) else {
        return with_instance("alarm has no name".to_string());
    };
    let (region, arn_account) = p.arn.map(arn_region_account).unwrap_or((None, None));
    Intake::Signal(Signal {
        instance_id,
        metric,
        state,
        changed_at,
        alarm_name: alarm_name.to_string(),
        alarm_arn: p.arn.map(str::to_string),
        by_notice: false,
        region,
        account: arn_account.or_else(|| p.account.map(str::to_string)),
        reason: p.reason.unwrap_or("").to_string(),
    })
}

fn is_instance_id(s: &str) -> bool {
    s.strip_prefix("i-").is_some_and(|hex| {
        (8..=17).contains(&hex.len()) && hex.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

/// CloudWatch writes `2026-11-23T03:12:45.123+0000`; EventBridge's `time` is RFC 3339.
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .or_else(|_| DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// `arn:aws:cloudwatch:REGION:ACCOUNT:alarm:NAME` -> (region, account).
fn arn_region_account(arn: &str) -> (Option<String>, Option<String>) {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    if parts.len() < 6 || parts[0] != "arn" {
        return (None, None);
    }
    let nonempty = |s: &str| (!s.is_empty()).then(|| s.to_string());
    (nonempty(parts[3]), nonempty(parts[4]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    const IID: &str = "i-0123456789abcdef0";

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!("{}/events/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    /// A fixture with one field changed.
    fn edited(name: &str, edit: impl FnOnce(&mut Value)) -> Vec<u8> {
        let mut event: Value = serde_json::from_slice(&fixture(name)).unwrap();
        edit(&mut event);
        serde_json::to_vec(&event).unwrap()
    }

    /// A whole SNS record, as SNS sends it, carrying `message`.
    fn sns_with(message: &str) -> Vec<u8> {
        edited("sns-alarm.json", |e| {
            e["Records"][0]["Sns"]["Message"] = message.into()
        })
    }

    fn only(intakes: Vec<Intake>) -> Intake {
        assert_eq!(intakes.len(), 1, "{intakes:?}");
        intakes.into_iter().next().unwrap()
    }

    fn signal(name: &str) -> Signal {
        match only(parse(&fixture(name))) {
            Intake::Signal(s) => s,
            other => panic!("{name}: {other:?}"),
        }
    }

    fn ignored_reason(intake: Intake) -> String {
        match intake {
            Intake::Ignored { reason, .. } => reason,
            other => panic!("expected ignored, got {other:?}"),
        }
    }

    #[test]
    fn every_acted_on_fixture_gives_its_signal() {
        // (fixture, metric, state, region)
        let table = [
            (
                "sns-alarm.json",
                Metric::StatusCheckFailed,
                AlarmState::Alarm,
            ),
            ("sns-ok.json", Metric::StatusCheckFailed, AlarmState::Ok),
            (
                "sns-insufficient-data.json",
                Metric::StatusCheckFailed,
                AlarmState::InsufficientData,
            ),
            (
                "sns-metric-math.json",
                Metric::StatusCheckFailedSystem,
                AlarmState::Alarm,
            ),
            (
                "sns-attached-ebs.json",
                Metric::StatusCheckFailedAttachedEbs,
                AlarmState::Alarm,
            ),
            (
                "eventbridge-alarm.json",
                Metric::StatusCheckFailedInstance,
                AlarmState::Alarm,
            ),
            (
                "alarm-action.json",
                Metric::StatusCheckFailed,
                AlarmState::Alarm,
            ),
            (
                "eventbridge-metric-math.json",
                Metric::StatusCheckFailedSystem,
                AlarmState::Alarm,
            ),
        ];
        for (name, metric, state) in table {
            let s = signal(name);
            assert_eq!((s.metric, s.state), (metric, state), "{name}");
            assert_eq!(s.instance_id, IID, "{name}");
            assert_eq!(s.region.as_deref(), Some("us-east-1"), "{name}");
            assert_eq!(s.account.as_deref(), Some("123456789012"), "{name}");
            assert!(s.alarm_name.starts_with("autoheal-"), "{name}");
            assert!(!s.reason.is_empty(), "{name}");
        }
        assert_eq!(
            signal("sns-alarm.json").changed_at.timestamp_millis(),
            1_795_403_565_123
        );
    }

    #[test]
    fn every_record_of_an_sns_event_is_handled() {
        let intakes = parse(&fixture("sns-two-records.json"));
        let ids: Vec<_> = intakes
            .iter()
            .map(|i| match i {
                Intake::Signal(s) => s.instance_id.as_str(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(ids, [IID, "i-0fedcba9876543210"]);
    }

    #[test]
    fn records_beyond_the_cap_are_ignored_each_naming_it() {
        let mut event: Value = serde_json::from_slice(&fixture("sns-alarm.json")).unwrap();
        let record = event["Records"][0].clone();
        event["Records"] = Value::Array(vec![record; 1_000]);
        let intakes = parse_value(&event);
        assert_eq!(intakes.len(), 1_000, "one outcome per record");
        assert!(intakes[..MAX_RECORDS]
            .iter()
            .all(|i| matches!(i, Intake::Signal(s) if s.instance_id == IID)));
        for (n, intake) in intakes.into_iter().enumerate().skip(MAX_RECORDS) {
            assert_eq!(
                ignored_reason(intake),
                format!(
                    "record {} of 1000: only the first {MAX_RECORDS} records of an event are handled",
                    n + 1
                )
            );
        }
    }

    #[test]
    fn every_bad_input_is_ignored_with_its_reason() {
        let big = vec![b'x'; 1024 * 1024];
        let table: Vec<(Vec<u8>, &str)> = vec![
            (fixture("sns-other-metric.json"), "CPUUtilization is not an EC2 status check"),
            (fixture("sns-no-instance-dimension.json"), "no InstanceId dimension"),
            (fixture("sns-message-not-json.json"), "SNS Message is not JSON"),
            (fixture("not-an-alarm.json"), "aws:s3 is not an SNS notification"),
            (b"hello".to_vec(), "payload is not JSON"),
            (vec![0xff, 0xfe, 0x00, 0x80], "not UTF-8"),
            (big, "exceeds the 524288 byte limit"),
            (b"".to_vec(), "payload is not JSON"),
            (b"[]".to_vec(), "not an alarm event"),
            (b"null".to_vec(), "not an alarm event"),
            (br#"{"Records": 5}"#.to_vec(), "Records is not a list"),
            (br#"{"Records": []}"#.to_vec(), "no records"),
            (br#"{"Records": [{"Sns": {}}]}"#.to_vec(), "SNS record is not in the shape AWS sends (missing field"),
            (br#"{"detail-type": "AWS API Call via CloudTrail", "source": "aws.cloudtrail", "detail": {}}"#.to_vec(), "not handled by this version"),
            (br#"{"detail-type": "CloudWatch Alarm State Change", "detail": {}}"#.to_vec(), "EventBridge event is not in the shape AWS sends (missing field `source`"),
            (
                sns_with(r#"{"AlarmName":"a","NewStateValue":"ALARM","StateChangeTime":"2026-11-23T03:12:45.123+0000","Trigger":{"MetricName":"StatusCheckFailed","Dimensions":[{"name":"InstanceId","value":"i-zz; drop"}]}}"#),
                "is not an EC2 instance id",
            ),
            (
                sns_with(r#"{"AlarmName":"a","NewStateValue":"ALARM","StateChangeTime":"yesterday","Trigger":{"MetricName":"StatusCheckFailed","Dimensions":[{"name":"InstanceId","value":"i-0123456789abcdef0"}]}}"#),
                "state-change time",
            ),
            (
                sns_with(r#"{"AlarmName":"a","NewStateValue":"MAYBE","StateChangeTime":"2026-11-23T03:12:45.123+0000","Trigger":{"MetricName":"StatusCheckFailed","Dimensions":[{"name":"InstanceId","value":"i-0123456789abcdef0"}]}}"#),
                "unknown alarm state",
            ),
            (sns_with("[1]"), "not an object"),
            (fixture("sns-composite-alarm.json"), "composite alarm \"autoheal-web-tier\""),
            (fixture("eventbridge-composite-alarm.json"), "composite alarm \"autoheal-web-tier\""),
            (
                edited("alarm-action.json", |e| e["source"] = "aws.s3".into()),
                "alarm action event from \"aws.s3\"",
            ),
            (
                edited("alarm-action.json", |e| e["alarmData"]["state"]["value"] = "MAYBE".into()),
                "alarm action event is not in the shape AWS sends (unknown variant `MAYBE`",
            ),
            (
                edited("eventbridge-alarm.json", |e| e["detail"]["alarmName"] = Value::Null),
                "the alarm state change's detail is not in the shape AWS sends",
            ),
            (
                edited("sns-alarm.json", |e| e["Records"][0]["Sns"]["Type"] = "SubscriptionConfirmation".into()),
                "SNS SubscriptionConfirmation is not a notification",
            ),
        ];
        for (bytes, expected) in table {
            let reason = ignored_reason(only(parse(&bytes)));
            assert!(
                reason.contains(expected),
                "{reason:?} should contain {expected:?}"
            );
        }
    }

    #[test]
    fn two_records_of_one_batch_that_are_one_message_are_one_transition() {
        let intakes = parse(&fixture("sns-duplicate-records.json"));
        let keys: Vec<_> = intakes
            .iter()
            .map(|i| match i {
                Intake::Signal(s) => s.transition_key(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0], keys[1], "the ledger's claim keeps the second out");
    }

    /// Every fixture is an envelope as `aws_lambda_events` models it, so the fixtures are
    /// the shapes AWS sends and not shapes this parser happens to accept.
    #[test]
    fn every_fixture_is_the_envelope_aws_sends() {
        use aws_lambda_events::event::sns::SnsEvent;
        let dir = format!("{}/events", env!("CARGO_MANIFEST_DIR"));
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            let event: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            let shape = if name == "not-an-alarm.json" {
                continue;
            } else if name.starts_with("sns-") {
                SnsEvent::deserialize(&event).map(drop)
            } else if name.starts_with("alarm-action") {
                CloudWatchAlarm::<Value, Value>::deserialize(&event).map(drop)
            } else {
                EventBridgeEvent::<Value>::deserialize(&event).map(drop)
            };
            assert!(shape.is_ok(), "{name}: {shape:?}");
            seen += 1;
        }
        assert!(seen >= 15, "{seen} fixtures");
    }

    #[test]
    fn ec2_announces_its_own_recoveries() {
        for (name, heard, code) in [
            (
                "health-recovery-success.json",
                Heard::Recovered,
                "AWS_EC2_SIMPLIFIED_AUTO_RECOVERY_SUCCESS",
            ),
            (
                "health-recovery-failure.json",
                Heard::Failed,
                "AWS_EC2_SIMPLIFIED_AUTO_RECOVERY_FAILURE",
            ),
        ] {
            match only(parse(&fixture(name))) {
                Intake::Recovery(r) => {
                    assert_eq!((r.heard, r.code.as_str()), (heard, code), "{name}");
                    assert_eq!(r.instance_id, IID);
                    assert_eq!(r.region.as_deref(), Some("us-east-1"));
                    assert_eq!(r.at.to_rfc3339(), "2026-11-23T03:19:02+00:00");
                }
                other => panic!("{name}: {other:?}"),
            }
        }
        let health = "health-recovery-success.json";
        for (bytes, why) in [
            (edited(health, |e| e["source"] = "aws.s3".into()), "AWS Health Event from \"aws.s3\", not aws.health"),
            (
                edited(health, |e| e["detail"]["eventTypeCode"] = "AWS_EC2_OPERATIONAL_ISSUE".into()),
                "AWS Health event \"AWS_EC2_OPERATIONAL_ISSUE\" is neither EC2's automatic recovery nor a scheduled change to an instance",
            ),
            (
                edited(health, |e| {
                    e["detail"]["affectedEntities"] = Value::Null;
                    e["resources"] = serde_json::json!(["arn:aws:ec2:us-east-1:1:volume/vol-1"]);
                }),
                "names no instance",
            ),
        ] {
            let reason = ignored_reason(only(parse(&bytes)));
            assert!(reason.contains(why), "{reason:?} should contain {why:?}");
        }
    }

    #[test]
    fn ami_instance_and_schedule_events_advance_relaunches() {
        for (name, kind) in [
            ("eventbridge-ami-state.json", Trigger::ImageStateChange),
            (
                "eventbridge-instance-state.json",
                Trigger::InstanceStateChange,
            ),
            ("scheduled-tick.json", Trigger::Tick),
        ] {
            assert_eq!(
                only(parse(&fixture(name))),
                Intake::Advance { trigger: kind },
                "{name}"
            );
        }
        for t in Trigger::ALL {
            assert_eq!(Trigger::parse(t.detail_type()), Some(t));
        }
    }

    #[test]
    fn the_stand_in_round_trips_the_reason() {
        let reason = unparseable_reason(b"{nope").unwrap();
        let stand_in = unparseable_stand_in(&reason);
        assert!(unparseable_reason(&stand_in).is_none());
        assert_eq!(ignored_reason(only(parse(&stand_in))), reason);
    }

    #[test]
    fn region_comes_from_the_arn_not_the_display_name() {
        assert_eq!(
            arn_region_account("arn:aws:cloudwatch:eu-west-3:111122223333:alarm:a:b"),
            (Some("eu-west-3".into()), Some("111122223333".into()))
        );
        assert_eq!(arn_region_account("nonsense"), (None, None));
    }

    #[test]
    fn times_in_both_formats() {
        let a = parse_time("2026-11-23T03:12:45.123+0000").unwrap();
        let b = parse_time("2026-11-23T03:12:45.123Z").unwrap();
        assert_eq!(a, b);
        assert!(parse_time("23/11/2026").is_none());
    }

    #[test]
    fn same_transition_same_key_and_new_time_new_key() {
        let a = signal("sns-alarm.json");
        let mut b = a.clone();
        assert_eq!(a.transition_key(), b.transition_key());
        b.changed_at += chrono::Duration::seconds(60);
        assert_ne!(a.transition_key(), b.transition_key());
    }

    #[test]
    fn resume_commands() {
        let parse = |v: Value| parse_value(&v).remove(0);
        assert_eq!(
            parse(serde_json::json!({"autoheal": "resume", "scope": "group:web"})),
            Intake::Resume {
                scope: ScopeKey::group("web")
            }
        );
        assert_eq!(
            parse(serde_json::json!({"autoheal": "resume", "scope": " cluster:db "})),
            Intake::Resume {
                scope: ScopeKey::cluster("db")
            }
        );
        assert_eq!(
            parse(serde_json::json!({"autoheal": "resume", "scope": "account"})),
            Intake::Resume {
                scope: ScopeKey::Account
            }
        );
        for (bad, why) in [
            (
                serde_json::json!({"autoheal": "resume"}),
                "resume needs a scope",
            ),
            (
                serde_json::json!({"autoheal": "resume", "scope": "accounts"}),
                "resume needs a scope",
            ),
            (
                serde_json::json!({"autoheal": "resume", "scope": "group:"}),
                "resume needs a scope",
            ),
            (
                serde_json::json!({"autoheal": "reboot", "scope": "group:web"}),
                "unknown autoheal command \"reboot\"",
            ),
        ] {
            match parse(bad.clone()) {
                Intake::Ignored { reason, .. } => {
                    assert!(reason.starts_with(why), "{bad}: {reason}")
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
    }
}
