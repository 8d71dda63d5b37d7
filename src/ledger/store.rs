//! The seam between the pipeline and its state: every ledger operation the pipeline and the
//! run ask for, as a trait, so that tests can put an in-memory store in the ledger's place.
//! The production store is `Ledger` (DynamoDB), whose methods these delegate to.

use super::outbox::Kept;
use super::scope::Free;
use super::Ledger;
use crate::error::Error;
use crate::rules::backup::{Known, Made};
use crate::rules::breaker::State;
use crate::rules::history::Record;
use crate::rules::incident::Head;
use crate::rules::notice::record::Recorded;
use crate::rules::storm::Storm;
use std::collections::HashMap;

/// The breaker's members' latest alarm times and its state, as `note_alarm` and
/// `read_breaker` return them.
pub type Breaker = (Vec<(String, i64)>, State);

/// What the pipeline asks of the ledger. Every write named `write*`, `admit_if_free` and
/// `claim_summary` is conditional and answers false when another invocation got there
/// first; the keys are `model::keys::key`s or scope keys.
#[async_trait::async_trait(?Send)]
pub trait Store: Send + Sync {
    /// The head of `instance`.
    async fn read(&self, instance: &str) -> Result<Option<Head>, Error>;
    /// Writes `head` if the stored version is still `head.version - 1` (or none).
    async fn write(&self, head: &Head, now_secs: i64) -> Result<bool, Error>;
    /// Lists (or unlists) the instance in the open index the tick reads.
    async fn set_open(&self, instance: &str, open: bool, now_secs: i64) -> Result<(), Error>;
    /// The open index.
    async fn open_incidents(&self) -> Result<Vec<String>, Error>;
    /// The heads of `instances`, in batches; an instance without one is left out.
    async fn read_heads(&self, instances: &[String]) -> Result<HashMap<String, Head>, Error>;

    /// The backup run's record of `instance` (an empty one when none).
    async fn read_backups(&self, instance: &str) -> Result<Made, Error>;
    /// Writes `made` if the stored record is still at `made.version - 1`.
    async fn write_backups(
        &self,
        instance: &str,
        made: &Made,
        now_secs: i64,
    ) -> Result<bool, Error>;
    /// The head and the backup record of each instance.
    async fn backup_standing(&self, instances: &[String]) -> Result<HashMap<String, Known>, Error>;

    /// Notes `member`'s alarm in the breaker of `scope` and returns the breaker after it.
    async fn note_alarm(&self, scope: &str, member: &str, alarm_ms: i64) -> Result<Breaker, Error>;
    async fn read_breaker(&self, scope: &str) -> Result<Breaker, Error>;
    /// Writes the breaker's state if it is still at `state.version - 1`.
    async fn write_breaker(
        &self,
        scope: &str,
        state: &State,
        alarms: &[(String, i64)],
        now_ms: i64,
    ) -> Result<bool, Error>;

    /// Adds an open breaker's scope to the storm: true when it begins the storm.
    async fn join_storm(&self, scope: &str, now_ms: i64) -> Result<bool, Error>;
    /// Takes a scope out of the storm: the storm after, if this call took it out.
    async fn leave_storm(&self, scope: &str) -> Result<Option<Storm>, Error>;
    async fn read_storm(&self) -> Result<Storm, Error>;
    /// Claims the storm's next update if the last was told at `told_ms`.
    async fn claim_storm_update(
        &self,
        told_ms: Option<i64>,
        told: (usize, usize),
        now_ms: i64,
    ) -> Result<bool, Error>;

    /// The members a guard scope admitted (instance, incident) and its version (0: none).
    async fn read_scope(&self, scope: &str) -> Result<(Vec<(String, String)>, i64), Error>;
    /// Writes the scope's members if it is still at `version`.
    async fn write_scope(
        &self,
        scope: &str,
        members: &[(String, String)],
        version_newest: (i64, i64),
        now_secs: i64,
    ) -> Result<bool, Error>;
    /// Admits one member in every scope of `free` if each is free: all or none.
    async fn admit_if_free(&self, free: &[Free<'_>], now_secs: i64) -> Result<bool, Error>;
    /// The one summary message of `key` until `until_ms`: true for one caller per period.
    async fn claim_summary(&self, key: &str, now_ms: i64, until_ms: i64) -> Result<bool, Error>;

    /// One decision in the audit trail.
    async fn record(&self, r: &Record, now_secs: i64) -> Result<(), Error>;
    /// A report Slack did not take, kept for the tick to re-send.
    async fn keep_report(&self, payload: &serde_json::Value, now_ms: i64) -> Result<(), Error>;
    async fn kept_reports(&self) -> Result<Vec<Kept>, Error>;
    async fn forget_report(&self, sk: &str) -> Result<(), Error>;

    /// Records a notice first heard: false when it is recorded already (`ledger::notice`).
    async fn record_notice(&self, r: &Recorded) -> Result<bool, Error>;
    /// The recorded notices among `keys` (`rules::notice::record::key`s), by key.
    async fn recorded_notices(&self, keys: &[String]) -> Result<HashMap<String, Recorded>, Error>;
    /// Closes the notice under `key` if it still stands: false when none does.
    async fn close_notice(&self, key: &str, why: &str, now_ms: i64) -> Result<bool, Error>;
    /// Writes a notice's acting state if its version is still `expected`, listing it for
    /// the tick while a step is under way: false when another invocation wrote first.
    async fn write_notice(&self, r: &Recorded, expected: i64) -> Result<bool, Error>;
    /// The keys of the notices with a step under way.
    async fn acting_notices(&self) -> Result<Vec<String>, Error>;
}

#[async_trait::async_trait(?Send)]
impl Store for Ledger {
    async fn read(&self, instance: &str) -> Result<Option<Head>, Error> {
        Ledger::read(self, instance).await
    }
    async fn write(&self, head: &Head, now_secs: i64) -> Result<bool, Error> {
        Ledger::write(self, head, now_secs).await
    }
    async fn set_open(&self, instance: &str, open: bool, now_secs: i64) -> Result<(), Error> {
        Ledger::set_open(self, instance, open, now_secs).await
    }
    async fn open_incidents(&self) -> Result<Vec<String>, Error> {
        Ledger::open_incidents(self).await
    }
    async fn read_heads(&self, instances: &[String]) -> Result<HashMap<String, Head>, Error> {
        Ledger::read_heads(self, instances).await
    }
    async fn read_backups(&self, instance: &str) -> Result<Made, Error> {
        Ledger::read_backups(self, instance).await
    }
    async fn write_backups(
        &self,
        instance: &str,
        made: &Made,
        now_secs: i64,
    ) -> Result<bool, Error> {
        Ledger::write_backups(self, instance, made, now_secs).await
    }
    async fn backup_standing(&self, instances: &[String]) -> Result<HashMap<String, Known>, Error> {
        Ledger::backup_standing(self, instances).await
    }
    async fn note_alarm(&self, scope: &str, member: &str, alarm_ms: i64) -> Result<Breaker, Error> {
        Ledger::note_alarm(self, scope, member, alarm_ms).await
    }
    async fn read_breaker(&self, scope: &str) -> Result<Breaker, Error> {
        Ledger::read_breaker(self, scope).await
    }
    async fn write_breaker(
        &self,
        scope: &str,
        state: &State,
        alarms: &[(String, i64)],
        now_ms: i64,
    ) -> Result<bool, Error> {
        Ledger::write_breaker(self, scope, state, alarms, now_ms).await
    }
    async fn join_storm(&self, scope: &str, now_ms: i64) -> Result<bool, Error> {
        Ledger::join_storm(self, scope, now_ms).await
    }
    async fn leave_storm(&self, scope: &str) -> Result<Option<Storm>, Error> {
        Ledger::leave_storm(self, scope).await
    }
    async fn read_storm(&self) -> Result<Storm, Error> {
        Ledger::read_storm(self).await
    }
    async fn claim_storm_update(
        &self,
        told_ms: Option<i64>,
        told: (usize, usize),
        now_ms: i64,
    ) -> Result<bool, Error> {
        Ledger::claim_storm_update(self, told_ms, told, now_ms).await
    }
    async fn read_scope(&self, scope: &str) -> Result<(Vec<(String, String)>, i64), Error> {
        Ledger::read_scope(self, scope).await
    }
    async fn write_scope(
        &self,
        scope: &str,
        members: &[(String, String)],
        version_newest: (i64, i64),
        now_secs: i64,
    ) -> Result<bool, Error> {
        Ledger::write_scope(self, scope, members, version_newest, now_secs).await
    }
    async fn admit_if_free(&self, free: &[Free<'_>], now_secs: i64) -> Result<bool, Error> {
        Ledger::admit_if_free(self, free, now_secs).await
    }
    async fn claim_summary(&self, key: &str, now_ms: i64, until_ms: i64) -> Result<bool, Error> {
        Ledger::claim_summary(self, key, now_ms, until_ms).await
    }
    async fn record(&self, r: &Record, now_secs: i64) -> Result<(), Error> {
        Ledger::record(self, r, now_secs).await
    }
    async fn keep_report(&self, payload: &serde_json::Value, now_ms: i64) -> Result<(), Error> {
        Ledger::keep_report(self, payload, now_ms).await
    }
    async fn kept_reports(&self) -> Result<Vec<Kept>, Error> {
        Ledger::kept_reports(self).await
    }
    async fn forget_report(&self, sk: &str) -> Result<(), Error> {
        Ledger::forget_report(self, sk).await
    }
    async fn record_notice(&self, r: &Recorded) -> Result<bool, Error> {
        Ledger::record_notice(self, r).await
    }
    async fn recorded_notices(&self, keys: &[String]) -> Result<HashMap<String, Recorded>, Error> {
        Ledger::recorded_notices(self, keys).await
    }
    async fn close_notice(&self, key: &str, why: &str, now_ms: i64) -> Result<bool, Error> {
        Ledger::close_notice(self, key, why, now_ms).await
    }
    async fn write_notice(&self, r: &Recorded, expected: i64) -> Result<bool, Error> {
        Ledger::write_notice(self, r, expected).await
    }
    async fn acting_notices(&self) -> Result<Vec<String>, Error> {
        Ledger::acting_notices(self).await
    }
}
