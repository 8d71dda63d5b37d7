//! A group member's notice step (`ReplaceMember`): marked Unhealthy ahead of EC2 so that
//! its group replaces it, one member at a time — never while another member of its group
//! is not `Healthy` and `InService` — through an incident of its own, admitted in the
//! repair guards' scopes and followed to the replacement (`notice_incident`).

use super::notice_steps::{outcome, told};
use crate::app::Run;
use crate::model::facts::Facts;
use crate::model::outcome::{Action, Outcome, Verdict};
use crate::rules::notice::act;
use crate::rules::notice::record::Recorded;
use crate::rules::replacement::Group;

/// A member marked Unhealthy ahead of EC2 (its group replaces it), one member of its group
/// at a time: while another member is not healthy and in service, it waits for a later tick.
pub(super) async fn replace(run: &Run<'_>, r: &Recorded, i: usize, facts: &Facts) -> Outcome {
    let Some(g) = &facts.group else {
        return told(
            run,
            r,
            i,
            Verdict::Held,
            format!(
                "{}: no longer in an Auto Scaling group: not replaced ahead; EC2 acts at its date",
                act::named(r)
            ),
            true,
        )
        .await;
    };
    let group = match run.fleet.group(&r.region, &g.name).await {
        Ok(group) => group,
        Err(e) => {
            let why = format!(
                "{}: its group not read ({e}); the next tick tries again",
                act::named(r)
            );
            return outcome(r, Action::MarkUnhealthy, Verdict::InProgress, why);
        }
    };
    if let Some(why) = busy(r, group.as_ref(), &g.name) {
        let why = format!(
            "{}: {why}; this one waits for a later tick (one at a time)",
            act::named(r)
        );
        return outcome(r, Action::MarkUnhealthy, Verdict::Held, why);
    }
    // The group's size, read here, is the one the repair guards need.
    let repair = super::notice_incident::Repair::Mark {
        group: &g.name,
        desired: group.map(|g| g.desired),
    };
    super::notice_incident::open(run, r, i, facts, repair).await
}

/// Why the member must wait, if it must: another member of its group not `Healthy` and
/// `InService` (being replaced, maybe for a notice). The repair guards' scopes are the
/// incident's admission (`notice_incident`).
fn busy(r: &Recorded, group: Option<&Group>, name: &str) -> Option<String> {
    let members = group.map_or(&[][..], |g| &g.members[..]);
    let other = members.iter().find(|m| {
        m.instance_id != r.instance_id && (m.health != "Healthy" || m.lifecycle != "InService")
    })?;
    Some(format!(
        "member {} of group {name} is {} and {}",
        other.instance_id, other.health, other.lifecycle
    ))
}
