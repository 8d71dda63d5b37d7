//! The guards' scope items (`pk = scope#cluster:<name>@<region>`, `scope#group:<name>@<region>`,
//! `sk = head`): the members admitted to repair, changed only on the version read, like
//! incident heads.

use super::{n, s, Item, Ledger, RETENTION_SECONDS};
use crate::error::Error;
use aws_sdk_dynamodb::types::AttributeValue;

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
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(scope)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| Error::from_sdk("dynamodb:GetItem", e))?;
        let Some(item) = out.item() else {
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
        version: i64,
        now_secs: i64,
    ) -> Result<bool, Error> {
        let mut item = key(scope);
        item.insert(
            "members".into(),
            AttributeValue::L(
                members
                    .iter()
                    .map(|(i, inc)| s(&format!("{i}@{inc}")))
                    .collect(),
            ),
        );
        item.insert("version".into(), n(version + 1));
        item.insert("expires_at".into(), n(now_secs + RETENTION_SECONDS));
        self.put_if_version(item, version).await
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
