"""Tests of the wrapper's ARC zonal shifts (tools/moto_zonal.py), checked through boto3
against tools/moto_server.py, with the server and helpers of tools/test_moto_world.py.

Run: .venv/bin/python -m unittest tools/test_moto_zonal.py -v
"""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import test_moto_world  # noqa: E402


class ZonalShifts(test_moto_world.World):
    """Only the tests below run here (`load_tests`): World's own run in test_moto_world."""

    def test_a_zonal_shift_is_listed_while_active_for_its_account_and_region(self):
        arc = self.client("arc-zonal-shift", account="111122223333")
        self.assertEqual(arc.list_zonal_shifts(status="ACTIVE")["items"], [])
        self.ok("zonal-shift", {"account": "111122223333", "region": "us-east-1",
                                "away_from": "use1-az6", "comment": "bad zone"})
        (item,) = arc.list_zonal_shifts(status="ACTIVE")["items"]
        self.assertEqual((item["awayFrom"], item["status"], item["comment"]),
                         ("use1-az6", "ACTIVE", "bad zone"))
        self.assertTrue(item["resourceIdentifier"].startswith("arn:aws:elasticloadbalancing:"))
        self.assertLess(item["startTime"], item["expiryTime"])
        # Another account, another region: none.
        self.assertEqual(self.client("arc-zonal-shift").list_zonal_shifts(status="ACTIVE")["items"], [])
        other = self.client("arc-zonal-shift", account="111122223333", region="eu-west-1")
        self.assertEqual(other.list_zonal_shifts(status="ACTIVE")["items"], [])
        # Ended: not active any more, still listed without the filter.
        self.ok("zonal-shift", {"account": "111122223333", "region": "us-east-1",
                                "away_from": "use1-az6", "active": False})
        self.assertEqual(arc.list_zonal_shifts(status="ACTIVE")["items"], [])
        self.assertEqual([i["status"] for i in arc.list_zonal_shifts()["items"]], ["CANCELED"])

    def test_an_autoshift_is_listed_while_in_progress(self):
        arc = self.client("arc-zonal-shift", account="444455556666")
        self.ok("zonal-shift", {"account": "444455556666", "region": "us-east-1",
                                "away_from": "use1-az1", "kind": "autoshift"})
        (item,) = arc.list_autoshifts(status="ACTIVE")["items"]
        self.assertEqual((item["awayFrom"], item["status"]), ("use1-az1", "ACTIVE"))
        self.assertEqual(arc.list_zonal_shifts(status="ACTIVE")["items"], [])
        self.ok("zonal-shift", {"account": "444455556666", "region": "us-east-1",
                                "away_from": "use1-az1", "kind": "autoshift", "active": False})
        self.assertEqual(arc.list_autoshifts(status="ACTIVE")["items"], [])

    def test_a_bad_request_is_refused(self):
        status, answer = self.control("zonal-shift", {"region": "us-east-1"})
        self.assertEqual(status, 400, answer)
        status, answer = self.control("zonal-shift", {"region": "us-east-1", "away_from": "z",
                                                      "kind": "sideways"})
        self.assertEqual(status, 400, answer)


def load_tests(loader, tests, pattern):
    own = sorted(n for n in vars(ZonalShifts) if n.startswith("test"))
    return unittest.TestSuite(ZonalShifts(n) for n in own)


if __name__ == "__main__":
    unittest.main()
