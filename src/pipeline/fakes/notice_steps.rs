//! Scheduled notices carried out by the tick, on the fakes: a step is recorded as begun
//! before its mutating call, taken once however many ticks come, never when another
//! invocation took it first, and never in a dry run.

use super::{tick, Bench, Machine, Seen, ACCOUNT, REGION, SAMPLE_ID as ID};
use crate::model::facts::{Check, Checks};
use crate::model::keys::key;
use crate::model::notice::{Notice, NoticeKind, NoticeSource, NoticeState};
use crate::model::outcome::Verdict;
use crate::model::scope::ScopeKey;
use crate::rules::incident::{claim_notice, ByNotice, Head, Move, Status};
use crate::rules::ladder::Rung;

const H: i64 = 3_600_000;
/// 2026-12-07 03:00 UTC.
const START: i64 = 1_796_612_400_000;
const NOW: i64 = START - 2 * H;
const OK: Checks = Checks {
    system: Check::Ok,
    instance: Check::Ok,
};

fn listed(kind: NoticeKind, deadline_ms: Option<i64>) -> Notice {
    Notice {
        instance_id: ID.into(),
        region: Some(REGION.into()),
        account: Some(ACCOUNT.into()),
        kind,
        source: NoticeSource::Status {
            event_id: "instance-event-1".into(),
        },
        not_before_ms: Some(START),
        not_after_ms: Some(START + 2 * H),
        deadline_ms,
        state: NoticeState::Scheduled,
        description: "scheduled".into(),
    }
}

fn bench(env: &[(&str, &str)], machine: Machine, kind: NoticeKind) -> Bench {
    let b = Bench::new(env, vec![machine], NOW);
    *b.fleet.events.lock().unwrap() = vec![listed(kind, None)];
    b
}

#[tokio::test]
async fn a_stop_start_is_recorded_before_each_call_taken_once_and_verified() {
    let b = bench(&[], Machine::running(ID, OK), NoticeKind::InstanceStop);
    b.invoke(&tick()).await.unwrap();
    assert_eq!(b.journal.told().len(), 1, "recorded and told");
    b.invoke(&tick()).await.unwrap();
    assert!(b.journal.mutating_calls().is_empty(), "not due yet");
    // The lead time (1 h) before EC2's start.
    b.deps.clock.advance(H);
    for _ in 0..4 {
        b.invoke(&tick()).await.unwrap();
        b.deps.clock.advance(60_000);
    }
    assert_eq!(b.journal.mutating_calls(), vec!["power", "power"]);
    let journal = b.journal.all();
    let wrote = |after: usize| {
        journal[..after].iter().rev().find_map(|s| match s {
            Seen::Wrote { op, stuck, .. } => Some((*op, *stuck)),
            Seen::Called { mutating: true, .. } => Some(("call", true)),
            _ => None,
        })
    };
    for (i, s) in journal.iter().enumerate() {
        if matches!(s, Seen::Called { mutating: true, .. }) {
            assert_eq!(wrote(i), Some(("write_notice", true)), "recorded first");
        }
    }
    let r = b.notice();
    assert_eq!(r.state, "closed", "{r:#?}");
    assert!(r.acting.is_none());
    let said = b.journal.told();
    assert_eq!(said.len(), 2, "{said:#?}");
    assert!(
        said[1].contains("stopped and started ahead of EC2"),
        "{}",
        said[1]
    );
    assert!(said[1].contains("verified at"), "{}", said[1]);
}

#[tokio::test]
async fn a_step_another_invocation_took_first_is_not_taken() {
    let b = bench(&[], Machine::running(ID, OK), NoticeKind::InstanceStop);
    b.invoke(&tick()).await.unwrap();
    b.deps.clock.advance(H);
    // Another invocation begins the step just before this one writes.
    b.store.before("write_notice", 1, |t| {
        let r = t.notices.values_mut().next().unwrap();
        r.act_version += 1;
    });
    let out = b.invoke(&tick()).await.unwrap().outcomes;
    assert!(b.journal.mutating_calls().is_empty(), "{out:#?}");
    assert!(out
        .iter()
        .any(|o| o.result == Verdict::Duplicate
            && o.reason.contains("another invocation took it first")));
}

#[tokio::test]
async fn a_dry_run_says_what_it_would_do_and_changes_nothing() {
    let env = [("AUTOHEAL_DRY_RUN", "true")];
    let b = bench(&env, Machine::running(ID, OK), NoticeKind::InstanceStop);
    b.invoke(&tick()).await.unwrap();
    b.deps.clock.advance(H);
    let out = b.invoke(&tick()).await.unwrap().outcomes;
    b.invoke(&tick()).await.unwrap();
    assert!(b.journal.mutating_calls().is_empty());
    assert!(out.iter().any(|o| o.result == Verdict::DryRun), "{out:#?}");
    let said = b.journal.told();
    assert_eq!(said.len(), 2, "{said:#?}");
    assert!(said[1].contains("would stop and start it"), "{}", said[1]);
}

#[tokio::test]
async fn an_instance_stopped_meanwhile_closes_the_notice_quietly() {
    let mut m = Machine::running(ID, OK);
    m.state = "running".into();
    let b = bench(&[], m, NoticeKind::SystemReboot);
    b.invoke(&tick()).await.unwrap();
    b.fleet.change(ID, |m| m.state = "stopped".into());
    b.deps.clock.advance(H);
    let out = b.invoke(&tick()).await.unwrap().outcomes;
    assert!(b.journal.mutating_calls().is_empty());
    assert!(out
        .iter()
        .any(|o| o.result == Verdict::Ignored && o.reason.contains("stopped")));
    assert_eq!(b.journal.told().len(), 1);
}

#[tokio::test]
async fn an_instance_reboot_is_moved_into_its_window() {
    let mut m = Machine::running(ID, OK);
    m.tags.insert(
        "autoheal:maintenance-window".into(),
        "Daily 10:00-11:00 UTC".into(),
    );
    let b = Bench::new(&[], vec![m], START - 48 * H);
    *b.fleet.events.lock().unwrap() =
        vec![listed(NoticeKind::InstanceReboot, Some(START + 72 * H))];
    b.invoke(&tick()).await.unwrap();
    b.invoke(&tick()).await.unwrap();
    b.invoke(&tick()).await.unwrap();
    assert_eq!(b.journal.mutating_calls(), vec!["move_event"]);
    let moved = b.fleet.events.lock().unwrap()[0].not_before_ms.unwrap();
    assert_ne!(moved, START);
    let said = b.journal.told();
    assert!(
        said.iter().any(|t| t.contains("moved to start at")),
        "{said:#?}"
    );
}

#[tokio::test]
async fn a_member_is_marked_unhealthy_once_ahead_as_an_incident_that_follows_its_replacement() {
    let m = Machine::running(ID, OK).in_group("web");
    let b = bench(&[], m, NoticeKind::SystemReboot);
    b.invoke(&tick()).await.unwrap();
    b.deps.clock.advance(H);
    b.invoke(&tick()).await.unwrap();
    b.invoke(&tick()).await.unwrap();
    assert_eq!(b.journal.mutating_calls(), vec!["mark_unhealthy"]);
    let r = b.notice();
    assert_eq!(r.state, "closed");
    let head = b
        .store
        .head(&key(REGION, ID))
        .expect("an incident of its own");
    assert!(
        head.is_verifying(),
        "its replacement is followed: {head:#?}"
    );
    assert!(
        r.acted.iter().any(|a| a.contains(&head.incident_id)),
        "{r:#?}"
    );
    assert!(b.store.with(|t| t.open.contains(&key(REGION, ID))));
    // Its place in the group's guard scope is taken, like any repair's.
    let held = b.store.with(|t| {
        t.scopes
            .values()
            .any(|s| s.members.iter().any(|(_, i)| *i == head.incident_id))
    });
    assert!(held, "the mark holds a guard place");
    let said = b.journal.told();
    assert!(
        said.iter()
            .any(|t| t.contains("marked Unhealthy")
                && t.contains("EC2 scheduled event system-reboot")),
        "{said:#?}"
    );
}

/// An open incident of `instance_id`, as the ledger holds one under repair.
fn open_incident(t: &mut super::store::Tables, instance_id: &str) -> Head {
    let by = ByNotice {
        instance_id,
        region: REGION,
        account: None,
        key: "k",
        event: "e",
        copy: false,
    };
    let Move::Take(head) = claim_notice(None, &by, NOW, 0) else {
        unreachable!("no head yet")
    };
    t.heads.insert(key(REGION, instance_id), head.clone());
    head
}

/// Another instance's repair in the group's scope, as the ledger holds it.
fn repair_under_way(t: &mut super::store::Tables) {
    let other = "i-other";
    let head = open_incident(t, other);
    let member = (key(REGION, other), head.incident_id);
    for scope in [ScopeKey::group("web").in_region(REGION), ScopeKey::Account] {
        t.scopes.insert(
            scope.to_string(),
            super::store::Scope {
                members: vec![member.clone()],
                newest_ms: None,
                version: 1,
            },
        );
    }
}

#[tokio::test]
async fn a_member_waits_while_a_repair_is_under_way_in_its_guard_scope() {
    let m = Machine::running(ID, OK).in_group("web");
    let b = bench(&[], m, NoticeKind::SystemReboot);
    b.invoke(&tick()).await.unwrap();
    b.deps.clock.advance(H);
    b.store.with(repair_under_way);
    let out = b.invoke(&tick()).await.unwrap().outcomes;
    assert!(b.journal.mutating_calls().is_empty(), "{out:#?}");
    assert!(
        out.iter()
            .any(|o| o.result == Verdict::Held && o.reason.contains("waits for its repair guards")),
        "{out:#?}"
    );
    let head = b.store.head(&key(REGION, ID)).unwrap();
    assert_eq!(head.status, Status::Closed, "held: counts in no scope");
    assert!(
        !b.store.with(|t| t.open.contains(&key(REGION, ID))),
        "nor listed"
    );
    let r = b.notice();
    assert_eq!((r.state.as_str(), &r.acting), ("scheduled", &None));
    // The repair ends: the next tick marks it, once.
    b.store.with(|t| {
        t.heads.remove(&key(REGION, "i-other"));
    });
    b.deps.clock.advance(60_000);
    b.invoke(&tick()).await.unwrap();
    b.invoke(&tick()).await.unwrap();
    assert_eq!(b.journal.mutating_calls(), vec!["mark_unhealthy"]);
}

#[tokio::test]
async fn a_members_mark_refused_for_now_is_retried_by_the_next_tick_without_an_alarm() {
    let m = Machine::running(ID, OK).in_group("web");
    let b = bench(&[], m, NoticeKind::SystemReboot);
    b.invoke(&tick()).await.unwrap();
    b.deps.clock.advance(H);
    b.fleet.fail_once("mark_unhealthy", true);
    b.invoke(&tick()).await.unwrap();
    let head = b.store.head(&key(REGION, ID)).unwrap();
    assert!(!head.is_verifying(), "not marked: {head:#?}");
    assert!(
        b.store.with(|t| t.open.contains(&key(REGION, ID))),
        "listed for the tick"
    );
    // EC2 reports the instance well: a notice's repair needs no confirmation.
    b.deps.clock.advance(60_000);
    b.invoke(&tick()).await.unwrap();
    assert_eq!(
        b.journal.mutating_calls(),
        vec!["mark_unhealthy", "mark_unhealthy"]
    );
    let head = b.store.head(&key(REGION, ID)).unwrap();
    assert!(
        head.is_verifying(),
        "marked, its replacement followed: {head:#?}"
    );
}

#[tokio::test]
async fn a_member_held_by_its_guards_until_ec2s_date_goes_to_people_once() {
    let m = Machine::running(ID, OK).in_group("web");
    let b = bench(&[], m, NoticeKind::SystemReboot);
    b.invoke(&tick()).await.unwrap();
    b.store.with(repair_under_way);
    for _ in 0..4 {
        b.deps.clock.advance(H / 2);
        b.invoke(&tick()).await.unwrap();
    }
    assert!(b.journal.mutating_calls().is_empty());
    let said = b.journal.told();
    assert_eq!(said.len(), 2, "heard, then handed over once: {said:#?}");
    assert!(
        said[1].contains("failed: its repair guards held it until EC2's date"),
        "{}",
        said[1]
    );
    let r = b.notice();
    assert_eq!((r.done, r.acting.is_none()), (r.plan.len(), true), "{r:#?}");
}

#[tokio::test]
async fn an_open_incident_stands_for_the_notice() {
    let b = bench(&[], Machine::running(ID, OK), NoticeKind::InstanceStop);
    b.invoke(&tick()).await.unwrap();
    b.deps.clock.advance(H);
    // A stop that never completes: after the ladder's stop/start timeout, a copy.
    b.invoke(&tick()).await.unwrap();
    b.fleet.change(ID, |m| m.state = "stopping".into());
    // Meanwhile an alarm opened an incident for the instance.
    b.store.with(|t| open_incident(t, ID));
    b.deps.clock.advance(11 * 60_000);
    let out = b.invoke(&tick()).await.unwrap().outcomes;
    assert_eq!(b.journal.mutating_calls(), vec!["power"], "{out:#?}");
    let r = b.notice();
    assert_eq!(r.state, "closed", "{r:#?}");
    assert!(
        r.acted
            .iter()
            .any(|a| a.contains("autoheal images it and launches a copy instead")),
        "{r:#?}"
    );
    assert!(
        r.closed_why
            .as_deref()
            .unwrap()
            .contains("its repair stands for the notice"),
        "{r:#?}"
    );
}

#[tokio::test]
async fn a_stop_that_never_completes_is_taken_to_a_copy_recorded_first() {
    let b = bench(&[], Machine::running(ID, OK), NoticeKind::InstanceStop);
    b.invoke(&tick()).await.unwrap();
    b.deps.clock.advance(H);
    b.invoke(&tick()).await.unwrap();
    b.fleet.change(ID, |m| m.state = "stopping".into());
    for _ in 0..3 {
        b.deps.clock.advance(5 * 60_000);
        b.invoke(&tick()).await.unwrap();
    }
    // The fakes do not play images: the copy's first call is enough here (the emulator
    // plays the whole copy).
    let calls = b.journal.mutating_calls();
    assert_eq!(calls[..2], ["power", "create_image"], "{calls:?}");
    let head = b
        .store
        .head(&key(REGION, ID))
        .expect("an incident of its own");
    assert!(head.rungs.iter().any(|(r, _)| *r == Rung::Relaunch));
    let journal = b.journal.all();
    let image = b
        .journal
        .position(|s| {
            matches!(
                s,
                Seen::Called {
                    call: "create_image",
                    ..
                }
            )
        })
        .unwrap();
    let head_written = journal[..image].iter().any(|s| {
        matches!(
            s,
            Seen::Wrote {
                op: "write",
                stuck: true,
                ..
            }
        )
    });
    assert!(head_written, "the incident recorded before its image");
    let r = b.notice();
    assert_eq!(r.state, "closed", "{r:#?}");
    assert!(
        r.closed_why.as_deref().unwrap().contains(&format!(
            "imaged and relaunched as a copy ahead of EC2 as incident {}",
            head.incident_id
        )),
        "{r:#?}"
    );
}

#[tokio::test]
async fn no_step_begins_while_a_storm_is_on() {
    let b = bench(&[], Machine::running(ID, OK), NoticeKind::InstanceStop);
    b.invoke(&tick()).await.unwrap();
    // A zone's breaker is open, for longer than the test runs.
    let next = b.store.calls("read_storm") + 1;
    b.store.before("read_storm", next, |t| {
        let zone = "zone:us-east-1b@us-east-1".to_string();
        t.storm.open.insert(zone.clone());
        t.storm.since_ms = Some(NOW);
        let item = t.breakers.entry(zone).or_default();
        item.open_since_ms = Some(NOW + 10 * H);
        item.version = Some(1);
    });
    b.deps.clock.advance(H);
    let out = b.invoke(&tick()).await.unwrap().outcomes;
    assert!(b.journal.mutating_calls().is_empty(), "{out:#?}");
    assert!(
        out.iter()
            .any(|o| o.reason.contains("1 step(s) due wait while a storm is on")),
        "{out:#?}"
    );
}

#[tokio::test]
async fn an_ec2_event_window_is_the_window_when_no_tag_names_one() {
    let mut m = Machine::running(ID, OK);
    m.tags.insert("team".into(), "db".into());
    let b = bench(&[], m, NoticeKind::InstanceStop);
    // Sunday 22:00 to Monday 02:00 UTC: open now (Monday 01:00), before the lead time.
    *b.fleet.event_windows.lock().unwrap() = vec![crate::model::notice::EventWindow {
        id: "iew-1".into(),
        name: Some("db-nights".into()),
        ranges: vec![(6, 22, 0, 2)],
        tags: vec![("team".into(), "db".into())],
        ..Default::default()
    }];
    b.invoke(&tick()).await.unwrap();
    let r = b.notice();
    assert_eq!(
        r.window.as_deref(),
        Some("Sun 22:00 - Mon 02:00 UTC (EC2's instance event window db-nights (iew-1))")
    );
    b.invoke(&tick()).await.unwrap();
    assert_eq!(
        b.journal.mutating_calls(),
        vec!["power"],
        "inside the window"
    );
}
