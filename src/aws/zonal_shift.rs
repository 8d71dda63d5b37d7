//! ARC's zonal shifts and zonal autoshifts in progress, by the Availability Zone they move
//! traffic away from. ARC names zones by id (`use1-az1`), instances by name (`us-east-1a`):
//! the names are read from EC2 only when a shift is in progress.

use crate::error::Error;
use crate::rules::storm::Shift;
use aws_sdk_arczonalshift::types::{AutoshiftExecutionStatus, ZonalShiftStatus};
use std::collections::HashMap;

/// Every shift in progress in the region: zonal shifts of a resource (a load balancer, an
/// Auto Scaling group) and AWS's autoshifts.
pub async fn in_progress(
    arc: &aws_sdk_arczonalshift::Client,
    ec2: &aws_sdk_ec2::Client,
) -> Result<Vec<Shift>, Error> {
    let (shifts, autoshifts) = tokio::try_join!(zonal_shifts(arc), autoshifts(arc))?;
    if shifts.is_empty() && autoshifts.is_empty() {
        return Ok(vec![]);
    }
    let names = zone_names(ec2).await?;
    Ok(shifts
        .into_iter()
        .chain(autoshifts)
        .map(|(zone_id, said)| Shift {
            zone: names.get(&zone_id).cloned().unwrap_or(zone_id),
            said,
        })
        .collect())
}

/// (zone id, what it is) of each active zonal shift.
async fn zonal_shifts(arc: &aws_sdk_arczonalshift::Client) -> Result<Vec<(String, String)>, Error> {
    let mut pages = arc
        .list_zonal_shifts()
        .status(ZonalShiftStatus::Active)
        .into_paginator()
        .send();
    let mut found = vec![];
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| Error::from_sdk("arc-zonal-shift:ListZonalShifts", e))?;
        for s in page.items() {
            let said = format!(
                "ARC zonal shift {} of {} away from {} since {} until {}{}",
                s.zonal_shift_id(),
                s.resource_identifier(),
                s.away_from(),
                when(s.start_time()),
                when(s.expiry_time()),
                match s.comment() {
                    "" => String::new(),
                    c => format!(" ({c})"),
                }
            );
            found.push((s.away_from().to_string(), said));
        }
    }
    Ok(found)
}

/// (zone id, what it is) of each zonal autoshift in progress.
async fn autoshifts(arc: &aws_sdk_arczonalshift::Client) -> Result<Vec<(String, String)>, Error> {
    let mut pages = arc
        .list_autoshifts()
        .status(AutoshiftExecutionStatus::Active)
        .into_paginator()
        .send();
    let mut found = vec![];
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| Error::from_sdk("arc-zonal-shift:ListAutoshifts", e))?;
        for s in page.items() {
            let said = format!(
                "AWS zonal autoshift away from {} since {}",
                s.away_from(),
                when(s.start_time())
            );
            found.push((s.away_from().to_string(), said));
        }
    }
    Ok(found)
}

/// Zone id -> zone name in the region.
async fn zone_names(ec2: &aws_sdk_ec2::Client) -> Result<HashMap<String, String>, Error> {
    let out = ec2
        .describe_availability_zones()
        .send()
        .await
        .map_err(|e| Error::from_sdk("ec2:DescribeAvailabilityZones", e))?;
    Ok(out
        .availability_zones()
        .iter()
        .filter_map(|z| Some((z.zone_id()?.to_string(), z.zone_name()?.to_string())))
        .collect())
}

fn when(t: &aws_sdk_arczonalshift::primitives::DateTime) -> String {
    chrono::DateTime::from_timestamp(t.secs(), 0)
        .unwrap_or_default()
        .format("%Y-%m-%d %H:%MZ")
        .to_string()
}
