//! In-memory fakes of the three seams (`Store`, `Fleet`, `Teller`) for unit tests of the
//! pipeline's ordering: no emulator, milliseconds. The three share one journal, so a test
//! reads the order of writes, calls and reports across them.

mod fleet;
mod notice_steps;
mod notices;
mod store;
mod storm;
mod tests;
mod tick_cost;

pub use fleet::{FakeFleet, Machine};
pub use store::MemStore;

use crate::app::clock::Clock;
use crate::app::config::Config;
use crate::app::Deps;
use crate::error::Error;
use crate::notify::{Delivery, Sink, Teller};
use std::sync::{Arc, Mutex};

/// What the fakes saw, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Seen {
    /// A store write (the trait method), its key, and whether it stuck (a conditional write
    /// that lost did not).
    Wrote {
        op: &'static str,
        key: String,
        stuck: bool,
    },
    /// A fleet call (the trait method), what it was about, and whether it changes the world.
    Called {
        call: &'static str,
        target: String,
        mutating: bool,
    },
    /// A report delivered: its text.
    Told(String),
}

/// The fakes' shared record.
#[derive(Clone, Default)]
pub struct Journal(Arc<Mutex<Vec<Seen>>>);

impl Journal {
    pub fn push(&self, seen: Seen) {
        self.0.lock().unwrap().push(seen);
    }

    pub fn all(&self) -> Vec<Seen> {
        self.0.lock().unwrap().clone()
    }

    /// The texts of the reports delivered, in order.
    pub fn told(&self) -> Vec<String> {
        let all = self.all().into_iter();
        all.filter_map(|s| match s {
            Seen::Told(text) => Some(text),
            _ => None,
        })
        .collect()
    }

    /// Where the first entry `matching` is, if any.
    pub fn position(&self, matching: impl Fn(&Seen) -> bool) -> Option<usize> {
        self.all().iter().position(matching)
    }

    /// The fleet calls that change the world.
    pub fn mutating_calls(&self) -> Vec<&'static str> {
        self.all()
            .iter()
            .filter_map(|s| match s {
                Seen::Called {
                    call,
                    mutating: true,
                    ..
                } => Some(*call),
                _ => None,
            })
            .collect()
    }
}

/// Failures a fake is told to give once, per operation.
#[derive(Default)]
pub struct Failures(Mutex<Vec<(&'static str, bool)>>);

impl Failures {
    /// The next call of `op` fails, transiently (a retry helps) or for good.
    pub fn arm(&self, op: &'static str, transient: bool) {
        self.0.lock().unwrap().push((op, transient));
    }

    /// The failure armed for `op`, used up.
    pub fn take(&self, op: &'static str) -> Result<(), Error> {
        let mut armed = self.0.lock().unwrap();
        let Some(at) = armed.iter().position(|(o, _)| *o == op) else {
            return Ok(());
        };
        let (_, transient) = armed.remove(at);
        let detail = format!("{op} failed as the test asked");
        Err(match transient {
            true => Error::Transient { op, detail },
            false => Error::Permanent {
                op,
                code: None,
                detail,
            },
        })
    }
}

/// Records every report; delivered to the log.
pub struct RecordingTeller {
    journal: Journal,
    pub payloads: Mutex<Vec<serde_json::Value>>,
}

#[async_trait::async_trait(?Send)]
impl Teller for RecordingTeller {
    async fn send_by(&self, payload: &serde_json::Value, _: i64, _: i64) -> Delivery {
        let text = payload["text"].as_str().unwrap_or_default().to_string();
        self.journal.push(Seen::Told(text));
        self.payloads.lock().unwrap().push(payload.clone());
        Delivery::Sent(Sink::Log)
    }
    fn sink(&self) -> Sink {
        Sink::Log
    }
    fn prefetch(self: Arc<Self>) {}
}

pub const REGION: &str = "us-east-1";
pub const ACCOUNT: &str = "123456789012";

/// The fakes, wired into `Deps` as the function would see them, on a manual clock.
pub struct Bench {
    pub journal: Journal,
    pub store: Arc<MemStore>,
    pub fleet: Arc<FakeFleet>,
    pub teller: Arc<RecordingTeller>,
    pub deps: Deps,
}

impl Bench {
    /// `env`: configuration beyond the table and the region; `machines`: the fleet.
    pub fn new(env: &[(&str, &str)], machines: Vec<Machine>, now_ms: i64) -> Bench {
        let journal = Journal::default();
        let store = Arc::new(MemStore::new(journal.clone()));
        let fleet = Arc::new(FakeFleet::new(journal.clone(), machines));
        let teller = Arc::new(RecordingTeller {
            journal: journal.clone(),
            payloads: Mutex::default(),
        });
        let mut vars: Vec<(&str, &str)> = vec![("AUTOHEAL_TABLE", "t"), ("AWS_REGION", REGION)];
        vars.extend_from_slice(env);
        let config = Config::from_lookup(|k| {
            vars.iter()
                .rev()
                .find(|(name, _)| *name == k)
                .map(|(_, v)| v.to_string())
        })
        .unwrap();
        let deps = Deps::with(
            store.clone(),
            fleet.clone(),
            teller.clone(),
            config,
            Clock::manual(now_ms),
        );
        Bench {
            journal,
            store,
            fleet,
            teller,
            deps,
        }
    }

    /// The first notice recorded (the only one, in the tests that ask).
    pub fn notice(&self) -> crate::rules::notice::record::Recorded {
        self.store
            .with(|t| t.notices.values().next().cloned())
            .expect("a notice recorded")
    }

    /// One invocation of the function on `event`, a minute before its deadline.
    pub async fn invoke(
        &self,
        event: &serde_json::Value,
    ) -> Result<crate::model::outcome::Response, Error> {
        let arn = format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:autoheal");
        let inv = crate::app::Invocation::new(self.deps.now_ms() + 60_000, &arn);
        super::handle(&self.deps, event, &inv).await
    }
}

/// `events/sns-alarm.json`'s instance and its alarm's state-change time.
pub const SAMPLE_ID: &str = "i-0123456789abcdef0";
pub const SAMPLE_ALARM_MS: i64 = 1_795_403_565_123;

/// The sample event `events/<name>`, about `id` instead of `SAMPLE_ID` when given.
pub fn sample(name: &str, id: Option<&str>) -> serde_json::Value {
    let path = format!("{}/events/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(path).unwrap();
    serde_json::from_str(&text.replace(SAMPLE_ID, id.unwrap_or(SAMPLE_ID))).unwrap()
}

/// The sample alarm (`StatusCheckFailed`, `ALARM`), about `instance_id`.
pub fn alarm(instance_id: &str) -> serde_json::Value {
    sample("sns-alarm.json", Some(instance_id))
}

/// The 1-minute schedule's event.
pub fn tick() -> serde_json::Value {
    sample("scheduled-tick.json", None)
}
