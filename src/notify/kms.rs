//! The Slack webhook URL, decrypted with KMS under the function's encryption context.

use crate::error::Error;
use aws_sdk_kms::primitives::Blob;

/// A URL that must never be logged: Debug and Display hide it.
#[derive(Clone)]
pub struct SecretUrl(String);

impl SecretUrl {
    pub fn expose(&self) -> &str {
        &self.0
    }

    #[cfg(test)]
    pub(crate) fn for_test(url: &str) -> SecretUrl {
        SecretUrl(url.to_string())
    }
}

/// Why a webhook URL is refused, worded without the URL itself.
pub const NOT_A_WEBHOOK: &str = "SLACK_WEBHOOK_ENCRYPTED does not decrypt to an https:// URL (plain http:// is allowed only to a loopback address: 127.0.0.0/8, localhost, [::1])";

/// Whether `url` may receive reports: `https://` with a host, or plain `http://` to a
/// loopback address (a receiver on this machine, for tests). Pure; never echoes the URL.
pub fn webhook_url_allowed(url: &str) -> bool {
    let Ok(parsed) = reqwest::Url::parse(url) else {
        return false;
    };
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return false;
    }
    let Some(host) = parsed.host_str().filter(|h| !h.is_empty()) else {
        return false;
    };
    match parsed.scheme() {
        "https" => true,
        "http" => {
            host == "localhost"
                || host
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        _ => false,
    }
}

impl std::fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretUrl(redacted)")
    }
}

pub async fn decrypt_webhook(
    kms: &aws_sdk_kms::Client,
    ciphertext: &[u8],
    function_name: &str,
) -> Result<SecretUrl, Error> {
    let out = kms
        .decrypt()
        .ciphertext_blob(Blob::new(ciphertext))
        .encryption_context("LambdaFunctionName", function_name)
        .send()
        .await
        .map_err(|e| Error::from_sdk("kms:Decrypt", e))?;
    let plaintext = out.plaintext().map(|b| b.as_ref()).unwrap_or_default();
    let url = std::str::from_utf8(plaintext).map(str::trim).unwrap_or("");
    if !webhook_url_allowed(url) {
        return Err(Error::Permanent {
            op: "kms:Decrypt",
            code: None,
            detail: NOT_A_WEBHOOK.into(),
        });
    }
    Ok(SecretUrl(url.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_or_loopback_http() {
        let table = [
            ("https://hooks.slack.com/services/T0/B0/xyz", true),
            ("HTTPS://hooks.slack.com/services/T0/B0/xyz", true),
            ("https://hooks.slack.com:443/services/x", true),
            ("http://127.0.0.1:8080/services/T000/B000/XXXX", true),
            ("http://127.9.9.9/x", true),
            ("http://localhost:9000/x", true),
            ("http://[::1]:9000/x", true),
            ("http://hooks.slack.com/services/x", false),
            ("http://10.0.0.1/x", false),
            ("http://128.0.0.1/x", false),
            ("http://localhost.evil.example/x", false),
            ("http://127.0.0.1.evil.example/x", false),
            ("http://[::2]/x", false),
            ("http://user:pw@127.0.0.1/x", false),
            ("https://user@hooks.slack.com/x", false),
            ("ftp://hooks.slack.com/x", false),
            ("file:///etc/passwd", false),
            ("hooks.slack.com/services/x", false),
            ("https://", false),
            ("", false),
        ];
        for (url, allowed) in table {
            assert_eq!(webhook_url_allowed(url), allowed, "{url}");
        }
        assert!(!NOT_A_WEBHOOK.contains("hooks"));
    }
}
