"""Sets the stack's DryRun parameter where `sam deploy` keeps its answers (samconfig.toml,
`[default.deploy.parameters]`, `parameter_overrides`), so every later `make deploy` keeps it.

  python tools/live.py false [--config samconfig.toml]   repairs on (`make live`)
  python tools/live.py true  [--config samconfig.toml]   dry run again (`make dry-run`)

The other overrides are kept as they are. samconfig.toml is written by the first, guided
`make deploy`; without it there is nothing to change and the command says so.
"""

from __future__ import annotations

import argparse
import re
import shlex
import sys
import tomllib
from pathlib import Path

SECTION = ("default", "deploy", "parameters")


def overrides(text: str) -> str:
    """The `parameter_overrides` string of the deploy section ("" when none)."""
    node = tomllib.loads(text)
    for key in SECTION:
        node = node.get(key, {})
    value = node.get("parameter_overrides", "")
    # SAM writes a string; a list of "Key=Value" strings is accepted too.
    return " ".join(value) if isinstance(value, list) else value


def with_dry_run(current: str, dry_run: str) -> str:
    """`current` ("Key=\\"v\\" ..."), with DryRun set to `dry_run` and nothing else changed."""
    pairs = [p.split("=", 1) for p in shlex.split(current)]
    kept = [(k, v) for k, v in pairs if k != "DryRun"]
    return " ".join(f'{k}="{v}"' for k, v in kept + [("DryRun", dry_run)])


def rewrite(text: str, dry_run: str) -> str:
    """samconfig.toml's text with the deploy section's overrides updated (added if absent)."""
    value = with_dry_run(overrides(text), dry_run)
    line = "parameter_overrides = " + '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    header = re.compile(r"^\[default\.deploy\.parameters\]\s*$", re.M)
    m = header.search(text)
    if not m:
        raise SystemExit("samconfig.toml has no [default.deploy.parameters]: run `make deploy` first")
    end = re.compile(r"^\[", re.M).search(text, m.end())
    body_end = end.start() if end else len(text)
    body = text[m.end():body_end]
    existing = re.compile(r"^parameter_overrides\s*=.*$", re.M)
    if existing.search(body):
        body = existing.sub(lambda _: line, body, count=1)
    else:
        body = body.rstrip("\n") + "\n" + line + "\n"
    out = text[: m.end()] + body + text[body_end:]
    assert overrides(out) == value, "the rewritten file must read back as written"
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dry_run", choices=("true", "false"))
    ap.add_argument("--config", default="samconfig.toml")
    args = ap.parse_args()
    path = Path(args.config)
    if not path.exists():
        print(f"{path} not found: run `make deploy` once (guided), then this again", file=sys.stderr)
        return 1
    path.write_text(rewrite(path.read_text(), args.dry_run))
    print(f"{path}: DryRun={args.dry_run}; the next `make deploy` deploys it, and every later one keeps it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
