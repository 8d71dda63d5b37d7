"""moto_server with one gap filled: CreateImage's snapshot TagSpecifications.

moto 5.2 raises NotImplementedError for `TagSpecifications` of resource type `snapshot`
in CreateImage, which AWS supports and autoheal uses (the image's snapshots carry the
incident tags). This wrapper tags the snapshot moto creates for the image instead, then
runs the normal server. Nothing else is changed. Usage: same arguments as moto_server.
"""

import sys

from moto.ec2.models.amis import AmiBackend
from moto.server import main

_create_image = AmiBackend.create_image


def create_image(self, instance_id, name, description, tag_specifications):
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

if __name__ == "__main__":
    main(sys.argv[1:])
