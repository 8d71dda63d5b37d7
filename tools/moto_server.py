"""moto_server with gaps filled: CreateImage's snapshot TagSpecifications, CloudWatch over
the RPC v2 CBOR protocol (see tools/cbor_shim.py), and a control API under /_autoheal/ that
lets tests impair status checks, hold stops in `stopping` and images in `pending`, and
instance auto-recovery settings, stop protection, the launch settings and image volumes
a relaunched copy is checked against as EC2 plays them (see
tools/moto_world.py and docs/emulator.md), scheduled events (DescribeInstanceStatus'
`Events`, ModifyInstanceEventStartTime: tools/moto_events.py), an instance's kernel, root
device type and virtualization type as a test sets them (tools/moto_facts.py), EC2's instance
event windows (CreateInstanceEventWindow and the rest: tools/moto_windows.py), ARC's zonal shifts
(tools/moto_zonal.py), and what a CloudFormation
deploy of autoheal's stack needs that moto lacks (TestEventPattern, resource types its CloudFormation skips: see
tools/moto_deploy.py).

moto 5.2 raises NotImplementedError for `TagSpecifications` of resource type `snapshot`
in CreateImage, which AWS supports and autoheal uses (the image's snapshots carry the
incident tags). This wrapper tags the snapshot moto creates for the image instead, refuses
a name the account already uses (`InvalidAMIName.Duplicate`, as EC2 does; moto takes it),
then runs the normal server. Nothing else is changed unless a test asks for it through
/_autoheal/. Usage: same arguments as moto_server.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import moto.server  # noqa: E402
from moto.ec2.exceptions import EC2ClientError  # noqa: E402
from moto.ec2.models.amis import AmiBackend  # noqa: E402

import cbor_shim  # noqa: E402
import moto_deploy  # noqa: E402
import moto_events  # noqa: E402
import moto_facts  # noqa: E402
import moto_windows  # noqa: E402
import moto_world  # noqa: E402
import moto_zonal  # noqa: E402

_create_image = AmiBackend.create_image


def create_image(self, instance_id, name, description, tag_specifications):
    # EC2 refuses a name the account already uses in the region; moto takes it twice.
    for ami in self.amis.values():
        if ami.owner_id == self.account_id and ami.name == name:
            raise EC2ClientError(
                "InvalidAMIName.Duplicate", f"AMI name {name} is already in use by AMI {ami.id}"
            )
    snapshot_tags = {}
    image_specs = []
    for spec in tag_specifications:
        if spec["ResourceType"] == "snapshot":
            snapshot_tags.update({t["Key"]: t["Value"] for t in spec["Tags"]})
        else:
            image_specs.append(spec)
    ami = _create_image(self, instance_id, name, description, image_specs)
    snapshot = getattr(ami, "ebs_snapshot", None)
    if snapshot_tags and snapshot is not None:
        self.create_tags([snapshot.id], snapshot_tags)
    return ami


AmiBackend.create_image = create_image
moto_world.install()  # after the snapshot-tags patch, which it wraps
moto_events.install()  # after moto_world: it joins its control API
moto_facts.install()  # the same
moto_windows.install()  # the same
moto_zonal.install()
moto_deploy.install()


class Dispatcher(moto.server.DomainDispatcherApplication):
    def __call__(self, environ, start_response):
        inner = moto_zonal.wrap(cbor_shim.wrap(super().__call__))
        return moto_world.wrap(inner)(environ, start_response)


moto.server.DomainDispatcherApplication = Dispatcher

if __name__ == "__main__":
    moto.server.main(sys.argv[1:])
