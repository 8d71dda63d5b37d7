//! Periodic backups on the tick: imaged without reboot when due, old ones deregistered with
//! their snapshots. Time is passed in, so hours go by in milliseconds.

mod common;

use autoheal::heal::backup;
use aws_sdk_ec2::types::Filter;
use common::*;
use std::time::Instant;

const HOUR: i64 = 3_600_000;

async fn backups_of(w: &World, id: &str) -> Vec<aws_sdk_ec2::types::Image> {
    w.ec2
        .describe_images()
        .owners("self")
        .filters(
            Filter::builder()
                .name("tag:autoheal:backup-of")
                .values(id)
                .build(),
        )
        .send()
        .await
        .unwrap()
        .images()
        .to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn backups_are_taken_when_due_and_old_ones_deleted_with_their_snapshots() {
    let (w, proxy, _slack) = setup(WorldSpec::empty()).await;
    let a = w
        .launch(
            1,
            &[("autoheal:backup", "1"), ("autoheal:backup-keep", "2")],
        )
        .await
        .remove(0);
    let untagged = w.launch(1, &[("team", "web")]).await.remove(0);
    let deps = w.deps(&proxy, &[]).await;
    let ec2 = &deps.clients.ec2;
    let t0 = chrono::Utc::now().timestamp_millis();
    let far = t0 + 10 * HOUR + 60_000;

    let s = backup::run(ec2, &autoheal::clock::Clock::manual(t0), &[], false, far)
        .await
        .unwrap();
    assert_eq!((s.tagged, s.imaged, s.problems.len()), (1, 1, 0), "{s:?}");
    assert_eq!(backups_of(&w, &a).await.len(), 1);
    let body = proxy
        .bodies("CreateImage")
        .into_iter()
        .find(|b| b.contains(&a))
        .unwrap();
    assert!(
        body.contains("NoReboot=true") && body.contains("ResourceType=snapshot"),
        "{body}"
    );

    // Half an hour later: not due. Then every two hours: one more each time, keeping two.
    backup::run(
        ec2,
        &autoheal::clock::Clock::manual(t0 + HOUR / 2),
        &[],
        false,
        far,
    )
    .await
    .unwrap();
    assert_eq!(backups_of(&w, &a).await.len(), 1);
    backup::run(
        ec2,
        &autoheal::clock::Clock::manual(t0 + 2 * HOUR),
        &[],
        false,
        far,
    )
    .await
    .unwrap();
    backup::run(
        ec2,
        &autoheal::clock::Clock::manual(t0 + 4 * HOUR),
        &[],
        false,
        far,
    )
    .await
    .unwrap();
    assert_eq!(backups_of(&w, &a).await.len(), 3);
    let before = backups_of(&w, &a).await;
    let s = backup::run(
        ec2,
        &autoheal::clock::Clock::manual(t0 + 6 * HOUR),
        &[],
        false,
        far,
    )
    .await
    .unwrap();
    assert_eq!(
        (s.imaged, s.retired, s.snapshots_deleted),
        (1, 1, 1),
        "{s:?}"
    );
    let after = backups_of(&w, &a).await;
    assert_eq!(after.len(), 3, "one deregistered, one taken");
    let gone: Vec<_> = before
        .iter()
        .filter(|b| !after.iter().any(|x| x.image_id() == b.image_id()))
        .collect();
    assert_eq!(gone.len(), 1);
    // Its snapshot is deleted too (deregistering alone would leave it, and bill it).
    let snapshot = gone[0].block_device_mappings()[0]
        .ebs()
        .unwrap()
        .snapshot_id()
        .unwrap();
    let found = w
        .ec2
        .describe_snapshots()
        .snapshot_ids(snapshot)
        .send()
        .await;
    assert!(
        found.map(|o| o.snapshots().is_empty()).unwrap_or(true),
        "snapshot {snapshot} should be gone"
    );
    assert!(backups_of(&w, &untagged).await.is_empty());

    // The tick itself runs them and says so in one summary outcome.
    let r = invoke(&deps, &event("scheduled-tick.json", &[]))
        .await
        .unwrap();
    let summary = r.outcomes.last().unwrap();
    assert_eq!(
        (summary.action.as_str(), summary.result.as_str()),
        ("create_image", "done")
    );
    assert!(
        summary.reason.starts_with("backups: "),
        "{}",
        summary.reason
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unreadable_backup_tags_are_reported_not_guessed() {
    let (w, proxy, slack) = setup(WorldSpec::empty()).await;
    let bad = w.launch(1, &[("autoheal:backup", "daily")]).await.remove(0);
    let deps = w.deps(&proxy, &[]).await;
    let r = invoke(&deps, &event("scheduled-tick.json", &[]))
        .await
        .unwrap();
    let summary = r.outcomes.last().unwrap();
    assert_eq!(summary.result.as_str(), "failed");
    assert!(
        summary.reason.contains(&bad) && summary.reason.contains("not a positive number of hours"),
        "{}",
        summary.reason
    );
    assert_eq!(summary.notification.as_deref(), Some("slack"));
    assert!(slack.texts().iter().any(|t| t.contains(&bad)));
    assert!(backups_of(&w, &bad).await.is_empty());
}

/// Benchmark (run by `make bench`): 1,000 tagged instances imaged in one tick.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "benchmark: make bench"]
async fn bench_one_tick_backs_up_1000_instances() {
    let (w, _proxy, _slack) = setup(WorldSpec::empty()).await;
    let ids = w.launch(1000, &[("autoheal:backup", "24")]).await;
    let ec2 = aws_sdk_ec2::Client::new(&w.sdk);
    let now = chrono::Utc::now().timestamp_millis();
    let started = Instant::now();
    let s = backup::run(
        &ec2,
        &autoheal::clock::Clock::manual(now),
        &[],
        false,
        now + 900_000,
    )
    .await
    .unwrap();
    let took = started.elapsed();
    println!(
        "BENCH backup tick: {} tagged, {} imaged in {:.1} s (Lambda limit 900 s)",
        s.tagged,
        s.imaged,
        took.as_secs_f64()
    );
    assert_eq!((s.tagged, s.imaged), (ids.len(), ids.len()), "{s:?}");
    assert!(took.as_secs() < 900);
}
