//! The correlated-failure breaker against moto, in a test binary of its own: its
//! 200-instance burst loads the emulator, and other tests' timing should not depend on it.

mod common;

use common::*;
use futures::StreamExt;

/// These tests are about the breakers of groups and clusters, whose instances share one
/// zone here: the zone's and the account's breakers are off (`tests/storm.rs` has them on).
const NO_ZONE: [(&str, &str); 3] = [
    ("AUTOHEAL_ZONE_BREAKER_COUNT", "off"),
    ("AUTOHEAL_ZONE_BREAKER_PERCENT", "off"),
    ("AUTOHEAL_ACCOUNT_BREAKER_COUNT", "off"),
];

/// The same, and no account budget.
const NO_BUDGET: [(&str, &str); 4] = [
    ("AUTOHEAL_ACCOUNT_MAX_REPAIRS", "off"),
    NO_ZONE[0],
    NO_ZONE[1],
    NO_ZONE[2],
];

#[tokio::test]
async fn a_correlated_failure_trips_the_breaker_once_and_repairs_resume_after_the_cool_down() {
    let (world, proxy, slack) = setup(WorldSpec::sized(200, 0)).await;
    // Window 10 s of alarm time, cool-down 60 s; other knobs at their defaults
    // (in-flight 10% = 20, account 5 per 10 minutes, 3 / 20% breaker threshold).
    let env = [
        ("AUTOHEAL_BREAKER_WINDOW_SECONDS", "10"),
        ("AUTOHEAL_BREAKER_COOLDOWN_SECONDS", "60"),
        NO_ZONE[0],
        NO_ZONE[1],
        NO_ZONE[2],
    ];
    let clock = autoheal::app::clock::Clock::manual(chrono::Utc::now().timestamp_millis());
    let deps = world.deps_on(&proxy, &env, &clock).await;
    // 200 members alarm within 5 s (stamped 5 s ago to now, 25 ms apart), delivered 20 at a
    // time: twice the template's default reserved concurrency, the most Lambda would run at
    // once. How they interleave is up to the machine: only invariants are asserted.
    let started = std::time::Instant::now();
    let alarms: Vec<Vec<u8>> = world
        .members
        .iter()
        .enumerate()
        .map(|(i, id)| alarm_at(&deps, "sns-alarm.json", id, 5_000 - i as i64 * 25))
        .collect();
    let results: Vec<_> = futures::stream::iter(alarms.iter().map(|a| invoke(&deps, a)))
        .buffer_unordered(20)
        .collect()
        .await;
    let mut lines = vec![];
    for r in results {
        lines.extend(summary(&r.unwrap()));
    }
    let marked = proxy.calls("SetInstanceHealth");
    assert!(
        marked <= 5,
        "at most the account budget of repairs started: {marked}"
    );
    let breaker_held = lines
        .iter()
        .filter(|l| l.starts_with("none held: breaker open"))
        .count();
    let mut kinds: std::collections::BTreeMap<String, usize> = Default::default();
    for l in &lines {
        *kinds
            .entry(l.split(':').take(2).collect::<Vec<_>>().join(":"))
            .or_default() += 1;
    }
    assert!(
        breaker_held >= 100,
        "{breaker_held} held by the breaker: {kinds:#?}"
    );
    let texts = slack.texts();
    let opened: Vec<&String> = texts
        .iter()
        .filter(|t| t.contains("autoheal breaker open for group"))
        .collect();
    assert_eq!(opened.len(), 1, "exactly one summary: {texts:#?}");
    assert!(
        opened[0].contains("(threshold max(3, 20% of 200) = 40)"),
        "{}",
        opened[0]
    );
    // Everything else told is a repair or a hold summary, at most one per guard scope
    // (the group's in-flight budget, the account's): no member's hold on its own.
    let (repairs, others): (Vec<&String>, Vec<&String>) = texts
        .iter()
        .filter(|t| !t.contains("autoheal breaker open for group"))
        .partition(|t| t.contains("marked Unhealthy"));
    assert_eq!(repairs.len(), marked, "one report per repair: {texts:#?}");
    let summaries = others
        .iter()
        .filter(|t| t.contains("are not reported one by one"))
        .count();
    assert!(
        summaries == others.len() && summaries <= 2,
        "only hold summaries, one per scope: {others:#?}"
    );
    eprintln!(
        "200 alarms handled in {:?}; {} Slack messages",
        started.elapsed(),
        texts.len()
    );

    // The count falls to the threshold once the 41st-latest alarm (stamped ~1 s before the
    // burst was handled) leaves the 10 s window; the 60 s cool-down runs from then, so the
    // tick 75 s on closes the breaker.
    clock.advance(75_000);
    let told_before = slack.texts().len();
    let no_account_budget = world
        .deps_on(
            &proxy,
            &[
                env[0],
                env[1],
                env[2],
                env[3],
                env[4],
                ("AUTOHEAL_ACCOUNT_MAX_REPAIRS", "off"),
            ],
            &clock,
        )
        .await;
    invoke(&no_account_budget, &event("scheduled-tick.json", &[]))
        .await
        .unwrap();
    let texts = slack.texts();
    let closed = texts
        .iter()
        .filter(|t| t.contains("autoheal storm over") && t.contains("the last breaker, group"))
        .count();
    assert_eq!(closed, 1, "{texts:#?}");
    let now_marked = proxy.calls("SetInstanceHealth");
    assert!(
        now_marked > marked && now_marked <= 20,
        "resumed within the in-flight budget of 20: {marked} -> {now_marked}"
    );
    // The members the in-flight budget holds now are summarised, not told one by one:
    // the closing message, one report per repair, one hold summary.
    let told = texts.len() - told_before;
    assert!(
        told <= 1 + (now_marked - marked) + 1,
        "{told} messages for {} repairs: {:#?}",
        now_marked - marked,
        &texts[told_before..]
    );
    assert_eq!(
        texts
            .iter()
            .filter(|t| t.contains("autoheal breaker open"))
            .count(),
        1
    );
}

#[tokio::test]
async fn an_operator_resumes_an_open_breaker() {
    let (world, proxy, slack) = setup(WorldSpec::sized(10, 0)).await;
    let deps = world.deps(&proxy, &NO_BUDGET).await;
    let group = world.group.clone();
    // Four of ten, one after the other: the fourth trips it (threshold max(3, 2) = 3).
    let mut lines = vec![];
    for id in &world.members[..4] {
        let r = invoke(&deps, &alarm_at(&deps, "sns-alarm.json", id, 0))
            .await
            .unwrap();
        lines.push(summary(&r)[0].clone());
    }
    assert!(lines[3].starts_with("none held: breaker open"), "{lines:?}");
    // The group's size is read at most once per alarm (the breaker's percent and the
    // in-flight budget share it), and only where it can change the answer: not for the
    // first, admitted in a free scope with the breaker's count at 1; once each for the
    // second and third (their scope lists a member: the in-flight budget); once for the
    // fourth (the count of 4 is over 3: the percent decides).
    assert_eq!(proxy.calls("DescribeAutoScalingGroups"), 3);
    let scope = format!("group:{group}");
    let resume = serde_json::json!({"autoheal": "resume", "scope": scope}).to_string();
    let r = invoke(&deps, resume.as_bytes()).await.unwrap();
    assert_eq!(
        summary(&r),
        vec![format!("none done: breaker for group {group} in us-east-1 closed by a resume event; members still alarming are looked at by the next tick")]
    );
    let again = invoke(&deps, resume.as_bytes()).await.unwrap();
    assert_eq!(
        summary(&again),
        vec![format!(
            "none ignored: resume: the breaker for group {group} in us-east-1 is not open"
        )]
    );
    let texts = slack.texts();
    assert!(texts.iter().any(|t| t.contains(&format!(
        "the last breaker, group {group} in us-east-1, closed (resumed by an operator)"
    ))));
    // The tick looks at the held members again: now only the in-flight budget (10% of 10 =
    // 1 at a time, the first member marked) holds them.
    let tick = invoke(&deps, &event("scheduled-tick.json", &[]))
        .await
        .unwrap();
    let lines: Vec<String> = summary(&tick)
        .into_iter()
        .filter(|l| l.starts_with("none held"))
        .collect();
    assert_eq!(lines.len(), 3, "{lines:#?}");
    assert!(
        lines
            .iter()
            .all(|l| l.starts_with("none held: in-flight budget: 10% of 10 = 1 at a time")),
        "{lines:?}"
    );
    assert_eq!(proxy.calls("SetInstanceHealth"), 1);
}

#[tokio::test]
async fn a_cluster_trips_its_own_breaker_and_other_instances_are_repaired() {
    let (world, proxy, slack) = setup(WorldSpec::empty()).await;
    // Ten standalone instances sharing the cluster tag (no Auto Scaling group): the breaker
    // counts their alarms together, threshold max(3, 20% of 10) = 3.
    let db = world.launch(10, &[("autoheal:cluster", "db")]).await;
    let web = world
        .launch(1, &[("autoheal:cluster", "web")])
        .await
        .remove(0);
    let lone = world.launch(1, &[]).await.remove(0);
    // The first member's repair stays under way (its image pending): the quorum guard holds
    // the next members, and their alarms still count toward the breaker.
    world.pending_images(&db[0], true).await;
    let deps = world.deps(&proxy, &NO_BUDGET).await;
    let alarm = |id: &str| alarm_at(&deps, "sns-alarm.json", id, 0);
    let mut lines = vec![];
    for id in &db[..4] {
        let r = invoke(&deps, &alarm(id)).await.unwrap();
        lines.push(summary(&r)[0].clone());
    }
    assert!(
        lines[0].starts_with("create_image in_progress"),
        "{lines:#?}"
    );
    for line in &lines[1..3] {
        assert!(
            line.starts_with("none held: quorum guard: one member of a cluster at a time"),
            "{lines:#?}"
        );
    }
    assert!(
        lines[3].starts_with(
            "none held: breaker open: 4 members of cluster db in us-east-1 alarmed within the window (threshold max(3, 20% of 10) = 3)"
        ),
        "{lines:#?}"
    );
    let opened = || -> Vec<String> {
        slack
            .texts()
            .into_iter()
            .filter(|t| t.contains("autoheal breaker open for cluster db in us-east-1"))
            .collect()
    };
    assert_eq!(opened().len(), 1, "{:#?}", slack.texts());
    for id in &db[..4] {
        assert!(opened()[0].contains(id.as_str()), "{id}: {}", opened()[0]);
    }

    // Another member's alarm is held by the open breaker, and nobody is told again.
    let r = invoke(&deps, &alarm(&db[4])).await.unwrap();
    assert!(
        summary(&r)[0].starts_with("none held: breaker open"),
        "{:?}",
        summary(&r)
    );
    assert!(r.outcomes[0].notification.is_none(), "{r:?}");
    assert_eq!(opened().len(), 1);

    // The world: only the first member was imaged; the held members run on untouched.
    assert_eq!(proxy.calls("CreateImage"), 1);
    for id in &db[1..5] {
        assert_eq!(world.state(id).await, "running", "{id}");
        assert_eq!(world.made_of(id).await, (vec![], vec![]), "{id}");
    }

    // Instances outside the cluster are not behind its breaker: another cluster's member
    // and an untagged instance are relaunched.
    for id in [&web, &lone] {
        let r = invoke(&deps, &alarm(id)).await.unwrap();
        assert!(
            summary(&r)[0].starts_with("verify done: recovered: copy"),
            "{id}: {:?}",
            summary(&r)
        );
        let (images, copies) = world.made_of(id).await;
        assert_eq!((images.len(), copies.len()), (1, 1), "{id}");
    }
    assert_eq!(opened().len(), 1);

    // An operator closes the cluster's breaker.
    let resume = serde_json::json!({"autoheal": "resume", "scope": "cluster:db"}).to_string();
    let r = invoke(&deps, resume.as_bytes()).await.unwrap();
    assert_eq!(
        summary(&r),
        vec!["none done: breaker for cluster db in us-east-1 closed by a resume event; members still alarming are looked at by the next tick"]
    );
    assert!(slack
        .texts()
        .iter()
        .any(|t| t.contains("the last breaker, cluster db in us-east-1, closed")));
}
