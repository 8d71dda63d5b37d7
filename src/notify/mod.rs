//! Report delivery. A failed notification is logged and shown in the outcome; it never
//! undoes, blocks or fails a repair.

pub mod kms;
pub mod message;
pub mod webhook;

use kms::SecretUrl;
use std::sync::Arc;
use tokio::sync::OnceCell;

#[derive(Debug)]
pub enum Notifier {
    /// No webhook configured: reports go to the log only.
    LogOnly,
    Slack(Slack),
}

#[derive(Debug)]
pub struct Slack {
    kms: aws_sdk_kms::Client,
    ciphertext: Vec<u8>,
    function_name: String,
    /// Decrypted once per container; a failed decrypt is not cached, the next report retries.
    url: OnceCell<SecretUrl>,
    http: OnceCell<reqwest::Client>,
}

impl Notifier {
    /// `ciphertext`: the KMS-encrypted webhook (None: reports go to the log only);
    /// `function_name`: the encryption context it was encrypted with.
    pub fn new(
        kms: aws_sdk_kms::Client,
        ciphertext: Option<&[u8]>,
        function_name: &str,
    ) -> Notifier {
        match ciphertext {
            None => Notifier::LogOnly,
            Some(ciphertext) => Notifier::Slack(Slack {
                kms,
                ciphertext: ciphertext.to_vec(),
                function_name: function_name.to_string(),
                url: OnceCell::new(),
                http: OnceCell::new(),
            }),
        }
    }

    /// Where reports go.
    pub fn sink(&self) -> Sink {
        match self {
            Notifier::LogOnly => Sink::Log,
            Notifier::Slack(_) => Sink::Slack,
        }
    }

    /// Starts decrypting the webhook in the background so the first report finds it ready.
    pub fn prefetch(self: &Arc<Self>) {
        if let Notifier::Slack(_) = self.as_ref() {
            let me = Arc::clone(self);
            tokio::spawn(async move {
                if let Notifier::Slack(slack) = me.as_ref() {
                    if let Err(e) = slack.url().await {
                        tracing::warn!(error = %e, "could not decrypt the Slack webhook yet; will retry at the next report");
                    }
                }
            });
        }
    }

    /// Delivers one report; returns what to show in the outcome's `notification`. Bounded
    /// only by `DEFAULT_BUDGET_MS` (longer than the webhook's own tries and waits); code
    /// that knows the invocation's deadline calls `send_by`.
    pub async fn send(&self, payload: &serde_json::Value) -> String {
        let now = chrono::Utc::now().timestamp_millis();
        self.send_by(payload, now.saturating_add(DEFAULT_BUDGET_MS), now)
            .await
            .as_notification()
    }

    /// Delivers one report before `deadline_ms` (epoch ms; `now_ms` is the clock read
    /// just now): each try and each wait between tries end `webhook::DEADLINE_MARGIN`
    /// before it, and no try starts with less than `webhook::MIN_TRY` left.
    pub async fn send_by(
        &self,
        payload: &serde_json::Value,
        deadline_ms: i64,
        now_ms: i64,
    ) -> Delivery {
        let text = payload["text"].as_str().unwrap_or_default();
        match self {
            Notifier::LogOnly => {
                tracing::info!(notification = text, "report (no Slack webhook configured)");
                Delivery::Sent(Sink::Log)
            }
            Notifier::Slack(slack) => {
                let deadline = webhook::deadline_instant(deadline_ms, now_ms);
                match slack.deliver(payload, deadline).await {
                    Ok(tries) => {
                        tracing::debug!(tries, "report delivered to Slack");
                        Delivery::Sent(Sink::Slack)
                    }
                    Err(problem) => {
                        tracing::error!(problem = %problem, notification = text, "report not delivered to Slack");
                        Delivery::Failed(problem)
                    }
                }
            }
        }
    }
}

/// The seam between the pipeline and people: delivering one report, so that tests can put a
/// recording teller in the notifier's place. The production teller is `Notifier`.
#[async_trait::async_trait(?Send)]
pub trait Teller: Send + Sync {
    /// Delivers one report before `deadline_ms` (`Notifier::send_by`).
    async fn send_by(&self, payload: &serde_json::Value, deadline_ms: i64, now_ms: i64)
        -> Delivery;
    /// Where reports go.
    fn sink(&self) -> Sink;
    /// Gets ready for the first report in the background (the container's start).
    fn prefetch(self: Arc<Self>);
}

#[async_trait::async_trait(?Send)]
impl Teller for Notifier {
    async fn send_by(
        &self,
        payload: &serde_json::Value,
        deadline_ms: i64,
        now_ms: i64,
    ) -> Delivery {
        Notifier::send_by(self, payload, deadline_ms, now_ms).await
    }
    fn sink(&self) -> Sink {
        Notifier::sink(self)
    }
    fn prefetch(self: Arc<Self>) {
        Notifier::prefetch(&self)
    }
}

/// `send`'s budget when no deadline is given: more than 3 tries of 5 s and the waits.
pub const DEFAULT_BUDGET_MS: i64 = 60_000;

/// Where a report went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sink {
    Slack,
    /// No webhook configured: the log has it.
    Log,
}

/// How a delivery went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    Sent(Sink),
    /// Why not (never the URL).
    Failed(String),
}

impl Delivery {
    /// What the outcome's `notification` says: `slack`, `log` or `failed: <problem>`.
    pub fn as_notification(&self) -> String {
        match self {
            Delivery::Sent(Sink::Slack) => "slack".into(),
            Delivery::Sent(Sink::Log) => "log".into(),
            Delivery::Failed(problem) => format!("failed: {problem}"),
        }
    }

    pub fn delivered(&self) -> bool {
        matches!(self, Delivery::Sent(_))
    }
}

impl std::fmt::Display for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.as_notification())
    }
}

impl Slack {
    async fn url(&self) -> Result<&SecretUrl, crate::error::Error> {
        self.url
            .get_or_try_init(|| {
                kms::decrypt_webhook(&self.kms, &self.ciphertext, &self.function_name)
            })
            .await
    }

    async fn deliver(
        &self,
        payload: &serde_json::Value,
        deadline: tokio::time::Instant,
    ) -> Result<u32, String> {
        // Decrypting the URL (once per container) counts against the same deadline.
        let budget = deadline.saturating_duration_since(tokio::time::Instant::now());
        let Some(budget) = budget.checked_sub(webhook::DEADLINE_MARGIN + webhook::MIN_TRY) else {
            return Err(webhook::OUT_OF_TIME.into());
        };
        let url = match tokio::time::timeout(budget, self.url()).await {
            Ok(url) => url.map_err(|e| e.to_string())?,
            Err(_) => return Err(format!("{} (decrypting the webhook)", webhook::OUT_OF_TIME)),
        };
        let http = self.http.get_or_init(|| async { webhook::client() }).await;
        webhook::post_by(http, url, payload, deadline).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deliveries_read_as_outcomes_say_them() {
        let table = [
            (Delivery::Sent(Sink::Slack), "slack", true),
            (Delivery::Sent(Sink::Log), "log", true),
            (
                Delivery::Failed(webhook::OUT_OF_TIME.into()),
                "failed: not sent: the invocation's time ran out",
                false,
            ),
        ];
        for (d, says, delivered) in table {
            assert_eq!(d.as_notification(), says);
            assert_eq!(d.to_string(), says);
            assert_eq!(d.delivered(), delivered, "{d:?}");
        }
    }

    #[tokio::test]
    async fn log_only_is_delivered_even_past_the_deadline() {
        let d = Notifier::LogOnly
            .send_by(&serde_json::json!({"text": "t"}), 0, 1_000)
            .await;
        assert_eq!(d, Delivery::Sent(Sink::Log));
        assert_eq!(
            Notifier::LogOnly
                .send(&serde_json::json!({"text": "t"}))
                .await,
            "log"
        );
    }
}
