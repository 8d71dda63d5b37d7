#!/usr/bin/env python3
"""`make bench`: size, cold start, warm latency and memory of the autoheal binary.

Everything runs locally: moto plays AWS, this script serves the Lambda Runtime API and a
Slack webhook, and a minimal Python/boto3 handler (tools/baseline_handler.py) run the same
way is the baseline. Prints a table and writes JSON (default target/bench.json).

    .venv/bin/python tools/bench.py --binary target/release/autoheal

Exit code: 0 all targets pass, 1 a target failed, 2 the measurement itself failed.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import rig  # noqa: E402

MB = 1024 * 1024
TARGETS = {  # name -> limit; all are "value <= limit"
    "cold_start_first_poll_ms": 25.0,
    "peak_rss_mb": 25.0,
    "binary_mb": 20.0,
}


class MeasurementFailed(Exception):
    pass


class Budget:
    """A wall-clock budget for the whole run, so the bench always stops by itself."""

    def __init__(self, seconds: float):
        self.deadline = time.monotonic() + seconds
        self.seconds = seconds

    def check(self, what: str) -> None:
        if time.monotonic() > self.deadline:
            raise MeasurementFailed(f"time budget of {self.seconds:.0f} s exhausted during {what}")

    def left(self, cap: float) -> float:
        return max(0.1, min(cap, self.deadline - time.monotonic()))


def alarm_event(template: str, instance_id: str, times: rig.FreshTimes) -> bytes:
    return rig.prepare_event(template, {rig.FIXTURE_INSTANCE_A: instance_id}, times.next())


def wait_first_poll(runtime: rig.RuntimeAPI, fn: rig.Function, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while runtime.first_poll_at is None:
        if not fn.alive():
            raise MeasurementFailed(f"{fn.argv[-1]} exited ({fn.proc.returncode}) before polling; "
                                    f"log: {' | '.join(fn.log_tail(5))}")
        if time.monotonic() > deadline:
            raise MeasurementFailed(f"{fn.argv[-1]} did not poll the Runtime API within {timeout:.0f} s")
        time.sleep(0.002)
    return runtime.first_poll_at


def cold_starts(r: rig.Rig, argv: list[str], env_for, instances: list[str], template: str,
                times: rig.FreshTimes, timeout: float, budget: Budget, name: str) -> dict:
    """Spawn once per instance; each time an alarm for that instance is already queued."""
    first_poll, first_answer, results = [], [], []
    for n, iid in enumerate(instances):
        budget.check(f"{name} cold start {n + 1}")
        runtime = r.start_runtime()  # a fresh Runtime API per process: no state carries over
        inv = runtime.queue(alarm_event(template, iid, times))
        fn = r.function(argv, env_for(runtime), name=f"{name}-cold-{n}")
        try:
            t0 = fn.start()
            kind, body, _ = runtime.wait(inv, timeout=budget.left(timeout), proc=fn.proc)
            if kind != "response":
                raise MeasurementFailed(f"{name} cold start {n + 1}: {kind}: {body[:300]!r}; "
                                        f"log: {' | '.join(fn.log_tail(5))}")
            first_poll.append(1000 * (runtime.first_poll_at - t0))
            first_answer.append(1000 * (inv.answered_at - t0))
            outcomes, _ = rig.parse_outcomes(body)
            results.extend(o.get("result") for o in outcomes or [])
        finally:
            fn.stop()
            runtime.stop()
    return {
        "spawns": len(instances),
        "first_poll_ms": [round(x, 2) for x in first_poll],
        "first_answer_ms": [round(x, 2) for x in first_answer],
        "first_poll_median_ms": round(rig.median(first_poll), 2),
        "first_answer_median_ms": round(rig.median(first_answer), 2),
        "results": dict(collections.Counter(results)),
    }


def warm_run(r: rig.Rig, argv: list[str], env_for, instances: list[str], template: str,
             times: rig.FreshTimes, timeout: float, budget: Budget, name: str,
             profile_instances: list[str], slack: rig.SlackReceiver) -> dict:
    """One process; one alarm per instance, each timed from queueing to response.

    Afterwards, untimed, a few more alarms (for `profile_instances`) with moto's recorder
    on, to list the AWS calls one alarm costs."""
    runtime = r.start_runtime()
    fn = r.function(argv, env_for(runtime), name=f"{name}-warm")
    latencies, results, errors = [], collections.Counter(), []
    try:
        t0 = fn.start()
        wait_first_poll(runtime, fn, budget.left(timeout))
        init_ms = 1000 * (runtime.first_poll_at - t0)
        slack_before = slack.count()
        for n, iid in enumerate(instances):
            budget.check(f"{name} warm alarm {n + 1}")
            kind, body, secs = runtime.invoke(alarm_event(template, iid, times),
                                              timeout=budget.left(timeout), proc=fn.proc)
            if kind not in ("response", "error"):
                raise MeasurementFailed(f"{name} warm alarm {n + 1}: {kind}: {body[:300]!r}; "
                                        f"log: {' | '.join(fn.log_tail(5))}")
            latencies.append(1000 * secs)
            if kind == "error":
                results["(error answer)"] += 1
                if len(errors) < 3:
                    errors.append(body.decode("utf-8", "replace")[:300])
                continue
            outcomes, why = rig.parse_outcomes(body)
            if outcomes is None:
                results["(bad response)"] += 1
                if len(errors) < 3:
                    errors.append(why)
            for o in outcomes or []:
                results[str(o.get("result"))] += 1
        mem = rig.vm_status(fn.pid)
        slack_messages = slack.count() - slack_before
        calls: list[str] = []
        with r.moto.recording() as calls:
            for iid in profile_instances:
                budget.check(f"{name} call profile")
                runtime.invoke(alarm_event(template, iid, times), timeout=budget.left(timeout), proc=fn.proc)
    finally:
        fn.stop()
        runtime.stop()
    return {
        "alarms": len(instances),
        "init_to_first_poll_ms": round(init_ms, 2),
        "latency_ms": [round(x, 3) for x in latencies],
        "median_ms": round(rig.median(latencies), 3),
        "p99_ms": round(rig.percentile(latencies, 99), 3),
        "max_ms": round(max(latencies), 3),
        "first_ms": round(latencies[0], 3),
        "results": dict(results),
        "error_samples": errors,
        "slack_messages": slack_messages,
        "aws_calls_per_alarm": round(len(calls) / max(1, len(profile_instances)), 2),
        "aws_calls_per_alarm_by_operation": {
            op: round(c / max(1, len(profile_instances)), 2)
            for op, c in sorted(collections.Counter(calls).items())},
        "peak_rss_mb": round(mem.get("VmHWM", 0) / 1024, 2),
        "rss_after_mb": round(mem.get("VmRSS", 0) / 1024, 2),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default="target/release/autoheal", help="default: %(default)s")
    ap.add_argument("--spawns", type=int, default=7, help="cold starts to measure (>= 5; default %(default)s)")
    ap.add_argument("--alarms", type=int, default=200, help="warm alarms, one per instance (default %(default)s)")
    ap.add_argument("--out", default="target/bench.json", help="JSON report (default %(default)s)")
    ap.add_argument("--events", default=str(rig.EVENTS_DIR), help="sample events directory")
    ap.add_argument("--no-slack", action="store_true", help="leave SLACK_WEBHOOK_ENCRYPTED unset")
    ap.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for one answer")
    ap.add_argument("--max-seconds", type=float, default=900.0, help="budget for the whole run")
    args = ap.parse_args()
    if args.spawns < 5:
        ap.error("--spawns must be at least 5")
    if args.alarms < 1:
        ap.error("--alarms must be at least 1")

    binary = rig.check_binary(args.binary)
    template = rig.load_event("sns-alarm.json", Path(args.events))
    budget = Budget(args.max_seconds)
    rig.install_signal_handlers()
    report: dict = {
        "binary": str(binary),
        "size_bytes": binary.stat().st_size,
        "binary_mb": round(binary.stat().st_size / MB, 2),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "host": {"machine": platform.machine(), "cpus": os.cpu_count(), "python": platform.python_version()},
        "settings": {"spawns": args.spawns, "alarms": args.alarms, "slack": not args.no_slack},
    }
    out = Path(args.out)
    status = 2
    try:
        with rig.Rig() as r:
            rig.log(f"bench: {binary} ({report['binary_mb']} MB)")
            rig.log("building the local world (moto) ...")
            world = r.start_moto()
            table = world.ledger_table()
            slack = r.start_slack()
            webhook = None if args.no_slack else world.encrypt_webhook(slack.url)
            cold_ids = world.group("bench-cold", args.spawns)
            warm_ids = world.group("bench-warm", args.alarms)
            base_ids = world.group("bench-baseline", args.alarms)
            base_cold_ids = world.group("bench-baseline-cold", 3)
            profile_ids = world.group("bench-profile", 3)
            base_profile_ids = world.group("bench-baseline-profile", 3)
            # EC2 reports autoheal's instances impaired: what confirms each alarm.
            for iid in cold_ids + warm_ids + profile_ids:
                world.impair(iid)
            times = rig.FreshTimes()

            def env_for(runtime):
                env = rig.lambda_env(runtime.address, world.endpoint, table, webhook)
                # Every alarm must be repaired to be measured: the repair guards (which would
                # hold all but one member of a small group, 10% of a large one, and all but
                # 5 new repairs per 10 minutes) are off.
                env.update({"AUTOHEAL_QUORUM_GUARD": "off", "AUTOHEAL_MAX_INFLIGHT_PERCENT": "off",
                            "AUTOHEAL_ACCOUNT_MAX_REPAIRS": "off", "AUTOHEAL_BREAKER_WINDOW_SECONDS": "off",
                            "AUTOHEAL_SYSTEM_LADDER": "relaunch"})
                return env

            rust = [str(binary)]
            python = [sys.executable, str(Path(__file__).resolve().parent / "baseline_handler.py")]

            rig.log(f"cold start: {args.spawns} spawns ...")
            report["cold_start"] = cold_starts(r, rust, env_for, cold_ids, template, times,
                                               args.timeout, budget, "autoheal")
            rig.log(f"warm: {args.alarms} alarms through one process ...")
            report["warm"] = warm_run(r, rust, env_for, warm_ids, template, times,
                                      args.timeout, budget, "autoheal", profile_ids, slack)
            health = world.health("bench-warm")
            report["warm"]["unhealthy_after"] = sum(1 for h in health.values() if h == "Unhealthy")

            rig.log(f"baseline: minimal Python/boto3 handler, {args.alarms} alarms ...")
            report["baseline"] = warm_run(r, python, env_for, base_ids, template, times,
                                          args.timeout, budget, "baseline", base_profile_ids, slack)
            health = world.health("bench-baseline")
            report["baseline"]["unhealthy_after"] = sum(1 for h in health.values() if h == "Unhealthy")
            report["baseline"]["cold_start"] = cold_starts(r, python, env_for, base_cold_ids, template,
                                                           times, args.timeout, budget, "baseline")
        status = 0
    except MeasurementFailed as e:
        report["failure"] = str(e)
        rig.log(f"\nMEASUREMENT FAILED: {e}")
    except (KeyboardInterrupt, SystemExit) as e:
        report["failure"] = f"interrupted ({type(e).__name__} {getattr(e, 'code', '')})".strip()
        rig.log(f"\nMEASUREMENT FAILED: {report['failure']}")
    except Exception as e:  # noqa: BLE001 - still write the JSON and exit 2
        traceback.print_exc()
        report["failure"] = f"{type(e).__name__}: {e}"
        rig.log(f"\nMEASUREMENT FAILED: {report['failure']}")
    finally:
        out.parent.mkdir(parents=True, exist_ok=True)

    if status == 0:
        cold, warm, base = report["cold_start"], report["warm"], report["baseline"]
        checks = [
            ("binary size", report["binary_mb"], "MB", "<=", TARGETS["binary_mb"]),
            ("cold start to first poll (median)", cold["first_poll_median_ms"], "ms", "<=",
             TARGETS["cold_start_first_poll_ms"]),
            ("peak RSS after warm run (VmHWM)", warm["peak_rss_mb"], "MB", "<=", TARGETS["peak_rss_mb"]),
            ("warm median vs baseline median", warm["median_ms"], "ms", "<=", base["median_ms"]),
        ]
        report["targets"] = [
            {"name": n, "value": v, "unit": u, "limit": lim, "pass": v <= lim} for n, v, u, _, lim in checks
        ]
        print_table(report)
        status = 0 if all(t["pass"] for t in report["targets"]) else 1
    report["status"] = {0: "pass", 1: "target failed", 2: "measurement failed"}[status]
    out.write_text(json.dumps(report, indent=2) + "\n")
    rig.log(f"\nJSON: {out}")
    return status


def print_table(rep: dict) -> None:
    cold, warm, base = rep["cold_start"], rep["warm"], rep["baseline"]
    rows = [
        ("binary size", f"{rep['size_bytes']:,} B = {rep['binary_mb']:.2f} MB"),
        (f"cold start -> first poll (median of {cold['spawns']})",
         f"{cold['first_poll_median_ms']:.1f} ms  (all: {fmt_list(cold['first_poll_ms'])})"),
        (f"cold start -> first answer (median of {cold['spawns']})",
         f"{cold['first_answer_median_ms']:.1f} ms  (all: {fmt_list(cold['first_answer_ms'])})"),
        ("cold start outcomes", fmt_counts(cold["results"])),
        (f"warm latency, {warm['alarms']} alarms: median / p99 / max",
         f"{warm['median_ms']:.2f} / {warm['p99_ms']:.2f} / {warm['max_ms']:.2f} ms (first {warm['first_ms']:.1f} ms)"),
        ("warm outcomes", fmt_counts(warm["results"])),
        ("instances Unhealthy after warm run", f"{warm['unhealthy_after']} of {warm['alarms']}"),
        ("Slack messages during warm run", str(warm["slack_messages"])),
        ("peak RSS (VmHWM) after warm run", f"{warm['peak_rss_mb']:.2f} MB (RSS now {warm['rss_after_mb']:.2f} MB)"),
        (f"baseline (Python/boto3) warm: median / p99",
         f"{base['median_ms']:.2f} / {base['p99_ms']:.2f} ms  ({fmt_counts(base['results'])}; "
         f"{base['unhealthy_after']} Unhealthy)"),
        ("AWS calls per alarm (autoheal)",
         f"{warm['aws_calls_per_alarm']:g}: " + ", ".join(
             f"{op}{'' if n == 1 else f' x{n:g}'}" for op, n in warm["aws_calls_per_alarm_by_operation"].items())),
        ("AWS calls per alarm (baseline)",
         f"{base['aws_calls_per_alarm']:g}: " + ", ".join(base["aws_calls_per_alarm_by_operation"])),
        ("baseline cold start -> first poll / peak RSS",
         f"{base['cold_start']['first_poll_median_ms']:.0f} ms / {base['peak_rss_mb']:.1f} MB"),
    ]
    width = max(len(k) for k, _ in rows)
    rig.log()
    for k, v in rows:
        rig.log(f"  {k:<{width}}  {v}")
    if warm.get("error_samples"):
        rig.log("  error samples: " + " | ".join(warm["error_samples"]))
    rig.log()
    rig.log("  targets:")
    for t in rep["targets"]:
        rig.log(f"    {'PASS' if t['pass'] else 'FAIL'}  {t['name']}: {t['value']:.2f} {t['unit']} "
                f"<= {t['limit']:.2f} {t['unit']}")


def fmt_list(xs: list[float]) -> str:
    return ", ".join(f"{x:.1f}" for x in xs)


def fmt_counts(c: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(c.items())) or "(none)"


if __name__ == "__main__":
    sys.exit(main())
