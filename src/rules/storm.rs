//! A storm, pure: while any breaker is open — an Availability Zone's, a group's, a
//! cluster's — people read one story: one message when the first breaker opens, an update
//! at most every few minutes while it grows (counts, never instance lists), one message when
//! the last one closes. Then the repairs held behind them are taken up at a pace, oldest
//! first, each confirmed with EC2 again (`rules::incident::turns`).

use crate::model::progress::{clock_text, human};
use crate::model::scope::ScopeKey;
use std::collections::BTreeSet;

/// `AUTOHEAL_ZONE_BREAKER_*`, `AUTOHEAL_STORM_UPDATE_SECONDS`, `AUTOHEAL_TAKE_UP_PER_TICK`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// The zone breaker: its own count and percent (of the instances in the zone), the
    /// group breaker's window and cool-down. None: off.
    pub zone: Option<super::breaker::Settings>,
    /// The account's breaker: its own count of instances alarming anywhere the function
    /// serves, the group breaker's window and cool-down. None: off.
    pub account: Option<super::breaker::Settings>,
    /// At most one update per this while the storm grows.
    pub update_ms: i64,
    /// Held repairs taken up per tick once their breaker closed.
    pub take_up_per_tick: usize,
}

pub const DEFAULT_ZONE_COUNT: u32 = 5;
pub const DEFAULT_ZONE_PERCENT: u32 = 20;
pub const DEFAULT_ACCOUNT_COUNT: u32 = 25;
pub const DEFAULT_UPDATE_SECONDS: i64 = 300;
pub const DEFAULT_TAKE_UP_PER_TICK: u32 = 5;

/// A shift of traffic away from an Availability Zone in progress (ARC's zonal shift of a
/// resource, or AWS's zonal autoshift): autoheal repairs nothing in the zone meanwhile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shift {
    /// The zone's name (`us-east-1a`).
    pub zone: String,
    /// What it is, for people.
    pub said: String,
}

/// The storm as the ledger keeps it (`ledger::storm`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Storm {
    /// The scopes (`ScopeKey` text) whose breaker is open.
    pub open: BTreeSet<String>,
    /// When the first of them opened.
    pub since_ms: Option<i64>,
    /// When people were last told, and what: (breakers open, repairs held).
    pub told_ms: Option<i64>,
    pub told: (usize, usize),
}

/// What an update counts, from the open breakers and the open incidents' heads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// Each open zone, and the account's breaker if open: its label, the instances that
    /// alarmed there since the storm began, and the command that resumes it.
    pub zones: Vec<(String, usize, String)>,
    /// Group and cluster breakers open.
    pub groups: usize,
    /// Repairs held behind a breaker, and in how many groups.
    pub held: usize,
    pub held_groups: usize,
}

impl Counts {
    fn breakers(&self) -> usize {
        self.zones.len() + self.groups
    }
}

/// Whether the tick tells people how the storm stands: it is on, the last message is at
/// least `update_ms` old, and it grew since (more breakers open or more repairs held).
pub fn update_due(storm: &Storm, counts: &Counts, update_ms: i64, now_ms: i64) -> bool {
    let grew = counts.breakers() > storm.told.0 || counts.held > storm.told.1;
    !storm.open.is_empty() && grew && storm.told_ms.is_none_or(|t| now_ms >= t + update_ms)
}

/// The message when a zone's breaker opens the storm. `resume`: its resume command.
pub fn zone_opened_text(
    zone: &ScopeKey,
    alarmed: usize,
    threshold: &str,
    settings: &super::breaker::Settings,
    update_ms: i64,
    resume: &str,
) -> String {
    let label = zone.label();
    format!(
        ":rotating_light: *autoheal: {label} looks impaired*: {alarmed} instances there alarmed within {} (threshold {threshold}). One failing zone, not {alarmed} broken machines: every automated repair in {label} is stopped (repairs already started go on); instances in other zones are repaired as usual, within their own limits. {}",
        human(settings.window_ms),
        way_back(settings, update_ms, resume),
    )
}

/// How an opening message ends: when its breaker resumes by itself, the command that
/// resumes it at once, and what people hear next.
fn way_back(settings: &super::breaker::Settings, update_ms: i64, resume: &str) -> String {
    format!(
        "It resumes by itself after {} at or below the threshold; to resume at once, once the cause is gone: `{resume}`. Breakers that open later in this storm send no message of their own: an update comes at most every {} while it grows, and one message when it ends (`autoheal-admin history` lists every hold).",
        human(settings.cooldown_ms),
        human(update_ms),
    )
}

/// The message when the account's breaker begins the storm: alarms across zones (a
/// regional event, or the monitoring itself). `resume`: its resume command.
pub fn account_opened_text(
    alarmed: usize,
    threshold: &str,
    settings: &super::breaker::Settings,
    update_ms: i64,
    resume: &str,
) -> String {
    format!(
        ":rotating_light: *autoheal: {alarmed} instances across this account alarmed within {}* (threshold {threshold}): more than any one group or zone explains — likely a regional event or the monitoring itself. Every automated repair is stopped (repairs already started go on). {}",
        human(settings.window_ms),
        way_back(settings, update_ms, resume),
    )
}

/// The message when a shift of traffic away from a zone begins the storm.
pub fn zone_shifted_text(zone: &ScopeKey, shift: &str, update_ms: i64) -> String {
    let label = zone.label();
    format!(
        ":rotating_light: *autoheal: traffic is shifted away from {label}*: {shift}. Auto Scaling and the load balancers are moving capacity out of it; repairing there would fight them, so autoheal repairs nothing in {label} while the shift lasts, and for the breaker's cool-down after it ends (repairs already started go on; other zones are repaired as usual). An update comes at most every {} while the storm grows, and one message when it ends.",
        human(update_ms),
    )
}

/// The update while the storm grows.
pub fn update_text(since_ms: i64, now_ms: i64, counts: &Counts) -> String {
    let mut parts = vec![];
    for (label, alarmed, _) in &counts.zones {
        parts.push(format!("{label}: {alarmed} instances alarmed"));
    }
    if counts.groups > 0 {
        parts.push(format!(
            "{} group or cluster breaker(s) open",
            counts.groups
        ));
    }
    let resume: Vec<String> = counts
        .zones
        .iter()
        .map(|(label, _, cmd)| format!("{label}: `{cmd}`"))
        .collect();
    let mut text = format!(
        ":hourglass: *autoheal storm, since {} ({})*: {}. {} repair(s) held in {} group(s), taken up once their breaker closes.",
        clock_text(since_ms),
        human(now_ms - since_ms),
        parts.join("; "),
        counts.held,
        counts.held_groups,
    );
    if !resume.is_empty() {
        text.push_str(&format!(" To resume at once: {}", resume.join("; ")));
    }
    text
}

/// The message when the last breaker closes. `by`: the cool-down or an operator.
pub fn ended_text(
    since_ms: Option<i64>,
    now_ms: i64,
    last: &ScopeKey,
    by: &str,
    take_up: usize,
) -> String {
    let lasted = match since_ms {
        Some(since) => format!(
            " (began {}, lasted {})",
            clock_text(since),
            human(now_ms - since)
        ),
        None => String::new(),
    };
    format!(
        ":white_check_mark: *autoheal storm over*{lasted}: the last breaker, {}, closed ({by}). The repairs held are taken up {take_up} per minute, oldest first, each confirmed with EC2 first: those that recovered by themselves close without a message; the others are repaired within the usual limits.",
        last.label(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = 1_795_403_565_000;
    const MIN: i64 = 60_000;

    fn storm(open: &[&str], told_ms: Option<i64>, told: (usize, usize)) -> Storm {
        Storm {
            open: open.iter().map(|s| s.to_string()).collect(),
            since_ms: Some(T),
            told_ms,
            told,
        }
    }

    fn counts(zones: usize, groups: usize, held: usize) -> Counts {
        Counts {
            zones: (0..zones)
                .map(|i| (format!("zone z{i}"), 10, "cmd".into()))
                .collect(),
            groups,
            held,
            held_groups: groups,
        }
    }

    #[test]
    fn an_update_only_when_it_grew_and_not_more_often_than_the_period() {
        let five = 5 * MIN;
        // (what, storm, counts, now, due)
        let cases = [
            (
                "grew, period over",
                storm(&["zone:a@r"], Some(T), (1, 0)),
                counts(1, 3, 30),
                T + five,
                true,
            ),
            (
                "grew, within the period",
                storm(&["zone:a@r"], Some(T), (1, 0)),
                counts(1, 3, 30),
                T + five - 1,
                false,
            ),
            (
                "same counts, period over",
                storm(&["zone:a@r"], Some(T), (4, 30)),
                counts(1, 3, 30),
                T + 3 * five,
                false,
            ),
            (
                "fewer held: not news",
                storm(&["zone:a@r"], Some(T), (4, 30)),
                counts(1, 3, 10),
                T + 3 * five,
                false,
            ),
            (
                "no breaker open: the storm is over",
                storm(&[], Some(T), (0, 0)),
                counts(0, 0, 3),
                T + five,
                false,
            ),
            (
                "never told yet",
                storm(&["group:w@r"], None, (0, 0)),
                counts(0, 1, 1),
                T,
                true,
            ),
        ];
        for (what, storm, counts, now, due) in cases {
            assert_eq!(update_due(&storm, &counts, five, now), due, "{what}");
        }
    }

    #[test]
    fn the_messages_count_and_name_the_way_back() {
        let zone = ScopeKey::zone("us-east-1a").in_region("us-east-1");
        let settings = crate::rules::breaker::Settings {
            window_ms: 10 * MIN,
            count: Some(5),
            percent: Some(20),
            cooldown_ms: 10 * MIN,
        };
        let account = account_opened_text(30, "25", &settings, 5 * MIN, "cmd-account");
        for part in [
            "30 instances across this account",
            "(threshold 25)",
            "`cmd-account`",
        ] {
            assert!(account.contains(part), "{part}: {account}");
        }
        let shifted = zone_shifted_text(
            &zone,
            "AWS zonal autoshift away from use1-az6 since 2026-12-05 03:10Z",
            5 * MIN,
        );
        assert!(
            shifted.contains(
                "traffic is shifted away from zone us-east-1a in us-east-1*: AWS zonal autoshift"
            ),
            "{shifted}"
        );
        let opened = zone_opened_text(
            &zone,
            36,
            "max(5, 20% of 67) = 13.4",
            &settings,
            5 * MIN,
            "aws lambda invoke …",
        );
        for part in [
            "zone us-east-1a in us-east-1 looks impaired",
            "36 instances",
            "(threshold max(5, 20% of 67) = 13.4)",
            "other zones are repaired",
            "`aws lambda invoke …`",
            "every 5m00s",
        ] {
            assert!(opened.contains(part), "{part}: {opened}");
        }
        let c = Counts {
            zones: vec![("zone us-east-1a in us-east-1".into(), 200, "cmd-a".into())],
            groups: 20,
            held: 195,
            held_groups: 20,
        };
        let update = update_text(T, T + 6 * MIN, &c);
        for part in [
            "200 instances alarmed",
            "20 group or cluster",
            "195 repair(s) held in 20 group(s)",
            "`cmd-a`",
            "(6m00s)",
        ] {
            assert!(update.contains(part), "{part}: {update}");
        }
        assert!(
            !update.contains("i-"),
            "counts, not instance lists: {update}"
        );
        let ended = ended_text(Some(T), T + 30 * MIN, &zone, "cool-down over", 5);
        for part in [
            "storm over",
            "lasted 30m00s",
            "zone us-east-1a",
            "5 per minute",
            "confirmed with EC2",
        ] {
            assert!(ended.contains(part), "{part}: {ended}");
        }
    }
}
