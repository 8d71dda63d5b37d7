//! DynamoDB ledger: one head item per instance (`pk = instance#<region>/<id>`,
//! `sk = head`), read consistently and written only on the condition that nobody wrote it
//! since; and an index of open incidents (`pk = open`, `sk = instance#<region>/<id>`) for
//! the tick. Keys are `model::keys::key`s. In the same table: the backup run's record of
//! each instance (`backups`), the guards' scope items (`scope`), the breaker's partitions
//! (`breaker`) and the storm they make together (`storm`), the audit trail (`history`), the reports Slack did not take (`outbox`) and EC2's scheduled
//! notices (`notice`).

pub mod backups;
pub mod breaker;
mod head;
pub mod history;
pub mod notice;
pub mod outbox;
pub mod scope;
pub mod store;
pub mod storm;

use crate::error::Error;
use crate::rules::incident::Head;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;
use head::StoredHead;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::HashMap;

/// Closed and settled incidents are kept this long, then DynamoDB's TTL removes them.
pub const RETENTION_SECONDS: i64 = 30 * 24 * 3600;

#[derive(Clone, Debug)]
pub struct Ledger {
    pub(super) client: aws_sdk_dynamodb::Client,
    pub(super) table: String,
}

pub(super) type Item = HashMap<String, AttributeValue>;

/// `instance`: a `model::keys::key`.
fn key(instance: &str) -> Item {
    HashMap::from([
        (
            "pk".to_string(),
            AttributeValue::S(format!("instance#{instance}")),
        ),
        ("sk".to_string(), AttributeValue::S("head".to_string())),
    ])
}

impl Ledger {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Ledger {
        Ledger {
            client,
            table: table.into(),
        }
    }

    /// The head of `instance` (a `model::keys::key`).
    pub async fn read(&self, instance: &str) -> Result<Option<Head>, Error> {
        Ok(self
            .get(key(instance))
            .await?
            .as_ref()
            .and_then(head_from_item))
    }

    /// The item with this key, read consistently (none there: None).
    pub(super) async fn get(&self, key: Item) -> Result<Option<Item>, Error> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| Error::from_sdk("dynamodb:GetItem", e))?;
        Ok(out.item)
    }

    /// Lists the instances (`model::keys::key`s) with an open incident: a relaunch in
    /// progress, or a hold (the tick advances them).
    pub async fn open_incidents(&self) -> Result<Vec<String>, Error> {
        let items = self.partition("open").await?;
        Ok(items
            .iter()
            .filter_map(|i| {
                i.get("sk")?
                    .as_s()
                    .ok()?
                    .strip_prefix("instance#")
                    .map(str::to_string)
            })
            .collect())
    }

    /// Every item of the partition `pk`, read consistently, page after page.
    pub(super) async fn partition(&self, pk: &str) -> Result<Vec<Item>, Error> {
        let mut items = vec![];
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(pk))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| Error::from_sdk("dynamodb:Query", e))?;
            items.extend(out.items().iter().cloned());
            match out.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => return Ok(items),
            }
        }
    }

    /// Lists (`open = true`) or unlists an open incident. Idempotent.
    pub async fn set_open(&self, instance: &str, open: bool, now_secs: i64) -> Result<(), Error> {
        let key = HashMap::from([
            ("pk".to_string(), s("open")),
            ("sk".to_string(), s(&format!("instance#{instance}"))),
        ]);
        if open {
            let mut item = key;
            item.insert("expires_at".into(), n(now_secs + RETENTION_SECONDS));
            self.put(item).await?;
        } else {
            self.delete(key).await?;
        }
        Ok(())
    }

    /// Deletes the item with this key (none there: nothing to do).
    pub(super) async fn delete(&self, key: Item) -> Result<(), Error> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .send()
            .await
            .map_err(|e| Error::from_sdk("dynamodb:DeleteItem", e))?;
        Ok(())
    }

    /// Writes `head` if the stored version is still `head.version - 1` (or absent for the
    /// first version). Returns false when another invocation wrote first.
    pub async fn write(&self, head: &Head, now_secs: i64) -> Result<bool, Error> {
        let item = head_item(head, now_secs)?;
        self.put_if_version(item, head.version - 1).await
    }

    /// Puts `item` if the stored item's `version` is still `previous` (or there is none).
    /// False: another invocation wrote first.
    pub(super) async fn put_if_version(&self, item: Item, previous: i64) -> Result<bool, Error> {
        self.put_if(
            item,
            "attribute_not_exists(pk) OR version = :previous",
            (":previous", n(previous)),
        )
        .await
    }

    /// Puts `item`, whatever is there.
    pub(super) async fn put(&self, item: Item) -> Result<(), Error> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| Error::from_sdk("dynamodb:PutItem", e))?;
        Ok(())
    }

    /// Puts `item` if no item has its key yet. False: one has.
    pub(super) async fn put_new(&self, item: Item) -> Result<bool, Error> {
        self.put_when(item, "attribute_not_exists(pk)", None).await
    }

    /// Puts `item` if `condition` (with one value) holds. False: it did not.
    pub(super) async fn put_if(
        &self,
        item: Item,
        condition: &str,
        value: (&str, AttributeValue),
    ) -> Result<bool, Error> {
        self.put_when(item, condition, Some(value)).await
    }

    async fn put_when(
        &self,
        item: Item,
        condition: &str,
        value: Option<(&str, AttributeValue)>,
    ) -> Result<bool, Error> {
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition);
        if let Some((name, value)) = value {
            put = put.expression_attribute_values(name, value);
        }
        Ok(unless_lost("dynamodb:PutItem", put.send().await)?.is_some())
    }
}

/// A conditional write's answer: `Some` of what it returned, None when its condition did not
/// hold (another invocation wrote first, or the item is not as the caller expected).
pub(super) fn unless_lost<T, E>(
    op: &'static str,
    out: Result<T, SdkError<E, HttpResponse>>,
) -> Result<Option<T>, Error>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match out {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(None),
        Err(e) => Err(Error::from_sdk(op, e)),
    }
}

pub(super) fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub(super) fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_string())
}

/// An item as written: its key, when DynamoDB's TTL removes it (epoch seconds), and the
/// attributes of `body`, as serde names them.
#[derive(Serialize)]
struct Stored<T> {
    pk: String,
    sk: String,
    expires_at: i64,
    #[serde(flatten)]
    body: T,
}

pub(super) fn stored(
    pk: String,
    sk: String,
    expires_at: i64,
    body: impl Serialize,
) -> Result<Item, Error> {
    let item = Stored {
        pk,
        sk,
        expires_at,
        body,
    };
    serde_dynamo::to_item(item).map_err(|e| Error::Permanent {
        op: "dynamodb:PutItem",
        code: None,
        detail: format!("no item for it: {e}"),
    })
}

/// The `T` an item holds; None when it holds none (an attribute missing or of another
/// type), as for an item autoheal did not write.
pub(super) fn from_item<T: DeserializeOwned>(item: &Item) -> Option<T> {
    serde_dynamo::from_item(item.clone())
        .inspect_err(|e| tracing::warn!(error = %e, "a ledger item did not read"))
        .ok()
}

/// The item `write` stores for `head` at `now_secs`.
fn head_item(head: &Head, now_secs: i64) -> Result<Item, Error> {
    stored(
        format!("instance#{}", head.key()),
        "head".into(),
        now_secs + RETENTION_SECONDS,
        StoredHead::new(head, now_secs),
    )
}

fn head_from_item(item: &Item) -> Option<Head> {
    from_item::<StoredHead>(item)?.head()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intake::Heard;
    use crate::model::outcome::{Action, Verdict};
    use crate::model::progress::{Phase, Progress};
    use crate::rules::incident::{AlarmContext, HoldKind, Status};
    use crate::rules::ladder::Rung;
    use crate::rules::replacement::Step;
    use serde_json::Value;
    use std::collections::BTreeMap;

    /// The stored items of `kind` in `tests/fixtures/ledger-items.json`, by case: the
    /// table's format as autoheal wrote it before serde mapped it (DynamoDB's JSON).
    pub(super) fn fixtures(kind: &str) -> BTreeMap<String, Item> {
        let all: Value =
            serde_json::from_str(include_str!("../../tests/fixtures/ledger-items.json")).unwrap();
        let cases = all[kind].as_object().unwrap_or_else(|| panic!("no {kind}"));
        cases
            .iter()
            .map(|(name, item)| (name.clone(), item_of(item)))
            .collect()
    }

    fn item_of(json: &Value) -> Item {
        json.as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), value_of(v)))
            .collect()
    }

    fn value_of(json: &Value) -> AttributeValue {
        let (kind, v) = json.as_object().unwrap().iter().next().unwrap();
        match kind.as_str() {
            "S" => AttributeValue::S(v.as_str().unwrap().into()),
            "N" => AttributeValue::N(v.as_str().unwrap().into()),
            "BOOL" => AttributeValue::Bool(v.as_bool().unwrap()),
            "L" => AttributeValue::L(v.as_array().unwrap().iter().map(value_of).collect()),
            "M" => AttributeValue::M(item_of(v)),
            other => panic!("no {other} in the ledger's items"),
        }
    }

    /// When the fixtures' items were written (epoch seconds).
    pub(super) const WRITTEN: i64 = 1_795_000_000;

    /// A fresh claim: the first alarm of an instance, leased, nothing decided yet.
    fn claimed() -> Head {
        Head {
            instance_id: "i-0123456789abcdef0".into(),
            incident_id: "i-0123456789abcdef0-20261123T031245Z".into(),
            status: Status::Repairing,
            opened_ms: 1_795_000_000_000,
            alarm_ms: 1_794_999_999_000,
            closed_ms: None,
            transitions: vec!["ALARM@1794999999000".into()],
            lease_until_ms: 1_795_000_090_000,
            version: 1,
            attempts: 1,
            action: None,
            result: None,
            reason: None,
            group: None,
            alarm: AlarmContext {
                alarm_name: "autoheal-i-0123456789abcdef0".into(),
                metric: "StatusCheckFailed_System".into(),
                reason: "Threshold Crossed: 2 datapoints".into(),
                account: Some("123456789012".into()),
                region: Some("ap-northeast-1".into()),
            },
            progress: Progress::default(),
            hold_until_ms: None,
            hold_kind: None,
            hold_scope: None,
            member_steps: vec![],
            rungs: vec![],
            ec2_heard: vec![],
        }
    }

    /// Representative heads, by fixture case.
    fn heads() -> Vec<(&'static str, Head)> {
        let held = Head {
            lease_until_ms: 0,
            version: 2,
            result: Some(Verdict::Held),
            reason: Some("grace period".into()),
            hold_until_ms: Some(1_795_000_300_000),
            hold_kind: Some(HoldKind::Grace),
            ..claimed()
        };
        let laddered = Head {
            status: Status::Settled,
            lease_until_ms: 0,
            version: 5,
            attempts: 2,
            action: Some(Action::StopStart),
            result: Some(Verdict::Done),
            reason: Some("stopped and started".into()),
            rungs: vec![
                (Rung::Reboot, 1_795_000_010_000),
                (Rung::StopStart, 1_795_000_400_000),
            ],
            ec2_heard: vec![(Heard::Failed, 1_795_000_200_000)],
            ..claimed()
        };
        let member = Head {
            group: Some("web".into()),
            action: Some(Action::MarkUnhealthy),
            result: Some(Verdict::InProgress),
            version: 3,
            member_steps: vec![
                (Step::Marked, 1_795_000_001_000),
                (Step::Left, 1_795_000_060_000),
            ],
            ..claimed()
        };
        let relaunching = Head {
            version: 4,
            action: Some(Action::LaunchReplacement),
            result: Some(Verdict::InProgress),
            rungs: vec![(Rung::Relaunch, 1_795_000_010_000)],
            progress: Progress {
                phase: Some(Phase::Launching),
                image_id: Some("ami-0abc".into()),
                replacement_id: None,
                from_backup: true,
                marks: vec![
                    (Phase::Imaging, 1_795_000_010_000),
                    (Phase::Launching, 1_795_000_500_000),
                ],
                image_name: Some("autoheal-i-0123456789abcdef0-5f3a9c".into()),
                launch_token: Some("5f3a9c0d1e2b".into()),
            },
            ..claimed()
        };
        let relaunched = Head {
            status: Status::Settled,
            lease_until_ms: 0,
            version: 9,
            progress: Progress {
                phase: Some(Phase::Recovered),
                replacement_id: Some("i-0fedcba9876543210".into()),
                from_backup: false,
                marks: vec![
                    (Phase::Imaging, 1_795_000_010_000),
                    (Phase::Launching, 1_795_000_500_000),
                    (Phase::TakingOver, 1_795_000_600_000),
                    (Phase::Verifying, 1_795_000_700_000),
                    (Phase::Recovered, 1_795_000_900_000),
                ],
                ..relaunching.progress.clone()
            },
            result: Some(Verdict::Done),
            ..relaunching.clone()
        };
        let closed = Head {
            status: Status::Closed,
            closed_ms: Some(1_795_001_000_000),
            transitions: vec!["ALARM@1794999999000".into(), "OK@1795001000000".into()],
            reason: Some("recovered by itself".into()),
            ..held.clone()
        };
        vec![
            ("claimed", claimed()),
            ("held", held),
            ("laddered", laddered),
            ("member", member),
            ("relaunching", relaunching),
            ("relaunched", relaunched),
            ("closed", closed),
        ]
    }

    #[test]
    fn heads_read_and_write_as_the_stored_items() {
        let items = fixtures("heads");
        assert_eq!(items.len(), heads().len());
        for (name, head) in heads() {
            let item = &items[name];
            assert_eq!(head_from_item(item).as_ref(), Some(&head), "{name}: read");
            assert_eq!(&head_item(&head, WRITTEN).unwrap(), item, "{name}: written");
        }
    }

    /// Attributes added since are absent from older items; names no longer known are left
    /// out, not fatal.
    #[test]
    fn older_heads_read_with_the_defaults() {
        let item = &fixtures("older heads")["before alarm_ms, attempts and leases"];
        let head = Head {
            status: Status::Settled,
            alarm_ms: 1_795_000_000_000,
            transitions: vec![],
            lease_until_ms: 0,
            version: 7,
            alarm: AlarmContext {
                alarm_name: String::new(),
                metric: String::new(),
                reason: String::new(),
                ..claimed().alarm
            },
            rungs: vec![(Rung::Reboot, 1_795_000_010_000)],
            ..claimed()
        };
        assert_eq!(head_from_item(item), Some(head));
    }
}
