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

const IRELAND: &str = "eu-west-1";

/// A group of `size` members named `name`, in `region` of the world's account. Its members.
async fn group_in(world: &World, region: &str, name: &str, size: i32) -> Vec<String> {
    let sdk = sdk_config_in(&world.setup_proxy.endpoint, region).await;
    let ec2 = aws_sdk_ec2::Client::new(&sdk);
    let asg = aws_sdk_autoscaling::Client::new(&sdk);
    let (_, members) = make_group(&ec2, &asg, region, name, size, &[]).await;
    for id in &members {
        world.checks(id, Some("impaired"), Some("impaired")).await;
    }
    members
}

/// The group health Auto Scaling in `region` reports for a member.
async fn health_in(world: &World, region: &str, id: &str) -> String {
    let sdk = sdk_config_in(&world.setup_proxy.endpoint, region).await;
    aws_sdk_autoscaling::Client::new(&sdk)
        .describe_auto_scaling_instances()
        .instance_ids(id)
        .send()
        .await
        .unwrap()
        .auto_scaling_instances()
        .first()
        .and_then(|i| i.health_status())
        .unwrap_or("none")
        .to_ascii_uppercase()
}

/// The ledger head of an instance of `region` (stored in the function's region).
async fn head_in(world: &World, region: &str, id: &str) -> Option<String> {
    let out = world
        .ddb
        .get_item()
        .table_name(&world.table)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("instance#{region}/{id}")),
        )
        .key(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S("head".into()),
        )
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    out.item()
        .and_then(|i| i.get("result"))
        .and_then(|v| v.as_s().ok())
        .cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn any_region_is_served_with_a_star_and_guards_count_per_region() {
    // One account, two regions, a group of 2 of the same name in each: the quorum guard
    // lets one member of each at a time, and one region's repair holds nothing in the other.
    let (world, proxy, slack) = setup(WorldSpec {
        region: TOKYO,
        ..WorldSpec::sized(2, 0)
    })
    .await;
    let tokyo = world.members.clone();
    let ireland = group_in(&world, IRELAND, &world.group, 2).await;
    let deps = world.deps(&proxy, &[("AUTOHEAL_REGIONS", "*")]).await;
    let alarm = |region: &str, id: &str| alarm_in(region, &deps, id);
    let done = autoheal::model::outcome::Verdict::Done;
    let held = autoheal::model::outcome::Verdict::Held;

    // Tokyo's first member is repaired; its second is held by Tokyo's scope.
    let first = invoke(&deps, &alarm(TOKYO, &tokyo[0])).await.unwrap();
    assert_eq!(first.outcomes[0].result, done, "{first:?}");
    let second = invoke(&deps, &alarm(TOKYO, &tokyo[1])).await.unwrap();
    assert_eq!(second.outcomes[0].result, held, "{second:?}");
    assert!(
        second.outcomes[0].reason.contains(&format!(
            "group {} in {TOKYO} already has {} under repair",
            world.group, tokyo[0]
        )),
        "{}",
        second.outcomes[0].reason
    );

    // The group of the same name in Ireland is another scope: its first member is repaired
    // although Tokyo's is under repair, and only its own second member is held by it.
    let third = invoke(&deps, &alarm(IRELAND, &ireland[0])).await.unwrap();
    assert_eq!(third.outcomes[0].result, done, "{third:?}");
    assert!(
        third.outcomes[0]
            .reason
            .starts_with(&format!("marked Unhealthy in group {}", world.group)),
        "{}",
        third.outcomes[0].reason
    );
    let fourth = invoke(&deps, &alarm(IRELAND, &ireland[1])).await.unwrap();
    assert_eq!(fourth.outcomes[0].result, held, "{fourth:?}");
    assert!(
        fourth.outcomes[0].reason.contains(&format!(
            "group {} in {IRELAND} already has {} under repair",
            world.group, ireland[0]
        )),
        "{}",
        fourth.outcomes[0].reason
    );
    assert_eq!(proxy.calls("SetInstanceHealth"), 2);

    // The world: each region's group has its first member marked, its second untouched.
    for (region, members) in [(TOKYO, &tokyo), (IRELAND, &ireland)] {
        assert_eq!(
            (
                health_in(&world, region, &members[0]).await,
                health_in(&world, region, &members[1]).await
            ),
            ("UNHEALTHY".to_string(), "HEALTHY".to_string()),
            "{region}"
        );
        // The ledger keeps each under its own region's key.
        assert_eq!(
            head_in(&world, region, &members[0]).await.as_deref(),
            Some("in_progress"),
            "{region}"
        );
        assert_eq!(
            head_in(&world, region, &members[1]).await.as_deref(),
            Some("held"),
            "{region}"
        );
    }
    // Each region's hold is told (one per scope), naming its region.
    let texts = slack.texts();
    for region in [TOKYO, IRELAND] {
        let holds = texts
            .iter()
            .filter(|t| t.contains("quorum guard") && t.contains(&format!("in {region}")))
            .count();
        assert_eq!(holds, 1, "{region}: {texts:#?}");
    }
}
