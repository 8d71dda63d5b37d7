//! Time, injected: the Lambda reads the system clock; tests hold a manual clock and step
//! it forward, so windows, leases, grace periods and deadlines are under their control.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

#[derive(Clone, Debug)]
pub struct Clock {
    manual: Option<Arc<AtomicI64>>,
}

impl Clock {
    pub fn system() -> Clock {
        Clock { manual: None }
    }

    /// A clock that stands at `start_ms` until `advance` moves it; `sleep` moves it too.
    pub fn manual(start_ms: i64) -> Clock {
        Clock {
            manual: Some(Arc::new(AtomicI64::new(start_ms))),
        }
    }

    /// Milliseconds since the epoch.
    pub fn now_ms(&self) -> i64 {
        match &self.manual {
            Some(t) => t.load(Ordering::SeqCst),
            None => chrono::Utc::now().timestamp_millis(),
        }
    }

    /// Moves a manual clock forward; the system clock cannot be moved.
    pub fn advance(&self, ms: i64) {
        match &self.manual {
            Some(t) => {
                t.fetch_add(ms, Ordering::SeqCst);
            }
            None => panic!("the system clock cannot be advanced"),
        }
    }

    /// Waits `ms`: really, or on a manual clock by moving it (after a short real pause, so
    /// that the world being waited for gets a turn).
    pub async fn sleep(&self, ms: i64) {
        match &self.manual {
            Some(t) => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                t.fetch_add(ms, Ordering::SeqCst);
            }
            None => tokio::time::sleep(std::time::Duration::from_millis(ms.max(0) as u64)).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_manual_clock_moves_only_when_told() {
        let c = Clock::manual(1_000);
        let seen = c.clone();
        assert_eq!(c.now_ms(), 1_000);
        c.advance(500);
        assert_eq!(seen.now_ms(), 1_500, "clones share the time");
        c.sleep(5_000).await;
        assert_eq!(c.now_ms(), 6_500);
        let s = Clock::system();
        assert!((s.now_ms() - chrono::Utc::now().timestamp_millis()).abs() < 1_000);
    }
}
