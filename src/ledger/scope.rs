//! The guards' scope items (`pk = scope#cluster:<name>@<region>`, `scope#group:<name>@<region>`,
//! `scope#account`, `sk = head`): the members admitted to repair and the latest alarm time
//! among them (`newest_ms`), changed only on the version read, like incident heads — or, when
//! the scope is free, claimed in one transaction without reading it first.

use super::{n, s, unless_lost, Item, Ledger, RETENTION_SECONDS};
use crate::error::Error;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};

/// A scope claimed by `Ledger::admit_if_free`.
pub struct Free<'a> {
    pub scope: String,
    /// The member (ledger key) and its incident.
    pub member: (&'a str, &'a str),
    /// The member's alarm time.
    pub alarm_ms: i64,
    /// A window scope (the account budget) is free too when its newest member's alarm is
    /// at or before this time.
    pub window_start_ms: Option<i64>,
}

/// Writes lost in a row before `release_member` gives up.
const RELEASE_RACES: usize = 5;

fn member(id: &str, incident: &str) -> AttributeValue {
    s(&format!("{id}@{incident}"))
}

fn key(scope: &str) -> Item {
    [
        ("pk".to_string(), s(&format!("scope#{scope}"))),
        ("sk".to_string(), s("head")),
    ]
    .into()
}

impl Ledger {
    /// The members admitted (instance, incident) and the item's version (0: no item).
    pub async fn read_scope(&self, scope: &str) -> Result<(Vec<(String, String)>, i64), Error> {
        let Some(item) = self.get(key(scope)).await? else {
            return Ok((vec![], 0));
        };
        let members = item
            .get("members")
            .and_then(|v| v.as_l().ok())
            .map(|l| {
                l.iter()
                    .filter_map(|v| {
                        let (id, incident) = v.as_s().ok()?.split_once('@')?;
                        Some((id.to_string(), incident.to_string()))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let version = item
            .get("version")
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        Ok((members, version))
    }

    /// Writes the members if nobody changed the item since `version` was read.
    pub async fn write_scope(
        &self,
        scope: &str,
        members: &[(String, String)],
        (version, newest_ms): (i64, i64),
        now_secs: i64,
    ) -> Result<bool, Error> {
        let mut item = key(scope);
        item.insert(
            "members".into(),
            AttributeValue::L(members.iter().map(|(i, inc)| member(i, inc)).collect()),
        );
        item.insert("newest_ms".into(), n(newest_ms));
        item.insert("version".into(), n(version + 1));
        item.insert("expires_at".into(), n(now_secs + RETENTION_SECONDS));
        self.put_if_version(item, version).await
    }

    /// Admits one member in every scope of `free` at once, if each is free: no item, no
    /// member, or (a window scope) no member alarmed after its window's start. All or none:
    /// false when any scope was not free, and nothing is written.
    pub async fn admit_if_free(&self, free: &[Free<'_>], now_secs: i64) -> Result<bool, Error> {
        let mut items = Vec::with_capacity(free.len());
        for f in free {
            let mut condition = "attribute_not_exists(pk) OR size(members) = :zero".to_string();
            let mut update = Update::builder()
                .table_name(&self.table)
                .set_key(Some(key(&f.scope)))
                .update_expression(
                    "SET members = :m, newest_ms = :t, expires_at = :e ADD version :one",
                )
                .expression_attribute_values(
                    ":m",
                    AttributeValue::L(vec![member(f.member.0, f.member.1)]),
                )
                .expression_attribute_values(":t", n(f.alarm_ms))
                .expression_attribute_values(":e", n(now_secs + RETENTION_SECONDS))
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":zero", n(0));
            if let Some(start) = f.window_start_ms {
                condition.push_str(" OR newest_ms <= :start");
                update = update.expression_attribute_values(":start", n(start));
            }
            let update = update
                .condition_expression(condition)
                .build()
                .map_err(|e| Error::Permanent {
                    op: "dynamodb:TransactWriteItems",
                    code: None,
                    detail: e.to_string(),
                })?;
            items.push(TransactWriteItem::builder().update(update).build());
        }
        let out = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        match out {
            Ok(_) => Ok(true),
            // A condition failed (a scope is not free) or another transaction was on the
            // same items: admitted one scope at a time instead.
            Err(e) if e.code() == Some("TransactionCanceledException") => Ok(false),
            Err(e) => Err(Error::from_sdk("dynamodb:TransactWriteItems", e)),
        }
    }

    /// Takes one member, the instance `member.0` with its incident `member.1`, out of the
    /// scope's item by a write conditional on the version read; the other members and the
    /// newest alarm time stay. False: the item does not list it (any more). For an
    /// operator's `autoheal-admin release`: the function itself never removes a member, it
    /// reads whether each is still under repair.
    pub async fn release_member(&self, scope: &str, member: (&str, &str)) -> Result<bool, Error> {
        for _ in 0..RELEASE_RACES {
            let (members, version) = self.read_scope(scope).await?;
            let rest: Vec<AttributeValue> = members
                .iter()
                .filter(|(id, incident)| (id.as_str(), incident.as_str()) != member)
                .map(|(id, incident)| self::member(id, incident))
                .collect();
            if rest.len() == members.len() {
                return Ok(false);
            }
            let out = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(scope)))
                .update_expression("SET members = :m, version = :next")
                .condition_expression("version = :v")
                .expression_attribute_values(":m", AttributeValue::L(rest))
                .expression_attribute_values(":next", n(version + 1))
                .expression_attribute_values(":v", n(version))
                .send()
                .await;
            if unless_lost("dynamodb:UpdateItem", out)?.is_some() {
                return Ok(true);
            }
        }
        Err(Error::Transient {
            op: "dynamodb:UpdateItem",
            detail: format!("{scope} kept changing under the function's writes; run it again"),
        })
    }

    /// Claims the one summary message of `key` until `until_ms`: true for exactly one
    /// caller per period.
    pub async fn claim_summary(
        &self,
        key: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<bool, Error> {
        let item: Item = [
            ("pk".to_string(), s(&format!("summary#{key}"))),
            ("sk".to_string(), s("head")),
            ("until_ms".to_string(), n(until_ms)),
            (
                "expires_at".to_string(),
                n(until_ms / 1000 + RETENTION_SECONDS),
            ),
        ]
        .into();
        self.put_if(
            item,
            "attribute_not_exists(pk) OR until_ms <= :now",
            (":now", n(now_ms)),
        )
        .await
    }
}
