//! Whose instance it is, pure: autoheal repairs only what no other controller manages.
//! An Auto Scaling group autoheal drives through `SetInstanceHealth` is the one exception;
//! every other owner's instance goes to people, saying who owns it.

use crate::model::facts::{GroupFacts, InstanceFacts};

/// Tags other controllers put on the instances they manage, and who they are. A key ending
/// in `*` is a prefix. Keys starting with `aws:` can only be written by AWS.
pub const CONTROLLER_TAGS: &[(&str, &str)] = &[
    ("karpenter.sh/nodepool", "Karpenter"),
    ("karpenter.sh/nodeclaim", "Karpenter"),
    ("karpenter.sh/provisioner-name", "Karpenter"),
    ("eks:nodegroup-name", "an EKS managed node group"),
    ("kubernetes.io/cluster/*", "a Kubernetes cluster"),
    ("aws:ec2:fleet-id", "an EC2 Fleet"),
    ("aws:ec2spot:fleet-request-id", "a Spot Fleet"),
    ("aws:elasticmapreduce:*", "EMR"),
];

/// The tag Auto Scaling leaves on an instance after it left the group.
const GROUP_TAG: &str = "aws:autoscaling:groupName";

fn matches(pattern: &str, key: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => key.starts_with(prefix),
        None => key == pattern,
    }
}

/// Who other than autoheal manages this instance, and what to do, if anyone does.
/// `extra`: more tag keys (or `prefix*`) the deployer names (`AUTOHEAL_OTHER_CONTROLLER_TAGS`).
/// `group`: its membership as Auto Scaling reports it now (None: not a member).
pub fn other_owner(
    instance: &InstanceFacts,
    group: Option<&GroupFacts>,
    extra: &[String],
) -> Option<String> {
    if let (None, Some(name)) = (group, instance.tags.get(GROUP_TAG)) {
        return Some(format!(
            "it left Auto Scaling group {name} (the {GROUP_TAG} tag stays; Auto Scaling may be terminating it): look at the group's activity history before repairing it by hand"
        ));
    }
    if group.is_some() {
        return None;
    }
    if instance.lifecycle.as_deref() == Some("spot") {
        return Some(
            "a Spot instance: EC2 may reclaim it and whoever requested it replaces it; replace it through its request, not by hand"
                .into(),
        );
    }
    let builtin = CONTROLLER_TAGS.iter().map(|(p, who)| (*p, who.to_string()));
    let named = extra
        .iter()
        .map(|p| (p.as_str(), format!("the controller that writes {p}")));
    builtin.chain(named).find_map(|(pattern, who)| {
        let key = instance.tags.keys().find(|k| matches(pattern, k))?;
        Some(format!(
            "managed by {who} (tag {key}): let it replace the instance (e.g. delete the node or its claim), or repair it by hand"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(tags: &[(&str, &str)], lifecycle: Option<&str>) -> InstanceFacts {
        InstanceFacts {
            instance_id: "i-1".into(),
            state: "running".into(),
            lifecycle: lifecycle.map(str::to_string),
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn owner_table() {
        let member = GroupFacts {
            name: "web".into(),
            lifecycle: "InService".into(),
            ..Default::default()
        };
        let extra = vec!["nomad.io/*".to_string(), "owner-controller".to_string()];
        // (instance, group, expected start of the reason; "" = autoheal's)
        let table = [
            (instance(&[], None), None, ""),
            (instance(&[("Name", "db")], None), None, ""),
            (instance(&[(GROUP_TAG, "web")], None), Some(&member), ""),
            (
                instance(&[(GROUP_TAG, "web")], None),
                None,
                "it left Auto Scaling group web",
            ),
            (instance(&[], Some("spot")), None, "a Spot instance"),
            (instance(&[], Some("scheduled")), None, ""),
            (
                instance(
                    &[
                        ("karpenter.sh/nodepool", "default"),
                        ("eks:eks-cluster-name", "c"),
                    ],
                    None,
                ),
                None,
                "managed by Karpenter (tag karpenter.sh/nodepool)",
            ),
            (
                instance(&[("aws:ec2:fleet-id", "fleet-1")], None),
                None,
                "managed by an EC2 Fleet",
            ),
            (
                instance(&[("aws:ec2spot:fleet-request-id", "sfr-1")], None),
                None,
                "managed by a Spot Fleet",
            ),
            (
                instance(&[("aws:elasticmapreduce:job-flow-id", "j-1")], None),
                None,
                "managed by EMR (tag aws:elasticmapreduce:job-flow-id)",
            ),
            (
                instance(&[("kubernetes.io/cluster/prod", "owned")], None),
                None,
                "managed by a Kubernetes cluster",
            ),
            (
                instance(&[("nomad.io/client", "x")], None),
                None,
                "managed by the controller that writes nomad.io/*",
            ),
            (
                instance(&[("owner-controller", "x")], None),
                None,
                "managed by the controller that writes owner-controller",
            ),
            (instance(&[("owner-controller-not", "x")], None), None, ""),
        ];
        for (i, group, want) in table {
            let got = other_owner(&i, group, &extra).unwrap_or_default();
            assert!(
                got.starts_with(want) && (want.is_empty() == got.is_empty()),
                "{:?} {group:?}: {got:?} != {want:?}",
                i.tags
            );
        }
    }
}
