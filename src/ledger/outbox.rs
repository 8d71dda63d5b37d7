//! Reports Slack did not take, kept in the ledger (`pk = outbox`, `sk = <ms>#<n>`) until
//! the tick delivers them or they are an hour old.

use super::{n, s, Item, Ledger};
use crate::error::Error;
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::HashMap;

/// A kept report: its key and the payload as posted.
#[derive(Debug, Clone, PartialEq)]
pub struct Kept {
    pub sk: String,
    pub created_ms: i64,
    pub payload: serde_json::Value,
}

/// Kept reports are gone from the table after this even if the tick never ran.
const KEPT_SECONDS: i64 = 2 * 3600;

fn key(sk: &str) -> Item {
    HashMap::from([("pk".to_string(), s("outbox")), ("sk".to_string(), s(sk))])
}

impl Ledger {
    /// Keeps a report for the tick to re-send. `n` tells reports of one millisecond apart.
    pub async fn keep_report(
        &self,
        payload: &serde_json::Value,
        now_ms: i64,
        n_: usize,
    ) -> Result<(), Error> {
        let mut item = key(&format!("{now_ms:013}#{n_}"));
        item.insert("created_ms".into(), n(now_ms));
        item.insert("payload".into(), s(&payload.to_string()));
        item.insert("expires_at".into(), n(now_ms / 1000 + KEPT_SECONDS));
        self.put(item).await
    }

    /// Every kept report, oldest first.
    pub async fn kept_reports(&self) -> Result<Vec<Kept>, Error> {
        let items = self.partition("outbox").await?;
        Ok(items
            .iter()
            .filter_map(|i| {
                let get = |k: &str| match i.get(k) {
                    Some(AttributeValue::S(v)) => Some(v.clone()),
                    Some(AttributeValue::N(v)) => Some(v.clone()),
                    _ => None,
                };
                Some(Kept {
                    sk: get("sk")?,
                    created_ms: get("created_ms")?.parse().ok()?,
                    payload: serde_json::from_str(&get("payload")?).ok()?,
                })
            })
            .collect())
    }

    pub async fn forget_report(&self, sk: &str) -> Result<(), Error> {
        self.delete(key(sk)).await
    }
}
