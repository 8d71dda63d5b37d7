//! EC2 images: taken without reboot, found again by their deterministic name.

use crate::error::Error;
use aws_sdk_ec2::error::ProvideErrorMetadata;
use aws_sdk_ec2::types::{Filter, ResourceType, Tag, TagSpecification};

pub fn tag_spec(resource: ResourceType, tags: &[(String, String)]) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(resource)
        .set_tags(Some(
            tags.iter()
                .map(|(k, v)| Tag::builder().key(k).value(v).build())
                .collect(),
        ))
        .build()
}

/// (image id, state) of this account's image with that name, if any.
pub async fn find_by_name(
    ec2: &aws_sdk_ec2::Client,
    name: &str,
) -> Result<Option<(String, String)>, Error> {
    let out = ec2
        .describe_images()
        .owners("self")
        .filters(Filter::builder().name("name").values(name).build())
        .send()
        .await
        .map_err(|e| Error::from_sdk("ec2:DescribeImages", e))?;
    Ok(out.images().iter().find_map(|i| {
        Some((
            i.image_id()?.to_string(),
            i.state().map_or("pending", |s| s.as_str()).to_string(),
        ))
    }))
}

/// (image id, state), or None once the image is gone.
pub async fn state(
    ec2: &aws_sdk_ec2::Client,
    image_id: &str,
) -> Result<Option<(String, String)>, Error> {
    match ec2.describe_images().image_ids(image_id).send().await {
        Ok(out) => Ok(out.images().first().map(|i| {
            (
                image_id.to_string(),
                i.state().map_or("pending", |s| s.as_str()).to_string(),
            )
        })),
        Err(e)
            if matches!(
                e.code(),
                Some("InvalidAMIID.NotFound" | "InvalidAMIID.Unavailable")
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(Error::from_sdk("ec2:DescribeImages", e)),
    }
}

/// Images the instance with `NoReboot=true` — always: a reboot is what took a whole
/// cluster down in the field report this project answers.
pub async fn create(
    ec2: &aws_sdk_ec2::Client,
    instance_id: &str,
    name: &str,
    tags: &[(String, String)],
) -> Result<String, Error> {
    let out = ec2
        .create_image()
        .instance_id(instance_id)
        .name(name)
        .description(format!(
            "autoheal: image of impaired {instance_id}, taken without reboot"
        ))
        .no_reboot(true)
        .tag_specifications(tag_spec(ResourceType::Image, tags))
        .tag_specifications(tag_spec(ResourceType::Snapshot, tags))
        .send()
        .await
        .map_err(|e| Error::from_sdk("ec2:CreateImage", e))?;
    out.image_id()
        .map(str::to_string)
        .ok_or_else(|| Error::Permanent {
            op: "ec2:CreateImage",
            code: None,
            detail: "no image id in the answer".into(),
        })
}
