"""Tests of the moto wrapper's control API (tools/moto_world.py), checked through boto3.

Starts tools/moto_server.py on a free loopback port and drives it with plain HTTP POSTs to
/_autoheal/* and boto3 calls. Run: .venv/bin/python -m unittest tools/test_moto_world.py -v

Every test meets a world of its own (setUp resets moto, which forgets the wrapper's state
too) and names what it makes uniquely, so the tests pass in any order. Nothing is checked
"only if the machine was quick enough": what moves with time (pending_seconds, Auto
Scaling's delays) is given a delay no machine is slow enough to reach during a test (LONG),
asserted before it, then moved past with the wrapper's clock (`advance`, below) and asserted
after; the tests on the real clock poll with a generous deadline and assert only what holds
however slow the machine is.
"""

import json
import os
import socket
import subprocess
import sys
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request
import uuid

import boto3
import botocore.exceptions
import cbor2

HERE = os.path.dirname(os.path.abspath(__file__))
AMI = "ami-12c6146b"  # one of moto's stock images
OTHER_ACCOUNT = "111122223333"
# A delay (seconds) that no test run reaches on the real clock: only `advance` passes it.
LONG = 3600
# How long a test waits for something the real clock brings, at most (polling meanwhile).
PATIENCE = 30

# The server under test: tools/moto_server.py as it is (imported, so that its patches are in
# place, then started as its __main__ would), with one addition for these tests only: the
# wrapper's clock (moto_world's `time.time()`, on which pending images' seconds and Auto
# Scaling's delays are measured) runs `offset` seconds ahead of the real one, and
# POST /_autoheal/test-clock {"advance_seconds": N} moves it on ({"reset": true} first sets
# it back to the real time). The wrapper settles what is due at the start of each request,
# so the request after an advance sees the world as it is at the new time.
SERVE = r"""
import sys
import time

sys.path.insert(0, sys.argv.pop(1))
import moto_server  # noqa: F401 - the wrapper's patches
import moto.server
import moto_world


class Clock:
    def __init__(self):
        self.offset = 0.0

    def time(self):
        return time.time() + self.offset

    def __getattr__(self, name):
        return getattr(time, name)


clock = Clock()
moto_world.time = clock


def clock_endpoint(body):
    if body.get("reset"):
        clock.offset = 0.0
    advance = body.get("advance_seconds", 0)
    if isinstance(advance, bool) or not isinstance(advance, (int, float)) or advance < 0:
        raise moto_world.HttpError(400, "`advance_seconds` must be a number >= 0")
    clock.offset += advance
    return {"offset": clock.offset, "now": clock.time()}


moto_world.ENDPOINTS["test-clock"] = clock_endpoint
moto.server.main(sys.argv[1:])
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class World(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        port = free_port()
        cls.endpoint = f"http://127.0.0.1:{port}"
        cls.log = open(os.devnull, "w")
        cls.server = subprocess.Popen(
            [sys.executable, "-c", SERVE, HERE, "-H", "127.0.0.1", "-p", str(port)],
            stdout=cls.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.time() + 60
        while True:
            try:
                urllib.request.urlopen(f"{cls.endpoint}/moto-api/", timeout=1).read()
                break
            except OSError:
                if cls.server.poll() is not None or time.time() > deadline:
                    cls.tearDownClass()
                    raise RuntimeError("moto_server did not start")
                time.sleep(0.1)
        cls.ec2 = cls.client("ec2")

    @classmethod
    def tearDownClass(cls):
        cls.server.terminate()
        try:
            cls.server.wait(10)
        except subprocess.TimeoutExpired:
            cls.server.kill()
            cls.server.wait()
        cls.log.close()

    @classmethod
    def client(cls, service, account=None, region="us-east-1"):
        c = boto3.client(
            service,
            endpoint_url=cls.endpoint,
            region_name=region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        if account:
            def header(request, **_):
                request.headers["x-moto-account-id"] = account

            c.meta.events.register("before-sign", header)
        return c

    def control(self, name, body=None, method="POST"):
        """(HTTP status, JSON body) of a control request."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            f"{self.endpoint}/_autoheal/{name}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    def ok(self, name, body=None):
        status, answer = self.control(name, body)
        self.assertEqual(status, 200, answer)
        return answer

    def query(self, action, **params):
        """(HTTP status, XML text) of an EC2 Query API request, as the Rust SDK reads it."""
        data = urllib.parse.urlencode({"Action": action, "Version": "2016-11-15", **params})
        req = urllib.request.Request(
            self.endpoint + "/",
            data=data.encode(),
            method="POST",
            headers={"Content-Type": "application/x-www-form-urlencoded",
                     "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20240101/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=0"},
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def moto_reset(self):
        """moto's own reset: every account's resources, and the wrapper's state with them."""
        urllib.request.urlopen(
            urllib.request.Request(f"{self.endpoint}/moto-api/reset", data=b"", method="POST"),
            timeout=30,
        ).read()

    def setUp(self):
        # A world of its own for each test, whatever ran before: no instance, group, image,
        # override, mark or replacement record of another test; the clock on real time.
        self.moto_reset()
        self.clock(reset=True)

    def clock(self, advance=0, reset=False):
        """The wrapper's clock ({"offset", "now"}), moved on by `advance` seconds."""
        return self.ok("test-clock", {"advance_seconds": advance, "reset": reset})

    def advance(self, seconds):
        """Moves the wrapper's clock on: what is due by then happens at the next request."""
        return self.clock(advance=seconds)["now"]

    def unique(self, name):
        """A name nothing else of the run has (EC2 refuses an image name twice)."""
        return f"{name}-{uuid.uuid4().hex[:12]}"

    def launch(self, ec2=None, count=1):
        ec2 = ec2 or self.ec2
        r = ec2.run_instances(ImageId=AMI, MinCount=count, MaxCount=count)
        return [i["InstanceId"] for i in r["Instances"]]

    def statuses(self, ec2=None, **kwargs):
        ec2 = ec2 or self.ec2
        return {
            s["InstanceId"]: s for s in ec2.describe_instance_status(**kwargs)["InstanceStatuses"]
        }

    def state(self, instance_id, ec2=None):
        ec2 = ec2 or self.ec2
        r = ec2.describe_instances(InstanceIds=[instance_id])
        return r["Reservations"][0]["Instances"][0]["State"]["Name"]

    def image(self, image_id):
        return self.ec2.describe_images(ImageIds=[image_id])["Images"][0]

    def snapshot_state(self, image):
        snap = image["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
        return self.ec2.describe_snapshots(SnapshotIds=[snap])["Snapshots"][0]["State"]

    # --- status checks -------------------------------------------------------------------

    def test_impaired_system_status_with_include_all_instances(self):
        sick, well = self.launch(count=2)
        answer = self.ok("status", {"instance_id": sick, "system": "impaired", "instance": None})
        self.assertEqual(answer, {"instance_id": sick, "system": "impaired", "instance": None})
        seen = self.statuses(InstanceIds=[sick, well], IncludeAllInstances=True)
        system = seen[sick]["SystemStatus"]
        self.assertEqual(system["Status"], "impaired")
        self.assertEqual(system["Details"][0]["Name"], "reachability")
        self.assertEqual(system["Details"][0]["Status"], "failed")
        self.assertIn("ImpairedSince", system["Details"][0])
        self.assertEqual(seen[sick]["InstanceStatus"]["Status"], "ok")
        self.assertEqual(seen[sick]["InstanceStatus"]["Details"][0]["Status"], "passed")
        self.assertEqual(seen[well]["SystemStatus"]["Status"], "ok")
        # Without IncludeAllInstances too (the instance is running).
        self.assertEqual(self.statuses(InstanceIds=[sick])[sick]["SystemStatus"]["Status"], "impaired")

    def test_each_status_and_its_reachability(self):
        (iid,) = self.launch()
        for status, reach in [
            ("impaired", "failed"),
            ("ok", "passed"),
            ("insufficient-data", "insufficient-data"),
            ("initializing", "initializing"),
        ]:
            self.ok("status", {"instance_id": iid, "system": status, "instance": status})
            seen = self.statuses(InstanceIds=[iid], IncludeAllInstances=True)[iid]
            for kind in ("SystemStatus", "InstanceStatus"):
                self.assertEqual(seen[kind]["Status"], status)
                self.assertEqual(seen[kind]["Details"][0]["Status"], reach)
                self.assertEqual("ImpairedSince" in seen[kind]["Details"][0], status == "impaired")

    def test_null_returns_to_moto_default(self):
        (iid,) = self.launch()
        self.ok("status", {"instance_id": iid, "system": "impaired", "instance": "impaired"})
        self.ok("status", {"instance_id": iid, "instance": None})  # `system` absent: unchanged
        seen = self.statuses(InstanceIds=[iid])[iid]
        self.assertEqual(seen["SystemStatus"]["Status"], "impaired")
        self.assertEqual(seen["InstanceStatus"]["Status"], "ok")
        self.ok("status", {"instance_id": iid, "system": None, "instance": None})
        self.assertEqual(self.statuses(InstanceIds=[iid])[iid]["SystemStatus"]["Status"], "ok")

    def test_status_filters(self):
        sick, well, broken = self.launch(count=3)
        self.ok("status", {"instance_id": sick, "system": "impaired", "instance": None})
        self.ok("status", {"instance_id": broken, "system": None, "instance": "impaired"})

        def ids(name, *values, **kwargs):
            found = self.statuses(Filters=[{"Name": name, "Values": list(values)}], **kwargs)
            return set(found) & {sick, well, broken}

        self.assertEqual(ids("system-status.status", "impaired"), {sick})
        self.assertEqual(ids("system-status.status", "impaired", IncludeAllInstances=True), {sick})
        self.assertEqual(ids("system-status.status", "ok"), {well, broken})
        self.assertEqual(ids("instance-status.status", "impaired"), {broken})
        self.assertEqual(ids("instance-status.status", "impaired", "ok"), {sick, well, broken})
        self.assertEqual(ids("system-status.reachability", "failed"), {sick})
        self.assertEqual(ids("instance-status.reachability", "passed"), {sick, well})
        both = self.statuses(
            Filters=[
                {"Name": "system-status.status", "Values": ["ok"]},
                {"Name": "instance-status.status", "Values": ["ok"]},
            ]
        )
        self.assertEqual(set(both) & {sick, well, broken}, {well})

    def test_instances_are_found_by_their_availability_zone(self):
        vpc = self.ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
        found = {}
        for zone, cidr in [("us-east-1a", "10.9.1.0/24"), ("us-east-1b", "10.9.2.0/24")]:
            subnet = self.ec2.create_subnet(VpcId=vpc, CidrBlock=cidr, AvailabilityZone=zone)
            r = self.ec2.run_instances(
                ImageId=AMI, MinCount=2, MaxCount=2, SubnetId=subnet["Subnet"]["SubnetId"]
            )
            found[zone] = {i["InstanceId"] for i in r["Instances"]}
        for zone, ids in found.items():
            r = self.ec2.describe_instances(Filters=[{"Name": "availability-zone", "Values": [zone]}])
            seen = {i["InstanceId"] for res in r["Reservations"] for i in res["Instances"]}
            self.assertEqual(seen, ids, zone)

    def test_stopped_instance_is_not_applicable(self):
        (iid,) = self.launch()
        self.ok("status", {"instance_id": iid, "system": "impaired", "instance": "impaired"})
        self.ec2.stop_instances(InstanceIds=[iid])
        seen = self.statuses(InstanceIds=[iid], IncludeAllInstances=True)[iid]
        self.assertEqual(seen["SystemStatus"]["Status"], "not-applicable")
        self.assertNotIn(iid, self.statuses(InstanceIds=[iid]))
        self.assertEqual(
            set(self.statuses(Filters=[{"Name": "system-status.status", "Values": ["impaired"]}],
                              IncludeAllInstances=True)) & {iid},
            set(),
        )
        # The override outlives the stop: running again, the instance is impaired again.
        self.ec2.start_instances(InstanceIds=[iid])
        self.assertEqual(self.statuses(InstanceIds=[iid])[iid]["SystemStatus"]["Status"], "impaired")

    # --- stuck stops -----------------------------------------------------------------------

    def test_stuck_stop_with_force_until_finish_stop(self):
        (iid,) = self.launch()
        self.assertEqual(
            self.ok("stuck-stop", {"instance_id": iid, "stuck": True}),
            {"instance_id": iid, "stuck": True, "force_ends": False, "state": "running"},
        )
        for _ in range(2):
            r = self.ec2.stop_instances(InstanceIds=[iid], Force=True)["StoppingInstances"][0]
            self.assertEqual(r["CurrentState"], {"Code": 64, "Name": "stopping"})
            self.assertEqual(self.state(iid), "stopping")
        self.assertEqual(r["PreviousState"], {"Code": 64, "Name": "stopping"})  # the second stop
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            self.ec2.start_instances(InstanceIds=[iid])
        self.assertEqual(e.exception.response["Error"]["Code"], "IncorrectInstanceState")
        self.ec2.reboot_instances(InstanceIds=[iid])
        self.assertEqual(self.state(iid), "stopping")
        self.assertNotIn(iid, self.statuses(InstanceIds=[iid]))
        self.assertEqual(
            self.ok("finish-stop", {"instance_id": iid}),
            {"instance_id": iid, "previous_state": "stopping", "state": "stopped"},
        )
        self.assertEqual(self.state(iid), "stopped")
        status, answer = self.control("finish-stop", {"instance_id": iid})
        self.assertEqual((status, answer["state"]), (409, "stopped"))

    def test_a_forced_stop_ends_a_stuck_stop_set_to_end_so(self):
        iid, other = self.launch(count=2)
        self.assertEqual(
            self.ok("stuck-stop", {"instance_id": iid, "stuck": True, "force_ends": True}),
            {"instance_id": iid, "stuck": True, "force_ends": True, "state": "running"},
        )
        self.ok("stuck-stop", {"instance_id": other, "stuck": True})
        for _ in range(2):
            self.ec2.stop_instances(InstanceIds=[iid, other])
            self.assertEqual((self.state(iid), self.state(other)), ("stopping", "stopping"))
        self.ec2.stop_instances(InstanceIds=[iid, other], Force=True)
        # Only the one set so: the other's stop stays stuck whatever Force says.
        self.assertEqual((self.state(iid), self.state(other)), ("stopped", "stopping"))
        # Started again, its next unforced stop hangs again.
        self.ec2.start_instances(InstanceIds=[iid])
        self.ec2.stop_instances(InstanceIds=[iid])
        self.assertEqual(self.state(iid), "stopping")
        status, answer = self.control(
            "stuck-stop", {"instance_id": iid, "stuck": False, "force_ends": True})
        self.assertEqual(status, 400, answer)
        status, answer = self.control(
            "stuck-stop", {"instance_id": iid, "stuck": True, "force_ends": "yes"})
        self.assertEqual(status, 400, answer)

    def test_first_stop_answers_running_to_stopping(self):
        (iid,) = self.launch()
        self.ok("stuck-stop", {"instance_id": iid, "stuck": True})
        r = self.ec2.stop_instances(InstanceIds=[iid])["StoppingInstances"][0]
        self.assertEqual(r["PreviousState"], {"Code": 16, "Name": "running"})
        self.assertEqual(r["CurrentState"], {"Code": 64, "Name": "stopping"})

    def test_unsticking_needs_another_stop(self):
        (iid,) = self.launch()
        self.ok("stuck-stop", {"instance_id": iid, "stuck": True})
        self.ec2.stop_instances(InstanceIds=[iid])
        self.ok("stuck-stop", {"instance_id": iid, "stuck": False})
        self.assertEqual(self.state(iid), "stopping")
        self.ec2.stop_instances(InstanceIds=[iid], Force=True)
        self.assertEqual(self.state(iid), "stopped")
        self.ec2.start_instances(InstanceIds=[iid])
        self.assertEqual(self.state(iid), "running")

    def test_other_instances_stop_normally(self):
        stuck, free = self.launch(count=2)
        self.ok("stuck-stop", {"instance_id": stuck, "stuck": True})
        self.ec2.stop_instances(InstanceIds=[stuck, free])
        self.assertEqual((self.state(stuck), self.state(free)), ("stopping", "stopped"))
        self.ec2.terminate_instances(InstanceIds=[stuck])  # AWS allows terminating a stopping one
        self.assertEqual(self.state(stuck), "terminated")

    # --- pending images -------------------------------------------------------------------

    def test_pending_image_until_released(self):
        (iid,) = self.launch()
        self.assertEqual(
            self.ok("pending-images", {"instance_id": iid, "pending": True}),
            {"instance_id": iid, "pending": True, "pending_seconds": None},
        )
        image_id = self.ec2.create_image(
            InstanceId=iid,
            Name=self.unique("autoheal-test"),
            TagSpecifications=[
                {"ResourceType": "image", "Tags": [{"Key": "k", "Value": "image"}]},
                {"ResourceType": "snapshot", "Tags": [{"Key": "k", "Value": "snapshot"}]},
            ],
        )["ImageId"]
        image = self.image(image_id)
        self.assertEqual(image["State"], "pending")
        self.assertEqual(self.snapshot_state(image), "pending")
        pending = self.ec2.describe_images(Filters=[{"Name": "state", "Values": ["pending"]}])
        self.assertIn(image_id, [i["ImageId"] for i in pending["Images"]])
        # The snapshot tags (the wrapper's older patch) still land.
        snap = image["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
        tags = self.ec2.describe_snapshots(SnapshotIds=[snap])["Snapshots"][0]["Tags"]
        self.assertEqual(tags, [{"Key": "k", "Value": "snapshot"}])
        # Held with no seconds: pending however long it waits, until released.
        self.advance(LONG)
        self.assertEqual(self.image(image_id)["State"], "pending")
        self.assertEqual(
            self.ok("release-image", {"image_id": image_id}),
            {"images": [{"image_id": image_id, "state": "available"}]},
        )
        image = self.image(image_id)
        self.assertEqual(image["State"], "available")
        self.assertEqual(self.snapshot_state(image), "completed")
        # Releasing again is harmless; failing an available image is refused.
        self.ok("release-image", {"image_id": image_id})
        status, answer = self.control("release-image", {"image_id": image_id, "fail": True})
        self.assertEqual((status, answer["state"]), (409, "available"))

    def test_release_by_instance_with_fail(self):
        (iid,) = self.launch()
        self.ok("pending-images", {"instance_id": iid, "pending": True})
        images = [self.ec2.create_image(InstanceId=iid, Name=self.unique(f"img-{n}"))["ImageId"] for n in range(2)]
        self.assertEqual([self.image(i)["State"] for i in images], ["pending", "pending"])
        answer = self.ok("release-image", {"instance_id": iid, "fail": True})
        self.assertEqual(
            sorted(answer["images"], key=lambda i: i["image_id"]),
            sorted([{"image_id": i, "state": "failed"} for i in images], key=lambda i: i["image_id"]),
        )
        for image_id in images:
            image = self.image(image_id)
            self.assertEqual(image["State"], "failed")
            self.assertIn("Code", image["StateReason"])
            self.assertEqual(self.snapshot_state(image), "error")

    def test_pending_false_stops_holding_new_images(self):
        (iid,) = self.launch()
        self.ok("pending-images", {"instance_id": iid, "pending": True})
        held = self.ec2.create_image(InstanceId=iid, Name=self.unique("held"))["ImageId"]
        self.ok("pending-images", {"instance_id": iid, "pending": False})
        free = self.ec2.create_image(InstanceId=iid, Name=self.unique("free"))["ImageId"]
        self.assertEqual((self.image(held)["State"], self.image(free)["State"]), ("pending", "available"))
        self.ok("release-image", {"instance_id": iid})
        self.assertEqual(self.image(held)["State"], "available")

    def test_pending_seconds(self):
        (iid,) = self.launch()
        self.assertEqual(
            self.ok("pending-images", {"instance_id": iid, "pending_seconds": LONG}),
            {"instance_id": iid, "pending": True, "pending_seconds": LONG},
        )
        image_id = self.ec2.create_image(InstanceId=iid, Name=self.unique("timed"))["ImageId"]
        image = self.image(image_id)
        self.assertEqual((image["State"], self.snapshot_state(image)), ("pending", "pending"))
        # Half its seconds later (on the wrapper's clock): still pending.
        self.advance(LONG / 2)
        image = self.image(image_id)
        self.assertEqual((image["State"], self.snapshot_state(image)), ("pending", "pending"))
        # Its seconds passed: available at the next request, by itself (no release-image).
        self.advance(LONG / 2)
        image = self.image(image_id)
        self.assertEqual((image["State"], self.snapshot_state(image)), ("available", "completed"))

    def test_pending_seconds_on_the_real_clock(self):
        (iid,) = self.launch()
        self.ok("pending-images", {"instance_id": iid, "pending_seconds": 0.5})
        before = time.time()
        image_id = self.ec2.create_image(InstanceId=iid, Name=self.unique("timed"))["ImageId"]
        deadline = time.time() + PATIENCE
        while self.image(image_id)["State"] == "pending" and time.time() < deadline:
            time.sleep(0.05)
        seen = time.time()  # after the answer that said available
        self.assertEqual(self.image(image_id)["State"], "available")
        self.assertGreaterEqual(seen, before + 0.5)  # not before its seconds

    def test_other_instances_images_are_available(self):
        held, free = self.launch(count=2)
        self.ok("pending-images", {"instance_id": held, "pending": True})
        image_id = self.ec2.create_image(InstanceId=free, Name=self.unique("free"))["ImageId"]
        self.assertEqual(self.image(image_id)["State"], "available")

    def test_an_image_name_is_refused_twice_in_an_account(self):
        first, second = self.launch(count=2)
        name = self.unique("taken")
        self.ec2.create_image(InstanceId=first, Name=name)
        with self.assertRaises(botocore.exceptions.ClientError) as refused:
            self.ec2.create_image(InstanceId=second, Name=name)
        self.assertEqual(refused.exception.response["Error"]["Code"], "InvalidAMIName.Duplicate")
        (other,) = self.launch(self.client("ec2", account=OTHER_ACCOUNT))
        self.client("ec2", account=OTHER_ACCOUNT).create_image(InstanceId=other, Name=name)

    # --- Auto Scaling replacement of Unhealthy members -------------------------------------

    def group(self, size=2, account=None):
        """A group of `size` members launched from a launch template: (name, member ids, client)."""
        asg = self.client("autoscaling", account)
        ec2 = self.client("ec2", account)
        name = self.unique("autoheal-test")
        ec2.create_launch_template(
            LaunchTemplateName=name,
            LaunchTemplateData={"ImageId": AMI, "InstanceType": "t3.micro"},
        )
        asg.create_auto_scaling_group(
            AutoScalingGroupName=name,
            LaunchTemplate={"LaunchTemplateName": name, "Version": "$Latest"},
            MinSize=size,
            MaxSize=size,
            DesiredCapacity=size,
            AvailabilityZones=["us-east-1a"],
        )
        return name, sorted(self.members(name, asg)), asg

    def members(self, name, asg=None):
        """instance id -> (LifecycleState, HealthStatus), as DescribeAutoScalingGroups says."""
        asg = asg or self.client("autoscaling")
        (group,) = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"]
        return {m["InstanceId"]: (m["LifecycleState"], m["HealthStatus"]) for m in group["Instances"]}

    def asg_instance(self, instance_id, asg=None):
        asg = asg or self.client("autoscaling")
        found = asg.describe_auto_scaling_instances(InstanceIds=[instance_id])["AutoScalingInstances"]
        return (found[0]["LifecycleState"], found[0]["HealthStatus"]) if found else None

    def mark(self, asg, instance_id):
        asg.set_instance_health(InstanceId=instance_id, HealthStatus="Unhealthy")

    def wait_replaced(self, instance_id, seconds=PATIENCE):
        deadline = time.time() + seconds
        while True:
            answer = self.ok("asg-replacements", {})
            done = [r for r in answer["replaced"] if r["instance_id"] == instance_id]
            if done or time.time() > deadline:
                return done
            time.sleep(0.05)

    def assert_replaced(self, name, old, others, asg=None, ec2=None):
        """`old` is gone (terminated, not in the group), the group is back at its size with
        every member InService and Healthy; answers the replacement's id."""
        members = self.members(name, asg)
        self.assertNotIn(old, members)
        self.assertEqual(len(members), len(others) + 1, members)
        self.assertEqual(set(members.values()), {("InService", "Healthy")}, members)
        (new,) = set(members) - set(others)
        self.assertNotEqual(new, old)
        self.assertEqual(self.state(old, ec2), "terminated")
        self.assertEqual(self.state(new, ec2), "running")
        self.assertIsNone(self.asg_instance(old, asg))
        self.assertEqual(self.asg_instance(new, asg), ("InService", "Healthy"))
        (record,) = [r for r in self.ok("asg-replacements", {})["replaced"] if r["instance_id"] == old]
        self.assertEqual((record["replacement_id"], record["group"]), (new, name))
        return new

    def test_asg_replace_at_once(self):
        self.assertEqual(
            self.ok("asg-replace", {"delay_seconds": 0}),
            {"all": {"delay_seconds": 0, "terminating_seconds": 0}, "groups": {}},
        )
        name, (sick, well), asg = self.group()
        before = time.time()
        self.mark(asg, sick)
        new = self.assert_replaced(name, sick, [well])  # settled at the first request after
        (record,) = self.ok("asg-replacements", {"group": name})["replaced"]
        self.assertGreaterEqual(record["at"], before)
        # The replacement is launched from the group's launch template, tagged with the group.
        (reservation,) = self.ec2.describe_instances(InstanceIds=[new])["Reservations"]
        instance = reservation["Instances"][0]
        self.assertEqual(instance["ImageId"], AMI)
        self.assertEqual(instance["InstanceType"], "t3.micro")
        self.assertIn({"Key": "aws:autoscaling:groupName", "Value": name}, instance["Tags"])
        # Marking the replacement too: replaced in turn.
        self.mark(asg, new)
        self.assert_replaced(name, new, [well])
        self.assertEqual(len(self.ok("asg-replacements", {"group": name})["replaced"]), 2)

    def test_asg_replace_after_delay(self):
        delay = LONG
        self.ok("asg-replace", {"delay_seconds": delay})
        name, (sick, well), asg = self.group()
        self.mark(asg, sick)
        # Before the delay: marked, not acted on.
        self.assertEqual(self.members(name, asg),
                         {sick: ("InService", "Unhealthy"), well: ("InService", "Healthy")})
        self.assertEqual(self.state(sick), "running")
        answer = self.ok("asg-replacements", {"group": name})
        self.assertEqual(answer["replaced"], [])
        (pending,) = answer["pending"]
        self.assertEqual((pending["instance_id"], pending["phase"]), (sick, "marked"))
        self.assertAlmostEqual(pending["replace_at"] - pending["marked_at"], delay)
        # Half the delay later (on the wrapper's clock): still only marked.
        self.advance(delay / 2)
        self.assertEqual(self.members(name, asg),
                         {sick: ("InService", "Unhealthy"), well: ("InService", "Healthy")})
        answer = self.ok("asg-replacements", {"group": name})
        self.assertEqual(([p["instance_id"] for p in answer["pending"]], answer["replaced"]), ([sick], []))
        # The delay passed: replaced at the next request.
        self.advance(delay / 2)
        self.assert_replaced(name, sick, [well])
        (record,) = self.ok("asg-replacements", {"group": name})["replaced"]
        self.assertGreaterEqual(record["at"], pending["marked_at"] + delay)
        self.assertEqual(self.ok("asg-replacements", {"group": name})["pending"], [])

    def test_asg_replace_after_a_delay_on_the_real_clock(self):
        delay = 0.3
        self.ok("asg-replace", {"delay_seconds": delay})
        name, (sick, well), asg = self.group()
        before = time.time()
        self.mark(asg, sick)
        self.assertTrue(self.wait_replaced(sick))  # the real clock alone brings it
        self.assert_replaced(name, sick, [well])
        (record,) = self.ok("asg-replacements", {"group": name})["replaced"]
        self.assertGreaterEqual(record["at"], before + delay)

    def test_asg_replace_terminating_phase(self):
        hold = LONG
        self.ok("asg-replace", {"delay_seconds": 0, "terminating_seconds": hold})
        name, (sick, well), asg = self.group()
        self.mark(asg, sick)
        # The first request after the mark starts the Terminating phase; for `hold` seconds
        # the member shows it.
        self.assertEqual(self.members(name, asg),
                         {sick: ("Terminating", "Unhealthy"), well: ("InService", "Healthy")})
        self.assertEqual(self.asg_instance(sick, asg), ("Terminating", "Unhealthy"))
        self.assertEqual(self.state(sick), "running")  # see docs/emulator.md
        (pending,) = self.ok("asg-replacements", {"group": name})["pending"]
        self.assertEqual((pending["instance_id"], pending["phase"]), (sick, "terminating"))
        self.assertAlmostEqual(pending["replace_at"] - pending["marked_at"], hold)
        self.advance(hold / 2)
        self.assertEqual(self.members(name, asg)[sick], ("Terminating", "Unhealthy"))
        self.assertEqual(self.state(sick), "running")
        self.advance(hold / 2)
        self.assert_replaced(name, sick, [well])
        (record,) = self.ok("asg-replacements", {"group": name})["replaced"]
        self.assertGreaterEqual(record["at"], pending["marked_at"] + hold)

    def test_asg_replace_off(self):
        name, (sick, well), asg = self.group()
        self.mark(asg, sick)  # off by default
        self.assertEqual(self.members(name, asg), {sick: ("InService", "Unhealthy"), well: ("InService", "Healthy")})
        self.assertEqual(self.state(sick), "running")
        self.assertEqual(self.ok("asg-replacements", {}),
                         {"replaced": [], "pending": [], "failed": [], "setting": {"all": None, "groups": {}}})
        # Turning it on does not replace a member marked before.
        self.ok("asg-replace", {"delay_seconds": 0})
        self.members(name, asg)
        self.assertEqual(self.members(name, asg)[sick], ("InService", "Unhealthy"))
        # Off cancels a mark not yet acted on.
        self.ok("asg-replace", {"delay_seconds": LONG})
        (other,) = self.launch()  # not in a group: AWS's error (moto's would be a 500)
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            self.mark(asg, other)
        self.assertEqual(e.exception.response["Error"]["Code"], "ValidationError")
        asg.set_instance_health(InstanceId=well, HealthStatus="Unhealthy")
        self.assertEqual(len(self.ok("asg-replacements", {})["pending"]), 1)
        self.assertEqual(self.ok("asg-replace", {"off": True}), {"all": None, "groups": {}})
        self.assertEqual(self.ok("asg-replacements", {})["pending"], [])
        self.advance(2 * LONG)  # well past the delay the mark had
        self.assertEqual(set(self.members(name, asg)), {sick, well})
        self.assertEqual(self.ok("asg-replacements", {})["replaced"], [])

    def test_asg_healthy_again_before_the_delay(self):
        self.ok("asg-replace", {"delay_seconds": LONG})
        name, (sick, well), asg = self.group()
        self.mark(asg, sick)
        self.assertEqual([p["instance_id"] for p in self.ok("asg-replacements", {})["pending"]], [sick])
        asg.set_instance_health(InstanceId=sick, HealthStatus="Healthy")
        self.assertEqual(self.ok("asg-replacements", {})["pending"], [])
        self.advance(2 * LONG)  # well past the delay the mark had
        self.assertEqual(set(self.members(name, asg)), {sick, well})
        self.assertEqual(self.ok("asg-replacements", {})["replaced"], [])

    def test_asg_replace_one_group(self):
        self.assertEqual(
            self.ok("asg-replace", {"delay_seconds": 0, "group": "no-such-group"}),
            {"all": None, "groups": {"no-such-group": {"delay_seconds": 0, "terminating_seconds": 0}}},
        )
        name, (sick, well), asg = self.group()
        self.mark(asg, sick)
        self.assertEqual(self.members(name, asg)[sick], ("InService", "Unhealthy"))
        self.ok("asg-replace", {"delay_seconds": 0, "group": name})
        self.mark(asg, well)
        members = self.members(name, asg)
        self.assertNotIn(well, members)
        self.assertEqual(members.pop(sick), ("InService", "Unhealthy"))  # marked before: stays
        self.assertEqual(list(members.values()), [("InService", "Healthy")])
        (record,) = self.ok("asg-replacements", {})["replaced"]
        self.assertEqual((record["instance_id"], record["replacement_id"]), (well, list(members)[0]))
        self.assertEqual(
            set(self.ok("asg-replace", {"off": True, "group": name})["groups"]), {"no-such-group"}
        )

    def test_asg_reset_clears_replacement(self):
        self.ok("asg-replace", {"delay_seconds": 0})
        name, (first, second), asg = self.group()
        self.mark(asg, first)
        new = self.assert_replaced(name, first, [second])
        self.ok("asg-replace", {"delay_seconds": LONG})
        self.mark(asg, second)
        self.assertEqual([p["instance_id"] for p in self.ok("asg-replacements", {})["pending"]], [second])
        self.assertEqual(self.ok("reset"), {"reset": True})
        self.assertEqual(self.ok("asg-replacements", {}),
                         {"replaced": [], "pending": [], "failed": [], "setting": {"all": None, "groups": {}}})
        self.advance(2 * LONG)  # well past the delay the mark had
        self.assertEqual(self.members(name, asg), {new: ("InService", "Healthy"), second: ("InService", "Unhealthy")})
        self.mark(asg, new)
        self.assertEqual(self.members(name, asg)[new], ("InService", "Unhealthy"))
        self.assertEqual(self.ok("asg-replacements", {})["replaced"], [])

    def test_asg_reset_of_one_instance(self):
        self.ok("asg-replace", {"delay_seconds": LONG})
        name, (mine, theirs), asg = self.group()
        self.mark(asg, mine)
        self.mark(asg, theirs)
        self.ok("reset", {"instance_id": mine})
        self.assertEqual([p["instance_id"] for p in self.ok("asg-replacements", {})["pending"]], [theirs])
        self.advance(LONG)
        self.assertTrue(self.wait_replaced(theirs))
        self.assertEqual(self.members(name, asg)[mine], ("InService", "Unhealthy"))

    def test_asg_replacement_has_ok_status_checks(self):
        self.ok("asg-replace", {"delay_seconds": 0})
        name, (sick, well), asg = self.group()
        self.ok("status", {"instance_id": sick, "system": "impaired", "instance": "impaired"})
        self.assertEqual(self.statuses(InstanceIds=[sick])[sick]["SystemStatus"]["Status"], "impaired")
        self.mark(asg, sick)
        new = self.assert_replaced(name, sick, [well])
        seen = self.statuses(InstanceIds=[new, sick], IncludeAllInstances=True)
        self.assertEqual((seen[new]["SystemStatus"]["Status"], seen[new]["InstanceStatus"]["Status"]), ("ok", "ok"))
        self.assertEqual(seen[sick]["SystemStatus"]["Status"], "not-applicable")
        impaired = self.statuses(Filters=[{"Name": "system-status.status", "Values": ["impaired"]}])
        self.assertEqual(set(impaired) & {sick, new, well}, set())

    def test_asg_replace_in_another_account(self):
        self.ok("asg-replace", {"delay_seconds": 0})
        name, (sick, well), asg = self.group(account=OTHER_ACCOUNT)
        ec2 = self.client("ec2", account=OTHER_ACCOUNT)
        self.mark(asg, sick)
        self.assert_replaced(name, sick, [well], asg=asg, ec2=ec2)
        (record,) = self.ok("asg-replacements", {"group": name})["replaced"]
        self.assertEqual((record["account"], record["region"]), (OTHER_ACCOUNT, "us-east-1"))

    def test_asg_replace_bad_requests(self):
        for body in [
            {},
            {"delay_seconds": -1},
            {"delay_seconds": "1"},
            {"delay_seconds": True},
            {"delay_seconds": 0, "terminating_seconds": -1},
            {"delay_seconds": 0, "group": ""},
            {"delay_seconds": 0, "later": 1},
            {"off": "yes"},
            {"off": True, "delay_seconds": 0},
        ]:
            status, answer = self.control("asg-replace", body)
            self.assertEqual(status, 400, (body, answer))
            self.assertIn("error", answer)
        self.assertEqual(self.ok("asg-replacements", {})["setting"], {"all": None, "groups": {}})
        self.assertEqual(self.control("asg-replacements", {"group": 1})[0], 400)

    # --- Auto Scaling's group tag, tag keys reserved to AWS -----------------------------------

    GROUP_TAG = "aws:autoscaling:groupName"

    def tags(self, instance_id, ec2=None):
        """key -> value of an instance's tags, as DescribeInstances shows them."""
        ec2 = ec2 or self.ec2
        (reservation,) = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
        return {t["Key"]: t["Value"] for t in reservation["Instances"][0].get("Tags", [])}

    def tagged_with_group(self, name, ec2=None):
        """ids of the instances DescribeTags finds with the group tag of `name`."""
        ec2 = ec2 or self.ec2
        found = ec2.describe_tags(Filters=[{"Name": "key", "Values": [self.GROUP_TAG]},
                                           {"Name": "value", "Values": [name]}])["Tags"]
        return {t["ResourceId"] for t in found if t["ResourceType"] == "instance"}

    def test_group_members_carry_the_group_tag(self):
        name, (first, second), asg = self.group()
        for member in (first, second):
            self.assertEqual(self.tags(member)[self.GROUP_TAG], name)
        status, xml = self.query("DescribeInstances", **{"InstanceId.1": first})
        self.assertEqual(status, 200, xml)
        self.assertIn(f"<key>{self.GROUP_TAG}</key><value>{name}</value>", "".join(xml.split()))
        # Launched by a capacity change: tagged too.
        asg.update_auto_scaling_group(AutoScalingGroupName=name, MaxSize=3)
        asg.set_desired_capacity(AutoScalingGroupName=name, DesiredCapacity=3)
        (third,) = set(self.members(name, asg)) - {first, second}
        self.assertEqual(self.tags(third)[self.GROUP_TAG], name)
        # By the wrapper's replacement of an Unhealthy member: the replacement is tagged, and
        # the replaced instance, terminated, keeps the tag.
        self.ok("asg-replace", {"delay_seconds": 0, "group": name})
        self.mark(asg, first)
        new = self.assert_replaced(name, first, [second, third])
        self.assertEqual(self.tags(new)[self.GROUP_TAG], name)
        self.assertEqual(self.tags(first)[self.GROUP_TAG], name)
        # Scaled in (terminated by the group): the tag stays.
        asg.set_desired_capacity(AutoScalingGroupName=name, DesiredCapacity=2)
        (gone,) = {second, third, new} - set(self.members(name, asg))
        self.assertEqual(self.state(gone), "terminated")
        self.assertEqual(self.tags(gone)[self.GROUP_TAG], name)
        self.assertEqual(self.tagged_with_group(name), {first, second, third, new})

    def test_detached_member_keeps_the_group_tag(self):
        name, (leaving, staying), asg = self.group()
        asg.update_auto_scaling_group(AutoScalingGroupName=name, MinSize=0)
        asg.detach_instances(AutoScalingGroupName=name, InstanceIds=[leaving],
                             ShouldDecrementDesiredCapacity=True)
        self.assertIsNone(self.asg_instance(leaving, asg))
        self.assertEqual(self.members(name, asg), {staying: ("InService", "Healthy")})
        self.assertEqual(self.state(leaving), "running")
        self.assertEqual(self.tags(leaving)[self.GROUP_TAG], name)
        self.assertEqual(self.tagged_with_group(name), {leaving, staying})
        # Without decrementing: the group launches a replacement, tagged; both keep theirs.
        asg.detach_instances(AutoScalingGroupName=name, InstanceIds=[staying],
                             ShouldDecrementDesiredCapacity=False)
        (new,) = self.members(name, asg)
        self.assertNotIn(new, (leaving, staying))
        self.assertIsNone(self.asg_instance(staying, asg))
        self.assertEqual([self.tags(i)[self.GROUP_TAG] for i in (leaving, staying, new)], [name] * 3)
        # TerminateInstanceInAutoScalingGroup (moto detaches, then terminates).
        asg.terminate_instance_in_auto_scaling_group(InstanceId=new,
                                                     ShouldDecrementDesiredCapacity=True)
        self.assertEqual(self.members(name, asg), {})
        self.assertEqual(self.state(new), "terminated")
        self.assertEqual(self.tags(new)[self.GROUP_TAG], name)

    def test_tag_keys_starting_with_aws_are_refused(self):
        (iid,) = self.launch()
        name, (member, other), _ = self.group()
        for key in [self.GROUP_TAG, "AWS:autoscaling:groupName", "Aws:mine"]:
            with self.assertRaises(botocore.exceptions.ClientError) as e:
                # With an ordinary key first: the request is refused as a whole.
                self.ec2.create_tags(Resources=[iid, member],
                                     Tags=[{"Key": "team", "Value": "a"}, {"Key": key, "Value": name}])
            self.assertEqual(e.exception.response["ResponseMetadata"]["HTTPStatusCode"], 400)
            self.assertEqual(e.exception.response["Error"], {
                "Code": "InvalidParameterValue",
                "Message": f"Value ( {key} ) for parameter key is invalid. "
                           "Tag keys starting with 'aws:' are reserved for internal use",
            })
        self.assertEqual(self.tags(iid), {})
        self.assertNotIn("team", self.tags(member))
        self.assertEqual(self.tagged_with_group(name), {member, other})
        # Over the Query API, in EC2's XML error shape.
        status, xml = self.query("CreateTags", **{"ResourceId.1": iid, "Tag.1.Key": self.GROUP_TAG,
                                                  "Tag.1.Value": name})
        self.assertEqual(status, 400, xml)
        self.assertIn("<Errors><Error><Code>InvalidParameterValue</Code>", xml)
        self.assertEqual(self.tags(iid), {})
        # Nor can the group's own tag be deleted by hand.
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            self.ec2.delete_tags(Resources=[member], Tags=[{"Key": self.GROUP_TAG}])
        self.assertEqual(e.exception.response["Error"]["Code"], "InvalidParameterValue")
        self.assertEqual(self.tags(member)[self.GROUP_TAG], name)
        # Ordinary keys (also ones merely starting with "aws") still work, on members too.
        ordinary = {"autoheal:ladder": "reboot", "awsome": "1", "aws-team": "x", "Name": "web"}
        self.ec2.create_tags(Resources=[iid, member],
                             Tags=[{"Key": k, "Value": v} for k, v in ordinary.items()])
        self.assertEqual(self.tags(iid), ordinary)
        self.assertEqual({k: v for k, v in self.tags(member).items() if k in ordinary}, ordinary)
        self.ec2.delete_tags(Resources=[iid], Tags=[{"Key": "awsome"}])
        self.assertNotIn("awsome", self.tags(iid))

    # --- what the escalation ladder reads: auto recovery, stop protection --------------------

    def test_instance_types_report_auto_recovery_supported(self):
        # moto's own data (a dump of EC2's DescribeInstanceTypes): no patch, a guard of it.
        found = self.ec2.describe_instance_types(
            InstanceTypes=["m5.large", "m5d.large", "t3.micro", "i3.large", "c5.xlarge"]
        )["InstanceTypes"]
        self.assertEqual(
            {t["InstanceType"]: t["AutoRecoverySupported"] for t in found},
            {"m5.large": True, "m5d.large": False, "t3.micro": True, "i3.large": False, "c5.xlarge": True},
        )
        status, xml = self.query("DescribeInstanceTypes", **{"InstanceType.1": "m5d.large"})
        self.assertEqual(status, 200, xml)
        self.assertIn("<autoRecoverySupported>false</autoRecoverySupported>", xml)
        unsupported = self.ec2.describe_instance_types(
            Filters=[{"Name": "auto-recovery-supported", "Values": ["false"]}]
        )["InstanceTypes"]
        names = {t["InstanceType"] for t in unsupported}
        self.assertIn("m5d.large", names)
        self.assertNotIn("t3.micro", names)

    def maintenance(self, instance_id, ec2=None):
        ec2 = ec2 or self.ec2
        (reservation,) = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
        return reservation["Instances"][0].get("MaintenanceOptions")

    def test_auto_recovery_default_and_modify_instance_maintenance_options(self):
        (iid,) = self.launch()
        self.assertEqual(self.maintenance(iid), {"AutoRecovery": "default"})
        answer = self.ec2.modify_instance_maintenance_options(InstanceId=iid, AutoRecovery="disabled")
        answer.pop("ResponseMetadata")
        self.assertEqual(answer, {"InstanceId": iid, "AutoRecovery": "disabled"})
        self.assertEqual(self.maintenance(iid), {"AutoRecovery": "disabled"})
        status, xml = self.query("DescribeInstances", **{"InstanceId.1": iid})
        self.assertEqual(status, 200, xml)
        self.assertIn("<maintenanceOptions><autoRecovery>disabled</autoRecovery></maintenanceOptions>", xml)
        status, xml = self.query("ModifyInstanceMaintenanceOptions", InstanceId=iid, AutoRecovery="default")
        self.assertEqual(status, 200, xml)
        self.assertIn(f"<instanceId>{iid}</instanceId><autoRecovery>default</autoRecovery>", xml)
        self.assertEqual(self.maintenance(iid), {"AutoRecovery": "default"})
        # EC2 state, not an override: the wrapper's reset leaves it.
        self.ec2.modify_instance_maintenance_options(InstanceId=iid, AutoRecovery="disabled")
        self.ok("reset")
        self.assertEqual(self.maintenance(iid), {"AutoRecovery": "disabled"})
        for kwargs, code in [
            ({"InstanceId": iid, "AutoRecovery": "off"}, "InvalidParameterValue"),
            ({"InstanceId": "i-00000000000000000", "AutoRecovery": "disabled"}, "InvalidInstanceID.NotFound"),
        ]:
            with self.assertRaises(botocore.exceptions.ClientError) as e:
                self.ec2.modify_instance_maintenance_options(**kwargs)
            self.assertEqual(e.exception.response["Error"]["Code"], code)
        self.assertEqual(self.maintenance(iid), {"AutoRecovery": "disabled"})

    def test_run_instances_maintenance_options_and_launch_template(self):
        r = self.ec2.run_instances(ImageId=AMI, MinCount=2, MaxCount=2,
                                   MaintenanceOptions={"AutoRecovery": "disabled"})
        self.assertEqual([i["MaintenanceOptions"] for i in r["Instances"]], [{"AutoRecovery": "disabled"}] * 2)
        for instance in r["Instances"]:
            self.assertEqual(self.maintenance(instance["InstanceId"]), {"AutoRecovery": "disabled"})
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            self.ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1, MaintenanceOptions={"AutoRecovery": "off"})
        self.assertEqual(e.exception.response["Error"]["Code"], "InvalidParameterValue")
        # From a launch template (as Auto Scaling launches): its settings, unless the request's.
        name = self.unique("autoheal-facts")
        self.ec2.create_launch_template(LaunchTemplateName=name, LaunchTemplateData={
            "ImageId": AMI, "InstanceType": "t3.micro", "DisableApiStop": True,
            "MaintenanceOptions": {"AutoRecovery": "disabled"},
        })
        (templated,) = self.ec2.run_instances(MinCount=1, MaxCount=1, LaunchTemplate={"LaunchTemplateName": name})["Instances"]
        self.assertEqual(self.maintenance(templated["InstanceId"]), {"AutoRecovery": "disabled"})
        self.assertEqual(self.stop_protected(templated["InstanceId"]), True)
        (explicit,) = self.ec2.run_instances(
            MinCount=1, MaxCount=1, LaunchTemplate={"LaunchTemplateName": name},
            MaintenanceOptions={"AutoRecovery": "default"}, DisableApiStop=False,
        )["Instances"]
        self.assertEqual(self.maintenance(explicit["InstanceId"]), {"AutoRecovery": "default"})
        self.assertEqual(self.stop_protected(explicit["InstanceId"]), False)

    def stop_protected(self, instance_id):
        answer = self.ec2.describe_instance_attribute(InstanceId=instance_id, Attribute="disableApiStop")
        return answer["DisableApiStop"]["Value"]

    def assert_stop_refused(self, instance_ids, protected):
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            self.ec2.stop_instances(InstanceIds=instance_ids)
        self.assertEqual(e.exception.response["ResponseMetadata"]["HTTPStatusCode"], 400)
        self.assertEqual(e.exception.response["Error"], {
            "Code": "OperationNotPermitted",
            "Message": f"The instance '{protected}' may not be stopped. Modify its 'disableApiStop' "
                       "instance attribute and try again.",
        })

    def test_disable_api_stop_at_launch_refuses_stop(self):
        (iid,) = self.ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1, DisableApiStop=True)["Instances"]
        iid = iid["InstanceId"]
        self.assertEqual(self.stop_protected(iid), True)
        self.assert_stop_refused([iid], iid)
        with self.assertRaises(botocore.exceptions.ClientError):
            self.ec2.stop_instances(InstanceIds=[iid], Force=True)
        self.assertEqual(self.state(iid), "running")
        # Not part of DescribeInstances in EC2 (only DescribeInstanceAttribute): nor here.
        (reservation,) = self.ec2.describe_instances(InstanceIds=[iid])["Reservations"]
        self.assertNotIn("DisableApiStop", reservation["Instances"][0])
        status, xml = self.query("DescribeInstances", **{"InstanceId.1": iid})
        self.assertEqual(status, 200, xml)
        self.assertNotIn("disableApiStop", xml)
        status, xml = self.query("DescribeInstanceAttribute", InstanceId=iid, Attribute="disableApiStop")
        self.assertIn("<disableApiStop><value>true</value></disableApiStop>", xml)
        # Stop protection does not protect from termination.
        self.ec2.terminate_instances(InstanceIds=[iid])
        self.assertEqual(self.state(iid), "terminated")

    def test_disable_api_stop_by_modify_instance_attribute(self):
        free, protected = self.launch(count=2)
        self.assertEqual(self.stop_protected(protected), False)
        self.ec2.modify_instance_attribute(InstanceId=protected, DisableApiStop={"Value": True})
        self.assertEqual(self.stop_protected(protected), True)
        # The whole request is refused: the unprotected instance listed first is not stopped.
        self.assert_stop_refused([free, protected], protected)
        self.assertEqual((self.state(free), self.state(protected)), ("running", "running"))
        self.ok("stuck-stop", {"instance_id": protected, "stuck": True})
        self.assert_stop_refused([protected], protected)
        self.ec2.modify_instance_attribute(InstanceId=protected, DisableApiStop={"Value": False})
        self.assertEqual(self.stop_protected(protected), False)
        self.ec2.stop_instances(InstanceIds=[protected])
        self.assertEqual(self.state(protected), "stopping")  # stuck, and no longer protected
        # The Attribute/Value form of the same request.
        self.ec2.modify_instance_attribute(InstanceId=free, Attribute="disableApiStop", Value="true")
        self.assertEqual(self.stop_protected(free), True)
        self.assert_stop_refused([free], free)
        self.ec2.modify_instance_attribute(InstanceId=free, Attribute="disableApiStop", Value="false")
        self.ec2.stop_instances(InstanceIds=[free])
        self.assertEqual(self.state(free), "stopped")

    # --- launch settings moto drops ---------------------------------------------------------

    def attribute(self, instance_id, name):
        answer = self.ec2.describe_instance_attribute(InstanceId=instance_id, Attribute=name)
        key = name[0].upper() + name[1:]
        return answer[key]["Value"]

    def credits(self, instance_id):
        (spec,) = self.ec2.describe_instance_credit_specifications(
            InstanceIds=[instance_id])["InstanceCreditSpecifications"]
        return spec["CpuCredits"]

    def test_launch_settings_are_kept_as_ec2_keeps_them(self):
        (i,) = self.ec2.run_instances(
            ImageId=AMI, MinCount=1, MaxCount=1, InstanceType="t3.micro",
            Placement={"AvailabilityZone": "us-east-1c", "Tenancy": "dedicated"},
            DisableApiTermination=True, CreditSpecification={"CpuCredits": "standard"},
        )["Instances"]
        iid = i["InstanceId"]
        (found,) = self.ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"]
        self.assertEqual(
            (found["Placement"]["AvailabilityZone"], found["Placement"]["Tenancy"]),
            ("us-east-1c", "dedicated"),
        )
        self.assertIs(self.attribute(iid, "disableApiTermination"), True)
        self.assertEqual(self.credits(iid), "standard")
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            self.ec2.terminate_instances(InstanceIds=[iid])
        self.assertEqual(e.exception.response["Error"]["Code"], "OperationNotPermitted")
        # EC2's defaults: T2 standard, later burstable families unlimited; default tenancy;
        # no termination protection.
        (t2,) = self.run_instances(InstanceType="t2.micro")[1]
        (t3,) = self.run_instances(InstanceType="t3.micro")[1]
        self.assertEqual((self.credits(t2), self.credits(t3)), ("standard", "unlimited"))
        self.assertIs(self.attribute(t3, "disableApiTermination"), False)
        (found,) = self.ec2.describe_instances(InstanceIds=[t3])["Reservations"][0]["Instances"]
        self.assertEqual(found["Placement"]["Tenancy"], "default")
        for bad in ({"Placement": {"Tenancy": "shared"}},
                    {"CreditSpecification": {"CpuCredits": "bursty"}}):
            with self.assertRaises(botocore.exceptions.ClientError) as e:
                self.run_instances(InstanceType="t3.micro", **bad)
            self.assertEqual(e.exception.response["Error"]["Code"], "InvalidParameterValue")

    # --- an image's volumes ------------------------------------------------------------------

    def test_create_image_snapshots_each_volume_and_launches_from_them(self):
        kms = self.client("kms")
        key = kms.create_key()["KeyMetadata"]["KeyId"]
        (i,) = self.ec2.run_instances(
            ImageId=AMI, MinCount=1, MaxCount=1,
            BlockDeviceMappings=[
                {"DeviceName": "/dev/sda1",
                 "Ebs": {"Encrypted": True, "KmsKeyId": key, "VolumeSize": 9}},
                {"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 20}},
            ],
        )["Instances"]
        iid = i["InstanceId"]
        image_id = self.ec2.create_image(
            InstanceId=iid, Name=self.unique("volumes"), NoReboot=True,
            TagSpecifications=[{"ResourceType": "snapshot",
                                "Tags": [{"Key": "autoheal:incident", "Value": "x"}]}],
        )["ImageId"]
        mappings = {m["DeviceName"]: m["Ebs"] for m in self.image(image_id)["BlockDeviceMappings"]}
        self.assertEqual(sorted(mappings), ["/dev/sda1", "/dev/sdf"])
        self.assertEqual(
            [(mappings[d]["VolumeSize"], mappings[d]["Encrypted"]) for d in sorted(mappings)],
            [(9, True), (20, False)],
        )
        snapshots = {
            s["SnapshotId"]: s for s in self.ec2.describe_snapshots(
                SnapshotIds=[m["SnapshotId"] for m in mappings.values()])["Snapshots"]
        }
        root = snapshots[mappings["/dev/sda1"]["SnapshotId"]]
        self.assertEqual((root["Encrypted"], root["KmsKeyId"]), (True, key))
        self.assertFalse(snapshots[mappings["/dev/sdf"]["SnapshotId"]]["Encrypted"])
        for s in snapshots.values():
            self.assertEqual(s["Tags"], [{"Key": "autoheal:incident", "Value": "x"}])
        # Launched from the image: each volume from its snapshot, the root under the key.
        (copy,) = self.ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1)["Instances"]
        volumes = {
            v["Attachments"][0]["Device"]: v for v in self.ec2.describe_volumes(Filters=[
                {"Name": "attachment.instance-id", "Values": [copy["InstanceId"]]}])["Volumes"]
        }
        self.assertEqual(sorted(volumes), ["/dev/sda1", "/dev/sdf"])
        self.assertEqual(
            (volumes["/dev/sda1"]["Encrypted"], volumes["/dev/sda1"]["KmsKeyId"],
             volumes["/dev/sda1"]["SnapshotId"], volumes["/dev/sda1"]["Size"]),
            (True, key, mappings["/dev/sda1"]["SnapshotId"], 9),
        )
        self.assertFalse(volumes["/dev/sdf"]["Encrypted"])
        # A pending image's snapshots are all pending; retiring it frees them.
        self.ok("pending-images", {"instance_id": iid, "pending": True})
        held = self.ec2.create_image(InstanceId=iid, Name=self.unique("held"), NoReboot=True)["ImageId"]
        held_snaps = [m["Ebs"]["SnapshotId"] for m in self.image(held)["BlockDeviceMappings"]]
        states = {s["State"] for s in self.ec2.describe_snapshots(SnapshotIds=held_snaps)["Snapshots"]}
        self.assertEqual(states, {"pending"})
        self.ok("release-image", {"image_id": held})
        self.ec2.deregister_image(ImageId=held)
        for snap in held_snaps:
            self.ec2.delete_snapshot(SnapshotId=snap)
        # moto's stock images are left as they were: one fresh unencrypted root volume.
        (plain,) = self.launch()
        (volume,) = self.ec2.describe_volumes(Filters=[
            {"Name": "attachment.instance-id", "Values": [plain]}])["Volumes"]
        self.assertEqual((volume["Encrypted"], volume["Size"]), (False, 8))

    # --- RunInstances' ClientToken ----------------------------------------------------------

    def token(self):
        return self.unique("autoheal-token")

    def run_instances(self, ec2=None, **kwargs):
        """(reservation id, instance ids) of a RunInstances of the stock image."""
        ec2 = ec2 or self.ec2
        r = ec2.run_instances(ImageId=AMI, **{"MinCount": 1, "MaxCount": 1, **kwargs})
        return r["ReservationId"], [i["InstanceId"] for i in r["Instances"]]

    def with_token(self, token, ec2=None):
        """instance id -> state of the instances DescribeInstances finds by client-token."""
        ec2 = ec2 or self.ec2
        found = ec2.describe_instances(Filters=[{"Name": "client-token", "Values": [token]}])
        return {i["InstanceId"]: i["State"]["Name"]
                for r in found["Reservations"] for i in r["Instances"]}

    def test_same_client_token_answers_the_same_reservation(self):
        token = self.token()
        first = self.run_instances(ClientToken=token, MinCount=2, MaxCount=2, InstanceType="t3.micro")
        again = self.run_instances(ClientToken=token, MinCount=2, MaxCount=2, InstanceType="t3.micro")
        self.assertEqual(again, first)
        self.assertEqual(set(self.with_token(token)), set(first[1]))
        (reservation,) = self.ec2.describe_instances(InstanceIds=first[1][:1])["Reservations"]
        self.assertEqual(reservation["ReservationId"], first[0])
        self.assertEqual(reservation["Instances"][0]["ClientToken"], token)
        status, xml = self.query("DescribeInstances", **{"InstanceId.1": first[1][0]})
        self.assertIn(f"<clientToken>{token}</clientToken>", xml)
        # Over the Query API as the Rust SDK sends it (the same parameters, in another order).
        params = {"ClientToken": token, "InstanceType": "t3.micro", "MaxCount": "2",
                  "MinCount": "2", "ImageId": AMI}
        status, xml = self.query("RunInstances", **params)
        self.assertEqual(status, 200, xml)
        self.assertIn(f"<reservationId>{first[0]}</reservationId>", xml)
        # EC2 state, not an override: the wrapper's reset leaves it; a dry run launches nothing.
        self.ok("reset")
        self.assertEqual(self.run_instances(ClientToken=token, MinCount=2, MaxCount=2, InstanceType="t3.micro"), first)
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            self.run_instances(ClientToken=token, MinCount=2, MaxCount=2, InstanceType="t3.micro", DryRun=True)
        self.assertEqual(e.exception.response["Error"]["Code"], "DryRunOperation")
        self.assertEqual(set(self.with_token(token)), set(first[1]))

    def test_same_client_token_with_other_parameters_is_refused(self):
        token = self.token()
        _, first = self.run_instances(ClientToken=token, InstanceType="t3.micro")
        for kwargs in [{"InstanceType": "t3.small"}, {},  # another value, one left out
                       {"InstanceType": "t3.micro", "MaintenanceOptions": {"AutoRecovery": "disabled"}}]:
            with self.assertRaises(botocore.exceptions.ClientError) as e:
                self.run_instances(ClientToken=token, **kwargs)
            self.assertEqual(e.exception.response["ResponseMetadata"]["HTTPStatusCode"], 400)
            self.assertEqual(e.exception.response["Error"], {
                "Code": "IdempotentParameterMismatch",
                "Message": "Arguments on this idempotent request are inconsistent with arguments "
                           "used in previous request(s).",
            })
        status, xml = self.query("RunInstances", ClientToken=token, ImageId=AMI, MinCount="1",
                                 MaxCount="1", InstanceType="t3.large")
        self.assertEqual(status, 400, xml)
        self.assertIn("<Errors><Error><Code>IdempotentParameterMismatch</Code>", xml)
        self.assertEqual(list(self.with_token(token)), first)  # nothing launched meanwhile
        self.assertEqual(self.run_instances(ClientToken=token, InstanceType="t3.micro")[1], first)

    def test_different_client_tokens_launch_each(self):
        one, two = self.token(), self.token()
        _, first = self.run_instances(ClientToken=one)
        _, second = self.run_instances(ClientToken=two)
        self.assertNotEqual(first, second)
        self.assertEqual((list(self.with_token(one)), list(self.with_token(two))), (first, second))
        self.assertEqual(self.with_token(self.token()), {})
        # boto3 fills in a token of its own for each call: two calls, two instances.
        self.assertNotEqual(self.launch(), self.launch())

    def test_no_client_token_launches_each_time(self):
        # boto3 always sends one: the Query API without it.
        ids = []
        for _ in range(2):
            status, xml = self.query("RunInstances", ImageId=AMI, MinCount="1", MaxCount="1")
            self.assertEqual(status, 200, xml)
            ids.append(xml.split("<instanceId>")[1].split("</instanceId>")[0])
        self.assertNotEqual(ids[0], ids[1])
        (reservation,) = self.ec2.describe_instances(InstanceIds=ids[:1])["Reservations"]
        self.assertEqual(reservation["Instances"][0].get("ClientToken", ""), "")  # not moto's ABCDE
        self.assertEqual(self.with_token("ABCDE"), {})

    def test_client_token_outlives_termination(self):
        token = self.token()
        reservation, (iid,) = self.run_instances(ClientToken=token)
        self.ec2.terminate_instances(InstanceIds=[iid])
        r = self.ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1, ClientToken=token)
        self.assertEqual(r["ReservationId"], reservation)
        self.assertEqual([(i["InstanceId"], i["State"]["Name"]) for i in r["Instances"]],
                         [(iid, "terminated")])
        self.assertEqual(self.with_token(token), {iid: "terminated"})

    def test_client_token_is_per_account_and_region(self):
        token = self.token()
        _, mine = self.run_instances(ClientToken=token)
        other_account = self.client("ec2", account=OTHER_ACCOUNT)
        other_region = self.client("ec2", region="eu-west-1")
        _, theirs = self.run_instances(other_account, ClientToken=token, InstanceType="t3.micro")
        _, west = self.run_instances(other_region, ClientToken=token)
        self.assertEqual(len({mine[0], theirs[0], west[0]}), 3)
        for ec2, ids in [(self.ec2, mine), (other_account, theirs), (other_region, west)]:
            self.assertEqual(list(self.with_token(token, ec2)), ids)
        self.assertEqual(self.run_instances(other_account, ClientToken=token, InstanceType="t3.micro")[1], theirs)

    # --- reset, accounts, errors, older behaviour ---------------------------------------------

    def test_reset_clears_overrides(self):
        (iid,) = self.launch()
        self.ok("status", {"instance_id": iid, "system": "impaired", "instance": "impaired"})
        self.ok("stuck-stop", {"instance_id": iid, "stuck": True})
        self.ok("pending-images", {"instance_id": iid, "pending": True})
        held = self.ec2.create_image(InstanceId=iid, Name=self.unique("held"))["ImageId"]
        self.assertEqual(self.ok("reset"), {"reset": True})
        seen = self.statuses(InstanceIds=[iid])[iid]
        self.assertEqual((seen["SystemStatus"]["Status"], seen["InstanceStatus"]["Status"]), ("ok", "ok"))
        self.assertEqual(self.image(self.ec2.create_image(InstanceId=iid, Name=self.unique("new"))["ImageId"])["State"], "available")
        # What was already under way stays so, and can still be finished.
        self.assertEqual(self.image(held)["State"], "pending")
        self.ok("release-image", {"image_id": held})
        self.assertEqual(self.image(held)["State"], "available")
        self.ec2.stop_instances(InstanceIds=[iid])
        self.assertEqual(self.state(iid), "stopped")

    def test_reset_of_one_instance(self):
        mine, theirs = self.launch(count=2)
        for iid in (mine, theirs):
            self.ok("status", {"instance_id": iid, "system": "impaired"})
            self.ok("stuck-stop", {"instance_id": iid, "stuck": True})
            self.ok("pending-images", {"instance_id": iid, "pending": True})
        self.assertEqual(self.ok("reset", {"instance_id": mine}), {"reset": True, "instance_id": mine})
        seen = self.statuses(InstanceIds=[mine, theirs])
        self.assertEqual((seen[mine]["SystemStatus"]["Status"], seen[theirs]["SystemStatus"]["Status"]),
                         ("ok", "impaired"))
        images = [self.ec2.create_image(InstanceId=i, Name=self.unique("after"))["ImageId"] for i in (mine, theirs)]
        self.assertEqual([self.image(i)["State"] for i in images], ["available", "pending"])
        self.ec2.stop_instances(InstanceIds=[mine, theirs])
        self.assertEqual((self.state(mine), self.state(theirs)), ("stopped", "stopping"))

    def test_override_in_another_account(self):
        ec2 = self.client("ec2", account=OTHER_ACCOUNT)
        (iid,) = self.launch(ec2)
        owner = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["OwnerId"]
        self.assertEqual(owner, OTHER_ACCOUNT)
        with self.assertRaises(botocore.exceptions.ClientError):
            self.ec2.describe_instances(InstanceIds=[iid])  # not in the default account
        self.ok("status", {"instance_id": iid, "system": "impaired", "instance": None})
        seen = self.statuses(ec2, InstanceIds=[iid], IncludeAllInstances=True)[iid]
        self.assertEqual(seen["SystemStatus"]["Status"], "impaired")
        found = self.statuses(ec2, Filters=[{"Name": "system-status.status", "Values": ["impaired"]}])
        self.assertIn(iid, found)
        self.ok("stuck-stop", {"instance_id": iid, "stuck": True})
        ec2.stop_instances(InstanceIds=[iid], Force=True)
        self.assertEqual(self.state(iid, ec2), "stopping")
        self.ok("finish-stop", {"instance_id": iid})
        self.assertEqual(self.state(iid, ec2), "stopped")
        self.ok("pending-images", {"instance_id": iid, "pending": True})
        image_id = ec2.create_image(InstanceId=iid, Name=self.unique("other"))["ImageId"]
        self.assertEqual(ec2.describe_images(ImageIds=[image_id])["Images"][0]["State"], "pending")
        self.ok("release-image", {"image_id": image_id})
        self.assertEqual(ec2.describe_images(ImageIds=[image_id])["Images"][0]["State"], "available")

    def test_bad_requests(self):
        (iid,) = self.launch()
        cases = [
            ("status", {"instance_id": iid, "system": "sick"}, 400),
            ("status", {"instance_id": iid}, 400),
            ("status", {"system": "impaired"}, 400),
            ("status", {"instance_id": "i-00000000000000000", "system": "impaired"}, 404),
            ("stuck-stop", {"instance_id": iid, "stuck": "yes"}, 400),
            ("finish-stop", {"instance_id": iid}, 409),
            ("pending-images", {"instance_id": iid, "pending_seconds": -1}, 400),
            ("release-image", {}, 400),
            ("release-image", {"image_id": "ami-00000000000000000"}, 404),
            ("no-such-endpoint", {}, 404),
        ]
        for name, body, expected in cases:
            status, answer = self.control(name, body)
            self.assertEqual(status, expected, (name, body, answer))
            self.assertIn("error", answer)
        status, _ = self.control("reset", method="GET")
        self.assertEqual(status, 405)

    def test_cbor_cloudwatch_still_answers(self):
        req = urllib.request.Request(
            f"{self.endpoint}/service/GraniteServiceVersion20100801/operation/ListMetrics",
            data=cbor2.dumps({}),
            method="POST",
            headers={"Content-Type": "application/cbor", "smithy-protocol": "rpc-v2-cbor",
                     "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20240101/us-east-1/monitoring/aws4_request, SignedHeaders=host, Signature=0"},
        )
        with urllib.request.urlopen(req, timeout=10) as r:
            self.assertEqual(r.headers["Content-Type"], "application/cbor")
            self.assertIn("Metrics", cbor2.loads(r.read()))

    def test_control_after_moto_reset(self):
        (iid,) = self.launch()
        self.ok("status", {"instance_id": iid, "system": "impaired"})
        self.moto_reset()
        status, _ = self.control("status", {"instance_id": iid, "system": "impaired"})
        self.assertEqual(status, 404)  # gone with moto's state
        (iid,) = self.launch()
        self.assertEqual(self.statuses(InstanceIds=[iid])[iid]["SystemStatus"]["Status"], "ok")
        self.ok("status", {"instance_id": iid, "system": "impaired"})
        self.assertEqual(self.statuses(InstanceIds=[iid])[iid]["SystemStatus"]["Status"], "impaired")

    def test_asg_replacement_after_moto_reset(self):
        self.ok("asg-replace", {"delay_seconds": LONG, "terminating_seconds": LONG})
        name, (sick, well), asg = self.group()
        self.mark(asg, sick)
        self.advance(LONG)  # past the delay, inside the Terminating phase
        self.assertEqual(self.members(name, asg)[sick], ("Terminating", "Unhealthy"))
        self.ok("asg-replace", {"delay_seconds": 0})
        self.moto_reset()
        self.assertEqual(self.ok("asg-replacements", {}),
                         {"replaced": [], "pending": [], "failed": [], "setting": {"all": None, "groups": {}}})
        name, (sick, well), asg = self.group()
        self.mark(asg, sick)
        self.assertEqual(self.members(name, asg)[sick], ("InService", "Unhealthy"))

    def test_concurrent_conditional_puts_let_exactly_one_through(self):
        import concurrent.futures

        ddb = self.client("dynamodb")
        table = self.unique("race")
        ddb.create_table(
            TableName=table,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        for round_ in range(5):
            key = f"k{round_}"

            def put(n):
                try:
                    # Each thread a client of its own: concurrent requests to the server.
                    self.client("dynamodb").put_item(
                        TableName=table,
                        Item={"pk": {"S": key}, "writer": {"N": str(n)}},
                        ConditionExpression="attribute_not_exists(pk)",
                    )
                    return True
                except botocore.exceptions.ClientError as e:
                    self.assertEqual(e.response["Error"]["Code"], "ConditionalCheckFailedException")
                    return False

            with concurrent.futures.ThreadPoolExecutor(16) as pool:
                won = sum(pool.map(put, range(16)))
            self.assertEqual(won, 1, f"round {round_}: {won} conditional puts succeeded")


if __name__ == "__main__":
    unittest.main(verbosity=2)
