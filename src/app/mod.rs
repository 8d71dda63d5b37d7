//! What an invocation works with: the ledger, the fleet (EC2 and Auto Scaling, per region),
//! the teller (Slack or the log), the configuration and the clock, built once per container.
//! The first three are seams (`Store`, `Fleet`, `Teller`): `Deps::new` builds the real ones,
//! `Deps::with` takes any (the unit tests' in-memory fakes).

pub mod clock;
pub mod config;
pub mod secret;

use crate::app::clock::Clock;
use crate::app::config::Config;
use crate::aws::fleet::Fleet;
use crate::aws::{Clients, Clouds};
use crate::intake::Signal;
use crate::ledger::store::Store;
use crate::ledger::Ledger;
use crate::notify::{Notifier, Teller};
use std::sync::Arc;

pub struct Deps {
    pub ledger: Arc<dyn Store>,
    pub fleet: Arc<dyn Fleet>,
    pub teller: Arc<dyn Teller>,
    pub config: Config,
    pub clock: Clock,
}

impl Deps {
    pub fn new(clients: Clients, config: Config, clock: Clock) -> Deps {
        let teller = Notifier::new(
            clients.kms.clone(),
            config.slack_webhook_ciphertext.as_deref(),
            &config.function_name,
        );
        Deps::with(
            Arc::new(Ledger::new(clients.dynamodb.clone(), config.table.clone())),
            Arc::new(Clouds::new(&clients, &config.region)),
            Arc::new(teller),
            config,
            clock,
        )
    }

    /// Any ledger, fleet and teller.
    pub fn with(
        ledger: Arc<dyn Store>,
        fleet: Arc<dyn Fleet>,
        teller: Arc<dyn Teller>,
        config: Config,
        clock: Clock,
    ) -> Deps {
        Deps {
            ledger,
            fleet,
            teller,
            config,
            clock,
        }
    }

    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }
}

/// What Lambda says of one invocation: when it must end, and the function's own account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    pub deadline_ms: i64,
    /// From the invoked function's ARN (no call needed); None where the ARN has none.
    pub account: Option<String>,
}

impl Invocation {
    /// `function_arn`: `arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]`.
    pub fn new(deadline_ms: i64, function_arn: &str) -> Invocation {
        let account = function_arn
            .split(':')
            .nth(4)
            .filter(|a| !a.is_empty() && a.bytes().all(|b| b.is_ascii_digit()))
            .map(str::to_string);
        Invocation {
            deadline_ms,
            account,
        }
    }
}

/// The alarm being decided, and when it was received: its report's audit record is written
/// beside the report, completed from these.
#[derive(Debug, Clone)]
pub struct Deciding {
    pub signal: Signal,
    pub received_ms: i64,
}

/// One run of the pipeline: what it works with, when it must end, whose account it serves,
/// and the alarm it is deciding (None on the tick's own work and EC2's announcements).
/// Passed down explicitly; it derefs to `Deps`.
#[derive(Clone)]
pub struct Run<'a> {
    pub deps: &'a Deps,
    pub deadline_ms: i64,
    pub account: Option<&'a str>,
    pub deciding: Option<Deciding>,
}

impl std::ops::Deref for Run<'_> {
    type Target = Deps;
    fn deref(&self) -> &Deps {
        self.deps
    }
}

impl<'a> Run<'a> {
    pub fn new(deps: &'a Deps, inv: &'a Invocation) -> Run<'a> {
        Run {
            deps,
            deadline_ms: inv.deadline_ms,
            account: inv.account.as_deref(),
            deciding: None,
        }
    }

    /// The same run, deciding `signal` received at `received_ms`.
    pub fn deciding(&self, signal: &Signal, received_ms: i64) -> Run<'a> {
        Run {
            deciding: Some(Deciding {
                signal: signal.clone(),
                received_ms,
            }),
            ..self.clone()
        }
    }

    /// Delivers one report before the run's deadline; one Slack did not take is kept in
    /// the ledger for the tick to re-send (for an hour). Returns the outcome's
    /// `notification`: `slack`, `log`, or `failed: …` saying whether it was kept.
    pub async fn tell(&self, payload: &serde_json::Value) -> String {
        let now = self.now_ms();
        let delivery = self.teller.send_by(payload, self.deadline_ms, now).await;
        if delivery.delivered() {
            return delivery.as_notification();
        }
        match self.ledger.keep_report(payload, now).await {
            Ok(()) => format!("{}; kept, re-sent by the tick", delivery.as_notification()),
            Err(e) => {
                tracing::error!(error = %e, "report neither delivered nor kept");
                format!("{}; not kept ({e})", delivery.as_notification())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Invocation;

    #[test]
    fn the_account_comes_from_the_function_arn() {
        let table = [
            (
                "arn:aws:lambda:us-east-1:123456789012:function:autoheal",
                Some("123456789012"),
            ),
            (
                "arn:aws:lambda:us-east-1:123456789012:function:autoheal:live",
                Some("123456789012"),
            ),
            ("arn:aws:lambda:us-east-1::function:autoheal", None),
            ("arn:aws:lambda:us-east-1:12x:function:autoheal", None),
            ("", None),
        ];
        for (arn, want) in table {
            assert_eq!(Invocation::new(1, arn).account.as_deref(), want, "{arn}");
        }
    }
}
