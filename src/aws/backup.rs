//! EC2 reads and writes for periodic backup images (planned in `crate::rules::backup`).

use super::image::tag_spec;
use crate::error::Error;
use crate::model::tags::{INCIDENT_TAG, SOURCE_TAG};
use crate::rules::backup::{Backup, Selector, Tagged, BACKUP_OF_TAG, BACKUP_TAG, KEEP_TAG};
use aws_sdk_ec2::error::ProvideErrorMetadata;
use aws_sdk_ec2::types::{Filter, ResourceType};

/// Every running or stopped instance tagged for backups, all pages; `selected` when it also
/// carries the deployer's selector tag (never without a selector).
pub async fn tagged_instances(
    ec2: &aws_sdk_ec2::Client,
    selector: Option<&Selector>,
) -> Result<Vec<Tagged>, Error> {
    let mut pages = ec2
        .describe_instances()
        .filters(Filter::builder().name("tag-key").values(BACKUP_TAG).build())
        .filters(
            Filter::builder()
                .name("instance-state-name")
                .values("running")
                .values("stopped")
                .build(),
        )
        .max_results(1000)
        .into_paginator()
        .send();
    let mut tagged = vec![];
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| Error::from_sdk("ec2:DescribeInstances", e))?;
        for i in page.reservations().iter().flat_map(|r| r.instances()) {
            let value = |k: &str| {
                i.tags()
                    .iter()
                    .find(|t| t.key() == Some(k))
                    .and_then(|t| t.value())
            };
            let tag = |k: &str| value(k).map(str::to_string);
            if let (Some(id), Some(every)) = (i.instance_id(), tag(BACKUP_TAG)) {
                tagged.push(Tagged {
                    instance_id: id.to_string(),
                    backup_tag: every,
                    keep_tag: tag(KEEP_TAG),
                    mode_tag: tag(crate::rules::policy::MODE_TAG),
                    replaced_by: tag(crate::model::tags::REPLACED_BY_TAG),
                    selected: selector.is_some_and(|s| s.selects(value)),
                });
            }
        }
    }
    Ok(tagged)
}

/// Every image of this account tagged as a backup (by anyone), all pages.
pub async fn backups(ec2: &aws_sdk_ec2::Client) -> Result<Vec<Backup>, Error> {
    let mut pages = ec2
        .describe_images()
        .owners("self")
        .filters(
            Filter::builder()
                .name("tag-key")
                .values(BACKUP_OF_TAG)
                .build(),
        )
        .max_results(1000)
        .into_paginator()
        .send();
    let mut backups = vec![];
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| Error::from_sdk("ec2:DescribeImages", e))?;
        for i in page.images() {
            let source = i
                .tags()
                .iter()
                .find(|t| t.key() == Some(BACKUP_OF_TAG))
                .and_then(|t| t.value());
            if let (Some(id), Some(source)) = (i.image_id(), source) {
                backups.push(Backup {
                    image_id: id.to_string(),
                    name: i.name().unwrap_or_default().to_string(),
                    source: source.to_string(),
                    source_instance: i.source_instance_id().map(str::to_string),
                    created_ms: i
                        .creation_date()
                        .and_then(crate::intake::parse_time)
                        .map_or(0, |t| t.timestamp_millis()),
                    state: i.state().map_or("pending", |s| s.as_str()).to_string(),
                    snapshots: i
                        .block_device_mappings()
                        .iter()
                        .filter_map(|m| m.ebs()?.snapshot_id())
                        .map(str::to_string)
                        .collect(),
                });
            }
        }
    }
    Ok(backups)
}

/// (image id, creation ms) of the newest available image among `recorded` (the backup
/// run's record of the instance) that EC2 does not say was made from another instance.
pub async fn newest_available(
    ec2: &aws_sdk_ec2::Client,
    instance_id: &str,
    recorded: &[String],
) -> Result<Option<(String, i64)>, Error> {
    if recorded.is_empty() {
        return Ok(None);
    }
    // A filter, not ImageIds: an id deregistered since is no error.
    let out = ec2
        .describe_images()
        .owners("self")
        .filters(
            Filter::builder()
                .name("image-id")
                .set_values(Some(recorded.to_vec()))
                .build(),
        )
        .filters(Filter::builder().name("state").values("available").build())
        .send()
        .await
        .map_err(|e| Error::from_sdk("ec2:DescribeImages", e))?;
    Ok(out
        .images()
        .iter()
        .filter(|i| i.source_instance_id().is_none_or(|s| s == instance_id))
        .filter_map(|i| {
            let id = i.image_id()?;
            let created = i
                .creation_date()
                .and_then(crate::intake::parse_time)?
                .timestamp_millis();
            recorded
                .iter()
                .any(|r| r == id)
                .then(|| (id.to_string(), created))
        })
        .max_by_key(|(_, created)| *created))
}

/// Images the instance without reboot. A name already taken (a second tick in the same
/// minute) means the backup exists: Ok(None).
pub async fn create(
    ec2: &aws_sdk_ec2::Client,
    instance_id: &str,
    name: &str,
) -> Result<Option<String>, Error> {
    let tags = vec![
        (BACKUP_OF_TAG.to_string(), instance_id.to_string()),
        (SOURCE_TAG.to_string(), instance_id.to_string()),
        (INCIDENT_TAG.to_string(), "periodic-backup".to_string()),
    ];
    match ec2
        .create_image()
        .instance_id(instance_id)
        .name(name)
        .description(format!(
            "autoheal: periodic backup of {instance_id}, taken without reboot"
        ))
        .no_reboot(true)
        .tag_specifications(tag_spec(ResourceType::Image, &tags))
        .tag_specifications(tag_spec(ResourceType::Snapshot, &tags))
        .send()
        .await
    {
        Ok(out) => Ok(out.image_id().map(str::to_string)),
        Err(e) if e.code() == Some("InvalidAMIName.Duplicate") => Ok(None),
        Err(e) => Err(Error::from_sdk("ec2:CreateImage", e)),
    }
}

/// Deregisters the image, then deletes its snapshots (which deregistering keeps).
/// Returns the number of snapshots deleted.
pub async fn retire(ec2: &aws_sdk_ec2::Client, backup: &Backup) -> Result<usize, Error> {
    match ec2
        .deregister_image()
        .image_id(&backup.image_id)
        .send()
        .await
    {
        Ok(_) => {}
        Err(e)
            if matches!(
                e.code(),
                Some("InvalidAMIID.NotFound" | "InvalidAMIID.Unavailable")
            ) => {}
        Err(e) => return Err(Error::from_sdk("ec2:DeregisterImage", e)),
    }
    let mut deleted = 0;
    for snapshot in &backup.snapshots {
        match ec2.delete_snapshot().snapshot_id(snapshot).send().await {
            Ok(_) => deleted += 1,
            Err(e) if e.code() == Some("InvalidSnapshot.NotFound") => {}
            Err(e) => return Err(Error::from_sdk("ec2:DeleteSnapshot", e)),
        }
    }
    Ok(deleted)
}
