//! `AUTOHEAL_NOTICES`, `AUTOHEAL_NOTICE_LEAD`, `AUTOHEAL_MAINTENANCE_WINDOW`: EC2's
//! scheduled notices (docs/scheduled-events.md): heard or not, how long before a notice
//! autoheal plans to act when no window applies, and the stack's default window.

use super::{duration_seconds, flag, ConfigError, Get};
use crate::rules::notice::plan::DEFAULT_LEAD_MS;
use crate::rules::notice::window;

/// How scheduled notices are heard and planned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notices {
    /// `AUTOHEAL_NOTICES=off`: AWS Health's notices are answered `ignored`, and the tick
    /// reads no `DescribeInstanceStatus` events.
    pub on: bool,
    /// Acting this long before a notice when no maintenance window applies.
    pub lead_ms: i64,
    /// The stack's default window (`AUTOHEAL_MAINTENANCE_WINDOW`), checked at start-up;
    /// None: no window unless a tag gives one.
    pub default_window: Option<String>,
}

pub(super) fn notices(get: Get) -> Result<Notices, ConfigError> {
    let on = flag("AUTOHEAL_NOTICES", get("AUTOHEAL_NOTICES"), true)?;
    let lead_ms = 1000
        * duration_seconds(
            "AUTOHEAL_NOTICE_LEAD",
            get("AUTOHEAL_NOTICE_LEAD"),
            DEFAULT_LEAD_MS / 1000,
        )?;
    let default_window = get("AUTOHEAL_MAINTENANCE_WINDOW");
    if let Some(text) = &default_window {
        window::parse(text).map_err(|why| ConfigError {
            variable: "AUTOHEAL_MAINTENANCE_WINDOW",
            problem: format!("{why} (e.g. \"Sun 03:00-05:00 UTC\"), got {text:?}"),
        })?;
    }
    Ok(Notices {
        on,
        lead_ms,
        default_window,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(pairs: &[(&str, &str)]) -> Result<Notices, ConfigError> {
        let get = |k: &str| {
            pairs
                .iter()
                .find(|(name, _)| *name == k)
                .map(|(_, v)| v.to_string())
        };
        notices(&get)
    }

    #[test]
    fn defaults_values_and_errors_naming_the_variable() {
        assert_eq!(
            read(&[]),
            Ok(Notices {
                on: true,
                lead_ms: 3_600_000,
                default_window: None
            })
        );
        let set = read(&[
            ("AUTOHEAL_NOTICES", "off"),
            ("AUTOHEAL_NOTICE_LEAD", "30m"),
            (
                "AUTOHEAL_MAINTENANCE_WINDOW",
                "Sat 23:00-01:00 UTC, Daily 04:00-05:00 UTC",
            ),
        ])
        .unwrap();
        assert!(!set.on);
        assert_eq!(set.lead_ms, 30 * 60_000);
        assert_eq!(
            set.default_window.as_deref(),
            Some("Sat 23:00-01:00 UTC, Daily 04:00-05:00 UTC")
        );
        let table = [
            ("AUTOHEAL_NOTICES", "maybe", "AUTOHEAL_NOTICES"),
            ("AUTOHEAL_NOTICE_LEAD", "soon", "AUTOHEAL_NOTICE_LEAD"),
            (
                "AUTOHEAL_MAINTENANCE_WINDOW",
                "Sun 03:00-05:00",
                "AUTOHEAL_MAINTENANCE_WINDOW",
            ),
            (
                "AUTOHEAL_MAINTENANCE_WINDOW",
                "Sun 03:00-05:00 UTC; Mon 03:00-05:00 UTC",
                "AUTOHEAL_MAINTENANCE_WINDOW",
            ),
        ];
        for (var, value, named) in table {
            let e = read(&[(var, value)]).unwrap_err();
            assert_eq!(e.variable, named, "{value}: {e}");
        }
        let e = read(&[("AUTOHEAL_MAINTENANCE_WINDOW", "whenever")]).unwrap_err();
        assert!(e.problem.contains("\"whenever\""), "{e}");
    }
}
