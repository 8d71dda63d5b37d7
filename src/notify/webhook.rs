//! Posting to the Slack webhook: 5 s per try, at most 3 tries, 429/5xx retried after
//! `Retry-After` (capped). Errors never carry the URL.

use super::kms::SecretUrl;
use std::time::Duration;

pub const TIMEOUT: Duration = Duration::from_secs(5);
pub const MAX_TRIES: u32 = 3;
/// Slack may ask for 30 s or more; the report is not worth holding the invocation that long.
pub const MAX_RETRY_WAIT: Duration = Duration::from_secs(5);

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(TIMEOUT)
        .build()
        .expect("the TLS backend is compiled in")
}

/// How long to wait before try `tries + 1`, or None to give up. `status` is None when the
/// request got no answer (timeout, connection refused).
pub fn retry_delay(status: Option<u16>, retry_after: Option<&str>, tries: u32) -> Option<Duration> {
    if tries >= MAX_TRIES {
        return None;
    }
    match status {
        Some(s) if s == 429 || s >= 500 => {}
        Some(_) => return None,
        None => {}
    }
    let backoff = Duration::from_millis(200 * 2u64.pow(tries.saturating_sub(1)));
    let asked = retry_after
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    Some(asked.unwrap_or(backoff).min(MAX_RETRY_WAIT))
}

/// Returns the number of tries it took, or why it failed.
pub async fn post(
    http: &reqwest::Client,
    url: &SecretUrl,
    body: &serde_json::Value,
) -> Result<u32, String> {
    let body = body.to_string();
    let mut tries = 0;
    loop {
        tries += 1;
        let (status, retry_after, problem) = match http
            .post(url.expose())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.clone())
            .send()
            .await
        {
            Ok(resp) if resp.status().is_success() => return Ok(tries),
            Ok(resp) => {
                let status = resp.status().as_u16();
                let retry_after = resp
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                (
                    Some(status),
                    retry_after,
                    format!("Slack answered HTTP {status}"),
                )
            }
            Err(e) => (
                None,
                None,
                format!("Slack unreachable: {}", e.without_url()),
            ),
        };
        match retry_delay(status, retry_after.as_deref(), tries) {
            Some(wait) => tokio::time::sleep(wait).await,
            None => return Err(format!("{problem} after {tries} tries")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_table() {
        let ms = Duration::from_millis;
        // (status, Retry-After, tries so far, expected)
        let table = [
            (Some(500), None, 1, Some(ms(200))),
            (Some(503), None, 2, Some(ms(400))),
            (Some(500), None, 3, None),
            (Some(429), Some("1"), 1, Some(ms(1000))),
            (Some(429), Some("120"), 1, Some(MAX_RETRY_WAIT)),
            (Some(429), Some("soon"), 1, Some(ms(200))),
            (Some(404), None, 1, None),
            (Some(400), Some("1"), 1, None),
            (None, None, 1, Some(ms(200))),
            (None, None, 3, None),
        ];
        for (status, after, tries, expected) in table {
            assert_eq!(
                retry_delay(status, after, tries),
                expected,
                "{status:?} {after:?} {tries}"
            );
        }
    }
}
