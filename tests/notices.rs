//! EC2's scheduled notices on the emulator (run under tools/with-moto.sh): an event
//! scheduled on an instance through the emulator's control API is read by the tick,
//! recorded once and told once (a second tick says nothing new); AWS Health's notice of the
//! same event is a duplicate, of another instance recorded and told once; a completed event
//! closes its record quietly; nothing is stopped, started or rebooted when hearing it.
//! Carried out at its time: a standalone instance stopped and started once, its event gone,
//! verified and told done (a retirement imaged first); an instance reboot moved into the window
//! (`ModifyInstanceEventStartTime`); members marked Unhealthy one at a time, each replacement followed; a stop that never
//! completes taken to a copy, once; a dry run changes nothing; `notify`, `off` and another
//! controller's instance told once and never touched.

mod common;

use common::*;
use serde_json::{json, Value};

const HOUR_MS: i64 = 3_600_000;

async fn tick(deps: &autoheal::app::Deps) -> Vec<String> {
    summary(
        &invoke(deps, &event("scheduled-tick.json", &[]))
            .await
            .unwrap(),
    )
}

fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn found<'a>(lines: &'a [String], what: &str) -> Vec<&'a String> {
    lines.iter().filter(|l| l.contains(what)).collect()
}

/// The system-reboot sample about `ids`, from `start` to two hours later.
fn health_reboot(ids: &[&str], start: i64) -> Vec<u8> {
    let mut e: Value =
        serde_json::from_slice(&event("health-system-reboot-scheduled.json", ids)).unwrap();
    let rfc2822 = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .unwrap()
            .to_rfc2822()
    };
    e["detail"]["startTime"] = rfc2822(start).into();
    e["detail"]["endTime"] = rfc2822(start + 2 * HOUR_MS).into();
    serde_json::to_vec(&e).unwrap()
}

/// The ledger's notices: (sort key, state).
async fn recorded(world: &World) -> Vec<(String, String)> {
    let out = world
        .ddb
        .query()
        .table_name(&world.table)
        .key_condition_expression("pk = :p")
        .expression_attribute_values(
            ":p",
            aws_sdk_dynamodb::types::AttributeValue::S("notices".into()),
        )
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    out.items()
        .iter()
        .map(|i| {
            (
                i["sk"].as_s().unwrap().clone(),
                i["state"].as_s().unwrap().clone(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_scheduled_event_is_recorded_and_told_once_however_it_is_heard_and_closes_quietly() {
    let (world, proxy, slack) = setup(WorldSpec::healthy(0, 2)).await;
    let (id, other) = (world.standalone[0].clone(), world.standalone[1].clone());
    let deps = world
        .deps(
            &proxy,
            &[("AUTOHEAL_MAINTENANCE_WINDOW", "Daily 02:00-04:00 UTC")],
        )
        .await;
    // Three days ahead, on the hour: EC2 will reboot the host.
    let start = (deps.now_ms() / HOUR_MS + 72) * HOUR_MS;
    let scheduled = json!({"instance_id": id, "code": "system-reboot", "not_before": iso(start), "not_after": iso(start + 2 * HOUR_MS)});
    control("scheduled-event", scheduled.clone()).await;

    let first = tick(&deps).await;
    let mine = found(&first, &format!("none in_progress: scheduled notice recorded: EC2 will reboot the host of {id} in us-east-1 from {}", &iso(start)[..10]));
    assert_eq!(mine.len(), 1, "{first:#?}");
    assert!(mine[0].contains("stop and start it at"), "{}", mine[0]);
    assert!(proxy.calls("DescribeInstanceStatus") >= 1);
    let texts = slack.texts();
    assert_eq!(texts.len(), 1, "{texts:#?}");
    assert!(
        texts[0].starts_with(&format!(
            "*Scheduled notice*: EC2 will reboot the host of {id} in us-east-1"
        )),
        "{}",
        texts[0]
    );
    assert!(texts[0].contains("Maintenance window: Daily 02:00-04:00 UTC (the stack's default, AUTOHEAL_MAINTENANCE_WINDOW)."), "{}", texts[0]);
    assert!(
        texts[0].ends_with("Runbook: `docs/RUNBOOK.md#scheduled-notice` (Scheduled notice)"),
        "{}",
        texts[0]
    );
    // Data is escaped, the runbook is the context block.
    let payload = slack.received.lock().unwrap()[0].clone();
    assert_eq!(
        payload["blocks"][1]["elements"][0]["text"],
        "Runbook: `docs/RUNBOOK.md#scheduled-notice` (Scheduled notice)"
    );
    assert_eq!(recorded(&world).await.len(), 1);

    // The next tick: nothing new, nobody told again.
    deps.clock.advance(60_000);
    let second = tick(&deps).await;
    assert_eq!(
        found(
            &second,
            "none duplicate: scheduled notices: 1 recorded already, nothing new"
        )
        .len(),
        1,
        "{second:#?}"
    );
    assert!(found(&second, &id).is_empty(), "{second:#?}");
    assert_eq!(slack.texts().len(), 1);

    // AWS Health tells of the same reboot, and of another instance's: the first is the
    // notice recorded already, the second recorded and told once.
    let health = summary(
        &invoke(&deps, &health_reboot(&[&id, &other], start))
            .await
            .unwrap(),
    );
    assert_eq!(health.len(), 2, "{health:#?}");
    assert!(
        health[0].starts_with("none duplicate: scheduled notice us-east-1/"),
        "{health:#?}"
    );
    assert!(
        health[1].starts_with(&format!(
            "none in_progress: scheduled notice recorded: EC2 will reboot the host of {other}"
        )),
        "{health:#?}"
    );
    assert_eq!(slack.texts().len(), 2);
    assert!(
        slack.texts()[1]
            .contains("heard from AWS Health AWS_EC2_SYSTEM_REBOOT_MAINTENANCE_SCHEDULED"),
        "{}",
        slack.texts()[1]
    );
    let again = summary(
        &invoke(&deps, &health_reboot(&[&id, &other], start))
            .await
            .unwrap(),
    );
    assert!(
        again.iter().all(|l| l.starts_with("none duplicate:")),
        "{again:#?}"
    );
    assert_eq!(slack.texts().len(), 2);

    // EC2 completes it (listed a week with "[Completed]"): its record closes quietly.
    control("reset", json!({"instance_id": id})).await;
    let mut completed = scheduled;
    completed["description"] = "[Completed] Scheduled reboot of the host".into();
    control("scheduled-event", completed).await;
    deps.clock.advance(60_000);
    let done = tick(&deps).await;
    let closed = found(&done, "none ignored: scheduled notice (system-reboot): no longer stands ([Completed] Scheduled reboot of the host): its record is closed");
    assert_eq!(closed.len(), 1, "{done:#?}");
    deps.clock.advance(60_000);
    let later = tick(&deps).await;
    assert!(found(&later, "scheduled notice").is_empty(), "{later:#?}");
    assert_eq!(slack.texts().len(), 2, "{:#?}", slack.texts());
    let mut states: Vec<String> = recorded(&world).await.into_iter().map(|(_, s)| s).collect();
    states.sort();
    assert_eq!(states, ["closed", "scheduled"]);
    // Nothing acted on.
    for call in [
        "StopInstances",
        "StartInstances",
        "RebootInstances",
        "ModifyInstanceEventStartTime",
        "CreateImage",
    ] {
        assert_eq!(proxy.calls(call), 0, "{call}");
    }
}

#[tokio::test]
async fn notices_off_reads_no_events_and_records_nothing() {
    let (world, proxy, slack) = setup(WorldSpec::healthy(0, 1)).await;
    let id = world.standalone[0].clone();
    let deps = world.deps(&proxy, &[("AUTOHEAL_NOTICES", "off")]).await;
    let start = (deps.now_ms() / HOUR_MS + 72) * HOUR_MS;
    control("scheduled-event", json!({"instance_id": id, "code": "instance-stop", "not_before": iso(start), "not_after": iso(start + HOUR_MS)})).await;
    tick(&deps).await;
    assert_eq!(proxy.calls("DescribeInstanceStatus"), 0);
    let heard = summary(&invoke(&deps, &health_reboot(&[&id], start)).await.unwrap());
    assert!(
        heard[0].ends_with("AUTOHEAL_NOTICES=off: not recorded"),
        "{heard:#?}"
    );
    assert!(recorded(&world).await.is_empty());
    assert!(slack.texts().is_empty());
}

/// The standing events EC2 lists for `id`: (code, NotBefore ms).
async fn events_of(world: &World, id: &str) -> Vec<(String, i64)> {
    let out = world
        .ec2
        .describe_instance_status()
        .instance_ids(id)
        .include_all_instances(true)
        .send()
        .await
        .unwrap();
    let statuses = out.instance_statuses();
    let events = statuses.iter().flat_map(|s| s.events());
    events
        .map(|e| {
            let code = e.code().map_or("", |c| c.as_str()).to_string();
            (code, e.not_before().unwrap().to_millis().unwrap())
        })
        .collect()
}

/// `id` gets EC2's `code` event from `start` (on the hour) to an hour later.
async fn schedule(id: &str, code: &str, start: i64, deadline: Option<i64>) {
    let mut body = json!({"instance_id": id, "code": code, "not_before": iso(start), "not_after": iso(start + HOUR_MS)});
    if let Some(d) = deadline {
        body["not_before_deadline"] = iso(d).into();
    }
    control("scheduled-event", body).await;
}

#[tokio::test]
async fn a_standalone_instance_is_stopped_and_started_ahead_once_and_verified() {
    let (world, proxy, slack) = setup(WorldSpec::healthy(0, 1)).await;
    let id = world.standalone[0].clone();
    let deps = world.deps(&proxy, &[]).await;
    let start = (deps.now_ms() / HOUR_MS + 3) * HOUR_MS;
    schedule(&id, "instance-stop", start, None).await;
    let heard = tick(&deps).await;
    assert_eq!(
        found(&heard, "scheduled notice recorded").len(),
        1,
        "{heard:#?}"
    );
    assert_eq!(proxy.calls("StopInstances"), 0, "not due yet");
    // The lead time (1 h) before EC2's start is reached.
    deps.clock.advance(start - HOUR_MS - deps.now_ms());
    let mut lines = vec![];
    for _ in 0..6 {
        lines.extend(tick(&deps).await);
        deps.clock.advance(60_000);
    }
    assert_eq!(proxy.calls("StopInstances"), 1, "{lines:#?}");
    assert_eq!(proxy.calls("StartInstances"), 1, "{lines:#?}");
    assert!(events_of(&world, &id).await.is_empty(), "the event is gone");
    let done = found(&lines, "stop_start done:");
    assert_eq!(done.len(), 1, "{lines:#?}");
    assert!(
        done[0].contains("EC2's event is gone, both status checks ok"),
        "{}",
        done[0]
    );
    let texts = slack.texts();
    assert_eq!(texts.len(), 2, "told when heard, then done: {texts:#?}");
    assert!(
        texts[1].contains("stopped and started ahead of EC2 (begun at"),
        "{}",
        texts[1]
    );
    assert_eq!(recorded(&world).await[0].1, "closed");
    // A later tick does nothing more.
    tick(&deps).await;
    assert_eq!(
        proxy.calls("StopInstances") + proxy.calls("StartInstances"),
        2
    );
    assert_eq!(slack.texts().len(), 2);
}

#[tokio::test]
async fn a_retirement_is_imaged_first_then_stopped_and_started_once_its_image_is_available() {
    let (world, proxy, slack) = setup(WorldSpec::healthy(0, 1)).await;
    let id = world.standalone[0].clone();
    let deps = world.deps(&proxy, &[]).await;
    let start = (deps.now_ms() / HOUR_MS + 3) * HOUR_MS;
    schedule(&id, "instance-retirement", start, None).await;
    world.pending_images(&id, true).await;
    tick(&deps).await;
    deps.clock.advance(start - HOUR_MS - deps.now_ms());
    let mut lines = vec![];
    for _ in 0..3 {
        lines.extend(tick(&deps).await);
        deps.clock.advance(60_000);
    }
    assert_eq!(proxy.calls("CreateImage"), 1, "{lines:#?}");
    assert_eq!(
        proxy.calls("StopInstances"),
        0,
        "not before its image: {lines:#?}"
    );
    world.release_images(&id).await;
    for _ in 0..4 {
        lines.extend(tick(&deps).await);
        deps.clock.advance(60_000);
    }
    let calls = proxy.all_calls();
    let at = |action: &str| calls.iter().position(|c| c == action).unwrap();
    assert!(at("CreateImage") < at("StopInstances"), "{calls:?}");
    assert_eq!(proxy.calls("CreateImage"), 1);
    assert_eq!(proxy.calls("StopInstances"), 1, "{lines:#?}");
    assert_eq!(proxy.calls("StartInstances"), 1, "{lines:#?}");
    assert!(events_of(&world, &id).await.is_empty(), "the event is gone");
    let texts = slack.texts();
    assert_eq!(texts.len(), 2, "told when heard, then done: {texts:#?}");
    assert!(
        texts[1].contains("EC2's event is gone, both status checks ok; imaged first as ami-"),
        "{}",
        texts[1]
    );
    assert_eq!(recorded(&world).await[0].1, "closed");
}

#[tokio::test]
async fn an_ec2_instance_event_window_is_the_window_when_no_tag_names_one() {
    use aws_sdk_ec2::types::{
        InstanceEventWindowAssociationRequest, InstanceEventWindowTimeRangeRequest, WeekDay,
    };
    let (world, proxy, slack) = setup(WorldSpec::healthy(0, 1)).await;
    let id = world.standalone[0].clone();
    let deps = world.deps(&proxy, &[]).await;
    // EC2's window open from this hour for four hours (its least); the event six hours away, so
    // without the window autoheal would act an hour before it.
    let now = chrono::DateTime::from_timestamp_millis(deps.now_ms()).unwrap();
    let day = |d: chrono::DateTime<chrono::Utc>| {
        use chrono::Datelike;
        let days = autoheal::rules::notice::window::DAYS;
        WeekDay::from(days[d.weekday().num_days_from_monday() as usize])
    };
    let (from, to) = (now, now + chrono::Duration::hours(4));
    let hour = |d: chrono::DateTime<chrono::Utc>| chrono::Timelike::hour(&d) as i32;
    let made = world
        .ec2
        .create_instance_event_window()
        .name("db-nights")
        .time_ranges(
            InstanceEventWindowTimeRangeRequest::builder()
                .start_week_day(day(from))
                .start_hour(hour(from))
                .end_week_day(day(to))
                .end_hour(hour(to))
                .build(),
        )
        .send()
        .await
        .unwrap();
    let window_id = made
        .instance_event_window()
        .unwrap()
        .instance_event_window_id()
        .unwrap()
        .to_string();
    world
        .ec2
        .associate_instance_event_window()
        .instance_event_window_id(&window_id)
        .association_target(
            InstanceEventWindowAssociationRequest::builder()
                .instance_ids(&id)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let start = (deps.now_ms() / HOUR_MS + 6) * HOUR_MS;
    schedule(&id, "instance-stop", start, None).await;
    tick(&deps).await;
    let texts = slack.texts();
    assert!(
        texts[0].contains(&format!(
            "(EC2's instance event window db-nights ({window_id}))"
        )),
        "{}",
        texts[0]
    );
    // Inside EC2's window now: stopped at once, not an hour before the event.
    deps.clock.advance(60_000);
    tick(&deps).await;
    assert_eq!(proxy.calls("StopInstances"), 1);
    assert_eq!(
        proxy.calls("DescribeInstanceEventWindows"),
        1,
        "read once, when heard"
    );
}

#[tokio::test]
async fn an_instance_reboot_is_moved_into_the_window() {
    let (world, proxy, slack) = setup(WorldSpec::healthy(0, 1)).await;
    let id = world.standalone[0].clone();
    let now = chrono::Utc::now().timestamp_millis();
    // A window three hours ahead, an hour long: not the event's hour.
    let hour = (now / HOUR_MS + 3) % 24;
    let window = format!("Daily {hour:02}:00-{:02}:00 UTC", hour + 1);
    let deps = world
        .deps(&proxy, &[("AUTOHEAL_MAINTENANCE_WINDOW", window.as_str())])
        .await;
    let start = (deps.now_ms() / HOUR_MS + 72) * HOUR_MS;
    schedule(&id, "instance-reboot", start, Some(start + 48 * HOUR_MS)).await;
    let heard = tick(&deps).await;
    assert!(
        found(&heard, "move event")[0].contains("scheduled notice recorded"),
        "{heard:#?}"
    );
    deps.clock.advance(60_000);
    let moved = tick(&deps).await;
    assert_eq!(proxy.calls("ModifyInstanceEventStartTime"), 1, "{moved:#?}");
    let events = events_of(&world, &id).await;
    assert_eq!(events.len(), 1);
    let to = events[0].1;
    assert!(to < start && to >= now + 2 * HOUR_MS, "{events:?}");
    assert_eq!((to / HOUR_MS) % 24, hour, "inside the window: {events:?}");
    assert!(
        slack
            .texts()
            .iter()
            .any(|t| t.contains("moved to start at")),
        "{:#?}",
        slack.texts()
    );
    for call in ["StopInstances", "StartInstances", "RebootInstances"] {
        assert_eq!(proxy.calls(call), 0, "{call}");
    }
}

#[tokio::test]
async fn members_are_replaced_ahead_one_at_a_time_each_followed_to_its_replacement() {
    let (world, proxy, _slack) = setup(WorldSpec::healthy(3, 0)).await;
    world.replace_unhealthy(Some(0.0)).await;
    let (a, b) = (world.members[0].clone(), world.members[1].clone());
    let deps = world.deps(&proxy, &[]).await;
    let start = (deps.now_ms() / HOUR_MS + 3) * HOUR_MS;
    schedule(&a, "system-reboot", start, None).await;
    schedule(&b, "system-reboot", start, None).await;
    tick(&deps).await;
    deps.clock.advance(start - HOUR_MS - deps.now_ms());
    let first = tick(&deps).await;
    assert_eq!(
        proxy.calls("SetInstanceHealth"),
        1,
        "one at a time: {first:#?}"
    );
    assert_eq!(found(&first, "mark_unhealthy done:").len(), 1, "{first:#?}");
    assert_eq!(found(&first, "waits").len(), 1, "{first:#?}");
    // Never two under repair at once: the second is marked only once the first's
    // replacement is verified (the incident closed, the group whole again).
    let mut lines = first.clone();
    for _ in 0..4 {
        deps.clock.advance(60_000);
        lines.extend(tick(&deps).await);
        let mut repairing = 0;
        for id in [&a, &b] {
            let head = world.head(id).await;
            repairing += head.is_some_and(|h| h["status"] == "repairing") as usize;
        }
        assert!(repairing <= 1, "two members under repair: {lines:#?}");
    }
    assert_eq!(proxy.calls("SetInstanceHealth"), 2, "{lines:#?}");
    assert_eq!(found(&lines, "verify done:").len(), 2, "{lines:#?}");
    for id in [&a, &b] {
        let head = world.head(id).await.unwrap();
        assert_eq!(
            (head["action"].as_str(), head["result"].as_str()),
            ("verify", "done"),
            "{head:?}"
        );
    }
    assert!(recorded(&world)
        .await
        .iter()
        .all(|(_, state)| state == "closed"));
    for call in ["StopInstances", "StartInstances", "RebootInstances"] {
        assert_eq!(proxy.calls(call), 0, "{call}");
    }
}

#[tokio::test]
async fn a_dry_run_says_what_it_would_do_and_calls_nothing_that_changes_the_world() {
    let (world, proxy, slack) = setup(WorldSpec::healthy(0, 1)).await;
    let id = world.standalone[0].clone();
    let deps = world.deps(&proxy, &[("AUTOHEAL_DRY_RUN", "true")]).await;
    let start = (deps.now_ms() / HOUR_MS + 3) * HOUR_MS;
    schedule(&id, "instance-stop", start, None).await;
    tick(&deps).await;
    deps.clock.advance(start - HOUR_MS - deps.now_ms());
    let lines = tick(&deps).await;
    tick(&deps).await;
    assert_eq!(found(&lines, "stop_start dry_run:").len(), 1, "{lines:#?}");
    for call in [
        "StopInstances",
        "StartInstances",
        "ModifyInstanceEventStartTime",
    ] {
        assert_eq!(proxy.calls(call), 0, "{call}");
    }
    let texts = slack.texts();
    assert_eq!(texts.len(), 2, "{texts:#?}");
    assert!(texts[1].contains("would stop and start it"), "{}", texts[1]);
    assert_eq!(events_of(&world, &id).await.len(), 1, "the event stands");
}

#[tokio::test]
async fn notify_off_and_another_controllers_instance_are_told_once_and_never_touched() {
    let (world, proxy, slack) = setup(WorldSpec::healthy(0, 3)).await;
    let tags = [
        ("autoheal", "notify"),
        ("autoheal", "off"),
        ("karpenter.sh/nodepool", "default"),
    ];
    let deps = world.deps(&proxy, &[]).await;
    let start = (deps.now_ms() / HOUR_MS + 3) * HOUR_MS;
    for (id, (k, v)) in world.standalone.iter().zip(tags) {
        let tag = aws_sdk_ec2::types::Tag::builder().key(k).value(v).build();
        world
            .ec2
            .create_tags()
            .resources(id)
            .tags(tag)
            .send()
            .await
            .unwrap();
        schedule(id, "instance-stop", start, None).await;
    }
    tick(&deps).await;
    let texts = slack.texts();
    assert_eq!(texts.len(), 3, "one message each: {texts:#?}");
    let about = |id: &str| {
        texts
            .iter()
            .filter(|t| t.contains(id))
            .cloned()
            .collect::<Vec<_>>()
    };
    let (notify, off, karpenter) = (
        about(&world.standalone[0]),
        about(&world.standalone[1]),
        about(&world.standalone[2]),
    );
    assert!(
        notify[0].contains("tag autoheal=notify on the instance: autoheal would stop and start it"),
        "{}",
        notify[0]
    );
    assert!(off[0].contains("autoheal leaves it alone"), "{}", off[0]);
    assert!(
        karpenter[0].contains("managed by Karpenter"),
        "{}",
        karpenter[0]
    );
    // Past the time autoheal would have acted, and past EC2's start: nothing more.
    for _ in 0..3 {
        deps.clock.advance(HOUR_MS);
        tick(&deps).await;
    }
    assert_eq!(slack.texts().len(), 3, "{:#?}", slack.texts());
    for call in [
        "StopInstances",
        "StartInstances",
        "CreateImage",
        "RebootInstances",
    ] {
        assert_eq!(proxy.calls(call), 0, "{call}");
    }
}

#[tokio::test]
async fn a_stop_that_never_completes_is_taken_to_a_copy_once() {
    let (world, proxy, slack) = setup(WorldSpec::healthy(0, 1)).await;
    let id = world.standalone[0].clone();
    let deps = world.deps(&proxy, &[]).await;
    let start = (deps.now_ms() / HOUR_MS + 3) * HOUR_MS;
    schedule(&id, "instance-stop", start, None).await;
    world.stuck_stop(&id, true).await;
    tick(&deps).await;
    deps.clock.advance(start - HOUR_MS - deps.now_ms());
    let stopping = tick(&deps).await;
    assert_eq!(
        found(&stopping, "stop_start in_progress:").len(),
        1,
        "{stopping:#?}"
    );
    deps.clock.advance(5 * 60_000);
    tick(&deps).await;
    assert_eq!(slack.texts().len(), 1, "still waiting: nothing said");
    assert_eq!(proxy.calls("CreateImage"), 0);
    // Past the ladder's stop/start timeout (10 min): imaged and relaunched as a copy.
    let mut lines = vec![];
    for _ in 0..4 {
        deps.clock.advance(6 * 60_000);
        lines.extend(tick(&deps).await);
    }
    assert_eq!(proxy.calls("CreateImage"), 1, "{lines:#?}");
    assert_eq!(proxy.calls("RunInstances"), 1, "{lines:#?}");
    assert_eq!(
        proxy.calls("StartInstances"),
        0,
        "the stuck one is not started"
    );
    let done = found(&lines, "verify done:");
    assert_eq!(done.len(), 1, "{lines:#?}");
    let head = world.head(&id).await.unwrap();
    let copy = head["replacement_id"].clone();
    let running = world
        .ec2
        .describe_instances()
        .instance_ids(&copy)
        .send()
        .await
        .unwrap();
    let state = running.reservations()[0].instances()[0].state().unwrap();
    assert_eq!(state.name().unwrap().as_str(), "running");
    let texts = slack.texts();
    assert!(
        texts
            .iter()
            .skip(1)
            .all(|t| t.contains("EC2 scheduled event instance-stop")),
        "the copy's reports name the notice: {texts:#?}"
    );
    assert!(texts.iter().any(|t| t.contains(&copy)), "{texts:#?}");
    assert_eq!(recorded(&world).await[0].1, "closed");
    let told = texts.len();
    for _ in 0..2 {
        deps.clock.advance(60_000);
        tick(&deps).await;
    }
    assert_eq!(slack.texts().len(), told, "nothing more");
    assert_eq!(
        proxy.calls("CreateImage") + proxy.calls("RunInstances"),
        2,
        "once"
    );
}

#[tokio::test]
async fn many_notices_at_once_are_one_summary_each_recorded_once() {
    // An Availability Zone's maintenance: seven instances, one date, one tick.
    let (world, proxy, slack) = setup(WorldSpec::healthy(0, 7)).await;
    let deps = world.deps(&proxy, &[]).await;
    let start = (deps.now_ms() / HOUR_MS + 48) * HOUR_MS;
    for id in &world.standalone {
        schedule(id, "system-maintenance", start, None).await;
    }
    let heard = tick(&deps).await;
    assert_eq!(recorded(&world).await.len(), 7, "{heard:#?}");
    let texts = slack.texts();
    assert_eq!(texts.len(), 1, "one summary, not seven: {texts:#?}");
    assert!(
        texts[0].contains("EC2 announced 7 scheduled events at once"),
        "{}",
        texts[0]
    );
    assert!(texts[0].contains("autoheal-admin upcoming"), "{}", texts[0]);
    assert_eq!(
        proxy.calls("DescribeInstanceEventWindows"),
        1,
        "EC2's event windows read once for the seven"
    );
    // The next tick: nothing new, nothing told, nothing done (two days ahead).
    tick(&deps).await;
    assert_eq!(slack.texts().len(), 1);
    assert_eq!(proxy.calls("StopInstances"), 0);
}

/// The EC2 and Auto Scaling calls the function made that change something: any of theirs
/// but a `Describe*`.
fn changes(proxy: &Proxy) -> Vec<String> {
    let ec2_or_asg = |action: &String| {
        proxy
            .bodies(action)
            .iter()
            .any(|b| b.contains("Version=2016-11-15") || b.contains("Version=2011-01-01"))
    };
    proxy
        .all_calls()
        .into_iter()
        .filter(|a| !a.starts_with("Describe") && ec2_or_asg(a))
        .collect()
}

/// EC2's date as the plan says it: "2026-11-29 03:00 UTC".
fn said_date(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap()
        .format("%Y-%m-%d %H:%M UTC")
        .to_string()
}

/// Ticks a minute apart from the lead time before `start` (when an EBS-backed instance
/// would be stopped and started), then past `start`: what they said.
async fn ticks_past(deps: &autoheal::app::Deps, start: i64) -> Vec<String> {
    deps.clock.advance(start - HOUR_MS - deps.now_ms());
    let mut lines = vec![];
    for _ in 0..4 {
        lines.extend(tick(deps).await);
        deps.clock.advance(60_000);
    }
    deps.clock.advance(start + 10 * 60_000 - deps.now_ms());
    for _ in 0..2 {
        lines.extend(tick(deps).await);
        deps.clock.advance(60_000);
    }
    lines
}

/// A standalone instance with `facts` (as `/_autoheal/instance-facts` sets them) facing
/// EC2's `code` from three hours ahead, whose plan is `step(id, EC2's date)` alone, for
/// people: told once, with no step of autoheal's own; then nothing done and nobody told
/// again past the time an EBS-backed instance would be stopped and started and past EC2's
/// start. The proxy, for what the test checks beyond.
async fn only_told(
    facts: serde_json::Value,
    code: &str,
    step: impl Fn(&str, &str) -> String,
) -> Proxy {
    let (world, proxy, slack) = setup(WorldSpec::healthy(0, 1)).await;
    let id = world.standalone[0].clone();
    world.instance_facts(&id, facts).await;
    let deps = world.deps(&proxy, &[]).await;
    let start = (deps.now_ms() / HOUR_MS + 3) * HOUR_MS;
    schedule(&id, code, start, None).await;
    let said = step(&id, &said_date(start));

    let heard = tick(&deps).await;
    let mine = found(&heard, "scheduled notice recorded");
    assert_eq!(mine.len(), 1, "{heard:#?}");
    assert!(mine[0].contains(&said), "{}", mine[0]);
    assert!(
        mine[0].ends_with("for people: autoheal takes no step of its own"),
        "{}",
        mine[0]
    );
    let texts = slack.texts();
    assert_eq!(texts.len(), 1, "{texts:#?}");
    assert!(
        texts[0].contains(&format!("\n1. {said}")),
        "the step is the whole plan: {}",
        texts[0]
    );
    assert!(!texts[0].contains("\n2. "), "{}", texts[0]);
    assert!(
        texts[0].contains("autoheal takes no step of its own for this notice")
            && !texts[0].contains("carries out each acting step"),
        "{}",
        texts[0]
    );

    let lines = ticks_past(&deps, start).await;
    assert!(found(&lines, &id).is_empty(), "{lines:#?}");
    assert_eq!(changes(&proxy), Vec::<String>::new(), "{lines:#?}");
    assert_eq!(world.state(&id).await, "running");
    assert_eq!(events_of(&world, &id).await.len(), 1, "the event stands");
    assert_eq!(slack.texts().len(), 1, "{:#?}", slack.texts());
    let records = recorded(&world).await;
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0].1, "scheduled");
    proxy
}

#[tokio::test]
async fn a_risky_kernel_is_warned_of_once_and_never_stopped_or_rebooted() {
    // PV-GRUB: an instance booting it may never come back from a reboot.
    only_told(
        json!({"kernel_id": "aki-44992845"}),
        "system-reboot",
        |id, date| format!("warn: EC2 will reboot the host of {id} from {date}: kernel aki-44992845 may not come back from a reboot; autoheal never reboots or stops it"),
    )
    .await;
}

#[tokio::test]
async fn an_instance_store_root_facing_retirement_goes_to_people_once_and_is_never_stopped() {
    let proxy = only_told(
        json!({"root_device_type": "instance-store"}),
        "instance-retirement",
        |id, date| format!("tell people: EC2 will retire {id} from {date}: its root device is instance store, so it can be neither stopped and started nor imaged"),
    )
    .await;
    // Its stop protection is not read: it cannot be stopped anyway.
    assert_eq!(proxy.calls("DescribeInstanceAttribute"), 0);
}
