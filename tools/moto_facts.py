"""What an instance is, as a test says: its kernel, its root device type and its
virtualization type, which moto takes from the image at launch (the image's kernel, `ebs`
always) and no EC2 call changes on a running instance.

A test sets them with `POST /_autoheal/instance-facts`; from then on `DescribeInstances`
reports them in the instance's `KernelId`, `RootDeviceType` and `VirtualizationType`. So
autoheal's risky-kernel path (PV-GRUB's `aki-44992845`, or a paravirtual instance) and its
instance-store path can be played. They are set on moto's Instance (what the instance is,
not a fault played for a while): `/_autoheal/reset` leaves them, moto's reset wipes them with
the instances.

As EC2 does, `StopInstances` naming an instance whose root device is instance store is
refused as a whole, before any instance of the request is stopped: `UnsupportedOperation`
(EC2 documents that the call fails for such an instance; the message is the wrapper's
wording). Nothing else changes, and autoheal reads nothing else of these: moto's
`DescribeInstanceAttribute` `Attribute=kernel` still answers no value, DescribeInstances'
filters `kernel-id`, `root-device-type` and `virtualization-type` are still not implemented
(a 500), moto still gives an instance-store instance its EBS root volume (`DescribeVolumes`,
the block device mapping), and `CreateImage`, which EC2 refuses for an instance-store root,
still images it.

Installed by tools/moto_server.py after moto_world; its endpoint sits among moto_world's
(`ENDPOINTS`). See docs/emulator.md, "Instance facts".
"""

import re

from moto.ec2.exceptions import EC2ClientError
from moto.ec2.models.instances import InstanceBackend

import moto_world
from moto_world import HttpError

ROOT_DEVICE_TYPES = ("ebs", "instance-store")
VIRTUALIZATION_TYPES = ("hvm", "paravirtual")
# An AKI id as EC2 writes it: `aki-` and 8 or 17 hex digits.
KERNEL = re.compile(r"aki-(?:[0-9a-f]{8}|[0-9a-f]{17})")
FIELDS = ("kernel_id", "root_device_type", "virtualization_type")

_installed = False


def _kernel(instance):
    # moto writes the string "None" for an instance launched from no known image.
    kernel = getattr(instance, "kernel_id", None)
    return None if kernel in (None, "None", "") else kernel


def _describe(instance):
    return {
        "instance_id": instance.id,
        "kernel_id": _kernel(instance),
        "root_device_type": instance.root_device_type,
        "virtualization_type": instance.virtualization_type,
    }


def instance_facts(body):
    """Sets what the body gives of the instance; answers all three as they are now."""
    instance_id = moto_world._required(body, "instance_id")
    unknown = set(body) - {"instance_id", *FIELDS}
    if unknown:
        raise HttpError(400, f"unknown keys {sorted(unknown)}")
    changes = {k: body[k] for k in FIELDS if k in body}
    if not changes:
        raise HttpError(400, "give `kernel_id`, `root_device_type` and/or `virtualization_type`")
    kernel = changes.get("kernel_id")
    if kernel is not None and not (isinstance(kernel, str) and KERNEL.fullmatch(kernel)):
        raise HttpError(400, "`kernel_id` must be an AKI id (`aki-` and 8 or 17 hex digits) "
                             "or null")
    for key, choices in (("root_device_type", ROOT_DEVICE_TYPES),
                         ("virtualization_type", VIRTUALIZATION_TYPES)):
        if key in changes and changes[key] not in choices:
            raise HttpError(400, f"`{key}` must be one of {list(choices)}")
    instance = moto_world._find_instance(instance_id)
    with moto_world._lock:
        if "kernel_id" in changes:
            instance.kernel_id = kernel
        if "root_device_type" in changes:
            instance.root_device_type = changes["root_device_type"]
        if "virtualization_type" in changes:
            instance.virtualization_type = changes["virtualization_type"]
        return _describe(instance)


def _stop_instances(original):
    # EC2 cannot stop an instance whose root device is instance store; moto stops any.
    def stop_instances(self, instance_ids):
        for instance in self.get_multi_instances_by_id(instance_ids):
            if instance.root_device_type == "instance-store":
                raise EC2ClientError(
                    "UnsupportedOperation",
                    f"The instance '{instance.id}' does not have an 'ebs' root device type "
                    "and cannot be stopped.",
                )
        return original(self, instance_ids)

    return stop_instances


def install():
    """Patches moto's StopInstances and joins moto_world's control API. Idempotent; after
    moto_world.install()."""
    global _installed
    if _installed:
        return
    _installed = True
    InstanceBackend.stop_instances = _stop_instances(InstanceBackend.stop_instances)
    moto_world.ENDPOINTS["instance-facts"] = instance_facts
