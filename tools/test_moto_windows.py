"""Tests of the wrapper's instance event windows (tools/moto_windows.py), checked through
boto3 (and the Query API's XML, as the Rust SDK reads it) against tools/moto_server.py, with
the server and helpers of tools/test_moto_world.py.

Run: .venv/bin/python -m unittest tools/test_moto_windows.py -v
"""

import os
import sys
import unittest

import botocore.exceptions

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import test_moto_world  # noqa: E402
from test_moto_world import OTHER_ACCOUNT  # noqa: E402

# Monday 02:00 to 08:00 and Thursday 22:00 to Friday 01:00, UTC.
RANGES = [
    {"StartWeekDay": "monday", "StartHour": 2, "EndWeekDay": "monday", "EndHour": 8},
    {"StartWeekDay": "thursday", "StartHour": 22, "EndWeekDay": "friday", "EndHour": 1},
]
CRON = "* 0-4,20-23 * * 1,5"
ID = r"^iew-[0-9a-f]{17}$"


def tags(pairs):
    return [{"Key": k, "Value": v} for k, v in pairs]


class EventWindows(test_moto_world.World):
    """Only the tests below run here (`load_tests`): World's own run in test_moto_world."""

    def create(self, ec2=None, **kwargs):
        ec2 = ec2 or self.ec2
        kwargs.setdefault("TimeRanges", RANGES)
        return ec2.create_instance_event_window(**kwargs)["InstanceEventWindow"]

    def associate(self, window_id, ec2=None, **target):
        ec2 = ec2 or self.ec2
        return ec2.associate_instance_event_window(
            InstanceEventWindowId=window_id, AssociationTarget=target)["InstanceEventWindow"]

    def disassociate(self, window_id, **target):
        return self.ec2.disassociate_instance_event_window(
            InstanceEventWindowId=window_id, AssociationTarget=target)["InstanceEventWindow"]

    def described(self, ec2=None, **kwargs):
        ec2 = ec2 or self.ec2
        return ec2.describe_instance_event_windows(**kwargs)["InstanceEventWindows"]

    def ids(self, *filters, ec2=None):
        """The ids of the windows the filters (name, values...) find, in creation order."""
        fs = [{"Name": name, "Values": list(values)} for name, *values in filters]
        return [w["InstanceEventWindowId"] for w in self.described(ec2, Filters=fs)]

    def refused(self, call, code, message=""):
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            call()
        error = e.exception.response["Error"]
        self.assertEqual(error["Code"], code, error)
        self.assertIn(message, error["Message"])
        self.assertEqual(e.exception.response["ResponseMetadata"]["HTTPStatusCode"], 400)

    # --- create and describe ---------------------------------------------------------------

    def test_create_with_time_ranges_and_with_a_cron_expression(self):
        ranged = self.create(Name="weekly", TagSpecifications=[
            {"ResourceType": "instance-event-window", "Tags": tags([("team", "ops")])}])
        self.assertRegex(ranged["InstanceEventWindowId"], ID)
        self.assertEqual(ranged["Name"], "weekly")
        self.assertEqual(ranged["TimeRanges"], RANGES)
        self.assertNotIn("CronExpression", ranged)
        self.assertEqual(ranged["State"], "active")
        self.assertEqual(ranged["AssociationTarget"],
                         {"InstanceIds": [], "Tags": [], "DedicatedHostIds": []})
        self.assertEqual(ranged["Tags"], tags([("team", "ops")]))
        cron = self.ec2.create_instance_event_window(
            Name="cron", CronExpression=CRON)["InstanceEventWindow"]
        self.assertRegex(cron["InstanceEventWindowId"], ID)
        self.assertEqual(cron["CronExpression"], CRON)
        self.assertNotIn("TimeRanges", cron)
        self.assertNotEqual(cron["InstanceEventWindowId"], ranged["InstanceEventWindowId"])
        # Described as created, in creation order; by id too.
        self.assertEqual(self.described(), [ranged, cron])
        self.assertEqual(self.described(
            InstanceEventWindowIds=[cron["InstanceEventWindowId"]]), [cron])
        # A range may run over the week's end; ranges and cron both take anything of 4 hours.
        over = self.create(TimeRanges=[{"StartWeekDay": "saturday", "StartHour": 22,
                                        "EndWeekDay": "sunday", "EndHour": 2}])
        self.assertEqual(over["TimeRanges"][0]["EndWeekDay"], "sunday")
        for expression in ("* 0-2 * * MON,3", "* * * * *", "* 1-5 * * SUN-TUE", "* 2-6 * * 0"):
            self.assertEqual(self.ec2.create_instance_event_window(
                CronExpression=expression)["InstanceEventWindow"]["CronExpression"], expression)

    def test_the_query_api_answers_ec2s_xml(self):
        window = self.create(Name="xml", TagSpecifications=[
            {"ResourceType": "instance-event-window", "Tags": tags([("team", "ops")])}])
        [iid] = self.launch()
        window_id = window["InstanceEventWindowId"]
        self.associate(window_id, InstanceIds=[iid])
        status, xml = self.query("DescribeInstanceEventWindows",
                                 **{"InstanceEventWindowId.1": window_id})
        self.assertEqual(status, 200, xml)
        compact = "".join(line.strip() for line in xml.splitlines())
        for element in (
            "<DescribeInstanceEventWindowsResponse",
            "<instanceEventWindowSet><item>",
            f"<instanceEventWindowId>{window_id}</instanceEventWindowId>",
            "<timeRangeSet><item><startWeekDay>monday</startWeekDay><startHour>2</startHour>"
            "<endWeekDay>monday</endWeekDay><endHour>8</endHour></item>",
            "<name>xml</name>",
            f"<associationTarget><instanceIdSet><item>{iid}</item></instanceIdSet>",
            "<state>active</state>",
            "<tagSet><item><key>team</key><value>ops</value></item></tagSet>",
        ):
            self.assertIn(element, compact)
        self.assertNotIn("nextToken", compact)
        cron_id = self.ec2.create_instance_event_window(
            CronExpression=CRON)["InstanceEventWindow"]["InstanceEventWindowId"]
        status, xml = self.query("DescribeInstanceEventWindows",
                                 **{"InstanceEventWindowId.1": cron_id})
        self.assertIn(f"<cronExpression>{CRON}</cronExpression>", xml)
        status, xml = self.query("CreateInstanceEventWindow", CronExpression=CRON)
        self.assertEqual(status, 200, xml)
        self.assertIn("<CreateInstanceEventWindowResponse", xml)
        self.assertIn("<instanceEventWindow>", xml)
        status, xml = self.query("DeleteInstanceEventWindow", InstanceEventWindowId=cron_id)
        self.assertIn("<instanceEventWindowState>", xml)
        self.assertIn("<state>deleting</state>", xml)

    # --- associations and filters ------------------------------------------------------------

    def test_associate_by_instance_id_and_by_tag_and_describe_with_each_filter(self):
        web, db, lone = self.launch(count=3)
        by_id = self.create(Name="by-id", TagSpecifications=[
            {"ResourceType": "instance-event-window", "Tags": tags([("team", "ops")])}])
        by_tag = self.create(Name="by-tag")
        by_host = self.create(Name="other")
        a, b, c = (w["InstanceEventWindowId"] for w in (by_id, by_tag, by_host))
        answer = self.associate(a, InstanceIds=[web, db])
        self.assertEqual(answer["AssociationTarget"]["InstanceIds"], [web, db])
        # Associating again adds, and names already there are not repeated.
        self.associate(a, InstanceIds=[db])
        answer = self.associate(b, InstanceTags=tags([("Role", "batch"), ("env", "prod")]))
        self.assertEqual(answer["AssociationTarget"]["Tags"],
                         tags([("Role", "batch"), ("env", "prod")]))
        self.assertEqual(answer["AssociationTarget"]["InstanceIds"], [])
        self.assertEqual(self.ids(("instance-id", web)), [a])
        self.assertEqual(self.ids(("instance-id", db, lone)), [a])
        self.assertEqual(self.ids(("instance-id", lone)), [])
        self.assertEqual(self.ids(("instance-tag", "Role=batch")), [b])
        self.assertEqual(self.ids(("instance-tag", "Role=web")), [])
        self.assertEqual(self.ids(("instance-tag-key", "env")), [b])
        self.assertEqual(self.ids(("instance-tag-key", "Env")), [], "keys are case-sensitive")
        self.assertEqual(self.ids(("instance-tag-value", "prod", "batch")), [b])
        self.assertEqual(self.ids(("event-window-name", "by-tag")), [b])
        self.assertEqual(self.ids(("event-window-name", "by-*")), [a, b])
        self.assertEqual(self.ids(("event-window-name", "by-i?")), [a])
        self.assertEqual(self.ids(("tag:team", "ops")), [a])
        self.assertEqual(self.ids(("tag-key", "team")), [a])
        self.assertEqual(self.ids(("tag-value", "ops")), [a])
        self.assertEqual(self.ids(("dedicated-host-id", "h-0123456789abcdef0")), [])
        # Several filters: all of them.
        self.assertEqual(self.ids(("event-window-name", "by-*"), ("instance-id", web)), [a])
        self.assertEqual(self.ids(("event-window-name", "other"), ("instance-id", web)), [])
        self.assertEqual(self.ids(), [a, b, c])
        self.refused(lambda: self.ids(("instance-state", "running")), "InvalidParameterValue",
                     "The filter 'instance-state' is invalid")

    def test_associate_refusals(self):
        first, second = self.launch(count=2)
        a = self.create()["InstanceEventWindowId"]
        b = self.create()["InstanceEventWindowId"]
        self.associate(a, InstanceIds=[first])
        # A target in one window only.
        self.refused(lambda: self.associate(b, InstanceIds=[first]), "InvalidParameterValue",
                     f"already associated with the event window {a}")
        # One type of target per window: in the request, and with what the window has.
        self.refused(lambda: self.associate(b, InstanceIds=[second],
                                            InstanceTags=tags([("Role", "web")])),
                     "InvalidParameterCombination", "Only one type of target")
        self.refused(lambda: self.associate(a, InstanceTags=tags([("Role", "web")])),
                     "InvalidParameterCombination", "only one type of target")
        self.refused(lambda: self.associate(b), "InvalidParameterCombination")
        self.associate(b, InstanceTags=tags([("Role", "web")]))
        c = self.create()["InstanceEventWindowId"]
        self.refused(lambda: self.associate(c, InstanceTags=tags([("Role", "web")])),
                     "InvalidParameterValue", f"already associated with the event window {b}")
        # What it names must exist in the account and region.
        self.refused(lambda: self.associate(a, InstanceIds=["i-00000000000000000"]),
                     "InvalidInstanceID.NotFound")
        self.refused(lambda: self.associate(c, DedicatedHostIds=["h-00000000000000000"]),
                     "InvalidHostID.NotFound")
        self.refused(lambda: self.associate("iew-00000000000000000", InstanceIds=[second]),
                     "InvalidInstanceEventWindowId.NotFound", "iew-00000000000000000")
        # Nothing changed by the refusals.
        self.assertEqual(self.ids(("instance-id", first)), [a])
        self.assertEqual(self.ids(("instance-id", second)), [])
        self.assertEqual(self.ids(("instance-tag", "Role=web")), [b])

    def test_disassociate_and_delete(self):
        web, db = self.launch(count=2)
        a = self.create()["InstanceEventWindowId"]
        b = self.create()["InstanceEventWindowId"]
        self.associate(a, InstanceIds=[web, db])
        self.associate(b, InstanceTags=tags([("Role", "web")]))
        answer = self.disassociate(a, InstanceIds=[web])
        self.assertEqual(answer["AssociationTarget"]["InstanceIds"], [db])
        self.assertEqual(self.ids(("instance-id", web)), [])
        self.assertEqual(self.ids(("instance-id", db)), [a])
        self.refused(lambda: self.disassociate(a, InstanceIds=[web]), "InvalidParameterValue",
                     "is not associated")
        self.refused(lambda: self.disassociate("iew-00000000000000000", InstanceIds=[web]),
                     "InvalidInstanceEventWindowId.NotFound")
        # Once disassociated, the instance may go to another window.
        self.disassociate(b, InstanceTags=tags([("Role", "web")]))
        self.associate(b, InstanceIds=[web])
        # An associated window is deleted only with ForceDelete.
        self.refused(lambda: self.ec2.delete_instance_event_window(InstanceEventWindowId=a),
                     "InvalidParameterValue", "ForceDelete")
        self.disassociate(a, InstanceIds=[db])
        state = self.ec2.delete_instance_event_window(
            InstanceEventWindowId=a)["InstanceEventWindowState"]
        self.assertEqual(state, {"InstanceEventWindowId": a, "State": "deleting"})
        state = self.ec2.delete_instance_event_window(
            InstanceEventWindowId=b, ForceDelete=True)["InstanceEventWindowState"]
        self.assertEqual(state["InstanceEventWindowId"], b)
        self.assertEqual(self.described(), [])
        for gone in (a, b):
            self.refused(lambda: self.described(InstanceEventWindowIds=[gone]),
                         "InvalidInstanceEventWindowId.NotFound", gone)
            self.refused(lambda: self.ec2.delete_instance_event_window(
                InstanceEventWindowId=gone), "InvalidInstanceEventWindowId.NotFound")
        # The instance of the deleted window may be associated anew.
        c = self.create()["InstanceEventWindowId"]
        self.associate(c, InstanceIds=[web])

    # --- pagination --------------------------------------------------------------------------

    def test_pagination(self):
        made = [self.create(Name=f"w{i:02}")["InstanceEventWindowId"] for i in range(25)]
        page = self.ec2.describe_instance_event_windows(MaxResults=20)
        self.assertEqual([w["InstanceEventWindowId"] for w in page["InstanceEventWindows"]],
                         made[:20])
        rest = self.ec2.describe_instance_event_windows(MaxResults=20,
                                                        NextToken=page["NextToken"])
        self.assertEqual([w["InstanceEventWindowId"] for w in rest["InstanceEventWindows"]],
                         made[20:])
        self.assertNotIn("NextToken", rest)
        # boto3's paginator (the Rust SDK's reads the same NextToken).
        pages = list(self.ec2.get_paginator("describe_instance_event_windows").paginate(
            PaginationConfig={"PageSize": 20}))
        self.assertEqual([len(p["InstanceEventWindows"]) for p in pages], [20, 5])
        self.assertEqual([w["InstanceEventWindowId"] for p in pages
                          for w in p["InstanceEventWindows"]], made)
        # Filters page the windows they find.
        found = self.ec2.describe_instance_event_windows(
            MaxResults=20, Filters=[{"Name": "event-window-name", "Values": ["w1*", "w2*"]}])
        self.assertEqual([w["InstanceEventWindowId"] for w in found["InstanceEventWindows"]],
                         made[10:])
        self.assertNotIn("NextToken", found)
        # A window deleted between pages is simply not there.
        self.ec2.delete_instance_event_window(InstanceEventWindowId=made[21])
        rest = self.ec2.describe_instance_event_windows(MaxResults=20,
                                                        NextToken=page["NextToken"])
        self.assertEqual([w["InstanceEventWindowId"] for w in rest["InstanceEventWindows"]],
                         made[20:21] + made[22:])
        self.refused(lambda: self.ec2.describe_instance_event_windows(
            MaxResults=20, InstanceEventWindowIds=made[:1]), "InvalidParameterCombination")
        self.refused(lambda: self.ec2.describe_instance_event_windows(MaxResults=501),
                     "InvalidParameterValue", "MaxResults")
        self.refused(lambda: self.ec2.describe_instance_event_windows(
            MaxResults=20, NextToken="not-a-token"), "InvalidPaginationToken")

    # --- validation ----------------------------------------------------------------------------

    def test_create_refusals(self):
        def create(**kwargs):
            return lambda: self.ec2.create_instance_event_window(**kwargs)

        def ranged(*ranges):
            return create(TimeRanges=[
                {"StartWeekDay": sd, "StartHour": sh, "EndWeekDay": ed, "EndHour": eh}
                for sd, sh, ed, eh in ranges])

        invalid = "InvalidParameterValue"
        table = [
            (create(TimeRanges=RANGES, CronExpression=CRON), "InvalidParameterCombination",
             "not both"),
            (create(Name="nothing"), "InvalidParameterCombination", "TimeRanges or"),
            (ranged(("funday", 2, "monday", 8)), invalid, "funday"),
            (ranged(("monday", 2, "Monday", 8)), invalid, "Monday"),
            (ranged(("monday", 2, "monday", 24)), invalid, "(24)"),
            (ranged(("monday", 2, "monday", 3), ("tuesday", 2, "tuesday", 8)), invalid,
             "at least 2 hours"),
            (ranged(("monday", 2, "monday", 2)), invalid, "at least 2 hours"),
            (ranged(("monday", 2, "monday", 5)), invalid, "at least 4 hours"),
            # Overlapping ranges count once.
            (ranged(("monday", 2, "monday", 5), ("monday", 3, "monday", 5)), invalid,
             "total 3 hours"),
            (create(CronExpression="0 0-4 * * 1"), invalid, "must be *"),
            (create(CronExpression="* 0-4 * 1 1"), invalid, "must be *"),
            (create(CronExpression="* 0-4 * *"), invalid, "5 fields"),
            (create(CronExpression="* 0-1,5-9 * * 1"), invalid, "at least 2 hours"),
            (create(CronExpression="* 3 * * 1"), invalid, "ranges"),
            (create(CronExpression="* 20-24 * * 1"), invalid, "ranges"),
            (create(CronExpression="* 0-2 * * 1"), invalid, "at least 4"),
            (create(CronExpression="* 0-4 * * 7"), invalid, "day of week"),
            (create(CronExpression="* 0-4 * * FUN"), invalid, "day of week"),
            (create(CronExpression=CRON, TagSpecifications=[
                {"ResourceType": "instance", "Tags": tags([("a", "b")])}]), invalid,
             "'instance' is not a valid taggable resource type"),
        ]
        for call, code, message in table:
            with self.subTest(message=message):
                self.refused(call, code, message)
        # boto3 refuses a negative hour itself; through the Query API it is EC2's refusal.
        status, xml = self.query(
            "CreateInstanceEventWindow", **{
                "TimeRange.1.StartWeekDay": "monday", "TimeRange.1.StartHour": "-1",
                "TimeRange.1.EndWeekDay": "monday", "TimeRange.1.EndHour": "8"})
        self.assertEqual(status, 400, xml)
        self.assertIn("<Code>InvalidParameterValue</Code>", xml)
        self.assertEqual(self.described(), [], "nothing was created")
        # Unknown windows.
        self.refused(lambda: self.described(InstanceEventWindowIds=["iew-00000000000000000"]),
                     "InvalidInstanceEventWindowId.NotFound")
        self.refused(lambda: self.ec2.delete_instance_event_window(
            InstanceEventWindowId="iew-00000000000000000"),
            "InvalidInstanceEventWindowId.NotFound")

    # --- accounts, regions, reset ----------------------------------------------------------

    def test_accounts_and_regions_do_not_see_each_others_windows(self):
        other = self.client("ec2", account=OTHER_ACCOUNT)
        west = self.client("ec2", region="us-west-2")
        [mine] = self.launch()
        [theirs] = self.launch(other)
        a = self.create(Name="mine")["InstanceEventWindowId"]
        b = self.create(other, Name="theirs")["InstanceEventWindowId"]
        self.associate(a, InstanceIds=[mine])
        self.associate(b, other, InstanceIds=[theirs])
        self.assertEqual([w["InstanceEventWindowId"] for w in self.described()], [a])
        self.assertEqual([w["InstanceEventWindowId"] for w in self.described(other)], [b])
        self.assertEqual(self.described(west), [])
        self.assertEqual(self.ids(("instance-id", theirs)), [])
        self.refused(lambda: self.described(InstanceEventWindowIds=[b]),
                     "InvalidInstanceEventWindowId.NotFound")
        self.refused(lambda: other.delete_instance_event_window(InstanceEventWindowId=a),
                     "InvalidInstanceEventWindowId.NotFound")
        self.refused(lambda: west.associate_instance_event_window(
            InstanceEventWindowId=a, AssociationTarget={"InstanceIds": [mine]}),
            "InvalidInstanceEventWindowId.NotFound")
        # Another account's instance is not found from this one.
        c = self.create()["InstanceEventWindowId"]
        self.refused(lambda: self.associate(c, InstanceIds=[theirs]),
                     "InvalidInstanceID.NotFound")
        # Each account has its own names and targets: the same tag in both is fine.
        self.associate(c, InstanceTags=tags([("Role", "web")]))
        d = self.create(other)["InstanceEventWindowId"]
        self.associate(d, other, InstanceTags=tags([("Role", "web")]))

    def test_reset_forgets_windows_or_one_instances_associations(self):
        a_instance, b_instance = self.launch(count=2)
        a = self.create()["InstanceEventWindowId"]
        self.associate(a, InstanceIds=[a_instance, b_instance])
        self.ok("reset", {"instance_id": a_instance})
        [window] = self.described()
        self.assertEqual(window["AssociationTarget"]["InstanceIds"], [b_instance])
        self.ok("reset", {})
        self.assertEqual(self.described(), [])
        self.create()
        self.moto_reset()
        self.assertEqual(self.described(), [])


def load_tests(loader, tests, pattern):
    return loader.loadTestsFromNames(
        [f"{EventWindows.__name__}.{name}" for name in sorted(vars(EventWindows))
         if name.startswith("test_")],
        module=sys.modules[__name__],
    )
