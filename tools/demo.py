#!/usr/bin/env python3
"""`make demo`: run the real autoheal binary against a local AWS world and show what it does.

A moto server plays AWS (a 3-instance Auto Scaling group, a KMS key, the DynamoDB ledger),
a small HTTP server plays Slack, and this script plays the Lambda service: it serves the
Runtime API the binary polls, and hands it the sample events from events/ one by one.

    .venv/bin/python tools/demo.py --binary target/debug/autoheal
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import rig  # noqa: E402

GROUP = "autoheal-demo"


def health_table(world: rig.World, labels: dict[str, str]) -> None:
    health = world.health(GROUP)
    for iid, label in labels.items():
        rig.log(f"    {label}  {iid}  {health.get(iid, '(not in group)')}")
    others = [i for i in health if i not in labels]
    for iid in others:  # e.g. a replacement the binary launched into the group
        rig.log(f"    +  {iid}  {health[iid]}")


def show_logs(fn: rig.Function, everything: bool, indent: str) -> None:
    """The binary's new log lines: all of them, or only warnings and errors."""
    for line in fn.new_log_lines():
        if everything or rig.log_level(line) in ("WARN", "WARNING", "ERROR"):
            rig.log(f"{indent}log: {rig.format_log_line(line)}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default="target/debug/autoheal", help="the autoheal binary (default: %(default)s)")
    ap.add_argument("--events", default=str(rig.EVENTS_DIR), help="sample events directory")
    ap.add_argument("--dry-run", action="store_true", help="run the binary with AUTOHEAL_DRY_RUN=true")
    ap.add_argument("--no-slack", action="store_true", help="leave SLACK_WEBHOOK_ENCRYPTED unset")
    ap.add_argument("--logs", action="store_true",
                    help="print all the binary's log lines (default: warnings and errors only)")
    ap.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for each answer")
    args = ap.parse_args()

    binary = rig.check_binary(args.binary)
    events_dir = Path(args.events)
    rig.install_signal_handlers()

    with rig.Rig() as r:
        rig.log("autoheal demo — a local AWS (moto), a local Slack, and the real binary")
        rig.log(f"  binary: {binary}")
        world = r.start_moto()
        a, b, c = world.group(GROUP, 3)
        labels = {a: "A", b: "B", c: "C"}
        table = world.ledger_table()
        slack = r.start_slack()
        webhook = None if args.no_slack else world.encrypt_webhook(slack.url)
        runtime = r.start_runtime()
        rig.log(f"  moto:   {world.endpoint}   Runtime API: {runtime.address}   Slack: 127.0.0.1:{slack.port}")
        rig.log(f"  table:  {table}   webhook: {'KMS-encrypted' if webhook else 'unset (log only)'}"
                f"{'   DRY RUN' if args.dry_run else ''}")
        rig.log()
        rig.log(f"Auto Scaling group {GROUP!r} before:")
        health_table(world, labels)
        rig.log()

        fn = r.function(binary, rig.lambda_env(runtime.address, world.endpoint, table, webhook, args.dry_run))
        spawned = fn.start()
        rig.log("Started the binary; waiting for it to poll the Runtime API ...")
        deadline = time.monotonic() + args.timeout
        while runtime.first_poll_at is None and fn.alive() and time.monotonic() < deadline:
            time.sleep(0.005)
        show_logs(fn, args.logs, "   ")
        if runtime.first_poll_at is None:
            why = f"exited with code {fn.proc.returncode}" if not fn.alive() else f"silent for {args.timeout:.0f} s"
            rig.log(f"   The binary never polled for an event ({why}).")
            if runtime.init_error:
                rig.log(f"   It reported an init error: {json.dumps(runtime.init_error)}")
            rig.log("   Last lines of its log:")
            for line in fn.log_tail(40):
                rig.log("     " + line)
            return 1
        rig.log(f"   first poll {1000 * (runtime.first_poll_at - spawned):.1f} ms after spawn")
        rig.log()

        times = rig.FreshTimes()
        ids_a = {rig.FIXTURE_INSTANCE_A: a}
        first_alarm = rig.prepare_event(rig.load_event("sns-alarm.json", events_dir), ids_a, times.next())
        steps = [
            ("sns-alarm.json", "SNS-wrapped StatusCheckFailed ALARM for A", first_alarm),
            ("sns-alarm.json", "the very same delivery again (SNS delivers at least once)", first_alarm),
            ("sns-two-records.json", "one SNS event with two alarms: B and C",
             rig.prepare_event(rig.load_event("sns-two-records.json", events_dir),
                               {rig.FIXTURE_INSTANCE_A: b, rig.FIXTURE_INSTANCE_B: c}, times.next())),
            ("sns-ok.json", "A's alarm returns to OK (later)",
             rig.prepare_event(rig.load_event("sns-ok.json", events_dir), ids_a, times.next(1000))),
            ("eventbridge-alarm.json", "EventBridge alarm state change for A (new alarm)",
             rig.prepare_event(rig.load_event("eventbridge-alarm.json", events_dir), ids_a, times.next(2000))),
            ("alarm-action.json", "CloudWatch direct Lambda alarm action for A (new alarm)",
             rig.prepare_event(rig.load_event("alarm-action.json", events_dir), ids_a, times.next(3000))),
            ("sns-message-not-json.json", "bad input: SNS message that is not JSON",
             rig.load_event("sns-message-not-json.json", events_dir).encode()),
            ("not-an-alarm.json", "bad input: an S3 event, not an alarm",
             rig.load_event("not-an-alarm.json", events_dir).encode()),
        ]

        failed = False
        for n, (name, what, event) in enumerate(steps, 1):
            seen = slack.count()
            kind, body, secs = runtime.invoke(event, timeout=args.timeout, proc=fn.proc)
            rig.log(f"{n}. {name} — {what}")
            if kind == "response":
                outcomes, why = rig.parse_outcomes(body)
                if outcomes is None:
                    rig.log(f"   answered in {secs * 1000:.0f} ms, but {why}")
                else:
                    rig.log(f"   answered in {secs * 1000:.0f} ms, {len(outcomes)} outcome(s):")
                    for o in outcomes:
                        rig.log("     " + rig.format_outcome(o, labels))
            elif kind == "error":
                rig.log(f"   ERROR answer after {secs * 1000:.0f} ms (Lambda would retry): "
                        f"{body.decode('utf-8', 'replace')[:500]}")
            else:
                rig.log(f"   NO ANSWER ({kind}): {body.decode('utf-8', 'replace')[:500]}")
                failed = True
            new_slack = slack.texts()[seen:]
            for text in new_slack:
                rig.log("   slack: " + textwrap.shorten(" ".join(text.split()), 160))
            show_logs(fn, args.logs, "   ")
            rig.log()
            if failed:
                break

        if failed:
            rig.log("The binary stopped answering. Last lines of its log:")
            for line in fn.log_tail(40):
                rig.log("   " + line)
            return 1

        rig.log(f"Auto Scaling group {GROUP!r} after:")
        health_table(world, labels)
        rig.log()
        items = world.ledger_items()
        rig.log(f"Ledger table {table!r}: {len(items)} item(s)")
        for item in sorted(items, key=lambda i: json.dumps(i.get("pk")))[:20]:
            flat = {k: next(iter(v.values())) for k, v in item.items()}
            first = ["pk", "sk", "incident", "status", "action", "result"]
            flat = {k: flat[k] for k in sorted(flat, key=lambda k: (first.index(k) if k in first else 99, k))}
            line = json.dumps(flat, separators=(",", ":"))
            rig.log("    " + (line if len(line) <= 220 else line[:217] + "..."))
        rig.log()
        texts = slack.texts()
        rig.log(f"Slack received {len(texts)} message(s):")
        for i, text in enumerate(texts, 1):
            body = textwrap.indent(text.strip(), "       ")
            rig.log(f"  {i:>2}. {body.lstrip()}")
        if not texts:
            rig.log("    (none)" + ("" if webhook else " — no webhook configured, so notifications went to the log"))
        fn.stop()
    rig.log()
    rig.log("Done; moto, the Runtime API, the Slack receiver and the binary are stopped.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
