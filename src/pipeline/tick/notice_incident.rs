//! A notice's repair carried out as an incident of its own (`incident::claim_notice`): a
//! member marked Unhealthy and its replacement followed, or a copy imaged and relaunched.
//! Admitted in the repair guards' scopes like any repair (one at a time in small scopes,
//! the account's budget), then carried on by the incidents' machinery and told by its
//! reports. The notice's step is recorded as begun before the incident is opened, and as
//! carried on by it once admitted; held by a guard, the incident is closed unrepaired and
//! the step waits for a later tick.

use super::notice_steps::{failed, outcome, write};
use crate::app::Run;
use crate::model::facts::Facts;
use crate::model::keys::key;
use crate::model::outcome::{Action, Outcome, Verdict};
use crate::pipeline::act::{guard, mark, relaunch};
use crate::pipeline::LEASE_MARGIN_MS;
use crate::rules::incident::{self, ByNotice, Head, Move};
use crate::rules::notice::act::{self, OPENING};
use crate::rules::notice::record::Recorded;
use tokio::sync::OnceCell;

/// What the incident repairs.
pub(super) enum Repair<'a> {
    /// Image it and launch a copy with its environment (it cannot be stopped and started).
    Copy,
    /// Mark the member Unhealthy for its group to replace it; `desired`: the group's desired
    /// capacity as read just before (the repair guards' group size).
    Mark {
        group: &'a str,
        desired: Option<i32>,
    },
}

/// Opens the incident for step `i` of `r` and carries its repair as far as it goes now.
pub(super) async fn open(
    run: &Run<'_>,
    r: &Recorded,
    i: usize,
    facts: &Facts,
    repair: Repair<'_>,
) -> Outcome {
    let begun = act::begun(r, i, OPENING, run.now_ms());
    if let Err(e) = write(run, r, &begun).await {
        let why = format!("scheduled notice {}: {e}", r.key);
        return outcome(r, Action::None, Verdict::Duplicate, why);
    }
    let head = match claim(run, &begun, &repair).await {
        Ok(head) => head,
        Err(o) => return o,
    };
    // Listed for the tick before its guard places are taken: an invocation that ends past
    // here leaves a repair the tick resumes, never a place nobody gives back.
    if let Err(e) = run
        .ledger
        .set_open(&head.key(), true, run.now_ms() / 1000)
        .await
    {
        return wait(run, &begun, head, format!("not listed for the tick ({e})")).await;
    }
    let desired = match &repair {
        Repair::Mark { desired, .. } => OnceCell::new_with(Some(*desired)),
        Repair::Copy => OnceCell::new(),
    };
    let held = match guard::admit_everywhere(run, facts, &head, &desired).await {
        Ok(None) => None,
        Ok(Some((why, _))) => Some(why),
        Err(e) => Some(format!("its guard scopes not read ({e})")),
    };
    if let Some(why) = held {
        return wait(run, &begun, head, why).await;
    }
    let what = match repair {
        Repair::Copy => "imaged and relaunched as a copy",
        Repair::Mark { .. } => "marked Unhealthy for its group to replace it",
    };
    let said = format!(
        "{}: {what} ahead of EC2 as incident {}, whose reports follow",
        act::named(r),
        head.incident_id
    );
    let next = act::behind(&begun, i, said, true, run.now_ms());
    if let Err(e) = write(run, &begun, &next).await {
        tracing::warn!(notice = %r.key, "the incident's opening not recorded: {e}");
    }
    let result = match repair {
        Repair::Copy => Box::pin(relaunch::run(run, head, false)).await,
        Repair::Mark { group, .. } => {
            let s = head.opening_signal();
            mark::mark(run, head, &s, facts, group).await
        }
    };
    let mut o = result.unwrap_or_else(|e| {
        let why = format!("{}: its repair failed ({e})", act::named(r));
        outcome(r, Action::None, Verdict::Failed, why)
    });
    o.inputs = Some(format!("notice {}", r.key));
    o
}

/// The incident opened, claimed: Err with the notice's outcome when one is open already
/// (the notice closed: that repair stands for it) or the ledger did not take it.
async fn claim(run: &Run<'_>, r: &Recorded, repair: &Repair<'_>) -> Result<Head, Outcome> {
    let fail = |why: String| {
        let why = format!(
            "{}: not begun: {why}; a later tick tries again",
            act::named(r)
        );
        outcome(r, Action::None, Verdict::InProgress, why)
    };
    let current = match run.ledger.read(&key(&r.region, &r.instance_id)).await {
        Ok(current) => current,
        Err(e) => return Err(undo(run, r, fail(format!("its incident not read ({e})"))).await),
    };
    let event = format!(
        "{} at {}",
        r.kind,
        r.not_before_ms.map_or("?".into(), act::date)
    );
    let by = ByNotice {
        instance_id: &r.instance_id,
        region: &r.region,
        account: run.account,
        key: &r.key,
        event: &event,
        copy: matches!(repair, Repair::Copy),
    };
    let lease = run.deadline_ms.max(run.now_ms()) + LEASE_MARGIN_MS;
    let head = match incident::claim_notice(current.as_ref(), &by, run.now_ms(), lease) {
        Move::Take(head) => head,
        Move::Skip(o) => {
            let said = format!("{}: {}", act::named(r), o.reason);
            let step = r.acting.as_ref().map_or(r.done, |a| a.step);
            let next = act::behind(r, step, said.clone(), true, run.now_ms());
            if let Err(e) = write(run, r, &next).await {
                tracing::warn!(notice = %r.key, "the notice's close not recorded: {e}");
            }
            return Err(outcome(r, Action::None, Verdict::Duplicate, said));
        }
    };
    match run.ledger.write(&head, run.now_ms() / 1000).await {
        Ok(true) => Ok(head),
        Ok(false) => Err(undo(run, r, fail("an alarm opened an incident first".into())).await),
        Err(e) => Err(undo(run, r, fail(format!("its incident not written ({e})"))).await),
    }
}

/// Held by a repair guard (or not listed for the tick): the incident closed unrepaired (it
/// counts in no scope) and unlisted, the step due again for a later tick — or, once EC2's
/// date has come, behind and handed to people.
async fn wait(run: &Run<'_>, r: &Recorded, head: Head, why: String) -> Outcome {
    let now = run.now_ms();
    let late = r.not_before_ms.is_some_and(|start| now >= start);
    let said = match late {
        true => format!("its repair guards held it until EC2's date ({why})"),
        false => format!(
            "{}: waits for its repair guards ({why}); a later tick tries again",
            act::named(r)
        ),
    };
    let o = Outcome::new(
        Some(r.instance_id.clone()),
        Action::None,
        Verdict::Held,
        said.clone(),
    );
    let closed = incident::close_without_ok(&head, &o, now);
    if let Err(e) = run.ledger.write(&closed, now / 1000).await {
        tracing::warn!(incident = %head.incident_id, "the held incident not closed: {e}");
    }
    if let Err(e) = run.ledger.set_open(&head.key(), false, now / 1000).await {
        tracing::warn!(incident = %head.incident_id, "the held incident not unlisted: {e}");
    }
    match late {
        // EC2's date came first: not done ahead; people told once, the step behind.
        true => failed(run, r, said).await,
        false => undo(run, r, outcome(r, Action::None, Verdict::Held, said)).await,
    }
}

/// The step begun in `r` not begun after all: due again for a later tick.
async fn undo(run: &Run<'_>, r: &Recorded, o: Outcome) -> Outcome {
    if let Err(e) = write(run, r, &act::not_begun(r)).await {
        tracing::warn!(notice = %r.key, "the step's undoing not recorded ({e}); it is handed to people when its time is out");
    }
    o
}
