//! The breaker of one scope, one item (`pk = breaker#group:<name>@<region>` or
//! `…cluster:…`, `sk = state`): its state (changed only on the version read) and each
//! alarming member's latest alarm time (`alarm#<member>`). Noting an alarm returns the item
//! as it is after the note, so one call both counts and reads: of members failing at once,
//! the one whose note crosses the threshold sees every note before its own.

use super::{n, s, unless_lost, Item, Ledger};
use crate::error::Error;
use crate::rules::breaker::State;
use aws_sdk_dynamodb::types::ReturnValue;

/// Alarm times older than this are dropped when the state is next written.
const ALARM_RETENTION_MS: i64 = 24 * 3600 * 1000;

const ALARM: &str = "alarm#";

fn key(scope: &str) -> Item {
    [
        ("pk".to_string(), s(&format!("breaker#{scope}"))),
        ("sk".to_string(), s("state")),
    ]
    .into()
}

fn number(item: &Item, name: &str) -> Option<i64> {
    item.get(name)?.as_n().ok()?.parse().ok()
}

/// The members' latest alarm times and the state, from the item (none: nothing noted).
fn parse(item: Option<&Item>) -> (Vec<(String, i64)>, State) {
    let Some(item) = item else {
        return (vec![], State::default());
    };
    let mut alarms: Vec<(String, i64)> = item
        .iter()
        .filter_map(|(name, v)| {
            let member = name.strip_prefix(ALARM)?;
            Some((member.to_string(), v.as_n().ok()?.parse().ok()?))
        })
        .collect();
    alarms.sort();
    let state = State {
        open_since_ms: number(item, "open_since_ms"),
        cleared_ms: number(item, "cleared_ms").unwrap_or(0),
        version: number(item, "version").unwrap_or(0),
        shift: item
            .get("shift")
            .and_then(|v| v.as_s().ok())
            .map(String::from),
    };
    (alarms, state)
}

impl Ledger {
    /// Notes that `member` alarmed at `alarm_ms` (a later alarm already noted stays) and
    /// returns the breaker as it is after the note.
    pub async fn note_alarm(
        &self,
        scope: &str,
        member: &str,
        alarm_ms: i64,
    ) -> Result<(Vec<(String, i64)>, State), Error> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(scope)))
            .update_expression("SET #a = :t")
            .condition_expression("attribute_not_exists(#a) OR #a < :t")
            .expression_attribute_names("#a", format!("{ALARM}{member}"))
            .expression_attribute_values(":t", n(alarm_ms))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match unless_lost("dynamodb:UpdateItem", out)? {
            Some(out) => Ok(parse(out.attributes())),
            // A later alarm of this member is noted already: read the item as it is.
            None => self.read_breaker(scope).await,
        }
    }

    /// The members' latest alarm times and the breaker's state.
    pub async fn read_breaker(&self, scope: &str) -> Result<(Vec<(String, i64)>, State), Error> {
        Ok(parse(self.get(key(scope)).await?.as_ref()))
    }

    /// Writes `state` if nobody changed it since `state.version - 1` was read; the alarms
    /// kept (`alarms`, as read) are left as they are, but those older than a day are
    /// dropped. Notes made meanwhile do not change the version: they are kept.
    pub async fn write_breaker(
        &self,
        scope: &str,
        state: &State,
        alarms: &[(String, i64)],
        now_ms: i64,
    ) -> Result<bool, Error> {
        let mut set = vec!["cleared_ms = :c", "version = :v", "updated_at = :u"];
        let mut remove = vec![];
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(scope)))
            .expression_attribute_values(":c", n(state.cleared_ms))
            .expression_attribute_values(":v", n(state.version))
            .expression_attribute_values(":u", n(now_ms / 1000))
            .expression_attribute_values(":prev", n(state.version - 1));
        match state.open_since_ms {
            Some(since) => {
                set.push("open_since_ms = :o");
                update = update.expression_attribute_values(":o", n(since));
            }
            None => remove.push("open_since_ms".to_string()),
        }
        match &state.shift {
            Some(shift) => {
                set.push("shift = :shift");
                update = update.expression_attribute_values(":shift", s(shift));
            }
            None => remove.push("shift".to_string()),
        }
        let stale = alarms
            .iter()
            .filter(|(_, t)| *t < now_ms - ALARM_RETENTION_MS);
        for (i, (member, _)) in stale.enumerate() {
            remove.push(format!("#s{i}"));
            update =
                update.expression_attribute_names(format!("#s{i}"), format!("{ALARM}{member}"));
        }
        let mut expression = format!("SET {}", set.join(", "));
        if !remove.is_empty() {
            expression.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }
        let out = update
            .update_expression(expression)
            // An item of notes alone has no version yet: it was read as version 0.
            .condition_expression("attribute_not_exists(version) OR version = :prev")
            .send()
            .await;
        Ok(unless_lost("dynamodb:UpdateItem", out)?.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_item_reads_as_alarms_and_state() {
        let item: Item = [
            ("pk".to_string(), s("breaker#group:web@us-east-1")),
            ("sk".to_string(), s("state")),
            ("alarm#us-east-1/i-1".to_string(), n(5)),
            ("alarm#us-east-1/i-2".to_string(), n(7)),
            ("open_since_ms".to_string(), n(9)),
            ("cleared_ms".to_string(), n(3)),
            ("version".to_string(), n(2)),
        ]
        .into();
        let (alarms, state) = parse(Some(&item));
        assert_eq!(
            alarms,
            vec![
                ("us-east-1/i-1".to_string(), 5),
                ("us-east-1/i-2".to_string(), 7)
            ]
        );
        assert_eq!(
            state,
            State {
                open_since_ms: Some(9),
                cleared_ms: 3,
                version: 2,
                shift: None,
            }
        );
        assert_eq!(parse(None), (vec![], State::default()));
    }
}
