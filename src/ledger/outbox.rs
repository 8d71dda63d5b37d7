//! Reports Slack did not take, kept in the ledger (`pk = outbox`, `sk = <ms>#<random>`)
//! until the tick delivers them or they are an hour old.

use super::{from_item, s, stored, Item, Ledger};
use crate::error::Error;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// A kept report: its key and the payload as posted. Also the stored form: its fields are
/// the item's attributes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Kept {
    /// Written as the key.
    #[serde(skip_serializing)]
    pub sk: String,
    pub created_ms: i64,
    #[serde(with = "json_text")]
    pub payload: serde_json::Value,
}

/// Kept reports are gone from the table after this even if the tick never ran.
const KEPT_SECONDS: i64 = 2 * 3600;

fn key(sk: &str) -> Item {
    HashMap::from([("pk".to_string(), s("outbox")), ("sk".to_string(), s(sk))])
}

/// The item `keep_report_with` stores for `payload` under `sk` at `now_ms`.
fn kept_item(sk: &str, payload: &serde_json::Value, now_ms: i64) -> Result<Item, Error> {
    let kept = Kept {
        sk: sk.into(),
        created_ms: now_ms,
        payload: payload.clone(),
    };
    stored(
        "outbox".into(),
        sk.into(),
        now_ms / 1000 + KEPT_SECONDS,
        kept,
    )
}

fn kept_from_item(item: &Item) -> Option<Kept> {
    from_item(item)
}

/// The payload is kept as the JSON text posted.
mod json_text {
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &serde_json::Value, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&v.to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<serde_json::Value, D::Error> {
        serde_json::from_str(&String::deserialize(d)?).map_err(D::Error::custom)
    }
}

/// Tries at a fresh key when one is taken (a 64-bit random suffix: never in practice).
const KEEP_TRIES: usize = 3;

/// 64 random bits: std's `RandomState` is seeded from the operating system's randomness
/// once per thread and steps on for each new one, so two containers, or two calls, differ.
fn random() -> u64 {
    use std::hash::BuildHasher;
    std::collections::hash_map::RandomState::new().hash_one(0u8)
}

impl Ledger {
    /// Keeps a report for the tick to re-send. Containers run apart and may keep reports
    /// in the same millisecond: the key's random suffix tells them apart, and the write
    /// never replaces a kept report.
    pub async fn keep_report(&self, payload: &serde_json::Value, now_ms: i64) -> Result<(), Error> {
        self.keep_report_with(payload, now_ms, random).await
    }

    /// `keep_report` with the suffixes drawn from `suffix` (tests force a collision).
    #[doc(hidden)]
    pub async fn keep_report_with(
        &self,
        payload: &serde_json::Value,
        now_ms: i64,
        mut suffix: impl FnMut() -> u64,
    ) -> Result<(), Error> {
        for _ in 0..KEEP_TRIES {
            let item = kept_item(&format!("{now_ms:013}#{:016x}", suffix()), payload, now_ms)?;
            if self.put_new(item).await? {
                return Ok(());
            }
        }
        Err(Error::Permanent {
            op: "dynamodb:PutItem",
            code: None,
            detail: format!("no free outbox key at {now_ms} in {KEEP_TRIES} tries"),
        })
    }

    /// Every kept report, oldest first.
    pub async fn kept_reports(&self) -> Result<Vec<Kept>, Error> {
        let items = self.partition("outbox").await?;
        Ok(items.iter().filter_map(kept_from_item).collect())
    }

    pub async fn forget_report(&self, sk: &str) -> Result<(), Error> {
        self.delete(key(sk)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::tests::fixtures;

    /// Kept reports, by fixture case.
    fn kept() -> Vec<(&'static str, Kept)> {
        vec![(
            "report",
            Kept {
                sk: "1795000000000#00000000deadbeef".into(),
                created_ms: 1_795_000_000_000,
                payload: serde_json::json!({"text": "i-1 rebooted", "blocks": [{"type": "section"}]}),
            },
        )]
    }

    #[test]
    fn reports_read_and_write_as_the_stored_items() {
        let items = fixtures("outbox");
        assert_eq!(items.len(), kept().len());
        for (name, report) in kept() {
            let item = &items[name];
            assert_eq!(kept_from_item(item).as_ref(), Some(&report), "{name}: read");
            let stored = kept_item(&report.sk, &report.payload, report.created_ms).unwrap();
            assert_eq!(&stored, item, "{name}: written");
        }
    }
}
