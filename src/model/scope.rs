//! What a guard or the breaker counts in, as one type: a cluster, an Auto Scaling group or
//! an Availability Zone of one region, or the account. Written in the ledger and in an
//! operator's resume command as `cluster:<name>@<region>`, `group:<name>@<region>`,
//! `zone:<name>@<region>` or `account`.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ScopeKey {
    /// Instances sharing an `autoheal:cluster` tag.
    Cluster {
        name: String,
        region: Option<String>,
    },
    /// An Auto Scaling group's members.
    Group {
        name: String,
        region: Option<String>,
    },
    /// The instances the function serves in one Availability Zone (`us-east-1a`).
    Zone {
        name: String,
        region: Option<String>,
    },
    /// Every instance the function serves.
    Account,
}

impl ScopeKey {
    pub fn cluster(name: &str) -> ScopeKey {
        ScopeKey::Cluster {
            name: name.to_string(),
            region: None,
        }
    }

    pub fn group(name: &str) -> ScopeKey {
        ScopeKey::Group {
            name: name.to_string(),
            region: None,
        }
    }

    pub fn zone(name: &str) -> ScopeKey {
        ScopeKey::Zone {
            name: name.to_string(),
            region: None,
        }
    }

    /// The region the scope names, if any (the account names none).
    pub fn region(&self) -> Option<&str> {
        match self {
            ScopeKey::Cluster { region, .. }
            | ScopeKey::Group { region, .. }
            | ScopeKey::Zone { region, .. } => region.as_deref(),
            ScopeKey::Account => None,
        }
    }

    /// The same scope in `region`: two regions' groups of one name never share a guard or
    /// a breaker. The account is one scope whatever the region.
    pub fn in_region(self, region: &str) -> ScopeKey {
        let region = Some(region.to_string());
        match self {
            ScopeKey::Cluster { name, .. } => ScopeKey::Cluster { name, region },
            ScopeKey::Group { name, .. } => ScopeKey::Group { name, region },
            ScopeKey::Zone { name, .. } => ScopeKey::Zone { name, region },
            ScopeKey::Account => ScopeKey::Account,
        }
    }

    /// Without a region, the scope takes `region` (an operator's `group:web` is about the
    /// function's own region).
    pub fn or_region(self, region: &str) -> ScopeKey {
        match &self {
            ScopeKey::Cluster { region: None, .. }
            | ScopeKey::Group { region: None, .. }
            | ScopeKey::Zone { region: None, .. } => self.in_region(region),
            _ => self,
        }
    }

    /// For people: `cluster db in eu-west-1`, `group web`, `this account`.
    pub fn label(&self) -> String {
        let (kind, name, region) = match self {
            ScopeKey::Cluster { name, region } => ("cluster", name, region),
            ScopeKey::Group { name, region } => ("group", name, region),
            ScopeKey::Zone { name, region } => ("zone", name, region),
            ScopeKey::Account => return "this account".to_string(),
        };
        match region {
            Some(r) => format!("{kind} {name} in {r}"),
            None => format!("{kind} {name}"),
        }
    }
}

impl fmt::Display for ScopeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (kind, name, region) = match self {
            ScopeKey::Cluster { name, region } => ("cluster", name, region),
            ScopeKey::Group { name, region } => ("group", name, region),
            ScopeKey::Zone { name, region } => ("zone", name, region),
            ScopeKey::Account => return f.write_str("account"),
        };
        write!(f, "{kind}:{name}")?;
        match region {
            Some(r) => write!(f, "@{r}"),
            None => Ok(()),
        }
    }
}

impl FromStr for ScopeKey {
    type Err = String;

    fn from_str(s: &str) -> Result<ScopeKey, String> {
        let s = s.trim();
        if s == "account" {
            return Ok(ScopeKey::Account);
        }
        let (scope, region) = match s.rsplit_once('@') {
            Some((scope, r)) if !r.is_empty() => (scope, Some(r.to_string())),
            Some(_) => return Err(format!("{s:?}: an empty region after '@'")),
            None => (s, None),
        };
        let (kind, name) = scope
            .split_once(':')
            .filter(|(_, name)| !name.trim().is_empty())
            .ok_or_else(|| {
                format!("{s:?} is not \"group:<name>\", \"cluster:<name>\" or \"zone:<name>\"")
            })?;
        let name = name.trim().to_string();
        match kind.trim() {
            "cluster" => Ok(ScopeKey::Cluster { name, region }),
            "group" => Ok(ScopeKey::Group { name, region }),
            "zone" => Ok(ScopeKey::Zone { name, region }),
            other => Err(format!("{other:?} is not a scope: group, cluster or zone")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scope_key_reads_back_what_it_writes() {
        let table = [
            ("group:web", ScopeKey::group("web"), "group web"),
            (
                "cluster:db@eu-west-1",
                ScopeKey::cluster("db").in_region("eu-west-1"),
                "cluster db in eu-west-1",
            ),
            ("account", ScopeKey::Account, "this account"),
            (
                "zone:us-east-1a@us-east-1",
                ScopeKey::zone("us-east-1a").in_region("us-east-1"),
                "zone us-east-1a in us-east-1",
            ),
            // A group's name may hold ':' (Auto Scaling allows it); the region is after the last '@'.
            (
                "group:a:b@us-east-1",
                ScopeKey::group("a:b").in_region("us-east-1"),
                "group a:b in us-east-1",
            ),
        ];
        for (text, key, label) in table {
            assert_eq!(text.parse::<ScopeKey>().as_ref(), Ok(&key), "{text}");
            assert_eq!(key.to_string(), text);
            assert_eq!(key.label(), label);
        }
        for bad in ["", "group:", "web", "node:x", "group:web@", "accounts"] {
            assert!(bad.parse::<ScopeKey>().is_err(), "{bad:?}");
        }
        assert_eq!(
            ScopeKey::group("web").or_region("r1"),
            ScopeKey::group("web").in_region("r1")
        );
        let elsewhere = ScopeKey::group("web").in_region("r2");
        assert_eq!(elsewhere.clone().or_region("r1"), elsewhere);
        assert_eq!(ScopeKey::Account.in_region("r1"), ScopeKey::Account);
        assert_eq!(ScopeKey::zone("r1a").or_region("r1").region(), Some("r1"));
        assert_eq!(ScopeKey::Account.region(), None);
    }
}
