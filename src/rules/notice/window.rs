//! Maintenance windows, pure: when people agree autoheal may disturb an instance ahead of a
//! scheduled notice. Written `Sun 03:00-05:00 UTC` (a day, or `Daily`; a range that may
//! cross midnight; UTC only, said explicitly so nobody reads it as local time), several
//! separated by `,`. Read from the instance's tag, else its group's, else the stack's
//! default; text that is not a window is an error for people, never a silent skip.

use crate::model::notice::EventWindow;
use std::collections::BTreeMap;
use std::fmt;

/// The tag on an instance or its Auto Scaling group.
pub const WINDOW_TAG: &str = "autoheal:maintenance-window";

const MINUTE_MS: i64 = 60_000;
const DAY_MS: i64 = 1_440 * MINUTE_MS;
/// The days of the week, Monday first, as EC2's event windows also name them.
pub const DAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// One weekly (or daily) window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Window {
    /// 0 = Monday; None: every day.
    day: Option<u8>,
    start_min: i64,
    len_min: i64,
}

/// A non-empty set of windows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Windows(Vec<Window>);

/// One occurrence of a window: [start, end).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Opening {
    pub start_ms: i64,
    pub end_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowError {
    /// Where the text came from: "tag autoheal:maintenance-window on the instance".
    pub source: String,
    pub text: String,
    pub why: String,
}

impl fmt::Display for WindowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "maintenance window {:?} ({}) is not understood: {}; write e.g. \"Sun 03:00-05:00 UTC\", several separated by \",\"",
            self.text, self.source, self.why
        )
    }
}

/// The windows `text` says.
pub fn parse(text: &str) -> Result<Windows, String> {
    if text.contains(';') {
        return Err("separate windows with \",\", not \";\"".into());
    }
    let windows = text
        .split(',')
        .map(|part| parse_one(part.trim()).map_err(|why| format!("{:?}: {why}", part.trim())))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Windows(windows))
}

fn parse_one(part: &str) -> Result<Window, String> {
    let words: Vec<&str> = part.split_whitespace().collect();
    let (day, range, zone) = match words[..] {
        [] => return Err("empty".into()),
        [day, range, zone] => (day, range, zone),
        [_, _] => return Err("name the time zone after the range: UTC".into()),
        _ => return Err("expected a day, a range HH:MM-HH:MM and UTC".into()),
    };
    if !zone.eq_ignore_ascii_case("UTC") {
        return Err(format!("time zone {zone:?}: only UTC is understood"));
    }
    let day = weekday(day)?;
    let (from, to) = range
        .split_once('-')
        .ok_or_else(|| format!("{range:?} is not a range HH:MM-HH:MM"))?;
    let (start_min, end_min) = (clock(from)?, clock(to)?);
    if start_min == 1_440 {
        return Err("a window cannot start at 24:00".into());
    }
    let len_min = (end_min - start_min).rem_euclid(1_440);
    if len_min == 0 {
        return Err(format!("{range:?} is empty"));
    }
    Ok(Window {
        day,
        start_min,
        len_min,
    })
}

fn weekday(word: &str) -> Result<Option<u8>, String> {
    let w = word.to_ascii_lowercase();
    if w == "daily" {
        return Ok(None);
    }
    DAYS.iter()
        .position(|d| w.len() >= 3 && d.starts_with(&w) && (w.len() == 3 || w == *d))
        .map(|i| Some(i as u8))
        .ok_or_else(|| format!("{word:?} is not a day (Mon ... Sun, or Daily)"))
}

/// `HH:MM` (or `H:MM`; `24:00` as an end) -> minutes since midnight.
fn clock(text: &str) -> Result<i64, String> {
    let bad = || format!("{text:?} is not a time HH:MM");
    let (h, m) = text.split_once(':').ok_or_else(bad)?;
    let digits = |s: &str, n: std::ops::RangeInclusive<usize>| {
        n.contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
    };
    if !digits(h, 1..=2) || !digits(m, 2..=2) {
        return Err(bad());
    }
    let (h, m): (i64, i64) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    match (h, m) {
        (24, 0) => Ok(1_440),
        (0..=23, 0..=59) => Ok(h * 60 + m),
        _ => Err(bad()),
    }
}

impl Windows {
    /// Every opening that starts from the day before `at_ms` to eight days after it:
    /// enough to hold the one open at `at_ms` and the next of each window.
    fn openings_near(&self, at_ms: i64) -> impl Iterator<Item = Opening> + '_ {
        let today = at_ms.div_euclid(DAY_MS);
        (today - 1..=today + 8).flat_map(move |day| {
            // 1970-01-01 was a Thursday (3 days after a Monday).
            let weekday = (day + 3).rem_euclid(7) as u8;
            self.0
                .iter()
                .filter(move |w| w.day.is_none_or(|d| d == weekday))
                .map(move |w| {
                    let start_ms = day * DAY_MS + w.start_min * MINUTE_MS;
                    Opening {
                        start_ms,
                        end_ms: start_ms + w.len_min * MINUTE_MS,
                    }
                })
        })
    }

    /// The opening `at_ms` is inside, if any (the one ending last when two overlap).
    pub fn open_at(&self, at_ms: i64) -> Option<Opening> {
        self.openings_near(at_ms)
            .filter(|o| o.start_ms <= at_ms && at_ms < o.end_ms)
            .max_by_key(|o| o.end_ms)
    }

    /// The first opening that starts at or after `at_ms`.
    pub fn next_opening(&self, at_ms: i64) -> Option<Opening> {
        self.openings_near(at_ms)
            .filter(|o| o.start_ms >= at_ms)
            .min_by_key(|o| o.start_ms)
    }

    /// The first moment in `[from_ms, to_ms]` that is inside a window.
    pub fn first_between(&self, from_ms: i64, to_ms: i64) -> Option<i64> {
        let first = match self.open_at(from_ms) {
            Some(_) => from_ms,
            None => self.next_opening(from_ms)?.start_ms,
        };
        (first <= to_ms).then_some(first)
    }
}

/// The windows that apply, and where they come from: the instance's tag, else its group's,
/// else EC2's instance event window associated with the instance (`ec2`, from
/// `event_window_for`), else the stack's default (`None`: no window anywhere).
pub fn windows_for(
    instance_tags: &BTreeMap<String, String>,
    group_tags: Option<&BTreeMap<String, String>>,
    ec2: Option<&EventWindow>,
    default: Option<&str>,
) -> Result<Option<(Windows, String)>, WindowError> {
    let Some(c) = chosen(instance_tags, group_tags, ec2, default) else {
        return Ok(None);
    };
    let windows = match c.from {
        From::Ec2(w) => from_ec2(w),
        From::Tag | From::Default => parse(&c.text),
    };
    match windows {
        Ok(w) => Ok(Some((w, c.source))),
        Err(why) => Err(WindowError {
            source: c.source,
            text: c.text,
            why,
        }),
    }
}

/// The window that applies, as written, and where it comes from.
pub struct Chosen<'a> {
    /// The text (an EC2 window's ranges as autoheal says them).
    pub text: String,
    /// Where it comes from, for people.
    pub source: String,
    from: From<'a>,
}

enum From<'a> {
    Tag,
    Ec2(&'a EventWindow),
    Default,
}

impl Chosen<'_> {
    /// The window said with where it comes from, as the notice's record keeps it.
    pub fn said(&self) -> String {
        match self.from {
            From::Default => format!(
                "{} ({}, AUTOHEAL_MAINTENANCE_WINDOW)",
                self.text, self.source
            ),
            From::Tag | From::Ec2(_) => format!("{} ({})", self.text, self.source),
        }
    }
}

/// The window in `windows_for`'s order: the instance's tag, its group's, EC2's instance
/// event window, the stack's default.
pub fn chosen<'a>(
    instance_tags: &BTreeMap<String, String>,
    group_tags: Option<&BTreeMap<String, String>>,
    ec2: Option<&'a EventWindow>,
    default: Option<&str>,
) -> Option<Chosen<'a>> {
    let tagged = |tags: Option<&BTreeMap<String, String>>, on: &str| {
        tags.and_then(|t| t.get(WINDOW_TAG)).map(|v| Chosen {
            text: v.clone(),
            source: format!("tag {WINDOW_TAG} on the {on}"),
            from: From::Tag,
        })
    };
    tagged(Some(instance_tags), "instance")
        .or_else(|| tagged(group_tags, "Auto Scaling group"))
        .or_else(|| {
            ec2.map(|w| {
                let name = w.name.as_deref().map_or(String::new(), |n| format!(" {n}"));
                Chosen {
                    text: said_ec2(w),
                    source: format!("EC2's instance event window{name} ({})", w.id),
                    from: From::Ec2(w),
                }
            })
        })
        .or_else(|| {
            default.map(|d| Chosen {
                text: d.to_string(),
                source: "the stack's default".to_string(),
                from: From::Default,
            })
        })
}

/// The EC2 instance event window associated with the instance: by its id first, else by
/// one of its tags (EC2 lets an instance have one).
pub fn event_window_for<'a>(
    windows: &'a [EventWindow],
    instance_id: &str,
    tags: &BTreeMap<String, String>,
) -> Option<&'a EventWindow> {
    windows
        .iter()
        .find(|w| w.instance_ids.iter().any(|i| i == instance_id))
        .or_else(|| {
            windows.iter().find(|w| {
                w.tags
                    .iter()
                    .any(|(k, v)| tags.get(k).is_some_and(|t| t == v))
            })
        })
}

/// An EC2 window's weekly ranges as windows of at most a day each (a range may run over
/// several days); a cron expression is not read.
fn from_ec2(w: &EventWindow) -> Result<Windows, String> {
    if let Some(cron) = &w.cron {
        return Err(format!(
            "EC2's window is the cron expression {cron:?}, which autoheal does not read; tag the instance with {WINDOW_TAG}"
        ));
    }
    const WEEK_MIN: i64 = 7 * 1_440;
    let mut out = vec![];
    for &(from_day, from_hour, to_day, to_hour) in &w.ranges {
        let start = i64::from(from_day) * 1_440 + from_hour * 60;
        let mut left = (i64::from(to_day) * 1_440 + to_hour * 60 - start).rem_euclid(WEEK_MIN);
        let mut at = start;
        while left > 0 {
            let in_day = at.rem_euclid(1_440);
            let len_min = left.min(1_440 - in_day);
            out.push(Window {
                day: Some(at.div_euclid(1_440).rem_euclid(7) as u8),
                start_min: in_day,
                len_min,
            });
            (at, left) = (at + len_min, left - len_min);
        }
    }
    match out.is_empty() {
        true => Err("EC2's window has no time range".into()),
        false => Ok(Windows(out)),
    }
}

/// "Mon 02:00 - Wed 08:00 UTC, …", or the cron expression.
fn said_ec2(w: &EventWindow) -> String {
    if let Some(cron) = &w.cron {
        return format!("cron {cron}");
    }
    let day = |d: u8| {
        let name = DAYS[usize::from(d % 7)];
        format!("{}{}", name[..1].to_ascii_uppercase(), &name[1..3])
    };
    let ranges: Vec<String> = w
        .ranges
        .iter()
        .map(|&(fd, fh, td, th)| format!("{} {fh:02}:00 - {} {th:02}:00", day(fd), day(td)))
        .collect();
    format!("{} UTC", ranges.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sunday 2026-11-22 00:00 UTC.
    const SUNDAY: i64 = 1_795_305_600_000;
    const H: i64 = 60 * MINUTE_MS;

    fn at(day: i64, hours: i64, minutes: i64) -> i64 {
        SUNDAY + day * DAY_MS + hours * H + minutes * MINUTE_MS
    }

    #[test]
    fn the_anchor_is_a_sunday() {
        let d = chrono::DateTime::from_timestamp_millis(SUNDAY).unwrap();
        assert_eq!(d.to_rfc3339(), "2026-11-22T00:00:00+00:00");
        assert_eq!(chrono::Datelike::weekday(&d), chrono::Weekday::Sun);
    }

    #[test]
    fn windows_parse_or_say_why_not() {
        let good = [
            ("Sun 03:00-05:00 UTC", vec![(Some(6), 180, 120)]),
            ("sunday 3:00-05:00 utc", vec![(Some(6), 180, 120)]),
            ("Daily 22:00-02:00 UTC", vec![(None, 1_320, 240)]),
            ("Sat 23:30-24:00 UTC", vec![(Some(5), 1_410, 30)]),
            (
                "Mon 01:00-02:00 UTC, Thu 12:00-12:30 UTC",
                vec![(Some(0), 60, 60), (Some(3), 720, 30)],
            ),
        ];
        for (text, want) in good {
            let got: Vec<_> = parse(text)
                .unwrap_or_else(|e| panic!("{text}: {e}"))
                .0
                .iter()
                .map(|w| (w.day, w.start_min, w.len_min))
                .collect();
            assert_eq!(got, want, "{text}");
        }
        let bad = [
            ("", "\"\": empty"),
            ("Sun 03:00-05:00", "name the time zone after the range: UTC"),
            (
                "Sun 03:00-05:00 CET",
                "time zone \"CET\": only UTC is understood",
            ),
            (
                "Sun 03:00-05:00 UTC; Mon 01:00-02:00 UTC",
                "separate windows with \",\"",
            ),
            ("Sun 03:00-05:00 UTC,", "\"\": empty"),
            ("Someday 03:00-05:00 UTC", "\"Someday\" is not a day"),
            ("Su 03:00-05:00 UTC", "\"Su\" is not a day"),
            ("Sun 3-5 UTC", "\"3\" is not a time HH:MM"),
            ("Sun 03:00 UTC", "\"03:00\" is not a range HH:MM-HH:MM"),
            ("Sun 25:00-26:00 UTC", "\"25:00\" is not a time HH:MM"),
            ("Sun 03:60-04:00 UTC", "\"03:60\" is not a time HH:MM"),
            ("Sun 03:00-03:00 UTC", "\"03:00-03:00\" is empty"),
            ("Sun 24:00-01:00 UTC", "cannot start at 24:00"),
            (
                "Sun 03:00 - 05:00 UTC",
                "expected a day, a range HH:MM-HH:MM and UTC",
            ),
        ];
        for (text, why) in bad {
            let e = parse(text).expect_err(text);
            assert!(e.contains(why), "{text}: {e:?} should contain {why:?}");
        }
    }

    #[test]
    fn openings_inside_and_next() {
        let w = parse("Sun 03:00-05:00 UTC, Daily 23:00-01:00 UTC").unwrap();
        // (time, open at it (start, end), next opening's start at or after it)
        let table = [
            (at(0, 2, 0), None, at(0, 3, 0)),
            (at(0, 3, 0), Some((at(0, 3, 0), at(0, 5, 0))), at(0, 3, 0)),
            (at(0, 4, 59), Some((at(0, 3, 0), at(0, 5, 0))), at(0, 23, 0)),
            (at(0, 5, 0), None, at(0, 23, 0)),
            // Inside the daily window that began the day before, across midnight.
            (
                at(1, 0, 30),
                Some((at(0, 23, 0), at(1, 1, 0))),
                at(1, 23, 0),
            ),
            (at(1, 1, 0), None, at(1, 23, 0)),
        ];
        for (t, open, next) in table {
            assert_eq!(
                w.open_at(t).map(|o| (o.start_ms, o.end_ms)),
                open,
                "open at {t}"
            );
            assert_eq!(w.next_opening(t).unwrap().start_ms, next, "next at {t}");
        }
        // A weekly window a week away is still found.
        let weekly = parse("Sun 03:00-05:00 UTC").unwrap();
        assert_eq!(
            weekly.next_opening(at(0, 6, 0)).unwrap().start_ms,
            at(7, 3, 0)
        );
        assert_eq!(
            weekly.next_opening(at(-1, 6, 0)).unwrap().start_ms,
            at(0, 3, 0)
        );
    }

    #[test]
    fn the_first_moment_inside_a_window_between_two_times() {
        let w = parse("Sun 03:00-05:00 UTC").unwrap();
        // (from, to, first)
        let table = [
            (at(0, 4, 0), at(0, 4, 0), Some(at(0, 4, 0))),
            (at(0, 1, 0), at(0, 3, 0), Some(at(0, 3, 0))),
            (at(0, 1, 0), at(0, 2, 59), None),
            (at(0, 6, 0), at(6, 0, 0), None),
            (at(0, 6, 0), at(7, 4, 0), Some(at(7, 3, 0))),
        ];
        for (from, to, first) in table {
            assert_eq!(w.first_between(from, to), first, "{from}..{to}");
        }
    }

    #[test]
    fn the_nearest_tag_wins_and_a_bad_one_is_an_error_naming_it() {
        let tags = |v: Option<&str>| -> BTreeMap<String, String> {
            v.map(|v| (WINDOW_TAG.to_string(), v.to_string()))
                .into_iter()
                .collect()
        };
        let (inst, group) = (
            tags(Some("Sun 03:00-05:00 UTC")),
            tags(Some("Mon 01:00-02:00 UTC")),
        );
        let none = tags(None);
        let source = |r: Result<Option<(Windows, String)>, WindowError>| r.unwrap().map(|(_, s)| s);
        let ec2 = EventWindow {
            id: "iew-0123456789abcdef0".into(),
            name: Some("nightly".into()),
            ranges: vec![(0, 2, 0, 6)],
            ..Default::default()
        };
        let default = Some("Daily 00:00-01:00 UTC");
        assert_eq!(
            source(windows_for(&inst, Some(&group), Some(&ec2), default)).unwrap(),
            "tag autoheal:maintenance-window on the instance"
        );
        assert_eq!(
            source(windows_for(&none, Some(&group), Some(&ec2), None)).unwrap(),
            "tag autoheal:maintenance-window on the Auto Scaling group"
        );
        assert_eq!(
            source(windows_for(&none, None, Some(&ec2), default)).unwrap(),
            "EC2's instance event window nightly (iew-0123456789abcdef0)"
        );
        assert_eq!(
            source(windows_for(&none, None, None, default)).unwrap(),
            "the stack's default"
        );
        assert_eq!(source(windows_for(&none, None, None, None)), None);
        let e = windows_for(&tags(Some("Sundays at 3")), Some(&group), None, None).unwrap_err();
        assert_eq!(e.source, "tag autoheal:maintenance-window on the instance");
        let said = e.to_string();
        assert!(said.starts_with("maintenance window \"Sundays at 3\" (tag autoheal:maintenance-window on the instance) is not understood: "), "{said}");
        assert!(
            said.ends_with("write e.g. \"Sun 03:00-05:00 UTC\", several separated by \",\""),
            "{said}"
        );
    }

    #[test]
    fn an_ec2_event_window_is_read_as_weekly_windows_of_a_day_at_most() {
        let w = |ranges: Vec<(u8, i64, u8, i64)>| EventWindow {
            id: "iew-1".into(),
            ranges,
            ..Default::default()
        };
        // Monday 22:00 to Wednesday 02:00: three pieces, one opening Monday night.
        let long = from_ec2(&w(vec![(0, 22, 2, 2)])).unwrap();
        assert_eq!(
            long.0,
            vec![
                Window {
                    day: Some(0),
                    start_min: 1_320,
                    len_min: 120
                },
                Window {
                    day: Some(1),
                    start_min: 0,
                    len_min: 1_440
                },
                Window {
                    day: Some(2),
                    start_min: 0,
                    len_min: 120
                },
            ]
        );
        // Tuesday noon is inside it; the next opening after Wednesday 02:00 is next Monday's.
        assert!(long.open_at(at(2, 12, 0)).is_some());
        assert_eq!(
            long.next_opening(at(3, 3, 0)).unwrap().start_ms,
            at(8, 22, 0)
        );
        // Saturday 20:00 to Monday 04:00 wraps the week.
        let wrap = from_ec2(&w(vec![(5, 20, 0, 4)])).unwrap();
        assert_eq!(wrap.0.len(), 3);
        assert!(wrap.open_at(at(0, 12, 0)).is_some(), "Sunday noon");
        let cron = EventWindow {
            cron: Some("* 21-23 * * 2,3".into()),
            ..w(vec![])
        };
        let e = windows_for(&BTreeMap::new(), None, Some(&cron), None).unwrap_err();
        assert!(
            e.to_string()
                .contains("cron expression \"* 21-23 * * 2,3\", which autoheal does not read"),
            "{e}"
        );
        assert!(from_ec2(&w(vec![])).is_err());
        assert_eq!(
            said_ec2(&w(vec![(0, 22, 2, 2), (6, 3, 6, 7)])),
            "Mon 22:00 - Wed 02:00, Sun 03:00 - Sun 07:00 UTC"
        );
    }

    #[test]
    fn the_ec2_window_of_an_instance_is_the_one_naming_it_else_one_of_its_tags() {
        let by_tag = EventWindow {
            id: "iew-tag".into(),
            tags: vec![("team".into(), "db".into())],
            ..Default::default()
        };
        let by_id = EventWindow {
            id: "iew-id".into(),
            instance_ids: vec!["i-1".into()],
            ..Default::default()
        };
        let windows = [by_tag.clone(), by_id];
        let tags: BTreeMap<String, String> = [("team".to_string(), "db".to_string())].into();
        assert_eq!(
            event_window_for(&windows, "i-1", &tags).unwrap().id,
            "iew-id"
        );
        assert_eq!(
            event_window_for(&windows, "i-2", &tags).unwrap().id,
            "iew-tag"
        );
        let other: BTreeMap<String, String> = [("team".to_string(), "web".to_string())].into();
        assert_eq!(event_window_for(&windows, "i-2", &other), None);
    }

    #[test]
    fn windows_are_said_with_where_they_come_from() {
        let tagged =
            BTreeMap::from([(WINDOW_TAG.to_string(), "Daily 01:00-02:00 UTC".to_string())]);
        let none = BTreeMap::new();
        let d = Some("Sun 03:00-05:00 UTC");
        let group = BTreeMap::from([(WINDOW_TAG.to_string(), "Sat 01:00-02:00 UTC".to_string())]);
        let said = |tags, group, d| chosen(tags, group, None, d).map(|c| c.said());
        assert_eq!(
            said(&tagged, Some(&group), d).unwrap(),
            "Daily 01:00-02:00 UTC (tag autoheal:maintenance-window on the instance)"
        );
        assert_eq!(
            said(&none, Some(&group), d).unwrap(),
            "Sat 01:00-02:00 UTC (tag autoheal:maintenance-window on the Auto Scaling group)"
        );
        assert_eq!(
            said(&none, None, d).unwrap(),
            "Sun 03:00-05:00 UTC (the stack's default, AUTOHEAL_MAINTENANCE_WINDOW)"
        );
        assert_eq!(said(&none, None, None), None);
    }
}
