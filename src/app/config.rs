//! Start-up configuration from the environment (the contract: the README's configuration table).
//! Every bad value is an error naming its variable, found before the first poll.

use crate::rules::decide::Grace;
use base64::Engine;

mod notices;
mod regions;
mod storm;
pub use notices::Notices;
use regions::regions;
pub use regions::Regions;

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{variable}: {problem}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub problem: String,
}

#[derive(Clone, PartialEq)]
pub struct Config {
    pub table: String,
    /// The function's own region: the ledger's, and the default of `regions`.
    pub region: String,
    /// The regions whose alarms it acts on (`AUTOHEAL_REGIONS`).
    pub regions: Regions,
    /// KMS ciphertext of the Slack webhook URL, already base64-decoded.
    pub slack_webhook_ciphertext: Option<Vec<u8>>,
    pub dry_run: bool,
    pub function_name: String,
    /// How long a relaunched copy has to pass both status checks.
    pub verify_timeout_ms: i64,
    /// Terminate (rather than stop and keep) an instance once its copy took over.
    pub terminate_replaced: bool,
    /// A backup older than this is not relaunched from (`autoheal:relaunch-from`).
    pub backup_max_age_ms: i64,
    /// The tag an instance must carry besides `autoheal:backup` to be backed up
    /// (`AUTOHEAL_BACKUP_SELECTOR`); None: no instance is.
    pub backup_selector: Option<crate::rules::backup::Selector>,
    /// How long after the alarm's state change to wait before acting.
    pub grace: Grace,
    /// A copy autoheal launched is not relaunched again within this (0: no limit).
    pub lineage_window_ms: i64,
    /// One member of an `autoheal:cluster`, or of a group of ≤ 3, under repair at a time.
    pub quorum_guard: bool,
    /// At most this percent of a larger group under repair at once (None: no limit).
    pub max_inflight_percent: Option<u32>,
    /// At most this many new repairs per 10 minutes of alarm time (None: no limit).
    pub account_max_repairs: Option<u32>,
    /// The correlated-failure breaker of groups and clusters (None: off).
    pub breaker: Option<crate::rules::breaker::Settings>,
    /// The zone breaker, the storm's updates and the pace of the take-up.
    pub storm: crate::rules::storm::Settings,
    /// The escalation ladders of standalone instances.
    pub ladders: crate::rules::ladder::Ladders,
    /// How long an alarm EC2 does not confirm is looked at again before it goes to people.
    pub confirm_window_ms: i64,
    /// The tick's scan for impaired instances no alarm reported: at most this many new
    /// incidents per tick (None: off, the default).
    pub scan: Option<u32>,
    /// More tag keys (`prefix*` for a prefix) of controllers whose instances autoheal leaves
    /// to people, beyond the ones it knows (`owner::CONTROLLER_TAGS`).
    pub other_controllers: Vec<String>,
    /// The status-check alarms autoheal keeps for its copies and new group members (None:
    /// off, `AUTOHEAL_ALARMS=off`).
    pub alarms: Option<Alarms>,
    /// `AUTOHEAL_RUNBOOK_URL`: the deployer's docs/RUNBOOK.md, linked by reports for people.
    pub runbook_url: Option<String>,
    /// EC2's scheduled notices: heard or not, the lead time, the stack's default window.
    pub notices: Notices,
}

/// `AUTOHEAL_ALARMS`, `AUTOHEAL_ALARM_NAME_PREFIX`, `AUTOHEAL_ALARM_TOPIC_ARN`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alarms {
    /// The stack's `AlarmNamePrefix`: alarms are named `<prefix>StatusCheckFailed-<id>`.
    pub name_prefix: String,
    /// Where the standard alarm sends ALARM and OK (a copy whose source had no alarm of
    /// autoheal's); None: such a copy gets none, and the report says so.
    pub topic_arn: Option<String>,
    /// At most this many new members' alarms made per tick per region.
    pub per_tick: usize,
}

/// `AUTOHEAL_ALARMS=on`: at most this many new members' alarms per tick and region.
pub const DEFAULT_ALARMS_PER_TICK: u32 = 10;

/// `AUTOHEAL_SCAN=on`: at most this many instances found per tick become incidents.
pub const DEFAULT_SCAN_PER_TICK: u32 = 10;

pub const DEFAULT_CONFIRM_WINDOW_SECONDS: i64 = 600;

pub const DEFAULT_ACCOUNT_MAX_REPAIRS: u32 = 5;

pub const DEFAULT_MAX_INFLIGHT_PERCENT: u32 = 10;

pub const DEFAULT_LINEAGE_WINDOW_SECONDS: i64 = 24 * 3600;

/// The deployer's backup selector (`crate::rules::backup::Selector`).
pub const BACKUP_SELECTOR_VARIABLE: &str = "AUTOHEAL_BACKUP_SELECTOR";

pub const DEFAULT_VERIFY_TIMEOUT_SECONDS: i64 = 15 * 60;
pub const DEFAULT_BACKUP_MAX_AGE_SECONDS: i64 = 24 * 3600;

fn flag(variable: &'static str, value: Option<String>, default: bool) -> Result<bool, ConfigError> {
    match value.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None => Ok(default),
        Some("false") | Some("0") | Some("no") | Some("off") => Ok(false),
        Some("true") | Some("1") | Some("yes") | Some("on") => Ok(true),
        Some(other) => Err(ConfigError {
            variable,
            problem: format!("expected true or false (on or off), got {other:?}"),
        }),
    }
}

/// A limit that `off` disables: unset -> `default`, `off` -> None, else `parse`.
fn unless_off<T>(
    value: Option<String>,
    default: T,
    parse: impl FnOnce(String) -> Result<T, ConfigError>,
) -> Result<Option<T>, ConfigError> {
    match value {
        None => Ok(Some(default)),
        Some(v) if v.eq_ignore_ascii_case("off") => Ok(None),
        Some(v) => parse(v).map(Some),
    }
}

/// A percentage from 1 to 100 (`25` or `25%`).
fn percent(variable: &'static str, v: &str) -> Result<u32, ConfigError> {
    count(variable, v.trim_end_matches('%'), 100)
}

/// A duration in ms that `off` turns to 0 (unset: `default_seconds`).
fn duration_or_off(
    variable: &'static str,
    value: Option<String>,
    default_seconds: i64,
) -> Result<i64, ConfigError> {
    let ms = |v: String| duration_seconds(variable, Some(v), 0).map(|s| s * 1000);
    Ok(unless_off(value, default_seconds * 1000, ms)?.unwrap_or(0))
}

/// A whole number from 1 to `max`.
fn count(variable: &'static str, v: &str, max: u32) -> Result<u32, ConfigError> {
    match v.parse::<u32>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(ConfigError {
            variable,
            problem: format!("expected a whole number from 1 to {max}, or off, got {v:?}"),
        }),
    }
}

/// Seconds, or a number with a unit: `900`, `900s`, `15m`, `1h`.
fn duration_seconds(
    variable: &'static str,
    value: Option<String>,
    default: i64,
) -> Result<i64, ConfigError> {
    let Some(v) = value else { return Ok(default) };
    let (digits, unit) = match v.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => v.split_at(i),
        None => (v.as_str(), "s"),
    };
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => 0,
    };
    match digits.parse::<i64>() {
        Ok(n) if n > 0 && scale > 0 => Ok(n * scale),
        _ => Err(ConfigError {
            variable,
            problem: format!("expected a positive duration like 900, 15m or 1h, got {v:?}"),
        }),
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("table", &self.table)
            .field("region", &self.region)
            .field("regions", &self.regions)
            .field("slack_configured", &self.slack_webhook_ciphertext.is_some())
            .field("dry_run", &self.dry_run)
            .field("function_name", &self.function_name)
            .field("verify_timeout_ms", &self.verify_timeout_ms)
            .field("terminate_replaced", &self.terminate_replaced)
            .field("backup_max_age_ms", &self.backup_max_age_ms)
            .field("backup_selector", &self.backup_selector)
            .field("grace", &self.grace)
            .field("lineage_window_ms", &self.lineage_window_ms)
            .field("quorum_guard", &self.quorum_guard)
            .field("max_inflight_percent", &self.max_inflight_percent)
            .field("account_max_repairs", &self.account_max_repairs)
            .field("other_controllers", &self.other_controllers)
            .field("notices", &self.notices)
            .finish()
    }
}

impl Config {
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(|k| std::env::var(k).ok())
    }

    /// `lookup` returns the variable's value, or None when unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let get = |k: &str| {
            lookup(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let table = get("AUTOHEAL_TABLE")
            .ok_or_else(|| err("AUTOHEAL_TABLE", "must name the DynamoDB ledger table"))?;
        let region = get("AWS_REGION")
            .or_else(|| get("AWS_DEFAULT_REGION"))
            .ok_or_else(|| err("AWS_REGION", "must be set (Lambda sets it)"))?;
        let regions = regions(get("AUTOHEAL_REGIONS"), &region)?;
        let dry_run = flag("AUTOHEAL_DRY_RUN", get("AUTOHEAL_DRY_RUN"), false)?;
        let terminate_replaced = flag(
            "AUTOHEAL_TERMINATE_REPLACED",
            get("AUTOHEAL_TERMINATE_REPLACED"),
            false,
        )?;
        let verify_timeout_ms = 1000
            * duration_seconds(
                "AUTOHEAL_VERIFY_TIMEOUT",
                get("AUTOHEAL_VERIFY_TIMEOUT"),
                DEFAULT_VERIFY_TIMEOUT_SECONDS,
            )?;
        let backup_max_age_ms = 1000
            * duration_seconds(
                "AUTOHEAL_BACKUP_MAX_AGE",
                get("AUTOHEAL_BACKUP_MAX_AGE"),
                DEFAULT_BACKUP_MAX_AGE_SECONDS,
            )?;
        // Unset: `autoheal:backup` alone, anyone's to write who may tag, selects nothing.
        let backup_selector = get(BACKUP_SELECTOR_VARIABLE)
            .map(|v| crate::rules::backup::Selector::parse(&v))
            .transpose()
            .map_err(|e| err(BACKUP_SELECTOR_VARIABLE, &e))?;
        let grace = grace(&get)?;
        // No `off`: acting on an alarm that EC2 does not confirm is never allowed.
        let confirm_window_ms = 1000
            * duration_seconds(
                "AUTOHEAL_CONFIRM_WINDOW",
                get("AUTOHEAL_CONFIRM_WINDOW"),
                DEFAULT_CONFIRM_WINDOW_SECONDS,
            )?;
        let lineage_window_ms = duration_or_off(
            "AUTOHEAL_LINEAGE_WINDOW",
            get("AUTOHEAL_LINEAGE_WINDOW"),
            DEFAULT_LINEAGE_WINDOW_SECONDS,
        )?;
        let (quorum_guard, max_inflight_percent, account_max_repairs) = guards(&get)?;
        let other_controllers = controller_tags(get("AUTOHEAL_OTHER_CONTROLLER_TAGS"))?;
        let breaker = breaker_settings(&get)?;
        let function_name = get("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_default();
        let (slack_webhook_ciphertext, runbook_url) = reports(&get, &function_name)?;
        Ok(Config {
            table,
            region,
            regions,
            slack_webhook_ciphertext,
            dry_run,
            function_name,
            verify_timeout_ms,
            terminate_replaced,
            backup_max_age_ms,
            backup_selector,
            grace,
            lineage_window_ms,
            quorum_guard,
            max_inflight_percent,
            account_max_repairs,
            storm: storm::storm(&get, breaker.as_ref())?,
            breaker,
            ladders: ladders(&get)?,
            confirm_window_ms,
            scan: scan(&get)?,
            other_controllers,
            alarms: alarms(&get)?,
            runbook_url,
            notices: notices::notices(&get)?,
        })
    }
}

/// The environment as `from_lookup` reads it: trimmed, empty as unset.
type Get<'a> = &'a dyn Fn(&str) -> Option<String>;

fn err(variable: &'static str, problem: &str) -> ConfigError {
    ConfigError {
        variable,
        problem: problem.to_string(),
    }
}

/// The repair guards: the quorum guard, a group's share in flight, the account's budget.
fn guards(get: Get) -> Result<(bool, Option<u32>, Option<u32>), ConfigError> {
    let quorum_guard = flag("AUTOHEAL_QUORUM_GUARD", get("AUTOHEAL_QUORUM_GUARD"), true)?;
    let max_inflight_percent = unless_off(
        get("AUTOHEAL_MAX_INFLIGHT_PERCENT"),
        DEFAULT_MAX_INFLIGHT_PERCENT,
        |v| percent("AUTOHEAL_MAX_INFLIGHT_PERCENT", &v),
    )?;
    let account_max_repairs = unless_off(
        get("AUTOHEAL_ACCOUNT_MAX_REPAIRS"),
        DEFAULT_ACCOUNT_MAX_REPAIRS,
        |v| count("AUTOHEAL_ACCOUNT_MAX_REPAIRS", &v, u32::MAX),
    )?;
    Ok((quorum_guard, max_inflight_percent, account_max_repairs))
}

/// `AUTOHEAL_SCAN`: None when off.
fn scan(get: Get) -> Result<Option<u32>, ConfigError> {
    // Off unless asked: `on` (the default bound per tick) or the bound itself.
    Ok(match get("AUTOHEAL_SCAN") {
        None => None,
        Some(v) if v.parse::<u32>().is_ok() => Some(count("AUTOHEAL_SCAN", &v, 100)?),
        v => flag("AUTOHEAL_SCAN", v, false)?.then_some(DEFAULT_SCAN_PER_TICK),
    })
}

/// `AUTOHEAL_ALARMS` (on by default), with its name prefix and topic.
fn alarms(get: Get) -> Result<Option<Alarms>, ConfigError> {
    let per_tick = match get("AUTOHEAL_ALARMS") {
        Some(v) if v.parse::<u32>().is_ok() => Some(count("AUTOHEAL_ALARMS", &v, 100)?),
        v => flag("AUTOHEAL_ALARMS", v, true)?.then_some(DEFAULT_ALARMS_PER_TICK),
    };
    let name_prefix = get("AUTOHEAL_ALARM_NAME_PREFIX")
        .unwrap_or_else(|| crate::rules::alarms::DEFAULT_NAME_PREFIX.to_string());
    // The role's grants name the prefix followed by `*`: a wildcard in it would widen them.
    if name_prefix.len() > 200 || name_prefix.contains(['*', '?']) {
        return Err(err(
            "AUTOHEAL_ALARM_NAME_PREFIX",
            "at most 200 characters, no wildcard",
        ));
    }
    let topic_arn = get("AUTOHEAL_ALARM_TOPIC_ARN");
    if let Some(t) = &topic_arn {
        if !(t.starts_with("arn:") && t.split(':').nth(2) == Some("sns")) {
            return Err(err("AUTOHEAL_ALARM_TOPIC_ARN", "an SNS topic ARN"));
        }
    }
    Ok(per_tick.map(|n| Alarms {
        name_prefix,
        topic_arn,
        per_tick: n as usize,
    }))
}

/// `AUTOHEAL_GRACE_SECONDS`.
fn grace(get: Get) -> Result<Grace, ConfigError> {
    Ok(match get("AUTOHEAL_GRACE_SECONDS") {
        None => Grace::default(),
        Some(v) => {
            // One value for both kinds; `0` means none, as `off` does.
            let ms = match v.as_str() {
                "0" => 0,
                _ => duration_or_off("AUTOHEAL_GRACE_SECONDS", Some(v), 0)?,
            };
            Grace {
                group_member_ms: ms,
                standalone_ms: ms,
            }
        }
    })
}

/// The correlated-failure breaker: `AUTOHEAL_BREAKER_*`; None when off.
fn breaker_settings(get: Get) -> Result<Option<crate::rules::breaker::Settings>, ConfigError> {
    use crate::rules::breaker::*;
    let window = unless_off(
        get("AUTOHEAL_BREAKER_WINDOW_SECONDS"),
        DEFAULT_WINDOW_SECONDS * 1000,
        |v| duration_seconds("AUTOHEAL_BREAKER_WINDOW_SECONDS", Some(v), 0).map(|s| s * 1000),
    )?;
    let above = unless_off(get("AUTOHEAL_BREAKER_COUNT"), DEFAULT_COUNT, |v| {
        count("AUTOHEAL_BREAKER_COUNT", &v, u32::MAX)
    })?;
    let by_percent = unless_off(get("AUTOHEAL_BREAKER_PERCENT"), DEFAULT_PERCENT, |v| {
        percent("AUTOHEAL_BREAKER_PERCENT", &v)
    })?;
    // `off`: resumes as soon as the count is back at the threshold.
    let cooldown_ms = duration_or_off(
        "AUTOHEAL_BREAKER_COOLDOWN_SECONDS",
        get("AUTOHEAL_BREAKER_COOLDOWN_SECONDS"),
        DEFAULT_COOLDOWN_SECONDS,
    )?;
    Ok(match (window, above, by_percent) {
        (Some(window_ms), above, by_percent) if above.is_some() || by_percent.is_some() => {
            Some(Settings {
                window_ms,
                count: above,
                percent: by_percent,
                cooldown_ms,
            })
        }
        _ => None,
    })
}

/// The escalation ladders and their rung timeout.
fn ladders(get: Get) -> Result<crate::rules::ladder::Ladders, ConfigError> {
    let ladder =
        |variable: &'static str, default: Vec<crate::rules::ladder::Rung>| match get(variable) {
            None => Ok(default),
            Some(v) => crate::rules::ladder::parse_ladder(&v).map_err(|e| err(variable, &e)),
        };
    let defaults = crate::rules::ladder::Ladders::default();
    Ok(crate::rules::ladder::Ladders {
        system: ladder("AUTOHEAL_SYSTEM_LADDER", defaults.system)?,
        instance: ladder("AUTOHEAL_INSTANCE_LADDER", defaults.instance)?,
        timeout_ms: match get("AUTOHEAL_RUNG_TIMEOUT") {
            None => None,
            v => Some(1000 * duration_seconds("AUTOHEAL_RUNG_TIMEOUT", v, 0)?),
        },
    })
}

/// `SLACK_WEBHOOK_ENCRYPTED` decoded (the function's name is its KMS context), the runbook's URL.
fn reports(get: Get, function: &str) -> Result<(Option<Vec<u8>>, Option<String>), ConfigError> {
    let variable = "AUTOHEAL_RUNBOOK_URL";
    let runbook = get(variable).map(crate::notify::message::runbook_url);
    let runbook = runbook.transpose().map_err(|e| err(variable, &e))?;
    let webhook = match get("SLACK_WEBHOOK_ENCRYPTED") {
        None => None,
        Some(b64) => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64.as_bytes())
                .map_err(|e| err("SLACK_WEBHOOK_ENCRYPTED", &format!("not base64: {e}")))?;
            if bytes.is_empty() {
                return Err(err("SLACK_WEBHOOK_ENCRYPTED", "decodes to nothing"));
            }
            if function.is_empty() {
                return Err(err(
                    "AWS_LAMBDA_FUNCTION_NAME",
                    "must be set: it is the KMS encryption context of SLACK_WEBHOOK_ENCRYPTED",
                ));
            }
            Some(bytes)
        }
    };
    Ok((webhook, runbook))
}

/// `AUTOHEAL_OTHER_CONTROLLER_TAGS`: comma-separated tag keys, each at most 128 characters
/// (EC2's limit), a trailing `*` for a prefix of at least one character.
fn controller_tags(value: Option<String>) -> Result<Vec<String>, ConfigError> {
    let Some(value) = value else {
        return Ok(vec![]);
    };
    value
        .split(',')
        .map(str::trim)
        .map(|key| {
            let body = key.strip_suffix('*').unwrap_or(key);
            let bad = body.is_empty()
                || key.chars().count() > 128
                || body.contains('*')
                || key.chars().any(char::is_whitespace);
            match bad {
                true => Err(ConfigError {
                    variable: "AUTOHEAL_OTHER_CONTROLLER_TAGS",
                    problem: format!(
                        "{key:?} is not a tag key (or a prefix ending in *) of at most 128 characters"
                    ),
                }),
                false => Ok(key.to_string()),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }
    const BASE: [(&str, &str); 2] = [("AUTOHEAL_TABLE", "t"), ("AWS_REGION", "us-east-1")];

    #[test]
    fn minimal_config_is_valid_and_acts() {
        let c = cfg(&BASE).unwrap();
        assert_eq!(c.table, "t");
        assert!(!c.dry_run);
        assert!(!c.terminate_replaced);
        assert_eq!(c.verify_timeout_ms, 900_000);
        assert_eq!(c.confirm_window_ms, 600_000);
        assert_eq!(c.scan, None, "the scan is off unless asked");
        assert_eq!(
            c.alarms,
            Some(Alarms {
                name_prefix: "autoheal-".into(),
                topic_arn: None,
                per_tick: 10
            }),
            "the copies' and new members' alarms are kept unless asked not to"
        );
        for (v, want) in [("off", None), ("3", Some(3))] {
            let c = cfg(&[BASE[0], BASE[1], ("AUTOHEAL_ALARMS", v)]).unwrap();
            assert_eq!(c.alarms.map(|a| a.per_tick), want, "{v}");
        }
        for (k, v) in [
            ("AUTOHEAL_ALARMS", "0"),
            ("AUTOHEAL_ALARMS", "101"),
            ("AUTOHEAL_ALARM_NAME_PREFIX", "autoheal-*"),
            (
                "AUTOHEAL_ALARM_TOPIC_ARN",
                "arn:aws:lambda:us-east-1:1:function:x",
            ),
        ] {
            let e = cfg(&[BASE[0], BASE[1], (k, v)]).unwrap_err();
            assert_eq!(e.variable, k, "{v}");
        }
        for (v, want) in [("on", Some(10)), ("off", None), ("25", Some(25))] {
            let c = cfg(&[BASE[0], BASE[1], ("AUTOHEAL_SCAN", v)]).unwrap();
            assert_eq!(c.scan, want, "{v}");
        }
        assert!(c.slack_webhook_ciphertext.is_none());
        assert_eq!(
            c.backup_selector, None,
            "no instance is backed up unless selected"
        );
        let c = cfg(&[
            BASE[0],
            BASE[1],
            ("AUTOHEAL_BACKUP_SELECTOR", "backup=approved"),
        ])
        .unwrap();
        assert_eq!(
            c.backup_selector.map(|s| s.to_string()).as_deref(),
            Some("backup=approved")
        );
    }

    #[test]
    fn regions_default_to_the_functions_own_a_list_or_any() {
        let served = |v: Option<&str>| {
            let mut pairs = BASE.to_vec();
            pairs.extend(v.map(|v| ("AUTOHEAL_REGIONS", v)));
            cfg(&pairs).unwrap().regions
        };
        assert_eq!(served(None), Regions::Listed(vec!["us-east-1".into()]));
        let two = served(Some(" ap-northeast-1, us-east-1,ap-northeast-1 "));
        assert_eq!(
            two,
            Regions::Listed(vec!["ap-northeast-1".into(), "us-east-1".into()])
        );
        assert!(two.serves("ap-northeast-1") && !two.serves("eu-west-1"));
        assert_eq!(two.describe(), "ap-northeast-1, us-east-1");
        let any = served(Some("*"));
        assert!(any.serves("us-gov-west-1"));
        assert_eq!(any.listed("us-east-1"), vec!["us-east-1"]);
    }

    #[test]
    fn durations_take_units() {
        for (v, ms) in [
            ("120", 120_000),
            ("90s", 90_000),
            ("20m", 1_200_000),
            ("1h", 3_600_000),
        ] {
            let c = cfg(&[BASE[0], BASE[1], ("AUTOHEAL_VERIFY_TIMEOUT", v)]).unwrap();
            assert_eq!(c.verify_timeout_ms, ms, "{v}");
        }
    }

    #[test]
    fn other_controller_tags_are_keys_or_prefixes() {
        let tags = |v: &str| {
            cfg(&[BASE[0], BASE[1], ("AUTOHEAL_OTHER_CONTROLLER_TAGS", v)])
                .unwrap()
                .other_controllers
        };
        assert_eq!(tags("nomad.io/*, owner"), vec!["nomad.io/*", "owner"]);
        assert!(cfg(&BASE).unwrap().other_controllers.is_empty());
    }

    #[test]
    fn each_bad_value_names_its_variable() {
        let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
            (vec![("AWS_REGION", "us-east-1")], "AUTOHEAL_TABLE"),
            (vec![("AUTOHEAL_TABLE", "  ")], "AUTOHEAL_TABLE"),
            (vec![("AUTOHEAL_TABLE", "t")], "AWS_REGION"),
            (
                [&BASE[..], &[("AUTOHEAL_DRY_RUN", "maybe")]].concat(),
                "AUTOHEAL_DRY_RUN",
            ),
            (
                [&BASE[..], &[("SLACK_WEBHOOK_ENCRYPTED", "%%%")]].concat(),
                "SLACK_WEBHOOK_ENCRYPTED",
            ),
            (
                [&BASE[..], &[("SLACK_WEBHOOK_ENCRYPTED", "AAAA")]].concat(),
                "AWS_LAMBDA_FUNCTION_NAME",
            ),
            (
                [&BASE[..], &[("AUTOHEAL_TERMINATE_REPLACED", "sure")]].concat(),
                "AUTOHEAL_TERMINATE_REPLACED",
            ),
            (
                [&BASE[..], &[("AUTOHEAL_VERIFY_TIMEOUT", "soon")]].concat(),
                "AUTOHEAL_VERIFY_TIMEOUT",
            ),
            (
                [&BASE[..], &[("AUTOHEAL_VERIFY_TIMEOUT", "0")]].concat(),
                "AUTOHEAL_VERIFY_TIMEOUT",
            ),
            (
                [&BASE[..], &[("AUTOHEAL_VERIFY_TIMEOUT", "10d")]].concat(),
                "AUTOHEAL_VERIFY_TIMEOUT",
            ),
            (
                [&BASE[..], &[("AUTOHEAL_CONFIRM_WINDOW", "off")]].concat(),
                "AUTOHEAL_CONFIRM_WINDOW",
            ),
            (
                [&BASE[..], &[("AUTOHEAL_SCAN", "0")]].concat(),
                "AUTOHEAL_SCAN",
            ),
            (
                [&BASE[..], &[("AUTOHEAL_SCAN", "everything")]].concat(),
                "AUTOHEAL_SCAN",
            ),
            (
                [&BASE[..], &[("AUTOHEAL_REGIONS", "us-east-1,Tokyo")]].concat(),
                "AUTOHEAL_REGIONS",
            ),
            (
                [&BASE[..], &[("AUTOHEAL_REGIONS", " , ")]].concat(),
                "AUTOHEAL_REGIONS",
            ),
            (
                [&BASE[..], &[("AUTOHEAL_OTHER_CONTROLLER_TAGS", "*")]].concat(),
                "AUTOHEAL_OTHER_CONTROLLER_TAGS",
            ),
            (
                [&BASE[..], &[("AUTOHEAL_OTHER_CONTROLLER_TAGS", "a*b")]].concat(),
                "AUTOHEAL_OTHER_CONTROLLER_TAGS",
            ),
            (
                [&BASE[..], &[("AUTOHEAL_OTHER_CONTROLLER_TAGS", "nomad,,x")]].concat(),
                "AUTOHEAL_OTHER_CONTROLLER_TAGS",
            ),
            (
                [
                    &BASE[..],
                    &[("AUTOHEAL_BACKUP_SELECTOR", "backup-approved")],
                ]
                .concat(),
                "AUTOHEAL_BACKUP_SELECTOR",
            ),
            (
                [
                    &BASE[..],
                    &[("AUTOHEAL_BACKUP_SELECTOR", "autoheal:backup=24")],
                ]
                .concat(),
                "AUTOHEAL_BACKUP_SELECTOR",
            ),
        ];
        for (pairs, variable) in cases {
            let e = cfg(&pairs).unwrap_err();
            assert_eq!(e.variable, variable, "{pairs:?}");
            assert!(e.to_string().starts_with(variable));
        }
    }

    #[test]
    fn the_runbook_url_is_an_https_url_that_cannot_break_a_slack_link() {
        let url =
            |v: &str| cfg(&[BASE[0], BASE[1], ("AUTOHEAL_RUNBOOK_URL", v)]).map(|c| c.runbook_url);
        assert_eq!(cfg(&BASE).unwrap().runbook_url, None);
        assert_eq!(
            url("  "),
            Ok(None),
            "empty (the template's default) is unset"
        );
        for ok in [
            "https://github.com/acme/autoheal/blob/main/docs/RUNBOOK.md",
            "https://git.example.com:8443/ops/autoheal/-/blob/main/docs/RUNBOOK.md?ref=main&plain=1",
            "https://wiki.example.com/runbooks/autoheal%20(prod)",
        ] {
            assert_eq!(url(ok), Ok(Some(ok.to_string())), "{ok}");
        }
        for bad in [
            "http://wiki.example.com/RUNBOOK.md",
            "github.com/acme/autoheal/blob/main/docs/RUNBOOK.md",
            "https://",
            "https:///docs/RUNBOOK.md",
            "https://wiki.example.com/runbook#top",
            "https://wiki.example.com/a|b",
            "https://wiki.example.com/<!channel>",
            "https://wiki.example.com/a b",
            "https://wiki.example.com/\"x\"",
            "https://wiki.example.com/it's",
            "https://wiki.example.com/ü",
            &format!("https://wiki.example.com/{}", "a".repeat(1000)),
        ] {
            let e = url(bad).unwrap_err();
            assert_eq!(e.variable, "AUTOHEAL_RUNBOOK_URL", "{bad}");
        }
    }

    #[test]
    fn grace_defaults_per_kind_one_value_for_both_or_off() {
        let grace = |v: Option<&str>| {
            let mut pairs = BASE.to_vec();
            pairs.extend(v.map(|v| ("AUTOHEAL_GRACE_SECONDS", v)));
            let g = cfg(&pairs).unwrap().grace;
            (g.group_member_ms, g.standalone_ms)
        };
        assert_eq!(grace(None), (0, 120_000));
        assert_eq!(grace(Some("300")), (300_000, 300_000));
        assert_eq!(grace(Some("2m")), (120_000, 120_000));
        assert_eq!(grace(Some("off")), (0, 0));
        assert_eq!(grace(Some("0")), (0, 0));
        let e = cfg(&[BASE[0], BASE[1], ("AUTOHEAL_GRACE_SECONDS", "soon")]).unwrap_err();
        assert_eq!(e.variable, "AUTOHEAL_GRACE_SECONDS");
    }

    #[test]
    fn quorum_guard_is_on_unless_off() {
        let guard = |v: Option<&str>| {
            let mut pairs = BASE.to_vec();
            pairs.extend(v.map(|v| ("AUTOHEAL_QUORUM_GUARD", v)));
            cfg(&pairs).map(|c| c.quorum_guard)
        };
        assert_eq!(guard(None), Ok(true));
        assert_eq!(guard(Some("OFF")), Ok(false));
        assert_eq!(guard(Some("on")), Ok(true));
        assert_eq!(
            guard(Some("maybe")).unwrap_err().variable,
            "AUTOHEAL_QUORUM_GUARD"
        );
        let inflight = |v: &str| {
            cfg(&[BASE[0], BASE[1], ("AUTOHEAL_MAX_INFLIGHT_PERCENT", v)])
                .map(|c| c.max_inflight_percent)
        };
        assert_eq!(cfg(&BASE).unwrap().max_inflight_percent, Some(10));
        assert_eq!(inflight("25"), Ok(Some(25)));
        assert_eq!(inflight("25%"), Ok(Some(25)));
        assert_eq!(inflight("off"), Ok(None));
        let account = |v: &str| {
            cfg(&[BASE[0], BASE[1], ("AUTOHEAL_ACCOUNT_MAX_REPAIRS", v)])
                .map(|c| c.account_max_repairs)
        };
        assert_eq!(cfg(&BASE).unwrap().account_max_repairs, Some(5));
        assert_eq!(account("20"), Ok(Some(20)));
        assert_eq!(account("off"), Ok(None));
        assert_eq!(
            account("0").unwrap_err().variable,
            "AUTOHEAL_ACCOUNT_MAX_REPAIRS"
        );
        for bad in ["0", "101", "lots"] {
            assert_eq!(
                inflight(bad).unwrap_err().variable,
                "AUTOHEAL_MAX_INFLIGHT_PERCENT"
            );
        }
    }

    #[test]
    fn breaker_defaults_and_each_part_turns_off() {
        use crate::rules::breaker::Settings;
        let breaker = |pairs: &[(&'static str, &'static str)]| {
            let mut all = BASE.to_vec();
            all.extend_from_slice(pairs);
            cfg(&all).map(|c| c.breaker)
        };
        let default = Settings {
            window_ms: 600_000,
            count: Some(3),
            percent: Some(20),
            cooldown_ms: 600_000,
        };
        assert_eq!(breaker(&[]), Ok(Some(default)));
        assert_eq!(
            breaker(&[
                ("AUTOHEAL_BREAKER_WINDOW_SECONDS", "5m"),
                ("AUTOHEAL_BREAKER_COUNT", "off"),
                ("AUTOHEAL_BREAKER_PERCENT", "30%"),
                ("AUTOHEAL_BREAKER_COOLDOWN_SECONDS", "120"),
            ]),
            Ok(Some(Settings {
                window_ms: 300_000,
                count: None,
                percent: Some(30),
                cooldown_ms: 120_000,
            }))
        );
        assert_eq!(
            breaker(&[("AUTOHEAL_BREAKER_WINDOW_SECONDS", "off")]),
            Ok(None)
        );
        assert_eq!(
            breaker(&[
                ("AUTOHEAL_BREAKER_COUNT", "off"),
                ("AUTOHEAL_BREAKER_PERCENT", "off")
            ]),
            Ok(None),
            "no threshold left: off"
        );
        assert_eq!(
            breaker(&[("AUTOHEAL_BREAKER_COOLDOWN_SECONDS", "off")])
                .map(|b| b.unwrap().cooldown_ms),
            Ok(0)
        );
        assert_eq!(
            cfg(&BASE).unwrap().storm,
            crate::rules::storm::Settings {
                zone: Some(Settings {
                    count: Some(5),
                    percent: Some(20),
                    ..default
                }),
                account: Some(Settings {
                    count: Some(25),
                    percent: None,
                    ..default
                }),
                update_ms: 300_000,
                take_up_per_tick: 5,
            }
        );
        let zone = |pairs: &[(&'static str, &'static str)]| {
            let all: Vec<_> = BASE.iter().chain(pairs).copied().collect();
            cfg(&all).map(|c| c.storm.zone)
        };
        assert_eq!(
            zone(&[("AUTOHEAL_BREAKER_WINDOW_SECONDS", "off")]),
            Ok(None)
        );
        assert_eq!(
            zone(&[
                ("AUTOHEAL_ZONE_BREAKER_COUNT", "off"),
                ("AUTOHEAL_ZONE_BREAKER_PERCENT", "off")
            ]),
            Ok(None)
        );
        for (variable, bad) in [
            ("AUTOHEAL_ZONE_BREAKER_COUNT", "0"),
            ("AUTOHEAL_ACCOUNT_BREAKER_COUNT", "0"),
            ("AUTOHEAL_ZONE_BREAKER_PERCENT", "101"),
            ("AUTOHEAL_STORM_UPDATE_SECONDS", "30"),
            ("AUTOHEAL_TAKE_UP_PER_TICK", "0"),
            ("AUTOHEAL_TAKE_UP_PER_TICK", "off"),
            ("AUTOHEAL_BREAKER_COUNT", "0"),
            ("AUTOHEAL_BREAKER_PERCENT", "120"),
            ("AUTOHEAL_BREAKER_WINDOW_SECONDS", "soon"),
            ("AUTOHEAL_BREAKER_COOLDOWN_SECONDS", "soon"),
        ] {
            assert_eq!(breaker(&[(variable, bad)]).unwrap_err().variable, variable);
        }
    }

    #[test]
    fn ladders_default_parse_and_refuse_unknown_rungs() {
        use crate::rules::ladder::{Ladders, Rung};
        let ladders = |pairs: &[(&'static str, &'static str)]| {
            let mut all = BASE.to_vec();
            all.extend_from_slice(pairs);
            cfg(&all).map(|c| c.ladders)
        };
        assert_eq!(ladders(&[]), Ok(Ladders::default()));
        assert_eq!(
            ladders(&[
                ("AUTOHEAL_SYSTEM_LADDER", "stop-start,relaunch"),
                ("AUTOHEAL_INSTANCE_LADDER", "relaunch"),
                ("AUTOHEAL_RUNG_TIMEOUT", "3m"),
            ]),
            Ok(Ladders {
                system: vec![Rung::StopStart, Rung::Relaunch],
                instance: vec![Rung::Relaunch],
                timeout_ms: Some(180_000),
            })
        );
        for (variable, bad) in [
            ("AUTOHEAL_SYSTEM_LADDER", "reboot,pray"),
            ("AUTOHEAL_INSTANCE_LADDER", ","),
            ("AUTOHEAL_RUNG_TIMEOUT", "soon"),
        ] {
            assert_eq!(ladders(&[(variable, bad)]).unwrap_err().variable, variable);
        }
    }

    #[test]
    fn lineage_window_defaults_to_a_day_and_turns_off() {
        let window = |v: Option<&str>| {
            let mut pairs = BASE.to_vec();
            pairs.extend(v.map(|v| ("AUTOHEAL_LINEAGE_WINDOW", v)));
            cfg(&pairs).map(|c| c.lineage_window_ms)
        };
        assert_eq!(window(None), Ok(86_400_000));
        assert_eq!(window(Some("6h")), Ok(21_600_000));
        assert_eq!(window(Some("off")), Ok(0));
        assert_eq!(
            window(Some("never")).unwrap_err().variable,
            "AUTOHEAL_LINEAGE_WINDOW"
        );
    }

    #[test]
    fn dry_run_and_slack_parse() {
        let c = cfg(&[
            BASE[0],
            BASE[1],
            ("AUTOHEAL_DRY_RUN", "TRUE"),
            ("SLACK_WEBHOOK_ENCRYPTED", "AQID"),
            ("AWS_LAMBDA_FUNCTION_NAME", "autoheal"),
        ])
        .unwrap();
        assert!(c.dry_run);
        assert_eq!(
            c.slack_webhook_ciphertext.as_deref(),
            Some(&[1u8, 2, 3][..])
        );
        assert!(!format!("{c:?}").contains("AQID"));
    }
}
