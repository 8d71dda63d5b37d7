//! The storm item (`pk = storm#account`, `sk = head`): the scopes whose breaker is open (a
//! string set), since when, and what people were last told. Joining and leaving are atomic
//! set updates, so exactly one invocation sees the storm begin and one sees it end.

use super::{n, s, unless_lost, Item, Ledger, RETENTION_SECONDS};
use crate::error::Error;
use crate::rules::storm::Storm;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};

fn key() -> Item {
    [
        ("pk".to_string(), s("storm#account")),
        ("sk".to_string(), s("head")),
    ]
    .into()
}

fn number(item: &Item, name: &str) -> Option<i64> {
    item.get(name)?.as_n().ok()?.parse().ok()
}

fn parse(item: Option<&Item>) -> Storm {
    let Some(item) = item else {
        return Storm::default();
    };
    let count = |name| number(item, name).unwrap_or(0).max(0) as usize;
    Storm {
        open: item
            .get("open")
            .and_then(|v| v.as_ss().ok())
            .map(|set| set.iter().cloned().collect())
            .unwrap_or_default(),
        since_ms: number(item, "since_ms"),
        told_ms: number(item, "told_ms"),
        told: (count("told_open"), count("told_held")),
    }
}

impl Ledger {
    /// Adds `scope`'s open breaker to the storm. True: no breaker was open before, this one
    /// begins the storm (and the storm's times are reset to `now_ms`: its opening message
    /// is told now).
    pub async fn join_storm(&self, scope: &str, now_ms: i64) -> Result<bool, Error> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key()))
            .update_expression("ADD #open :s SET expires_at = :e")
            .expression_attribute_names("#open", "open")
            .expression_attribute_values(":s", AttributeValue::Ss(vec![scope.to_string()]))
            .expression_attribute_values(":e", n(now_ms / 1000 + RETENTION_SECONDS))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| Error::from_sdk("dynamodb:UpdateItem", e))?;
        if !parse(out.attributes()).open.is_empty() {
            return Ok(false);
        }
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key()))
            .update_expression(
                "SET since_ms = :now, told_ms = :now, told_open = :one, told_held = :zero",
            )
            .expression_attribute_values(":now", n(now_ms))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":zero", n(0))
            .send()
            .await
            .map_err(|e| Error::from_sdk("dynamodb:UpdateItem", e))?;
        Ok(true)
    }

    /// Takes `scope` out of the storm. `Some`: this call took it out, and the storm as it
    /// is after (no breaker open: the storm ended with it); None: it was not in.
    pub async fn leave_storm(&self, scope: &str) -> Result<Option<Storm>, Error> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key()))
            .update_expression("DELETE #open :s")
            .condition_expression("contains(#open, :member)")
            .expression_attribute_names("#open", "open")
            .expression_attribute_values(":s", AttributeValue::Ss(vec![scope.to_string()]))
            .expression_attribute_values(":member", s(scope))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        let out = unless_lost("dynamodb:UpdateItem", out)?;
        Ok(out.map(|out| parse(out.attributes())))
    }

    pub async fn read_storm(&self) -> Result<Storm, Error> {
        Ok(parse(self.get(key()).await?.as_ref()))
    }

    /// Claims the storm's next update: true for the one caller that finds the last message
    /// still at `told_ms`; it records `told` (breakers open, repairs held) at `now_ms`.
    pub async fn claim_storm_update(
        &self,
        told_ms: Option<i64>,
        told: (usize, usize),
        now_ms: i64,
    ) -> Result<bool, Error> {
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key()))
            .update_expression("SET told_ms = :now, told_open = :o, told_held = :h")
            .expression_attribute_values(":now", n(now_ms))
            .expression_attribute_values(":o", n(told.0 as i64))
            .expression_attribute_values(":h", n(told.1 as i64));
        update = match told_ms {
            Some(t) => update
                .condition_expression("told_ms = :prev")
                .expression_attribute_values(":prev", n(t)),
            None => update.condition_expression("attribute_not_exists(told_ms)"),
        };
        Ok(unless_lost("dynamodb:UpdateItem", update.send().await)?.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_item_reads_as_a_storm() {
        let item: Item = [
            ("pk".to_string(), s("storm#account")),
            ("sk".to_string(), s("head")),
            (
                "open".to_string(),
                AttributeValue::Ss(vec!["zone:a@r".into(), "group:w@r".into()]),
            ),
            ("since_ms".to_string(), n(5)),
            ("told_ms".to_string(), n(7)),
            ("told_open".to_string(), n(2)),
            ("told_held".to_string(), n(30)),
        ]
        .into();
        let storm = parse(Some(&item));
        assert_eq!(
            storm.open.iter().map(String::as_str).collect::<Vec<_>>(),
            ["group:w@r", "zone:a@r"]
        );
        assert_eq!(
            (storm.since_ms, storm.told_ms, storm.told),
            (Some(5), Some(7), (2, 30))
        );
        assert_eq!(parse(None), Storm::default());
    }
}
