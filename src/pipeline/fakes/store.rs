//! The ledger in memory, with the conditions of its writes exactly as DynamoDB applies them
//! (`src/ledger/`): each write is recorded in the journal, stuck or lost. Every operation
//! yields first, so that invocations joined in one test interleave at each ledger call as
//! they would against the table.

use super::{Failures, Journal, Seen};
use crate::error::Error;
use crate::ledger::outbox::Kept;
use crate::ledger::scope::Free;
use crate::ledger::store::{Breaker, Store};
use crate::rules::backup::{Known, Made};
use crate::rules::breaker::State;
use crate::rules::history::Record;
use crate::rules::incident::Head;
use crate::rules::notice::record::{Recorded, CLOSED, SCHEDULED};
use crate::rules::storm::Storm;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;

/// A guard scope's item.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    pub members: Vec<(String, String)>,
    pub newest_ms: Option<i64>,
    pub version: i64,
}

/// A breaker's item: the members' latest alarms, and the state once written (`version`
/// None: notes alone, never written).
#[derive(Debug, Clone, Default)]
pub struct BreakerItem {
    pub alarms: BTreeMap<String, i64>,
    pub open_since_ms: Option<i64>,
    pub cleared_ms: i64,
    pub version: Option<i64>,
    pub shift: Option<String>,
}

/// What the table holds.
#[derive(Default)]
pub struct Tables {
    pub heads: HashMap<String, Head>,
    pub open: BTreeSet<String>,
    pub backups: HashMap<String, Made>,
    pub breakers: HashMap<String, BreakerItem>,
    pub scopes: HashMap<String, Scope>,
    pub summaries: HashMap<String, i64>,
    pub storm: Storm,
    pub records: Vec<Record>,
    pub outbox: Vec<Kept>,
    pub notices: BTreeMap<String, Recorded>,
}

/// Another invocation's doing, run just before the `nth` call (from 1) of an operation.
type Meddling = (&'static str, usize, Box<dyn FnOnce(&mut Tables) + Send>);

pub struct MemStore {
    journal: Journal,
    failures: Failures,
    tables: Mutex<Tables>,
    calls: Mutex<HashMap<&'static str, usize>>,
    meddling: Mutex<Vec<Meddling>>,
}

/// Alarm notes older than this are dropped by `write_breaker`, as the ledger drops them.
const ALARM_RETENTION_MS: i64 = 24 * 3600 * 1000;

impl MemStore {
    pub fn new(journal: Journal) -> MemStore {
        MemStore {
            journal,
            failures: Failures::default(),
            tables: Mutex::default(),
            calls: Mutex::default(),
            meddling: Mutex::default(),
        }
    }

    /// The next call of `op` (a `Store` method's name) fails.
    pub fn fail_once(&self, op: &'static str, transient: bool) {
        self.failures.arm(op, transient);
    }

    /// Runs `change` on the tables just before the `nth` call of `op`: another invocation's
    /// write between two of this one's.
    pub fn before(
        &self,
        op: &'static str,
        nth: usize,
        change: impl FnOnce(&mut Tables) + Send + 'static,
    ) {
        self.meddling
            .lock()
            .unwrap()
            .push((op, nth, Box::new(change)));
    }

    /// A look at the tables, or a change between two runs as another invocation would.
    pub fn with<T>(&self, look: impl FnOnce(&mut Tables) -> T) -> T {
        look(&mut self.tables.lock().unwrap())
    }

    /// How many times `op` (a `Store` method's name) was called.
    pub fn calls(&self, op: &'static str) -> usize {
        self.calls.lock().unwrap().get(op).copied().unwrap_or(0)
    }

    /// How many operations were called, all kinds together.
    pub fn total_calls(&self) -> usize {
        self.calls.lock().unwrap().values().sum()
    }

    pub fn head(&self, key: &str) -> Option<Head> {
        self.with(|t| t.heads.get(key).cloned())
    }

    /// Counts the call, lets others run, applies what was set to happen before it, and
    /// gives the failure armed for it.
    async fn enter(&self, op: &'static str) -> Result<(), Error> {
        tokio::task::yield_now().await;
        let nth = {
            let mut calls = self.calls.lock().unwrap();
            let n = calls.entry(op).or_default();
            *n += 1;
            *n
        };
        let due: Vec<Meddling> = {
            let mut meddling = self.meddling.lock().unwrap();
            let (due, later) = meddling
                .drain(..)
                .partition(|(o, n, _)| *o == op && *n == nth);
            *meddling = later;
            due
        };
        for (_, _, change) in due {
            change(&mut self.tables.lock().unwrap());
        }
        self.failures.take(op)
    }

    /// A write: `apply` says whether it stuck; the journal has it either way.
    async fn write_with(
        &self,
        op: &'static str,
        key: &str,
        apply: impl FnOnce(&mut Tables) -> bool,
    ) -> Result<bool, Error> {
        self.enter(op).await?;
        let stuck = apply(&mut self.tables.lock().unwrap());
        self.journal.push(Seen::Wrote {
            op,
            key: key.to_string(),
            stuck,
        });
        Ok(stuck)
    }

    async fn read_with<T>(
        &self,
        op: &'static str,
        look: impl FnOnce(&Tables) -> T,
    ) -> Result<T, Error> {
        self.enter(op).await?;
        Ok(self.with(|t| look(t)))
    }
}

fn breaker_of(item: Option<&BreakerItem>) -> Breaker {
    let Some(b) = item else {
        return (vec![], State::default());
    };
    let state = State {
        open_since_ms: b.open_since_ms,
        cleared_ms: b.cleared_ms,
        version: b.version.unwrap_or(0),
        shift: b.shift.clone(),
    };
    (
        b.alarms.iter().map(|(m, t)| (m.clone(), *t)).collect(),
        state,
    )
}

/// A scope `Free` can take: no item, no member, or (a window) its newest alarm at or
/// before the window's start.
fn is_free(scope: Option<&Scope>, f: &Free<'_>) -> bool {
    let Some(s) = scope else {
        return true;
    };
    s.members.is_empty()
        || f.window_start_ms
            .is_some_and(|start| s.newest_ms.is_some_and(|n| n <= start))
}

#[async_trait::async_trait(?Send)]
impl Store for MemStore {
    async fn read(&self, instance: &str) -> Result<Option<Head>, Error> {
        self.read_with("read", |t| t.heads.get(instance).cloned())
            .await
    }
    async fn write(&self, head: &Head, _: i64) -> Result<bool, Error> {
        let key = head.key();
        self.write_with("write", &key.clone(), |t| {
            let free = t
                .heads
                .get(&key)
                .is_none_or(|h| h.version == head.version - 1);
            if free {
                t.heads.insert(key, head.clone());
            }
            free
        })
        .await
    }
    async fn set_open(&self, instance: &str, open: bool, _: i64) -> Result<(), Error> {
        self.write_with("set_open", instance, |t| {
            match open {
                true => t.open.insert(instance.to_string()),
                false => t.open.remove(instance),
            };
            true
        })
        .await
        .map(|_| ())
    }
    async fn open_incidents(&self) -> Result<Vec<String>, Error> {
        self.read_with("open_incidents", |t| t.open.iter().cloned().collect())
            .await
    }
    async fn read_heads(&self, instances: &[String]) -> Result<HashMap<String, Head>, Error> {
        self.read_with("read_heads", |t| {
            instances
                .iter()
                .filter_map(|i| Some((i.clone(), t.heads.get(i)?.clone())))
                .collect()
        })
        .await
    }
    async fn read_backups(&self, instance: &str) -> Result<Made, Error> {
        self.read_with("read_backups", |t| {
            t.backups.get(instance).cloned().unwrap_or_default()
        })
        .await
    }
    async fn write_backups(&self, instance: &str, made: &Made, _: i64) -> Result<bool, Error> {
        self.write_with("write_backups", instance, |t| {
            let free = t
                .backups
                .get(instance)
                .is_none_or(|m| m.version == made.version - 1);
            if free {
                t.backups.insert(instance.to_string(), made.clone());
            }
            free
        })
        .await
    }
    async fn backup_standing(&self, instances: &[String]) -> Result<HashMap<String, Known>, Error> {
        // Only instances with an item, as a batched read returns them.
        self.read_with("backup_standing", |t| {
            instances
                .iter()
                .filter(|i| t.heads.contains_key(*i) || t.backups.contains_key(*i))
                .map(|i| {
                    let known = Known {
                        head: t.heads.get(i).cloned(),
                        made: t.backups.get(i).cloned().unwrap_or_default(),
                    };
                    (i.clone(), known)
                })
                .collect()
        })
        .await
    }
    async fn note_alarm(&self, scope: &str, member: &str, alarm_ms: i64) -> Result<Breaker, Error> {
        self.write_with("note_alarm", scope, |t| {
            let item = t.breakers.entry(scope.to_string()).or_default();
            let noted = item.alarms.get(member).is_none_or(|t| *t < alarm_ms);
            if noted {
                item.alarms.insert(member.to_string(), alarm_ms);
            }
            noted
        })
        .await?;
        self.with(|t| Ok(breaker_of(t.breakers.get(scope))))
    }
    async fn read_breaker(&self, scope: &str) -> Result<Breaker, Error> {
        self.read_with("read_breaker", |t| breaker_of(t.breakers.get(scope)))
            .await
    }
    async fn write_breaker(
        &self,
        scope: &str,
        state: &State,
        alarms: &[(String, i64)],
        now_ms: i64,
    ) -> Result<bool, Error> {
        self.write_with("write_breaker", scope, |t| {
            let item = t.breakers.entry(scope.to_string()).or_default();
            if item.version.is_some_and(|v| v != state.version - 1) {
                return false;
            }
            item.open_since_ms = state.open_since_ms;
            item.cleared_ms = state.cleared_ms;
            item.version = Some(state.version);
            item.shift = state.shift.clone();
            for (member, at) in alarms {
                if *at < now_ms - ALARM_RETENTION_MS {
                    item.alarms.remove(member);
                }
            }
            true
        })
        .await
    }
    async fn join_storm(&self, scope: &str, now_ms: i64) -> Result<bool, Error> {
        let began = std::sync::atomic::AtomicBool::new(false);
        self.write_with("join_storm", scope, |t| {
            let first = t.storm.open.is_empty();
            t.storm.open.insert(scope.to_string());
            if first {
                t.storm.since_ms = Some(now_ms);
                t.storm.told_ms = Some(now_ms);
                t.storm.told = (1, 0);
            }
            began.store(first, std::sync::atomic::Ordering::Relaxed);
            true
        })
        .await?;
        Ok(began.into_inner())
    }
    async fn leave_storm(&self, scope: &str) -> Result<Option<Storm>, Error> {
        let mut after = None;
        self.write_with("leave_storm", scope, |t| {
            let left = t.storm.open.remove(scope);
            if left {
                after = Some(t.storm.clone());
            }
            left
        })
        .await?;
        Ok(after)
    }
    async fn read_storm(&self) -> Result<Storm, Error> {
        self.read_with("read_storm", |t| t.storm.clone()).await
    }
    async fn claim_storm_update(
        &self,
        told_ms: Option<i64>,
        told: (usize, usize),
        now_ms: i64,
    ) -> Result<bool, Error> {
        self.write_with("claim_storm_update", "storm", |t| {
            if t.storm.told_ms != told_ms {
                return false;
            }
            t.storm.told_ms = Some(now_ms);
            t.storm.told = told;
            true
        })
        .await
    }
    async fn read_scope(&self, scope: &str) -> Result<(Vec<(String, String)>, i64), Error> {
        self.read_with("read_scope", |t| {
            t.scopes
                .get(scope)
                .map_or((vec![], 0), |s| (s.members.clone(), s.version))
        })
        .await
    }
    async fn write_scope(
        &self,
        scope: &str,
        members: &[(String, String)],
        (version, newest_ms): (i64, i64),
        _: i64,
    ) -> Result<bool, Error> {
        self.write_with("write_scope", scope, |t| {
            if t.scopes.get(scope).is_some_and(|s| s.version != version) {
                return false;
            }
            let written = Scope {
                members: members.to_vec(),
                newest_ms: Some(newest_ms),
                version: version + 1,
            };
            t.scopes.insert(scope.to_string(), written);
            true
        })
        .await
    }
    async fn admit_if_free(&self, free: &[Free<'_>], _: i64) -> Result<bool, Error> {
        let keys: Vec<&str> = free.iter().map(|f| f.scope.as_str()).collect();
        self.write_with("admit_if_free", &keys.join(" "), |t| {
            // All or none, as one transaction.
            if !free.iter().all(|f| is_free(t.scopes.get(&f.scope), f)) {
                return false;
            }
            for f in free {
                let s = t.scopes.entry(f.scope.clone()).or_default();
                s.members = vec![(f.member.0.to_string(), f.member.1.to_string())];
                s.newest_ms = Some(f.alarm_ms);
                s.version += 1;
            }
            true
        })
        .await
    }
    async fn claim_summary(&self, key: &str, now_ms: i64, until_ms: i64) -> Result<bool, Error> {
        self.write_with("claim_summary", key, |t| {
            let free = t.summaries.get(key).is_none_or(|u| *u <= now_ms);
            if free {
                t.summaries.insert(key.to_string(), until_ms);
            }
            free
        })
        .await
    }
    async fn record(&self, r: &Record, _: i64) -> Result<(), Error> {
        self.write_with("record", &r.instance_id, |t| {
            t.records.push(r.clone());
            true
        })
        .await
        .map(|_| ())
    }
    async fn keep_report(&self, payload: &serde_json::Value, now_ms: i64) -> Result<(), Error> {
        self.write_with("keep_report", "outbox", |t| {
            let sk = format!("{now_ms}#{}", t.outbox.len());
            t.outbox.push(Kept {
                sk,
                created_ms: now_ms,
                payload: payload.clone(),
            });
            true
        })
        .await
        .map(|_| ())
    }
    async fn kept_reports(&self) -> Result<Vec<Kept>, Error> {
        self.read_with("kept_reports", |t| t.outbox.clone()).await
    }
    async fn forget_report(&self, sk: &str) -> Result<(), Error> {
        self.write_with("forget_report", sk, |t| {
            t.outbox.retain(|k| k.sk != sk);
            true
        })
        .await
        .map(|_| ())
    }
    async fn record_notice(&self, r: &Recorded) -> Result<bool, Error> {
        self.write_with("record_notice", &r.key, |t| {
            let new = !t.notices.contains_key(&r.key);
            if new {
                t.notices.insert(r.key.clone(), r.clone());
            }
            new
        })
        .await
    }
    async fn recorded_notices(&self, keys: &[String]) -> Result<HashMap<String, Recorded>, Error> {
        self.read_with("recorded_notices", |t| {
            let known = keys.iter().filter_map(|k| t.notices.get(k));
            known.map(|r| (r.key.clone(), r.clone())).collect()
        })
        .await
    }
    async fn close_notice(&self, key: &str, why: &str, now_ms: i64) -> Result<bool, Error> {
        self.write_with("close_notice", key, |t| match t.notices.get_mut(key) {
            Some(r) if r.state == SCHEDULED => {
                r.state = CLOSED.into();
                (r.closed_ms, r.closed_why) = (Some(now_ms), Some(why.into()));
                true
            }
            _ => false,
        })
        .await
    }
    async fn write_notice(&self, r: &Recorded, expected: i64) -> Result<bool, Error> {
        let stuck = |t: &mut Tables| match t.notices.get_mut(&r.key) {
            Some(now) if now.act_version == expected => {
                *now = r.clone();
                true
            }
            _ => false,
        };
        self.write_with("write_notice", &r.key, stuck).await
    }
    async fn acting_notices(&self) -> Result<Vec<String>, Error> {
        let keys = |t: &Tables| -> Vec<String> {
            let acting = t
                .notices
                .values()
                .filter(|r| r.acting.is_some() && r.state == SCHEDULED);
            acting.map(|r| r.key.clone()).collect()
        };
        self.read_with("acting_notices", keys).await
    }
}
