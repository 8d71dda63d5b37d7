//! The seam between the pipeline and EC2 / Auto Scaling: every read and act the pipeline
//! asks of them, per region, as a trait, so that tests can put an in-memory fleet in AWS's
//! place. The production fleet is `Clouds` (the SDK clients per region), whose methods
//! delegate to this module's siblings.

use super::{alarms, autoscaling, backup, ec2, image, launch, notices, takeover, Clouds};
use crate::error::Error;
use crate::model::facts::{Checks, Facts, InstanceFacts};
use crate::model::notice::{EventWindow, Notice};
use crate::rules::alarms::{AlarmSpec, Managed, Members};
use crate::rules::backup::{Backup, Selector, Tagged};
use crate::rules::ladder::Power;
use crate::rules::relaunch::spec::Source;
use crate::rules::replacement::Group;
use crate::rules::scan::Impaired;

/// (id, state) of an image or an instance.
pub type Found = Option<(String, String)>;

/// EC2 and Auto Scaling as the pipeline sees them, in `region`. The reads come first; the
/// acts (which change the world) after them.
#[async_trait::async_trait(?Send)]
pub trait Fleet: Send + Sync {
    /// The instance, its status checks, its group and the group's `autoheal` tag.
    async fn observe(&self, region: &str, instance_id: &str) -> Result<Facts, Error>;
    /// None when EC2 does not know the instance.
    async fn describe_instance(
        &self,
        region: &str,
        instance_id: &str,
    ) -> Result<Option<InstanceFacts>, Error>;
    async fn status_checks(&self, region: &str, instance_id: &str) -> Result<Checks, Error>;
    /// Whether the type supports EC2's automatic recovery.
    async fn recovery_supported(&self, region: &str, instance_type: &str) -> Result<bool, Error>;
    async fn stop_protected(&self, region: &str, instance_id: &str) -> Result<bool, Error>;
    /// How many instances carry `autoheal:cluster=<cluster>`.
    async fn cluster_size(&self, region: &str, cluster: &str) -> Result<usize, Error>;
    /// How many instances (pending to stopped) are in the Availability Zone `zone`.
    async fn zone_size(&self, region: &str, zone: &str) -> Result<usize, Error>;
    /// The shifts of traffic away from a zone of the region in progress (ARC).
    async fn zonal_shifts(&self, region: &str) -> Result<Vec<crate::rules::storm::Shift>, Error>;
    /// The group's desired capacity and members; None: no such group.
    async fn group(&self, region: &str, name: &str) -> Result<Option<Group>, Error>;
    /// Every instance with a status check impaired.
    async fn impaired(&self, region: &str) -> Result<Vec<Impaired>, Error>;
    async fn image_state(&self, region: &str, image_id: &str) -> Result<Found, Error>;
    /// This account's image with that name.
    async fn image_named(&self, region: &str, name: &str) -> Result<Found, Error>;
    /// The instance launched with the `ClientToken` `token`.
    async fn launched_with(&self, region: &str, token: &str) -> Result<Found, Error>;
    /// What carries the incident's tag but is not `ours`.
    async fn strangers(
        &self,
        region: &str,
        incident_id: &str,
        ours: &[&str],
    ) -> Result<Vec<String>, Error>;
    /// What a copy of the instance must carry.
    async fn describe_source(&self, region: &str, instance_id: &str) -> Result<Source, Error>;
    /// (image id, creation ms) of the newest available image among `recorded`.
    async fn newest_backup(
        &self,
        region: &str,
        instance_id: &str,
        recorded: &[String],
    ) -> Result<Option<(String, i64)>, Error>;
    /// The instances tagged for backups, `selected` by the deployer's selector.
    async fn tagged_instances(
        &self,
        region: &str,
        selector: Option<&Selector>,
    ) -> Result<Vec<Tagged>, Error>;
    /// Every image tagged as a backup.
    async fn backups(&self, region: &str) -> Result<Vec<Backup>, Error>;
    /// The metric alarms whose name starts with `prefix`.
    async fn alarms(&self, region: &str, prefix: &str) -> Result<Vec<Managed>, Error>;
    /// Every Auto Scaling group with its members.
    async fn groups(&self, region: &str) -> Result<Vec<Members>, Error>;
    /// instance id -> state, for those of `ids` EC2 knows.
    async fn instance_states(
        &self,
        region: &str,
        ids: &[String],
    ) -> Result<std::collections::HashMap<String, String>, Error>;
    /// Every scheduled event EC2 lists for the region's instances, one notice each.
    async fn scheduled_events(&self, region: &str) -> Result<Vec<Notice>, Error>;
    /// The value of the tag `key` on the Auto Scaling group `group`.
    async fn group_tag(
        &self,
        region: &str,
        group: &str,
        key: &str,
    ) -> Result<Option<String>, Error>;

    /// EC2's instance event windows of the region, with their associations.
    async fn event_windows(&self, region: &str) -> Result<Vec<EventWindow>, Error>;

    /// `SetInstanceHealth Unhealthy`, the grace period skipped.
    async fn mark_unhealthy(&self, region: &str, instance_id: &str) -> Result<(), Error>;
    /// Reboot, stop or start: a rung of the ladder.
    async fn power(&self, region: &str, instance_id: &str, what: Power) -> Result<(), Error>;
    /// `ModifyInstanceEventStartTime`: a scheduled event moved to start at `to_ms`.
    async fn move_event(
        &self,
        region: &str,
        instance_id: &str,
        event_id: &str,
        to_ms: i64,
    ) -> Result<(), Error>;
    /// `CreateImage` without reboot; the image's id.
    async fn create_image(
        &self,
        region: &str,
        instance_id: &str,
        name: &str,
        tags: &[(String, String)],
    ) -> Result<String, Error>;
    /// `RunInstances` of the copy with `token` as its `ClientToken`; the copy's id.
    async fn run_copy(
        &self,
        region: &str,
        source: &Source,
        image_id: &str,
        incident_id: &str,
        token: &str,
    ) -> Result<String, Error>;
    /// Moves `from`'s Elastic IPs to `to`; the public IPs moved.
    async fn move_addresses(
        &self,
        region: &str,
        from: &str,
        to: &str,
    ) -> Result<Vec<String>, Error>;
    /// Tags `old` with its copy, then stops (or terminates) it.
    async fn retire(
        &self,
        region: &str,
        old: &str,
        copy: &str,
        terminate: bool,
        force: bool,
    ) -> Result<(), Error>;
    /// A periodic backup image; None: the name is taken.
    async fn create_backup(
        &self,
        region: &str,
        instance_id: &str,
        name: &str,
    ) -> Result<Option<String>, Error>;
    /// Deregisters the backup and deletes its snapshots; how many were deleted.
    async fn retire_backup(&self, region: &str, backup: &Backup) -> Result<usize, Error>;
    /// Creates or overwrites a status-check alarm.
    async fn put_alarm(&self, region: &str, spec: &AlarmSpec) -> Result<(), Error>;
    async fn delete_alarms(&self, region: &str, names: &[String]) -> Result<(), Error>;
}

#[async_trait::async_trait(?Send)]
impl Fleet for Clouds {
    async fn observe(&self, region: &str, instance_id: &str) -> Result<Facts, Error> {
        super::observe(&self.get(region), instance_id).await
    }
    async fn describe_instance(
        &self,
        region: &str,
        instance_id: &str,
    ) -> Result<Option<InstanceFacts>, Error> {
        ec2::describe_instance(&self.get(region).ec2, instance_id).await
    }
    async fn status_checks(&self, region: &str, instance_id: &str) -> Result<Checks, Error> {
        ec2::status_checks(&self.get(region).ec2, instance_id).await
    }
    async fn recovery_supported(&self, region: &str, instance_type: &str) -> Result<bool, Error> {
        let client = self.get(region).ec2;
        self.recovery_by_type
            .supports(&client, region, instance_type)
            .await
    }
    async fn stop_protected(&self, region: &str, instance_id: &str) -> Result<bool, Error> {
        ec2::stop_protected(&self.get(region).ec2, instance_id).await
    }
    async fn cluster_size(&self, region: &str, cluster: &str) -> Result<usize, Error> {
        ec2::cluster_size(&self.get(region).ec2, cluster).await
    }
    async fn zone_size(&self, region: &str, zone: &str) -> Result<usize, Error> {
        ec2::zone_size(&self.get(region).ec2, zone).await
    }
    async fn zonal_shifts(&self, region: &str) -> Result<Vec<crate::rules::storm::Shift>, Error> {
        let cloud = self.get(region);
        super::zonal_shift::in_progress(&cloud.arc, &cloud.ec2).await
    }
    async fn group(&self, region: &str, name: &str) -> Result<Option<Group>, Error> {
        autoscaling::group(&self.get(region).autoscaling, name).await
    }
    async fn impaired(&self, region: &str) -> Result<Vec<Impaired>, Error> {
        ec2::impaired(&self.get(region).ec2).await
    }
    async fn image_state(&self, region: &str, image_id: &str) -> Result<Found, Error> {
        image::state(&self.get(region).ec2, image_id).await
    }
    async fn image_named(&self, region: &str, name: &str) -> Result<Found, Error> {
        image::find_by_name(&self.get(region).ec2, name).await
    }
    async fn launched_with(&self, region: &str, token: &str) -> Result<Found, Error> {
        launch::find_by_token(&self.get(region).ec2, token).await
    }
    async fn strangers(
        &self,
        region: &str,
        incident_id: &str,
        ours: &[&str],
    ) -> Result<Vec<String>, Error> {
        launch::strangers(&self.get(region).ec2, incident_id, ours).await
    }
    async fn describe_source(&self, region: &str, instance_id: &str) -> Result<Source, Error> {
        launch::describe_source(&self.get(region).ec2, instance_id).await
    }
    async fn newest_backup(
        &self,
        region: &str,
        instance_id: &str,
        recorded: &[String],
    ) -> Result<Option<(String, i64)>, Error> {
        backup::newest_available(&self.get(region).ec2, instance_id, recorded).await
    }
    async fn tagged_instances(
        &self,
        region: &str,
        selector: Option<&Selector>,
    ) -> Result<Vec<Tagged>, Error> {
        backup::tagged_instances(&self.get(region).ec2, selector).await
    }
    async fn backups(&self, region: &str) -> Result<Vec<Backup>, Error> {
        backup::backups(&self.get(region).ec2).await
    }
    async fn alarms(&self, region: &str, prefix: &str) -> Result<Vec<Managed>, Error> {
        alarms::managed(&self.get(region).cloudwatch, prefix).await
    }
    async fn groups(&self, region: &str) -> Result<Vec<Members>, Error> {
        autoscaling::groups(&self.get(region).autoscaling).await
    }
    async fn instance_states(
        &self,
        region: &str,
        ids: &[String],
    ) -> Result<std::collections::HashMap<String, String>, Error> {
        ec2::states(&self.get(region).ec2, ids).await
    }
    async fn scheduled_events(&self, region: &str) -> Result<Vec<Notice>, Error> {
        notices::scheduled_events(&self.get(region).ec2, region).await
    }
    async fn group_tag(
        &self,
        region: &str,
        group: &str,
        key: &str,
    ) -> Result<Option<String>, Error> {
        notices::group_tag(&self.get(region).autoscaling, group, key).await
    }
    async fn event_windows(&self, region: &str) -> Result<Vec<EventWindow>, Error> {
        notices::event_windows(&self.get(region).ec2).await
    }
    async fn mark_unhealthy(&self, region: &str, instance_id: &str) -> Result<(), Error> {
        autoscaling::mark_unhealthy(&self.get(region).autoscaling, instance_id).await
    }
    async fn power(&self, region: &str, instance_id: &str, what: Power) -> Result<(), Error> {
        ec2::power(&self.get(region).ec2, instance_id, what).await
    }
    async fn move_event(
        &self,
        region: &str,
        instance_id: &str,
        event_id: &str,
        to_ms: i64,
    ) -> Result<(), Error> {
        notices::move_event(&self.get(region).ec2, instance_id, event_id, to_ms).await
    }
    async fn create_image(
        &self,
        region: &str,
        instance_id: &str,
        name: &str,
        tags: &[(String, String)],
    ) -> Result<String, Error> {
        image::create(&self.get(region).ec2, instance_id, name, tags).await
    }
    async fn run_copy(
        &self,
        region: &str,
        source: &Source,
        image_id: &str,
        incident_id: &str,
        token: &str,
    ) -> Result<String, Error> {
        launch::run_copy(&self.get(region).ec2, source, image_id, incident_id, token).await
    }
    async fn move_addresses(
        &self,
        region: &str,
        from: &str,
        to: &str,
    ) -> Result<Vec<String>, Error> {
        takeover::move_addresses(&self.get(region).ec2, from, to).await
    }
    async fn retire(
        &self,
        region: &str,
        old: &str,
        copy: &str,
        terminate: bool,
        force: bool,
    ) -> Result<(), Error> {
        takeover::retire(&self.get(region).ec2, old, copy, terminate, force).await
    }
    async fn create_backup(
        &self,
        region: &str,
        instance_id: &str,
        name: &str,
    ) -> Result<Option<String>, Error> {
        backup::create(&self.get(region).ec2, instance_id, name).await
    }
    async fn retire_backup(&self, region: &str, backup: &Backup) -> Result<usize, Error> {
        backup::retire(&self.get(region).ec2, backup).await
    }
    async fn put_alarm(&self, region: &str, spec: &AlarmSpec) -> Result<(), Error> {
        alarms::put(&self.get(region).cloudwatch, spec, &[]).await
    }
    async fn delete_alarms(&self, region: &str, names: &[String]) -> Result<(), Error> {
        alarms::delete(&self.get(region).cloudwatch, names).await
    }
}
