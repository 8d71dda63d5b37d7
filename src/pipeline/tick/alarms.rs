//! The tick keeps the status-check alarms of the Auto Scaling groups autoheal watches: a
//! member Auto Scaling launched gets a sibling's alarm, an alarm whose instance is gone is
//! deleted. Only alarms named with the stack's prefix are read or written.

use crate::app::config::Alarms;
use crate::app::Run;
use crate::error::Error;
use crate::model::handover::Handover;
use crate::model::outcome::{Action, Outcome, Verdict};
use crate::notify::message::summary_for_people;
use crate::rules::alarms::{gone, managed_prefix, watch_members};

/// Every served region's alarms, at once; an outcome per region where something was (or
/// would be) changed or could not be.
pub async fn alarms(run: &Run<'_>, settings: &Alarms) -> Vec<Outcome> {
    let regions = run.config.regions.listed(&run.config.region);
    let done = futures::future::join_all(regions.iter().map(|r| region(run, r, settings))).await;
    done.into_iter().flatten().collect()
}

async fn region(run: &Run<'_>, region: &str, settings: &Alarms) -> Option<Outcome> {
    let managed = managed_prefix(&settings.name_prefix);
    match watch(run, region, &managed, settings.per_tick).await {
        Ok(o) => o,
        Err(e) => {
            let text = format!(
                "alarms of {region}: not kept this tick ({e}); new members may be unwatched until a tick succeeds"
            );
            run.tell(&summary_for_people(
                &format!(":warning: autoheal {text}"),
                Handover::TickWarning,
                run.config.runbook_url.as_deref(),
            ))
            .await;
            Some(Outcome::new(None, Action::None, Verdict::Failed, text))
        }
    }
}

async fn watch(
    run: &Run<'_>,
    region: &str,
    managed: &str,
    limit: usize,
) -> Result<Option<Outcome>, Error> {
    let fleet = &run.fleet;
    let (alarms, groups) = tokio::try_join!(fleet.alarms(region, managed), fleet.groups(region))?;
    let plan = watch_members(&groups, &alarms, managed, limit);
    let ids: Vec<String> = plan.unplaced.keys().cloned().collect();
    let states = match ids.is_empty() {
        true => Default::default(),
        false => fleet.instance_states(region, &ids).await?,
    };
    let gone = gone(&plan.unplaced, &states);
    if plan.create.is_empty() && gone.is_empty() {
        return Ok(None);
    }
    let dry = run.config.dry_run;
    let mut parts = vec![];
    if !plan.create.is_empty() {
        let ids: Vec<&str> = plan.create.iter().map(|s| s.instance_id.as_str()).collect();
        let verb = if dry { "would make" } else { "made" };
        parts.push(format!(
            "{verb} the alarms of new members {}",
            ids.join(", ")
        ));
    }
    if !gone.is_empty() {
        let verb = if dry { "would delete" } else { "deleted" };
        parts.push(format!("{verb} {} (instance gone)", gone.join(", ")));
    }
    if plan.left > 0 {
        parts.push(format!(
            "{} more members left for the next tick (at most {limit} a tick)",
            plan.left
        ));
    }
    let text = format!("alarms of {region}: {}", parts.join("; "));
    if dry {
        return Ok(Some(Outcome::new(
            None,
            Action::None,
            Verdict::DryRun,
            format!("{text} (dry run: nothing changed)"),
        )));
    }
    for spec in &plan.create {
        fleet.put_alarm(region, spec).await?;
    }
    if !gone.is_empty() {
        fleet.delete_alarms(region, &gone).await?;
    }
    Ok(Some(Outcome::new(None, Action::None, Verdict::Done, text)))
}
