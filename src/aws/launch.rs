//! EC2: read the impaired instance's environment and launch its copy from the image.

use super::image::tag_spec;
use crate::error::Error;
use crate::rules::relaunch::spec::{self, Metadata, Source};
use aws_sdk_ec2::types::{
    CreditSpecificationRequest, Filter, HttpTokensState, IamInstanceProfileSpecification,
    InstanceAttributeName, InstanceMetadataEndpointState, InstanceMetadataOptionsRequest,
    InstanceMetadataTagsState, InstanceType, Placement, ResourceType,
    RunInstancesMonitoringEnabled, ShutdownBehavior, Tenancy,
};

fn is_burstable(instance_type: &str) -> bool {
    instance_type.starts_with('t')
}

pub async fn describe_source(
    ec2: &aws_sdk_ec2::Client,
    instance_id: &str,
) -> Result<Source, Error> {
    let out = ec2
        .describe_instances()
        .instance_ids(instance_id)
        .send()
        .await
        .map_err(|e| Error::from_sdk("ec2:DescribeInstances", e))?;
    let Some(i) = out.reservations().iter().flat_map(|r| r.instances()).next() else {
        return Err(Error::Permanent {
            op: "ec2:DescribeInstances",
            code: None,
            detail: format!("{instance_id} is gone"),
        });
    };
    let instance_type = i
        .instance_type()
        .map(|t| t.as_str().to_string())
        .unwrap_or_default();
    let a = attributes(ec2, instance_id, &instance_type).await?;
    let placement = i.placement();
    Ok(Source {
        instance_id: instance_id.to_string(),
        instance_type,
        subnet_id: i.subnet_id().map(str::to_string),
        availability_zone: placement
            .and_then(|p| p.availability_zone())
            .map(str::to_string),
        security_group_ids: i
            .security_groups()
            .iter()
            .filter_map(|g| g.group_id())
            .map(str::to_string)
            .collect(),
        iam_instance_profile_arn: i
            .iam_instance_profile()
            .and_then(|p| p.arn())
            .map(str::to_string),
        key_name: i.key_name().map(str::to_string),
        user_data: a.user_data,
        ebs_optimized: i.ebs_optimized().unwrap_or(false),
        detailed_monitoring: i
            .monitoring()
            .and_then(|m| m.state())
            .is_some_and(|s| matches!(s.as_str(), "enabled" | "pending")),
        metadata: i.metadata_options().map(|m| Metadata {
            http_tokens: m.http_tokens().map(|v| v.as_str().to_string()),
            http_endpoint: m.http_endpoint().map(|v| v.as_str().to_string()),
            hop_limit: m.http_put_response_hop_limit(),
            instance_metadata_tags: m.instance_metadata_tags().map(|v| v.as_str().to_string()),
        }),
        tenancy: placement
            .and_then(|p| p.tenancy())
            .map(|t| t.as_str().to_string()),
        placement_group: placement
            .and_then(|p| p.group_name())
            .filter(|g| !g.is_empty())
            .map(str::to_string),
        disable_api_termination: a.termination,
        disable_api_stop: a.stop_protection,
        shutdown_behavior: a.shutdown,
        cpu_credits: a.cpu_credits,
        tags: i
            .tags()
            .iter()
            .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or("").to_string())))
            .collect(),
        private_ip: i.private_ip_address().map(str::to_string),
        network_interfaces: i.network_interfaces().len(),
        instance_store_volumes: 0,
    })
}

/// What `DescribeInstances` does not say of the source: its attributes and CPU credits.
struct Attributes {
    user_data: Option<String>,
    termination: bool,
    stop_protection: bool,
    shutdown: Option<String>,
    cpu_credits: Option<String>,
}

async fn attributes(
    ec2: &aws_sdk_ec2::Client,
    instance_id: &str,
    instance_type: &str,
) -> Result<Attributes, Error> {
    let attribute = |name: InstanceAttributeName| {
        ec2.describe_instance_attribute()
            .instance_id(instance_id)
            .attribute(name)
            .send()
    };
    let (user_data, termination, shutdown) = tokio::try_join!(
        attribute(InstanceAttributeName::UserData),
        attribute(InstanceAttributeName::DisableApiTermination),
        attribute(InstanceAttributeName::InstanceInitiatedShutdownBehavior),
    )
    .map_err(|e| Error::from_sdk("ec2:DescribeInstanceAttribute", e))?;
    // Stop protection is newer than the rest; where it cannot be read, it is reported off.
    let stop_protection = attribute(InstanceAttributeName::DisableApiStop)
        .await
        .ok()
        .and_then(|a| a.disable_api_stop().and_then(|v| v.value()))
        .unwrap_or(false);
    let cpu_credits = if is_burstable(instance_type) {
        ec2.describe_instance_credit_specifications()
            .instance_ids(instance_id)
            .send()
            .await
            .map_err(|e| Error::from_sdk("ec2:DescribeInstanceCreditSpecifications", e))?
            .instance_credit_specifications()
            .first()
            .and_then(|c| c.cpu_credits())
            .map(str::to_string)
    } else {
        None
    };
    Ok(Attributes {
        user_data: user_data
            .user_data()
            .and_then(|v| v.value())
            .map(str::to_string),
        termination: termination
            .disable_api_termination()
            .and_then(|v| v.value())
            .unwrap_or(false),
        stop_protection,
        shutdown: shutdown
            .instance_initiated_shutdown_behavior()
            .and_then(|v| v.value())
            .map(str::to_string),
        cpu_credits,
    })
}

/// (instance id, state) of the instance launched with `token` (the copy's recorded
/// `ClientToken`), whatever its tags say.
pub async fn find_by_token(
    ec2: &aws_sdk_ec2::Client,
    token: &str,
) -> Result<Option<(String, String)>, Error> {
    let out = ec2
        .describe_instances()
        .filters(Filter::builder().name("client-token").values(token).build())
        .send()
        .await
        .map_err(|e| Error::from_sdk("ec2:DescribeInstances", e))?;
    Ok(out
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .find_map(|i| {
            Some((
                i.instance_id()?.to_string(),
                i.state()?.name()?.as_str().to_string(),
            ))
        }))
}

/// Instances and images that carry this incident's tag but are not `ours` (the copy and the
/// image autoheal recorded): someone else wrote the tag. Left alone, and named in the report.
pub async fn strangers(
    ec2: &aws_sdk_ec2::Client,
    incident_id: &str,
    ours: &[&str],
) -> Result<Vec<String>, Error> {
    let tagged = || {
        Filter::builder()
            .name(format!("tag:{}", crate::model::tags::INCIDENT_TAG))
            .values(incident_id)
            .build()
    };
    let (instances, images) = tokio::join!(
        ec2.describe_instances().filters(tagged()).send(),
        ec2.describe_images()
            .owners("self")
            .filters(tagged())
            .send(),
    );
    let instances = instances.map_err(|e| Error::from_sdk("ec2:DescribeInstances", e))?;
    let images = images.map_err(|e| Error::from_sdk("ec2:DescribeImages", e))?;
    let found = instances
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .filter_map(|i| i.instance_id())
        .chain(images.images().iter().filter_map(|i| i.image_id()));
    Ok(found
        .filter(|id| !ours.contains(id))
        .map(str::to_string)
        .collect())
}

/// The copy's instance metadata options, as the source's.
fn metadata_options(m: &Metadata) -> InstanceMetadataOptionsRequest {
    InstanceMetadataOptionsRequest::builder()
        .set_http_tokens(m.http_tokens.as_deref().map(HttpTokensState::from))
        .set_http_endpoint(
            m.http_endpoint
                .as_deref()
                .map(InstanceMetadataEndpointState::from),
        )
        .set_http_put_response_hop_limit(m.hop_limit)
        .set_instance_metadata_tags(
            m.instance_metadata_tags
                .as_deref()
                .map(InstanceMetadataTagsState::from),
        )
        .build()
}

/// Launches the copy with the recorded, unguessable `token` as its `ClientToken`: EC2 returns
/// the same instance to a retry, so a crash after the call still ends with one copy.
pub async fn run_copy(
    ec2: &aws_sdk_ec2::Client,
    source: &Source,
    image_id: &str,
    incident_id: &str,
    token: &str,
) -> Result<String, Error> {
    let tags = spec::copy_tags(source, incident_id);
    let mut run = ec2
        .run_instances()
        .image_id(image_id)
        .instance_type(InstanceType::from(source.instance_type.as_str()))
        .min_count(1)
        .max_count(1)
        .client_token(token)
        .set_subnet_id(source.subnet_id.clone())
        .set_security_group_ids(Some(source.security_group_ids.clone()).filter(|g| !g.is_empty()))
        .set_key_name(source.key_name.clone())
        .set_user_data(source.user_data.clone())
        .ebs_optimized(source.ebs_optimized)
        .monitoring(
            RunInstancesMonitoringEnabled::builder()
                .enabled(source.detailed_monitoring)
                .build(),
        )
        .disable_api_termination(source.disable_api_termination)
        .disable_api_stop(source.disable_api_stop)
        .set_instance_initiated_shutdown_behavior(
            source
                .shutdown_behavior
                .as_deref()
                .map(ShutdownBehavior::from),
        )
        .placement(
            Placement::builder()
                .set_availability_zone(
                    source
                        .availability_zone
                        .clone()
                        .filter(|_| source.subnet_id.is_none()),
                )
                .set_tenancy(source.tenancy.as_deref().map(Tenancy::from))
                .set_group_name(source.placement_group.clone())
                .build(),
        )
        .tag_specifications(tag_spec(ResourceType::Instance, &tags))
        .tag_specifications(tag_spec(
            ResourceType::Volume,
            &spec::bookkeeping_tags(&source.instance_id, incident_id),
        ));
    if let Some(arn) = &source.iam_instance_profile_arn {
        run = run.iam_instance_profile(IamInstanceProfileSpecification::builder().arn(arn).build());
    }
    if let Some(m) = &source.metadata {
        run = run.metadata_options(metadata_options(m));
    }
    if let Some(credits) = &source.cpu_credits {
        run = run.credit_specification(
            CreditSpecificationRequest::builder()
                .cpu_credits(credits)
                .build(),
        );
    }
    let out = run
        .send()
        .await
        .map_err(|e| Error::from_sdk("ec2:RunInstances", e))?;
    out.instances()
        .first()
        .and_then(|i| i.instance_id())
        .map(str::to_string)
        .ok_or_else(|| Error::Permanent {
            op: "ec2:RunInstances",
            code: None,
            detail: "no instance in the answer".into(),
        })
}
