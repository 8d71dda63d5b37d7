//! The AWS side of autoheal-admin: whole-fleet reads (every page) and the alarm writes.
//! Runs with the operator's credentials, not the function's role (see docs/admin.md for the
//! permissions it needs).

use autoheal::aws::ec2::{state_name, tag_map};
use autoheal::error::Error;
use aws_sdk_cloudwatch::types::{Dimension, MetricAlarm};
use aws_sdk_ec2::types::{Filter, InstanceType};
use futures::{stream, StreamExt, TryStreamExt};
use std::collections::HashMap;

use super::alarms::AlarmSpec;
use super::audit::{Event, Instance};

/// At most this many writes at once; the SDK retries what is throttled.
const CONCURRENCY: usize = 16;

/// Reports progress on long runs (to stderr in the CLI).
pub type Progress<'a> = &'a (dyn Fn(String) + Sync);

/// Every instance of the region that is not terminated, all pages.
pub async fn instances(
    ec2: &aws_sdk_ec2::Client,
    progress: Progress<'_>,
) -> Result<Vec<Instance>, Error> {
    let mut pages = ec2
        .describe_instances()
        .max_results(1000)
        .into_paginator()
        .send();
    let mut out = vec![];
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| Error::from_sdk("ec2:DescribeInstances", e))?;
        for i in page.reservations().iter().flat_map(|r| r.instances()) {
            let Some(id) = i.instance_id() else { continue };
            out.push(Instance {
                instance_id: id.to_string(),
                state: state_name(i),
                instance_type: i.instance_type().map_or("", |t| t.as_str()).to_string(),
                image_id: i.image_id().unwrap_or("").to_string(),
                virtualization: i
                    .virtualization_type()
                    .map_or("", |v| v.as_str())
                    .to_string(),
                kernel_id: i.kernel_id().map(str::to_string),
                root_device_type: i.root_device_type().map_or("", |t| t.as_str()).to_string(),
                tags: tag_map(i.tags()),
            });
        }
        progress(format!("instances: {} read", out.len()));
    }
    Ok(out)
}

/// Every metric alarm of the region (whose name starts with `prefix`), all pages.
pub async fn alarms(
    cw: &aws_sdk_cloudwatch::Client,
    prefix: Option<&str>,
    progress: Progress<'_>,
) -> Result<Vec<MetricAlarm>, Error> {
    autoheal::aws::alarms::metric_alarms(cw, prefix, |n| {
        if n % 1000 == 0 {
            progress(format!("alarms: {n} read"));
        }
    })
    .await
}

pub use autoheal::aws::alarms::shape_of;

/// Instance ids whose status checks some alarm watches: a `StatusCheckFailed*` metric with
/// an `InstanceId` dimension, alone or inside a metric-math alarm.
pub fn watched_instances(alarms: &[MetricAlarm]) -> std::collections::HashSet<String> {
    let mut watched = std::collections::HashSet::new();
    let mut add = |metric: Option<&str>, dims: &[Dimension]| {
        if metric.is_some_and(|m| m.starts_with("StatusCheckFailed")) {
            for d in dims {
                if d.name() == Some("InstanceId") {
                    if let Some(v) = d.value() {
                        watched.insert(v.to_string());
                    }
                }
            }
        }
    };
    for a in alarms {
        add(a.metric_name(), a.dimensions());
        for q in a.metrics() {
            if let Some(m) = q.metric_stat().and_then(|s| s.metric()) {
                add(m.metric_name(), m.dimensions());
            }
        }
    }
    watched
}

/// Creates or overwrites the alarm, tagged as this command's.
pub async fn put_alarm(cw: &aws_sdk_cloudwatch::Client, spec: &AlarmSpec) -> Result<(), Error> {
    autoheal::aws::alarms::put(cw, spec, &[(super::alarms::MANAGED_TAG, "alarms-sync")]).await
}

/// Writes every spec, `CONCURRENCY` at a time.
pub async fn put_alarms(
    cw: &aws_sdk_cloudwatch::Client,
    specs: &[&AlarmSpec],
    progress: Progress<'_>,
) -> Result<(), Error> {
    let done = std::sync::atomic::AtomicUsize::new(0);
    stream::iter(specs.iter().map(|s| put_alarm(cw, s)))
        .buffer_unordered(CONCURRENCY)
        .map_ok(|()| {
            let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            if n % 500 == 0 {
                progress(format!("alarms: {n}/{} written", specs.len()));
            }
        })
        .try_collect::<()>()
        .await
}

pub use autoheal::aws::alarms::delete as delete_alarms;

/// Fails with a plain message when the topic does not exist (or cannot be read).
pub async fn check_topic(sns: &aws_sdk_sns::Client, topic_arn: &str) -> Result<(), Error> {
    sns.get_topic_attributes()
        .topic_arn(topic_arn)
        .send()
        .await
        .map_err(|e| Error::from_sdk("sns:GetTopicAttributes", e))?;
    Ok(())
}

/// Device names the image maps to instance-store (ephemeral) volumes, by image id. Images
/// no longer existing are absent. Asked with a filter, which never fails on a missing id.
pub async fn ephemeral_mappings(
    ec2: &aws_sdk_ec2::Client,
    image_ids: &[String],
) -> Result<HashMap<String, Vec<String>>, Error> {
    let chunks: Vec<Vec<String>> = image_ids.chunks(100).map(<[String]>::to_vec).collect();
    let pages: Vec<_> = stream::iter(chunks.into_iter().map(|chunk| async move {
        ec2.describe_images()
            .filters(
                Filter::builder()
                    .name("image-id")
                    .set_values(Some(chunk))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| Error::from_sdk("ec2:DescribeImages", e))
    }))
    .buffer_unordered(4)
    .try_collect()
    .await?;
    let mut out = HashMap::new();
    for page in pages {
        for image in page.images() {
            let Some(id) = image.image_id() else { continue };
            let ephemeral = image
                .block_device_mappings()
                .iter()
                .filter(|m| m.virtual_name().is_some_and(|v| v.starts_with("ephemeral")))
                .map(|m| {
                    format!(
                        "{} on {}",
                        m.virtual_name().unwrap_or(""),
                        m.device_name().unwrap_or("?")
                    )
                })
                .collect();
            out.insert(id.to_string(), ephemeral);
        }
    }
    Ok(out)
}

/// Whether each instance type has instance-store volumes (`false`: EBS-only).
pub async fn instance_storage(
    ec2: &aws_sdk_ec2::Client,
    types: &[String],
) -> Result<HashMap<String, bool>, Error> {
    let mut out = HashMap::new();
    for chunk in types.chunks(100) {
        let mut pages = ec2
            .describe_instance_types()
            .set_instance_types(Some(
                chunk
                    .iter()
                    .map(|t| InstanceType::from(t.as_str()))
                    .collect(),
            ))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| Error::from_sdk("ec2:DescribeInstanceTypes", e))?;
            for t in page.instance_types() {
                if let Some(name) = t.instance_type() {
                    out.insert(
                        name.as_str().to_string(),
                        t.instance_storage_supported().unwrap_or(false),
                    );
                }
            }
        }
    }
    Ok(out)
}

/// Scheduled events (reboots, retirements, maintenance) by instance id, all pages.
pub async fn scheduled_events(
    ec2: &aws_sdk_ec2::Client,
) -> Result<HashMap<String, Vec<Event>>, Error> {
    let mut pages = ec2
        .describe_instance_status()
        .include_all_instances(true)
        .max_results(1000)
        .into_paginator()
        .send();
    let mut out: HashMap<String, Vec<Event>> = HashMap::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| Error::from_sdk("ec2:DescribeInstanceStatus", e))?;
        for s in page.instance_statuses() {
            let (Some(id), events) = (s.instance_id(), s.events()) else {
                continue;
            };
            for e in events {
                out.entry(id.to_string()).or_default().push(Event {
                    code: e.code().map_or("", |c| c.as_str()).to_string(),
                    description: e.description().unwrap_or("").to_string(),
                    not_before: e.not_before().map(|t| t.to_string()),
                });
            }
        }
    }
    Ok(out)
}
