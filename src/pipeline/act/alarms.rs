//! A verified copy is watched as its source was: the source's alarm moved to the copy
//! (`rules::alarms::watch_copy`). What happened is said in the recovery's report; a
//! failure here never undoes the recovery.

use crate::app::config::Alarms;
use crate::app::Run;
use crate::rules::alarms::{alarm_name, managed_prefix, watch_copy};
use crate::rules::incident::Head;

/// For the report: which alarm watches the copy now, or why none does; None when alarms
/// are off or the relaunch was `halted` (dry run, opted out: no call at all).
pub async fn watch(run: &Run<'_>, head: &Head, halted: bool) -> Option<String> {
    let settings = run.config.alarms.as_ref().filter(|_| !halted)?;
    let copy = head.progress.replacement_id.as_deref()?;
    Some(watch_copy_of(run, head, copy, settings).await)
}

async fn watch_copy_of(run: &Run<'_>, head: &Head, copy: &str, settings: &Alarms) -> String {
    let managed = managed_prefix(&settings.name_prefix);
    let region = head.region();
    let source_name = alarm_name(&managed, &head.instance_id);
    let unwatched = |e: crate::error::Error| {
        format!("the copy's alarm was not made ({e}): run autoheal-admin alarms sync")
    };
    // A name prefix matches longer names too: only the exact one is the source's.
    let source_alarm = match run.fleet.alarms(region, &source_name).await {
        Ok(found) => found.into_iter().find(|a| a.name == source_name),
        Err(e) => return unwatched(e),
    };
    let plan = watch_copy(
        &head.instance_id,
        copy,
        source_alarm.as_ref(),
        // A notice's incident has no alarm of its own.
        match head.by_notice() {
            true => "",
            false => &head.alarm.alarm_name,
        },
        settings.topic_arn.as_deref(),
        &managed,
    );
    if let Some(spec) = &plan.put {
        if let Err(e) = run.fleet.put_alarm(region, spec).await {
            return unwatched(e);
        }
    }
    if let Some(old) = plan.delete {
        if let Err(e) = run
            .fleet
            .delete_alarms(region, std::slice::from_ref(&old))
            .await
        {
            return format!("{}, except that {old} was not deleted ({e})", plan.note);
        }
    }
    plan.note
}
