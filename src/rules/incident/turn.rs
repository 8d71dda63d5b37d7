//! The tick's order over the open incidents, from their heads read in one batch: what is
//! due first (relaunch steps, a member's replacement to verify), then holds and rungs that
//! are due, oldest first; what is leased or held until later costs no call at all.

use super::{Head, Status};
use std::collections::HashMap;

/// The tick's turns: `advance` in this order; `not_due` left alone this tick.
#[derive(Debug, Default, PartialEq)]
pub struct Turns {
    pub advance: Vec<String>,
    pub not_due: usize,
}

/// `open`: the open index's keys; `heads`: those read (a key without a head is advanced
/// last, so that it is looked at and unlisted as before).
pub fn turns(open: &[String], heads: &HashMap<String, Head>, now_ms: i64) -> Turns {
    let mut ranked: Vec<(u8, i64, &String)> = vec![];
    let mut not_due = 0;
    for key in open {
        let rank = match heads.get(key) {
            Some(h) if h.status == Status::Repairing && !h.is_waiting(now_ms) => {
                not_due += 1;
                continue;
            }
            Some(h) if h.status != Status::Repairing => (3, h.opened_ms),
            Some(h) if h.progress.under_way() => (0, h.opened_ms),
            Some(h) if h.is_verifying() => (1, h.opened_ms),
            Some(h) => (2, h.opened_ms),
            None => (3, i64::MAX),
        };
        ranked.push((rank.0, rank.1, key));
    }
    ranked.sort();
    Turns {
        advance: ranked.into_iter().map(|(_, _, k)| k.clone()).collect(),
        not_due,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::outcome::{Action, Verdict};
    use crate::model::progress::Phase;

    const NOW: i64 = 1_795_403_565_123;

    fn head(id: &str, opened_ms: i64, how: impl FnOnce(&mut Head)) -> (String, Head) {
        let mut h = Head {
            instance_id: id.into(),
            opened_ms,
            action: None,
            result: None,
            ..super::super::tests::head(Status::Repairing, 0)
        };
        how(&mut h);
        (id.to_string(), h)
    }

    #[test]
    fn due_work_first_then_due_holds_oldest_first_and_nothing_for_the_rest() {
        let heads: HashMap<String, Head> = [
            head("held-later", NOW - 900_000, |h| {
                h.hold_until_ms = Some(NOW + 60_000)
            }),
            head("leased", NOW - 800_000, |h| h.lease_until_ms = NOW + 10_000),
            head("hold-due-new", NOW - 100_000, |h| {
                h.hold_until_ms = Some(NOW - 1)
            }),
            head("hold-due-old", NOW - 700_000, |h| {
                h.hold_until_ms = Some(NOW)
            }),
            head("verifying", NOW - 50_000, |h| {
                h.action = Some(Action::MarkUnhealthy);
                h.result = Some(Verdict::InProgress);
            }),
            head("relaunch", NOW - 10_000, |h| {
                h.progress.enter(Phase::Launching, NOW - 5_000)
            }),
            head("closed", NOW - 990_000, |h| h.status = Status::Closed),
        ]
        .into_iter()
        .collect();
        let mut open: Vec<String> = heads.keys().cloned().collect();
        open.push("no-head".into());
        open.sort();
        let t = turns(&open, &heads, NOW);
        assert_eq!(
            t.advance,
            [
                "relaunch",
                "verifying",
                "hold-due-old",
                "hold-due-new",
                "closed",
                "no-head"
            ]
        );
        assert_eq!(t.not_due, 2);
    }

    #[test]
    fn a_thousand_held_incidents_leave_a_relaunch_first() {
        let mut heads: HashMap<String, Head> = (0..1000)
            .map(|i| {
                head(&format!("held-{i:04}"), NOW - i, |h| {
                    h.hold_until_ms = Some(NOW - 1)
                })
            })
            .collect();
        heads.extend([head("relaunch", NOW, |h| {
            h.progress.enter(Phase::Imaging, NOW)
        })]);
        let open: Vec<String> = heads.keys().cloned().collect();
        let t = turns(&open, &heads, NOW);
        assert_eq!(t.advance[0], "relaunch");
        assert_eq!(t.advance.len(), 1001);
    }
}
