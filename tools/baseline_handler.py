#!/usr/bin/env python3
"""The bench baseline: the minimal Python/boto3 auto-healing Lambda (the 2015 blog's job).

For each SNS alarm record it calls Auto Scaling SetInstanceHealth(Unhealthy) for the
alarm's instance, and nothing else: no ledger, no observation, no notification. It runs
as a custom runtime against the same Runtime API as the Rust binary, so tools/bench.py
times both the same way (event queued -> response posted). The boto3 client is created
once, at init, as a warm Lambda would keep it.
"""

from __future__ import annotations

import http.client
import json
import os

import boto3

API = os.environ["AWS_LAMBDA_RUNTIME_API"]
PREFIX = "/2018-06-01/runtime"

# Warm client; boto3 honours AWS_ENDPOINT_URL and the AWS_* credentials from the environment.
autoscaling = boto3.client("autoscaling")


def handler(event: dict) -> dict:
    outcomes = []
    for record in event.get("Records", []):
        alarm = json.loads(record["Sns"]["Message"])
        dims = alarm["Trigger"]["Dimensions"]
        instance_id = next(d["value"] for d in dims if d["name"] == "InstanceId")
        autoscaling.set_instance_health(
            InstanceId=instance_id, HealthStatus="Unhealthy", ShouldRespectGracePeriod=False)
        outcomes.append({"instance_id": instance_id, "action": "mark_unhealthy",
                         "result": "done", "reason": "baseline"})
    return {"outcomes": outcomes}


def main() -> None:
    host, _, port = API.partition(":")
    conn = http.client.HTTPConnection(host, int(port))
    while True:
        conn.request("GET", PREFIX + "/invocation/next")
        resp = conn.getresponse()
        body = resp.read()
        if resp.status != 200:
            return  # the rig is shutting down
        request_id = resp.getheader("Lambda-Runtime-Aws-Request-Id")
        try:
            result, kind = json.dumps(handler(json.loads(body))).encode(), "response"
        except Exception as e:  # report, as the managed runtime would
            result, kind = json.dumps({"errorType": type(e).__name__, "errorMessage": str(e)}).encode(), "error"
        conn.request("POST", f"{PREFIX}/invocation/{request_id}/{kind}", body=result,
                     headers={"Content-Type": "application/json"})
        conn.getresponse().read()


if __name__ == "__main__":
    main()
