"""make invoke's event: a sample alarm of events/ made about an instance of yours, now.

The samples name a placeholder instance (i-0123456789abcdef0) in us-east-1 at a fixed time in
2026: sent as they are, the function finds no such instance and answers `ignored`, or, from
another region, ignores the alarm as not served. This prints the sample with INSTANCE in the
placeholder's place, the region given in its ARNs, and the current time as its state-change
time (so that a second run is a new transition, not a duplicate). Only a sample that is an
ALARM about the placeholder instance is accepted: make invoke sends nothing else (an OK, an
AWS Health announcement or a tick would move the ledger's incidents on).

Usage: INSTANCE=i-... python3 tools/invoke_event.py events/<file>.json <region>
"""

import datetime
import json
import os
import re
import sys

PLACEHOLDER = "i-0123456789abcdef0"
SAMPLE_REGION = "us-east-1"
# The samples' state-change times (SNS: +0000; EventBridge and the alarm action: Z).
SAMPLE_TIMES = {
    "2026-11-23T03:12:45.123+0000": "%Y-%m-%dT%H:%M:%S.000+0000",
    "2026-11-23T03:12:45.456Z": "%Y-%m-%dT%H:%M:%S.000Z",
    "2026-11-23T03:12:45Z": "%Y-%m-%dT%H:%M:%SZ",
}
INSTANCE = re.compile(r"^i-(?:[0-9a-f]{8}|[0-9a-f]{17})$")
REGION = re.compile(r"^[a-z]{2}(?:-[a-z]+)+-\d+$")


class Refused(Exception):
    pass


def is_alarm(text: str) -> bool:
    """An ALARM transition: SNS's NewStateValue, or EventBridge's / the action's state.value."""
    plain = text.replace('\\"', '"')
    return bool(re.search(r'"NewStateValue":\s*"ALARM"', plain)) or bool(
        re.search(r'"state":\s*\{\s*"value":\s*"ALARM"', plain)
    )


def prepare(text: str, instance: str, region: str, now: datetime.datetime) -> str:
    if not INSTANCE.match(instance or ""):
        raise Refused(
            f"INSTANCE={instance!r}: name an instance of the account, INSTANCE=i-... "
            "(the sample's own instance does not exist anywhere)"
        )
    if not REGION.match(region or ""):
        raise Refused(f"region {region!r}: set AWS_REGION (or a profile with a region)")
    named = set(re.findall(r"\bi-[0-9a-f]{8,17}\b", text))
    if named != {PLACEHOLDER} or not is_alarm(text):
        raise Refused(
            "make invoke sends only an ALARM sample about the one sample instance "
            "(events/sns-alarm.json, eventbridge-alarm.json, alarm-action.json, ...)"
        )
    out = text.replace(PLACEHOLDER, instance).replace(SAMPLE_REGION, region)
    for sample, fmt in SAMPLE_TIMES.items():
        out = out.replace(sample, now.strftime(fmt))
    json.loads(out)
    return out


def main(argv: list) -> int:
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    with open(argv[1]) as f:
        text = f.read()
    try:
        now = datetime.datetime.now(datetime.timezone.utc)
        sys.stdout.write(prepare(text, os.environ.get("INSTANCE", ""), argv[2], now))
    except Refused as e:
        print(f"make invoke: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
