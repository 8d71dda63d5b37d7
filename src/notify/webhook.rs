//! Posting to the Slack webhook: 5 s per try, at most 3 tries, 429/5xx retried after
//! `Retry-After` (capped). Bounded by the invocation's deadline: each try's timeout and
//! each wait are cut to the time left less `DEADLINE_MARGIN`, and no try starts with less
//! than `MIN_TRY` left. Errors never carry the URL.

use super::kms::SecretUrl;
use std::time::Duration;
use tokio::time::Instant;

pub const TIMEOUT: Duration = Duration::from_secs(5);
pub const MAX_TRIES: u32 = 3;
/// Slack may ask for 30 s or more; the report is not worth holding the invocation that long.
pub const MAX_RETRY_WAIT: Duration = Duration::from_secs(5);
/// Left for the rest of the invocation (writing the outcome, the ledger) after the post.
pub const DEADLINE_MARGIN: Duration = Duration::from_secs(1);
/// A try with less time than this would only time out: not started.
pub const MIN_TRY: Duration = Duration::from_millis(300);
/// What a delivery says when the deadline left no room for a try.
pub const OUT_OF_TIME: &str = "not sent: the invocation's time ran out";

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(TIMEOUT)
        .build()
        .expect("the TLS backend is compiled in")
}

/// The timeout for a try that starts with `left` before the deadline: `TIMEOUT`, cut to
/// `left - DEADLINE_MARGIN`; None when that is under `MIN_TRY` (no try starts).
pub fn try_timeout(left: Duration) -> Option<Duration> {
    let usable = left.checked_sub(DEADLINE_MARGIN)?;
    (usable >= MIN_TRY).then(|| usable.min(TIMEOUT))
}

/// The wait before the next try, cut so that a try of at least `MIN_TRY` still fits
/// after it; None when even a wait of nothing leaves no room for that try.
pub fn bounded_wait(wait: Duration, left: Duration) -> Option<Duration> {
    let room = left.checked_sub(DEADLINE_MARGIN + MIN_TRY)?;
    Some(wait.min(room))
}

/// `deadline_ms` (the invocation's deadline, epoch ms) as an instant, given the clock
/// `now_ms` read just now. A deadline in the past is now.
pub fn deadline_instant(deadline_ms: i64, now_ms: i64) -> Instant {
    let left = u64::try_from(deadline_ms.saturating_sub(now_ms)).unwrap_or(0);
    Instant::now() + Duration::from_millis(left)
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

/// Returns the number of tries it took, or why it failed. No deadline of its own beyond
/// `MAX_TRIES` tries of `TIMEOUT` and the capped waits.
pub async fn post(
    http: &reqwest::Client,
    url: &SecretUrl,
    body: &serde_json::Value,
) -> Result<u32, String> {
    let worst = (TIMEOUT + MAX_RETRY_WAIT) * MAX_TRIES + DEADLINE_MARGIN;
    post_by(http, url, body, Instant::now() + worst).await
}

/// As `post`, but every try and wait ends before `deadline` less `DEADLINE_MARGIN`.
pub async fn post_by(
    http: &reqwest::Client,
    url: &SecretUrl,
    body: &serde_json::Value,
    deadline: Instant,
) -> Result<u32, String> {
    let left = || deadline.saturating_duration_since(Instant::now());
    let body = body.to_string();
    let mut tries = 0;
    loop {
        let Some(timeout) = try_timeout(left()) else {
            return Err(if tries == 0 {
                OUT_OF_TIME.to_string()
            } else {
                format!("{OUT_OF_TIME} after {tries} tries")
            });
        };
        tries += 1;
        let (status, retry_after, problem) = match http
            .post(url.expose())
            .timeout(timeout)
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
            Err(e) if e.is_timeout() => (
                None,
                None,
                format!("Slack did not answer within {} ms", timeout.as_millis()),
            ),
            Err(e) => (
                None,
                None,
                format!("Slack unreachable: {}", e.without_url()),
            ),
        };
        let wait = retry_delay(status, retry_after.as_deref(), tries);
        match wait.map(|w| bounded_wait(w, left())) {
            Some(Some(wait)) => tokio::time::sleep(wait).await,
            Some(None) => {
                return Err(format!(
                    "{problem} after {tries} tries; the invocation's time ran out for another"
                ))
            }
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

    #[test]
    fn the_deadline_bounds_each_try_and_wait() {
        let ms = Duration::from_millis;
        // (time left, timeout of the next try)
        let tries = [
            (ms(60_000), Some(TIMEOUT)),
            (ms(6_000), Some(TIMEOUT)),
            (ms(5_999), Some(ms(4_999))),
            (ms(3_000), Some(ms(2_000))),
            (ms(1_300), Some(ms(300))),
            (ms(1_299), None),
            (ms(1_000), None),
            (ms(0), None),
        ];
        for (left, expected) in tries {
            assert_eq!(try_timeout(left), expected, "{left:?}");
        }
        // (wait asked, time left, wait taken)
        let waits = [
            (ms(200), ms(60_000), Some(ms(200))),
            (MAX_RETRY_WAIT, ms(60_000), Some(MAX_RETRY_WAIT)),
            (MAX_RETRY_WAIT, ms(4_000), Some(ms(2_700))),
            (ms(200), ms(1_400), Some(ms(100))),
            (ms(200), ms(1_300), Some(ms(0))),
            (ms(200), ms(1_299), None),
            (ms(0), ms(0), None),
        ];
        for (wait, left, expected) in waits {
            assert_eq!(bounded_wait(wait, left), expected, "{wait:?} {left:?}");
            // After the wait taken, a try still fits.
            if let Some(w) = expected {
                assert!(try_timeout(left - w).is_some(), "{wait:?} {left:?}");
            }
        }
    }

    #[tokio::test]
    async fn no_try_starts_past_the_deadline() {
        // A listener that counts connections: with no time left, none is even opened.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let url = SecretUrl::for_test(&format!("http://{addr}/hook"));
        let http = client();
        let sent = post_by(
            &http,
            &url,
            &serde_json::json!({}),
            Instant::now() + Duration::from_millis(1_200),
        )
        .await;
        assert_eq!(sent, Err(OUT_OF_TIME.to_string()));
        let tried = tokio::time::timeout(Duration::from_millis(50), listener.accept()).await;
        assert!(tried.is_err(), "a connection was opened");
    }

    #[tokio::test]
    async fn a_silent_slack_holds_the_post_no_longer_than_the_deadline_allows() {
        // Accepts and never answers.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let mut held = vec![];
            while let Ok((conn, _)) = listener.accept().await {
                held.push(conn);
            }
        });
        let url = SecretUrl::for_test(&format!("http://{addr}/services/T/B/x"));
        let http = client();
        let started = Instant::now();
        let deadline = started + Duration::from_millis(2_500);
        let sent = post_by(&http, &url, &serde_json::json!({"text": "t"}), deadline).await;
        let took = started.elapsed();
        server.abort();
        // One try of 1.5 s (2.5 s less the margin); then no room for a wait and a try.
        let problem = sent.unwrap_err();
        assert!(
            problem.starts_with("Slack did not answer within "),
            "{problem}"
        );
        assert!(
            problem.ends_with("after 1 tries; the invocation's time ran out for another"),
            "{problem}"
        );
        assert!(!problem.contains("127.0.0.1"), "{problem}");
        // Its one try was cut to what the deadline left (less the margin), not the 5 s a
        // try may take otherwise; it waited that long for it.
        let within: u64 = problem
            .trim_start_matches("Slack did not answer within ")
            .split(' ')
            .next()
            .and_then(|ms| ms.parse().ok())
            .unwrap_or_else(|| panic!("{problem}"));
        assert!(within <= 1_500, "{problem}");
        assert!(took >= Duration::from_millis(within), "{took:?}");
    }
}
