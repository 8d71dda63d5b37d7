//! Periodic backups on the tick: imaged without reboot when due, recorded in the ledger as
//! they are asked for, old ones deregistered with their snapshots; only instances the
//! deployer's selector names; only images the backup run recorded count as backups; none
//! while the latest incident has not closed as recovered. Time is the injected clock, so
//! hours go by in milliseconds.

mod common;

use autoheal::pipeline::tick::backups as backup;
use aws_sdk_ec2::types::Filter;
use common::*;
use std::time::Instant;

const HOUR: i64 = 3_600_000;
/// The deployer's selector, and the tag that meets it.
const SELECTOR: (&str, &str) = ("AUTOHEAL_BACKUP_SELECTOR", "backup-approved=yes");
const APPROVED: (&str, &str) = ("backup-approved", "yes");

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

fn image_ids(images: &[aws_sdk_ec2::types::Image]) -> Vec<String> {
    images
        .iter()
        .map(|i| i.image_id().unwrap().to_string())
        .collect()
}

/// The tick's backup work, now on the function's clock.
async fn run(deps: &autoheal::app::Deps, w: &World) -> backup::Summary {
    backup::run(deps, &w.region, &[], deps.now_ms() + 60_000)
        .await
        .unwrap()
}

/// The images the ledger records for `id`.
async fn recorded(deps: &autoheal::app::Deps, w: &World, id: &str) -> Vec<String> {
    let key = autoheal::model::keys::key(&w.region, id);
    let made = deps.ledger.read_backups(&key).await.unwrap();
    made.recorded().map(str::to_string).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn backups_are_recorded_and_rotated_and_a_planted_image_is_left_alone() {
    let (w, proxy, _slack) = setup(WorldSpec::empty()).await;
    let a = w
        .launch(
            1,
            &[
                ("autoheal:backup", "1"),
                ("autoheal:backup-keep", "2"),
                APPROVED,
            ],
        )
        .await
        .remove(0);
    let untagged = w.launch(1, &[("team", "web"), APPROVED]).await.remove(0);
    // Someone who may image and tag: another instance's disks as a's backup, named as
    // autoheal names them, before autoheal took any (the oldest, first to rotate out).
    let planted = w.plant_backup(&a, &untagged).await;
    let deps = w.deps(&proxy, &[SELECTOR]).await;

    let s = run(&deps, &w).await;
    assert_eq!(
        (s.tagged, s.imaged),
        (1, 1),
        "planted is not a's newest: {s:?}"
    );
    // Named every time, reported (as a problem, to Slack) once.
    assert_eq!(s.suspicious.len(), 1, "{s:?}");
    assert_eq!(s.problems.len(), 1, "{s:?}");
    assert!(
        s.problems[0].starts_with(&planted)
            && s.problems[0].contains(&format!("made from {untagged}"))
            && s.problems[0].contains("never relaunched from nor deleted"),
        "{}",
        s.problems[0]
    );
    let own = image_ids(&backups_of(&w, &a).await);
    assert_eq!(own.len(), 2);
    let first: Vec<String> = own.into_iter().filter(|i| *i != planted).collect();
    assert_eq!(
        recorded(&deps, &w, &a).await,
        first,
        "the run's own image, recorded"
    );
    let body = proxy
        .bodies("CreateImage")
        .into_iter()
        .find(|b| b.contains(&a))
        .unwrap();
    assert!(
        body.contains("NoReboot=true") && body.contains("ResourceType=snapshot"),
        "{body}"
    );
    // The request is in the ledger before EC2 is asked.
    let calls = proxy.all_calls();
    let asked = calls.iter().position(|c| c == "CreateImage").unwrap();
    assert!(calls[..asked].iter().any(|c| c == "PutItem"), "{calls:?}");

    // Half an hour later: not due. Then every two hours: one more each time, keeping two.
    deps.clock.advance(HOUR / 2);
    let s = run(&deps, &w).await;
    assert_eq!(
        (s.imaged, s.problems.len(), s.suspicious.len()),
        (0, 0, 1),
        "{s:?}"
    );
    assert_eq!(backups_of(&w, &a).await.len(), 2);
    deps.clock.advance(3 * HOUR / 2);
    run(&deps, &w).await;
    deps.clock.advance(2 * HOUR);
    run(&deps, &w).await;
    assert_eq!(
        backups_of(&w, &a).await.len(),
        4,
        "three of its own and the planted"
    );
    let before = backups_of(&w, &a).await;
    assert_eq!(recorded(&deps, &w, &a).await.len(), 3);
    deps.clock.advance(2 * HOUR);
    let s = run(&deps, &w).await;
    assert_eq!(
        (s.imaged, s.retired, s.snapshots_deleted),
        (1, 1, 1),
        "{s:?}"
    );
    let after = image_ids(&backups_of(&w, &a).await);
    assert!(after.contains(&planted), "never rotated out: {after:?}");
    assert_eq!(after.len(), 4, "one deregistered, one taken");
    let gone: Vec<_> = before
        .iter()
        .filter(|b| !after.iter().any(|x| Some(x.as_str()) == b.image_id()))
        .collect();
    assert_eq!(gone.len(), 1);
    assert_eq!(
        gone[0].image_id(),
        Some(first[0].as_str()),
        "its own oldest"
    );
    let now_recorded = recorded(&deps, &w, &a).await;
    assert_eq!(now_recorded.len(), 3);
    assert!(!now_recorded.contains(&first[0]), "{now_recorded:?}");
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
        summary.reason.starts_with("backups: ")
            && summary
                .reason
                .contains(&format!("did not make, left alone: {planted}")),
        "{}",
        summary.reason
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_backup_tag_alone_selects_nothing() {
    let (w, proxy, _slack) = setup(WorldSpec::empty()).await;
    let tagged = w
        .launch(1, &[("autoheal:backup", "1"), APPROVED])
        .await
        .remove(0);
    let by_anyone = w.launch(1, &[("autoheal:backup", "1")]).await.remove(0);
    // No selector: nothing is backed up, nothing of the images or the ledger is read.
    let deps = w.deps(&proxy, &[]).await;
    let s = run(&deps, &w).await;
    assert_eq!((s.tagged, s.imaged, s.unselected.len()), (0, 0, 2), "{s:?}");
    assert!(
        s.text()
            .starts_with("backups: none, AUTOHEAL_BACKUP_SELECTOR is not set"),
        "{}",
        s.text()
    );
    for call in ["CreateImage", "DescribeImages", "BatchGetItem"] {
        assert_eq!(proxy.calls(call), 0, "{call}");
    }
    // With it: only the instance that carries it.
    let deps = w.deps(&proxy, &[SELECTOR]).await;
    let s = run(&deps, &w).await;
    assert_eq!((s.tagged, s.imaged), (1, 1), "{s:?}");
    assert_eq!(s.unselected, vec![by_anyone.clone()]);
    assert!(
        s.text().contains(&format!(
            "1 tagged autoheal:backup without the selector tag backup-approved=yes, left alone: {by_anyone}"
        )),
        "{}",
        s.text()
    );
    assert_eq!(backups_of(&w, &tagged).await.len(), 1);
    assert!(backups_of(&w, &by_anyone).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backup_name_taken_first_is_not_taken_for_the_backup() {
    let (w, proxy, _slack) = setup(WorldSpec::empty()).await;
    let a = w
        .launch(1, &[("autoheal:backup", "1"), APPROVED])
        .await
        .remove(0);
    let other = w.launch(1, &[]).await.remove(0);
    let deps = w.deps(&proxy, &[SELECTOR]).await;
    // The name the next backup will have, taken by an image of another instance.
    let name = autoheal::rules::backup::backup_name(&a, deps.now_ms());
    let squat = w
        .plant_image(&other, &name, ("autoheal:backup-of", &a))
        .await;
    let s = run(&deps, &w).await;
    assert_eq!(s.imaged, 0, "{s:?}");
    assert!(
        s.problems
            .iter()
            .any(|p| p.contains(&format!("{name:?} is taken"))),
        "{s:?}"
    );
    let key = autoheal::model::keys::key(&w.region, &a);
    let made = deps.ledger.read_backups(&key).await.unwrap();
    assert!(made.images.is_empty(), "the request is dropped: {made:?}");
    assert_eq!(made.flagged, vec![squat.clone()]);
    // A minute on: a backup under its own name; the squatter's image is never its.
    deps.clock.advance(60_000);
    let s = run(&deps, &w).await;
    assert_eq!(s.imaged, 1, "{s:?}");
    let own = recorded(&deps, &w, &a).await;
    assert_eq!(own.len(), 1);
    assert_ne!(own[0], squat);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_backup_nor_rotation_until_the_latest_incident_closed_as_recovered() {
    let (w, proxy, _slack) = setup(WorldSpec::empty()).await;
    let v = w
        .launch(
            1,
            &[
                ("autoheal:backup", "1"),
                ("autoheal:backup-keep", "1"),
                APPROVED,
            ],
        )
        .await
        .remove(0);
    let deps = w.deps(&proxy, &[SELECTOR]).await;
    run(&deps, &w).await;
    deps.clock.advance(2 * HOUR);
    run(&deps, &w).await;
    let good = image_ids(&backups_of(&w, &v).await);
    assert_eq!(good.len(), 2, "the newest kept, one more taken");

    // Its relaunch fails: RunInstances answers without an instance.
    proxy.fail(
        "RunInstances",
        usize::MAX,
        Fault::Swallow(r#"<RunInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>x</requestId></RunInstancesResponse>"#),
    );
    let r = invoke(&deps, &alarm_at(&deps, "sns-alarm.json", &v, 0))
        .await
        .unwrap();
    assert_eq!(r.outcomes[0].result.as_str(), "failed", "{r:?}");
    proxy.heal_all();
    let incident = r.outcomes[0].incident.clone().unwrap();

    // Due, and one beyond the newest: held back all the same, and said once in the tick.
    deps.clock.advance(2 * HOUR);
    proxy.forget();
    let tick = invoke(&deps, &event("scheduled-tick.json", &[]))
        .await
        .unwrap();
    let lines: Vec<String> = summary(&tick)
        .into_iter()
        .filter(|l| l.contains(&v))
        .collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with("create_image done: backups: 1 tagged instance(s), 0 imaged")
            && lines[0].contains(&format!(
                "1 held back, no backup and none retired until their latest incident closes as recovered: {v} (incident {incident} failed)"
            )),
        "{}",
        lines[0]
    );
    for call in ["CreateImage", "DeregisterImage", "DeleteSnapshot"] {
        assert_eq!(proxy.calls(call), 0, "{call}");
    }
    assert_eq!(image_ids(&backups_of(&w, &v).await), good);

    // EC2 reports it healthy again and the alarm returns to OK: the incident closes, as
    // failed. Still held back.
    w.checks(&v, None, None).await;
    let ok = invoke(&deps, &alarm_at(&deps, "sns-ok.json", &v, 0))
        .await
        .unwrap();
    assert_eq!(w.head(&v).await.unwrap()["status"], "closed", "{ok:?}");
    deps.clock.advance(HOUR);
    let s = run(&deps, &w).await;
    assert_eq!((s.imaged, s.retired), (0, 0), "{s:?}");
    assert!(s.held_back[0].contains("closed as failed"), "{s:?}");

    // A later incident that closes as recovered (by itself, in its grace) lets them resume.
    let graced = w
        .deps_on(
            &proxy,
            &[SELECTOR, ("AUTOHEAL_GRACE_SECONDS", "30")],
            &deps.clock,
        )
        .await;
    deps.clock.advance(60_000);
    invoke(&graced, &alarm_at(&graced, "sns-alarm.json", &v, 0))
        .await
        .unwrap();
    let s = run(&deps, &w).await;
    assert!(s.held_back[0].contains("under repair"), "{s:?}");
    deps.clock.advance(10_000);
    let ok = invoke(&graced, &alarm_at(&graced, "sns-ok.json", &v, 0))
        .await
        .unwrap();
    assert!(summary(&ok)[0].contains("recovered by itself"), "{ok:?}");
    let s = run(&deps, &w).await;
    assert_eq!((s.imaged, s.retired), (1, 1), "{s:?}");
    assert!(s.held_back.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unreadable_backup_tags_are_reported_not_guessed() {
    let (w, proxy, slack) = setup(WorldSpec::empty()).await;
    let bad = w
        .launch(1, &[("autoheal:backup", "daily"), APPROVED])
        .await
        .remove(0);
    let deps = w.deps(&proxy, &[SELECTOR]).await;
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
    let (w, proxy, _slack) = setup(WorldSpec::empty()).await;
    let ids = w.launch(1000, &[("autoheal:backup", "24"), APPROVED]).await;
    let deps = w.deps(&proxy, &[SELECTOR]).await;
    let started = Instant::now();
    let s = backup::run(&deps, &w.region, &[], deps.now_ms() + 900_000)
        .await
        .unwrap();
    let took = started.elapsed();
    println!(
        "BENCH backup tick: {} tagged, {} imaged in {:.1} s (given 900 s; a deployed tick has the function's 30 s Timeout and starts no backup in its last 5 s)",
        s.tagged,
        s.imaged,
        took.as_secs_f64()
    );
    assert_eq!((s.tagged, s.imaged), (ids.len(), ids.len()), "{s:?}");
    assert!(took.as_secs() < 900);
}
