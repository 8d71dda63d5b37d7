//! Alarms of other regions: a group in ap-northeast-1 healed by a function in us-east-1
//! (an SNS topic in Tokyo with the function subscribed across regions), the ledger staying
//! in the function's region with region-qualified keys.

mod common;

use common::*;

const TOKYO: &str = "ap-northeast-1";

/// The alarm fixture as CloudWatch in `region` would send it.
fn alarm_in(region: &str, deps: &autoheal::app::Deps, id: &str) -> Vec<u8> {
    String::from_utf8(alarm_at(deps, "sns-alarm.json", id, 0))
        .unwrap()
        .replace("us-east-1", region)
        .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tokyo_member_is_marked_unhealthy_in_tokyo_by_a_function_in_virginia() {
    let (world, proxy, slack) = setup(WorldSpec {
        region: TOKYO,
        ..WorldSpec::sized(4, 0)
    })
    .await;
    let id = world.members[0].clone();

    // Not served by default (the function's own region only): nothing is called.
    let deps = world.deps(&proxy, &[]).await;
    let r = invoke(&deps, &alarm_in(TOKYO, &deps, &id)).await.unwrap();
    assert_eq!(
        summary(&r),
        vec!["none ignored: alarm is in ap-northeast-1; this function serves us-east-1 (AUTOHEAL_REGIONS)"]
    );
    assert!(proxy.all_calls().is_empty(), "{:?}", proxy.all_calls());

    // Served: the member is marked in its own region's group.
    let deps = world
        .deps(&proxy, &[("AUTOHEAL_REGIONS", "us-east-1,ap-northeast-1")])
        .await;
    let r = invoke(&deps, &alarm_in(TOKYO, &deps, &id)).await.unwrap();
    assert_eq!(
        r.outcomes[0].result,
        autoheal::model::outcome::Verdict::Done,
        "{r:?}"
    );
    assert!(
        r.outcomes[0]
            .reason
            .starts_with("marked Unhealthy in group"),
        "{r:?}"
    );
    assert_eq!(proxy.calls("SetInstanceHealth"), 1);
    assert_eq!(world.health(&id).await, "UNHEALTHY");
    // The group exists in Tokyo only: the mark cannot have gone anywhere else.
    let home = aws_sdk_autoscaling::Client::new(&sdk_config(&world.setup_proxy.endpoint).await);
    let groups = home
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(&world.group)
        .send()
        .await
        .unwrap();
    assert!(groups.auto_scaling_groups().is_empty());

    // The ledger (in us-east-1) names the instance with its region; the report says where.
    let head = world.head(&id).await.expect("head under the Tokyo key");
    assert_eq!(head["region"], TOKYO);
    let texts = slack.texts();
    assert_eq!(texts.len(), 1, "{texts:#?}");
    let report = serde_json::to_string(&slack.received.lock().unwrap()[0]).unwrap();
    assert!(report.contains(TOKYO), "{report}");

    // A duplicate delivery finds the same incident under the same key.
    let again = invoke(&deps, &alarm_in(TOKYO, &deps, &id)).await.unwrap();
    assert_eq!(
        again.outcomes[0].result,
        autoheal::model::outcome::Verdict::Duplicate
    );
    assert_eq!(proxy.calls("SetInstanceHealth"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn any_region_is_served_with_a_star_and_guards_count_per_region() {
    let (world, proxy, _slack) = setup(WorldSpec {
        region: TOKYO,
        ..WorldSpec::sized(2, 0)
    })
    .await;
    let deps = world.deps(&proxy, &[("AUTOHEAL_REGIONS", "*")]).await;
    // A group of 2: the quorum guard lets one member at a time; the guard's scope is the
    // Tokyo group's (its key carries the region).
    let first = invoke(&deps, &alarm_in(TOKYO, &deps, &world.members[0]))
        .await
        .unwrap();
    assert_eq!(
        first.outcomes[0].result,
        autoheal::model::outcome::Verdict::Done
    );
    let second = invoke(&deps, &alarm_in(TOKYO, &deps, &world.members[1]))
        .await
        .unwrap();
    assert_eq!(
        second.outcomes[0].result,
        autoheal::model::outcome::Verdict::Held,
        "{second:?}"
    );
    assert!(
        second.outcomes[0].reason.contains(&format!(
            "in {TOKYO} already has {} under repair",
            world.members[0]
        )),
        "{}",
        second.outcomes[0].reason
    );
    assert_eq!(proxy.calls("SetInstanceHealth"), 1);
}
