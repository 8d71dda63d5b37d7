//! The pipeline's ordering, on the fakes: what is written before acting, what a lost
//! conditional write does, what a transient failure leaves, and that a dry run changes
//! nothing. Each test asserts the outcome and the journal (the order of writes, calls and
//! reports) or the world after it.

use super::{
    alarm, tick, Bench, Machine, Seen, REGION, SAMPLE_ALARM_MS as ALARM_MS, SAMPLE_ID as ID,
};
use crate::model::facts::{Check, Checks};
use crate::model::outcome::{Action, Outcome, Verdict};
use crate::rules::incident::Status;
use crate::rules::ladder::Rung;

const OTHER: &str = "i-0fedcba9876543210";
/// Past the standalone instances' grace (120 s) after the alarm.
const LATER_MS: i64 = ALARM_MS + 200_000;

/// EC2 reports the instance check impaired: the alarm is confirmed, and the combined
/// metric takes a standalone instance up the instance ladder (reboot first).
const IMPAIRED: Checks = Checks {
    system: Check::Ok,
    instance: Check::Impaired,
};

fn key(instance_id: &str) -> String {
    crate::model::keys::key(REGION, instance_id)
}

/// The members of group `web`: the alarming one and a healthy one.
fn group_web() -> Vec<Machine> {
    vec![
        Machine::running(ID, IMPAIRED).in_group("web"),
        Machine::running(OTHER, Checks::default()).in_group("web"),
    ]
}

fn only(outcomes: Vec<Outcome>) -> Outcome {
    assert_eq!(outcomes.len(), 1, "{outcomes:?}");
    outcomes.into_iter().next().unwrap()
}

fn wrote<'a>(op: &'static str, key: &'a str, stuck: bool) -> impl Fn(&Seen) -> bool + 'a {
    move |s| matches!(s, Seen::Wrote { op: o, key: k, stuck: w } if *o == op && k == key && *w == stuck)
}

fn called(call: &'static str) -> impl Fn(&Seen) -> bool {
    move |s| matches!(s, Seen::Called { call: c, .. } if *c == call)
}

#[tokio::test]
async fn a_member_is_claimed_and_admitted_before_it_is_marked_and_told_after() {
    let b = Bench::new(&[], group_web(), ALARM_MS + 1_000);
    let o = only(b.invoke(&alarm(ID)).await.unwrap().outcomes);
    assert_eq!(
        (o.action, o.result),
        (Action::MarkUnhealthy, Verdict::Done),
        "{o:?}"
    );
    let j = &b.journal;
    let claimed = j.position(wrote("write", &key(ID), true)).expect("claimed");
    let admitted = j
        .position(|s| matches!(s, Seen::Wrote { op: "admit_if_free", stuck: true, key } if key.contains("group:web")))
        .expect("admitted");
    let marked = j.position(called("mark_unhealthy")).expect("marked");
    let told = j.position(|s| matches!(s, Seen::Told(_))).expect("told");
    assert!(claimed < marked && admitted < marked, "{:#?}", j.all());
    assert!(marked < told, "{:#?}", j.all());
    assert_eq!(j.mutating_calls(), ["mark_unhealthy"]);
    // The world: Auto Scaling has it Unhealthy; the incident follows its replacement.
    assert!(!b.fleet.machine(ID).unwrap().healthy);
    let head = b.store.head(&key(ID)).unwrap();
    assert_eq!(head.status, Status::Repairing);
    assert!(head.is_verifying(), "{head:?}");
    assert!(b.store.with(|t| t.open.contains(&key(ID))));
    assert_eq!(b.teller.payloads.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn of_two_deliveries_at_once_the_one_whose_claim_loses_is_a_duplicate() {
    let b = Bench::new(&[], group_web(), ALARM_MS + 1_000);
    let event = alarm(ID);
    // Two invocations, interleaved at every ledger call.
    let (first, second) = tokio::join!(b.invoke(&event), b.invoke(&event));
    let mut results: Vec<Verdict> = [first, second]
        .into_iter()
        .map(|r| only(r.unwrap().outcomes).result)
        .collect();
    results.sort_by_key(|v| v.as_str());
    assert_eq!(results, [Verdict::Done, Verdict::Duplicate]);
    // The loser's conditional write of the head did not stick; it marked nothing.
    assert!(b
        .journal
        .position(wrote("write", &key(ID), false))
        .is_some());
    assert_eq!(b.journal.mutating_calls(), ["mark_unhealthy"]);
}

#[tokio::test]
async fn a_head_changed_between_claim_and_hold_is_left_to_the_other_invocation() {
    // Inside the standalone grace period: the plan is a hold, written over the claim.
    let b = Bench::new(&[], vec![Machine::running(ID, IMPAIRED)], ALARM_MS + 10_000);
    let k = key(ID);
    let closing = k.clone();
    // Between this invocation's claim (the first head write) and its hold (the second), an
    // OK closes the incident in another invocation.
    b.store.before("write", 2, move |t| {
        let head = t.heads.get_mut(&closing).unwrap();
        head.status = Status::Closed;
        head.version += 1;
    });
    let o = only(b.invoke(&alarm(ID)).await.unwrap().outcomes);
    assert_eq!(o.result, Verdict::Duplicate, "{o:?}");
    assert!(o.reason.contains("changed while deciding"), "{o:?}");
    let j = &b.journal;
    let claim = j.position(wrote("write", &k, true)).unwrap();
    let lost = j.position(wrote("write", &k, false)).unwrap();
    assert!(claim < lost);
    assert_eq!(
        b.store.head(&k).unwrap().status,
        Status::Closed,
        "the other's"
    );
    assert!(j.mutating_calls().is_empty());
    assert!(b.teller.payloads.lock().unwrap().is_empty(), "nothing told");
    // Delivered again: the incident it opened is closed.
    let again = only(b.invoke(&alarm(ID)).await.unwrap().outcomes);
    assert_eq!(again.result, Verdict::Duplicate, "{again:?}");
    assert!(j.mutating_calls().is_empty());
}

#[tokio::test]
async fn a_transient_failure_gives_the_lease_back_and_the_next_delivery_takes_the_same_rung() {
    let b = Bench::new(&[], vec![Machine::running(ID, IMPAIRED)], LATER_MS);
    let k = key(ID);
    b.fleet.fail_once("power", true);
    let e = b.invoke(&alarm(ID)).await.unwrap_err();
    assert!(e.is_transient(), "{e}");
    let head = b.store.head(&k).unwrap();
    let now = b.deps.now_ms();
    assert!(head.lease_until_ms <= now, "lease given back: {head:?}");
    assert_eq!(head.hold_until_ms, Some(now), "due for the tick at once");
    assert!(head.rungs.is_empty(), "no rung counted as tried: {head:?}");
    assert!(b.store.with(|t| t.open.contains(&k)), "listed for the tick");
    // Given back after the failed call, in the same invocation.
    let failed = b.journal.position(called("power")).unwrap();
    let released = b.journal.all()[failed..]
        .iter()
        .filter(|s| wrote("write", &k, true)(s))
        .count();
    assert_eq!(released, 1, "{:#?}", b.journal.all());

    // The retry: the same rung again, now counted.
    b.deps.clock.advance(1_000);
    let o = only(b.invoke(&alarm(ID)).await.unwrap().outcomes);
    assert_eq!(
        (o.action, o.result),
        (Action::Reboot, Verdict::InProgress),
        "{o:?}"
    );
    assert_eq!(b.journal.mutating_calls(), ["power", "power"]);
    let head = b.store.head(&k).unwrap();
    let rungs: Vec<Rung> = head.rungs.iter().map(|(r, _)| *r).collect();
    assert_eq!(rungs, [Rung::Reboot]);
}

#[tokio::test]
async fn a_transient_ledger_failure_before_the_mark_marks_nothing_until_the_retry() {
    let b = Bench::new(&[], group_web(), ALARM_MS + 1_000);
    let k = key(ID);
    // The breaker's note, in the round of reads before the plan.
    b.store.fail_once("note_alarm", true);
    let e = b.invoke(&alarm(ID)).await.unwrap_err();
    assert!(e.is_transient(), "{e}");
    assert!(b.journal.mutating_calls().is_empty());
    let head = b.store.head(&k).unwrap();
    assert!(
        head.lease_until_ms <= b.deps.now_ms(),
        "lease given back: {head:?}"
    );
    assert!(b.store.with(|t| t.open.contains(&k)), "listed for the tick");

    b.deps.clock.advance(1_000);
    let o = only(b.invoke(&alarm(ID)).await.unwrap().outcomes);
    assert_eq!(
        (o.action, o.result),
        (Action::MarkUnhealthy, Verdict::Done),
        "{o:?}"
    );
    assert_eq!(b.journal.mutating_calls(), ["mark_unhealthy"]);
}

#[tokio::test]
async fn a_dry_run_changes_nothing_for_a_member_or_a_standalone_instance() {
    let machines = vec![
        Machine::running(ID, IMPAIRED).in_group("web"),
        Machine::running(OTHER, IMPAIRED),
    ];
    let b = Bench::new(&[("AUTOHEAL_DRY_RUN", "true")], machines, LATER_MS);
    for (id, action) in [(ID, Action::MarkUnhealthy), (OTHER, Action::CreateImage)] {
        let o = only(b.invoke(&alarm(id)).await.unwrap().outcomes);
        assert_eq!((o.action, o.result), (action, Verdict::DryRun), "{o:?}");
    }
    assert!(
        b.journal.mutating_calls().is_empty(),
        "{:#?}",
        b.journal.all()
    );
    assert!(b.fleet.machine(ID).unwrap().healthy);
    assert_eq!(b.fleet.machine(OTHER).unwrap().state, "running");
    // Both were looked at, and told.
    assert_eq!(b.teller.payloads.lock().unwrap().len(), 2);
}

/// An operator's alarm for `id` (not the standard settings: a period of 5 minutes).
fn operator_alarm(id: &str) -> crate::rules::alarms::Managed {
    let managed = crate::rules::alarms::managed_prefix("autoheal-");
    let mut spec =
        crate::rules::alarms::standard(id, None, "arn:aws:sns:eu-west-1:1:t", &managed, "");
    spec.shape.period = 300;
    crate::rules::alarms::Managed {
        name: spec.name,
        shape: spec.shape,
    }
}

fn about_alarms(outcomes: Vec<Outcome>) -> Vec<Outcome> {
    outcomes
        .into_iter()
        .filter(|o| o.reason.starts_with("alarms of"))
        .collect()
}

#[tokio::test]
async fn the_tick_gives_a_new_member_its_siblings_alarm_and_deletes_a_gone_instances() {
    let b = Bench::new(&[], group_web(), LATER_MS);
    b.fleet.add_alarm(operator_alarm(ID));
    b.fleet.add_alarm(operator_alarm("i-0000000000000dead"));
    let o = only(about_alarms(b.invoke(&tick()).await.unwrap().outcomes));
    assert_eq!(o.result, Verdict::Done, "{o:?}");
    assert_eq!(
        b.fleet.alarm_names(),
        [
            format!("autoheal-StatusCheckFailed-{ID}"),
            format!("autoheal-StatusCheckFailed-{OTHER}"),
        ]
    );
    assert_eq!(b.journal.mutating_calls(), ["put_alarm", "delete_alarms"]);
    // Kept: the next tick has nothing to do.
    assert!(about_alarms(b.invoke(&tick()).await.unwrap().outcomes).is_empty());
    assert_eq!(b.journal.mutating_calls().len(), 2);
}

#[tokio::test]
async fn the_tick_changes_no_alarm_in_a_dry_run_or_when_asked_not_to() {
    let b = Bench::new(&[("AUTOHEAL_DRY_RUN", "true")], group_web(), LATER_MS);
    b.fleet.add_alarm(operator_alarm(ID));
    let o = only(about_alarms(b.invoke(&tick()).await.unwrap().outcomes));
    assert_eq!(o.result, Verdict::DryRun, "{o:?}");
    assert!(o.reason.contains(OTHER), "{o:?}");
    assert!(b.journal.mutating_calls().is_empty());
    assert_eq!(b.fleet.alarm_names().len(), 1);

    let b = Bench::new(&[("AUTOHEAL_ALARMS", "off")], group_web(), LATER_MS);
    b.fleet.add_alarm(operator_alarm(ID));
    assert!(about_alarms(b.invoke(&tick()).await.unwrap().outcomes).is_empty());
    assert_eq!(b.journal.position(called("alarms")), None, "not even read");
}

#[tokio::test]
async fn a_tick_costs_nothing_for_an_incident_not_due_and_takes_it_once_due() {
    // A standalone instance: held in its grace (120 s) by the alarm.
    let b = Bench::new(&[], vec![Machine::running(ID, IMPAIRED)], ALARM_MS + 1_000);
    let o = only(b.invoke(&alarm(ID)).await.unwrap().outcomes);
    assert_eq!(o.result, Verdict::Held, "{o:?}");
    let reads = b.store.calls("read");
    let calls = b.journal.all().len();
    let r = b.invoke(&tick()).await.unwrap();
    assert!(
        r.outcomes.iter().any(|o| o
            .reason
            .ends_with(": 1 not due (held until later, or being worked on)")),
        "{r:?}"
    );
    assert_eq!(
        b.store.calls("read"),
        reads,
        "its head was read only in the batch"
    );
    let about_it: Vec<Seen> = b.journal.all()[calls..]
        .iter()
        .filter(|s| match s {
            Seen::Wrote { key, .. } => key.contains(ID),
            Seen::Called { target, .. } => target.contains(ID),
            Seen::Told(text) => text.contains(ID),
        })
        .cloned()
        .collect();
    assert!(
        about_it.is_empty(),
        "no fleet call, write or report about it: {about_it:?}"
    );
    // Once the grace is over, the tick takes it: the reboot rung.
    b.deps.clock.advance(200_000);
    let r = b.invoke(&tick()).await.unwrap();
    assert!(
        r.outcomes
            .iter()
            .any(|o| o.instance_id.as_deref() == Some(ID) && o.action == Action::Reboot),
        "{r:?}"
    );
}
