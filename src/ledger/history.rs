//! The audit trail's reads and writes (records and keys in `crate::rules::history`).

use super::{from_item, s, stored, Item, Ledger, RETENTION_SECONDS};
use crate::error::Error;
use crate::rules::history::{partition_of, partitions, sort_key, Record};

impl Ledger {
    /// Keeps one decision; overwriting the same key (same instant, instance and incident)
    /// is harmless.
    pub async fn record(&self, r: &Record, now_secs: i64) -> Result<(), Error> {
        let mut item = record_item(r, now_secs)?;
        // Two decisions about one incident in the same millisecond (concurrent deliveries)
        // are both kept: the second takes the next free key.
        let base = sort_key(r);
        for n in 1..=5 {
            let sk = if n == 1 {
                base.clone()
            } else {
                format!("{base}#{n}")
            };
            item.insert("sk".into(), s(&sk));
            if self.put_new(item.clone()).await? {
                break;
            }
        }
        Ok(())
    }

    /// Decisions since `since_ms` (of one instance, if given), oldest first, all pages.
    /// No further back than decisions are kept: one query per day, so an early `since_ms`
    /// would ask for years of empty days.
    pub async fn history(
        &self,
        since_ms: i64,
        now_ms: i64,
        instance_id: Option<&str>,
    ) -> Result<Vec<Record>, Error> {
        let since_ms = since_ms.max(now_ms.saturating_sub(RETENTION_SECONDS * 1000));
        let since = chrono::DateTime::from_timestamp_millis(since_ms)
            .unwrap_or_default()
            .format("%Y-%m-%dT%H:%M:%S%.3fZ")
            .to_string();
        let mut records = vec![];
        for pk in partitions(since_ms, now_ms) {
            let mut start: Option<Item> = None;
            loop {
                let mut q = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .key_condition_expression("pk = :pk AND sk >= :since")
                    .expression_attribute_values(":pk", s(&pk))
                    .expression_attribute_values(":since", s(&since))
                    .set_exclusive_start_key(start.take());
                if let Some(id) = instance_id {
                    q = q
                        .filter_expression("instance_id = :id")
                        .expression_attribute_values(":id", s(id));
                }
                let out = q
                    .send()
                    .await
                    .map_err(|e| Error::from_sdk("dynamodb:Query", e))?;
                records.extend(out.items().iter().filter_map(record_from_item));
                match out.last_evaluated_key() {
                    Some(k) if !k.is_empty() => start = Some(k.clone()),
                    _ => break,
                }
            }
        }
        Ok(records)
    }
}

/// The item `record` stores for `r` at `now_secs`, under its first key.
fn record_item(r: &Record, now_secs: i64) -> Result<Item, Error> {
    stored(
        partition_of(r),
        sort_key(r),
        now_secs + RETENTION_SECONDS,
        r,
    )
}

fn record_from_item(item: &Item) -> Option<Record> {
    from_item(item)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::tests::{fixtures, WRITTEN};

    /// Audit records, by fixture case.
    fn records() -> Vec<(&'static str, Record)> {
        let full = Record {
            at: "2026-11-19T04:26:40.000Z".into(),
            instance_id: "i-0123456789abcdef0".into(),
            action: "reboot".into(),
            result: "done".into(),
            reason: "rebooted".into(),
            incident: Some("i-0123456789abcdef0-20261119T042640Z".into()),
            group: Some("web".into()),
            inputs: Some("alarm \"a\" StatusCheckFailed ALARM at 2026-11-19T04:26:39.000Z".into()),
            notification: Some("slack".into()),
        };
        let bare = Record {
            action: "none".into(),
            result: "ignored".into(),
            reason: String::new(),
            incident: None,
            group: None,
            inputs: None,
            notification: None,
            ..full.clone()
        };
        vec![("full", full), ("bare", bare)]
    }

    #[test]
    fn records_read_and_write_as_the_stored_items() {
        let items = fixtures("history");
        assert_eq!(items.len(), records().len());
        for (name, record) in records() {
            let item = &items[name];
            assert_eq!(
                record_from_item(item).as_ref(),
                Some(&record),
                "{name}: read"
            );
            let stored = record_item(&record, WRITTEN).unwrap();
            assert_eq!(&stored, item, "{name}: written");
        }
    }
}
