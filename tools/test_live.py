"""Table tests of tools/live.py on samconfig.toml files as `sam deploy --guided` writes them."""

import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import live  # noqa: E402

GUIDED = '''version = 0.1
[default.global.parameters]
stack_name = "autoheal"

[default.deploy.parameters]
capabilities = "CAPABILITY_IAM"
parameter_overrides = "OpsEmail=\\"ops@example.com\\" DryRun=\\"true\\" PassableRolePattern=\\"app-*\\""
resolve_s3 = true

[default.validate.parameters]
lint = true
'''


class Live(unittest.TestCase):
    def test_going_live_changes_dry_run_only(self):
        out = live.rewrite(GUIDED, "false")
        self.assertEqual(
            live.overrides(out),
            'OpsEmail="ops@example.com" PassableRolePattern="app-*" DryRun="false"',
        )
        # Every other line of the file is as it was.
        def others(text):
            return [line for line in text.splitlines() if not line.startswith("parameter_overrides")]
        self.assertEqual(others(out), others(GUIDED))

    def test_back_to_dry_run_and_again_is_stable(self):
        once = live.rewrite(live.rewrite(GUIDED, "false"), "true")
        self.assertEqual(live.rewrite(once, "true"), once)
        self.assertIn('DryRun="true"', live.overrides(once))
        self.assertNotIn('DryRun="false"', live.overrides(once))

    def test_no_overrides_yet(self):
        text = "version = 0.1\n[default.deploy.parameters]\nstack_name = \"autoheal\"\n"
        self.assertEqual(live.overrides(live.rewrite(text, "false")), 'DryRun="false"')

    def test_no_deploy_section_is_an_error(self):
        with self.assertRaises(SystemExit):
            live.rewrite("version = 0.1\n", "false")


if __name__ == "__main__":
    unittest.main()
