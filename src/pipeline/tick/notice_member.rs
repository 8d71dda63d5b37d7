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
    match busy(run, r, &g.name).await {
        Ok(None) => {}
        Ok(Some(why)) => {
            let why = format!(
                "{}: {why}; this one waits for a later tick (one at a time)",
                act::named(r)
            );
            return outcome(r, Action::MarkUnhealthy, Verdict::Held, why);
        }
        Err(e) => {
            let why = format!(
                "{}: its group not read ({e}); the next tick tries again",
                act::named(r)
            );
            return outcome(r, Action::MarkUnhealthy, Verdict::InProgress, why);
        }
    }
    let repair = super::notice_incident::Repair::Mark { group: &g.name };
    super::notice_incident::open(run, r, i, facts, repair).await
}

/// Why the member must wait, if it must: another member of its group not `Healthy` and
/// `InService` (being replaced, maybe for a notice). The repair guards' scopes are the
/// incident's admission (`notice_incident`).
async fn busy(
    run: &Run<'_>,
    r: &Recorded,
    group: &str,
) -> Result<Option<String>, crate::error::Error> {
    let members = run
        .fleet
        .group(&r.region, group)
        .await?
        .unwrap_or_default()
        .members;
    let other = members.iter().find(|m| {
        m.instance_id != r.instance_id && (m.health != "Healthy" || m.lifecycle != "InService")
    });
    Ok(other.map(|m| {
        format!(
            "member {} of group {group} is {} and {}",
            m.instance_id, m.health, m.lifecycle
        )
    }))
}
