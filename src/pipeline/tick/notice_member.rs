//! A group member's notice step (`ReplaceMember`): marked Unhealthy ahead of EC2 so that
//! its group replaces it, one member at a time — never while a repair is under way in its
//! guard scope (the incidents' repair guards' cluster or group item) or another member of
//! its group is not `Healthy` and `InService`. Recorded as begun before the mark, like every
//! notice step (`notice_steps`).

use super::notice_steps::{failed, outcome, tell, told, write};
use crate::app::Run;
use crate::model::facts::Facts;
use crate::model::outcome::{Action, Outcome, Verdict};
use crate::rules::guard;
use crate::rules::notice::act::{self, MARKING};
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
    match busy(run, r, facts, &g.name).await {
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
                "{}: its group or guard scope not read ({e}); the next tick tries again",
                act::named(r)
            );
            return outcome(r, Action::MarkUnhealthy, Verdict::InProgress, why);
        }
    }
    let begun = act::begun(r, i, MARKING, run.now_ms());
    if let Err(e) = write(run, r, &begun).await {
        return outcome(
            r,
            Action::None,
            Verdict::Duplicate,
            format!("scheduled notice {}: {e}", r.key),
        );
    }
    match run.fleet.mark_unhealthy(&r.region, &r.instance_id).await {
        Ok(()) => {
            let text = format!(
                "{}: marked Unhealthy ahead of EC2 at {}: group {} replaces it",
                act::named(r),
                act::date(run.now_ms()),
                g.name
            );
            let next = act::behind(&begun, i, text.clone(), true, run.now_ms());
            if let Err(e) = write(run, &begun, &next).await {
                tracing::warn!(notice = %r.key, "the mark's end not recorded: {e}");
            }
            tell(
                run,
                outcome(r, Action::MarkUnhealthy, Verdict::Done, text),
                false,
            )
            .await
        }
        Err(e) => failed(run, &begun, format!("the mark was refused ({e})")).await,
    }
}

/// Why the member must wait, if it must: a repair under way in its guard scope (its
/// cluster's or group's, as the incidents' repair guards count them), or another member of
/// its group not `Healthy` and `InService` (being replaced, maybe for a notice).
async fn busy(
    run: &Run<'_>,
    r: &Recorded,
    facts: &Facts,
    group: &str,
) -> Result<Option<String>, crate::error::Error> {
    let (quorum, percent) = (run.config.quorum_guard, run.config.max_inflight_percent);
    let key = facts
        .instance
        .as_ref()
        .and_then(|i| guard::scope_key(i, Some(group), quorum, percent, &r.region));
    if let Some(key) = key {
        let (members, _) = run.ledger.read_scope(&key.to_string()).await?;
        if !members.is_empty() {
            return Ok(Some(format!(
                "a repair is under way in its guard scope ({key})"
            )));
        }
    }
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
