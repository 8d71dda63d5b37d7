//! CloudWatch: the status-check alarms autoheal manages (those named with the stack's
//! prefix, the only ones its role may read or write): read, write, delete.

use crate::error::Error;
use crate::rules::alarms::{AlarmShape, AlarmSpec, Managed};
use aws_sdk_cloudwatch::types::{
    AlarmType, ComparisonOperator, Dimension, MetricAlarm, Statistic, Tag,
};

/// The comparable settings of an alarm as CloudWatch holds it.
pub fn shape_of(a: &MetricAlarm) -> AlarmShape {
    AlarmShape {
        namespace: a.namespace().unwrap_or("").to_string(),
        metric: a.metric_name().unwrap_or("").to_string(),
        statistic: a.statistic().map_or("", |s| s.as_str()).to_string(),
        dimensions: a
            .dimensions()
            .iter()
            .map(|d| {
                (
                    d.name().unwrap_or("").to_string(),
                    d.value().unwrap_or("").to_string(),
                )
            })
            .collect(),
        period: a.period().unwrap_or(0),
        evaluation_periods: a.evaluation_periods().unwrap_or(0),
        datapoints_to_alarm: a
            .datapoints_to_alarm()
            .or(a.evaluation_periods())
            .unwrap_or(0),
        threshold: a.threshold().unwrap_or(f64::NAN),
        comparison: a
            .comparison_operator()
            .map_or("", |c| c.as_str())
            .to_string(),
        treat_missing_data: a.treat_missing_data().unwrap_or("missing").to_string(),
        actions_enabled: a.actions_enabled().unwrap_or(true),
        alarm_actions: a.alarm_actions().to_vec(),
        ok_actions: a.ok_actions().to_vec(),
    }
}

/// Every metric alarm of the region (whose name starts with `prefix`), all pages;
/// `read(n)` after each page, with the count so far.
pub async fn metric_alarms(
    cw: &aws_sdk_cloudwatch::Client,
    prefix: Option<&str>,
    read: impl Fn(usize),
) -> Result<Vec<MetricAlarm>, Error> {
    let mut pages = cw
        .describe_alarms()
        .set_alarm_name_prefix(prefix.map(str::to_string))
        .alarm_types(AlarmType::MetricAlarm)
        .max_records(100)
        .into_paginator()
        .send();
    let mut out = vec![];
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| Error::from_sdk("cloudwatch:DescribeAlarms", e))?;
        out.extend(page.metric_alarms().iter().cloned());
        read(out.len());
    }
    Ok(out)
}

/// The metric alarms whose name starts with `prefix`. A metric-math alarm has no single
/// metric to copy and is left out.
pub async fn managed(cw: &aws_sdk_cloudwatch::Client, prefix: &str) -> Result<Vec<Managed>, Error> {
    let alarms = metric_alarms(cw, Some(prefix), |_| {}).await?;
    Ok(alarms
        .iter()
        .filter(|a| a.metrics().is_empty())
        .filter_map(|a| {
            Some(Managed {
                name: a.alarm_name()?.to_string(),
                shape: shape_of(a),
            })
        })
        .collect())
}

/// Creates or overwrites the alarm (`PutMetricAlarm` replaces every setting). `tags`: only
/// on creation by a caller allowed to tag (the function's role is not).
pub async fn put(
    cw: &aws_sdk_cloudwatch::Client,
    spec: &AlarmSpec,
    tags: &[(&str, &str)],
) -> Result<(), Error> {
    let s = &spec.shape;
    let mut req = cw
        .put_metric_alarm()
        .alarm_name(&spec.name)
        .alarm_description(&spec.description)
        .namespace(&s.namespace)
        .metric_name(&s.metric)
        .statistic(Statistic::from(s.statistic.as_str()))
        .period(s.period)
        .evaluation_periods(s.evaluation_periods)
        .datapoints_to_alarm(s.datapoints_to_alarm)
        .threshold(s.threshold)
        .comparison_operator(ComparisonOperator::from(s.comparison.as_str()))
        .treat_missing_data(&s.treat_missing_data)
        .actions_enabled(s.actions_enabled)
        .set_alarm_actions(Some(s.alarm_actions.clone()))
        .set_ok_actions(Some(s.ok_actions.clone()));
    for (name, value) in &s.dimensions {
        req = req.dimensions(Dimension::builder().name(name).value(value).build());
    }
    for (k, v) in tags {
        req = req.tags(Tag::builder().key(*k).value(*v).build());
    }
    req.send()
        .await
        .map_err(|e| Error::from_sdk("cloudwatch:PutMetricAlarm", e))?;
    Ok(())
}

/// Deletes alarms by name, 100 per call (the API's limit).
pub async fn delete(cw: &aws_sdk_cloudwatch::Client, names: &[String]) -> Result<(), Error> {
    for chunk in names.chunks(100) {
        cw.delete_alarms()
            .set_alarm_names(Some(chunk.to_vec()))
            .send()
            .await
            .map_err(|e| Error::from_sdk("cloudwatch:DeleteAlarms", e))?;
    }
    Ok(())
}
