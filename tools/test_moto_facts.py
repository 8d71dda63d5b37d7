"""Tests of the wrapper's instance facts (tools/moto_facts.py): an instance's kernel, root
device type and virtualization type as a test sets them, checked through boto3 against
tools/moto_server.py, with the server and helpers of tools/test_moto_world.py.

Run: .venv/bin/python -m unittest tools/test_moto_facts.py -v
"""

import os
import sys
import unittest

import botocore.exceptions

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import test_moto_world  # noqa: E402

PV_GRUB = "aki-44992845"


class InstanceFacts(test_moto_world.World):
    """Only the tests below run here (`load_tests`): World's own run in test_moto_world."""

    def described(self, instance_id, ec2=None):
        """(KernelId, RootDeviceType, VirtualizationType) as DescribeInstances reports them."""
        ec2 = ec2 or self.ec2
        [reservation] = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
        [i] = reservation["Instances"]
        return i.get("KernelId"), i.get("RootDeviceType"), i.get("VirtualizationType")

    def test_describe_instances_reports_what_was_set(self):
        risky, store, other = self.launch(count=3)
        # moto's own answer first: the stock image's (no kernel, EBS, HVM).
        self.assertEqual(self.described(risky), (None, "ebs", "hvm"))
        answer = self.ok("instance-facts", {"instance_id": risky, "kernel_id": PV_GRUB,
                                            "virtualization_type": "paravirtual"})
        self.assertEqual(answer, {"instance_id": risky, "kernel_id": PV_GRUB,
                                  "root_device_type": "ebs",
                                  "virtualization_type": "paravirtual"})
        self.assertEqual(self.described(risky), (PV_GRUB, "ebs", "paravirtual"))
        # Only what the body gives changes; the other instances are as they were.
        self.ok("instance-facts", {"instance_id": store, "root_device_type": "instance-store"})
        self.assertEqual(self.described(store), (None, "instance-store", "hvm"))
        self.assertEqual(self.described(other), (None, "ebs", "hvm"))
        # Back: no kernel, EBS, HVM.
        self.ok("instance-facts", {"instance_id": risky, "kernel_id": None,
                                   "virtualization_type": "hvm"})
        self.assertEqual(self.described(risky), (None, "ebs", "hvm"))
        # Kept on moto's instance: the wrapper's reset leaves them, also after a stop/start.
        self.ok("reset")
        self.assertEqual(self.described(store), (None, "instance-store", "hvm"))
        self.ok("instance-facts", {"instance_id": other, "kernel_id": PV_GRUB})
        self.ec2.stop_instances(InstanceIds=[other])
        self.ec2.start_instances(InstanceIds=[other])
        self.assertEqual(self.described(other), (PV_GRUB, "ebs", "hvm"))

    def test_an_instance_of_another_account_is_found(self):
        ec2 = self.client("ec2", account=test_moto_world.OTHER_ACCOUNT)
        [iid] = self.launch(ec2=ec2)
        self.ok("instance-facts", {"instance_id": iid, "kernel_id": PV_GRUB})
        self.assertEqual(self.described(iid, ec2), (PV_GRUB, "ebs", "hvm"))

    def test_an_instance_store_root_is_not_stopped(self):
        store, ebs = self.launch(count=2)
        self.ok("instance-facts", {"instance_id": store, "root_device_type": "instance-store"})
        for ids in ([store], [ebs, store]):
            with self.assertRaises(botocore.exceptions.ClientError) as e:
                self.ec2.stop_instances(InstanceIds=ids)
            error = e.exception.response["Error"]
            self.assertEqual(error["Code"], "UnsupportedOperation")
            self.assertIn(f"The instance '{store}' does not have an 'ebs' root device type",
                          error["Message"])
            # Refused as a whole: nothing of the request stopped.
            self.assertEqual((self.state(store), self.state(ebs)), ("running", "running"))
        # A reboot is allowed, and an EBS root stops as before.
        self.ec2.reboot_instances(InstanceIds=[store])
        self.assertEqual(self.state(store), "running")
        self.ec2.stop_instances(InstanceIds=[ebs])
        self.assertEqual(self.state(ebs), "stopped")

    def test_a_bad_request_is_refused(self):
        [iid] = self.launch()
        table = [
            ({}, 400, "`instance_id` (a string) is required"),
            ({"instance_id": iid}, 400, "give `kernel_id`"),
            ({"instance_id": iid, "kernel": PV_GRUB}, 400, "unknown keys ['kernel']"),
            ({"instance_id": iid, "kernel_id": "ami-12c6146b"}, 400, "an AKI id"),
            ({"instance_id": iid, "kernel_id": 44992845}, 400, "an AKI id"),
            ({"instance_id": iid, "root_device_type": "s3"}, 400, "`root_device_type` must be"),
            ({"instance_id": iid, "root_device_type": None}, 400, "`root_device_type` must be"),
            ({"instance_id": iid, "virtualization_type": "pv"}, 400,
             "`virtualization_type` must be"),
            ({"instance_id": "i-00000000000000000", "kernel_id": PV_GRUB}, 404, "no instance"),
        ]
        for body, status, message in table:
            got, answer = self.control("instance-facts", body)
            self.assertEqual(got, status, (body, answer))
            self.assertIn(message, answer["error"], body)
        # Nothing was changed by a refused request.
        self.assertEqual(self.described(iid), (None, "ebs", "hvm"))


def load_tests(loader, tests, pattern):
    return loader.loadTestsFromNames(
        [f"{InstanceFacts.__name__}.{name}" for name in sorted(vars(InstanceFacts))
         if name.startswith("test_")],
        module=sys.modules[__name__],
    )


if __name__ == "__main__":
    unittest.main()
