//! Who may be touched, from the `autoheal` tag (contract) and `AUTOHEAL_DRY_RUN`.

use std::collections::BTreeMap;

pub const MODE_TAG: &str = "autoheal";

/// Ordered from most to least permissive; the strictest source wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Mode {
    Act,
    DryRun,
    Notify,
    Off,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub mode: Mode,
    /// Says where the mode came from, for the report.
    pub source: String,
}

fn tag_mode(value: &str) -> Mode {
    match value.trim().to_ascii_lowercase().as_str() {
        "off" => Mode::Off,
        "notify" => Mode::Notify,
        "dry-run" | "dryrun" | "dry_run" => Mode::DryRun,
        "on" | "act" | "" => Mode::Act,
        // A value we do not know is treated as report-only: a typo must not cause a repair.
        _ => Mode::Notify,
    }
}

/// The stricter of the instance's and its group's tag wins (the role's Deny refuses every
/// call on an instance or a group tagged `off`, so an instance's `on` cannot lift its
/// group's `off`); `AUTOHEAL_DRY_RUN` can only make the result stricter, never lift an
/// `off` or `notify`.
pub fn policy_for(
    env_dry_run: bool,
    instance_tags: &BTreeMap<String, String>,
    group_tags: Option<&BTreeMap<String, String>>,
) -> Policy {
    let on_instance = instance_tags
        .get(MODE_TAG)
        .map(|v| (tag_mode(v), format!("tag autoheal={v} on the instance")));
    let on_group = group_tags.and_then(|t| t.get(MODE_TAG)).map(|v| {
        (
            tag_mode(v),
            format!("tag autoheal={v} on the Auto Scaling group"),
        )
    });
    // On a tie the instance's tag is named: it is the nearer one.
    let tagged = match (on_instance, on_group) {
        (Some(i), Some(g)) if g.0 > i.0 => Some(g),
        (Some(i), _) => Some(i),
        (None, g) => g,
    };
    let (mode, source) = tagged.unwrap_or((Mode::Act, "default".to_string()));
    if env_dry_run && mode < Mode::DryRun {
        return Policy {
            mode: Mode::DryRun,
            source: "AUTOHEAL_DRY_RUN=true".into(),
        };
    }
    Policy { mode, source }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(v: Option<&str>) -> BTreeMap<String, String> {
        v.map(|v| (MODE_TAG.to_string(), v.to_string()))
            .into_iter()
            .collect()
    }

    #[test]
    fn policy_table() {
        // (env dry run, instance tag, group tag, mode, source contains)
        let table = [
            (false, None, None, Mode::Act, "default"),
            (true, None, None, Mode::DryRun, "AUTOHEAL_DRY_RUN"),
            (false, Some("off"), None, Mode::Off, "on the instance"),
            (
                false,
                None,
                Some("off"),
                Mode::Off,
                "on the Auto Scaling group",
            ),
            // A group's `off` is not lifted by its member's `on` (nor `notify`): the
            // stricter wins, as the role's Deny does.
            (
                false,
                Some("act"),
                Some("off"),
                Mode::Off,
                "on the Auto Scaling group",
            ),
            (false, Some("on"), Some("notify"), Mode::Notify, "group"),
            (false, Some("off"), Some("on"), Mode::Off, "on the instance"),
            (
                false,
                Some("notify"),
                Some("notify"),
                Mode::Notify,
                "on the instance",
            ),
            (false, None, Some("notify"), Mode::Notify, "group"),
            (false, Some("dry-run"), None, Mode::DryRun, "instance"),
            (true, Some("off"), None, Mode::Off, "instance"),
            (true, Some("notify"), None, Mode::Notify, "instance"),
            (false, Some("Off "), None, Mode::Off, "instance"),
            (false, Some("yes please"), None, Mode::Notify, "instance"),
        ];
        for (env, inst, group, mode, source) in table {
            let g = tags(group);
            let p = policy_for(env, &tags(inst), group.map(|_| &g));
            assert_eq!(p.mode, mode, "{env} {inst:?} {group:?}");
            assert!(p.source.contains(source), "{p:?}");
        }
    }
}
