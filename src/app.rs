//! What an invocation works with: the clients (per region), the ledger, the notifier, the
//! configuration and the clock, built once per container.

use crate::aws::{self, Clients, Cloud, Clouds};
use crate::clock::Clock;
use crate::config::Config;
use crate::ledger::Ledger;
use crate::notify::Notifier;
use std::sync::Arc;

pub struct Deps {
    pub clients: Clients,
    clouds: Clouds,
    /// Which instance types EC2 recovers automatically, read once per container.
    pub(crate) recovery_by_type: aws::ec2::RecoveryByType,
    pub ledger: Ledger,
    pub notifier: Arc<Notifier>,
    pub config: Config,
    pub clock: Clock,
}

impl Deps {
    pub fn new(clients: Clients, config: Config, clock: Clock) -> Deps {
        Deps {
            ledger: Ledger::new(clients.dynamodb.clone(), config.table.clone()),
            notifier: Arc::new(Notifier::new(clients.kms.clone(), &config)),
            clouds: Clouds::new(&clients, &config.region),
            recovery_by_type: aws::ec2::RecoveryByType::default(),
            clients,
            config,
            clock,
        }
    }

    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// The EC2 and Auto Scaling clients of `region` (an instance's, from its alarm).
    pub fn cloud(&self, region: &str) -> Cloud {
        self.clouds.get(region)
    }

    /// Delivers one report within the invocation's time; one Slack did not take is kept in
    /// the ledger for the tick to re-send (for an hour). Returns the outcome's
    /// `notification`: `slack`, `log`, or `failed: …` saying whether it was kept.
    pub async fn tell(&self, payload: &serde_json::Value) -> String {
        let now = self.now_ms();
        let deadline = DEADLINE.try_with(|d| *d).unwrap_or(now + 60_000);
        let delivery = self.notifier.send_by(payload, deadline, now).await;
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

tokio::task_local! {
    /// The invocation's deadline, for the reports sent on its way.
    static DEADLINE: i64;
}

/// Runs `work` as the invocation that ends at `deadline_ms`: the reports sent on its way
/// keep to it.
pub async fn within<F: std::future::Future>(deadline_ms: i64, work: F) -> F::Output {
    DEADLINE.scope(deadline_ms, work).await
}
