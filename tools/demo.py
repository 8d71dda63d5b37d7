#!/usr/bin/env python3
"""`make demo`: run the real autoheal binary against a local AWS world and show what it does.

A moto server plays AWS (a 3-instance Auto Scaling group, one standalone instance with an
Elastic IP, a KMS key, the DynamoDB ledger), a small HTTP server plays Slack, and this script
plays the Lambda service: it serves the Runtime API the binary polls, and hands it the
sample events from events/ one by one. It exits non-zero when the binary stops answering or
the standalone relaunch, or the stop and start of a standalone instance ahead of its scheduled
event, does not leave the world as expected.

    .venv/bin/python tools/demo.py --binary target/debug/autoheal
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import rig  # noqa: E402

GROUP = "autoheal-demo"
STANDALONE = "db-1"
NOTICED = "app-1"


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


def tag(resource: dict | None, key: str) -> str | None:
    for t in (resource or {}).get("Tags") or []:
        if t.get("Key") == key:
            return t.get("Value")
    return None


def who(iid: str | None, labels: dict[str, str]) -> str:
    return "-" if iid is None else (f"{iid} ({labels[iid]})" if iid in labels else iid)


def describe_standalone(world: rig.World, iid: str, indent: str = "    ") -> None:
    """The settings a relaunch must carry over, as EC2 reports them."""
    inst = world.instance(iid) or {}
    sgs = ", ".join(g["GroupId"] for g in inst.get("SecurityGroups") or [])
    rig.log(f"{indent}{iid}  Name={tag(inst, 'Name')}  {inst.get('State', {}).get('Name')}  "
            f"{inst.get('InstanceType')}  subnet {inst.get('SubnetId')}")
    rig.log(f"{indent}security groups {sgs}  key {inst.get('KeyName')}  "
            f"HttpTokens={inst.get('MetadataOptions', {}).get('HttpTokens')}  "
            f"Elastic IP {inst.get('PublicIpAddress')}")


def run_step(n: int, name: str, what: str, event: bytes, runtime, fn, slack, labels, args,
             timeout: float | None = None) -> list[dict] | None:
    """Hand one event to the binary and print its answer, Slack messages and log lines.
    Returns the outcomes ([] for an error answer or an unparsable one), None when no answer came."""
    seen = slack.count()
    kind, body, secs = runtime.invoke(event, timeout=timeout or args.timeout, proc=fn.proc)
    rig.log(f"{n}. {name} — {what}")
    outcomes: list[dict] | None = []
    if kind == "response":
        parsed, why = rig.parse_outcomes(body)
        if parsed is None:
            rig.log(f"   answered in {secs * 1000:.0f} ms, but {why}")
        else:
            outcomes = parsed
            rig.log(f"   answered in {secs * 1000:.0f} ms, {len(parsed)} outcome(s):")
            for o in parsed:
                rig.log("     " + rig.format_outcome(o, labels))
    elif kind == "error":
        rig.log(f"   ERROR answer after {secs * 1000:.0f} ms (Lambda would retry): "
                f"{body.decode('utf-8', 'replace')[:500]}")
    else:
        rig.log(f"   NO ANSWER ({kind}): {body.decode('utf-8', 'replace')[:500]}")
        outcomes = None
    for text in slack.texts()[seen:]:
        rig.log("   slack: " + textwrap.shorten(" ".join(text.split()), 160))
    show_logs(fn, args.logs, "   ")
    return outcomes


def show_relaunch(world: rig.World, lone: dict, labels: dict[str, str], dry_run: bool) -> list[str]:
    """What the relaunch left in the world; returns what the demo expected and did not find."""
    problems: list[str] = []
    sid = lone["id"]

    def check(ok: bool, what: str) -> str:
        if not ok:
            problems.append(what)
        return "" if ok else "   <-- UNEXPECTED: " + what

    images = world.own_images_tagged("autoheal:source-instance", sid)
    rig.log(f"   image autoheal took of S (DescribeImages Owners=self, tag autoheal:source-instance={sid}):")
    for im in images:
        rig.log(f"     {im['ImageId']}  name {im.get('Name')}  {im.get('State')}")
    if dry_run:
        rig.log("     (none: a dry run images and launches nothing, so there is nothing more to show)"
                if not images else "     " + check(False, "a dry run took an image").strip())
        return problems
    if len(images) != 1:
        rig.log("     " + check(False, f"expected one image of S, found {len(images)}").strip())

    copies = world.instances_tagged("autoheal:source-instance", sid)
    copy = copies[0] if len(copies) == 1 else None
    rig.log(f"   the copy (DescribeInstances tag autoheal:source-instance={sid}):")
    if copy is None:
        rig.log("     " + check(False, f"expected one copy of S, found {len(copies)}").strip())
        for c in copies:
            rig.log(f"     {c['InstanceId']}  {c['State']['Name']}")
    else:
        cid = copy["InstanceId"]
        labels[cid] = "S copy"
        src = world.instance(sid) or {}
        sgs = sorted(g["GroupId"] for g in copy.get("SecurityGroups") or [])
        tokens = copy.get("MetadataOptions", {}).get("HttpTokens")
        rig.log(f"     id               {cid}  ({copy['State']['Name']})")
        rig.log(f"     instance type    {copy.get('InstanceType')}"
                + check(copy.get("InstanceType") == src.get("InstanceType"),
                        f"copy's type is not S's {src.get('InstanceType')}"))
        rig.log(f"     subnet           {copy.get('SubnetId')}"
                + check(copy.get("SubnetId") == world.subnet_id, f"copy not in subnet {world.subnet_id}"))
        rig.log(f"     security groups  {', '.join(sgs)}"
                + check(sgs == sorted(lone["groups"]), f"copy's security groups are not {lone['groups']}"))
        rig.log(f"     key pair         {copy.get('KeyName')}"
                + check(copy.get("KeyName") == lone["key"], f"copy's key pair is not {lone['key']}"))
        rig.log(f"     HttpTokens       {tokens}  (IMDSv2 {'required' if tokens == 'required' else 'optional'})"
                + check(tokens == "required", "copy does not require IMDSv2"))
        rig.log(f"     Name tag         {tag(copy, 'Name')}"
                + check(tag(copy, "Name") == STANDALONE, f"copy's Name tag is not {STANDALONE}"))
        ud = world.ec2.describe_instance_attribute(InstanceId=cid, Attribute="userData")
        ud_src = world.ec2.describe_instance_attribute(InstanceId=sid, Attribute="userData")
        ud, ud_src = ud.get("UserData", {}).get("Value"), ud_src.get("UserData", {}).get("Value")
        same_ud = ud_src is not None and ud == ud_src
        rig.log(f"     user data        {'same as S' if same_ud else 'differs from S'}"
                + check(same_ud, "copy's user data is not S's"))
        rig.log(f"     incident tag     {tag(copy, 'autoheal:incident')}")

    rig.log("   the Elastic IP (DescribeAddresses):")
    eip = next((a for a in world.addresses() if a.get("AllocationId") == lone["allocation_id"]), None)
    if eip is None:
        rig.log("     " + check(False, f"Elastic IP {lone['public_ip']} is gone").strip())
    else:
        on = eip.get("InstanceId")
        rig.log(f"     {eip['PublicIp']} ({eip['AllocationId']}) -> {who(on, labels)}"
                + check(copy is not None and on == copy["InstanceId"], "the Elastic IP is not on the copy"))

    alarms = world.status_alarms()
    rig.log("   the status-check alarms (DescribeAlarms, the names autoheal keeps):")
    watched = copy is not None and copy["InstanceId"] in alarms.values()
    rig.log(f"     the copy's: {'yes' if watched else 'none'}"
            + check(watched, "no alarm watches the copy"))
    rig.log(f"     S's: {'kept' if sid in alarms.values() else 'deleted (it watched a stopped instance)'}"
            + check(sid not in alarms.values(), "S's alarm still there"))

    old = world.instance(sid) or {}
    state = old.get("State", {}).get("Name")
    replaced_by = tag(old, "autoheal:replaced-by")
    rig.log("   the old instance S (kept for forensics):")
    rig.log(f"     {sid}  state {state}"
            + check(state in ("stopping", "stopped"), "S is not stopped"))
    rig.log(f"     tag autoheal:replaced-by = {replaced_by}"
            + check(copy is not None and replaced_by == copy["InstanceId"], "S is not tagged as replaced by the copy"))
    return problems


def notice_scene(world: rig.World, n: int, runtime, fn, slack, labels, args,
                 events_dir: Path) -> tuple[int, list[str], bool]:
    """EC2 announces it will stop a standalone instance (N) in 30 minutes: the tick records and
    tells the notice, then stops and starts N ahead of EC2 (a new host clears the event) and
    verifies it. Returns (the last step's number, what was expected and not found, whether
    the binary stopped answering)."""
    problems: list[str] = []
    node = world.standalone(NOTICED)["id"]
    labels[node] = "N"
    start = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0) + _dt.timedelta(minutes=30)
    world.scheduled_event(node, "instance-stop", start, start + _dt.timedelta(hours=1))
    rig.log(f"Standalone instance {NOTICED!r} (N): EC2 announces it will stop N at {start:%H:%M} UTC")
    rig.log("(degraded hardware). Within the notice lead time (1 h), autoheal tells people and acts at")
    rig.log("once, from the tick: stop N, start it again on a new host, then verify that EC2's event is")
    rig.log("gone and both status checks are ok.")
    rig.log()
    tick = rig.load_event("scheduled-tick.json", events_dir).encode()
    done, stops = False, 0
    for _ in range(6):
        n += 1
        outcomes = run_step(n, "scheduled-tick.json", "the tick reads EC2's scheduled events and acts on N's",
                            tick, runtime, fn, slack, labels, args)
        rig.log()
        if outcomes is None:
            return n, problems, True
        mine = [o for o in outcomes if o.get("instance_id") == node]
        stops += sum(1 for o in mine if "stopped ahead of EC2" in str(o.get("reason")))
        want = ("stop_start", "dry_run") if args.dry_run else ("stop_start", "done")
        if any((o.get("action"), o.get("result")) == want for o in mine):
            done = True
            break
    events = world.scheduled_events(node)
    state = world.ec2.describe_instances(InstanceIds=[node])["Reservations"][0]["Instances"][0]["State"]["Name"]
    rig.log(f"   N is {state}; EC2 lists {len(events)} scheduled event(s) for it")
    if not done:
        problems.append("N's scheduled stop was not carried out ahead of EC2")
        rig.log("   <-- UNEXPECTED: N's stop/start ahead of its notice did not end")
    elif args.dry_run:
        if not events:
            problems.append("a dry run cleared N's event")
    else:
        if events or state != "running" or stops != 1:
            problems.append(f"N after its stop/start: {state}, {len(events)} event(s), {stops} stop(s)")
            rig.log("   <-- UNEXPECTED: expected N running, its event gone, stopped once")
    rig.log()
    return n, problems, False


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
        group_labels = {a: "A", b: "B", c: "C"}
        lone = world.standalone(STANDALONE)
        # The emulator plays the failure: EC2 reports A's and B's status checks impaired
        # (C stays healthy); S's system check is impaired, S never finishes stopping, and an
        # image of S stays pending until the demo lets it finish.
        world.impair(a)
        world.impair(b)
        world.impair(lone["id"], system="impaired", instance="ok")
        world.control("stuck-stop", instance_id=lone["id"], stuck=True)
        # Auto Scaling replaces a member marked Unhealthy (terminate it, launch another) two
        # seconds after the mark, as the real service does within a minute or so.
        world.control("asg-replace", group=GROUP, delay_seconds=2, terminating_seconds=1)
        world.control("pending-images", instance_id=lone["id"], pending=True)
        # The alarms `autoheal-admin alarms sync` makes: the function keeps them for what it
        # launches (S's copy) and what Auto Scaling launches into the group (A's and B's
        # replacements).
        topic = f"arn:aws:sns:{rig.REGION}:123456789012:autoheal-alarms"
        for iid in [a, b, c, lone["id"]]:
            world.status_alarm(iid, topic)
        labels = {**group_labels, lone["id"]: "S"}
        table = world.ledger_table()
        slack = r.start_slack()
        webhook = None if args.no_slack else world.encrypt_webhook(slack.url)
        runtime = r.start_runtime()
        rig.log(f"  moto:   {world.endpoint}   Runtime API: {runtime.address}   Slack: 127.0.0.1:{slack.port}")
        rig.log(f"  table:  {table}   webhook: {'KMS-encrypted' if webhook else 'unset (log only)'}"
                f"{'   DRY RUN' if args.dry_run else ''}")
        rig.log()
        rig.log(f"Auto Scaling group {GROUP!r} before (A, B, C):")
        health_table(world, group_labels)
        rig.log(f"Standalone instance {STANDALONE!r} (S), in no Auto Scaling group, before:")
        describe_standalone(world, lone["id"])
        rig.log()

        env = rig.lambda_env(runtime.address, world.endpoint, table, webhook, args.dry_run)
        # S's alarm is the combined StatusCheckFailed metric with the system check impaired:
        # the system ladder. The demo skips waiting for EC2's own recovery and gives each rung
        # 3 s instead of 10 min, so the climb fits in a few seconds.
        env["AUTOHEAL_SYSTEM_LADDER"] = "stop-start,relaunch"
        env["AUTOHEAL_RUNG_TIMEOUT"] = "3"
        fn = r.function(binary, env)
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
            ("sns-two-records.json",
             "one SNS event with two alarms: B — held by the quorum guard (a group of 3 repairs "
             "one member at a time; A is being replaced) — and C, which EC2 reports healthy: "
             "not acted on the alarm alone",
             rig.prepare_event(rig.load_event("sns-two-records.json", events_dir),
                               {rig.FIXTURE_INSTANCE_A: b, rig.FIXTURE_INSTANCE_B: c}, times.next())),
            ("sns-ok.json", "an OK for A while EC2 still reports A impaired: a claim EC2 does not "
             "confirm, so the incident goes on",
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
            outcomes = run_step(n, name, what, event, runtime, fn, slack, labels, args)
            rig.log()
            if outcomes is None:
                failed = True
                break

        problems: list[str] = []
        sid = lone["id"]
        n = len(steps)
        if not failed:
            rig.log(f"Standalone instance S ({STANDALONE}) is in no Auto Scaling group: EC2 reports its system")
            rig.log("check impaired, so it climbs its ladder — stop and start it on a new host (S never")
            rig.log("finishes stopping: the impaired instance of the field report), then image it without")
            rig.log("reboot, launch a copy with S's settings, move the Elastic IP to it, stop S and verify")
            rig.log("the copy's status checks. The 1-minute tick moves each step on; here it is sent by hand.")
            rig.log()
            n = len(steps) + 1
            # A standalone repair waits out a grace period (120 s) measured from the alarm's
            # state change: S's alarm is sent as having changed 150 s ago.
            rig.log("S's alarm changed state 150 s ago: past its 120 s grace period, so autoheal acts.")
            rig.log()
            past = _dt.datetime.now(_dt.timezone.utc) - _dt.timedelta(seconds=150)
            alarm_s = rig.prepare_event(rig.load_event("sns-alarm.json", events_dir),
                                        {rig.FIXTURE_INSTANCE_A: sid},
                                        past.strftime("%Y-%m-%dT%H:%M:%S.000+0000"))
            outcomes = run_step(n, "sns-alarm.json", "StatusCheckFailed ALARM for S (standalone)", alarm_s,
                                runtime, fn, slack, labels, args)
            tick_event = rig.load_event("scheduled-tick.json", events_dir).encode()
            ended = None
            for k in range(8):
                if outcomes is None or args.dry_run:
                    break
                mine = [o for o in outcomes if o.get("instance_id") == sid]
                if any(o.get("action") == "verify" for o in mine):
                    ended = mine
                    break
                if any("waiting for the image" in str(o.get("reason")) for o in mine):
                    rig.log("   (the demo now lets S's image finish: it was pending)")
                    world.control("release-image", instance_id=sid)
                time.sleep(3.5 if k == 0 else 0.5)
                n += 1
                outcomes = run_step(n, "scheduled-tick.json", "the tick moves S's repair on",
                                    tick_event, runtime, fn, slack, labels, args)
            if outcomes is None:
                failed = True
            else:
                want = ("create_image", "dry_run") if args.dry_run else ("verify", "done")
                mine = ended or [o for o in outcomes if o.get("instance_id") == sid]
                if not any((o.get("action"), o.get("result")) == want for o in mine):
                    problems.append(f"S's repair did not end in {want[0]} -> {want[1]}")
                    rig.log(f"   <-- UNEXPECTED: expected {want[0]} -> {want[1]} for S")
                problems += show_relaunch(world, lone, labels, args.dry_run)
                rig.log()

        if not failed:
            n += 1
            tick = rig.load_event("scheduled-tick.json", events_dir).encode()
            outcomes = run_step(n, "scheduled-tick.json",
                                "the 1-minute schedule: advance open incidents (held members of the "
                                "group), take periodic backups",
                                tick, runtime, fn, slack, labels, args)
            if outcomes is None:
                failed = True
            else:
                reasons = [str(o.get("reason", "")) for o in outcomes]
                if any(o.get("instance_id") == sid for o in outcomes):
                    problems.append("the tick still worked on S, whose relaunch is finished")
                    rig.log("   <-- UNEXPECTED: the tick worked on S (its relaunch is finished)")
                if not any(r.startswith("backups:") for r in reasons):
                    problems.append("the tick gave no backups summary")
                    rig.log("   <-- UNEXPECTED: expected a 'backups: ...' summary")
            rig.log()

        if not failed and not args.dry_run:
            # B was held while A was repaired; the ticks since A's incident ended marked B.
            # Auto Scaling replaces it; the tick verifies the replacement with its step times.
            rig.log("B, held by the quorum guard while A was repaired, went once A's incident ended;")
            rig.log("Auto Scaling replaces it, and the tick verifies the replacement with its step times.")
            rig.log()
            verified = False
            for _ in range(8):
                n += 1
                outcomes = run_step(n, "scheduled-tick.json", "the tick follows B's replacement",
                                    rig.load_event("scheduled-tick.json", events_dir).encode(),
                                    runtime, fn, slack, labels, args)
                rig.log()
                if outcomes is None:
                    failed = True
                    break
                if any(o.get("instance_id") == b and (o.get("action"), o.get("result")) == ("verify", "done")
                       for o in outcomes):
                    verified = True
                    break
                time.sleep(1.0)
            if not failed and not verified:
                problems.append("B's replacement by Auto Scaling was not verified")
                rig.log("   <-- UNEXPECTED: B's replacement was not verified")

        if not failed:
            n, more, failed = notice_scene(world, n, runtime, fn, slack, labels, args, events_dir)
            problems += more

        if failed:
            rig.log("The binary stopped answering. Last lines of its log:")
            for line in fn.log_tail(40):
                rig.log("   " + line)
            return 1

        rig.log(f"Auto Scaling group {GROUP!r} after:")
        health_table(world, group_labels)
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
    if problems:
        rig.log()
        rig.log(f"DEMO FAILED: {len(problems)} expectation(s) not met:")
        for p in problems:
            rig.log(f"  - {p}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
