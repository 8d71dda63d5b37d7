//! EC2: the copy takes over from the impaired instance, which is kept for forensics.

use crate::error::Error;
use crate::model::tags::REPLACED_BY_TAG;
use aws_sdk_ec2::types::{Filter, Tag};

/// Moves every Elastic IP of `from` to `to`; returns the public IPs moved. Idempotent:
/// once moved, `from` has none left.
pub async fn move_addresses(
    ec2: &aws_sdk_ec2::Client,
    from: &str,
    to: &str,
) -> Result<Vec<String>, Error> {
    let out = ec2
        .describe_addresses()
        .filters(Filter::builder().name("instance-id").values(from).build())
        .send()
        .await
        .map_err(|e| Error::from_sdk("ec2:DescribeAddresses", e))?;
    let mut moved = vec![];
    for address in out.addresses() {
        let Some(allocation) = address.allocation_id() else {
            continue; // EC2-Classic addresses do not exist any more
        };
        ec2.associate_address()
            .allocation_id(allocation)
            .instance_id(to)
            .allow_reassociation(true)
            .send()
            .await
            .map_err(|e| Error::from_sdk("ec2:AssociateAddress", e))?;
        moved.push(address.public_ip().unwrap_or(allocation).to_string());
    }
    Ok(moved)
}

/// Tags the old instance with its copy, then stops it (or terminates it when configured).
/// Does not wait: impaired instances often never finish stopping.
pub async fn retire(
    ec2: &aws_sdk_ec2::Client,
    old: &str,
    copy: &str,
    terminate: bool,
    force: bool,
) -> Result<(), Error> {
    ec2.create_tags()
        .resources(old)
        .tags(Tag::builder().key(REPLACED_BY_TAG).value(copy).build())
        .send()
        .await
        .map_err(|e| Error::from_sdk("ec2:CreateTags", e))?;
    if terminate {
        ec2.terminate_instances()
            .instance_ids(old)
            .send()
            .await
            .map_err(|e| Error::from_sdk("ec2:TerminateInstances", e))?;
    } else {
        ec2.stop_instances()
            .instance_ids(old)
            .force(force)
            .send()
            .await
            .map_err(|e| Error::from_sdk("ec2:StopInstances", e))?;
    }
    Ok(())
}
