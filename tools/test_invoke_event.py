"""make invoke's event (tools/invoke_event.py) and the script around it (tools/invoke.sh)."""

import datetime
import json
import os
import pathlib
import subprocess
import sys
import unittest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import invoke_event as ie  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
NOW = datetime.datetime(2027, 3, 4, 5, 6, 7, tzinfo=datetime.timezone.utc)
MINE = "i-0abc1234def567890"


def sample(name: str) -> str:
    return (ROOT / "events" / name).read_text()


class PreparedEvent(unittest.TestCase):
    def test_the_sample_alarm_is_about_the_instance_given_in_its_region_now(self):
        out = ie.prepare(sample("sns-alarm.json"), MINE, "eu-west-3", NOW)
        message = json.loads(json.loads(out)["Records"][0]["Sns"]["Message"])
        self.assertEqual(message["Trigger"]["Dimensions"][0]["value"], MINE)
        self.assertEqual(
            message["AlarmArn"],
            "arn:aws:cloudwatch:eu-west-3:123456789012:alarm:autoheal-StatusCheckFailed-" + MINE,
        )
        self.assertEqual(message["StateChangeTime"], "2027-03-04T05:06:07.000+0000")
        self.assertNotIn(ie.PLACEHOLDER, out)
        self.assertNotIn("us-east-1", out)

    def test_eventbridge_and_the_direct_action_are_dated_now_too(self):
        for name in ["eventbridge-alarm.json", "alarm-action.json"]:
            out = ie.prepare(sample(name), MINE, "eu-west-3", NOW)
            self.assertNotIn("2026-11-23", out, name)
            self.assertIn(MINE, out, name)

    def test_no_instance_or_a_malformed_one_is_refused(self):
        for bad in ["", ie.PLACEHOLDER[:-1] + "x", "i-123", "web-1"]:
            with self.assertRaises(ie.Refused, msg=bad):
                ie.prepare(sample("sns-alarm.json"), bad, "eu-west-3", NOW)

    def test_only_an_alarm_about_the_one_sample_instance_is_sent(self):
        for name in [
            "sns-ok.json",
            "scheduled-tick.json",
            "health-recovery-success.json",
            "sns-two-records.json",
            "eventbridge-instance-state.json",
        ]:
            with self.assertRaises(ie.Refused, msg=name):
                ie.prepare(sample(name), MINE, "eu-west-3", NOW)


class InvokeScript(unittest.TestCase):
    """tools/invoke.sh refuses before it starts anything (no cargo lambda is needed here)."""

    def run_script(self, **env):
        base = {k: v for k, v in os.environ.items() if not k.startswith(("AUTOHEAL_", "INSTANCE"))}
        base.update({"AWS_REGION": "eu-west-3", "AUTOHEAL_TABLE": "ledger"}, **env)
        return subprocess.run(
            [str(ROOT / "tools" / "invoke.sh"), "events/sns-alarm.json"],
            cwd=ROOT, env=base, capture_output=True, text=True, timeout=60,
        )

    def test_without_an_instance_nothing_is_invoked(self):
        r = self.run_script()
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("INSTANCE", r.stderr)

    def test_repairs_cannot_be_turned_on(self):
        r = self.run_script(INSTANCE=MINE, AUTOHEAL_DRY_RUN="false")
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("dry run", r.stderr)


if __name__ == "__main__":
    unittest.main()
