"""tools/slack_check.py on a good payload and on bad ones.

    .venv/bin/python -m unittest tools/test_slack_check.py
"""

import copy
import io
import json
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import slack_check  # noqa: E402

LINKS = (
    "<https://us-east-1.console.aws.amazon.com/ec2/home?region=us-east-1#InstanceDetails:instanceId=i-0123456789abcdef0|Instance>"
    " · <https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1#alarmsV2:alarm/a%20%26%20b|Alarm>"
)

GOOD = {
    "text": ":white_check_mark: autoheal: i-0123456789abcdef0 (&lt;!channel&gt; db) marked Unhealthy — a &amp; b.",
    "blocks": [
        {
            "type": "header",
            "text": {"type": "plain_text", "emoji": True, "text": ":white_check_mark: i-0123456789abcdef0 marked Unhealthy"},
        },
        {"type": "section", "text": {"type": "mrkdwn", "text": "*Why:* marked Unhealthy in group &lt;https://evil|x&gt;"}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": f"*Field {n}*\nvalue"} for n in range(8)]},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "Alarm reason: Threshold Crossed"}]},
        {"type": "section", "text": {"type": "mrkdwn", "text": LINKS}},
    ],
}


def problems(payload):
    return slack_check.check_payload(payload)


def changed(path, value):
    """GOOD with the value at `path` (keys and indexes) replaced."""
    p = copy.deepcopy(GOOD)
    at = p
    for key in path[:-1]:
        at = at[key]
    at[path[-1]] = value
    return p


class SlackCheck(unittest.TestCase):
    def test_a_good_payload_passes(self):
        self.assertEqual(problems(GOOD), [])

    def test_a_header_over_150_characters_fails(self):
        found = problems(changed(["blocks", 0, "text", "text"], "x" * 151))
        self.assertTrue(any("cannot exceed 150" in p for p in found), found)
        self.assertEqual(problems(changed(["blocks", 0, "text", "text"], "x" * 150)), [])

    def test_eleven_fields_in_a_section_fail(self):
        fields = [{"type": "mrkdwn", "text": f"f{n}"} for n in range(11)]
        found = problems(changed(["blocks", 2, "fields"], fields))
        self.assertTrue(any("cannot exceed 10 items" in p for p in found), found)

    def test_long_texts_fail(self):
        found = problems(changed(["blocks", 1, "text", "text"], "x" * 3001))
        self.assertTrue(any("cannot exceed 3000" in p for p in found), found)
        found = problems(changed(["blocks", 2, "fields", 0, "text"], "x" * 2001))
        self.assertTrue(any("fields[0]: text is 2001 characters" in p for p in found), found)
        found = problems(changed(["blocks", 3, "elements", 0, "text"], "x" * 2001))
        self.assertTrue(any("elements[0]: text is 2001 characters" in p for p in found), found)
        found = problems(changed(["text"], "x" * 3001))
        self.assertTrue(any("text: 3001 characters" in p for p in found), found)

    def test_unescaped_mentions_and_links_fail(self):
        for where in (["text"], ["blocks", 1, "text", "text"], ["blocks", 2, "fields", 3, "text"],
                      ["blocks", 3, "elements", 0, "text"], ["blocks", 0, "text", "text"]):
            for bad in ("<!channel> db", "<@U0123>", "<https://evil.example|click>", "<http://x|y>", "a & b",
                        "<https://console.aws.amazon.com.evil.example/|Instance>"):
                found = problems(changed(where, f"Name: {bad}"))
                self.assertTrue(found, (where, bad))
        # Our links are fine only in mrkdwn; in the plain_text header no '<' at all.
        self.assertEqual(problems(changed(["blocks", 1, "text", "text"], LINKS)), [])
        self.assertTrue(problems(changed(["blocks", 0, "text", "text"], LINKS)))

    def test_a_runbook_link_is_ours_only_at_the_runbook_url_given(self):
        url = "https://git.example.com/ops/autoheal/-/blob/main/docs/RUNBOOK.md?ref=main&plain=1"
        ours = (slack_check.LINK, slack_check.runbook_link(url))
        link = ("<https://git.example.com/ops/autoheal/-/blob/main/docs/RUNBOOK.md?ref=main&amp;plain=1"
                "#ladder-ended-still-failing|Runbook: Ladder ended, still failing>")
        context = ["blocks", 3, "elements", 0, "text"]
        self.assertEqual(slack_check.check_payload(changed(context, f"Audit trail · {link}"), ours), [])
        # Without the URL given, or at another address or label, it is not ours.
        self.assertTrue(problems(changed(context, link)))
        for bad in (link.replace("git.example.com", "evil.example"),
                    link.replace("&amp;", "&"),
                    link.replace("|Runbook: ", "|Click: "),
                    link.replace("#ladder", "/../x#ladder")):
            self.assertTrue(slack_check.check_payload(changed(context, bad), ours), bad)
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "slack_check.py")
        line = json.dumps(changed(context, link)) + "\n"
        run = subprocess.run([sys.executable, script, "--runbook-url", url], input=line,
                             capture_output=True, text=True)
        self.assertEqual((run.returncode, run.stdout.strip()), (0, "ok 1 payloads"), run.stderr)
        run = subprocess.run([sys.executable, script], input=line, capture_output=True, text=True)
        self.assertEqual(run.returncode, 1, run.stdout)

    def test_unknown_blocks_and_missing_text_fail(self):
        found = problems(changed(["blocks", 1], {"type": "no_such_block", "text": "x"}))
        self.assertTrue(any("unknown block type 'no_such_block'" in p for p in found), found)
        found = problems(changed(["blocks", 1], {"text": {"type": "mrkdwn", "text": "x"}}))
        self.assertTrue(any("unknown block type None" in p for p in found), found)
        found = problems(changed(["blocks", 1, "colour"], "red"))
        self.assertTrue(any("keys slack_sdk does not know: colour" in p for p in found), found)
        p = copy.deepcopy(GOOD)
        del p["text"]
        self.assertTrue(any(x.startswith("text: missing") for x in problems(p)))
        self.assertTrue(problems(changed(["text"], 5)))

    def test_the_command_reads_lines_and_exits_by_what_it_found(self):
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "slack_check.py")
        good = json.dumps(GOOD) + "\n\n" + json.dumps(GOOD) + "\n"
        run = subprocess.run([sys.executable, script], input=good, capture_output=True, text=True)
        self.assertEqual((run.returncode, run.stdout.strip()), (0, "ok 2 payloads"), run.stderr)
        bad = json.dumps(changed(["blocks", 0, "text", "text"], "<!channel>")) + "\nnot json\n"
        with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
            f.write(good + bad)
        try:
            run = subprocess.run([sys.executable, script, f.name], capture_output=True, text=True)
        finally:
            os.unlink(f.name)
        self.assertEqual(run.returncode, 1, run.stdout + run.stderr)
        self.assertIn("line 4: blocks[0] text: unescaped '<' in plain_text", run.stdout)
        self.assertIn("line 5: not JSON", run.stdout)
        run = subprocess.run([sys.executable, script], input="", capture_output=True, text=True)
        self.assertEqual(run.returncode, 2)


if __name__ == "__main__":
    unittest.main()
