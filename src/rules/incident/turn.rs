//! The tick's order over the open incidents, from their heads read in one batch: what is
//! due first (relaunch steps, a member's replacement to verify), then holds and rungs that
//! are due, oldest first; what is leased, held until later or held behind a breaker still
//! open costs no call at all, and the repairs a closed breaker held are taken up at a pace.

use super::{Head, HoldKind, Status};
use std::collections::{BTreeSet, HashMap};

/// The tick's turns: `advance` in this order; the rest left alone this tick.
#[derive(Debug, Default, PartialEq)]
pub struct Turns {
    pub advance: Vec<String>,
    /// Held until later, or being worked on.
    pub not_due: usize,
    /// Held behind a breaker still open.
    pub behind_breaker: usize,
    /// Their breaker closed; beyond this tick's take-up, taken up by the next ticks.
    pub queued: usize,
}

/// What holds the repairs a breaker held: the scopes whose breaker is open (None: not
/// known this time, such holds wait for their time as others do), and how many of those
/// whose breaker closed are taken up per tick.
#[derive(Debug, Clone, Copy)]
pub struct Breakers<'a> {
    pub open: Option<&'a BTreeSet<String>>,
    pub take_up: usize,
}

/// `open`: the open index's keys; `heads`: those read (a key without a head is advanced
/// last, so that it is looked at and unlisted as before).
pub fn turns(
    open: &[String],
    heads: &HashMap<String, Head>,
    now_ms: i64,
    breakers: Breakers,
) -> Turns {
    let mut t = Turns::default();
    let mut ranked: Vec<(u8, i64, &String)> = vec![];
    let mut take_up: Vec<(i64, &String)> = vec![];
    for key in open {
        let rank = match heads.get(key) {
            Some(h) if h.status == Status::Repairing => {
                let repairing = h.progress.under_way() || h.is_verifying() || !h.rungs.is_empty();
                match (h.hold_kind, breakers.open, h.lease_until_ms <= now_ms) {
                    (_, _, false) => None,
                    (Some(HoldKind::Breaker), Some(scopes), true) if !repairing => {
                        match h.hold_scope.as_ref().is_some_and(|s| scopes.contains(s)) {
                            true => t.behind_breaker += 1,
                            false => take_up.push((h.opened_ms, key)),
                        }
                        continue;
                    }
                    _ if !h.is_waiting(now_ms) => None,
                    _ if h.progress.under_way() => Some((0, h.opened_ms)),
                    _ if h.is_verifying() => Some((1, h.opened_ms)),
                    _ => Some((2, h.opened_ms)),
                }
            }
            Some(h) => Some((3, h.opened_ms)),
            None => Some((3, i64::MAX)),
        };
        match rank {
            Some((rank, at)) => ranked.push((rank, at, key)),
            None => t.not_due += 1,
        }
    }
    // Oldest first, a few per tick: most recovered meanwhile and close quietly.
    take_up.sort();
    t.queued = take_up.len().saturating_sub(breakers.take_up);
    ranked.extend(
        take_up
            .into_iter()
            .take(breakers.take_up)
            .map(|(at, k)| (2, at, k)),
    );
    ranked.sort();
    t.advance = ranked.into_iter().map(|(_, _, k)| k.clone()).collect();
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::outcome::{Action, Verdict};
    use crate::model::progress::Phase;

    const NOW: i64 = 1_795_403_565_123;
    const BY_TIME: Breakers = Breakers {
        open: None,
        take_up: 5,
    };

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
        let t = turns(&open, &heads, NOW, BY_TIME);
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
        let t = turns(&open, &heads, NOW, BY_TIME);
        assert_eq!(t.advance[0], "relaunch");
        assert_eq!(t.advance.len(), 1001);
    }

    #[test]
    fn behind_an_open_breaker_nothing_once_it_closes_a_few_per_tick_oldest_first() {
        let behind = |id: &str, opened: i64, scope: &str| {
            let scope = scope.to_string();
            head(id, opened, move |h| {
                h.hold_until_ms = Some(NOW - 1);
                h.hold_kind = Some(HoldKind::Breaker);
                h.hold_scope = Some(scope);
            })
        };
        let mut heads: HashMap<String, Head> = (0..300)
            .map(|i| behind(&format!("zone-{i:03}"), NOW - 1000 + i, "zone:a@r"))
            .collect();
        heads.extend((0..8).map(|i| behind(&format!("web-{i}"), NOW - 2000 + i, "group:web@r")));
        heads.extend([
            head("relaunch", NOW, |h| h.progress.enter(Phase::Imaging, NOW)),
            head("leased", NOW - 5000, |h| {
                h.hold_kind = Some(HoldKind::Breaker);
                h.hold_scope = Some("zone:a@r".into());
                h.lease_until_ms = NOW + 1;
            }),
            // Taken up before, its rung under way: work, not a take-up.
            head("rung", NOW - 3000, |h| {
                h.hold_kind = Some(HoldKind::Breaker);
                h.hold_scope = Some("zone:a@r".into());
                h.rungs
                    .push((crate::rules::ladder::Rung::Reboot, NOW - 3000));
                h.hold_until_ms = Some(NOW - 1);
            }),
        ]);
        let open: Vec<String> = heads.keys().cloned().collect();
        let zone_open: BTreeSet<String> = ["zone:a@r".to_string()].into();
        let t = turns(
            &open,
            &heads,
            NOW,
            Breakers {
                open: Some(&zone_open),
                take_up: 3,
            },
        );
        assert_eq!(t.advance, ["relaunch", "rung", "web-0", "web-1", "web-2"]);
        assert_eq!((t.behind_breaker, t.queued, t.not_due), (300, 5, 1));
        // The storm item not read: such holds wait for their time, as before.
        let t = turns(&open, &heads, NOW, BY_TIME);
        assert_eq!((t.advance.len(), t.behind_breaker, t.queued), (310, 0, 0));
    }
}
