"""Tests of the wrapper's scheduled events (tools/moto_events.py), checked through boto3
against tools/moto_server.py, with the server and helpers of tools/test_moto_world.py.

Run: .venv/bin/python -m unittest tools/test_moto_events.py -v
"""

import datetime
import os
import sys
import unittest

import botocore.exceptions

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import test_moto_world  # noqa: E402

HOUR = datetime.timedelta(hours=1)
DAY = datetime.timedelta(days=1)
MINUTE = datetime.timedelta(minutes=1)


def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


class ScheduledEvents(test_moto_world.World):
    """Only the tests below run here (`load_tests`): World's own run in test_moto_world."""

    def now(self):
        """The wrapper's clock, as an aware datetime."""
        return datetime.datetime.fromtimestamp(self.clock()["now"], datetime.timezone.utc)

    def schedule(self, instance_id, code="instance-retirement", start=None, length=2 * HOUR,
                 deadline=None, **extra):
        start = start or (self.now() + 3 * DAY).replace(microsecond=0)
        body = {"instance_id": instance_id, "code": code, "not_before": iso(start),
                "not_after": iso(start + length), **extra}
        if deadline is not None:
            body["not_before_deadline"] = iso(deadline)
        return self.ok("scheduled-event", body)

    def events(self, instance_id, **kwargs):
        seen = self.statuses(InstanceIds=[instance_id], **kwargs)
        return seen[instance_id].get("Events", []) if instance_id in seen else None

    def move(self, instance_id, event_id, to):
        return self.ec2.modify_instance_event_start_time(
            InstanceId=instance_id, InstanceEventId=event_id, NotBefore=to)

    def refused(self, call, message):
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            call()
        self.assertEqual(e.exception.response["Error"]["Code"], "InvalidParameterValue")
        self.assertIn(message, e.exception.response["Error"]["Message"])

    def test_event_is_reported_in_describe_instance_status(self):
        sick, well = self.launch(count=2)
        start = (self.now() + 3 * DAY).replace(microsecond=0)
        answer = self.schedule(sick, "system-reboot", start=start, deadline=start + 7 * DAY,
                               description="Scheduled reboot of the host")
        event = answer["event"]
        self.assertRegex(event["instance_event_id"], r"^instance-event-[0-9a-f]{17}$")
        self.assertEqual(answer["events"], [event])
        self.assertEqual(event["not_before"], iso(start))
        [seen] = self.events(sick)
        self.assertEqual(seen["InstanceEventId"], event["instance_event_id"])
        self.assertEqual(seen["Code"], "system-reboot")
        self.assertEqual(seen["Description"], "Scheduled reboot of the host")
        self.assertEqual(seen["NotBefore"], start)
        self.assertEqual(seen["NotAfter"], start + 2 * HOUR)
        self.assertEqual(seen["NotBeforeDeadline"], start + 7 * DAY)
        self.assertEqual(self.events(well), [])
        # IncludeAllInstances as moto plays it: the running instance either way.
        self.assertEqual(len(self.events(sick, IncludeAllInstances=True)), 1)
        # A second event, without a deadline: both listed, the second without one.
        self.schedule(sick, "instance-reboot", description="[Canceled] Scheduled reboot")
        seen = self.events(sick)
        self.assertEqual([e["Code"] for e in seen], ["system-reboot", "instance-reboot"])
        self.assertNotIn("NotBeforeDeadline", seen[1])
        self.assertTrue(seen[1]["Description"].startswith("[Canceled]"))
        # The same through the Query API the Rust SDK reads.
        status, xml = self.query("DescribeInstanceStatus", **{"InstanceId.1": sick})
        self.assertEqual(status, 200, xml)
        self.assertIn("<code>system-reboot</code>", xml)
        self.assertIn(f"<instanceEventId>{event['instance_event_id']}</instanceEventId>", xml)

    def test_the_event_code_filter_keeps_only_instances_with_such_an_event(self):
        rebooted, retired, well = self.launch(count=3)
        self.schedule(rebooted, "system-reboot")
        self.schedule(retired, "instance-retirement")
        pages = self.ec2.get_paginator("describe_instance_status").paginate(
            IncludeAllInstances=True,
            Filters=[{"Name": "event.code", "Values": ["system-reboot", "instance-stop"]}])
        seen = {s["InstanceId"]: s for p in pages for s in p["InstanceStatuses"]}
        self.assertEqual(set(seen) & {rebooted, retired, well}, {rebooted})
        both = self.ec2.describe_instance_status(
            IncludeAllInstances=True,
            Filters=[{"Name": "event.code",
                      "Values": ["system-reboot", "instance-retirement"]}])["InstanceStatuses"]
        self.assertEqual({s["InstanceId"] for s in both} & {rebooted, retired, well},
                         {rebooted, retired})
        # Stopped, the instance keeps its event and the filter still finds it.
        self.ec2.stop_instances(InstanceIds=[retired])
        stopped = self.ec2.describe_instance_status(
            IncludeAllInstances=True,
            Filters=[{"Name": "event.code", "Values": ["instance-retirement"]}])["InstanceStatuses"]
        self.assertIn(retired, {s["InstanceId"] for s in stopped})

    def test_a_stopped_instance_keeps_its_event_until_started_on_a_new_host(self):
        [iid] = self.launch()
        self.schedule(iid, "instance-stop")
        self.ec2.stop_instances(InstanceIds=[iid])
        self.assertIsNone(self.events(iid), "not running: not listed without IncludeAllInstances")
        [stopped] = self.events(iid, IncludeAllInstances=True)
        self.assertEqual(stopped["Code"], "instance-stop")
        self.ec2.start_instances(InstanceIds=[iid])
        self.assertEqual(self.events(iid), [], "a new host: the event is gone")
        self.assertEqual(self.events(iid, IncludeAllInstances=True), [])

    def test_a_reboot_does_not_clear_it_and_termination_hides_it(self):
        [iid] = self.launch()
        self.schedule(iid, "system-maintenance")
        self.ec2.reboot_instances(InstanceIds=[iid])
        self.assertEqual(len(self.events(iid)), 1)
        self.ec2.terminate_instances(InstanceIds=[iid])
        self.assertEqual(self.events(iid, IncludeAllInstances=True), [])

    def test_the_event_is_gone_once_its_not_after_passes(self):
        [iid] = self.launch()
        start = (self.now() + HOUR).replace(microsecond=0)
        self.schedule(iid, "instance-reboot", start=start, length=HOUR)
        self.assertEqual(len(self.events(iid)), 1)
        self.advance(90 * 60)  # inside the event: still listed
        self.assertEqual(len(self.events(iid)), 1)
        self.advance(31 * 60)
        self.assertEqual(self.events(iid), [])

    def test_modify_instance_event_start_time_moves_it_within_the_deadline(self):
        [iid] = self.launch()
        start = (self.now() + 3 * DAY).replace(microsecond=0)
        event_id = self.schedule(iid, "instance-reboot", start=start,
                                 deadline=start + 7 * DAY)["event"]["instance_event_id"]
        to = start + 2 * DAY
        moved = self.move(iid, event_id, to)["Event"]
        self.assertEqual((moved["InstanceEventId"], moved["NotBefore"], moved["NotAfter"]),
                         (event_id, to, to + 2 * HOUR))
        [seen] = self.events(iid)
        self.assertEqual((seen["NotBefore"], seen["NotAfter"]), (to, to + 2 * HOUR))
        # Earlier than first scheduled is allowed too, an hour ahead at least.
        soon = (self.now() + 2 * HOUR).replace(microsecond=0)
        self.assertEqual(self.move(iid, event_id, soon)["Event"]["NotBefore"], soon)
        # Exactly at the deadline is allowed.
        self.assertEqual(self.move(iid, event_id, start + 7 * DAY)["Event"]["NotBefore"],
                         start + 7 * DAY)

    def test_modify_instance_event_start_time_refused_as_ec2_refuses_it(self):
        [iid] = self.launch()
        start = (self.now() + 3 * DAY).replace(microsecond=0)
        no_deadline = self.schedule(iid, "system-reboot", start=start)["event"]
        with_deadline = self.schedule(iid, "instance-reboot", start=start,
                                      deadline=start + DAY)["event"]
        self.refused(lambda: self.move(iid, no_deadline["instance_event_id"], start + HOUR),
                     "has no deadline and cannot be rescheduled")
        event_id = with_deadline["instance_event_id"]
        self.refused(lambda: self.move(iid, event_id, start + DAY + HOUR),
                     "after the event's deadline")
        self.refused(lambda: self.move(iid, event_id, self.now() + 30 * MINUTE),
                     "at least 60 minutes from now")
        self.refused(lambda: self.move(iid, "instance-event-00000000000000000", start),
                     "does not exist")
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            self.move("i-00000000000000000", event_id, start)
        self.assertEqual(e.exception.response["Error"]["Code"], "InvalidInstanceID.NotFound")
        # Nothing moved.
        self.assertEqual([e["NotBefore"] for e in self.events(iid)], [start, start])
        # Within 5 minutes of its start it cannot be moved any more.
        self.advance(3 * 24 * 3600 - 4 * 60)
        self.refused(lambda: self.move(iid, event_id, start + 2 * HOUR), "starts within 5 minutes")

    def test_reset_forgets_events_of_one_instance_or_all(self):
        a, b = self.launch(count=2)
        self.schedule(a)
        self.schedule(b)
        self.ok("reset", {"instance_id": a})
        self.assertEqual((len(self.events(a)), len(self.events(b))), (0, 1))
        self.ok("reset", {})
        self.assertEqual(self.events(b), [])
        self.schedule(a)
        self.moto_reset()
        self.assertEqual(self.statuses(), {}, "moto's reset: no instance, no event")

    def test_scheduled_event_bad_requests(self):
        [iid] = self.launch()
        t = iso(self.now() + DAY)
        later = iso(self.now() + 2 * DAY)
        table = [
            ({"code": "instance-stop", "not_before": t, "not_after": later}, 400, "instance_id"),
            ({"instance_id": iid, "code": "explode", "not_before": t, "not_after": later},
             400, "`code` must be one of"),
            ({"instance_id": iid, "code": "instance-stop", "not_after": later}, 400,
             "`not_before` must be"),
            ({"instance_id": iid, "code": "instance-stop", "not_before": "soon",
              "not_after": later}, 400, "`not_before` must be"),
            ({"instance_id": iid, "code": "instance-stop", "not_before": later,
              "not_after": t}, 400, "`not_after` is before `not_before`"),
            ({"instance_id": iid, "code": "instance-stop", "not_before": later,
              "not_after": later, "not_before_deadline": t}, 400, "deadline` is before"),
            ({"instance_id": iid, "code": "instance-stop", "not_before": t, "not_after": later,
              "when": 1}, 400, "unknown keys"),
            ({"instance_id": "i-00000000000000000", "code": "instance-stop", "not_before": t,
              "not_after": later}, 404, "no instance"),
        ]
        for body, status, message in table:
            got, answer = self.control("scheduled-event", body)
            self.assertEqual(got, status, (body, answer))
            self.assertIn(message, answer["error"], body)
        # Unix seconds are taken too.
        start = self.now() + DAY
        answer = self.ok("scheduled-event", {
            "instance_id": iid, "code": "instance-stop", "not_before": start.timestamp(),
            "not_after": (start + HOUR).timestamp()})
        self.assertEqual(answer["event"]["not_before"], iso(start))


def load_tests(loader, tests, pattern):
    return loader.loadTestsFromNames(
        [f"{ScheduledEvents.__name__}.{name}" for name in sorted(vars(ScheduledEvents))
         if name.startswith("test_")],
        module=sys.modules[__name__],
    )
