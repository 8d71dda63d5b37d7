//! The deployer's backup selector (`AUTOHEAL_BACKUP_SELECTOR`): a tag only the deployer's
//! role may write, which an instance needs as well as `autoheal:backup`.

use super::BACKUP_TAG;
use crate::rules::policy;

/// `AUTOHEAL_BACKUP_SELECTOR=key=value`: the tag, besides `autoheal:backup`, that an
/// instance must carry to be backed up. The deployer grants it (an SCP or permissions
/// boundary lets only admins write that key); `autoheal:backup` alone is anyone's to write
/// who may tag, and would make autoheal image any instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    pub key: String,
    pub value: String,
}

impl Selector {
    pub fn parse(v: &str) -> Result<Selector, String> {
        let (key, value) = v
            .split_once('=')
            .map_or(("", ""), |(k, v)| (k.trim(), v.trim()));
        if key.is_empty() || value.is_empty() {
            return Err(format!(
                "expected key=value, a tag only admins may write that an instance must carry besides {BACKUP_TAG}, got {v:?}"
            ));
        }
        // autoheal's own tags are written by anyone who may tag, and by autoheal itself.
        if key == policy::MODE_TAG || key.starts_with("autoheal:") {
            return Err(format!(
                "{key:?} is one of autoheal's own tags; the selector must be a tag of the deployer's that only admins may write"
            ));
        }
        if key.chars().count() > 128 || value.chars().count() > 256 {
            return Err(format!(
                "{v:?} is longer than an EC2 tag may be (key 128, value 256 characters)"
            ));
        }
        Ok(Selector {
            key: key.to_string(),
            value: value.to_string(),
        })
    }

    /// Whether an instance with these tags is selected.
    pub fn selects<'a>(&self, tag: impl Fn(&str) -> Option<&'a str>) -> bool {
        tag(&self.key) == Some(self.value.as_str())
    }
}

impl std::fmt::Display for Selector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}={}", self.key, self.value)
    }
}
