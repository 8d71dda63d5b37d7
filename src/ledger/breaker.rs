//! The breaker's items (`pk = breaker#group:<name>@<region>` or `…cluster:…`): one per
//! alarming member (`sk = alarm#<instance>`, its latest alarm time), written without
//! contention, and the state (`sk = state`), changed only on the version read. One Query
//! reads both.

use super::{n, s, Item, Ledger};
use crate::error::Error;
use crate::rules::breaker::State;

/// Alarm items outlive any window and cool-down worth having.
const ALARM_RETENTION_SECONDS: i64 = 24 * 3600;

fn pk(scope: &str) -> String {
    format!("breaker#{scope}")
}

fn number(item: &Item, name: &str) -> Option<i64> {
    item.get(name)?.as_n().ok()?.parse().ok()
}

impl Ledger {
    /// Notes that `instance` alarmed at `alarm_ms`; a later alarm already noted stays.
    pub async fn note_alarm(
        &self,
        scope: &str,
        instance: &str,
        alarm_ms: i64,
        now_secs: i64,
    ) -> Result<(), Error> {
        let item: Item = [
            ("pk".to_string(), s(&pk(scope))),
            ("sk".to_string(), s(&format!("alarm#{instance}"))),
            ("alarm_ms".to_string(), n(alarm_ms)),
            (
                "expires_at".to_string(),
                n(now_secs + ALARM_RETENTION_SECONDS),
            ),
        ]
        .into();
        // False: a later alarm of this member is noted already.
        self.put_if(
            item,
            "attribute_not_exists(pk) OR alarm_ms < :t",
            (":t", n(alarm_ms)),
        )
        .await?;
        Ok(())
    }

    /// The members' latest alarm times and the breaker's state.
    pub async fn read_breaker(&self, scope: &str) -> Result<(Vec<(String, i64)>, State), Error> {
        let (mut alarms, mut state) = (vec![], State::default());
        for item in self.partition(&pk(scope)).await? {
            match item
                .get("sk")
                .and_then(|v| v.as_s().ok())
                .map(String::as_str)
            {
                Some("state") => {
                    state = State {
                        open_since_ms: number(&item, "open_since_ms"),
                        cleared_ms: number(&item, "cleared_ms").unwrap_or(0),
                        version: number(&item, "version").unwrap_or(0),
                    }
                }
                Some(sk) => {
                    if let (Some(id), Some(t)) =
                        (sk.strip_prefix("alarm#"), number(&item, "alarm_ms"))
                    {
                        alarms.push((id.to_string(), t));
                    }
                }
                None => {}
            }
        }
        Ok((alarms, state))
    }

    /// Writes `state` if nobody changed it since `state.version - 1` was read.
    pub async fn write_breaker(
        &self,
        scope: &str,
        state: &State,
        now_secs: i64,
    ) -> Result<bool, Error> {
        let mut item: Item = [
            ("pk".to_string(), s(&pk(scope))),
            ("sk".to_string(), s("state")),
            ("cleared_ms".to_string(), n(state.cleared_ms)),
            ("version".to_string(), n(state.version)),
            ("updated_at".to_string(), n(now_secs)),
        ]
        .into();
        if let Some(since) = state.open_since_ms {
            item.insert("open_since_ms".into(), n(since));
        }
        self.put_if_version(item, state.version - 1).await
    }
}
