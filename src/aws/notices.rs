//! EC2's scheduled events as the tick reads them (`DescribeInstanceStatus` with the
//! `event.code` filter, paginated), and what a notice's plan needs of its window: the one
//! tag of a group, and EC2's instance event windows.

use crate::error::Error;
use crate::model::notice::{EventWindow, Notice, NoticeKind};

/// Every scheduled event of the region's instances (running or not: `IncludeAllInstances`),
/// one notice each; events of a code this version does not know are left out.
pub async fn scheduled_events(
    ec2: &aws_sdk_ec2::Client,
    region: &str,
) -> Result<Vec<Notice>, Error> {
    use aws_sdk_ec2::types::Filter;
    let codes = NoticeKind::ALL.map(|k| k.code().to_string()).to_vec();
    let mut pages = ec2
        .describe_instance_status()
        .include_all_instances(true)
        .filters(
            Filter::builder()
                .name("event.code")
                .set_values(Some(codes))
                .build(),
        )
        .into_paginator()
        .send();
    let ms = |t: Option<&aws_sdk_ec2::primitives::DateTime>| t.and_then(|t| t.to_millis().ok());
    let mut out = vec![];
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| Error::from_sdk("ec2:DescribeInstanceStatus", e))?;
        for status in page.instance_statuses() {
            let Some(id) = status.instance_id() else {
                continue;
            };
            for e in status.events() {
                let code = e.code().map_or("", |c| c.as_str());
                let times = [
                    ms(e.not_before()),
                    ms(e.not_after()),
                    ms(e.not_before_deadline()),
                ];
                let event_id = e.instance_event_id().unwrap_or_default();
                let description = e.description().unwrap_or_default();
                if let Some(mut n) = Notice::from_status(id, code, event_id, description, times) {
                    n.region = Some(region.to_string());
                    out.push(n);
                }
            }
        }
    }
    Ok(out)
}

/// `ModifyInstanceEventStartTime`: EC2's event `event_id` of the instance moved to start at
/// `to_ms` (EC2 refuses a time outside its limits: an error naming why).
pub async fn move_event(
    ec2: &aws_sdk_ec2::Client,
    instance_id: &str,
    event_id: &str,
    to_ms: i64,
) -> Result<(), Error> {
    ec2.modify_instance_event_start_time()
        .instance_id(instance_id)
        .instance_event_id(event_id)
        .not_before(aws_sdk_ec2::primitives::DateTime::from_millis(to_ms))
        .send()
        .await
        .map(|_| ())
        .map_err(|e| Error::from_sdk("ec2:ModifyInstanceEventStartTime", e))
}

/// The value of the tag `key` on the Auto Scaling group `group`, if it has one.
pub async fn group_tag(
    asg: &aws_sdk_autoscaling::Client,
    group: &str,
    key: &str,
) -> Result<Option<String>, Error> {
    use aws_sdk_autoscaling::types::Filter;
    let out = asg
        .describe_tags()
        .filters(
            Filter::builder()
                .name("auto-scaling-group")
                .values(group)
                .build(),
        )
        .filters(Filter::builder().name("key").values(key).build())
        .send()
        .await
        .map_err(|e| Error::from_sdk("autoscaling:DescribeTags", e))?;
    Ok(out
        .tags()
        .iter()
        .find(|t| t.resource_id() == Some(group) && t.key() == Some(key))
        .and_then(|t| t.value().map(str::to_string)))
}

/// EC2's instance event windows of the region (`DescribeInstanceEventWindows`, paginated;
/// an account has few), each with what it is associated with: which applies to an instance
/// is a pure rule (`window::event_window_for`).
pub async fn event_windows(ec2: &aws_sdk_ec2::Client) -> Result<Vec<EventWindow>, Error> {
    let day = |d: Option<&aws_sdk_ec2::types::WeekDay>| {
        let name = d.map_or("", |d| d.as_str());
        crate::rules::notice::window::DAYS
            .iter()
            .position(|n| *n == name)
            .map(|i| i as u8)
    };
    let mut pages = ec2
        .describe_instance_event_windows()
        .into_paginator()
        .send();
    let mut out = vec![];
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| Error::from_sdk("ec2:DescribeInstanceEventWindows", e))?;
        for w in page.instance_event_windows() {
            let ranges = w.time_ranges().iter().filter_map(|r| {
                let hour = |h: Option<i32>| h.map(i64::from);
                Some((
                    day(r.start_week_day())?,
                    hour(r.start_hour())?,
                    day(r.end_week_day())?,
                    hour(r.end_hour())?,
                ))
            });
            let target = w.association_target();
            out.push(EventWindow {
                id: w.instance_event_window_id().unwrap_or_default().to_string(),
                name: w.name().map(str::to_string),
                ranges: ranges.collect(),
                cron: w.cron_expression().map(str::to_string),
                instance_ids: target.map_or(vec![], |t| t.instance_ids().to_vec()),
                tags: target.map_or(vec![], |t| {
                    let pair = |t: &aws_sdk_ec2::types::Tag| {
                        Some((t.key()?.to_string(), t.value()?.to_string()))
                    };
                    t.tags().iter().filter_map(pair).collect()
                }),
            });
        }
    }
    Ok(out)
}
