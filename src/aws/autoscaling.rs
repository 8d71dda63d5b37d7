//! Auto Scaling: group membership (observe) and marking an instance Unhealthy (act).

use crate::error::Error;
use crate::model::facts::GroupFacts;
use aws_sdk_autoscaling::types::Filter;
use std::collections::{BTreeMap, HashMap};

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

/// The group's desired capacity and members (None: no such group), to follow a marked
/// member's replacement.
pub async fn group(
    asg: &aws_sdk_autoscaling::Client,
    group: &str,
) -> Result<Option<crate::rules::replacement::Group>, Error> {
    let out = asg
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(group)
        .send()
        .await
        .map_err(|e| Error::from_sdk("autoscaling:DescribeAutoScalingGroups", e))?;
    Ok(out
        .auto_scaling_groups()
        .iter()
        .find(|g| g.auto_scaling_group_name() == Some(group))
        .map(|g| crate::rules::replacement::Group {
            desired: g.desired_capacity().unwrap_or(0),
            members: g
                .instances()
                .iter()
                .map(|i| crate::rules::replacement::Member {
                    instance_id: i.instance_id().unwrap_or_default().to_string(),
                    lifecycle: i
                        .lifecycle_state()
                        .map(|l| l.as_str().to_string())
                        .unwrap_or_default(),
                    health: i.health_status().unwrap_or_default().to_string(),
                })
                .collect(),
        }))
}

/// The `autoheal` tag of every group that has one (few do), by group name. Asked without
/// knowing the instance's group, so it runs alongside the other reads instead of after them.
pub async fn mode_tags(
    asg: &aws_sdk_autoscaling::Client,
) -> Result<HashMap<String, String>, Error> {
    let mut pages = asg
        .describe_tags()
        .filters(
            Filter::builder()
                .name("key")
                .values(crate::rules::policy::MODE_TAG)
                .build(),
        )
        .into_paginator()
        .send();
    let mut tags = HashMap::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| Error::from_sdk("autoscaling:DescribeTags", e))?;
        for t in page.tags() {
            if let (Some(group), Some(key)) = (t.resource_id(), t.key()) {
                if key == crate::rules::policy::MODE_TAG {
                    tags.insert(group.to_string(), t.value().unwrap_or("").to_string());
                }
            }
        }
    }
    Ok(tags)
}

/// Every group of the region with its members and their lifecycle states, all pages.
pub async fn groups(
    asg: &aws_sdk_autoscaling::Client,
) -> Result<Vec<crate::rules::alarms::Members>, Error> {
    let mut pages = asg
        .describe_auto_scaling_groups()
        .max_records(100)
        .into_paginator()
        .send();
    let mut out = vec![];
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| Error::from_sdk("autoscaling:DescribeAutoScalingGroups", e))?;
        out.extend(page.auto_scaling_groups().iter().map(|g| {
            crate::rules::alarms::Members {
                group: g.auto_scaling_group_name().unwrap_or_default().to_string(),
                members: g
                    .instances()
                    .iter()
                    .filter_map(|i| {
                        Some((
                            i.instance_id()?.to_string(),
                            i.lifecycle_state().map_or("", |l| l.as_str()).to_string(),
                        ))
                    })
                    .collect(),
            }
        }));
    }
    Ok(out)
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
