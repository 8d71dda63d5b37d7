//! Standalone instances: image without reboot, relaunch with the same environment, take
//! over, verify — against moto through the recording fault proxy.

mod common;

use autoheal::model::outcome::Verdict;
use aws_sdk_ec2::types::{
    Filter, HttpTokensState, IamInstanceProfileSpecification, InstanceMetadataOptionsRequest,
    InstanceType, ResourceType, Tag, TagSpecification,
};
use base64::Engine;
use common::*;

const USER_DATA: &str = "#!/bin/bash\necho started > /var/log/app\n";

struct Lone {
    id: String,
    subnet: String,
    groups: Vec<String>,
    profile_arn: String,
    key: String,
    public_ip: String,
}

/// A standalone instance with everything a real one carries: subnet, two security groups,
/// an instance profile, a key pair, user data, IMDSv2 required, tags and an Elastic IP.
async fn lone_instance(w: &World) -> Lone {
    let ec2 = &w.ec2;
    let vpc = ec2
        .create_vpc()
        .cidr_block("10.7.0.0/16")
        .send()
        .await
        .unwrap()
        .vpc()
        .unwrap()
        .vpc_id()
        .unwrap()
        .to_string();
    let subnet = ec2
        .create_subnet()
        .vpc_id(&vpc)
        .cidr_block("10.7.1.0/24")
        .availability_zone("us-east-1b")
        .send()
        .await
        .unwrap()
        .subnet()
        .unwrap()
        .subnet_id()
        .unwrap()
        .to_string();
    let mut groups = vec![];
    for name in ["db", "monitoring"] {
        let g = ec2
            .create_security_group()
            .group_name(unique(name))
            .description(name)
            .vpc_id(&vpc)
            .send()
            .await
            .unwrap();
        groups.push(g.group_id().unwrap().to_string());
    }
    let key = unique("key");
    ec2.create_key_pair().key_name(&key).send().await.unwrap();
    let iam = aws_sdk_iam::Client::new(&w.sdk);
    let role = unique("role");
    iam.create_role()
        .role_name(&role)
        .assume_role_policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#)
        .send()
        .await
        .unwrap();
    let profile = unique("profile");
    let profile_arn = iam
        .create_instance_profile()
        .instance_profile_name(&profile)
        .send()
        .await
        .unwrap()
        .instance_profile()
        .unwrap()
        .arn()
        .to_string();
    iam.add_role_to_instance_profile()
        .instance_profile_name(&profile)
        .role_name(&role)
        .send()
        .await
        .unwrap();
    let image = w.base_image().await;
    let tags = |rt: ResourceType| {
        TagSpecification::builder()
            .resource_type(rt)
            .tags(Tag::builder().key("Name").value("db-2").build())
            .tags(Tag::builder().key("team").value("data").build())
            .build()
    };
    let id = ec2
        .run_instances()
        .image_id(image)
        .instance_type(InstanceType::M5Large)
        .min_count(1)
        .max_count(1)
        .subnet_id(&subnet)
        .set_security_group_ids(Some(groups.clone()))
        .key_name(&key)
        .iam_instance_profile(
            IamInstanceProfileSpecification::builder()
                .arn(&profile_arn)
                .build(),
        )
        .user_data(base64::engine::general_purpose::STANDARD.encode(USER_DATA))
        .metadata_options(
            InstanceMetadataOptionsRequest::builder()
                .http_tokens(HttpTokensState::Required)
                .http_put_response_hop_limit(2)
                .build(),
        )
        .disable_api_termination(true)
        .tag_specifications(tags(ResourceType::Instance))
        .send()
        .await
        .unwrap()
        .instances()[0]
        .instance_id()
        .unwrap()
        .to_string();
    let eip = ec2
        .allocate_address()
        .domain(aws_sdk_ec2::types::DomainType::Vpc)
        .send()
        .await
        .unwrap();
    ec2.associate_address()
        .allocation_id(eip.allocation_id().unwrap())
        .instance_id(&id)
        .send()
        .await
        .unwrap();
    // EC2 reports it impaired: what confirms an alarm about it.
    w.checks(&id, Some("impaired"), Some("impaired")).await;
    Lone {
        id,
        subnet,
        groups,
        profile_arn,
        key,
        public_ip: eip.public_ip().unwrap().to_string(),
    }
}

/// The function's dependencies with the ledger's writes never retried by the SDK: a failed
/// write is the process dying right there.
async fn without_ledger_retries(
    w: &World,
    proxy: &Proxy,
    clock: &autoheal::app::clock::Clock,
) -> autoheal::app::Deps {
    let mut deps = w.deps_on(proxy, &[], clock).await;
    let dynamodb = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&sdk_config(&proxy.endpoint).await)
            .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
            .build(),
    );
    deps.ledger = std::sync::Arc::new(autoheal::ledger::Ledger::new(dynamodb, w.table.clone()));
    deps
}

/// Lifts termination protection, as a person would: autoheal never does.
async fn unprotect(w: &World, id: &str) {
    w.ec2
        .modify_instance_attribute()
        .instance_id(id)
        .disable_api_termination(
            aws_sdk_ec2::types::AttributeBooleanValue::builder()
                .value(false)
                .build(),
        )
        .send()
        .await
        .unwrap();
}

async fn setup_lone() -> (World, Proxy, Slack, Lone) {
    let (w, proxy, slack) = setup(WorldSpec::empty()).await;
    let lone = lone_instance(&w).await;
    (w, proxy, slack, lone)
}

/// Images and copies autoheal made for this source instance.
async fn made_for(w: &World, source: &str) -> (Vec<String>, Vec<aws_sdk_ec2::types::Instance>) {
    let by_source = Filter::builder()
        .name("tag:autoheal:source-instance")
        .values(source)
        .build();
    let images = w
        .ec2
        .describe_images()
        .owners("self")
        .filters(by_source.clone())
        .send()
        .await
        .unwrap()
        .images()
        .iter()
        .map(|i| i.image_id().unwrap().to_string())
        .collect();
    let copies = w
        .ec2
        .describe_instances()
        .filters(by_source)
        .send()
        .await
        .unwrap()
        .reservations()
        .iter()
        .flat_map(|r| r.instances().to_vec())
        .collect();
    (images, copies)
}

async fn attribute(
    w: &World,
    id: &str,
    name: aws_sdk_ec2::types::InstanceAttributeName,
) -> aws_sdk_ec2::operation::describe_instance_attribute::DescribeInstanceAttributeOutput {
    w.ec2
        .describe_instance_attribute()
        .instance_id(id)
        .attribute(name)
        .send()
        .await
        .unwrap()
}

async fn state(w: &World, id: &str) -> String {
    w.ec2
        .describe_instances()
        .instance_ids(id)
        .send()
        .await
        .unwrap()
        .reservations()[0]
        .instances()[0]
        .state()
        .unwrap()
        .name()
        .unwrap()
        .as_str()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_impaired_standalone_instance_is_imaged_without_reboot_and_relaunched_with_its_environment(
) {
    let (w, proxy, slack, lone) = setup_lone().await;
    let deps = w.deps(&proxy, &[]).await;
    let r = invoke(&deps, &event("sns-alarm.json", &[&lone.id]))
        .await
        .unwrap();
    let o = &r.outcomes[0];
    assert_eq!(
        (o.action.as_str(), o.result),
        ("verify", Verdict::Done),
        "{o:?}"
    );
    assert!(o.reason.starts_with("recovered: copy i-"), "{}", o.reason);
    assert!(o.reason.contains(&lone.public_ip), "{}", o.reason);

    // One image, taken with NoReboot, tagged (image and snapshots) with the incident.
    let (images, copies) = made_for(&w, &lone.id).await;
    assert_eq!(images.len(), 1);
    let create = proxy.bodies("CreateImage");
    assert_eq!(create.len(), 1);
    assert!(create[0].contains("NoReboot=true"), "{}", create[0]);
    assert!(create[0].contains("ResourceType=snapshot"), "{}", create[0]);
    assert!(
        create[0].contains(&format!("Name=autoheal-{}", o.incident.as_deref().unwrap())),
        "{}",
        create[0]
    );

    // One copy, with every carried setting equal.
    assert_eq!(copies.len(), 1);
    let copy = &copies[0];
    let copy_id = copy.instance_id().unwrap();
    assert_eq!(copy.instance_type(), Some(&InstanceType::M5Large));
    assert_eq!(copy.subnet_id(), Some(lone.subnet.as_str()));
    let mut groups: Vec<&str> = copy
        .security_groups()
        .iter()
        .map(|g| g.group_id().unwrap())
        .collect();
    groups.sort();
    let mut expected: Vec<&str> = lone.groups.iter().map(String::as_str).collect();
    expected.sort();
    assert_eq!(groups, expected);
    assert_eq!(
        copy.iam_instance_profile().and_then(|p| p.arn()),
        Some(lone.profile_arn.as_str())
    );
    assert_eq!(copy.key_name(), Some(lone.key.as_str()));
    assert_eq!(copy.image_id(), Some(images[0].as_str()));
    let meta = copy.metadata_options().unwrap();
    assert_eq!(meta.http_tokens(), Some(&HttpTokensState::Required));
    assert_eq!(meta.http_put_response_hop_limit(), Some(2));
    let user_data = attribute(
        &w,
        copy_id,
        aws_sdk_ec2::types::InstanceAttributeName::UserData,
    )
    .await;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(user_data.user_data().unwrap().value().unwrap())
        .unwrap();
    assert_eq!(String::from_utf8(decoded).unwrap(), USER_DATA);
    // Termination protection, as EC2 reports it on the copy (the emulator keeps
    // RunInstances' DisableApiTermination, which moto alone dropped).
    let protection = attribute(
        &w,
        copy_id,
        aws_sdk_ec2::types::InstanceAttributeName::DisableApiTermination,
    )
    .await;
    assert_eq!(
        protection.disable_api_termination().and_then(|v| v.value()),
        Some(true)
    );
    assert_eq!(
        copy.placement().and_then(|p| p.availability_zone()),
        Some("us-east-1b"),
        "the subnet's zone"
    );
    let tags: std::collections::BTreeMap<&str, &str> = copy
        .tags()
        .iter()
        .map(|t| (t.key().unwrap(), t.value().unwrap()))
        .collect();
    assert_eq!(tags.get("Name"), Some(&"db-2"));
    assert_eq!(tags.get("team"), Some(&"data"));
    assert_eq!(
        tags.get("autoheal:incident").copied(),
        o.incident.as_deref()
    );
    assert_eq!(
        tags.get("autoheal:source-instance"),
        Some(&lone.id.as_str())
    );
    // Launched with the token recorded before the call, which no report shows.
    let token = w.head(&lone.id).await.unwrap()["launch_token"].clone();
    assert_eq!(token.len(), 32);
    assert!(proxy.bodies("RunInstances")[0].contains(&format!("ClientToken={token}")));
    assert!(!slack.texts().iter().any(|t| t.contains(&token)));

    // The Elastic IP is on the copy; the old instance is stopped, tagged and kept.
    let addr = w
        .ec2
        .describe_addresses()
        .public_ips(&lone.public_ip)
        .send()
        .await
        .unwrap();
    assert_eq!(addr.addresses()[0].instance_id(), Some(copy_id));
    assert!(matches!(
        state(&w, &lone.id).await.as_str(),
        "stopped" | "stopping"
    ));
    let old = w
        .ec2
        .describe_instances()
        .instance_ids(&lone.id)
        .send()
        .await
        .unwrap();
    let old_tags = old.reservations()[0].instances()[0].tags();
    assert!(old_tags
        .iter()
        .any(|t| t.key() == Some("autoheal:replaced-by") && t.value() == Some(copy_id)));
    assert_eq!(proxy.calls("TerminateInstances"), 0);

    // The ledger is at recovered; nothing is left open for the tick.
    let head = w.head(&lone.id).await.unwrap();
    assert_eq!(
        (
            head["status"].as_str(),
            head["step"].as_str(),
            head["result"].as_str()
        ),
        ("settled", "recovered", "done")
    );
    assert_eq!(head["replacement_id"], copy_id);
    let tick = invoke(&deps, &event("scheduled-tick.json", &[]))
        .await
        .unwrap();
    assert_eq!(
        summary(&tick)[0],
        "none ignored: Scheduled Event: no repair waiting"
    );

    // Slack: a message when it started, one per step, one at the end.
    let texts = slack.texts();
    assert!(texts.len() >= 2, "{texts:#?}");
    assert!(
        texts[0].contains("step imaging: imaging without reboot"),
        "{}",
        texts[0]
    );
    assert!(
        texts.last().unwrap().contains("recovered: copy"),
        "{}",
        texts.last().unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_verified_copy_is_watched_as_its_source_was() {
    let (w, proxy, _slack, lone) = setup_lone().await;
    let source_alarm = w.operator_alarm(&lone.id).await;
    let deps = w.deps(&proxy, &[]).await;
    let r = invoke(&deps, &event("sns-alarm.json", &[&lone.id]))
        .await
        .unwrap();
    let o = &r.outcomes[0];
    assert_eq!(o.result, Verdict::Done, "{o:?}");
    let (_, copies) = made_for(&w, &lone.id).await;
    let copy = copies[0].instance_id().unwrap().to_string();
    let alarms = w.managed_alarms().await;
    assert!(!alarms.contains_key(&source_alarm), "{alarms:?}");
    let (dimension, period, actions) = &alarms[&format!("autoheal-StatusCheckFailed-{copy}")];
    assert_eq!(
        (dimension.as_str(), *period, actions.len()),
        (copy.as_str(), 300, 2),
        "the source's settings and actions, the copy's dimension"
    );
    assert!(o.reason.contains("watches the copy"), "{}", o.reason);

    // A source without an alarm of autoheal's: the copy gets the standard one to the topic.
    let (w, proxy, _slack, lone) = setup_lone().await;
    let topic = format!("arn:aws:sns:{}:{}:autoheal-alarms", w.region, w.account);
    let deps = w
        .deps(&proxy, &[("AUTOHEAL_ALARM_TOPIC_ARN", &topic)])
        .await;
    let r = invoke(&deps, &event("sns-alarm.json", &[&lone.id]))
        .await
        .unwrap();
    assert_eq!(r.outcomes[0].result, Verdict::Done, "{r:?}");
    let (_, copies) = made_for(&w, &lone.id).await;
    let copy = copies[0].instance_id().unwrap().to_string();
    let alarms = w.managed_alarms().await;
    assert_eq!(
        alarms[&format!("autoheal-StatusCheckFailed-{copy}")],
        (copy.clone(), 60, vec![topic])
    );
    assert_eq!(alarms.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn duplicate_and_concurrent_alarms_make_one_image_and_one_copy() {
    let (w, proxy, _slack, lone) = setup_lone().await;
    let alarm = event("sns-alarm.json", &[&lone.id]);
    let mut containers = vec![];
    for _ in 0..6 {
        containers.push(w.deps(&proxy, &[]).await);
    }
    let results = futures::future::join_all(containers.iter().map(|d| invoke(d, &alarm))).await;
    let done = results
        .iter()
        .filter(|r| r.as_ref().unwrap().outcomes[0].result == Verdict::Done)
        .count();
    assert_eq!(done, 1, "{results:?}");
    let again = invoke(&containers[0], &alarm).await.unwrap();
    assert_eq!(again.outcomes[0].result, Verdict::Duplicate);
    let (images, copies) = made_for(&w, &lone.id).await;
    assert_eq!((images.len(), copies.len()), (1, 1));
    assert_eq!(
        (proxy.calls("CreateImage"), proxy.calls("RunInstances")),
        (1, 1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_the_ami_event_the_tick_finishes_the_job() {
    let (w, proxy, slack, lone) = setup_lone().await;
    let deps = w.deps(&proxy, &[]).await;
    // The alarm's invocation has barely any time: it images, records it and stops.
    let payload: serde_json::Value =
        serde_json::from_slice(&event("sns-alarm.json", &[&lone.id])).unwrap();
    let short = deps.now_ms() + 1_000;
    let r = autoheal::pipeline::handle(&deps, &payload, &invocation(short))
        .await
        .unwrap();
    assert_eq!(
        (r.outcomes[0].action.as_str(), r.outcomes[0].result),
        ("create_image", Verdict::InProgress),
        "{r:?}"
    );
    assert_eq!(w.head(&lone.id).await.unwrap()["step"], "imaging");
    // No AMI event arrives; the scheduled tick alone completes the relaunch.
    let r = invoke(&deps, &event("scheduled-tick.json", &[]))
        .await
        .unwrap();
    // The alarm's invocation had no time left to post its report: kept, and re-sent now.
    assert_eq!(
        r.outcomes.len(),
        3,
        "the relaunch, the backups summary, the kept report: {r:?}"
    );
    assert_eq!(
        r.outcomes[2].reason,
        "reports kept for re-sending: 1 delivered, 0 still not, 0 dropped (over an hour old)"
    );
    assert_eq!(
        (r.outcomes[0].instance_id.as_deref(), r.outcomes[0].result),
        (Some(lone.id.as_str()), Verdict::Done),
        "{r:?}"
    );
    let (images, copies) = made_for(&w, &lone.id).await;
    assert_eq!((images.len(), copies.len()), (1, 1));
    assert!(slack.texts().iter().any(|t| t.contains("recovered")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crash_after_create_image_is_resumed_by_adopting_the_image() {
    let (w, proxy, _slack, lone) = setup_lone().await;
    let deps = w.deps(&proxy, &[]).await;
    let alarm = event("sns-alarm.json", &[&lone.id]);
    // Every ledger write after CreateImage fails, as if the process died right after it: the
    // image exists, the ledger does not know, and the claim holds until its lease ends.
    proxy.fail_after("CreateImage", "PutItem", 3, Fault::ServerError);
    let stingy = without_ledger_retries(&w, &proxy, &deps.clock).await;
    let payload: serde_json::Value = serde_json::from_slice(&alarm).unwrap();
    let short = stingy.now_ms() + 1_000;
    let err = autoheal::pipeline::handle(&stingy, &payload, &invocation(short))
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err}");
    deps.clock
        .advance(1_000 + autoheal::pipeline::LEASE_MARGIN_MS);
    let head = w.head(&lone.id).await.unwrap();
    assert!(
        !head.contains_key("image_id"),
        "the ledger must not know the image: {head:?}"
    );
    // The retry finds the image by its name and adopts it; no second image is taken.
    let r = invoke(&deps, &alarm).await.unwrap();
    assert_eq!(r.outcomes[0].result, Verdict::Done, "{r:?}");
    assert_eq!(proxy.calls("CreateImage"), 1);
    let (images, copies) = made_for(&w, &lone.id).await;
    assert_eq!((images.len(), copies.len()), (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn throttled_run_instances_is_retried_and_a_stop_that_never_takes_does_not_block_the_takeover(
) {
    let (w, proxy, _slack, lone) = setup_lone().await;
    let deps = w.deps(&proxy, &[]).await;
    proxy.fail("RunInstances", 2, Fault::Throttle);
    // The impaired instance never finishes stopping (the emulator holds it in `stopping`).
    w.stuck_stop(&lone.id, true).await;
    let r = invoke(&deps, &event("sns-alarm.json", &[&lone.id]))
        .await
        .unwrap();
    assert_eq!(r.outcomes[0].result, Verdict::Done, "{r:?}");
    assert_eq!(proxy.calls("RunInstances"), 3);
    let (_, copies) = made_for(&w, &lone.id).await;
    assert_eq!(copies.len(), 1);
    // The impaired instance hangs in `stopping`, yet the copy has its address.
    assert_eq!(state(&w, &lone.id).await, "stopping");
    let addr = w
        .ec2
        .describe_addresses()
        .public_ips(&lone.public_ip)
        .send()
        .await
        .unwrap();
    assert_eq!(addr.addresses()[0].instance_id(), copies[0].instance_id());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refusals_are_outcomes_with_reasons() {
    let (w, proxy, slack, lone) = setup_lone().await;
    let deps = w
        .deps(&proxy, &[("AUTOHEAL_TERMINATE_REPLACED", "true")])
        .await;
    // Already replaced once: not again.
    w.tag_instance(&lone.id, "autoheal:replaced-by", "i-0123456789abcdef0")
        .await;
    let r = invoke(&deps, &event("sns-alarm.json", &[&lone.id]))
        .await
        .unwrap();
    assert_eq!(
        summary(&r),
        vec!["launch_replacement duplicate: already replaced by i-0123456789abcdef0"]
    );
    assert_eq!(proxy.calls("CreateImage"), 0);
    assert_eq!(slack.texts().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn terminate_replaced_terminates_the_old_instance() {
    let (w, proxy, _slack, lone) = setup_lone().await;
    let deps = w
        .deps(&proxy, &[("AUTOHEAL_TERMINATE_REPLACED", "true")])
        .await;
    // autoheal never lifts termination protection; this instance is not protected.
    unprotect(&w, &lone.id).await;
    let r = invoke(&deps, &event("sns-alarm.json", &[&lone.id]))
        .await
        .unwrap();
    assert_eq!(r.outcomes[0].result, Verdict::Done, "{r:?}");
    assert!(r.outcomes[0].reason.contains("old instance terminated"));
    assert_eq!(proxy.calls("TerminateInstances"), 1);
    assert!(matches!(
        state(&w, &lone.id).await.as_str(),
        "terminated" | "shutting-down"
    ));
}

/// The backup run, as the tick starts it, takes one backup of `id`: its image id.
async fn take_backup(w: &World, deps: &autoheal::app::Deps, id: &str) -> String {
    let deadline = deps.now_ms() + 60_000;
    let taken = autoheal::pipeline::tick::backups::run(deps, &w.region, &[], deadline)
        .await
        .unwrap();
    assert_eq!(taken.imaged, 1, "{taken:?}");
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
        .images()[0]
        .image_id()
        .unwrap()
        .to_string()
}

/// The deployer's selector the backup tests set (`AUTOHEAL_BACKUP_SELECTOR`).
const SELECTOR: (&str, &str) = ("AUTOHEAL_BACKUP_SELECTOR", "backup-approved=yes");

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn latest_backup_policy_relaunches_from_the_backup_without_imaging() {
    let (w, proxy, _slack, lone) = setup_lone().await;
    w.tag_instance(&lone.id, "autoheal:backup", "24").await;
    w.tag_instance(&lone.id, "backup-approved", "yes").await;
    w.tag_instance(&lone.id, "autoheal:relaunch-from", "latest-backup")
        .await;
    let deps = w.deps(&proxy, &[SELECTOR]).await;
    let backup_id = take_backup(&w, &deps, &lone.id).await;
    // Someone who may image and tag makes another instance's disks its newest "backup".
    let other = w.launch(1, &[]).await.remove(0);
    let planted = w.plant_backup(&lone.id, &other).await;
    proxy.forget();

    let r = invoke(&deps, &event("sns-alarm.json", &[&lone.id]))
        .await
        .unwrap();
    assert_eq!(r.outcomes[0].result, Verdict::Done, "{r:?}");
    assert!(
        r.outcomes[0]
            .reason
            .contains(&format!("relaunched from backup {backup_id}")),
        "{}",
        r.outcomes[0].reason
    );
    assert_eq!(
        proxy.calls("CreateImage"),
        0,
        "no image taken at failure time"
    );
    let copies = w
        .ec2
        .describe_instances()
        .filters(
            Filter::builder()
                .name("tag:autoheal:source-instance")
                .values(&lone.id)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let copy = &copies.reservations()[0].instances()[0];
    assert_eq!(
        copy.image_id(),
        Some(backup_id.as_str()),
        "the backup autoheal recorded, not {planted}"
    );

    // Only a planted "backup": it is not relaunched from; a fresh image is taken.
    let (w, proxy, _slack, lone) = setup_lone().await;
    w.tag_instance(&lone.id, "autoheal:relaunch-from", "latest-backup")
        .await;
    let other = w.launch(1, &[]).await.remove(0);
    let planted = w.plant_backup(&lone.id, &other).await;
    let deps = w.deps(&proxy, &[SELECTOR]).await;
    let r = invoke(&deps, &event("sns-alarm.json", &[&lone.id]))
        .await
        .unwrap();
    assert_eq!(r.outcomes[0].result, Verdict::Done, "{r:?}");
    assert!(
        !r.outcomes[0].reason.contains("relaunched from backup"),
        "{r:?}"
    );
    assert_eq!(proxy.calls("CreateImage"), 1);
    let (_, copies) = made_for(&w, &lone.id).await;
    assert_ne!(copies[0].image_id(), Some(planted.as_str()));
}

/// A standalone instance asking to be relaunched from its latest backup, with one backup
/// the backup run took and recorded, which is a minute old on the function's clock.
/// (world, proxy, slack, instance, the backup's image id, deps with a 1 s maximum age).
async fn with_a_minute_old_backup() -> (World, Proxy, Slack, Lone, String, autoheal::app::Deps) {
    let (w, proxy, slack, lone) = setup_lone().await;
    w.tag_instance(&lone.id, "autoheal:relaunch-from", "latest-backup")
        .await;
    w.tag_instance(&lone.id, "backup-approved", "yes").await;
    let deps = w
        .deps(&proxy, &[("AUTOHEAL_BACKUP_MAX_AGE", "1s"), SELECTOR])
        .await;
    w.tag_instance(&lone.id, "autoheal:backup", "24").await;
    let backup_id = take_backup(&w, &deps, &lone.id).await;
    // The image's age is moto's creation time (real time) to the function's clock: a
    // minute on, however slowly the backup was made.
    deps.clock.advance(60_000);
    proxy.forget();
    (w, proxy, slack, lone, backup_id, deps)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backup_older_than_the_maximum_age_is_not_relaunched_from() {
    let (w, proxy, slack, lone, backup_id, deps) = with_a_minute_old_backup().await;
    let r = invoke(&deps, &event("sns-alarm.json", &[&lone.id]))
        .await
        .unwrap();
    let o = &r.outcomes[0];
    assert_eq!(
        (o.action.as_str(), o.result),
        ("verify", Verdict::Done),
        "{o:?}"
    );
    // A fresh image was taken, and the copy runs from it, not from the backup.
    assert_eq!(proxy.calls("CreateImage"), 1);
    let head = w.head(&lone.id).await.unwrap();
    let fresh = head["image_id"].clone();
    assert_ne!(fresh, backup_id, "{head:?}");
    assert!(!head.contains_key("from_backup"), "{head:?}");
    let (mut images, copies) = made_for(&w, &lone.id).await;
    images.sort();
    let mut expected = vec![fresh.clone(), backup_id.clone()];
    expected.sort();
    assert_eq!(
        images, expected,
        "the backup, and the one image of the incident"
    );
    assert_eq!(copies.len(), 1);
    assert_eq!(
        copies[0].image_id(),
        Some(fresh.as_str()),
        "not {backup_id}"
    );
    let made = w
        .ec2
        .describe_images()
        .image_ids(&fresh)
        .send()
        .await
        .unwrap()
        .images()[0]
        .clone();
    assert_eq!(made.source_instance_id(), Some(lone.id.as_str()));
    assert!(
        made.name()
            .is_some_and(|n| n.starts_with(&format!("autoheal-{}", o.incident.as_deref().unwrap()))),
        "{made:?}"
    );
    // The backup is kept, untouched.
    let backup = w
        .ec2
        .describe_images()
        .image_ids(&backup_id)
        .send()
        .await
        .unwrap();
    assert_eq!(backup.images().len(), 1);
    // The report and the steps told say it was imaged afresh, not relaunched from a backup.
    assert!(!o.reason.contains("relaunched from backup"), "{}", o.reason);
    let texts = slack.texts();
    assert!(
        texts
            .iter()
            .any(|t| t.contains(&format!("imaging without reboot as {fresh}"))),
        "{texts:#?}"
    );
    assert!(
        !texts
            .iter()
            .any(|t| t.contains("relaunching from the latest backup")),
        "{texts:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backup_too_old_to_use_is_named_in_the_report() {
    let (_w, _proxy, slack, lone, backup_id, deps) = with_a_minute_old_backup().await;
    let r = invoke(&deps, &event("sns-alarm.json", &[&lone.id]))
        .await
        .unwrap();
    let o = &r.outcomes[0];
    assert_eq!(o.result, Verdict::Done, "{o:?}");
    assert!(
        o.reason.contains(&backup_id) && o.reason.contains("too old"),
        "the report says the backup was too old: {}",
        o.reason
    );
    assert!(
        slack
            .texts()
            .iter()
            .any(|t| t.contains(&backup_id) && t.contains("too old")),
        "{:#?}",
        slack.texts()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_later_alarm_after_the_relaunch_is_not_a_second_relaunch() {
    let (w, proxy, slack, lone) = setup_lone().await;
    let deps = w.deps(&proxy, &[]).await;
    let r = invoke(&deps, &event("sns-alarm.json", &[&lone.id]))
        .await
        .unwrap();
    assert_eq!(r.outcomes[0].result, Verdict::Done);
    let reports = slack.texts().len();
    // Another metric's alarm on the same (replaced) instance, a little later.
    let system = at_time(
        event("sns-metric-math.json", &[&lone.id]),
        "2026-11-23T03:14:00.000+0000",
    );
    let r = invoke(&deps, &system).await.unwrap();
    assert!(
        summary(&r)[0].starts_with("launch_replacement duplicate: already replaced by i-"),
        "{r:?}"
    );
    assert_eq!(
        (proxy.calls("CreateImage"), proxy.calls("RunInstances")),
        (1, 1)
    );
    assert_eq!(
        slack.texts().len(),
        reports + 1,
        "one report of the refusal"
    );
}

const STATUS_IMPAIRED: &str = r#"<DescribeInstanceStatusResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>x</requestId><instanceStatusSet><item><instanceId>i-0000000000000000a</instanceId><availabilityZone>us-east-1b</availabilityZone><instanceState><code>16</code><name>running</name></instanceState><systemStatus><status>ok</status><details><item><name>reachability</name><status>passed</status></item></details></systemStatus><instanceStatus><status>impaired</status><details><item><name>reachability</name><status>failed</status></item></details></instanceStatus></item></instanceStatusSet></DescribeInstanceStatusResponse>"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_copy_that_never_passes_its_checks_fails_with_the_runbook() {
    let (w, proxy, slack, lone) = setup_lone().await;
    // The copy's instance check stays impaired (EC2's answer once the copy runs).
    proxy.fail_after(
        "RunInstances",
        "DescribeInstanceStatus",
        usize::MAX,
        Fault::Swallow(STATUS_IMPAIRED),
    );
    let deps = w.deps(&proxy, &[("AUTOHEAL_VERIFY_TIMEOUT", "1s")]).await;
    let r = invoke(&deps, &event("sns-alarm.json", &[&lone.id]))
        .await
        .unwrap();
    let o = &r.outcomes[0];
    assert_eq!(
        (o.action.as_str(), o.result),
        ("verify", Verdict::Failed),
        "{o:?}"
    );
    assert!(
        o.reason
            .starts_with("the copy's status checks were not both ok within 1s"),
        "{}",
        o.reason
    );
    assert!(
        o.reason.contains("Manual recovery (docs/RUNBOOK.md)"),
        "{}",
        o.reason
    );
    let head = w.head(&lone.id).await.unwrap();
    assert_eq!(
        (head["status"].as_str(), head["step"].as_str()),
        ("settled", "failed")
    );
    assert!(slack
        .texts()
        .last()
        .unwrap()
        .contains("repair failed (verify)"));
    // Nothing is left open for the tick.
    let tick = invoke(&deps, &event("scheduled-tick.json", &[]))
        .await
        .unwrap();
    assert_eq!(
        summary(&tick)[0],
        "none ignored: Scheduled Event: no repair waiting"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_instance_with_a_root_volume_under_a_customer_managed_key_relaunches() {
    let (w, proxy, _slack) = setup(WorldSpec::empty()).await;
    // The world's customer-managed key (it also encrypts the webhook).
    let key = w.webhook_key.clone();
    let image = w.base_image().await;
    let root = w
        .ec2
        .describe_images()
        .image_ids(&image)
        .send()
        .await
        .unwrap()
        .images()[0]
        .root_device_name()
        .unwrap_or("/dev/xvda")
        .to_string();
    let id = w
        .ec2
        .run_instances()
        .image_id(&image)
        .instance_type(InstanceType::T3Micro)
        .min_count(1)
        .max_count(1)
        .block_device_mappings(
            aws_sdk_ec2::types::BlockDeviceMapping::builder()
                .device_name(&root)
                .ebs(
                    aws_sdk_ec2::types::EbsBlockDevice::builder()
                        .encrypted(true)
                        .kms_key_id(&key)
                        .volume_size(8)
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap()
        .instances()[0]
        .instance_id()
        .unwrap()
        .to_string();
    w.checks(&id, Some("impaired"), Some("impaired")).await;
    let deps = w.deps(&proxy, &[]).await;
    let r = invoke(&deps, &event("sns-alarm.json", &[&id]))
        .await
        .unwrap();
    assert_eq!(
        (r.outcomes[0].action.as_str(), r.outcomes[0].result),
        ("verify", Verdict::Done),
        "{r:?}"
    );
    let (images, copies) = made_for(&w, &id).await;
    assert_eq!((images.len(), copies.len()), (1, 1));
    let copy_id = copies[0].instance_id().unwrap();
    assert_eq!(copies[0].image_id(), Some(images[0].as_str()));
    let under_key = |encrypted: Option<bool>, key_id: Option<&str>| {
        encrypted == Some(true) && key_id.is_some_and(|k| k.contains(&key))
    };
    // The image autoheal made lists a snapshot per volume of the source (the emulator plays
    // CreateImage as EC2 does: docs/emulator.md), each encrypted under the key.
    let made = w
        .ec2
        .describe_images()
        .image_ids(&images[0])
        .send()
        .await
        .unwrap()
        .images()[0]
        .clone();
    let snapshot_ids: Vec<String> = made
        .block_device_mappings()
        .iter()
        .filter_map(|m| m.ebs()?.snapshot_id().map(str::to_string))
        .collect();
    assert_eq!(snapshot_ids.len(), 1, "{made:?}");
    assert!(
        made.block_device_mappings()
            .iter()
            .all(|m| m.ebs().and_then(|e| e.encrypted()) == Some(true)),
        "{made:?}"
    );
    let snapshots = w
        .ec2
        .describe_snapshots()
        .set_snapshot_ids(Some(snapshot_ids.clone()))
        .send()
        .await
        .unwrap();
    assert_eq!(snapshots.snapshots().len(), 1);
    for snapshot in snapshots.snapshots() {
        assert!(
            under_key(snapshot.encrypted(), snapshot.kms_key_id()),
            "the image's snapshot is under the key: {snapshot:?}"
        );
    }
    // The copy's volumes, as EC2 reports them after the relaunch: made from that snapshot,
    // under the same key.
    let copy_volumes = w
        .ec2
        .describe_volumes()
        .filters(
            Filter::builder()
                .name("attachment.instance-id")
                .values(copy_id)
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(copy_volumes.volumes().len(), 1, "{copy_volumes:?}");
    for volume in copy_volumes.volumes() {
        assert!(
            under_key(volume.encrypted(), volume.kms_key_id()),
            "the copy's volume is under the key: {volume:?}"
        );
        assert_eq!(
            volume.snapshot_id(),
            Some(snapshot_ids[0].as_str()),
            "{volume:?}"
        );
        assert_eq!(
            volume.attachments()[0].device(),
            Some(root.as_str()),
            "{volume:?}"
        );
    }
}

/// The incident an alarm received now opens: its time is autoheal's (the fixture's own date
/// is long past, so it is not trusted as a clock).
fn incident_received_now(deps: &autoheal::app::Deps, id: &str) -> String {
    let now = chrono::DateTime::from_timestamp_millis(deps.now_ms()).unwrap();
    autoheal::rules::incident::incident_id(id, now)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crash_after_run_instances_ends_with_exactly_one_copy() {
    let (w, proxy, _slack, lone) = setup_lone().await;
    let deps = w.deps(&proxy, &[]).await;
    let alarm = event("sns-alarm.json", &[&lone.id]);
    // Every ledger write after RunInstances fails, as if the process died right after it:
    // the copy runs, the ledger knows only the launch token recorded before the call.
    proxy.fail_after("RunInstances", "PutItem", 3, Fault::ServerError);
    let stingy = without_ledger_retries(&w, &proxy, &deps.clock).await;
    let payload: serde_json::Value = serde_json::from_slice(&alarm).unwrap();
    let err = autoheal::pipeline::handle(&stingy, &payload, &invocation(deadline(&stingy)))
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err}");
    deps.clock
        .advance(30_000 + autoheal::pipeline::LEASE_MARGIN_MS);
    let head = w.head(&lone.id).await.unwrap();
    assert!(head.contains_key("launch_token"), "{head:?}");
    assert!(!head.contains_key("replacement_id"), "{head:?}");
    // The retry finds the copy by its token: one copy, recovered.
    let r = invoke(&deps, &alarm).await.unwrap();
    assert_eq!(r.outcomes[0].result, Verdict::Done, "{r:?}");
    let (_, copies) = made_for(&w, &lone.id).await;
    assert_eq!(copies.len(), 1, "exactly one copy");
    assert_eq!(
        copies[0].client_token(),
        Some(w.head(&lone.id).await.unwrap()["launch_token"].as_str())
    );
    // The token is the ledger's secret: no report names it.
    let token = w.head(&lone.id).await.unwrap()["launch_token"].clone();
    assert!(!serde_json::to_string(&r).unwrap().contains(&token));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_planted_copy_and_a_planted_image_are_left_alone_and_named() {
    let (w, proxy, slack, lone) = setup_lone().await;
    let deps = w.deps(&proxy, &[]).await;
    let incident = incident_received_now(&deps, &lone.id);
    // Someone who read an earlier report plants an instance and an image as the incident's.
    let planted = w
        .launch(
            1,
            &[
                ("autoheal:incident", incident.as_str()),
                ("autoheal:source-instance", lone.id.as_str()),
            ],
        )
        .await
        .remove(0);
    let name = format!("autoheal-{incident}");
    let image = w
        .plant_image(&planted, &name, ("autoheal:incident", &incident))
        .await;

    let r = invoke(&deps, &event("sns-alarm.json", &[&lone.id]))
        .await
        .unwrap();
    let o = &r.outcomes[0];
    assert_eq!(
        (o.result, o.incident.as_deref()),
        (Verdict::Done, Some(incident.as_str())),
        "{o:?}"
    );
    let head = w.head(&lone.id).await.unwrap();
    let copy = head["replacement_id"].clone();
    assert_ne!(copy, planted, "the planted instance is not the copy");
    assert_ne!(
        head["image_id"], image,
        "the planted image is not autoheal's"
    );
    // The Elastic IP went to autoheal's copy, not to the planted instance.
    let addr = w
        .ec2
        .describe_addresses()
        .public_ips(&lone.public_ip)
        .send()
        .await
        .unwrap();
    assert_eq!(addr.addresses()[0].instance_id(), Some(copy.as_str()));
    // Both are named as suspicious in the report, and left as they were.
    for stranger in [&planted, &image] {
        assert!(o.reason.contains(stranger.as_str()), "{}", o.reason);
    }
    assert!(o.reason.contains("suspicious, left alone"), "{}", o.reason);
    assert!(slack.texts().last().unwrap().contains(&planted));
    assert_eq!(state(&w, &planted).await, "running");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn autoheal_off_during_the_relaunch_stops_it_before_the_copy() {
    let (w, proxy, slack, lone) = setup_lone().await;
    let deps = w.deps(&proxy, &[]).await;
    w.pending_images(&lone.id, true).await;
    let alarm = event("sns-alarm.json", &[&lone.id]);
    let r = invoke(&deps, &alarm).await.unwrap();
    assert_eq!(r.outcomes[0].result, Verdict::InProgress, "{r:?}");
    assert_eq!(proxy.calls("CreateImage"), 1);
    // Someone turns autoheal off while the image is pending; then the image is ready.
    w.tag_instance(&lone.id, "autoheal", "off").await;
    w.release_images(&lone.id).await;
    deps.clock.advance(60_000);
    let ticked = summary(
        &invoke(&deps, &event("scheduled-tick.json", &[]))
            .await
            .unwrap(),
    );
    assert!(
        ticked.iter().any(|l| l.starts_with(
            "create_image ignored: opted out (tag autoheal=off on the instance) during the relaunch: stopped there, nothing more done (image ami-"
        )),
        "{ticked:?}"
    );
    for action in [
        "RunInstances",
        "AssociateAddress",
        "StopInstances",
        "TerminateInstances",
    ] {
        assert_eq!(proxy.calls(action), 0, "{action}");
    }
    assert_eq!(state(&w, &lone.id).await, "running");
    assert!(slack.texts().last().unwrap().contains("opted out"));
    assert!(open_index(&w).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn terminate_replaced_waits_for_the_copy_to_be_verified() {
    let (w, proxy, _slack, lone) = setup_lone().await;
    // The copy's instance check stays impaired: it is never verified.
    proxy.fail_after(
        "RunInstances",
        "DescribeInstanceStatus",
        usize::MAX,
        Fault::Swallow(STATUS_IMPAIRED),
    );
    let deps = w
        .deps(
            &proxy,
            &[
                ("AUTOHEAL_VERIFY_TIMEOUT", "1s"),
                ("AUTOHEAL_TERMINATE_REPLACED", "true"),
            ],
        )
        .await;
    unprotect(&w, &lone.id).await;
    let r = invoke(&deps, &event("sns-alarm.json", &[&lone.id]))
        .await
        .unwrap();
    assert_eq!(r.outcomes[0].result, Verdict::Failed, "{r:?}");
    assert_eq!(proxy.calls("TerminateInstances"), 0);
    assert!(matches!(
        state(&w, &lone.id).await.as_str(),
        "stopped" | "stopping"
    ));
}

const STATUS_INITIALIZING: &str = r#"<DescribeInstanceStatusResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>x</requestId><instanceStatusSet><item><instanceId>i-0000000000000000a</instanceId><availabilityZone>us-east-1b</availabilityZone><instanceState><code>16</code><name>running</name></instanceState><systemStatus><status>initializing</status><details><item><name>reachability</name><status>initializing</status></item></details></systemStatus><instanceStatus><status>initializing</status><details><item><name>reachability</name><status>initializing</status></item></details></instanceStatus></item></instanceStatusSet></DescribeInstanceStatusResponse>"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_source_still_stopping_a_minute_into_verification_is_stopped_by_force() {
    let (w, proxy, slack, lone) = setup_lone().await;
    // The impaired instance's stop hangs in `stopping`; a forced stop ends it, as it
    // usually does on AWS (the emulator's `force_ends`).
    control(
        "stuck-stop",
        serde_json::json!({"instance_id": lone.id, "stuck": true, "force_ends": true}),
    )
    .await;
    // The copy's checks stay `initializing` (EC2's answer for a fresh instance) until the
    // test lets them pass.
    proxy.fail_after(
        "RunInstances",
        "DescribeInstanceStatus",
        usize::MAX,
        Fault::Swallow(STATUS_INITIALIZING),
    );
    let deps = w.deps(&proxy, &[]).await;
    let tick = || async {
        invoke(&deps, &event("scheduled-tick.json", &[]))
            .await
            .unwrap()
    };
    let stops = || proxy.bodies("StopInstances");

    // The alarm's invocation images, launches, hands over and waits on the copy's checks
    // until its time runs out: ~20 s of the function's clock, less than a minute.
    let r = invoke(&deps, &event("sns-alarm.json", &[&lone.id]))
        .await
        .unwrap();
    assert_eq!(
        summary(&r),
        vec!["verify in_progress: verifying: waiting for the copy's status checks"]
    );
    let head = w.head(&lone.id).await.unwrap();
    assert_eq!(head["step"], "verifying", "{head:?}");
    let copy = head["replacement_id"].clone();
    assert_eq!(stops().len(), 1, "one plain stop at the takeover");
    assert!(!stops()[0].contains("Force=true"), "{}", stops()[0]);
    assert_eq!(state(&w, &lone.id).await, "stopping");

    // A tick inside the minute: still waiting, no forced stop.
    let r = tick().await;
    assert_eq!(
        summary(&r)[0],
        "verify in_progress: verifying: waiting for the copy's status checks"
    );
    assert_eq!(stops().len(), 1);
    assert_eq!(state(&w, &lone.id).await, "stopping");

    // A minute into verification the source is still `stopping`: the next tick stops it by
    // force, and EC2 reports it stopped. The copy is still being verified.
    // (The relaunch's FORCE_STOP_AFTER_MS: a minute.)
    deps.clock.advance(60_000);
    let r = tick().await;
    assert_eq!(
        summary(&r)[0],
        "verify in_progress: verifying: waiting for the copy's status checks"
    );
    assert_eq!(stops().len(), 2, "{:?}", stops());
    assert!(stops()[1].contains("Force=true"), "{}", stops()[1]);
    assert!(stops()[1].contains(&lone.id), "{}", stops()[1]);
    assert_eq!(state(&w, &lone.id).await, "stopped");
    assert_eq!(state(&w, &copy).await, "running");
    assert_eq!(w.head(&lone.id).await.unwrap()["step"], "verifying");

    // Once stopped it is not stopped again; the copy passes its checks and is verified.
    let r = tick().await;
    assert_eq!(stops().len(), 2);
    assert!(summary(&r)[0].starts_with("verify in_progress"), "{r:?}");
    proxy.heal_all();
    let r = tick().await;
    assert!(
        summary(&r)[0].starts_with(&format!("verify done: recovered: copy {copy} runs")),
        "{:?}",
        summary(&r)
    );
    assert_eq!(stops().len(), 2);
    assert_eq!(state(&w, &lone.id).await, "stopped");
    let head = w.head(&lone.id).await.unwrap();
    assert_eq!(
        (head["step"].as_str(), head["result"].as_str()),
        ("recovered", "done")
    );
    assert!(slack.texts().last().unwrap().contains("recovered: copy"));
    assert_eq!(proxy.calls("TerminateInstances"), 0);
}

/// A standalone t3.micro in `us-east-1c` with no subnet (its zone is its own placement),
/// every setting a copy should keep set away from EC2's default, impaired. Its id.
async fn unusual_instance(w: &World) -> String {
    let id = w
        .ec2
        .run_instances()
        .image_id(w.base_image().await)
        .instance_type(InstanceType::T3Micro)
        .min_count(1)
        .max_count(1)
        .placement(
            aws_sdk_ec2::types::Placement::builder()
                .availability_zone("us-east-1c")
                .tenancy(aws_sdk_ec2::types::Tenancy::Dedicated)
                .build(),
        )
        .ebs_optimized(true)
        .monitoring(
            aws_sdk_ec2::types::RunInstancesMonitoringEnabled::builder()
                .enabled(true)
                .build(),
        )
        .instance_initiated_shutdown_behavior(aws_sdk_ec2::types::ShutdownBehavior::Terminate)
        .disable_api_termination(true)
        // T3's default is unlimited.
        .credit_specification(
            aws_sdk_ec2::types::CreditSpecificationRequest::builder()
                .cpu_credits("standard")
                .build(),
        )
        .send()
        .await
        .unwrap()
        .instances()[0]
        .instance_id()
        .unwrap()
        .to_string();
    w.checks(&id, Some("impaired"), Some("impaired")).await;
    id
}

/// What EC2 reports of an instance's settings a copy should keep, each as text.
async fn settings(w: &World, id: &str) -> std::collections::BTreeMap<&'static str, String> {
    use aws_sdk_ec2::types::InstanceAttributeName as A;
    let i = w
        .ec2
        .describe_instances()
        .instance_ids(id)
        .send()
        .await
        .unwrap()
        .reservations()[0]
        .instances()[0]
        .clone();
    let placement = i.placement().cloned().unwrap();
    let shutdown = attribute(w, id, A::InstanceInitiatedShutdownBehavior).await;
    let termination = attribute(w, id, A::DisableApiTermination).await;
    let credits = w
        .ec2
        .describe_instance_credit_specifications()
        .instance_ids(id)
        .send()
        .await
        .unwrap();
    [
        (
            "availability zone",
            placement.availability_zone().map(str::to_string),
        ),
        (
            "tenancy",
            placement.tenancy().map(|t| t.as_str().to_string()),
        ),
        ("EBS-optimised", i.ebs_optimized().map(|b| b.to_string())),
        (
            "detailed monitoring",
            i.monitoring()
                .and_then(|m| m.state())
                .map(|s| s.as_str().to_string()),
        ),
        (
            "shutdown behaviour",
            shutdown
                .instance_initiated_shutdown_behavior()
                .and_then(|v| v.value())
                .map(str::to_string),
        ),
        (
            "termination protection",
            termination
                .disable_api_termination()
                .and_then(|v| v.value())
                .map(|b| b.to_string()),
        ),
        (
            "CPU credits",
            credits
                .instance_credit_specifications()
                .first()
                .and_then(|c| c.cpu_credits())
                .map(str::to_string),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k, v.unwrap_or_else(|| "(none)".into())))
    .collect()
}

async fn stop_protected(w: &World, id: &str) -> Option<bool> {
    attribute(
        w,
        id,
        aws_sdk_ec2::types::InstanceAttributeName::DisableApiStop,
    )
    .await
    .disable_api_stop()
    .and_then(|v| v.value())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_copy_keeps_the_placement_and_settings_of_the_instance_it_replaces() {
    let (w, proxy, _slack) = setup(WorldSpec::empty()).await;
    let id = unusual_instance(&w).await;
    let expected: std::collections::BTreeMap<&str, String> = [
        ("availability zone", "us-east-1c"),
        ("tenancy", "dedicated"),
        ("EBS-optimised", "true"),
        ("detailed monitoring", "enabled"),
        ("shutdown behaviour", "terminate"),
        ("termination protection", "true"),
        ("CPU credits", "standard"),
    ]
    .into_iter()
    .map(|(k, v)| (k, v.to_string()))
    .collect();
    // The source as EC2 reports it: none of these is EC2's default.
    assert_eq!(settings(&w, &id).await, expected);
    let deps = w.deps(&proxy, &[]).await;
    let r = invoke(&deps, &event("sns-alarm.json", &[&id]))
        .await
        .unwrap();
    assert_eq!(
        (r.outcomes[0].action.as_str(), r.outcomes[0].result),
        ("verify", Verdict::Done),
        "{r:?}"
    );
    let (_, copies) = made_for(&w, &id).await;
    assert_eq!(copies.len(), 1);
    let copy = copies[0].instance_id().unwrap();
    // The copy, as EC2 reports it after the relaunch: every setting kept.
    assert_eq!(settings(&w, copy).await, expected, "the copy {copy}");
    assert_eq!(stop_protected(&w, copy).await, Some(false));
    assert_eq!(state(&w, copy).await, "running");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stop_protected_instance_gets_no_copy() {
    let (w, proxy, _slack) = setup(WorldSpec::empty()).await;
    let id = w.launch(1, &[]).await.remove(0);
    w.ec2
        .modify_instance_attribute()
        .instance_id(&id)
        .disable_api_stop(
            aws_sdk_ec2::types::AttributeBooleanValue::builder()
                .value(true)
                .build(),
        )
        .send()
        .await
        .unwrap();
    w.checks(&id, Some("impaired"), Some("impaired")).await;
    assert_eq!(stop_protected(&w, &id).await, Some(true));
    let deps = w.deps(&proxy, &[]).await;
    let r = invoke(&deps, &event("sns-alarm.json", &[&id]))
        .await
        .unwrap();
    // EC2 would refuse to stop the source, so a copy could never take its place: none is
    // launched, nothing is moved, the protection is left as it is, and people are told.
    let (images, copies) = made_for(&w, &id).await;
    assert!(
        copies.is_empty(),
        "no copy beside a source that cannot stop: {r:?}"
    );
    assert_eq!(
        images.len(),
        1,
        "the image taken without reboot is kept: {r:?}"
    );
    assert_eq!(state(&w, &id).await, "running");
    assert_eq!(stop_protected(&w, &id).await, Some(true));
    assert_eq!(proxy.calls("RunInstances"), 0);
    assert_eq!(proxy.calls("AssociateAddress"), 0);
    assert_eq!(proxy.calls("StopInstances"), 0);
    let o = &r.outcomes[0];
    assert_eq!(o.result, Verdict::Held, "{o:?}");
    assert!(
        o.reason
            .starts_with("stop protection is on (DisableApiStop)")
            && o.reason.contains("docs/RUNBOOK.md")
            && o.reason.contains("kept"),
        "{}",
        o.reason
    );
    let head = w.head(&id).await.unwrap();
    assert_eq!(
        (head["status"].as_str(), head["result"].as_str()),
        ("settled", "held"),
        "settled for people: {head:?}"
    );
}
