//! A group member marked Unhealthy is followed until Auto Scaling replaced it: the emulator
//! plays the replacement (terminate, launch, InService) as Auto Scaling would.

mod common;

use autoheal::model::outcome::Verdict;
use common::*;

fn lines(r: &autoheal::model::outcome::Response) -> Vec<String> {
    summary(r)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_marked_member_is_verified_once_auto_scaling_replaced_it() {
    let (world, proxy, slack) = setup(WorldSpec::sized(2, 0)).await;
    world.replace_unhealthy(Some(0.0)).await;
    let deps = world.deps(&proxy, &[]).await;
    let (a, b) = (world.members[0].clone(), world.members[1].clone());

    let r = invoke(&deps, &alarm_at(&deps, "sns-alarm.json", &a, 0))
        .await
        .unwrap();
    assert!(
        lines(&r)[0].starts_with("mark_unhealthy done: marked Unhealthy"),
        "{r:?}"
    );
    let head = world.head(&a).await.unwrap();
    assert_eq!(
        (head["status"].as_str(), head["result"].as_str()),
        ("repairing", "in_progress")
    );
    assert_eq!(
        open_index(&world).await,
        vec![format!("instance#{HOME_REGION}/{a}")]
    );
    // A group of 2: one member at a time, and A counts until its replacement is verified.
    let r = invoke(&deps, &alarm_at(&deps, "sns-alarm.json", &b, 0))
        .await
        .unwrap();
    assert_eq!(r.outcomes[0].result, Verdict::Held, "{r:?}");
    assert!(
        r.outcomes[0]
            .reason
            .contains(&format!("already has {a} under repair")),
        "{}",
        r.outcomes[0].reason
    );
    // The same alarm again while A is followed: a duplicate, nothing called.
    let again = invoke(&deps, &alarm_at(&deps, "sns-alarm.json", &a, 0))
        .await
        .unwrap();
    assert_eq!(again.outcomes[0].result, Verdict::Duplicate, "{again:?}");
    assert_eq!(proxy.calls("SetInstanceHealth"), 1);

    // The next ticks: A's replacement is seen and verified; then B goes.
    let mut verified = None;
    for tick in 1..=3 {
        deps.clock.advance(60_000);
        let marked_before = proxy.calls("SetInstanceHealth");
        let r = invoke(&deps, &event("scheduled-tick.json", &[]))
            .await
            .unwrap();
        for o in &r.outcomes {
            if o.instance_id.as_deref() == Some(a.as_str()) && o.action.as_str() == "verify" {
                assert_eq!(o.result, Verdict::Done, "{o:?}");
                verified.get_or_insert((tick, o.reason.clone()));
            }
        }
        if verified.is_none() {
            assert_eq!(marked_before, 1, "B marked while A was under repair");
        }
    }
    let (tick, reason) = verified.expect("A verified within three ticks");
    assert_eq!(tick, 1, "replaced at once, seen by the first tick");
    for step in [
        "marked Unhealthy +",
        "left the group +",
        "replacement in service +",
    ] {
        assert!(reason.contains(step), "{step}: {reason}");
    }
    assert!(reason.starts_with(&format!(
        "replaced by Auto Scaling in group {}",
        world.group
    )));
    assert_eq!(proxy.calls("SetInstanceHealth"), 2, "B once A was done");
    let head = world.head(&a).await.unwrap();
    assert_eq!(
        (
            head["status"].as_str(),
            head["action"].as_str(),
            head["result"].as_str()
        ),
        ("settled", "verify", "done")
    );
    let replaced = world.replacements().await;
    assert!(
        replaced.iter().any(|r| r["instance_id"] == a.as_str()),
        "{replaced:?}"
    );
    // People: the mark, B's hold, the verification (then B's mark and later its own).
    let texts = slack.texts();
    assert!(
        texts
            .iter()
            .filter(|t| t.contains("replaced by Auto Scaling"))
            .count()
            >= 1,
        "{texts:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_member_auto_scaling_never_replaces_goes_to_people_at_the_verify_timeout() {
    let (world, proxy, slack) = setup(WorldSpec::sized(4, 0)).await;
    let deps = world.deps(&proxy, &[]).await;
    let a = world.members[0].clone();
    let r = invoke(&deps, &alarm_at(&deps, "sns-alarm.json", &a, 0))
        .await
        .unwrap();
    assert_eq!(r.outcomes[0].result, Verdict::Done);

    deps.clock.advance(60_000);
    let r = invoke(&deps, &event("scheduled-tick.json", &[]))
        .await
        .unwrap();
    let waiting = r
        .outcomes
        .iter()
        .find(|o| o.instance_id.as_deref() == Some(a.as_str()))
        .unwrap();
    assert_eq!(
        (waiting.action.as_str(), waiting.result),
        ("verify", Verdict::InProgress)
    );
    assert!(
        waiting
            .reason
            .contains(&format!("{a} is still in the group (InService, Unhealthy)")),
        "{}",
        waiting.reason
    );
    let told = slack.texts().len();

    // 15 minutes after the alarm (AUTOHEAL_VERIFY_TIMEOUT): for people.
    deps.clock.advance(14 * 60_000);
    let r = invoke(&deps, &event("scheduled-tick.json", &[]))
        .await
        .unwrap();
    let failed = r
        .outcomes
        .iter()
        .find(|o| o.instance_id.as_deref() == Some(a.as_str()))
        .unwrap();
    assert_eq!(
        (failed.action.as_str(), failed.result),
        ("verify", Verdict::Failed),
        "{failed:?}"
    );
    assert!(
        failed.reason.contains("needs a person"),
        "{}",
        failed.reason
    );
    let texts = slack.texts();
    assert_eq!(texts.len(), told + 1, "{texts:#?}");
    assert!(texts.last().unwrap().contains("still in the group"));
    assert!(open_index(&world).await.is_empty());
    // The tick after that has nothing to follow.
    deps.clock.advance(60_000);
    let r = invoke(&deps, &event("scheduled-tick.json", &[]))
        .await
        .unwrap();
    assert!(
        r.outcomes
            .iter()
            .all(|o| o.instance_id.as_deref() != Some(a.as_str())),
        "{r:?}"
    );
    assert_eq!(proxy.calls("SetInstanceHealth"), 1);
}
