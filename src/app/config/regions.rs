//! `AUTOHEAL_REGIONS`: which regions' alarms the function serves.

use super::ConfigError;

/// `AUTOHEAL_REGIONS`: a comma-separated list of region names (default: the function's
/// own), or `*` for any region the alarm's ARN names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Regions {
    Listed(Vec<String>),
    Any,
}

impl Regions {
    pub fn serves(&self, region: &str) -> bool {
        match self {
            Regions::Any => true,
            Regions::Listed(l) => l.iter().any(|r| r == region),
        }
    }

    /// For people: `us-east-1, ap-northeast-1` or `any region`.
    pub fn describe(&self) -> String {
        match self {
            Regions::Any => "any region".into(),
            Regions::Listed(l) => l.join(", "),
        }
    }

    /// The listed regions (the periodic backups cover these; `*`: the function's own).
    pub fn listed<'a>(&'a self, home: &'a str) -> Vec<&'a str> {
        match self {
            Regions::Any => vec![home],
            Regions::Listed(l) => l.iter().map(String::as_str).collect(),
        }
    }
}

/// A region name as AWS spells them (`ap-northeast-1`, `us-gov-west-1`).
fn region_name(v: &str) -> bool {
    let parts: Vec<&str> = v.split('-').collect();
    parts.len() >= 3
        && v.len() <= 32
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
        && parts
            .last()
            .is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit()))
}

pub(super) fn regions(v: Option<String>, home: &str) -> Result<Regions, ConfigError> {
    let Some(v) = v else {
        return Ok(Regions::Listed(vec![home.to_string()]));
    };
    if v == "*" {
        return Ok(Regions::Any);
    }
    let mut listed: Vec<String> = vec![];
    for r in v.split(',').map(str::trim).filter(|r| !r.is_empty()) {
        if !region_name(r) {
            return Err(ConfigError {
                variable: "AUTOHEAL_REGIONS",
                problem: format!(
                    "{r:?} is not a region name (a list like us-east-1,ap-northeast-1, or *)"
                ),
            });
        }
        if !listed.iter().any(|l| l == r) {
            listed.push(r.to_string());
        }
    }
    if listed.is_empty() {
        return Err(ConfigError {
            variable: "AUTOHEAL_REGIONS",
            problem: "names no region".into(),
        });
    }
    Ok(Regions::Listed(listed))
}
