//! EC2: what the instance is.

use crate::error::Error;
use crate::model::facts::InstanceFacts;
use crate::model::facts::{Check, Checks};
use aws_sdk_ec2::error::ProvideErrorMetadata;

/// The error codes of an instance id EC2 does not know.
fn unknown_instance(code: Option<&str>) -> bool {
    matches!(
        code,
        Some("InvalidInstanceID.NotFound" | "InvalidInstanceID.Malformed")
    )
}

/// None when EC2 does not know the instance (never existed here, or long gone).
pub async fn describe_instance(
    ec2: &aws_sdk_ec2::Client,
    instance_id: &str,
) -> Result<Option<InstanceFacts>, Error> {
    let out = match ec2
        .describe_instances()
        .instance_ids(instance_id)
        .send()
        .await
    {
        Ok(out) => out,
        Err(e) if unknown_instance(e.code()) => return Ok(None),
        Err(e) => return Err(Error::from_sdk("ec2:DescribeInstances", e)),
    };
    let found = out
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .find(|i| i.instance_id() == Some(instance_id));
    Ok(found.map(|i| InstanceFacts {
        instance_id: instance_id.to_string(),
        state: state_name(i),
        instance_type: i.instance_type().map(|t| t.as_str().to_string()),
        availability_zone: i
            .placement()
            .and_then(|p| p.availability_zone())
            .map(str::to_string),
        root_device_type: i.root_device_type().map(|t| t.as_str().to_string()),
        lifecycle: i.instance_lifecycle().map(|l| l.as_str().to_string()),
        launch_ms: i.launch_time().and_then(|t| t.to_millis().ok()),
        auto_recovery: i
            .maintenance_options()
            .and_then(|m| m.auto_recovery())
            .map(|a| a.as_str().to_string()),
        // Read for standalone instances only (`instance_type_recovers`, `stop_protected`).
        auto_recovery_supported: None,
        disable_api_stop: None,
        virtualization: i.virtualization_type().map(|v| v.as_str().to_string()),
        kernel_id: i.kernel_id().map(str::to_string),
        tags: tag_map(i.tags()),
    }))
}

/// How many instances (pending, running, stopping or stopped) carry `autoheal:cluster=<name>`.
pub async fn cluster_size(ec2: &aws_sdk_ec2::Client, cluster: &str) -> Result<usize, Error> {
    let tag = format!("tag:{}", crate::rules::guard::CLUSTER_TAG);
    count_where(ec2, &tag, cluster).await
}

/// How many instances (pending, running, stopping or stopped) are in the Availability Zone.
pub async fn zone_size(ec2: &aws_sdk_ec2::Client, zone: &str) -> Result<usize, Error> {
    count_where(ec2, "availability-zone", zone).await
}

/// How many instances not terminated match the filter `name` = `value`.
async fn count_where(ec2: &aws_sdk_ec2::Client, name: &str, value: &str) -> Result<usize, Error> {
    use aws_sdk_ec2::types::Filter;
    let mut pages = ec2
        .describe_instances()
        .filters(Filter::builder().name(name).values(value).build())
        .filters(
            Filter::builder()
                .name("instance-state-name")
                .set_values(Some(
                    ["pending", "running", "stopping", "stopped"]
                        .map(String::from)
                        .to_vec(),
                ))
                .build(),
        )
        .into_paginator()
        .send();
    let mut n = 0;
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| Error::from_sdk("ec2:DescribeInstances", e))?;
        n += page
            .reservations()
            .iter()
            .map(|r| r.instances().len())
            .sum::<usize>();
    }
    Ok(n)
}

/// instance id -> state for those of `ids` EC2 knows (a filter, so an unknown id is left
/// out instead of failing the call), 200 ids per call.
pub async fn states(
    ec2: &aws_sdk_ec2::Client,
    ids: &[String],
) -> Result<std::collections::HashMap<String, String>, Error> {
    use aws_sdk_ec2::types::Filter;
    let mut out = std::collections::HashMap::new();
    for chunk in ids.chunks(200) {
        let mut pages = ec2
            .describe_instances()
            .filters(
                Filter::builder()
                    .name("instance-id")
                    .set_values(Some(chunk.to_vec()))
                    .build(),
            )
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| Error::from_sdk("ec2:DescribeInstances", e))?;
            for i in page.reservations().iter().flat_map(|r| r.instances()) {
                if let Some(id) = i.instance_id() {
                    out.insert(id.to_string(), state_name(i));
                }
            }
        }
    }
    Ok(out)
}

/// The instance's two status checks as EC2 reports them (`IncludeAllInstances`, so a
/// stopped instance answers `not-applicable` rather than nothing).
pub async fn status_checks(ec2: &aws_sdk_ec2::Client, instance_id: &str) -> Result<Checks, Error> {
    let out = match ec2
        .describe_instance_status()
        .instance_ids(instance_id)
        .include_all_instances(true)
        .send()
        .await
    {
        Ok(out) => out,
        // Unknown to EC2: DescribeInstances says so too; nothing is reported.
        Err(e) if unknown_instance(e.code()) => return Ok(Checks::default()),
        Err(e) => return Err(Error::from_sdk("ec2:DescribeInstanceStatus", e)),
    };
    let check = |s: Option<&aws_sdk_ec2::types::InstanceStatusSummary>| {
        s.and_then(|s| s.status())
            .map_or(Check::Unknown, |v| Check::parse(v.as_str()))
    };
    Ok(out
        .instance_statuses()
        .iter()
        .find(|s| s.instance_id() == Some(instance_id))
        .map_or(Checks::default(), |s| Checks {
            system: check(s.system_status()),
            instance: check(s.instance_status()),
        }))
}

/// A rung of the ladder: `RebootInstances`, `StopInstances` or `StartInstances`.
pub async fn power(ec2: &aws_sdk_ec2::Client, instance_id: &str, what: Power) -> Result<(), Error> {
    match what {
        Power::Reboot => ec2
            .reboot_instances()
            .instance_ids(instance_id)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| Error::from_sdk("ec2:RebootInstances", e)),
        Power::Stop => ec2
            .stop_instances()
            .instance_ids(instance_id)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| Error::from_sdk("ec2:StopInstances", e)),
        Power::Start => ec2
            .start_instances()
            .instance_ids(instance_id)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| Error::from_sdk("ec2:StartInstances", e)),
    }
}

pub use crate::rules::ladder::Power;

/// The instance's state name (`running`, `stopped`, ...), `unknown` when absent.
pub fn state_name(i: &aws_sdk_ec2::types::Instance) -> String {
    i.state()
        .and_then(|s| s.name())
        .map_or("unknown", |n| n.as_str())
        .to_string()
}

/// EC2 tags as key -> value (a tag without a value: empty).
pub fn tag_map(tags: &[aws_sdk_ec2::types::Tag]) -> std::collections::BTreeMap<String, String> {
    tags.iter()
        .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or("").to_string())))
        .collect()
}

/// Whether each instance type supports EC2's automatic recovery, per region, read once per
/// container: `DescribeInstanceTypes` changes only with AWS's catalogue.
#[derive(Debug, Default)]
pub struct RecoveryByType(std::sync::Mutex<std::collections::HashMap<String, bool>>);

impl RecoveryByType {
    pub async fn supports(
        &self,
        ec2: &aws_sdk_ec2::Client,
        region: &str,
        instance_type: &str,
    ) -> Result<bool, Error> {
        let key = format!("{region}/{instance_type}");
        if let Some(&known) = self.0.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return Ok(known);
        }
        let out = ec2
            .describe_instance_types()
            .instance_types(aws_sdk_ec2::types::InstanceType::from(instance_type))
            .send()
            .await
            .map_err(|e| Error::from_sdk("ec2:DescribeInstanceTypes", e))?;
        let supported = out
            .instance_types()
            .iter()
            .find(|t| t.instance_type().map(|t| t.as_str()) == Some(instance_type))
            .and_then(|t| t.auto_recovery_supported())
            .unwrap_or(false);
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, supported);
        Ok(supported)
    }
}

/// Stop protection: `StopInstances` fails while `disableApiStop` is on.
pub async fn stop_protected(ec2: &aws_sdk_ec2::Client, instance_id: &str) -> Result<bool, Error> {
    let out = ec2
        .describe_instance_attribute()
        .instance_id(instance_id)
        .attribute(aws_sdk_ec2::types::InstanceAttributeName::DisableApiStop)
        .send()
        .await
        .map_err(|e| Error::from_sdk("ec2:DescribeInstanceAttribute", e))?;
    Ok(out
        .disable_api_stop()
        .and_then(|b| b.value())
        .unwrap_or(false))
}

/// Every instance EC2 reports with a status check impaired: two paginated
/// `DescribeInstanceStatus` at once (one filter per check: filters on different names are
/// ANDed), merged.
pub async fn impaired(
    ec2: &aws_sdk_ec2::Client,
) -> Result<Vec<crate::rules::scan::Impaired>, Error> {
    use aws_sdk_ec2::types::{Filter, InstanceStatusSummary};
    let list = |check: &'static str| async move {
        let mut pages = ec2
            .describe_instance_status()
            .filters(Filter::builder().name(check).values("impaired").build())
            .into_paginator()
            .send();
        let mut statuses = vec![];
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| Error::from_sdk("ec2:DescribeInstanceStatus", e))?;
            statuses.extend(page.instance_statuses().iter().cloned());
        }
        Ok::<_, Error>(statuses)
    };
    let (system, instance) =
        tokio::try_join!(list("system-status.status"), list("instance-status.status"))?;
    let impaired_since = |s: Option<&InstanceStatusSummary>| {
        s.filter(|s| s.status().map(|v| v.as_str()) == Some("impaired"))
            .map(|s| {
                s.details()
                    .iter()
                    .filter_map(|d| d.impaired_since()?.to_millis().ok())
                    .min()
            })
    };
    let mut found: Vec<crate::rules::scan::Impaired> = vec![];
    for s in system.iter().chain(&instance) {
        let Some(id) = s.instance_id() else { continue };
        if found.iter().any(|f| f.instance_id == id) {
            continue;
        }
        let (sys, inst) = (
            impaired_since(s.system_status()),
            impaired_since(s.instance_status()),
        );
        found.push(crate::rules::scan::Impaired {
            instance_id: id.to_string(),
            system: sys.is_some(),
            instance: inst.is_some(),
            since_ms: [sys.flatten(), inst.flatten()].into_iter().flatten().min(),
        });
    }
    Ok(found)
}
