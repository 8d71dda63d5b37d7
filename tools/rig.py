"""Local rig for autoheal: a moto AWS world, a Slack receiver and a Lambda Runtime API.

Shared by tools/demo.py (`make demo`) and tools/bench.py (`make bench`). Everything
listens on 127.0.0.1 on ports picked by binding port 0, and everything this module
starts is stopped by `Rig.close()` (use `with Rig() as rig:`), also on error or signal.

Only the standard library, boto3 and moto (for `moto_server`) are used.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import datetime as _dt
import http.server
import importlib.util
import json
import os
import queue
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import boto3
from botocore.config import Config

REGION = "us-east-1"
ACCOUNT = "123456789012"
FUNCTION_NAME = "autoheal"
FUNCTION_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{FUNCTION_NAME}"
ROOT = Path(__file__).resolve().parent.parent
EVENTS_DIR = ROOT / "events"

# Instance ids named by the sample events; the rig swaps them for real moto ids.
FIXTURE_INSTANCE_A = "i-0123456789abcdef0"
FIXTURE_INSTANCE_B = "i-0fedcba9876543210"

RUNTIME_PREFIX = "/2018-06-01/runtime"


# --------------------------------------------------------------------------- basics

def free_port() -> int:
    """A loopback port that was free a moment ago (bind to port 0, read, release)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def log(msg: str = "") -> None:
    print(msg, flush=True)


try:  # loaded here, not in the forked child, where dlopen could deadlock
    _LIBC = ctypes.CDLL("libc.so.6", use_errno=True)
except OSError:
    _LIBC = None


def _die_with_parent() -> None:
    """preexec_fn: have the kernel SIGTERM the child if the rig dies (even by SIGKILL)."""
    if _LIBC is not None:
        _LIBC.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def stop_process(proc: subprocess.Popen | None, timeout: float = 5.0) -> None:
    """SIGTERM, wait, then SIGKILL; only the given process (never by name)."""
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=timeout)


def install_signal_handlers() -> None:
    """Turn SIGTERM/SIGHUP into SystemExit so `finally` blocks run and children stop."""

    def _raise(signum, _frame):
        raise SystemExit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise)


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    if not values:
        return float("nan")
    s = sorted(values)
    k = max(0, min(len(s) - 1, -(-len(s) * p // 100) - 1))  # ceil(n*p/100) - 1
    return s[int(k)]


def median(values: list[float]) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def vm_status(pid: int) -> dict[str, int]:
    """VmRSS/VmHWM/... from /proc/<pid>/status, in kB."""
    out: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("Vm"):
                    key, _, rest = line.partition(":")
                    parts = rest.split()
                    if parts and parts[0].isdigit():
                        out[key] = int(parts[0])
    except OSError:
        pass
    return out


class QuietServer(http.server.ThreadingHTTPServer):
    """Threaded HTTP server that does not print a traceback when a client hangs up."""

    daemon_threads = True

    def handle_error(self, request, client_address):
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


# --------------------------------------------------------------------------- moto

class MotoServer:
    """`tools/moto_server.py -H 127.0.0.1 -p PORT` as a child process; logs to a file.

    The project's wrapper, not plain `moto_server`: it fills moto's gap for snapshot
    `TagSpecifications` in CreateImage (plain moto raises NotImplementedError there,
    and autoheal's standalone relaunch and backups use them). Same as `make test`.
    """

    WRAPPER = ROOT / "tools" / "moto_server.py"

    def __init__(self, workdir: Path, port: int | None = None):
        self.port = port or free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / "moto.log"
        self.proc: subprocess.Popen | None = None

    @classmethod
    def command(cls) -> list[str]:
        """argv up to (not including) the server's own arguments: this Python + the wrapper."""
        if importlib.util.find_spec("moto") is None or importlib.util.find_spec("moto.server") is None:
            raise RuntimeError(
                f"moto is not installed for {sys.executable}: install tools/requirements.txt into "
                "the venv (python3 -m venv .venv && .venv/bin/pip install -r tools/requirements.txt) "
                "and run this with .venv/bin/python"
            )
        if not cls.WRAPPER.is_file():
            raise RuntimeError(f"moto wrapper not found: {cls.WRAPPER}")
        return [sys.executable, str(cls.WRAPPER)]

    def start(self, timeout: float = 30.0) -> None:
        logf = open(self.log_path, "wb")
        env = dict(os.environ, MOTO_RECORDER_FILEPATH=str(self.recording_path))
        env.pop("MOTO_ENABLE_RECORDING", None)  # recording only on request: it slows every call
        self.proc = subprocess.Popen(
            [*self.command(), "-H", "127.0.0.1", "-p", str(self.port)],
            stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT, env=env,
            preexec_fn=_die_with_parent,
        )
        logf.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = self.log_path.read_text("utf-8", "replace").splitlines()[-5:]
                raise RuntimeError(f"moto server ({self.WRAPPER.name}) exited with {self.proc.returncode}; "
                                   f"see {self.log_path}" + "".join("\n  " + t for t in tail))
            try:
                with urllib.request.urlopen(self.endpoint + "/moto-api/", timeout=1) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.05)
        raise RuntimeError(f"moto server ({self.WRAPPER.name}) did not answer within {timeout:.0f} s; "
                           f"see {self.log_path}")

    def stop(self) -> None:
        stop_process(self.proc)

    def _moto_api(self, path: str) -> bytes:
        req = urllib.request.Request(self.endpoint + path, method="POST", data=b"")
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.read()

    def reset(self) -> None:
        """Forget the whole world (moto's state and the control API's overrides): build a
        new `World` on it afterwards."""
        self._moto_api("/moto-api/reset")

    @contextlib.contextmanager
    def recording(self):
        """Record the AWS calls made inside the block; yields a list filled at exit
        with one `service:Operation` string per call (see `aws_operation`)."""
        calls: list[str] = []
        self._moto_api("/moto-api/recorder/reset-recording")
        self._moto_api("/moto-api/recorder/start-recording")
        try:
            yield calls
        finally:
            self._moto_api("/moto-api/recorder/stop-recording")
            try:
                lines = self.recording_path.read_text().splitlines()
            except OSError:
                lines = []
            for line in lines:
                with contextlib.suppress(ValueError):
                    calls.append(aws_operation(json.loads(line)))

    @property
    def recording_path(self) -> Path:
        return self.log_path.with_name("moto-recording.jsonl")


def aws_operation(entry: dict) -> str:
    """`service:Operation` of one moto recorder entry (JSON and query protocols)."""
    headers = {k.lower(): v for k, v in (entry.get("headers") or {}).items()}
    m = re.search(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/", headers.get("authorization", ""))
    service = m.group(1) if m else "?"
    target = headers.get("x-amz-target")
    if target:
        return f"{service}:{target.rsplit('.', 1)[-1]}"
    body = entry.get("body") or ""
    if entry.get("body_encoded"):
        body = base64.b64decode(body).decode("utf-8", "replace")
    action = urllib.parse.parse_qs(body).get("Action", ["?"])[0]
    if action == "?":
        action = f"{entry.get('method', '?')} {urllib.parse.urlparse(entry.get('url', '')).path}"
    return f"{service}:{action}"


def client(service: str, endpoint: str):
    return boto3.client(
        service,
        region_name=REGION,
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 3, "mode": "standard"},
                      connect_timeout=5, read_timeout=30),
    )


class World:
    """The AWS side of the rig, built with boto3 against moto."""

    def __init__(self, endpoint: str):
        self.endpoint = endpoint
        self.ec2 = client("ec2", endpoint)
        self.asg = client("autoscaling", endpoint)
        self.kms = client("kms", endpoint)
        self.ddb = client("dynamodb", endpoint)
        self.cloudwatch = client("cloudwatch", endpoint)
        self.vpc_id: str | None = None
        self.subnet_id: str | None = None
        self.ami: str | None = None
        self.template_id: str | None = None
        self.table: str | None = None
        self.key_id: str | None = None

    def control(self, what: str, **body) -> None:
        """The emulator's control API (tools/moto_server.py): make the world fail as AWS does,
        e.g. control("status", instance_id=i, system="impaired", instance="ok")."""
        import urllib.request
        req = urllib.request.Request(f"{self.endpoint}/_autoheal/{what}", data=json.dumps(body).encode(),
                                     headers={"content-type": "application/json"}, method="POST")
        with urllib.request.urlopen(req, timeout=10) as resp:
            resp.read()

    def scheduled_event(self, instance_id: str, code: str, not_before: _dt.datetime,
                        not_after: _dt.datetime) -> None:
        """EC2 announces an event on the instance (the emulator's `scheduled-event`): listed in
        `DescribeInstanceStatus` until the instance is stopped and started, or `not_after`."""
        iso = "%Y-%m-%dT%H:%M:%SZ"
        self.control("scheduled-event", instance_id=instance_id, code=code,
                     not_before=not_before.strftime(iso), not_after=not_after.strftime(iso))

    def scheduled_events(self, instance_id: str) -> list[dict]:
        """The events `DescribeInstanceStatus` lists for the instance."""
        out = self.ec2.describe_instance_status(InstanceIds=[instance_id], IncludeAllInstances=True)
        return [e for s in out["InstanceStatuses"] for e in s.get("Events") or []]

    def status_alarm(self, instance_id: str, topic_arn: str) -> str:
        """The alarm `autoheal-admin alarms sync` makes for an instance (its name, settings)."""
        name = f"autoheal-StatusCheckFailed-{instance_id}"
        self.cloudwatch.put_metric_alarm(
            AlarmName=name, Namespace="AWS/EC2", MetricName="StatusCheckFailed",
            Statistic="Maximum", Dimensions=[{"Name": "InstanceId", "Value": instance_id}],
            Period=60, EvaluationPeriods=2, DatapointsToAlarm=2, Threshold=1.0,
            ComparisonOperator="GreaterThanOrEqualToThreshold", TreatMissingData="missing",
            AlarmActions=[topic_arn], OKActions=[topic_arn])
        return name

    def status_alarms(self) -> dict[str, str]:
        """Alarm name -> the instance it watches, for the alarms named as autoheal's."""
        pages = self.cloudwatch.get_paginator("describe_alarms").paginate(
            AlarmNamePrefix="autoheal-StatusCheckFailed-")
        return {a["AlarmName"]: next((d["Value"] for d in a["Dimensions"] if d["Name"] == "InstanceId"), "")
                for page in pages for a in page["MetricAlarms"]}

    def impair(self, instance_id: str, system: str | None = "impaired", instance: str | None = "impaired") -> None:
        """What EC2 reports of the instance's status checks from now on."""
        self.control("status", instance_id=instance_id, system=system, instance=instance)

    def network(self) -> None:
        vpc = self.vpc_id = self.ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
        self.subnet_id = self.ec2.create_subnet(
            VpcId=vpc, CidrBlock="10.42.0.0/18", AvailabilityZone=f"{REGION}a"
        )["Subnet"]["SubnetId"]
        images = self.ec2.describe_images()["Images"]
        if not images:
            raise RuntimeError("moto offers no AMI")
        # Prefer a plain HVM/EBS image so nothing downstream trips on odd mappings.
        images.sort(key=lambda i: (i.get("VirtualizationType") != "hvm",
                                   i.get("RootDeviceType") != "ebs", i["ImageId"]))
        ami = self.ami = images[0]["ImageId"]
        self.template_id = self.ec2.create_launch_template(
            LaunchTemplateName="autoheal-rig",
            LaunchTemplateData={"ImageId": ami, "InstanceType": "t3.micro"},
        )["LaunchTemplate"]["LaunchTemplateId"]

    def group(self, name: str, size: int, tags: dict[str, str] | None = None) -> list[str]:
        """An Auto Scaling group of `size` InService instances; returns their ids."""
        if self.template_id is None:
            self.network()
        kwargs = {}
        if tags:
            kwargs["Tags"] = [
                {"Key": k, "Value": v, "PropagateAtLaunch": True,
                 "ResourceId": name, "ResourceType": "auto-scaling-group"}
                for k, v in tags.items()
            ]
        self.asg.create_auto_scaling_group(
            AutoScalingGroupName=name,
            LaunchTemplate={"LaunchTemplateId": self.template_id, "Version": "$Latest"},
            MinSize=0, MaxSize=size, DesiredCapacity=size,
            VPCZoneIdentifier=self.subnet_id,
            HealthCheckType="EC2", HealthCheckGracePeriod=0,
            **kwargs,
        )
        groups = self.asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])
        ids = [i["InstanceId"] for i in groups["AutoScalingGroups"][0]["Instances"]]
        if len(ids) != size:
            raise RuntimeError(f"group {name}: expected {size} instances, moto made {len(ids)}")
        return ids

    def standalone(self, name: str, user_data: str = "#!/bin/sh\necho hello from {name}\n",
                   instance_type: str = "t3.small") -> dict[str, object]:
        """One instance in no Auto Scaling group, as an operator would run a database: in the
        rig's subnet, two security groups, a key pair, user data, IMDSv2 required, tag Name,
        and an Elastic IP. Returns {"id", "groups", "key", "public_ip", "allocation_id"}."""
        if self.template_id is None:
            self.network()
        suffix = uuid.uuid4().hex[:6]
        groups = [
            self.ec2.create_security_group(
                GroupName=f"{name}-{role}-{suffix}", Description=f"{name} {role}", VpcId=self.vpc_id,
            )["GroupId"]
            for role in ("app", "monitoring")
        ]
        key = f"{name}-key-{suffix}"
        self.ec2.create_key_pair(KeyName=key)
        iid = self.ec2.run_instances(
            ImageId=self.ami, InstanceType=instance_type, MinCount=1, MaxCount=1,
            SubnetId=self.subnet_id, SecurityGroupIds=groups, KeyName=key,
            UserData=user_data.format(name=name),
            MetadataOptions={"HttpTokens": "required", "HttpEndpoint": "enabled"},
            TagSpecifications=[{"ResourceType": "instance",
                                "Tags": [{"Key": "Name", "Value": name}]}],
        )["Instances"][0]["InstanceId"]
        eip = self.ec2.allocate_address(Domain="vpc")
        self.ec2.associate_address(AllocationId=eip["AllocationId"], InstanceId=iid)
        return {"id": iid, "groups": groups, "key": key,
                "public_ip": eip["PublicIp"], "allocation_id": eip["AllocationId"]}

    def instance(self, instance_id: str) -> dict | None:
        """DescribeInstances of one id, or None if EC2 does not know it."""
        try:
            res = self.ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
        except self.ec2.exceptions.ClientError:
            return None
        return next((i for r in res for i in r["Instances"]), None)

    def instances_tagged(self, key: str, value: str) -> list[dict]:
        """Every instance carrying tag key=value (any state)."""
        out: list[dict] = []
        for page in self.ec2.get_paginator("describe_instances").paginate(
                Filters=[{"Name": f"tag:{key}", "Values": [value]}]):
            out.extend(i for r in page["Reservations"] for i in r["Instances"])
        return out

    def own_images_tagged(self, key: str, value: str) -> list[dict]:
        """Images owned by this account carrying tag key=value."""
        return self.ec2.describe_images(
            Owners=["self"], Filters=[{"Name": f"tag:{key}", "Values": [value]}])["Images"]

    def addresses(self) -> list[dict]:
        return self.ec2.describe_addresses()["Addresses"]

    def health(self, group: str) -> dict[str, str]:
        """instance id -> HealthStatus as Auto Scaling reports it, for one group."""
        out: dict[str, str] = {}
        pages = self.asg.get_paginator("describe_auto_scaling_instances").paginate(
            PaginationConfig={"MaxItems": 10000, "PageSize": 50})
        for page in pages:
            for inst in page["AutoScalingInstances"]:
                if inst["AutoScalingGroupName"] == group:
                    out[inst["InstanceId"]] = inst["HealthStatus"]
        return out

    def ledger_table(self, name: str = "autoheal-ledger") -> str:
        self.ddb.create_table(
            TableName=name,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                       {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                  {"AttributeName": "sk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        self.ddb.get_waiter("table_exists").wait(
            TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
        self.ddb.update_time_to_live(
            TableName=name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"},
        )
        self.table = name
        return name

    def ledger_items(self) -> list[dict]:
        items: list[dict] = []
        if not self.table:
            return items
        for page in self.ddb.get_paginator("scan").paginate(
                TableName=self.table, PaginationConfig={"MaxItems": 100000}):
            items.extend(page["Items"])
        return items

    def encrypt_webhook(self, url: str) -> str:
        """base64 KMS ciphertext of `url`, as the Lambda console's encryption helper makes it."""
        if self.key_id is None:
            self.key_id = self.kms.create_key(Description="autoheal rig")["KeyMetadata"]["KeyId"]
        blob = self.kms.encrypt(
            KeyId=self.key_id, Plaintext=url.encode(),
            EncryptionContext={"LambdaFunctionName": FUNCTION_NAME},
        )["CiphertextBlob"]
        return base64.b64encode(blob).decode()


# --------------------------------------------------------------------------- Slack

class SlackReceiver:
    """A webhook endpoint that records every POSTed JSON body (and optionally prints `text`)."""

    def __init__(self, on_message=None):
        self.messages: list[dict] = []
        self.lock = threading.Lock()
        self.on_message = on_message
        rx = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Small header and body writes must not wait on delayed ACKs (~40 ms each).
            disable_nagle_algorithm = True
            wbufsize = -1  # buffered: one send per answer; flushed after each request

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n) if n else b""
                try:
                    body = json.loads(raw or b"null")
                except ValueError:
                    body = {"_raw": raw.decode("utf-8", "replace")}
                msg = {"path": self.path, "body": body, "at": time.time()}
                with rx.lock:
                    rx.messages.append(msg)
                if rx.on_message:
                    with contextlib.suppress(Exception):
                        rx.on_message(msg)
                self._answer(200, b"ok")

            def do_GET(self):
                self._answer(404, b"no")

            def _answer(self, code, payload):
                self.send_response(code)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = QuietServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/services/T000/B000/XXXX"
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.1}, daemon=True)
        self.thread.start()

    def texts(self) -> list[str]:
        with self.lock:
            return [m["body"].get("text", json.dumps(m["body"])) if isinstance(m["body"], dict)
                    else json.dumps(m["body"]) for m in self.messages]

    def count(self) -> int:
        with self.lock:
            return len(self.messages)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# --------------------------------------------------------------------------- Runtime API

class Invocation:
    def __init__(self, request_id: str, event: bytes):
        self.request_id = request_id
        self.event = event
        self.queued_at = time.perf_counter()
        self.delivered_at: float | None = None
        self.answered_at: float | None = None
        self.kind: str | None = None     # "response" | "error"
        self.body: bytes = b""
        self.headers: dict[str, str] = {}
        self.done = threading.Event()


class RuntimeAPI:
    """The Lambda Runtime API (2018-06-01) on 127.0.0.1, as AWS serves it to a custom runtime.

    `invoke(event)` queues one event and blocks until the function posts its response
    or error. `first_poll_at` is the perf_counter time the first `next` poll arrived.
    """

    def __init__(self):
        self.pending: "queue.Queue[Invocation]" = queue.Queue()
        self.invocations: dict[str, Invocation] = {}
        self.lock = threading.Lock()
        self.closing = threading.Event()
        self.first_poll_at: float | None = None
        self.polls = 0
        self.init_error: dict | None = None
        self.init_error_at: float | None = None
        self.unexpected: list[str] = []
        api = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Small header and body writes must not wait on delayed ACKs (~40 ms each).
            disable_nagle_algorithm = True
            wbufsize = -1  # buffered: one send per answer; flushed after each request

            def do_GET(self):
                if self.path == RUNTIME_PREFIX + "/invocation/next":
                    api._on_next(self)
                else:
                    api.unexpected.append(f"GET {self.path}")
                    self._json(404, {"errorType": "NotFound", "errorMessage": self.path})

            def do_POST(self):
                arrived = time.perf_counter()
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                m = re.fullmatch(RUNTIME_PREFIX + r"/invocation/([^/]+)/(response|error)", self.path)
                if m:
                    ok = api._on_answer(m.group(1), m.group(2), body, dict(self.headers), arrived)
                    if ok:
                        self._json(202, {"status": "OK"})
                    else:
                        self._json(400, {"errorType": "InvalidRequestID",
                                         "errorMessage": f"unknown or finished request {m.group(1)}"})
                elif self.path == RUNTIME_PREFIX + "/init/error":
                    api._on_init_error(body, dict(self.headers), arrived)
                    self._json(202, {"status": "OK"})
                else:
                    api.unexpected.append(f"POST {self.path}")
                    self._json(404, {"errorType": "NotFound", "errorMessage": self.path})

            def _json(self, code, obj, headers=None):
                payload = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.Handler = Handler
        self.server = QuietServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.address = f"127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.1}, daemon=True)
        self.thread.start()

    # -- server side
    def _on_next(self, h) -> None:
        now = time.perf_counter()
        with self.lock:
            self.polls += 1
            if self.first_poll_at is None:
                self.first_poll_at = now
        inv = None
        while not self.closing.is_set():
            try:
                inv = self.pending.get(timeout=0.2)
            except queue.Empty:
                if _peer_gone(h.connection):  # a killed process must not take the next event
                    h.close_connection = True
                    return
                continue
            if _peer_gone(h.connection):
                self.pending.put(inv)
                h.close_connection = True
                return
            break
        if inv is None:
            # Shutting down: let the client see a clean error rather than a hang.
            h._json(503, {"errorType": "ServiceUnavailable", "errorMessage": "rig shutting down"})
            return
        inv.delivered_at = time.perf_counter()
        deadline_ms = int(time.time() * 1000) + 30_000
        payload = inv.event
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(payload)))
        h.send_header("Lambda-Runtime-Aws-Request-Id", inv.request_id)
        h.send_header("Lambda-Runtime-Deadline-Ms", str(deadline_ms))
        h.send_header("Lambda-Runtime-Invoked-Function-Arn", FUNCTION_ARN)
        h.send_header("Lambda-Runtime-Trace-Id",
                      f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Parent={uuid.uuid4().hex[:16]};Sampled=0")
        h.end_headers()
        h.wfile.write(payload)

    def _on_answer(self, request_id, kind, body, headers, arrived) -> bool:
        with self.lock:
            inv = self.invocations.get(request_id)
            if inv is None or inv.done.is_set():
                return False
            inv.kind, inv.body, inv.headers, inv.answered_at = kind, body, headers, arrived
        inv.done.set()
        return True

    def _on_init_error(self, body, headers, arrived) -> None:
        try:
            parsed = json.loads(body or b"{}")
        except ValueError:
            parsed = {"raw": body.decode("utf-8", "replace")}
        self.init_error = {"body": parsed,
                           "error_type": headers.get("Lambda-Runtime-Function-Error-Type")}
        self.init_error_at = arrived

    # -- rig side
    def reset(self) -> None:
        """Forget the first-poll mark and init error (before spawning a new process)."""
        with self.lock:
            self.first_poll_at = None
            self.polls = 0
            self.init_error = None
            self.init_error_at = None

    def queue(self, event: bytes) -> Invocation:
        inv = Invocation(str(uuid.uuid4()), event)
        with self.lock:
            self.invocations[inv.request_id] = inv
        self.pending.put(inv)
        return inv

    def wait(self, inv: Invocation, timeout: float = 35.0,
             proc: subprocess.Popen | None = None) -> tuple[str, bytes, float]:
        """Wait for `inv`'s answer. kind: response | error | init_error | exited | timeout."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if inv.done.wait(timeout=max(0.0, min(0.1, left))):
                return inv.kind or "?", inv.body, inv.answered_at - inv.queued_at
            if proc is not None and proc.poll() is not None:
                # Give a racing answer a moment, then report why it never came.
                if inv.done.wait(timeout=0.2):
                    return inv.kind or "?", inv.body, inv.answered_at - inv.queued_at
                self._withdraw(inv)
                if self.init_error is not None:
                    return "init_error", json.dumps(self.init_error).encode(), time.perf_counter() - inv.queued_at
                return ("exited", f"process exited with code {proc.returncode}".encode(),
                        time.perf_counter() - inv.queued_at)
            if left <= 0:
                self._withdraw(inv)
                return "timeout", f"no answer within {timeout:.0f} s".encode(), time.perf_counter() - inv.queued_at

    def _withdraw(self, inv: Invocation) -> None:
        """Drop an unanswered event from the queue so a later process does not receive it."""
        kept = []
        while True:
            try:
                other = self.pending.get_nowait()
            except queue.Empty:
                break
            if other is not inv:
                kept.append(other)
        for other in kept:
            self.pending.put(other)

    def invoke(self, event: bytes, timeout: float = 35.0,
               proc: subprocess.Popen | None = None) -> tuple[str, bytes, float]:
        """Queue one event and wait for its answer -> (kind, body, seconds)."""
        return self.wait(self.queue(event), timeout=timeout, proc=proc)

    def stop(self) -> None:
        if self.closing.is_set():
            return
        self.closing.set()
        self.server.shutdown()
        self.server.server_close()


def _peer_gone(sock: socket.socket) -> bool:
    """True when the client closed its end (readable with nothing to read)."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        return bool(readable) and sock.recv(1, socket.MSG_PEEK) == b""
    except (OSError, ValueError):
        return True


# --------------------------------------------------------------------------- the function

def lambda_env(runtime_address: str, endpoint: str, table: str,
               webhook_encrypted: str | None = None, dry_run: bool = False) -> dict[str, str]:
    """Environment for the function process: the caller's, minus AWS/autoheal settings, plus ours."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AWS_", "AUTOHEAL_", "SLACK_", "_HANDLER", "LAMBDA_"))}
    env.update({
        "AWS_LAMBDA_RUNTIME_API": runtime_address,
        "AWS_LAMBDA_FUNCTION_NAME": FUNCTION_NAME,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_FORMAT": "JSON",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AUTOHEAL_TABLE": table,
    })
    if webhook_encrypted:
        env["SLACK_WEBHOOK_ENCRYPTED"] = webhook_encrypted
    if dry_run:
        env["AUTOHEAL_DRY_RUN"] = "true"
    return env


class Function:
    """One process of the function binary, its stdout/stderr going to a log file."""

    def __init__(self, argv: list[str], env: dict[str, str], log_path: Path):
        self.argv, self.env, self.log_path = argv, env, log_path
        self.proc: subprocess.Popen | None = None
        self.spawned_at: float | None = None
        self._log_offset = 0

    def start(self) -> float:
        """Spawn; returns the perf_counter time taken just before Popen."""
        logf = open(self.log_path, "ab")
        # No preexec_fn here: it would force fork+exec and add to the measured cold start.
        # If the rig dies, the process loses its Runtime API connection and exits.
        self.spawned_at = time.perf_counter()
        self.proc = subprocess.Popen(self.argv, env=self.env, stdin=subprocess.DEVNULL,
                                     stdout=logf, stderr=subprocess.STDOUT)
        logf.close()
        return self.spawned_at

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        stop_process(self.proc, timeout=3.0)

    def new_log_lines(self) -> list[str]:
        """Log lines written since the last call."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(self._log_offset)
                data = f.read()
        except OSError:
            return []
        # Keep an unfinished last line for next time.
        cut = data.rfind(b"\n") + 1
        self._log_offset += cut
        return data[:cut].decode("utf-8", "replace").splitlines()

    def log_tail(self, n: int = 40) -> list[str]:
        try:
            return self.log_path.read_text("utf-8", "replace").splitlines()[-n:]
        except OSError:
            return []


def log_level(line: str) -> str | None:
    """The level of a JSON log line (tracing's or the Lambda platform's shape), else None."""
    try:
        doc = json.loads(line)
    except ValueError:
        return None
    if not isinstance(doc, dict):
        return None
    level = doc.get("level") or doc.get("log_level") or doc.get("severity")
    return str(level).upper() if level else None


def format_log_line(line: str, width: int = 240) -> str:
    """A JSON log line shortened to `level message key=value ...` for people."""
    try:
        doc = json.loads(line)
    except ValueError:
        return line[:width]
    if not isinstance(doc, dict):
        return line[:width]
    fields = dict(doc.get("fields") or {})
    msg = fields.pop("message", None) or doc.get("message") or doc.get("msg") or ""
    rest = {k: v for k, v in doc.items()
            if k not in ("fields", "message", "msg", "level", "timestamp", "target", "span", "spans",
                         "threadId", "threadName", "filename", "line_number")}
    rest.update(fields)
    kv = " ".join(f"{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in rest.items())
    out = f"{log_level(line) or ''} {msg} {kv}".strip()
    return out if len(out) <= width else out[: width - 3] + "..."


def check_binary(path: str) -> Path:
    p = Path(path)
    if not p.is_absolute():
        p = (Path.cwd() / p).resolve()
    if not p.is_file() or not os.access(p, os.X_OK):
        raise SystemExit(f"binary not found or not executable: {p} (build it first: cargo build)")
    return p


# --------------------------------------------------------------------------- events

class FreshTimes:
    """Strictly increasing alarm state-change times near now, in CloudWatch's format."""

    def __init__(self):
        self.last = None
        self.lock = threading.Lock()

    def next(self, ahead_ms: int = 0) -> str:
        with self.lock:
            t = _dt.datetime.now(_dt.timezone.utc) + _dt.timedelta(milliseconds=ahead_ms)
            t = t.replace(microsecond=(t.microsecond // 1000) * 1000)
            if self.last is not None and t <= self.last:
                t = self.last + _dt.timedelta(milliseconds=1)
            self.last = t
            return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}+0000"


def load_event(name: str, events_dir: Path = EVENTS_DIR) -> str:
    return (events_dir / name).read_text()


def prepare_event(raw: str, ids: dict[str, str] | None = None,
                  state_time: str | None = None) -> bytes:
    """Swap fixture instance ids for real ones and (optionally) set a new state-change time.

    The time goes where each shape keeps it: SNS `Message.StateChangeTime` (inside the JSON
    string), EventBridge `detail.state.timestamp` + `time`, alarm action
    `alarmData.state.timestamp` + `time`.
    """
    for old, new in (ids or {}).items():
        raw = raw.replace(old, new)
    if state_time is None:
        return raw.encode()
    ev = json.loads(raw)
    iso_z = state_time[:19] + "Z"
    if isinstance(ev, dict) and isinstance(ev.get("Records"), list):
        for rec in ev["Records"]:
            sns = rec.get("Sns") if isinstance(rec, dict) else None
            if not isinstance(sns, dict) or not isinstance(sns.get("Message"), str):
                continue
            try:
                msg = json.loads(sns["Message"])
            except ValueError:
                continue
            if isinstance(msg, dict) and "StateChangeTime" in msg:
                msg["StateChangeTime"] = state_time
                sns["Message"] = json.dumps(msg)
                sns["Timestamp"] = state_time[:23] + "Z"
    elif isinstance(ev, dict):
        for holder in ("detail", "alarmData"):
            st = ev.get(holder, {}).get("state") if isinstance(ev.get(holder), dict) else None
            if isinstance(st, dict):
                st["timestamp"] = state_time
                if "time" in ev:
                    ev["time"] = iso_z if holder == "detail" else state_time
    return json.dumps(ev).encode()


def parse_outcomes(body: bytes) -> tuple[list[dict] | None, str | None]:
    """(outcomes, None) or (None, why) for a response body."""
    try:
        doc = json.loads(body or b"null")
    except ValueError as e:
        return None, f"response is not JSON ({e}): {body[:200]!r}"
    if not isinstance(doc, dict) or not isinstance(doc.get("outcomes"), list):
        return None, f"response has no outcomes list: {json.dumps(doc)[:300]}"
    return [o if isinstance(o, dict) else {"_": o} for o in doc["outcomes"]], None


def format_outcome(o: dict, labels: dict[str, str] | None = None) -> str:
    """One compact line: instance  action -> result  (reason)  incident=..  extra=.."""
    labels = labels or {}
    iid = o.get("instance_id")
    who = "-" if iid is None else (f"{iid} ({labels[iid]})" if iid in labels else str(iid))
    parts = [f"{who:<24}", f"{o.get('action', '?')} -> {o.get('result', '?')}"]
    if o.get("reason"):
        parts.append(f"reason: {o['reason']}")
    if o.get("incident"):
        parts.append(f"incident: {o['incident']}")
    extra = {k: v for k, v in o.items()
             if k not in ("instance_id", "action", "result", "reason", "incident")}
    if extra:
        parts.append(" ".join(f"{k}={json.dumps(v, separators=(',', ':'))}" for k, v in extra.items()))
    return "  ".join(parts)


# --------------------------------------------------------------------------- the whole rig

class Rig(contextlib.ExitStack):
    """Owns every process, server and temp dir the rig starts; closing stops them all."""

    def __init__(self, keep_dir: bool = False):
        super().__init__()
        self.workdir = Path(tempfile.mkdtemp(prefix="autoheal-rig-"))
        if not keep_dir:
            self.callback(shutil.rmtree, self.workdir, ignore_errors=True)
        self.moto: MotoServer | None = None
        self.world: World | None = None
        self.slack: SlackReceiver | None = None
        self.runtime: RuntimeAPI | None = None

    def start_moto(self) -> World:
        self.moto = MotoServer(self.workdir)
        self.callback(self.moto.stop)
        self.moto.start()
        self.world = World(self.moto.endpoint)
        return self.world

    def start_slack(self, on_message=None) -> SlackReceiver:
        self.slack = SlackReceiver(on_message)
        self.callback(self.slack.stop)
        return self.slack

    def start_runtime(self) -> RuntimeAPI:
        rt = RuntimeAPI()
        self.callback(rt.stop)
        self.runtime = rt
        return rt

    def function(self, command: Path | str | list[str], env: dict[str, str],
                 name: str = "autoheal") -> Function:
        argv = [str(a) for a in command] if isinstance(command, list) else [str(command)]
        fn = Function(argv, env, self.workdir / f"{name}.log")
        self.callback(fn.stop)
        return fn
