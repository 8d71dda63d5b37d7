//! The edges that talk to AWS: observe (reads) and act (writes), one file per service.

pub mod autoscaling;
pub mod backup;
pub mod breaker;
pub mod ec2;
pub mod history;
pub mod image;
pub mod launch;
pub mod ledger;
pub mod outbox;
pub mod scope;
pub mod takeover;

use crate::decide::{Facts, GroupFacts};
use crate::error::Error;

/// Clients built once per container from one `SdkConfig`.
#[derive(Clone, Debug)]
pub struct Clients {
    pub ec2: aws_sdk_ec2::Client,
    pub autoscaling: aws_sdk_autoscaling::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub kms: aws_sdk_kms::Client,
}

impl Clients {
    pub fn new(sdk: &aws_config::SdkConfig) -> Clients {
        Clients {
            ec2: aws_sdk_ec2::Client::new(sdk),
            autoscaling: aws_sdk_autoscaling::Client::new(sdk),
            dynamodb: aws_sdk_dynamodb::Client::new(sdk),
            kms: aws_sdk_kms::Client::new(sdk),
        }
    }
}

/// The instance, its status checks as EC2 reports them, and its group with the group's
/// `autoheal` tag: four reads at once, one round trip.
pub async fn observe(clients: &Clients, instance_id: &str) -> Result<Facts, Error> {
    let (instance, checks, membership, mode_tags) = tokio::try_join!(
        ec2::describe_instance(&clients.ec2, instance_id),
        ec2::status_checks(&clients.ec2, instance_id),
        autoscaling::membership(&clients.autoscaling, instance_id),
        autoscaling::mode_tags(&clients.autoscaling),
    )?;
    let group = membership.map(|m| {
        let tags = mode_tags
            .get(&m.name)
            .map(|v| (crate::policy::MODE_TAG.to_string(), v.clone()))
            .into_iter()
            .collect();
        GroupFacts { tags, ..m }
    });
    Ok(Facts {
        instance,
        group,
        checks,
    })
}
