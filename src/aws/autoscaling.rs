//! Auto Scaling: group membership (observe) and marking an instance Unhealthy (act).

use crate::decide::GroupFacts;
use crate::error::Error;
use aws_sdk_autoscaling::types::Filter;
use std::collections::BTreeMap;

/// The group the instance belongs to, without the group's tags; None when in no group.
pub async fn membership(
    asg: &aws_sdk_autoscaling::Client,
    instance_id: &str,
) -> Result<Option<GroupFacts>, Error> {
    let out = asg
        .describe_auto_scaling_instances()
        .instance_ids(instance_id)
        .send()
        .await
        .map_err(|e| Error::from_sdk("autoscaling:DescribeAutoScalingInstances", e))?;
    Ok(out
        .auto_scaling_instances()
        .iter()
        .find(|i| i.instance_id() == Some(instance_id))
        .map(|i| GroupFacts {
            name: i.auto_scaling_group_name().unwrap_or_default().to_string(),
            health: i.health_status().unwrap_or_default().to_string(),
            lifecycle: i.lifecycle_state().unwrap_or_default().to_string(),
            tags: BTreeMap::new(),
        }))
}

pub async fn group_tags(
    asg: &aws_sdk_autoscaling::Client,
    group: &str,
) -> Result<BTreeMap<String, String>, Error> {
    // Only the tag autoheal reads, not the whole group (which lists every instance).
    let out = asg
        .describe_tags()
        .filters(
            Filter::builder()
                .name("auto-scaling-group")
                .values(group)
                .build(),
        )
        .filters(
            Filter::builder()
                .name("key")
                .values(crate::policy::MODE_TAG)
                .build(),
        )
        .send()
        .await
        .map_err(|e| Error::from_sdk("autoscaling:DescribeTags", e))?;
    Ok(out
        .tags()
        .iter()
        .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or("").to_string())))
        .collect())
}

/// Auto Scaling then terminates and replaces the instance at once (grace period ignored).
pub async fn mark_unhealthy(
    asg: &aws_sdk_autoscaling::Client,
    instance_id: &str,
) -> Result<(), Error> {
    asg.set_instance_health()
        .instance_id(instance_id)
        .health_status("Unhealthy")
        .should_respect_grace_period(false)
        .send()
        .await
        .map_err(|e| Error::from_sdk("autoscaling:SetInstanceHealth", e))?;
    Ok(())
}
