//! EC2's scheduled notices as the ledger keeps them: one item per notice in one partition
//! (`pk = notices`, `sk = <region>/<instance>#<code>#<start>`, `rules::notice::record::key`),
//! written once (a conditional `PutItem`: a repeat is `duplicate`), read in batches by the
//! tick, closed once, and listed with one `Query` for `autoheal-admin upcoming`. TTL: a
//! while after the notice's end.

use super::{from_item, s, stored, unless_lost, Item, Ledger};
use crate::error::Error;
use crate::rules::notice::record::{expires_at, Recorded, CLOSED, SCHEDULED};
use std::collections::HashMap;

/// The partition every notice is kept in.
pub const PARTITION: &str = "notices";
/// The partition listing the notices with a step under way (one item each, keyed as the
/// notice), which the tick reads: a stop/start is verified after EC2 stops listing its event.
pub const ACTING: &str = "notices-acting";

fn key(sk: &str) -> Item {
    HashMap::from([("pk".to_string(), s(PARTITION)), ("sk".to_string(), s(sk))])
}

/// The item `record_notice` writes.
fn notice_item(r: &Recorded) -> Result<Item, Error> {
    stored(PARTITION.into(), r.key.clone(), expires_at(r), r)
}

fn notice_from_item(item: &Item) -> Option<Recorded> {
    from_item(item)
}

impl Ledger {
    /// Records a notice first heard: false when one is recorded under its key already.
    pub async fn record_notice(&self, r: &Recorded) -> Result<bool, Error> {
        self.put_new(notice_item(r)?).await
    }

    /// The recorded notices among `keys`, by key, read consistently in batches.
    pub async fn recorded_notices(
        &self,
        keys: &[String],
    ) -> Result<HashMap<String, Recorded>, Error> {
        let mut out = HashMap::new();
        for chunk in keys.chunks(100) {
            let items = self
                .batch_get(chunk.iter().map(|k| key(k)).collect())
                .await?;
            for r in items.iter().filter_map(notice_from_item) {
                out.insert(r.key.clone(), r);
            }
        }
        Ok(out)
    }

    /// Closes the notice under `key` if it still stands: false when none does.
    pub async fn close_notice(&self, sk: &str, why: &str, now_ms: i64) -> Result<bool, Error> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(sk)))
            .condition_expression("attribute_exists(pk) AND #state = :scheduled")
            .update_expression("SET #state = :closed, closed_ms = :now, closed_why = :why")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":scheduled", s(SCHEDULED))
            .expression_attribute_values(":closed", s(CLOSED))
            .expression_attribute_values(":now", super::n(now_ms))
            .expression_attribute_values(":why", s(why))
            .send()
            .await;
        Ok(unless_lost("dynamodb:UpdateItem", result)?.is_some())
    }

    /// Writes the notice's acting state if nobody wrote it since version `expected` (and it
    /// still stands when `expected` is its first); then lists it for the tick while a step
    /// is under way (`pk = notices-acting`), or unlists it. False: another invocation wrote
    /// first, nothing written.
    pub async fn write_notice(&self, r: &Recorded, expected: i64) -> Result<bool, Error> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(notice_item(r)?))
            // A record without a version reads as version 0.
            .condition_expression(
                "attribute_exists(pk) AND (attribute_not_exists(act_version) OR act_version = :v)",
            )
            .expression_attribute_values(":v", super::n(expected))
            .send()
            .await;
        if unless_lost("dynamodb:PutItem", result)?.is_none() {
            return Ok(false);
        }
        let pointer = HashMap::from([("pk".to_string(), s(ACTING)), ("sk".to_string(), s(&r.key))]);
        match r.acting.is_some() && r.state == SCHEDULED {
            true => {
                let mut item = pointer;
                item.insert("expires_at".into(), super::n(expires_at(r)));
                self.put(item).await?;
            }
            false => self.delete(pointer).await?,
        }
        Ok(true)
    }

    /// The keys of the notices with a step under way, for the tick (one `Query`).
    pub async fn acting_notices(&self) -> Result<Vec<String>, Error> {
        let items = self.partition(ACTING).await?;
        Ok(items
            .iter()
            .filter_map(|i| i.get("sk")?.as_s().ok().cloned())
            .collect())
    }

    /// Every notice recorded (standing or closed, until the TTL removes it).
    pub async fn notices(&self) -> Result<Vec<Recorded>, Error> {
        let items = self.partition(PARTITION).await?;
        Ok(items.iter().filter_map(notice_from_item).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_written_and_read_back_as_the_same_notice() {
        let r = Recorded {
            key: "us-east-1/i-1#instance-retirement#2026-12-07T03:00:00Z".into(),
            region: "us-east-1".into(),
            instance_id: "i-1".into(),
            kind: "instance-retirement".into(),
            heard_from: "DescribeInstanceStatus".into(),
            event_id: Some("instance-event-1".into()),
            event_arn: None,
            not_before_ms: Some(1_796_612_400_000),
            not_after_ms: None,
            deadline_ms: None,
            steps: vec!["tell people: x".into(), "stop and start it at y".into()],
            window: Some("Sun 03:00-05:00 UTC (the stack's default)".into()),
            dry_run: false,
            state: SCHEDULED.into(),
            heard_ms: 1_796_000_000_000,
            closed_ms: None,
            closed_why: None,
            plan: vec![crate::rules::notice::plan::Step::StopStart {
                at_ms: 1_796_608_800_000,
                image_first: true,
            }],
            done: 0,
            acting: Some(crate::rules::notice::record::Acting {
                step: 0,
                phase: "stopping".into(),
                since_ms: 1_796_608_800_000,
                begun_ms: 1_796_608_800_000,
                image_name: Some("autoheal-notice-i-1".into()),
                image_id: Some("ami-1".into()),
            }),
            act_version: 1,
            acted: vec![],
        };
        let item = notice_item(&r).unwrap();
        assert_eq!(item["pk"].as_s().unwrap(), "notices");
        assert_eq!(item["sk"].as_s().unwrap(), &r.key);
        assert_eq!(
            item["expires_at"].as_n().unwrap(),
            &(1_796_612_400 + 30 * 24 * 3600).to_string()
        );
        assert!(!item.contains_key("event_arn"), "no NULL attributes");
        assert_eq!(notice_from_item(&item), Some(r));
    }
}
