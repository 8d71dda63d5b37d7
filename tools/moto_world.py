"""A control API for the moto server, so tests can make the world fail the way AWS does.

moto reports every running instance's status checks `ok`, stops instances at once, makes
images `available` at once and leaves a group member marked Unhealthy in its group. This
module patches moto's EC2 and Auto Scaling models so that, on request, an instance's status
checks are impaired (or any other status), a stop stays in `stopping`, images made by
CreateImage stay `pending` (or end `failed`), and Auto Scaling replaces members marked
Unhealthy through SetInstanceHealth (after a delay, optionally showing `Terminating` for a
while). The requests come from
tests as `POST /_autoheal/<endpoint>` with a JSON body, to the same host:port as moto;
`wrap(app)` is the WSGI middleware that answers them. See docs/emulator.md.

It also plays two instance settings autoheal's escalation ladder reads, as EC2 does over
its Query API, with no control request: `MaintenanceOptions.AutoRecovery` (`default`, or
`disabled` through RunInstances, a launch template or ModifyInstanceMaintenanceOptions,
which moto lacks), and stop protection (`DisableApiStop`: StopInstances is refused with
EC2's `OperationNotPermitted` message, before any instance of the request is stopped).
These are kept on moto's Instance objects, not here, and `reset` leaves them. (The third
fact, DescribeInstanceTypes' `AutoRecoverySupported`, is moto's own data.)

RunInstances honours `ClientToken` as EC2 does (moto launches anew on every retry): a
token already used in the account and region with the same parameters answers the same
reservation again, even once its instances are terminated; with other parameters,
`IdempotentParameterMismatch`. DescribeInstances reports the token and filters on
`client-token`. The tokens are kept on moto's EC2 backend, so moto's reset forgets them and
`reset` here leaves them.

What a relaunched copy is checked against, kept as EC2 keeps it (moto drops it):
RunInstances' `DisableApiTermination`, `Placement.Tenancy` and `CreditSpecification`
(DescribeInstanceCreditSpecifications answers each instance's own option, EC2's default
without one); CreateImage snapshots each volume of the instance (encrypted under the
volume's KMS key, listed in the image's block device mappings), and an instance launched
from such an image gets its volumes from those snapshots, encrypted as they are. A stuck
stop set `force_ends` is ended by a forced StopInstances, as AWS usually ends it.

Auto Scaling's `aws:autoscaling:groupName` tag stays on an instance that leaves its group
(DetachInstances, or terminated by the group), as in AWS; moto deletes it on detach. And
CreateTags and DeleteTags refuse tag keys starting with `aws:` (any case), as EC2 does, so
that only AWS's own launches carry such tags.

State is kept here, in module-level dicts guarded by one lock, keyed by instance id or
image id (moto's ids are random and unique across its accounts and regions, so no account
or region is needed; a replacement records the account and region of the group). Whatever
moves with time (a pending image's deadline, a due replacement) moves in `settle()`, run at
the start of every request: no threads. `POST /moto-api/reset` clears it along with moto's
own state.
"""

import copy
import datetime
import json
import threading
import time

from moto.autoscaling.exceptions import ValidationError as AutoscalingValidationError
from moto.autoscaling.models import ASG_NAME_TAG, AutoScalingBackend, autoscaling_backends
from moto.core.responses import ActionResult
from moto.ec2.exceptions import EC2ClientError
from moto.ec2.models import ec2_backends
from moto.ec2.models.amis import Ami, AmiBackend
from moto.ec2.models.instances import Instance, InstanceBackend, StateReason
from moto.ec2.models.tags import TagBackend
from moto.ec2.responses.instances import InstanceResponse
from moto.ec2.responses.tags import TagResponse
from moto.ec2.utils import filter_dict_attribute_mapping

PREFIX = "/_autoheal/"
STATUSES = ("ok", "impaired", "insufficient-data", "initializing")
# DescribeInstanceStatus's `reachability` detail for each overall status, as AWS reports it.
REACHABILITY = {
    "ok": "passed",
    "impaired": "failed",
    "insufficient-data": "insufficient-data",
    "initializing": "initializing",
}
RUNNING, STOPPING = 16, 64
# MaintenanceOptions.AutoRecovery's values (InstanceAutoRecoveryState).
AUTO_RECOVERY = ("disabled", "default")

_lock = threading.RLock()
# instance id -> {"system"|"instance": (status, since)}; a kind absent = moto's default.
_status = {}
# instance id -> whether a forced stop ends its stuck stop (`force_ends`); a stop of an
# instance listed here does not complete otherwise.
_stuck = {}
# Whether the StopInstances being handled on this thread asked for `Force`.
_forcing = threading.local()
# instance id -> seconds an image made from it stays pending (None: until released).
_pending = {}
# image id -> (Ami, unix time it becomes available), for images held with pending_seconds.
_due = {}
# Auto Scaling replacement of Unhealthy members: the setting for every group (None: off) and
# per group name; each a {"delay_seconds", "terminating_seconds"} dict.
_replace_all = None
_replace_groups = {}
# instance id -> the mark being replaced: account, region, group, scope (the group name whose
# setting applies, None for the all-groups one), marked (unix time), terminate_at (when the
# member starts showing Terminating), gone_at (when it is terminated and replaced), phase
# ("marked", then "terminating"), members (the group's instance ids when it was marked).
_marks = {}
# what settle() did: {"instance_id", "replacement_id", "group", "account", "region", "at"}.
_replaced = []
# marks whose replacement raised in moto: {"instance_id", "group", "error", "at"}.
_failed = []


class HttpError(Exception):
    def __init__(self, status, message, **extra):
        super().__init__(message)
        self.status, self.body = status, {"error": message, **extra}


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


# --- finding moto's objects, in any account and region ------------------------------------


def _backends():
    for account in list(dict.values(ec2_backends)):
        yield from list(dict.values(account))


def _find_instance(instance_id):
    for backend in _backends():
        for reservation in list(backend.reservations.values()):
            for instance in list(reservation.instances):
                if instance.id == instance_id:
                    return instance
    raise HttpError(404, f"no instance {instance_id} in any moto account or region")


def _find_image(image_id):
    for backend in _backends():
        ami = backend.amis.get(image_id)
        if ami is not None:
            return ami
    raise HttpError(404, f"no image {image_id} in any moto account or region")


def _images_of(instance_id):
    return [
        ami
        for backend in _backends()
        for ami in list(backend.amis.values())
        if ami.instance_id == instance_id
    ]


# --- patches of moto's models -------------------------------------------------------------


def _status_property(kind, original):
    def getter(self):
        with _lock:
            override = _status.get(self.id, {}).get(kind)
        if override is None or self.state_code != RUNNING:
            return original.fget(self)
        status, since = override
        detail = {"Name": "reachability", "Status": REACHABILITY[status]}
        if status == "impaired":
            detail["ImpairedSince"] = since
        return {"Status": status, "Details": [detail]}

    return property(getter)


_STATUS_FILTERS = {
    "system-status.status": ("system_status", "Status"),
    "instance-status.status": ("instance_status", "Status"),
    "system-status.reachability": ("system_status", "Reachability"),
    "instance-status.reachability": ("instance_status", "Reachability"),
}


def _status_value(instance, attribute, field):
    status = getattr(instance, attribute)
    if field == "Status":
        return status["Status"]
    details = status.get("Details") or []
    return details[0]["Status"] if details else None


def _applies(original):
    # moto's Instance.applies (DescribeInstanceStatus's filters) knows only
    # instance-state-name and instance-state-code; AWS also filters on the checks.
    def applies(self, filters):
        if not original(self, filters):
            return False
        for f in filters or []:
            if f["name"] in _STATUS_FILTERS:
                attribute, field = _STATUS_FILTERS[f["name"]]
                if _status_value(self, attribute, field) not in f["values"]:
                    return False
        return True

    return applies


def _stop(original):
    def stop(self):
        with _lock:
            stuck = self.id in _stuck
            force_ends = _stuck.get(self.id, False)
        if not stuck or (force_ends and getattr(_forcing, "active", False)):
            return original(self)
        previous = copy.copy(self._state)
        self._state.name, self._state.code = "stopping", STOPPING
        self._reason = f"User initiated ({_now().strftime('%Y-%m-%d %H:%M:%S UTC')})"
        self.state_reason = StateReason(
            "Client.UserInitiatedShutdown: User initiated shutdown",
            "Client.UserInitiatedShutdown",
        )
        return previous

    return stop


def _start(original):
    def start(self):
        if self._state.code == STOPPING:
            raise EC2ClientError(
                "IncorrectInstanceState",
                f"The instance '{self.id}' is not in a state from which it can be started.",
            )
        return original(self)

    return start


def _reboot(original):
    # moto's reboot sets any instance `running`; a stopping instance stays stopping.
    def reboot(self):
        if self._state.code == STOPPING:
            return None
        return original(self)

    return reboot


# --- instance settings moto lacks: maintenance options, stop protection -------------------
#
# These are EC2 state set through EC2's own API, kept on moto's Instance (so they go with
# the instance, in moto's reset too), not overrides of this module: /_autoheal/reset leaves
# them alone.


def _check_auto_recovery(value, parameter):
    if value not in AUTO_RECOVERY:
        raise EC2ClientError(
            "InvalidParameterValue",
            f"Value ({value}) for parameter {parameter} is invalid. "
            f"Valid values: {', '.join(AUTO_RECOVERY)}.",
        )
    return value


def _maintenance_options(self):
    # DescribeInstances' (and RunInstances') <maintenanceOptions><autoRecovery>.
    return {"AutoRecovery": getattr(self, "_auto_recovery", "default")}


def _init(original):
    # What a launch template gives an instance launched from it (RunInstances with
    # LaunchTemplate, Auto Scaling): moto reads neither of these from the template.
    def init(self, ec2_backend, *args, **kwargs):
        original(self, ec2_backend, *args, **kwargs)
        self._auto_recovery = "default"
        if kwargs.get("launch_template"):
            data = ec2_backend._get_template_from_args(kwargs["launch_template"]).data or {}
            recovery = (data.get("MaintenanceOptions") or {}).get("AutoRecovery")
            if recovery in AUTO_RECOVERY:
                self._auto_recovery = recovery
            if data.get("DisableApiStop") in (True, "true") and not self.disable_api_stop:
                self.disable_api_stop = True
            credits = (data.get("CreditSpecification") or {}).get("CpuCredits")
            if credits in CPU_CREDITS:
                self._cpu_credits = credits

    return init


def _run_instances(original):
    # moto ignores RunInstances' MaintenanceOptions. A request's own values win over the
    # launch template's, as in EC2 (moto passes `DisableApiStop or False` on, so false and
    # absent look alike there: the request is read here).
    def run_instances(self):
        recovery = self._get_param("MaintenanceOptions.AutoRecovery")
        if recovery is not None:
            _check_auto_recovery(recovery, "MaintenanceOptions.AutoRecovery")
        stop = self._get_param("DisableApiStop")
        termination = self._get_param("DisableApiTermination")
        tenancy = self._get_param("Placement.Tenancy")
        if tenancy is not None:
            _check_choice(tenancy, TENANCIES, "Placement.Tenancy")
        credits = self._get_param("CreditSpecification.CpuCredits")
        if credits is not None:
            _check_choice(credits, CPU_CREDITS, "CreditSpecification.CpuCredits")
        result = original(self)
        for instance in getattr(result.result, "instances", []):
            if recovery is not None:
                instance._auto_recovery = recovery
            if stop is not None:
                instance.disable_api_stop = stop in (True, "true")
            if termination is not None:
                instance.disable_api_termination = termination in (True, "true")
            if tenancy is not None:
                instance.placement.tenancy = tenancy
            if credits is not None:
                instance._cpu_credits = credits
        return result

    return run_instances


def _modify_instance_maintenance_options(self):
    """ModifyInstanceMaintenanceOptions (moto: not implemented): AutoRecovery only."""
    instance = self.ec2_backend.get_instance(self._get_param("InstanceId"))
    recovery = self._get_param("AutoRecovery")
    if recovery is not None:
        _check_auto_recovery(recovery, "AutoRecovery")
    self.error_on_dryrun()
    if recovery is not None:
        instance._auto_recovery = recovery
    return ActionResult({"InstanceId": instance.id, "AutoRecovery": instance._auto_recovery})


# Query parameters that are not part of what a retry must repeat: the protocol's, and the
# token itself. The SDKs send a retry with the same parameters (the token is what they
# generate once per call), so every other parameter counts, compared as sorted
# (name, value) pairs: a different value, or one added or left out, is another request.
_NOT_COMPARED = ("Action", "Version", "ClientToken")
_RUN_STATE = "RunInstances.Reservation.Instances.Instance.State"
_TOKEN_MISMATCH = (
    "Arguments on this idempotent request are inconsistent with arguments used in "
    "previous request(s)."
)


def _client_token(original):
    # moto records ClientToken on the instances but launches again on every retry. EC2
    # answers a retry (same token, account and region) with the reservation it launched,
    # its instances as they are now: still after they are terminated (its documentation:
    # the token stays valid at least 24 hours after termination; EC2 has lately also been
    # seen to refuse such a retry with IdempotentInstanceTerminated, not played here).
    def run_instances(self):
        if self._get_param("DryRun") in (True, "true"):
            return original(self)  # launches nothing, records nothing
        token = self._get_param("ClientToken")
        if not token:
            result = original(self)
            # moto fills in "ABCDE" for a missing token; EC2 reports none.
            for instance in getattr(result.result, "instances", []):
                instance.client_token = ""
            return result
        request = sorted(
            (name, value)
            for name, values in self.querystring.items()
            if name not in _NOT_COMPARED
            for value in values
        )
        backend = self.ec2_backend
        # Held across the launch: two concurrent requests with one token launch once.
        with _lock:
            tokens = backend.__dict__.setdefault("_autoheal_client_tokens", {})
            known = tokens.get(token)
            if known is not None:
                earlier, reservation_id = known
                if earlier != request:
                    raise EC2ClientError("IdempotentParameterMismatch", _TOKEN_MISMATCH)
                # moto's RunInstances answers every instance `pending`; a retry shows the
                # state each is in now. (A transformer of this request's response only.)
                self.RESPONSE_KEY_PATH_TO_TRANSFORMER = {
                    **type(self).RESPONSE_KEY_PATH_TO_TRANSFORMER, _RUN_STATE: lambda state: state,
                }
                return ActionResult(copy.copy(backend.reservations[reservation_id]))
            result = original(self)
            tokens[token] = (request, result.result.id)
            return result

    return run_instances


def _stop_instances(original):
    # moto refuses with the message of termination protection ("may not be terminated"),
    # and only after stopping the instances listed before the protected one.
    def stop_instances(self, instance_ids):
        for instance in self.get_multi_instances_by_id(instance_ids):
            if instance.disable_api_stop is True:
                raise EC2ClientError(
                    "OperationNotPermitted",
                    f"The instance '{instance.id}' may not be stopped. Modify its "
                    "'disableApiStop' instance attribute and try again.",
                )
        return original(self, instance_ids)

    return stop_instances


def _modify_instance_attribute(original):
    # ModifyInstanceAttribute Attribute=disableApiStop Value=true: moto stores the string.
    def modify_instance_attribute(self, instance_id, key, value):
        if key == "disable_api_stop" and isinstance(value, str):
            value = value.lower() == "true"
        return original(self, instance_id, key, value)

    return modify_instance_attribute


def _stop_instances_force(original):
    # moto's StopInstances does not read `Force`; a stuck stop set `force_ends` needs it.
    def stop_instances(self):
        _forcing.active = self._get_param("Force") in (True, "true")
        try:
            return original(self)
        finally:
            _forcing.active = False

    return stop_instances


# --- launch settings moto drops: termination protection, tenancy, CPU credits --------------
#
# moto ignores RunInstances' `DisableApiTermination`, `Placement.Tenancy` and
# `CreditSpecification` (DescribeInstanceCreditSpecifications answers `standard` for every
# instance). Kept on moto's Instance, like the settings above.
TENANCIES = ("default", "dedicated", "host")
CPU_CREDITS = ("standard", "unlimited")


def _default_cpu_credits(instance_type):
    # EC2's default credit option: T2 `standard`, later burstable families (T3, T3a, T4g)
    # `unlimited`. Other types are not burstable; moto answered `standard` for them, kept.
    family = (instance_type or "").split(".")[0]
    return "unlimited" if family.startswith("t") and family != "t2" else "standard"


def _check_choice(value, choices, parameter):
    if value not in choices:
        raise EC2ClientError(
            "InvalidParameterValue",
            f"Value ({value}) for parameter {parameter} is invalid. "
            f"Valid values: {', '.join(choices)}.",
        )
    return value


def _cpu_credits(self):
    return getattr(self, "_cpu_credits", None) or _default_cpu_credits(self.instance_type)


def _describe_instance_credit_specifications(self):
    """DescribeInstanceCreditSpecifications with each instance's own option (moto: always
    `standard`)."""
    instance_ids = self._get_param("InstanceIds", [])
    instances = self.ec2_backend.describe_instance_credit_specifications(instance_ids)
    return ActionResult({
        "InstanceCreditSpecifications": [
            {"InstanceId": i.id, "CpuCredits": _cpu_credits(i)} for i in instances
        ],
    })


# --- an image's volumes, and the volumes of an instance launched from it ------------------
#
# EC2's CreateImage snapshots each EBS volume attached to the instance: the image's block
# device mappings list each device with its snapshot, and a snapshot of an encrypted volume
# is encrypted under the volume's KMS key. RunInstances from the image creates each volume
# from its snapshot, encrypted as the snapshot is, under its key. moto gives every image one
# unencrypted snapshot of a fresh 15 GiB volume, and launches every instance with a fresh
# unencrypted 8 GiB root volume. Played for images made by CreateImage (moto's own stock
# images are left as they are).


def _image_volumes(backend, ami, instance):
    """Replaces moto's snapshot of a fresh volume by one snapshot per volume of `instance`,
    carrying the placeholder's tags (CreateImage's TagSpecifications of type snapshot)."""
    placeholder = getattr(ami, "ebs_snapshot", None)
    tags = dict(backend.tags.get(placeholder.id, {})) if placeholder is not None else {}
    mappings, snapshots = [], []
    for device, bdt in sorted(instance.block_device_mapping.items()):
        volume = backend.get_volume(bdt.volume_id)
        snapshot = backend.create_snapshot(
            volume.id, f"Created by CreateImage({instance.id}) for {ami.id}",
            ami.owner_id, from_ami=ami.id,
        )
        snapshot.encrypted = bool(volume.encrypted)
        snapshot.kms_key_id = volume.kms_key_id if volume.encrypted else None
        if tags:
            backend.create_tags([snapshot.id], tags)
        snapshots.append((device, snapshot))
        ebs = {
            "SnapshotId": snapshot.id,
            "VolumeSize": volume.size,
            "DeleteOnTermination": bool(bdt.delete_on_termination),
            "VolumeType": volume.volume_type,
            "Encrypted": bool(volume.encrypted),
        }
        mappings.append({"DeviceName": device, "Ebs": ebs})
    if not snapshots:
        return
    root = next((s for d, s in snapshots if d == ami.root_device_name), snapshots[0][1])
    if placeholder is not None:
        backend.snapshots.pop(placeholder.id, None)
        backend.tags.pop(placeholder.id, None)
    ami.ebs_snapshot = root
    ami._autoheal_snapshots = [s for _, s in snapshots]
    ami._autoheal_mappings = mappings


def _image_block_device_mappings(original):
    def block_device_mappings(self):
        mappings = getattr(self, "_autoheal_mappings", None)
        if mappings is None:
            return original.fget(self)
        return copy.deepcopy(mappings)

    return property(block_device_mappings)


def _launch_mappings(ami, requested):
    """The block device mappings an instance launched from `ami` gets: the image's, each
    with its snapshot's encryption and key, the request's own entries (by device) over them."""
    mappings = {}
    for m in ami._autoheal_mappings:
        snapshot = ami.ec2_backend.snapshots.get(m["Ebs"]["SnapshotId"])
        ebs = dict(m["Ebs"])
        if snapshot is not None and snapshot.encrypted:
            ebs["Encrypted"] = True
            ebs["KmsKeyId"] = snapshot.kms_key_id
        mappings[m["DeviceName"]] = {"DeviceName": m["DeviceName"], "Ebs": ebs}
    for m in requested or []:
        base = mappings.get(m.get("DeviceName"))
        if base is None or "Ebs" not in m:
            mappings[m.get("DeviceName")] = m
            continue
        ebs = {**base["Ebs"], **m["Ebs"]}
        if base["Ebs"].get("Encrypted"):
            ebs["Encrypted"] = True  # a volume of an encrypted snapshot stays encrypted
        mappings[m["DeviceName"]] = {**m, "Ebs": ebs}
    return list(mappings.values())


def _run_instances_from_image(original):
    def run_instances(self, image_id, count, user_data, security_group_names, **kwargs):
        ami = self.amis.get(image_id) if image_id else None
        template_mappings = kwargs.get("launch_template") and (
            self._get_template_from_args(kwargs["launch_template"]).data or {}
        ).get("BlockDeviceMappings")
        if getattr(ami, "_autoheal_mappings", None) and not template_mappings:
            kwargs["block_device_mappings"] = _launch_mappings(
                ami, kwargs.get("block_device_mappings")
            )
        return original(self, image_id, count, user_data, security_group_names, **kwargs)

    return run_instances


# --- Auto Scaling's group tag, and tag keys reserved to AWS --------------------------------
#
# moto tags every instance a group launches with aws:autoscaling:groupName (at creation,
# on scaling, and in the wrapper's replacements, which launch through moto's group), but
# deletes the tag when the instance leaves the group; AWS leaves it there. Per thread: a
# request elsewhere deleting tags meanwhile is not affected.
_detaching = threading.local()


def _detach_instances(original):
    # DetachInstances, and TerminateInstanceInAutoScalingGroup (moto detaches first).
    def detach_instances(self, group_name, instance_ids, should_decrement):
        _detaching.active = True
        try:
            return original(self, group_name, instance_ids, should_decrement)
        finally:
            _detaching.active = False

    return detach_instances


def _delete_tags(original):
    def delete_tags(self, resource_ids, tags):
        if getattr(_detaching, "active", False):
            tags = {key: value for key, value in tags.items() if key != ASG_NAME_TAG}
        return original(self, resource_ids, tags)

    return delete_tags


def _refuse_reserved_keys(original):
    # EC2 refuses a whole CreateTags or DeleteTags naming a key with the prefix `aws:` in
    # any case (AWS sets and removes those itself); moto accepts them.
    def action(self):
        for tag in self._get_param("Tags", []) or []:
            key = tag.get("Key") or ""
            if key.lower().startswith("aws:"):
                raise EC2ClientError(
                    "InvalidParameterValue",
                    f"Value ( {key} ) for parameter key is invalid. "
                    "Tag keys starting with 'aws:' are reserved for internal use",
                )
        return original(self)

    return action


def _hold(ami, state="pending"):
    ami.state = state
    snapshots = getattr(ami, "_autoheal_snapshots", None) or [getattr(ami, "ebs_snapshot", None)]
    for snapshot in snapshots:
        if snapshot is not None:
            snapshot.status = {"pending": "pending", "available": "completed"}.get(
                state, "error"
            )
    if state == "failed":
        ami.state_reason = {
            "Code": "Server.InternalError",
            "Message": "Image creation failed (emulated)",
        }


def _create_image(original):
    def create_image(self, instance_id, name, description, tag_specifications):
        ami = original(self, instance_id, name, description, tag_specifications)
        _image_volumes(self, ami, self.get_instance(instance_id))
        with _lock:
            if instance_id in _pending:
                _hold(ami, "pending")
                seconds = _pending[instance_id]
                if seconds is not None:
                    _due[ami.id] = (ami, time.time() + seconds)
        return ami

    return create_image


def settle():
    """Makes images whose pending_seconds have passed `available` and moves due Auto Scaling
    replacements on; run before each request."""
    with _lock:
        _settle_replacements()
        if not _due:
            return
        now = time.time()
        for image_id, (ami, due) in list(_due.items()):
            if due <= now:
                if ami.state == "pending":
                    _hold(ami, "available")
                del _due[image_id]


def _group_of(backend, instance_id):
    for group in list(backend.autoscaling_groups.values()):
        for state in list(group.instance_states):
            if state.instance.id == instance_id:
                return group, state
    return None, None


def _setting_for(group_name):
    """(scope, setting) that applies to a group now: its own, else the all-groups one."""
    if group_name in _replace_groups:
        return group_name, _replace_groups[group_name]
    if _replace_all is not None:
        return None, _replace_all
    return None, None


def _set_instance_health(original):
    # moto records the health and does nothing else; Auto Scaling replaces an Unhealthy member.
    def set_instance_health(self, instance_id, health_status):
        try:
            result = original(self, instance_id, health_status)
        except StopIteration:
            # moto's next() over the groups finds no member: a 500. AWS answers this.
            raise AutoscalingValidationError(
                f"Instance Id not found - No managed instance found for instance ID: {instance_id}"
            ) from None
        group, _ = _group_of(self, instance_id)
        if group is None:
            return result
        with _lock:
            mark = _marks.get(instance_id)
            if health_status != "Unhealthy":
                # Healthy again before Auto Scaling acted: nothing to replace.
                if mark is not None and mark["phase"] == "marked":
                    del _marks[instance_id]
                return result
            if mark is not None:
                return result  # marked already: the first mark's time stands
            scope, setting = _setting_for(group.name)
            if setting is None:
                return result
            now = time.time()
            terminate_at = now + setting["delay_seconds"]
            _marks[instance_id] = {
                "account": self.account_id,
                "region": self.region_name,
                "group": group.name,
                "scope": scope,
                "marked": now,
                "terminate_at": terminate_at,
                "gone_at": terminate_at + setting["terminating_seconds"],
                "phase": "marked",
                "members": [s.instance.id for s in group.instance_states],
            }
        return result

    return set_instance_health


def _replace(instance_id, mark, now):
    """Moves one mark on; True when it is done with (replaced, or nothing left to replace)."""
    backend = autoscaling_backends[mark["account"]][mark["region"]]
    group, state = _group_of(backend, instance_id)
    if group is None:
        return True  # terminated, detached or its group deleted meanwhile
    if mark["phase"] == "marked":
        if mark["terminate_at"] > now:
            return False
        if state.health_status != "Unhealthy":
            return True
        mark["phase"] = "terminating"
        state.lifecycle_state = "Terminating"
    if mark["gone_at"] > now:
        return False
    before = {s.instance.id for s in group.instance_states}
    # TerminateInstanceInAutoScalingGroup with ShouldDecrementDesiredCapacity=false: moto
    # detaches the member, launches from the group's launch template/configuration back up
    # to desired capacity (InService, Healthy), then terminates the instance in EC2.
    backend.terminate_instance(instance_id, should_decrement=False)
    after = [s.instance.id for s in group.instance_states]
    new = [i for i in after if i not in before]
    if not new:
        # Something launched it earlier (moto counts only InService members, so any capacity
        # change during Terminating launches at once): the newest member not there at the mark.
        claimed = {r["replacement_id"] for r in _replaced}
        new = [i for i in after if i not in mark["members"] and i not in claimed][-1:]
    _replaced.append({
        "instance_id": instance_id,
        "replacement_id": new[0] if new else None,
        "group": group.name,
        "account": mark["account"],
        "region": mark["region"],
        "at": now,
    })
    return True


def _settle_replacements():
    if not _marks:
        return
    now = time.time()
    for instance_id, mark in list(_marks.items()):
        try:
            done = _replace(instance_id, mark, now)
        except Exception as e:  # noqa: BLE001 - a request to moto must not fail for this
            _failed.append({"instance_id": instance_id, "group": mark["group"],
                            "error": f"{type(e).__name__}: {e}", "at": now})
            done = True
        if done:
            _marks.pop(instance_id, None)


_original_stop = Instance.stop  # moto's own, before install(): finish-stop completes with it
_installed = False


def install():
    """Patches moto's EC2 and Auto Scaling models; wraps whatever CreateImage is at the time.
    Idempotent."""
    global _installed
    if _installed:
        return
    _installed = True
    Instance.system_status = _status_property("system", Instance.system_status)
    Instance.instance_status = _status_property("instance", Instance.instance_status)
    Instance.applies = _applies(Instance.applies)
    Instance.stop = _stop(Instance.stop)
    Instance.start = _start(Instance.start)
    Instance.reboot = _reboot(Instance.reboot)
    Instance.__init__ = _init(Instance.__init__)
    Instance.maintenance_options = property(_maintenance_options)
    InstanceResponse.run_instances = _client_token(_run_instances(InstanceResponse.run_instances))
    # DescribeInstances' client-token filter (moto: NotImplementedError, a 500).
    filter_dict_attribute_mapping["client-token"] = "client_token"
    # DescribeInstances' availability-zone filter: moto compares it with the placement
    # object, not its zone name, and so matches no instance.
    filter_dict_attribute_mapping["availability-zone"] = "_placement.zone"
    InstanceResponse.modify_instance_maintenance_options = _modify_instance_maintenance_options
    InstanceBackend.stop_instances = _stop_instances(InstanceBackend.stop_instances)
    InstanceResponse.stop_instances = _stop_instances_force(InstanceResponse.stop_instances)
    InstanceResponse.describe_instance_credit_specifications = (
        _describe_instance_credit_specifications
    )
    InstanceBackend.run_instances = _run_instances_from_image(InstanceBackend.run_instances)
    Ami.block_device_mappings = _image_block_device_mappings(Ami.block_device_mappings)
    InstanceBackend.modify_instance_attribute = _modify_instance_attribute(
        InstanceBackend.modify_instance_attribute
    )
    AmiBackend.create_image = _create_image(AmiBackend.create_image)
    AutoScalingBackend.detach_instances = _detach_instances(AutoScalingBackend.detach_instances)
    TagBackend.delete_tags = _delete_tags(TagBackend.delete_tags)
    TagResponse.create_tags = _refuse_reserved_keys(TagResponse.create_tags)
    TagResponse.delete_tags = _refuse_reserved_keys(TagResponse.delete_tags)
    AutoScalingBackend.set_instance_health = _set_instance_health(
        AutoScalingBackend.set_instance_health
    )


# --- the control endpoints ----------------------------------------------------------------


def _required(body, key):
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise HttpError(400, f"`{key}` (a string) is required")
    return value


def _flag(body, key):
    value = body.get(key)
    if not isinstance(value, bool):
        raise HttpError(400, f"`{key}` (true or false) is required")
    return value


def _describe_status(instance_id):
    with _lock:
        kinds = _status.get(instance_id, {})
        return {
            "instance_id": instance_id,
            "system": kinds["system"][0] if "system" in kinds else None,
            "instance": kinds["instance"][0] if "instance" in kinds else None,
        }


def status(body):
    instance_id = _required(body, "instance_id")
    changes = {k: body[k] for k in ("system", "instance") if k in body}
    if not changes:
        raise HttpError(400, "give `system` and/or `instance`")
    for kind, value in changes.items():
        if value is not None and value not in STATUSES:
            raise HttpError(400, f"`{kind}` must be one of {list(STATUSES)} or null")
    _find_instance(instance_id)
    with _lock:
        kinds = _status.setdefault(instance_id, {})
        for kind, value in changes.items():
            if value is None:
                kinds.pop(kind, None)
            elif kinds.get(kind, (None,))[0] != value:
                kinds[kind] = (value, _now())
        if not kinds:
            del _status[instance_id]
    return _describe_status(instance_id)


def stuck_stop(body):
    instance_id = _required(body, "instance_id")
    stuck = _flag(body, "stuck")
    force_ends = body.get("force_ends", False)
    if not isinstance(force_ends, bool):
        raise HttpError(400, "`force_ends` must be true or false")
    if force_ends and not stuck:
        raise HttpError(400, "`force_ends` needs `stuck` true")
    instance = _find_instance(instance_id)
    with _lock:
        if stuck:
            _stuck[instance_id] = force_ends
        else:
            _stuck.pop(instance_id, None)
    return {"instance_id": instance_id, "stuck": stuck, "force_ends": force_ends,
            "state": instance.state}


def finish_stop(body):
    instance_id = _required(body, "instance_id")
    instance = _find_instance(instance_id)
    if instance.state_code != STOPPING:
        raise HttpError(409, f"{instance_id} is not stopping", state=instance.state)
    _original_stop(instance)
    return {"instance_id": instance_id, "previous_state": "stopping", "state": instance.state}


def pending_images(body):
    instance_id = _required(body, "instance_id")
    seconds = body.get("pending_seconds")
    if seconds is not None and (
        isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0
    ):
        raise HttpError(400, "`pending_seconds` must be a number >= 0")
    pending = body.get("pending", seconds is not None)
    if not isinstance(pending, bool):
        raise HttpError(400, "`pending` (true or false) is required")
    if not pending and seconds is not None:
        raise HttpError(400, "`pending_seconds` needs `pending` true")
    _find_instance(instance_id)
    with _lock:
        if pending:
            _pending[instance_id] = seconds
        else:
            _pending.pop(instance_id, None)
    return {"instance_id": instance_id, "pending": pending, "pending_seconds": seconds}


def release_image(body):
    fail = body.get("fail", False)
    if not isinstance(fail, bool):
        raise HttpError(400, "`fail` must be true or false")
    if "image_id" in body:
        ami = _find_image(_required(body, "image_id"))
        if ami.state != "pending":
            if fail or ami.state != "available":
                raise HttpError(409, f"{ami.id} is not pending", state=ami.state)
        amis = [ami]
    elif "instance_id" in body:
        amis = _images_of(_required(body, "instance_id"))
    else:
        raise HttpError(400, "give `image_id` or `instance_id`")
    released = []
    with _lock:
        for ami in amis:
            if ami.state == "pending":
                _hold(ami, "failed" if fail else "available")
                _due.pop(ami.id, None)
            released.append({"image_id": ami.id, "state": ami.state})
    return {"images": released}


def _seconds(body, key):
    value = body.get(key, 0)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise HttpError(400, f"`{key}` must be a number >= 0")
    return value


def _describe_replace():
    return {"all": copy.deepcopy(_replace_all), "groups": copy.deepcopy(_replace_groups)}


def _cancel(scope):
    """Forgets the marks of a scope that have not begun (a Terminating member still goes)."""
    for instance_id, mark in list(_marks.items()):
        if mark["scope"] == scope and mark["phase"] == "marked":
            del _marks[instance_id]


def asg_replace(body):
    global _replace_all
    group = body.get("group")
    if group is not None and (not isinstance(group, str) or not group):
        raise HttpError(400, "`group` must be a group name")
    off = body.get("off", False)
    if not isinstance(off, bool):
        raise HttpError(400, "`off` must be true or false")
    if off:
        if set(body) - {"off", "group"}:
            raise HttpError(400, "`off` takes no other setting than `group`")
        with _lock:
            if group is None:
                _replace_all = None
            else:
                _replace_groups.pop(group, None)
            _cancel(group)
            return _describe_replace()
    if "delay_seconds" not in body:
        raise HttpError(400, "give `delay_seconds` (a number >= 0) or `off: true`")
    unknown = set(body) - {"delay_seconds", "terminating_seconds", "group", "off"}
    if unknown:
        raise HttpError(400, f"unknown keys {sorted(unknown)}")
    setting = {
        "delay_seconds": _seconds(body, "delay_seconds"),
        "terminating_seconds": _seconds(body, "terminating_seconds"),
    }
    with _lock:
        if group is None:
            _replace_all = setting
        else:
            _replace_groups[group] = setting
        return _describe_replace()


def asg_replacements(body):
    group = body.get("group")
    if group is not None and not isinstance(group, str):
        raise HttpError(400, "`group` must be a group name")
    with _lock:
        replaced = [dict(r) for r in _replaced if group is None or r["group"] == group]
        pending = [
            {
                "instance_id": instance_id,
                "group": mark["group"],
                "account": mark["account"],
                "region": mark["region"],
                "phase": mark["phase"],
                "marked_at": mark["marked"],
                "terminating_at": mark["terminate_at"],
                "replace_at": mark["gone_at"],
            }
            for instance_id, mark in _marks.items()
            if group is None or mark["group"] == group
        ]
        failed = [dict(f) for f in _failed if group is None or f["group"] == group]
    return {"replaced": replaced, "pending": pending, "failed": failed,
            "setting": _describe_replace()}


# What the wrapper's other modules keep, forgotten with this module's (`on_reset`).
_forgetters = []


def on_reset(forget):
    """Joins the reset (`/_autoheal/reset` and moto's own): `forget(None)` forgets all the
    caller keeps, `forget(instance_id)` that instance's."""
    _forgetters.append(forget)


def reset(body=None):
    """Forgets every override, or with `instance_id` only that instance's, here and in the
    modules that joined (`on_reset`). Objects already mid-way (a stopping instance, a pending
    image, a Terminating member) are left as they are; finish-stop and release-image still
    work on them, a Terminating member is still replaced at its time. A full reset also
    turns Auto Scaling replacement off and forgets what it replaced."""
    instance_id = (body or {}).get("instance_id")
    if instance_id is not None and (not isinstance(instance_id, str) or not instance_id):
        raise HttpError(400, "`instance_id` must be a string")
    _forget(instance_id)
    for forget in _forgetters:
        forget(instance_id)
    if instance_id is None:
        return {"reset": True}
    return {"reset": True, "instance_id": instance_id}


def _forget(instance_id):
    """This module's overrides: all (None), or one instance's."""
    global _replace_all
    with _lock:
        if instance_id is None:
            _status.clear()
            _stuck.clear()
            _pending.clear()
            _replace_all = None
            _replace_groups.clear()
            for iid, mark in list(_marks.items()):
                if mark["phase"] == "marked":
                    del _marks[iid]
            _replaced.clear()
            _failed.clear()
            return
        _status.pop(instance_id, None)
        _stuck.pop(instance_id, None)
        _pending.pop(instance_id, None)
        if _marks.get(instance_id, {}).get("phase") == "marked":
            del _marks[instance_id]
        _replaced[:] = [r for r in _replaced if r["instance_id"] != instance_id]


def _forget_all():
    reset()
    with _lock:
        _due.clear()
        _marks.clear()


ENDPOINTS = {
    "status": status,
    "stuck-stop": stuck_stop,
    "finish-stop": finish_stop,
    "pending-images": pending_images,
    "release-image": release_image,
    "asg-replace": asg_replace,
    "asg-replacements": asg_replacements,
    "reset": reset,
}


def _answer(start_response, code, body):
    data = json.dumps(body, default=str).encode()
    reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
              409: "Conflict", 500: "Internal Server Error"}[code]
    start_response(
        f"{code} {reason}",
        [("Content-Type", "application/json"), ("Content-Length", str(len(data)))],
    )
    return [data]


def _control(environ, start_response):
    name = environ.get("PATH_INFO", "")[len(PREFIX) :].strip("/")
    handler = ENDPOINTS.get(name)
    if handler is None:
        return _answer(start_response, 404, {"error": f"no endpoint {name!r}",
                                             "endpoints": sorted(ENDPOINTS)})
    if environ.get("REQUEST_METHOD") != "POST":
        return _answer(start_response, 405, {"error": "use POST"})
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        try:
            body = json.loads(raw) if raw.strip() else {}
        except ValueError as e:
            raise HttpError(400, f"body is not JSON: {e}")
        if not isinstance(body, dict):
            raise HttpError(400, "body must be a JSON object")
        return _answer(start_response, 200, handler(body))
    except HttpError as e:
        return _answer(start_response, e.status, e.body)
    except Exception as e:  # noqa: BLE001 - a test helper wants the message, not a hang
        return _answer(start_response, 500, {"error": f"{type(e).__name__}: {e}"})


# DynamoDB requests one at a time: moto checks a ConditionExpression and then writes, with
# no lock between, so two concurrent conditional puts could both succeed on its threaded
# server, where DynamoDB lets exactly one through.
_dynamodb = threading.Lock()


def wrap(app):
    """WSGI middleware: answers /_autoheal/*, passes everything else on to `app`."""

    def middleware(environ, start_response):
        path = environ.get("PATH_INFO", "")
        settle()  # before control requests too: asg-replacements reports what is due
        if path.startswith(PREFIX):
            return _control(environ, start_response)
        if path.rstrip("/") == "/moto-api/reset":
            _forget_all()
        if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
            with _dynamodb:
                return list(app(environ, start_response))
        return app(environ, start_response)

    return middleware
