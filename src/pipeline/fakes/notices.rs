//! Scheduled notices on the fakes: recorded before they are told, told once however many
//! times and ways they are heard, closed quietly, many told in one summary; nothing
//! changes the world.

use super::{sample, tick, Bench, Machine, Seen, ACCOUNT, REGION, SAMPLE_ID as ID};
use crate::model::facts::Checks;
use crate::model::notice::{Notice, NoticeKind, NoticeSource, NoticeState};
use crate::model::outcome::{Outcome, Verdict};

/// The retirement sample's start (and end): 2026-12-07 03:00 UTC.
const START: i64 = 1_796_612_400_000;
const DAY: i64 = 24 * 3_600_000;
const NOW: i64 = START - 5 * DAY;

fn retirement() -> serde_json::Value {
    sample("health-retirement-scheduled.json", None)
}

/// EC2's event of `id`, as the tick reads it.
fn listed(id: &str, kind: NoticeKind, description: &str) -> Notice {
    Notice {
        instance_id: id.into(),
        region: Some(REGION.into()),
        account: Some(ACCOUNT.into()),
        kind,
        source: NoticeSource::Status {
            event_id: format!("instance-event-{id}"),
        },
        not_before_ms: Some(START),
        not_after_ms: Some(START),
        deadline_ms: None,
        state: NoticeState::from_description(description),
        description: description.into(),
    }
}

fn about<'a>(outcomes: &'a [Outcome], id: &str) -> Vec<&'a Outcome> {
    outcomes
        .iter()
        .filter(|o| o.instance_id.as_deref() == Some(id))
        .collect()
}

#[tokio::test]
async fn a_health_notice_is_recorded_then_told_once_and_a_repeat_is_a_duplicate() {
    let b = Bench::new(&[], vec![Machine::running(ID, Checks::default())], NOW);
    let first = b.invoke(&retirement()).await.unwrap().outcomes;
    let [o] = &first[..] else { panic!("{first:?}") };
    assert_eq!(o.result, Verdict::InProgress, "{o:?}");
    assert!(
        o.reason.starts_with("scheduled notice recorded: EC2 will retire i-0123456789abcdef0 in us-east-1 from 2026-12-07 03:00 UTC; planned (tell people: "),
        "{}",
        o.reason
    );
    assert!(
        o.reason
            .contains("stop and start it at 2026-12-07 02:00 UTC, imaged without reboot first"),
        "{}",
        o.reason
    );
    let j = &b.journal;
    let recorded = j
        .position(|s| {
            matches!(
                s,
                Seen::Wrote {
                    op: "record_notice",
                    stuck: true,
                    ..
                }
            )
        })
        .expect("recorded");
    let said = j.position(|s| matches!(s, Seen::Told(_))).expect("told");
    assert!(recorded < said, "{:#?}", j.all());
    assert!(j.mutating_calls().is_empty(), "{:#?}", j.all());
    let texts = b.journal.told();
    assert_eq!(texts.len(), 1);
    assert!(
        texts[0].contains("*Scheduled notice*: EC2 will retire i-0123456789abcdef0"),
        "{}",
        texts[0]
    );
    assert!(
        texts[0].contains("Runbook: `docs/RUNBOOK.md#scheduled-notice`"),
        "{}",
        texts[0]
    );
    // The audit trail has it.
    assert!(b.store.with(|t| t
        .records
        .iter()
        .any(|r| r.instance_id == ID && r.result == "in_progress")));

    // Delivered again: one batched read, no observe, no message.
    let observed = b.journal.all().len();
    let again = b.invoke(&retirement()).await.unwrap().outcomes;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].result, Verdict::Duplicate, "{again:?}");
    assert_eq!(b.journal.told().len(), 1);
    let after: Vec<Seen> = b.journal.all()[observed..].to_vec();
    assert!(
        !after.iter().any(|s| matches!(s, Seen::Called { .. })),
        "{after:#?}"
    );
    assert_eq!(b.store.with(|t| t.notices.len()), 1);
}

#[tokio::test]
async fn the_tick_records_once_health_then_is_a_duplicate_and_a_completed_event_closes_quietly() {
    let b = Bench::new(&[], vec![Machine::running(ID, Checks::default())], NOW);
    *b.fleet.events.lock().unwrap() = vec![listed(
        ID,
        NoticeKind::InstanceRetirement,
        "The instance is running on degraded hardware",
    )];
    let first = b.invoke(&tick()).await.unwrap().outcomes;
    let mine = about(&first, ID);
    assert_eq!(mine.len(), 1, "{first:#?}");
    assert_eq!(mine[0].result, Verdict::InProgress);
    assert_eq!(b.journal.told().len(), 1);
    let r = b.notice();
    assert_eq!(
        r.event_id.as_deref(),
        Some("instance-event-i-0123456789abcdef0")
    );

    let second = b.invoke(&tick()).await.unwrap().outcomes;
    assert!(about(&second, ID).is_empty(), "{second:#?}");
    assert!(
        second.iter().any(|o| o.result == Verdict::Duplicate
            && o.reason == "scheduled notices: 1 recorded already, nothing new"),
        "{second:#?}"
    );
    // AWS Health tells of the same event (same start): the same notice.
    let health = b.invoke(&retirement()).await.unwrap().outcomes;
    assert_eq!(health[0].result, Verdict::Duplicate, "{health:?}");
    assert_eq!(b.journal.told().len(), 1);

    // EC2 completes it: the record closes, nobody is told; a week of listings costs nothing.
    *b.fleet.events.lock().unwrap() = vec![listed(
        ID,
        NoticeKind::InstanceRetirement,
        "[Completed] The instance is running on degraded hardware",
    )];
    let done = b.invoke(&tick()).await.unwrap().outcomes;
    let closed = about(&done, ID);
    assert_eq!(closed.len(), 1, "{done:#?}");
    assert_eq!(closed[0].result, Verdict::Ignored);
    assert!(
        closed[0].reason.contains("its record is closed"),
        "{}",
        closed[0].reason
    );
    assert_eq!(b.notice().state, "closed");
    let later = b.invoke(&tick()).await.unwrap().outcomes;
    assert!(about(&later, ID).is_empty(), "{later:#?}");
    assert_eq!(b.store.calls("close_notice"), 1);
    assert_eq!(b.journal.told().len(), 1);
    assert!(b.journal.mutating_calls().is_empty());
}

#[tokio::test]
async fn many_notices_at_once_are_one_summary_each_recorded() {
    let ids: Vec<String> = (0..7).map(|i| format!("i-0000000000000000{i}")).collect();
    let machines = ids
        .iter()
        .map(|id| Machine::running(id, Checks::default()))
        .collect();
    let b = Bench::new(&[], machines, NOW);
    *b.fleet.events.lock().unwrap() = ids
        .iter()
        .map(|id| listed(id, NoticeKind::SystemReboot, "Scheduled reboot of the host"))
        .collect();
    let outcomes = b.invoke(&tick()).await.unwrap().outcomes;
    let texts = b.journal.told();
    assert_eq!(texts.len(), 1, "{texts:#?}");
    assert!(
        texts[0].contains("EC2 announced 7 scheduled events at once"),
        "{}",
        texts[0]
    );
    assert!(
        texts[0].contains("• 7 system-reboot from 2026-12-07"),
        "{}",
        texts[0]
    );
    assert_eq!(b.store.with(|t| t.notices.len()), 7);
    for id in &ids {
        let o = about(&outcomes, id);
        assert_eq!(o.len(), 1, "{outcomes:#?}");
        assert!(o[0]
            .notification
            .as_deref()
            .unwrap()
            .contains("one summary of 7"));
    }
}

#[tokio::test]
async fn the_tag_and_dry_run_are_said_and_off_records_nothing() {
    let mut off = Machine::running(ID, Checks::default());
    off.tags.insert("autoheal".into(), "off".into());
    let b = Bench::new(&[("AUTOHEAL_DRY_RUN", "true")], vec![off], NOW);
    let o = &b.invoke(&retirement()).await.unwrap().outcomes[0];
    assert_eq!(o.result, Verdict::Ignored, "{o:?}");
    assert!(
        o.reason
            .contains("autoheal will do nothing (nothing: tag autoheal=off"),
        "{}",
        o.reason
    );
    assert_eq!(b.journal.told().len(), 1, "still told once");

    let dry = Bench::new(
        &[("AUTOHEAL_DRY_RUN", "true")],
        vec![Machine::running(ID, Checks::default())],
        NOW,
    );
    let o = &dry.invoke(&retirement()).await.unwrap().outcomes[0];
    assert_eq!(o.result, Verdict::InProgress, "{o:?}");
    assert!(
        o.reason.contains("(dry run: said, not taken)"),
        "{}",
        o.reason
    );
    assert!(dry.journal.mutating_calls().is_empty());

    let quiet = Bench::new(
        &[("AUTOHEAL_NOTICES", "off")],
        vec![Machine::running(ID, Checks::default())],
        NOW,
    );
    let o = &quiet.invoke(&retirement()).await.unwrap().outcomes[0];
    assert_eq!(o.result, Verdict::Ignored);
    assert!(
        o.reason.ends_with("AUTOHEAL_NOTICES=off: not recorded"),
        "{}",
        o.reason
    );
    quiet.invoke(&tick()).await.unwrap();
    assert!(!quiet.journal.all().iter().any(|s| matches!(
        s,
        Seen::Called {
            call: "scheduled_events" | "observe",
            ..
        }
    )));
    assert!(quiet.journal.told().is_empty());
}
