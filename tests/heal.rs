//! The whole path against real parts: moto (through a recording fault proxy), the ledger
//! table, KMS, and a local Slack receiver. Run with `make test`.

mod common;

use autoheal::model::outcome::{Action, Verdict};
use common::*;
use std::time::Instant;

const LATER: &str = "2026-11-23T03:40:00.000+0000";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_fixture_gets_its_outcome_and_the_world_shows_it() {
    let (w, proxy, slack) = setup(WorldSpec {
        group_size: 6,
        standalone: 1,
        ..Default::default()
    })
    .await;
    // Auto Scaling replaces the members marked Unhealthy; the tick verifies it.
    w.replace_unhealthy(Some(0.0)).await;
    // Six repairs at once: more than the account budget, the in-flight budget and the
    // breaker allow (4 of 6 members at once trips it), which are not this test's subject.
    let deps = w
        .deps(
            &proxy,
            &[
                ("AUTOHEAL_ACCOUNT_MAX_REPAIRS", "off"),
                ("AUTOHEAL_BREAKER_WINDOW_SECONDS", "off"),
                ("AUTOHEAL_MAX_INFLIGHT_PERCENT", "off"),
            ],
        )
        .await;
    let m = &w.members;
    let lone = &w.standalone[0];

    // (fixture, instance ids, expected outcomes)
    let cases: Vec<(&str, Vec<&str>, Vec<&str>)> = vec![
        ("sns-alarm.json", vec![&m[0]], vec!["mark_unhealthy done: marked Unhealthy in group"]),
        ("sns-two-records.json", vec![&m[1], lone], vec!["mark_unhealthy done", "verify done: recovered: copy i-"]),
        ("sns-metric-math.json", vec![&m[2]], vec!["mark_unhealthy done"]),
        ("eventbridge-alarm.json", vec![&m[3]], vec!["mark_unhealthy done"]),
        ("alarm-action.json", vec![&m[4]], vec!["mark_unhealthy done"]),
        ("sns-attached-ebs.json", vec![&m[5]], vec!["none held: attached EBS volume check failed"]),
        ("sns-ok.json", vec![&m[0]], vec!["verify done: status check alarm returned to OK; incident closed after mark_unhealthy done (its replacement no longer followed)"]),
        ("eventbridge-ami-state.json", vec![], vec!["none ignored: EC2 AMI State Change: no repair waiting"]),
        ("eventbridge-instance-state.json", vec![], vec!["none ignored: EC2 Instance State-change Notification: no repair waiting"]),
        ("scheduled-tick.json", vec![], vec!["verify done: replaced by Auto Scaling in group", "verify done: replaced by Auto Scaling in group", "verify done: replaced by Auto Scaling in group", "verify done: replaced by Auto Scaling in group", "create_image done: backups: "]),
    ];
    for (name, ids, expected) in &cases {
        let r = invoke(&deps, &event(name, ids)).await.unwrap();
        let got = summary(&r);
        assert_eq!(got.len(), expected.len(), "{name}: {got:?}");
        for (g, e) in got.iter().zip(expected) {
            assert!(g.starts_with(e), "{name}: {g:?} should start with {e:?}");
        }
        for o in r
            .outcomes
            .iter()
            .filter(|o| o.instance_id.is_some() && o.result != Verdict::Ignored)
        {
            assert_eq!(o.notification.as_deref(), Some("slack"), "{name}: {o:?}");
            assert!(o
                .incident
                .as_deref()
                .unwrap()
                .starts_with(o.instance_id.as_deref().unwrap()));
        }
    }

    // The world afterwards: exactly the acted-on members were replaced (gone from the
    // group), the others are still there and Healthy.
    for (i, id) in m.iter().enumerate() {
        let expected = if i < 5 { "NONE" } else { "HEALTHY" };
        assert_eq!(w.health(id).await, expected, "member {i}");
    }
    assert_eq!(w.replacements().await.len(), 5);
    assert_eq!(proxy.calls("SetInstanceHealth"), 5);
    // The ledger: closed for the instance that went back to OK, settled for the others.
    let head = w.head(&m[0]).await.unwrap();
    assert_eq!(
        (
            head["status"].as_str(),
            head["action"].as_str(),
            head["result"].as_str()
        ),
        ("closed", "mark_unhealthy", "done")
    );
    assert!(
        head["expires_at"].parse::<i64>().unwrap() > chrono::Utc::now().timestamp() + 29 * 86_400
    );
    let lone_head = w.head(lone).await.unwrap();
    assert_eq!(
        (lone_head["status"].as_str(), lone_head["step"].as_str()),
        ("settled", "recovered")
    );
    // Slack: one message per outcome (the relaunch also one per step), Block Kit + fallback.
    let texts = slack.texts();
    assert_eq!(texts.len(), 15, "{texts:#?}");
    assert!(
        texts[0].contains(&m[0]) && texts[0].contains("marked Unhealthy"),
        "{}",
        texts[0]
    );
    assert!(texts
        .iter()
        .any(|t| t.contains(lone.as_str()) && t.contains("recovered: copy")));
    assert_eq!(
        texts
            .iter()
            .filter(|t| t.contains("replaced by Auto Scaling"))
            .count(),
        4,
        "{texts:#?}"
    );
    assert!(
        slack.received.lock().unwrap()[0]["blocks"]
            .as_array()
            .unwrap()
            .len()
            >= 4
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_input_is_ignored_without_any_aws_call() {
    let (w, proxy, slack) = setup(WorldSpec::default()).await;
    let deps = w.deps(&proxy, &[]).await;
    let id = &w.members[0];
    let big = vec![b'{'; 1024 * 1024];
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            event("sns-other-metric.json", &[id]),
            "not an EC2 status check",
        ),
        (
            event("sns-no-instance-dimension.json", &[id]),
            "no InstanceId dimension",
        ),
        (
            event("sns-message-not-json.json", &[id]),
            "SNS Message is not JSON",
        ),
        (event("not-an-alarm.json", &[id]), "not an SNS notification"),
        (
            event("sns-insufficient-data.json", &[id]),
            "INSUFFICIENT_DATA",
        ),
        (
            event("sns-composite-alarm.json", &[id]),
            "composite alarm \"autoheal-web-tier\"",
        ),
        (
            event("eventbridge-composite-alarm.json", &[id]),
            "composite alarm \"autoheal-web-tier\"",
        ),
        // EC2's scheduled notices are read and recorded: tests/notices.rs.
        (b"not json at all".to_vec(), "payload is not JSON"),
        (vec![0xc3, 0x28, 0xa0, 0xa1], "not UTF-8"),
        (big, "exceeds"),
    ];
    for (bytes, reason) in cases {
        let r = invoke(&deps, &bytes)
            .await
            .expect("bad input is never an Err");
        assert_eq!(r.outcomes.len(), 1);
        let o = &r.outcomes[0];
        assert_eq!((o.action, o.result), (Action::None, Verdict::Ignored));
        assert!(
            o.reason.contains(reason),
            "{} should contain {reason}",
            o.reason
        );
    }
    assert_eq!(
        proxy.all_calls(),
        Vec::<String>::new(),
        "bad input must not reach AWS"
    );
    assert!(slack.texts().is_empty());
    assert_eq!(w.health(id).await, "HEALTHY");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn duplicates_sequential_and_concurrent_repair_exactly_once() {
    let (w, proxy, slack) = setup(WorldSpec::default()).await;
    let id = w.members[0].clone();
    let alarm = event("sns-alarm.json", &[&id]);
    // Eight containers (own clients each) receive the same transition at once.
    let mut containers = vec![];
    for _ in 0..8 {
        containers.push(w.deps(&proxy, &[]).await);
    }
    let results = futures::future::join_all(containers.iter().map(|d| invoke(d, &alarm))).await;
    let verdicts: Vec<Verdict> = results
        .iter()
        .map(|r| r.as_ref().unwrap().outcomes[0].result)
        .collect();
    assert_eq!(
        verdicts.iter().filter(|v| **v == Verdict::Done).count(),
        1,
        "{verdicts:?}"
    );
    assert_eq!(
        verdicts
            .iter()
            .filter(|v| **v == Verdict::Duplicate)
            .count(),
        7,
        "{verdicts:?}"
    );
    // And once more, later, in sequence.
    let again = invoke(&containers[0], &alarm).await.unwrap();
    assert_eq!(again.outcomes[0].result, Verdict::Duplicate);
    assert!(
        again.outcomes[0].reason.contains("already handled"),
        "{:?}",
        again.outcomes[0]
    );
    // A second alarm on the same instance (another metric, later): the incident already
    // marked it and follows its replacement; nothing is called, nobody is told.
    let system = at_time(
        event("sns-metric-math.json", &[&id]),
        "2026-11-23T03:13:30.000+0000",
    );
    let r = invoke(&containers[1], &system).await.unwrap();
    assert_eq!(
        summary(&r),
        vec![format!(
            "mark_unhealthy duplicate: already handled: marked Unhealthy in group {}; incident {} follows its replacement",
            w.group,
            r.outcomes[0].incident.as_deref().unwrap_or("?")
        )]
    );

    assert_eq!(proxy.calls("SetInstanceHealth"), 1);
    assert_eq!(w.health(&id).await, "UNHEALTHY");
    assert_eq!(
        slack.texts().len(),
        1,
        "one report, for the repair: the second alarm finding it already Unhealthy is not news: {:#?}",
        slack.texts()
    );
    assert_eq!(w.head(&id).await.unwrap()["attempts"], "1");
}

#[tokio::test]
async fn one_message_twice_in_one_batch_repairs_once() {
    let (w, proxy, slack) = setup(WorldSpec::default()).await;
    let deps = w.deps(&proxy, &[]).await;
    let id = &w.members[0];
    let r = invoke(&deps, &event("sns-duplicate-records.json", &[id]))
        .await
        .unwrap();
    let got = summary(&r);
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(got[0].starts_with("mark_unhealthy done"), "{got:?}");
    assert!(
        got[1] == "none duplicate: the same alarm transition as an earlier record of this event",
        "{got:?}"
    );
    assert_eq!(proxy.calls("SetInstanceHealth"), 1);
    assert_eq!(w.health(id).await, "UNHEALTHY");
    assert_eq!(slack.texts().len(), 1, "{:#?}", slack.texts());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slack_failing_never_fails_the_repair() {
    let (w, proxy, slack) = setup(WorldSpec::default()).await;
    let deps = w.deps(&proxy, &[]).await;
    slack.always(500);
    let r = invoke(&deps, &event("sns-alarm.json", &[&w.members[0]]))
        .await
        .unwrap();
    let o = &r.outcomes[0];
    assert_eq!((o.action, o.result), (Action::MarkUnhealthy, Verdict::Done));
    assert_eq!(
        o.notification.as_deref(),
        Some("failed: Slack answered HTTP 500 after 3 tries; kept, re-sent by the tick")
    );
    assert_eq!(slack.texts().len(), 3, "three tries");
    assert_eq!(w.health(&w.members[0]).await, "UNHEALTHY");
    // Slack is back: the tick delivers the kept report, once.
    slack.fine();
    deps.clock.advance(60_000);
    let tick = invoke(&deps, &event("scheduled-tick.json", &[]))
        .await
        .unwrap();
    assert!(
        summary(&tick).contains(
            &"none done: reports kept for re-sending: 1 delivered, 0 still not, 0 dropped (over an hour old)"
                .to_string()
        ),
        "{:?}",
        summary(&tick)
    );
    let texts = slack.texts();
    assert_eq!(texts.len(), 4);
    assert_eq!(texts[3], texts[0], "the same report");
    invoke(&deps, &event("scheduled-tick.json", &[]))
        .await
        .unwrap();
    assert_eq!(slack.texts().len(), 4, "delivered once");
    // A report Slack keeps refusing for over an hour is dropped (the audit trail has it).
    slack.always(500);
    invoke(&deps, &event("sns-alarm.json", &[&w.members[1]]))
        .await
        .unwrap();
    deps.clock.advance(3_601_000);
    let tick = invoke(&deps, &event("scheduled-tick.json", &[]))
        .await
        .unwrap();
    assert!(
        summary(&tick).iter().any(|l| l
            .starts_with("none failed: reports kept for re-sending: 0 delivered, ")
            && l.ends_with(", 1 dropped (over an hour old)")),
        "{:?}",
        summary(&tick)
    );
    // The first member's replacement, never made in this world, ended at its verify
    // timeout: the held member goes (this tick, or the next when it was looked at first).
    // Its report is kept anew. (Whether a tick's re-send already saw it depends on how its
    // concurrent parts interleave.)
    let mut outcomes = tick.outcomes.clone();
    if !outcomes.iter().any(|o| o.action == Action::MarkUnhealthy) {
        deps.clock.advance(60_000);
        let next = invoke(&deps, &event("scheduled-tick.json", &[]))
            .await
            .unwrap();
        outcomes = next.outcomes;
    }
    let repaired = outcomes
        .iter()
        .find(|o| o.action == Action::MarkUnhealthy)
        .unwrap_or_else(|| panic!("{outcomes:?}"));
    assert!(
        repaired
            .notification
            .as_deref()
            .is_some_and(|n| n.ends_with("; kept, re-sent by the tick")),
        "{repaired:?}"
    );

    // 429 with Retry-After is honoured, then delivered.
    let slack2 = Slack::start().await;
    let w2 = World::build(WorldSpec::default(), &slack2.url).await;
    let deps2 = w2.deps(&proxy, &[]).await;
    slack2.then(429, Some("1"));
    let started = Instant::now();
    let r = invoke(&deps2, &event("sns-alarm.json", &[&w2.members[0]]))
        .await
        .unwrap();
    assert_eq!(r.outcomes[0].notification.as_deref(), Some("slack"));
    assert_eq!(slack2.texts().len(), 2);
    assert!(
        started.elapsed().as_millis() >= 1000,
        "waited for Retry-After"
    );
}

/// Two containers (each its own clients and ledger) keep a report in the same millisecond:
/// both are kept. A key already taken is never written over; the next try's key is used.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reports_kept_in_one_millisecond_by_two_containers_are_both_kept() {
    let (w, proxy, _slack) = setup(WorldSpec::empty()).await;
    proxy.bind(&w.account);
    let sdk = sdk_config(&proxy.endpoint).await;
    let ledger = || {
        let client = aws_sdk_dynamodb::Client::new(&sdk);
        autoheal::ledger::Ledger::new(client, w.table.clone())
    };
    let (a, b) = (ledger(), ledger());
    let report = |n: u32| serde_json::json!({ "text": format!("report {n}") });
    let ms = 1_795_403_565_123;
    a.keep_report(&report(1), ms).await.unwrap();
    b.keep_report(&report(2), ms).await.unwrap();
    a.keep_report_with(&report(3), ms, || 7).await.unwrap();
    let mut suffixes = [7, 8].into_iter();
    b.keep_report_with(&report(4), ms, || suffixes.next().unwrap())
        .await
        .unwrap();
    let mut kept: Vec<String> = a
        .kept_reports()
        .await
        .unwrap()
        .into_iter()
        .map(|k| {
            assert_eq!(k.created_ms, ms);
            k.payload["text"].as_str().unwrap().to_string()
        })
        .collect();
    kept.sort();
    assert_eq!(kept, ["report 1", "report 2", "report 3", "report 4"]);
}

/// The tick re-sends kept reports while its invocation has time: none is started that could
/// run into the stop margin before the deadline, and those not started stay kept for the
/// next tick.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_ticks_resend_stops_at_the_deadline_and_keeps_the_rest() {
    let (w, proxy, slack) = setup(WorldSpec::empty()).await;
    let deps = w.deps(&proxy, &[]).await;
    for n in 0..5 {
        let report = serde_json::json!({ "text": format!("kept {n}") });
        deps.ledger
            .keep_report(&report, deps.now_ms())
            .await
            .unwrap();
    }
    // Each post takes 10 s of the function's clock: the tick's 30 s have room for three.
    slack.takes(&deps.clock, 10_000);
    let tick = invoke(&deps, &event("scheduled-tick.json", &[]))
        .await
        .unwrap();
    let resent = "reports kept for re-sending: 3 delivered, 0 still not, 0 dropped (over an hour old), 2 left for the next tick (this one's time ran out)";
    assert!(
        summary(&tick).contains(&format!("none in_progress: {resent}")),
        "{:?}",
        summary(&tick)
    );
    assert_eq!(slack.texts().len(), 3);
    assert_eq!(deps.ledger.kept_reports().await.unwrap().len(), 2);
    // The next tick sends the rest; every report went out once.
    let tick = invoke(&deps, &event("scheduled-tick.json", &[]))
        .await
        .unwrap();
    assert!(
        summary(&tick).contains(
            &"none done: reports kept for re-sending: 2 delivered, 0 still not, 0 dropped (over an hour old)"
                .to_string()
        ),
        "{:?}",
        summary(&tick)
    );
    let mut texts = slack.texts();
    texts.sort();
    assert_eq!(texts, ["kept 0", "kept 1", "kept 2", "kept 3", "kept 4"]);
    assert!(deps.ledger.kept_reports().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kms_failing_never_fails_the_repair() {
    // The webhook was encrypted for another function: KMS refuses the encryption context.
    let (w, proxy, slack) = setup(WorldSpec {
        encrypt_for: "some-other-function",
        ..Default::default()
    })
    .await;
    let deps = w.deps(&proxy, &[]).await;
    let r = invoke(&deps, &event("sns-alarm.json", &[&w.members[0]]))
        .await
        .unwrap();
    let o = &r.outcomes[0];
    assert_eq!((o.action, o.result), (Action::MarkUnhealthy, Verdict::Done));
    assert!(
        o.notification
            .as_deref()
            .unwrap()
            .starts_with("failed: kms:Decrypt failed"),
        "{o:?}"
    );
    assert!(slack.texts().is_empty());
    assert_eq!(w.health(&w.members[0]).await, "UNHEALTHY");

    // KMS itself down (5xx on every try): the same, and the next report tries KMS again.
    let (w, proxy, slack) = setup(WorldSpec::default()).await;
    let deps = w.deps(&proxy, &[]).await;
    proxy.fail("Decrypt", usize::MAX, Fault::ServerError);
    let r = invoke(&deps, &event("sns-alarm.json", &[&w.members[0]]))
        .await
        .unwrap();
    assert_eq!(r.outcomes[0].result, Verdict::Done);
    assert!(r.outcomes[0]
        .notification
        .as_deref()
        .unwrap()
        .starts_with("failed: Retryable: kms:Decrypt"));
    proxy.heal_all();
    let r = invoke(&deps, &event("sns-alarm.json", &[&w.members[1]]))
        .await
        .unwrap();
    assert_eq!(r.outcomes[0].notification.as_deref(), Some("slack"));
    assert_eq!(slack.texts().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn throttling_is_retried_by_the_sdk() {
    let (w, proxy, _slack) = setup(WorldSpec::default()).await;
    let deps = w.deps(&proxy, &[]).await;
    proxy.fail("SetInstanceHealth", 2, Fault::Throttle);
    let r = invoke(&deps, &event("sns-alarm.json", &[&w.members[0]]))
        .await
        .unwrap();
    assert_eq!(r.outcomes[0].result, Verdict::Done);
    assert_eq!(proxy.calls("SetInstanceHealth"), 3);
    assert_eq!(w.health(&w.members[0]).await, "UNHEALTHY");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn persistent_5xx_is_an_err_and_the_retry_completes() {
    let (w, proxy, slack) = setup(WorldSpec::default()).await;
    let deps = w.deps(&proxy, &[]).await;
    let id = &w.members[0];
    let alarm = event("sns-alarm.json", &[id]);
    proxy.fail("SetInstanceHealth", usize::MAX, Fault::ServerError);
    let err = invoke(&deps, &alarm).await.unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert!(
        err.to_string()
            .starts_with("Retryable: autoscaling:SetInstanceHealth"),
        "{err}"
    );
    assert_eq!(w.health(id).await, "HEALTHY");
    // The claim is kept but its lease given back, so the retry need not wait.
    let head = w.head(id).await.unwrap();
    assert_eq!(
        (head["status"].as_str(), head["lease_until_ms"].as_str()),
        ("repairing", "0")
    );
    assert!(
        slack.texts().is_empty(),
        "nothing to report yet: Lambda retries"
    );

    proxy.heal_all();
    let r = invoke(&deps, &alarm).await.unwrap();
    assert_eq!(
        summary(&r)[0].split(':').next(),
        Some("mark_unhealthy done")
    );
    assert_eq!(w.health(id).await, "UNHEALTHY");
    // Marked; its replacement is followed by the tick.
    let head = w.head(id).await.unwrap();
    assert_eq!(
        (
            head["status"].as_str(),
            head["result"].as_str(),
            head["attempts"].as_str()
        ),
        ("repairing", "in_progress", "2")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_repair_whose_invocation_died_is_resumed_after_its_lease() {
    let (w, proxy, _slack) = setup(WorldSpec::default()).await;
    let deps = w.deps(&proxy, &[]).await;
    let id = &w.members[0];
    let alarm = event("sns-alarm.json", &[id]);
    // An invocation claimed the incident and died before acting (no release): the ledger
    // holds its claim with a lease that ends 1.5 s from now.
    let autoheal::intake::Intake::Signal(signal) = autoheal::intake::parse(&alarm).remove(0) else {
        panic!("the fixture is an alarm")
    };
    let now = deps.now_ms();
    let autoheal::rules::incident::Move::Take(claim) =
        autoheal::rules::incident::claim_alarm(None, &signal, now, now + 1_500)
    else {
        panic!("nothing to skip in an empty ledger")
    };
    let ledger = autoheal::ledger::Ledger::new(w.ddb.clone(), w.table.clone());
    assert!(ledger.write(&claim, now / 1000).await.unwrap());

    // While the lease holds, another delivery leaves it alone.
    let r = invoke(&deps, &alarm).await.unwrap();
    assert_eq!(r.outcomes[0].result, Verdict::Duplicate);
    assert!(r.outcomes[0]
        .reason
        .contains("being repaired by another invocation"));
    assert_eq!(w.health(id).await, "HEALTHY");

    // After it, the next delivery (Lambda's retry of the dead invocation) resumes the repair.
    deps.clock.advance(1_600);
    let r = invoke(&deps, &alarm).await.unwrap();
    assert_eq!(r.outcomes[0].result, Verdict::Done, "{r:?}");
    assert_eq!(
        r.outcomes[0].incident.as_deref(),
        Some(claim.incident_id.as_str())
    );
    assert_eq!(w.health(id).await, "UNHEALTHY");
    assert_eq!(w.head(id).await.unwrap()["attempts"], "2");
    assert_eq!(proxy.calls("SetInstanceHealth"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ledger_unavailable_is_an_err_and_nothing_is_done() {
    let (w, proxy, slack) = setup(WorldSpec::default()).await;
    let deps = w.deps(&proxy, &[]).await;
    // DynamoDB down: every ledger call answers 5xx.
    proxy.fail("GetItem", usize::MAX, Fault::ServerError);
    proxy.fail("PutItem", usize::MAX, Fault::ServerError);
    let err = invoke(&deps, &event("sns-alarm.json", &[&w.members[0]]))
        .await
        .unwrap_err();
    assert!(
        err.is_transient() && err.to_string().contains("dynamodb:PutItem"),
        "{err}"
    );
    assert_eq!(proxy.calls("SetInstanceHealth"), 0);
    assert_eq!(w.health(&w.members[0]).await, "HEALTHY");
    assert!(slack.texts().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dry_run_and_the_autoheal_tag_hold_back_the_repair() {
    // AUTOHEAL_DRY_RUN=true: decide and report, no mutating call.
    let (w, proxy, slack) = setup(WorldSpec {
        group_size: 3,
        ..Default::default()
    })
    .await;
    let dry = w.deps(&proxy, &[("AUTOHEAL_DRY_RUN", "true")]).await;
    let r = invoke(&dry, &event("sns-alarm.json", &[&w.members[0]]))
        .await
        .unwrap();
    assert_eq!(summary(&r), vec![format!("mark_unhealthy dry_run: dry run (AUTOHEAL_DRY_RUN=true): would mark Unhealthy in group {}; EC2 reports both status checks impaired", w.group)]);

    // Tags on the instance: off = never act (still report), notify = report only, dry-run.
    let deps = w.deps(&proxy, &[]).await;
    w.tag_instance(&w.members[1], "autoheal", "off").await;
    w.tag_instance(&w.members[2], "autoheal", "notify").await;
    let r = invoke(
        &deps,
        &event("sns-two-records.json", &[&w.members[1], &w.members[2]]),
    )
    .await
    .unwrap();
    let got = summary(&r);
    assert!(
        got[0].starts_with("none ignored: opted out (tag autoheal=off on the instance)"),
        "{got:?}"
    );
    assert!(
        got[1].starts_with("none held: report only (tag autoheal=notify on the instance)"),
        "{got:?}"
    );

    for id in &w.members {
        assert_eq!(w.health(id).await, "HEALTHY");
    }
    assert_eq!(proxy.calls("SetInstanceHealth"), 0);
    assert_eq!(slack.texts().len(), 3, "every decision is reported");

    // A group tag applies to every member.
    let (w, proxy, _slack) = setup(WorldSpec {
        group_tags: vec![("autoheal", "dry-run")],
        ..Default::default()
    })
    .await;
    let deps = w.deps(&proxy, &[]).await;
    let r = invoke(&deps, &event("sns-alarm.json", &[&w.members[0]]))
        .await
        .unwrap();
    assert_eq!(r.outcomes[0].result, Verdict::DryRun);
    assert_eq!(proxy.calls("SetInstanceHealth"), 0);

    // A group's `off` is not lifted by a member's `on`: the stricter tag wins, as the
    // role's Deny does (no AccessDenied, no failed repair).
    let (w, proxy, _slack) = setup(WorldSpec {
        group_tags: vec![("autoheal", "off")],
        ..Default::default()
    })
    .await;
    w.tag_instance(&w.members[0], "autoheal", "on").await;
    let deps = w.deps(&proxy, &[]).await;
    let r = invoke(&deps, &event("sns-alarm.json", &[&w.members[0]]))
        .await
        .unwrap();
    assert!(
        summary(&r)[0]
            .starts_with("none ignored: opted out (tag autoheal=off on the Auto Scaling group)"),
        "{:?}",
        summary(&r)
    );
    assert_eq!(proxy.calls("SetInstanceHealth"), 0);
    assert_eq!(w.health(&w.members[0]).await, "HEALTHY");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unknown_terminated_and_foreign_region_instances_are_ignored() {
    let (w, proxy, _slack) = setup(WorldSpec::default()).await;
    let deps = w.deps(&proxy, &[]).await;
    let lone = &w.standalone[0];
    w.ec2
        .terminate_instances()
        .instance_ids(lone)
        .send()
        .await
        .unwrap();
    let r = invoke(
        &deps,
        &event("sns-two-records.json", &["i-0aaaaaaaaaaaaaaaa", lone]),
    )
    .await
    .unwrap();
    let got = summary(&r);
    assert_eq!(
        got[0],
        "none ignored: instance not found in this account and region"
    );
    assert_eq!(got[1], "none ignored: instance is terminated");

    let foreign = String::from_utf8(event("sns-alarm.json", &[&w.members[0]]))
        .unwrap()
        .replace("cloudwatch:us-east-1", "cloudwatch:eu-west-1");
    proxy.forget();
    let r = invoke(&deps, foreign.as_bytes()).await.unwrap();
    assert_eq!(
        summary(&r),
        vec!["none ignored: alarm is in eu-west-1; this function serves us-east-1 (AUTOHEAL_REGIONS)"]
    );
    assert!(proxy.all_calls().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_ok_that_arrives_first_does_not_close_a_later_incident() {
    let (w, proxy, _slack) = setup(WorldSpec::default()).await;
    let deps = w.deps(&proxy, &[]).await;
    let id = &w.members[0];
    // OK with no incident: ignored.
    let r = invoke(&deps, &event("sns-ok.json", &[id])).await.unwrap();
    assert_eq!(r.outcomes[0].result, Verdict::Ignored);
    // ALARM at 03:40, then a stale OK from 03:25 (delivered late): the incident stays open.
    let alarm = at_time(event("sns-alarm.json", &[id]), LATER);
    assert_eq!(
        invoke(&deps, &alarm).await.unwrap().outcomes[0].result,
        Verdict::Done
    );
    let r = invoke(&deps, &event("sns-ok.json", &[id])).await.unwrap();
    assert!(
        r.outcomes[0].reason.starts_with("stale OK"),
        "{:?}",
        r.outcomes[0]
    );
    assert_eq!(w.head(id).await.unwrap()["status"], "repairing");
}
