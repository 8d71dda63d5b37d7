//! The edges that talk to AWS: observe (reads) and act (writes), one file per service.

pub mod alarms;
pub mod autoscaling;
pub mod backup;
pub mod ec2;
pub mod fleet;
pub mod image;
pub mod launch;
pub mod notices;
pub mod takeover;
pub mod zonal_shift;

use crate::error::Error;
use crate::model::facts::{Facts, GroupFacts};

/// Clients built once per container from one `SdkConfig`, in the function's region.
#[derive(Clone, Debug)]
pub struct Clients {
    pub ec2: aws_sdk_ec2::Client,
    pub autoscaling: aws_sdk_autoscaling::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub kms: aws_sdk_kms::Client,
    /// What the clients of other regions are built from (`Clouds`).
    pub sdk: aws_config::SdkConfig,
}

impl Clients {
    pub fn new(sdk: &aws_config::SdkConfig) -> Clients {
        Clients {
            ec2: aws_sdk_ec2::Client::new(sdk),
            autoscaling: aws_sdk_autoscaling::Client::new(sdk),
            dynamodb: aws_sdk_dynamodb::Client::new(sdk),
            kms: aws_sdk_kms::Client::new(sdk),
            sdk: sdk.clone(),
        }
    }
}

/// The clients that act on instances and watch them, for one region.
#[derive(Clone, Debug)]
pub struct Cloud {
    pub ec2: aws_sdk_ec2::Client,
    pub autoscaling: aws_sdk_autoscaling::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub arc: aws_sdk_arczonalshift::Client,
}

/// One `Cloud` per region, built on first use and kept for the container (the function's
/// own region reuses its clients). Clients share nothing across regions but the
/// credentials, so a region's first alarm pays one connection setup. The production
/// `fleet::Fleet`.
#[derive(Debug)]
pub struct Clouds {
    sdk: aws_config::SdkConfig,
    built: std::sync::Mutex<std::collections::HashMap<String, Cloud>>,
    /// Which instance types EC2 recovers automatically, read once per container.
    recovery_by_type: ec2::RecoveryByType,
}

impl Clouds {
    pub fn new(clients: &Clients, home: &str) -> Clouds {
        let home_cloud = Cloud {
            ec2: clients.ec2.clone(),
            autoscaling: clients.autoscaling.clone(),
            cloudwatch: aws_sdk_cloudwatch::Client::new(&clients.sdk),
            arc: aws_sdk_arczonalshift::Client::new(&clients.sdk),
        };
        Clouds {
            sdk: clients.sdk.clone(),
            built: std::sync::Mutex::new([(home.to_string(), home_cloud)].into()),
            recovery_by_type: ec2::RecoveryByType::default(),
        }
    }

    pub fn get(&self, region: &str) -> Cloud {
        let mut built = self.built.lock().unwrap_or_else(|e| e.into_inner());
        built
            .entry(region.to_string())
            .or_insert_with(|| {
                let r = aws_config::Region::new(region.to_string());
                Cloud {
                    ec2: aws_sdk_ec2::Client::from_conf(
                        aws_sdk_ec2::config::Builder::from(&self.sdk)
                            .region(r.clone())
                            .build(),
                    ),
                    autoscaling: aws_sdk_autoscaling::Client::from_conf(
                        aws_sdk_autoscaling::config::Builder::from(&self.sdk)
                            .region(r.clone())
                            .build(),
                    ),
                    cloudwatch: aws_sdk_cloudwatch::Client::from_conf(
                        aws_sdk_cloudwatch::config::Builder::from(&self.sdk)
                            .region(r.clone())
                            .build(),
                    ),
                    arc: aws_sdk_arczonalshift::Client::from_conf(
                        aws_sdk_arczonalshift::config::Builder::from(&self.sdk)
                            .region(r)
                            .build(),
                    ),
                }
            })
            .clone()
    }
}

/// The instance, its status checks as EC2 reports them, and its group with the group's
/// `autoheal` tag: four reads at once, one round trip.
pub async fn observe(clients: &Cloud, instance_id: &str) -> Result<Facts, Error> {
    let (instance, checks, membership, mode_tags) = tokio::try_join!(
        ec2::describe_instance(&clients.ec2, instance_id),
        ec2::status_checks(&clients.ec2, instance_id),
        autoscaling::membership(&clients.autoscaling, instance_id),
        autoscaling::mode_tags(&clients.autoscaling),
    )?;
    let group = membership.map(|m| {
        let tags = mode_tags
            .get(&m.name)
            .map(|v| (crate::rules::policy::MODE_TAG.to_string(), v.clone()))
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
