//! `AUTOHEAL_ZONE_BREAKER_COUNT`, `AUTOHEAL_ZONE_BREAKER_PERCENT`,
//! `AUTOHEAL_ACCOUNT_BREAKER_COUNT`, `AUTOHEAL_STORM_UPDATE_SECONDS`,
//! `AUTOHEAL_TAKE_UP_PER_TICK`: the zone and account breakers and the storm's pace.

use super::{count, duration_seconds, percent, unless_off, ConfigError, Get};
use crate::rules::breaker;
use crate::rules::storm::*;

/// The zone breaker takes the group breaker's window and cool-down: off with it, or when
/// both its count and its percent are off.
pub(super) fn storm(
    get: Get,
    breaker: Option<&breaker::Settings>,
) -> Result<Settings, ConfigError> {
    let above = unless_off(
        get("AUTOHEAL_ZONE_BREAKER_COUNT"),
        DEFAULT_ZONE_COUNT,
        |v| count("AUTOHEAL_ZONE_BREAKER_COUNT", &v, u32::MAX),
    )?;
    let by_percent = unless_off(
        get("AUTOHEAL_ZONE_BREAKER_PERCENT"),
        DEFAULT_ZONE_PERCENT,
        |v| percent("AUTOHEAL_ZONE_BREAKER_PERCENT", &v),
    )?;
    let zone = match (breaker, above, by_percent) {
        (Some(b), above, by_percent) if above.is_some() || by_percent.is_some() => {
            Some(breaker::Settings {
                count: above,
                percent: by_percent,
                ..*b
            })
        }
        _ => None,
    };
    let account = unless_off(
        get("AUTOHEAL_ACCOUNT_BREAKER_COUNT"),
        DEFAULT_ACCOUNT_COUNT,
        |v| count("AUTOHEAL_ACCOUNT_BREAKER_COUNT", &v, u32::MAX),
    )?
    .zip(breaker)
    .map(|(above, b)| breaker::Settings {
        count: Some(above),
        percent: None,
        ..*b
    });
    let update_seconds = duration_seconds(
        "AUTOHEAL_STORM_UPDATE_SECONDS",
        get("AUTOHEAL_STORM_UPDATE_SECONDS"),
        DEFAULT_UPDATE_SECONDS,
    )?;
    if update_seconds < 60 {
        return Err(ConfigError {
            variable: "AUTOHEAL_STORM_UPDATE_SECONDS",
            problem: format!("at least 60 (the tick's period), got {update_seconds}"),
        });
    }
    let take_up = match get("AUTOHEAL_TAKE_UP_PER_TICK") {
        None => DEFAULT_TAKE_UP_PER_TICK,
        Some(v) => count("AUTOHEAL_TAKE_UP_PER_TICK", &v, 1000)?,
    };
    Ok(Settings {
        zone,
        account,
        update_ms: update_seconds * 1000,
        take_up_per_tick: take_up as usize,
    })
}
