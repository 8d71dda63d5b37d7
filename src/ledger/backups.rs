//! The backup run's record of an instance (`pk = instance#<region>/<id>`, `sk = backups`,
//! beside its head): every image it asked EC2 for, written before it asks and changed only
//! on the version read. What it lists is what autoheal made (records in `crate::rules::backup`).
//! The tick reads it with the head, both items of many instances per `BatchGetItem`, and
//! reads the heads of its open incidents alone the same way.

use super::{from_item, head_from_item, key, s, stored, Item, Ledger, RETENTION_SECONDS};
use crate::error::Error;
use crate::rules::backup::{Entry, Known, Made};
use crate::rules::incident::Head;
use aws_sdk_dynamodb::types::KeysAndAttributes;
use serde::Serialize;
use std::collections::HashMap;

const SK: &str = "backups";
/// DynamoDB takes at most 100 keys per `BatchGetItem`: 50 instances, two items each.
const KEYS_PER_BATCH: usize = 100;
/// Batches read at once.
const BATCHES_AT_ONCE: usize = 4;
/// Rounds of keys DynamoDB left unprocessed (throttled) before giving up as transient.
const UNPROCESSED_ROUNDS: u32 = 5;

fn record_key(instance: &str) -> Item {
    let mut k = key(instance);
    k.insert("sk".into(), s(SK));
    k
}

/// What is written of a record besides its key and TTL (read back as a `Made`).
#[derive(Serialize)]
struct StoredMade<'a> {
    instance_id: &'a str,
    images: &'a [Entry],
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    flagged: &'a [String],
    version: i64,
}

fn made_from_item(item: &Item) -> Made {
    from_item(item).unwrap_or_default()
}

fn item_from_made(instance: &str, made: &Made, now_secs: i64) -> Result<Item, Error> {
    let body = StoredMade {
        instance_id: crate::model::keys::instance_of(instance),
        images: &made.images,
        flagged: &made.flagged,
        version: made.version,
    };
    let expires_at = now_secs + RETENTION_SECONDS;
    stored(format!("instance#{instance}"), SK.into(), expires_at, body)
}

impl Ledger {
    /// The backup record of `instance` (a `model::keys::key`); none yet: an empty one.
    pub async fn read_backups(&self, instance: &str) -> Result<Made, Error> {
        let item = self.get(record_key(instance)).await?;
        Ok(item.as_ref().map(made_from_item).unwrap_or_default())
    }

    /// Writes `made` if the stored record is still at `made.version - 1` (or absent for the
    /// first version). False: another run wrote first.
    pub async fn write_backups(
        &self,
        instance: &str,
        made: &Made,
        now_secs: i64,
    ) -> Result<bool, Error> {
        let item = item_from_made(instance, made, now_secs)?;
        self.put_if_version(item, made.version - 1).await
    }

    /// The head and the backup record of each of `instances` (`model::keys::key`s), read
    /// consistently, keyed like them.
    pub async fn backup_standing(
        &self,
        instances: &[String],
    ) -> Result<HashMap<String, Known>, Error> {
        use futures::stream::{self, StreamExt, TryStreamExt};
        let keys: Vec<Item> = instances
            .iter()
            .flat_map(|i| [key(i), record_key(i)])
            .collect();
        let items: Vec<Vec<Item>> = stream::iter(keys.chunks(KEYS_PER_BATCH))
            .map(|chunk| self.batch_get(chunk.to_vec()))
            .buffer_unordered(BATCHES_AT_ONCE)
            .try_collect()
            .await?;
        let mut known: HashMap<String, Known> = HashMap::new();
        for item in items.iter().flatten() {
            let field = |k: &str| item.get(k).and_then(|v| v.as_s().ok());
            let (Some(pk), Some(sk)) = (field("pk"), field("sk")) else {
                continue;
            };
            let Some(instance) = pk.strip_prefix("instance#") else {
                continue;
            };
            let entry = known.entry(instance.to_string()).or_default();
            match sk.as_str() {
                "head" => entry.head = head_from_item(item),
                SK => entry.made = made_from_item(item),
                _ => {}
            }
        }
        Ok(known)
    }

    /// The heads of `instances` (`model::keys::key`s), read consistently, 100 per
    /// `BatchGetItem`, keyed like them; an instance without a head is left out.
    pub async fn read_heads(&self, instances: &[String]) -> Result<HashMap<String, Head>, Error> {
        use futures::stream::{self, StreamExt, TryStreamExt};
        let keys: Vec<Item> = instances.iter().map(|i| key(i)).collect();
        let items: Vec<Vec<Item>> = stream::iter(keys.chunks(KEYS_PER_BATCH))
            .map(|chunk| self.batch_get(chunk.to_vec()))
            .buffer_unordered(BATCHES_AT_ONCE)
            .try_collect()
            .await?;
        Ok(items
            .iter()
            .flatten()
            .filter_map(|item| {
                let pk = item.get("pk")?.as_s().ok()?;
                Some((
                    pk.strip_prefix("instance#")?.to_string(),
                    head_from_item(item)?,
                ))
            })
            .collect())
    }

    /// One `BatchGetItem`, with the keys DynamoDB leaves unprocessed asked again.
    pub(super) async fn batch_get(&self, mut keys: Vec<Item>) -> Result<Vec<Item>, Error> {
        let op = "dynamodb:BatchGetItem";
        let mut items = vec![];
        for round in 0..UNPROCESSED_ROUNDS {
            if round > 0 {
                // What DynamoDB asks for when it leaves keys unprocessed: back off.
                tokio::time::sleep(std::time::Duration::from_millis(50 << round)).await;
            }
            let request = KeysAndAttributes::builder()
                .set_keys(Some(keys))
                .consistent_read(true)
                .build()
                .map_err(|e| Error::Permanent {
                    op,
                    code: None,
                    detail: e.to_string(),
                })?;
            let out = self
                .client
                .batch_get_item()
                .request_items(&self.table, request)
                .send()
                .await
                .map_err(|e| Error::from_sdk(op, e))?;
            if let Some(found) = out.responses().and_then(|r| r.get(&self.table)) {
                items.extend(found.iter().cloned());
            }
            keys = out
                .unprocessed_keys()
                .and_then(|u| u.get(&self.table))
                .map(|k| k.keys().to_vec())
                .unwrap_or_default();
            if keys.is_empty() {
                return Ok(items);
            }
        }
        Err(Error::Transient {
            op,
            detail: format!(
                "{} key(s) still unprocessed after {UNPROCESSED_ROUNDS} rounds",
                keys.len()
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::tests::{fixtures, WRITTEN};

    #[test]
    fn a_record_survives_the_round_trip_through_an_item() {
        let made = Made {
            images: vec![
                Entry {
                    name: "autoheal-backup-i-1-20261123T0312Z".into(),
                    image_id: Some("ami-1".into()),
                    requested_ms: 5,
                },
                Entry {
                    name: "autoheal-backup-i-1-20261124T0312Z".into(),
                    image_id: None,
                    requested_ms: 9,
                },
            ],
            flagged: vec!["ami-planted".into()],
            version: 3,
            expires_at: 0,
        };
        let item = item_from_made("us-east-1/i-1", &made, 1_000).unwrap();
        assert_eq!(item["pk"].as_s().unwrap(), "instance#us-east-1/i-1");
        assert_eq!(item["sk"].as_s().unwrap(), "backups");
        assert_eq!(item["instance_id"].as_s().unwrap(), "i-1");
        let back = made_from_item(&item);
        assert_eq!(back.expires_at, 1_000 + RETENTION_SECONDS);
        assert_eq!(
            back,
            Made {
                expires_at: back.expires_at,
                ..made
            }
        );
    }

    /// Backup records, by fixture case.
    fn records() -> Vec<(&'static str, Made)> {
        let first = Made {
            images: vec![Entry {
                name: "autoheal-backup-i-1-20261123T0312Z".into(),
                image_id: None,
                requested_ms: 1_795_000_000_000,
            }],
            flagged: vec![],
            version: 1,
            expires_at: 0,
        };
        let later = Made {
            images: vec![
                Entry {
                    image_id: Some("ami-0abc".into()),
                    ..first.images[0].clone()
                },
                Entry {
                    name: "autoheal-backup-i-1-20261124T0312Z".into(),
                    image_id: None,
                    requested_ms: 1_795_086_400_000,
                },
            ],
            flagged: vec!["ami-planted".into()],
            version: 4,
            expires_at: 0,
        };
        vec![("first", first), ("later", later)]
    }

    #[test]
    fn records_read_and_write_as_the_stored_items() {
        let items = fixtures("backups");
        assert_eq!(items.len(), records().len());
        for (name, made) in records() {
            let item = &items[name];
            let written = WRITTEN;
            let read = Made {
                expires_at: written + RETENTION_SECONDS,
                ..made.clone()
            };
            assert_eq!(made_from_item(item), read, "{name}: read");
            let stored = item_from_made("us-east-1/i-1", &made, written).unwrap();
            assert_eq!(&stored, item, "{name}: written");
        }
    }
}
