//! The ledger's keys for instances.

/// The ledger's name for an instance: its region and id (`ap-northeast-1/i-0abc…`), so
/// the same id in two regions never shares an incident, a scope or a breaker count.
pub fn key(region: &str, instance_id: &str) -> String {
    format!("{region}/{instance_id}")
}

/// The region and instance id of a `key`; None for anything else (an older ledger's keys
/// carried no region).
pub fn split_key(key: &str) -> Option<(&str, &str)> {
    key.split_once('/')
        .filter(|(r, id)| !r.is_empty() && id.starts_with("i-"))
}

/// The instance id of a `key`, for people (anything else as it is).
pub fn instance_of(key: &str) -> &str {
    split_key(key).map_or(key, |(_, id)| id)
}
