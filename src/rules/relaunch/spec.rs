//! What of the impaired instance its copy carries over: pure, from what EC2 described.

use crate::model::tags::{INCIDENT_TAG, SOURCE_TAG};

/// The source instance's environment, as the EC2 adapter read it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Source {
    pub instance_id: String,
    pub instance_type: String,
    pub subnet_id: Option<String>,
    pub availability_zone: Option<String>,
    pub security_group_ids: Vec<String>,
    pub iam_instance_profile_arn: Option<String>,
    pub key_name: Option<String>,
    /// base64, as DescribeInstanceAttribute returns it and RunInstances takes it.
    pub user_data: Option<String>,
    pub ebs_optimized: bool,
    pub detailed_monitoring: bool,
    pub metadata: Option<Metadata>,
    pub tenancy: Option<String>,
    pub placement_group: Option<String>,
    pub disable_api_termination: bool,
    pub disable_api_stop: bool,
    pub shutdown_behavior: Option<String>,
    /// `standard` or `unlimited`, for burstable types.
    pub cpu_credits: Option<String>,
    pub tags: Vec<(String, String)>,
    pub private_ip: Option<String>,
    pub network_interfaces: usize,
    /// Instance-store (ephemeral) volumes attached to the source.
    pub instance_store_volumes: usize,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Metadata {
    pub http_tokens: Option<String>,
    pub http_endpoint: Option<String>,
    pub hop_limit: Option<i32>,
    pub instance_metadata_tags: Option<String>,
}

/// Every tag of the source but AWS-reserved ones (`aws:` cannot be set) and autoheal's own
/// bookkeeping from an earlier incident, plus this incident's.
pub fn copy_tags(source: &Source, incident_id: &str) -> Vec<(String, String)> {
    let mut tags: Vec<(String, String)> = source
        .tags
        .iter()
        .filter(|(k, _)| {
            !k.starts_with("aws:")
                && k != INCIDENT_TAG
                && k != SOURCE_TAG
                && k != crate::model::tags::REPLACED_BY_TAG
        })
        .cloned()
        .collect();
    tags.push((INCIDENT_TAG.into(), incident_id.into()));
    tags.push((SOURCE_TAG.into(), source.instance_id.clone()));
    tags
}

/// Tags for what autoheal creates besides the copy (image, snapshots).
pub fn bookkeeping_tags(source_id: &str, incident_id: &str) -> Vec<(String, String)> {
    vec![
        (INCIDENT_TAG.into(), incident_id.into()),
        (SOURCE_TAG.into(), source_id.into()),
    ]
}

/// The image's name: the incident's, with an unguessable part (`secret::token`) recorded
/// before the image is created, so nobody can create an image of that name first.
pub fn image_name(incident_id: &str, secret: &str) -> String {
    format!("autoheal-{incident_id}-{secret}")
}

/// What the copy will not have, said plainly for the report.
pub fn not_carried(source: &Source) -> Vec<String> {
    let mut gaps = vec![];
    if source.network_interfaces > 1 {
        gaps.push(format!(
            "{} secondary network interface(s) (the copy has one)",
            source.network_interfaces - 1
        ));
    }
    if source.instance_store_volumes > 0 {
        gaps.push(format!(
            "data on {} instance-store volume(s) (not in the image)",
            source.instance_store_volumes
        ));
    }
    if let Some(ip) = &source.private_ip {
        gaps.push(format!(
            "private IP {ip} (the copy gets a new one; Elastic IPs are moved)"
        ));
    }
    gaps
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_carry_over_except_reserved_and_old_bookkeeping() {
        let source = Source {
            instance_id: "i-1".into(),
            tags: vec![
                ("Name".into(), "db-2".into()),
                ("aws:cloudformation:stack-name".into(), "s".into()),
                ("autoheal:incident".into(), "old".into()),
                ("autoheal:replaced-by".into(), "i-0".into()),
                ("team".into(), "data".into()),
            ],
            ..Default::default()
        };
        assert_eq!(
            copy_tags(&source, "inc-1"),
            vec![
                ("Name".to_string(), "db-2".to_string()),
                ("team".into(), "data".into()),
                ("autoheal:incident".into(), "inc-1".into()),
                ("autoheal:source-instance".into(), "i-1".into()),
            ]
        );
        assert_eq!(
            image_name("i-1-20261123T031245Z", "0f"),
            "autoheal-i-1-20261123T031245Z-0f"
        );
    }

    #[test]
    fn gaps_are_named() {
        let source = Source {
            network_interfaces: 3,
            instance_store_volumes: 2,
            private_ip: Some("10.0.0.5".into()),
            ..Default::default()
        };
        let gaps = not_carried(&source);
        assert_eq!(gaps.len(), 3);
        assert!(gaps[0].starts_with("2 secondary network interface(s)"));
        assert!(gaps[1].contains("2 instance-store volume(s)"));
        assert!(gaps[2].contains("10.0.0.5"));
        assert!(not_carried(&Source {
            network_interfaces: 1,
            ..Default::default()
        })
        .is_empty());
    }
}
