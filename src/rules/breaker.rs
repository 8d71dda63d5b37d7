//! The correlated-failure breaker, pure. When more members of one Auto Scaling group or
//! one `autoheal:cluster` alarm within a window than max(`AUTOHEAL_BREAKER_COUNT`,
//! `AUTOHEAL_BREAKER_PERCENT` % of its size), it is likely an Availability Zone or
//! monitoring failure, not that many broken machines: automated repair stops in that scope,
//! one summary goes to people, and it resumes once the count has stayed at or below the
//! threshold for a cool-down (or on an operator's resume event). Windows are measured on
//! alarm state-change times; the cool-down, which no alarm marks, on the clock.
//!
//! The alarms and the breaker's state are kept in the ledger (`ledger::breaker`).

/// `AUTOHEAL_BREAKER_*`. None as a whole: the breaker is off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    pub window_ms: i64,
    /// Trips only above this many distinct alarming members (None: no count floor).
    pub count: Option<u32>,
    /// ... and above this percent of the scope's size (None: no percent floor).
    pub percent: Option<u32>,
    pub cooldown_ms: i64,
}

pub const DEFAULT_WINDOW_SECONDS: i64 = 600;
pub const DEFAULT_COUNT: u32 = 3;
pub const DEFAULT_PERCENT: u32 = 20;
pub const DEFAULT_COOLDOWN_SECONDS: i64 = 600;

/// Where the breaker counts an instance's alarms: its `autoheal:cluster` if tagged, else
/// its Auto Scaling group; standalone untagged instances have no breaker.
pub fn scope_of(
    instance: &crate::model::facts::InstanceFacts,
    group: Option<&str>,
) -> Option<crate::model::scope::ScopeKey> {
    use crate::model::scope::ScopeKey;
    match (crate::rules::guard::cluster_of(instance), group) {
        (Some(c), _) => Some(ScopeKey::cluster(c)),
        (None, Some(g)) => Some(ScopeKey::group(g)),
        (None, None) => None,
    }
}

/// Where the zone breaker counts an instance's alarms: its Availability Zone, if known.
pub fn zone_of(
    instance: &crate::model::facts::InstanceFacts,
) -> Option<crate::model::scope::ScopeKey> {
    let zone = instance.availability_zone.as_deref()?;
    Some(crate::model::scope::ScopeKey::zone(zone))
}

/// Hold reasons start with this; such holds are not reported one by one.
pub const HOLD_PREFIX: &str = "breaker open";

/// The breaker's stored state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct State {
    /// Open since this time (the clock when it tripped): the cool-down is never shorter
    /// than from here.
    pub open_since_ms: Option<i64>,
    /// Alarms at or before this are forgotten: set when the breaker closes (cool-down or
    /// an operator's resume), so the burst that tripped it cannot trip it again.
    pub cleared_ms: i64,
    pub version: i64,
    /// A zone's breaker held open by a shift of traffic away from the zone in progress
    /// (ARC): what it is. Set and cleared by the tick.
    pub shift: Option<String>,
}

impl State {
    /// Tripped now (`now_ms`, the clock).
    pub fn tripped(&self, now_ms: i64) -> State {
        State {
            open_since_ms: Some(now_ms),
            cleared_ms: self.cleared_ms,
            version: self.version + 1,
            shift: self.shift.clone(),
        }
    }

    /// Held open by `shift` from now (opened now if it was not); without one, the cool-down
    /// runs from now: repairs resume only once Auto Scaling has moved capacity back.
    pub fn shifted(&self, shift: Option<String>, now_ms: i64) -> State {
        State {
            open_since_ms: Some(match (&shift, self.open_since_ms) {
                (Some(_), Some(since)) => since,
                _ => now_ms,
            }),
            cleared_ms: self.cleared_ms,
            version: self.version + 1,
            shift,
        }
    }

    /// Closed now, forgetting every alarm so far (`alarms`), even one stamped ahead of the
    /// clock; a repair it held, taken up from now and still failing, counts again.
    pub fn closed(&self, alarms: &[(String, i64)], now_ms: i64) -> State {
        let latest = alarms.iter().map(|(_, t)| *t).max().unwrap_or(0);
        State {
            open_since_ms: None,
            cleared_ms: latest.max(now_ms - 1).max(self.cleared_ms),
            version: self.version + 1,
            shift: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Assessment {
    /// Nothing to stop.
    Closed,
    /// Trips now: these members alarmed within the window (sorted); it cannot close
    /// before `until_ms` unless an operator resumes it.
    Opens {
        instances: Vec<String>,
        threshold: String,
        until_ms: i64,
    },
    /// Stays open at least until `until_ms`; why, for the hold.
    Open { why: String, until_ms: i64 },
    /// The cool-down is over: closes now.
    Closes,
}

/// What a scope's size allows, in words: `max(3, 20% of 200) = 40`.
pub fn threshold_text(settings: &Settings, size: Option<usize>) -> String {
    let by_percent = match (settings.percent, size) {
        (Some(p), Some(n)) => Some((p, n, n as f64 * p as f64 / 100.0)),
        _ => None,
    };
    match (settings.count, by_percent) {
        (Some(c), Some((p, n, v))) => format!("max({c}, {p}% of {n}) = {}", fmt(v.max(c as f64))),
        (Some(c), None) => c.to_string(),
        (None, Some((p, n, v))) => format!("{p}% of {n} = {}", fmt(v)),
        (None, None) => "none".into(),
    }
}

fn fmt(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// Whether `n` distinct alarming members exceed the threshold.
pub fn exceeds(settings: &Settings, size: Option<usize>, n: usize) -> bool {
    let over_count = settings.count.map(|c| n > c as usize);
    let over_percent = match (settings.percent, size) {
        (Some(p), Some(s)) => Some(n * 100 > p as usize * s),
        // A percent of an unknown size cannot be checked: the count alone decides.
        _ => None,
    };
    match (over_count, over_percent) {
        (None, None) => false,
        (c, p) => c.unwrap_or(true) && p.unwrap_or(true),
    }
}

/// Whether `assess` needs the scope's size (one more read): a percent is set, and either the
/// breaker is open (its cool-down counts against the whole threshold) or the `n` members
/// noted exceed the count alone (at or below it, no percent can trip it).
pub fn needs_size(settings: &Settings, n: usize, state: &State) -> bool {
    settings.percent.is_some()
        && (state.open_since_ms.is_some() || settings.count.is_none_or(|c| n > c as usize))
}

/// The breaker of one scope. `alarms`: each member's latest alarm time; `now_ms`: the clock,
/// for the cool-down only.
pub fn assess(
    settings: &Settings,
    size: Option<usize>,
    alarms: &[(String, i64)],
    state: &State,
    now_ms: i64,
) -> Assessment {
    if let Some(shift) = &state.shift {
        let why = format!(
            "{HOLD_PREFIX}: {shift}; autoheal repairs nothing in the zone while traffic is shifted away from it"
        );
        return Assessment::Open {
            why,
            until_ms: now_ms + 60_000,
        };
    }
    let mut recent: Vec<&(String, i64)> = alarms
        .iter()
        .filter(|(_, t)| *t > state.cleared_ms)
        .collect();
    recent.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    if let Some(since) = state.open_since_ms {
        let resume_at = resume_at(settings, size, &recent, since);
        return if now_ms >= resume_at {
            Assessment::Closes
        } else {
            let why = format!(
                "{HOLD_PREFIX} since {}: {} members alarmed within {} (threshold {}); automated repair stopped here until {} ({} at or below the threshold), or an operator's resume event",
                clock(since),
                in_window(&recent, settings.window_ms).len(),
                minutes(settings.window_ms),
                threshold_text(settings, size),
                clock(resume_at),
                minutes(settings.cooldown_ms),
            );
            Assessment::Open {
                why,
                until_ms: resume_at,
            }
        };
    }
    let mut window = in_window(&recent, settings.window_ms);
    if window.is_empty() || !exceeds(settings, size, window.len()) {
        return Assessment::Closed;
    }
    window.sort();
    Assessment::Opens {
        instances: window,
        threshold: threshold_text(settings, size),
        until_ms: resume_at(settings, size, &recent, now_ms),
    }
}

/// When a breaker open since `since` closes by itself if no alarm comes: the count falls to
/// the threshold once the alarm that first exceeded it (counting from the latest, `recent`
/// sorted newest first) leaves the window, then the cool-down.
fn resume_at(
    settings: &Settings,
    size: Option<usize>,
    recent: &[&(String, i64)],
    since: i64,
) -> i64 {
    let first_over = (1..=recent.len()).find(|n| exceeds(settings, size, *n));
    let below_since =
        first_over.map_or(since, |m| (recent[m - 1].1 + settings.window_ms).max(since));
    below_since + settings.cooldown_ms
}

/// The members whose alarm is within the window ending at the latest alarm.
fn in_window(recent: &[&(String, i64)], window_ms: i64) -> Vec<String> {
    let Some(latest) = recent.iter().map(|(_, t)| *t).max() else {
        return vec![];
    };
    recent
        .iter()
        .filter(|(_, t)| *t > latest - window_ms)
        .map(|(id, _)| id.clone())
        .collect()
}

fn clock(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%H:%M:%SZ")
        .to_string()
}

fn minutes(ms: i64) -> String {
    match ms {
        ms if ms % 60_000 == 0 => format!("{} min", ms / 60_000),
        ms => format!("{} s", ms / 1000),
    }
}

/// The one message when a breaker trips.
/// `resume`: the command that closes it at once (`resume_command`).
pub fn opened_text(
    label: &str,
    instances: &[String],
    threshold: &str,
    settings: &Settings,
    resume: &str,
) -> String {
    const LISTED: usize = 50;
    let mut list = instances
        .iter()
        .take(LISTED)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if instances.len() > LISTED {
        list.push_str(&format!(" and {} more", instances.len() - LISTED));
    }
    format!(
        ":rotating_light: *autoheal breaker open for {label}*: {} members alarmed within {} (threshold {threshold}). This looks like an Availability Zone or monitoring failure, not {} broken machines: automated repair is stopped in {label} (repairs already started go on). Checked every minute; it resumes after {} at or below the threshold. Once the common cause is gone, to resume at once: `{resume}`. Later alarms here are held without a message of their own (`autoheal-admin history` lists them).\nAlarming: {list}",
        instances.len(),
        minutes(settings.window_ms),
        instances.len(),
        minutes(settings.cooldown_ms),
    )
}

/// The command an operator runs to close the breaker of `scope` now: the function, in its
/// own region, invoked with the resume event, every argument quoted for a POSIX shell
/// (names are anyone's to choose). `scope` names its region (`group:web@eu-west-1`), so the
/// command means the same whichever region the function is in.
pub fn resume_command(
    function: &str,
    region: &str,
    scope: &crate::model::scope::ScopeKey,
) -> String {
    let event = serde_json::json!({"autoheal": "resume", "scope": scope.to_string()});
    let function = match function {
        "" => "<FunctionName>",
        name => name,
    };
    format!(
        "aws lambda invoke --region {} --function-name {} --cli-binary-format raw-in-base64-out --payload {} out.json",
        quoted(region),
        quoted(function),
        quoted(&event.to_string())
    )
}

/// `s` as one POSIX shell word: single-quoted, each `'` closed, escaped and reopened.
fn quoted(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The one message when a breaker closes.
pub fn closed_text(label: &str, by: &str) -> String {
    format!(
        ":white_check_mark: *autoheal breaker closed for {label}* ({by}): members still alarming are looked at again by the next tick, within the repair budgets."
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_size_is_read_only_when_it_can_change_the_answer() {
        let s = |count, percent| Settings {
            count,
            percent,
            ..settings()
        };
        let open = State {
            open_since_ms: Some(1),
            ..State::default()
        };
        let closed = State::default();
        let table = [
            (s(Some(3), Some(20)), 3, &closed, false),
            (s(Some(3), Some(20)), 4, &closed, true),
            (s(Some(3), Some(20)), 1, &open, true),
            (s(Some(3), None), 9, &open, false),
            (s(None, Some(20)), 1, &closed, true),
        ];
        for (settings, n, state, want) in table {
            assert_eq!(
                needs_size(&settings, n, state),
                want,
                "{settings:?} {n} {state:?}"
            );
        }
    }

    const T: i64 = 1_795_403_565_000;
    const MIN: i64 = 60_000;

    fn settings() -> Settings {
        Settings {
            window_ms: 10 * MIN,
            count: Some(3),
            percent: Some(20),
            cooldown_ms: 10 * MIN,
        }
    }

    fn alarms(times: &[i64]) -> Vec<(String, i64)> {
        times
            .iter()
            .enumerate()
            .map(|(i, t)| (format!("i-{i:03}"), *t))
            .collect()
    }

    #[test]
    fn threshold_table() {
        let s = settings();
        let only = |count, percent| Settings {
            count,
            percent,
            ..s
        };
        // (what, settings, size, alarming, trips)
        let cases: Vec<(&str, Settings, Option<usize>, usize, bool)> = vec![
            ("3 of 10: not above 3", s, Some(10), 3, false),
            ("4 of 10: above max(3, 2)", s, Some(10), 4, true),
            ("40 of 200: not above 20% = 40", s, Some(200), 40, false),
            ("41 of 200", s, Some(200), 41, true),
            ("3-node cluster: never above 3", s, Some(3), 3, false),
            ("size unknown: the count alone", s, None, 4, true),
            (
                "count off: 20% of 10 = 2",
                only(None, Some(20)),
                Some(10),
                3,
                true,
            ),
            (
                "percent off: above 3",
                only(Some(3), None),
                Some(200),
                4,
                true,
            ),
            ("both off: never", only(None, None), Some(10), 10, false),
        ];
        for (what, settings, size, n, trips) in cases {
            assert_eq!(exceeds(&settings, size, n), trips, "{what}");
        }
        assert_eq!(threshold_text(&s, Some(200)), "max(3, 20% of 200) = 40");
        assert_eq!(threshold_text(&s, Some(12)), "max(3, 20% of 12) = 3");
        assert_eq!(
            threshold_text(&only(None, Some(20)), Some(12)),
            "20% of 12 = 2.4"
        );
        assert_eq!(threshold_text(&s, None), "3");
    }

    #[test]
    fn assess_table() {
        let s = settings();
        let closed = State::default();
        let open = State {
            open_since_ms: Some(T),
            ..State::default()
        };
        let four_in_a_minute = alarms(&[T - 45_000, T - 30_000, T - 15_000, T]);
        // (what, alarms, state, now, want: "closed" | "opens:<n>" | "open" | "closes")
        type Case<'a> = (&'a str, Vec<(String, i64)>, State, i64, &'a str);
        let cases: Vec<Case> = vec![
            ("no alarm", vec![], closed.clone(), T, "closed"),
            (
                "three: at the threshold",
                alarms(&[T, T, T]),
                closed.clone(),
                T,
                "closed",
            ),
            (
                "four in a minute",
                four_in_a_minute.clone(),
                closed.clone(),
                T,
                "opens:4",
            ),
            (
                "four, one older than the window",
                alarms(&[T - 11 * MIN, T - 2 * MIN, T - MIN, T]),
                closed.clone(),
                T,
                "closed",
            ),
            (
                "four, but the burst was cleared",
                four_in_a_minute.clone(),
                State {
                    cleared_ms: T,
                    ..State::default()
                },
                T,
                "closed",
            ),
            (
                "windows on alarm times: a late delivery still counts",
                four_in_a_minute.clone(),
                closed.clone(),
                T + 60 * MIN,
                "opens:4",
            ),
            (
                "open, within the window",
                four_in_a_minute.clone(),
                open.clone(),
                T + MIN,
                "open",
            ),
            (
                "open: below at T-30s+10min, cool-down not over",
                four_in_a_minute.clone(),
                open.clone(),
                T + 19 * MIN,
                "open",
            ),
            (
                "open: 10 min below the threshold",
                four_in_a_minute.clone(),
                open.clone(),
                T - 45_000 + 20 * MIN,
                "closes",
            ),
            (
                "open: a new alarm keeps the count above",
                alarms(&[
                    T - 45_000,
                    T - 30_000,
                    T - 15_000,
                    T,
                    T + 9 * MIN,
                    T + 9 * MIN,
                    T + 9 * MIN,
                ]),
                open.clone(),
                T + 19 * MIN + 30_000,
                "open",
            ),
            (
                "open with nothing left to count: cool-down from opening",
                vec![],
                open.clone(),
                T + 10 * MIN,
                "closes",
            ),
        ];
        for (what, alarms, state, now, want) in cases {
            let got = match assess(&s, Some(10), &alarms, &state, now) {
                Assessment::Closed => "closed".to_string(),
                Assessment::Opens {
                    instances,
                    until_ms,
                    ..
                } => {
                    assert!(until_ms >= now + s.cooldown_ms, "{what}: until {until_ms}");
                    format!("opens:{}", instances.len())
                }
                Assessment::Open { why, until_ms } => {
                    assert!(why.starts_with(HOLD_PREFIX), "{why}");
                    assert!(until_ms > now, "{what}: open until {until_ms}, now {now}");
                    "open".into()
                }
                Assessment::Closes => "closes".into(),
            };
            assert_eq!(got, want, "{what}");
        }
    }

    #[test]
    fn a_shift_away_from_the_zone_holds_its_breaker_open_and_its_end_starts_the_cool_down() {
        let s = settings();
        let shift = Some("AWS zonal autoshift away from use1-az6".to_string());
        let closed = State::default();
        let shifted = closed.shifted(shift.clone(), T);
        assert_eq!((shifted.open_since_ms, shifted.version), (Some(T), 1));
        // Open whatever the alarms, long after any cool-down.
        match assess(&s, Some(10), &[], &shifted, T + 60 * MIN) {
            Assessment::Open { why, until_ms } => {
                assert!(
                    why.contains("use1-az6") && why.starts_with(HOLD_PREFIX),
                    "{why}"
                );
                assert_eq!(until_ms, T + 61 * MIN);
            }
            other => panic!("{other:?}"),
        }
        // Still shifted later: it stays open since the first time.
        assert_eq!(shifted.shifted(shift, T + MIN).open_since_ms, Some(T));
        // The shift ends: the cool-down runs from then.
        let ended = shifted.shifted(None, T + 30 * MIN);
        assert_eq!(
            (ended.open_since_ms, ended.shift.as_deref()),
            (Some(T + 30 * MIN), None)
        );
        let at = |now| matches!(assess(&s, Some(10), &[], &ended, now), Assessment::Closes);
        assert!(!at(T + 39 * MIN) && at(T + 40 * MIN));
        // Closing (an operator's resume) clears it; the tick sets it again while it lasts.
        assert_eq!(shifted.closed(&[], T).shift, None);
    }

    #[test]
    fn tripping_and_closing_move_the_state_on() {
        let state = State {
            open_since_ms: None,
            cleared_ms: 5,
            version: 3,
            shift: None,
        };
        let open = state.tripped(T);
        assert_eq!(
            (open.open_since_ms, open.cleared_ms, open.version),
            (Some(T), 5, 4)
        );
        let ahead = alarms(&[T - MIN, T + MIN]);
        let closed = open.closed(&ahead, T);
        assert_eq!(
            (closed.open_since_ms, closed.cleared_ms, closed.version),
            (None, T + MIN, 5)
        );
        assert_eq!(
            open.closed(&[], T).cleared_ms,
            T - 1,
            "nothing noted: forget up to now (a take-up noted now counts)"
        );
        assert_eq!(
            assess(&settings(), Some(10), &ahead, &closed, T + 2 * MIN),
            Assessment::Closed,
            "the alarms that tripped it are forgotten"
        );
    }

    #[test]
    fn scope_table() {
        use crate::model::facts::InstanceFacts;
        let tagged = InstanceFacts {
            tags: [(
                crate::rules::guard::CLUSTER_TAG.to_string(),
                "db".to_string(),
            )]
            .into(),
            ..Default::default()
        };
        let plain = InstanceFacts::default();
        use crate::model::scope::ScopeKey;
        let key = |i, g| scope_of(i, g);
        assert_eq!(key(&tagged, Some("web")), Some(ScopeKey::cluster("db")));
        assert_eq!(key(&plain, Some("web")), Some(ScopeKey::group("web")));
        assert_eq!(key(&plain, None), None);
    }

    #[test]
    fn the_summary_lists_the_members_once() {
        let ids: Vec<String> = (0..60).map(|i| format!("i-{i:03}")).collect();
        let text = opened_text(
            "group web",
            &ids,
            "max(3, 20% of 200) = 40",
            &settings(),
            "aws lambda invoke",
        );
        assert!(
            text.contains("to resume at once: `aws lambda invoke`"),
            "{text}"
        );
        assert!(
            text.contains("60 members alarmed within 10 min (threshold max(3, 20% of 200) = 40)")
        );
        assert!(text.contains("i-000, i-001"));
        assert!(text.ends_with("i-049 and 10 more"), "{text}");
        assert!(closed_text("group web", "cool-down over").contains("breaker closed for group web"));
    }

    /// What a POSIX shell passes to `aws` for `command`: its arguments, one per line.
    pub(crate) fn as_the_shell_reads(command: &str) -> Vec<String> {
        let script =
            format!("aws() {{ for a in \"$@\"; do printf '%s\\0' \"$a\"; done; }}; {command}");
        let out = std::process::Command::new("sh")
            .args(["-c", &script])
            .output()
            .unwrap();
        assert!(out.status.success(), "{command}");
        String::from_utf8(out.stdout)
            .unwrap()
            .split_terminator('\0')
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn the_resume_command_sends_the_resume_event_for_its_scope_as_the_shell_reads_it() {
        use crate::intake::{parse, Intake};
        use crate::model::scope::ScopeKey;
        let odd = "it's \"odd\" $(reboot) `x` \\ & <!channel>";
        for (function, scope) in [
            ("autoheal", ScopeKey::group("web").in_region("us-east-1")),
            (
                "autoheal-prod",
                ScopeKey::cluster("db").in_region("eu-west-1"),
            ),
            ("", ScopeKey::group(odd).in_region("ap-northeast-1")),
        ] {
            let command = resume_command(function, "us-east-1", &scope);
            let args = as_the_shell_reads(&command);
            let after = |flag: &str| {
                let at = args.iter().position(|a| a == flag).unwrap();
                args[at + 1].clone()
            };
            assert_eq!(&args[..2], ["lambda", "invoke"], "{command}");
            assert_eq!(after("--region"), "us-east-1");
            let name = if function.is_empty() {
                "<FunctionName>"
            } else {
                function
            };
            assert_eq!(after("--function-name"), name);
            assert_eq!(after("--cli-binary-format"), "raw-in-base64-out");
            match parse(after("--payload").as_bytes()).as_slice() {
                [Intake::Resume { scope: read }] => assert_eq!(read, &scope, "{command}"),
                other => panic!("{command}: {other:?}"),
            }
        }
    }
}
