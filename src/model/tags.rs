//! Tags more than one capability reads or writes (a capability's own tag sits with its rule:
//! `policy::MODE_TAG`, `ladder::LADDER_TAG`, `guard::CLUSTER_TAG`, `backup::BACKUP_TAG`).

/// On a relaunched copy (and its image): the incident that made it.
pub const INCIDENT_TAG: &str = "autoheal:incident";
/// `fresh` (default): image the instance now. `latest-backup`: relaunch from its newest
/// periodic backup if young enough (`AUTOHEAL_BACKUP_MAX_AGE`), else image it now.
pub const RELAUNCH_FROM_TAG: &str = "autoheal:relaunch-from";
/// On a relaunched copy: the instance it replaces.
pub const SOURCE_TAG: &str = "autoheal:source-instance";
/// On an instance autoheal replaced: the copy that took over.
pub const REPLACED_BY_TAG: &str = "autoheal:replaced-by";
