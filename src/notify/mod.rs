//! Report delivery. A failed notification is logged and shown in the outcome; it never
//! undoes, blocks or fails a repair.

pub mod kms;
pub mod message;
pub mod webhook;

use crate::config::Config;
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
    pub fn new(kms: aws_sdk_kms::Client, config: &Config) -> Notifier {
        match &config.slack_webhook_ciphertext {
            None => Notifier::LogOnly,
            Some(ciphertext) => Notifier::Slack(Slack {
                kms,
                ciphertext: ciphertext.clone(),
                function_name: config.function_name.clone(),
                url: OnceCell::new(),
                http: OnceCell::new(),
            }),
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

    /// Delivers one report; returns what to show in the outcome's `notification`.
    pub async fn send(&self, payload: &serde_json::Value) -> String {
        let text = payload["text"].as_str().unwrap_or_default();
        match self {
            Notifier::LogOnly => {
                tracing::info!(notification = text, "report (no Slack webhook configured)");
                "log".into()
            }
            Notifier::Slack(slack) => match slack.deliver(payload).await {
                Ok(tries) => {
                    tracing::debug!(tries, "report delivered to Slack");
                    "slack".into()
                }
                Err(problem) => {
                    tracing::error!(problem = %problem, notification = text, "report not delivered to Slack");
                    format!("failed: {problem}")
                }
            },
        }
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

    async fn deliver(&self, payload: &serde_json::Value) -> Result<u32, String> {
        let url = self.url().await.map_err(|e| e.to_string())?;
        let http = self.http.get_or_init(|| async { webhook::client() }).await;
        webhook::post(http, url, payload).await
    }
}
