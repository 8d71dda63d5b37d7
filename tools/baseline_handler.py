#!/usr/bin/env python3
"""The bench baseline: the naive Python/boto3 auto-healing Lambda (the 2015 blog's job).

For the first SNS record of the event it decrypts the Slack webhook with KMS (on every
call, as such handlers do), calls Auto Scaling SetInstanceHealth(Unhealthy) for the
alarm's instance, then posts one message to Slack; nothing else: no ledger, no look at
the instance, no confirmation, no guard. It runs as a custom runtime against the same
Runtime API as the Rust binary, so tools/bench.py times both the same way (event queued
-> response posted). The boto3 clients are created once, at init, as a warm Lambda would
keep them; the Slack post opens a new connection each time (urllib).
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import urllib.request

import boto3

API = os.environ["AWS_LAMBDA_RUNTIME_API"]
PREFIX = "/2018-06-01/runtime"
WEBHOOK_ENCRYPTED = os.environ.get("SLACK_WEBHOOK_ENCRYPTED")
FUNCTION_NAME = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")

# Warm clients; boto3 honours AWS_ENDPOINT_URL and the AWS_* credentials from the environment.
autoscaling = boto3.client("autoscaling")
kms = boto3.client("kms")


def handler(event: dict) -> dict:
    record = event["Records"][0]
    alarm = json.loads(record["Sns"]["Message"])
    dims = alarm["Trigger"]["Dimensions"]
    instance_id = next(d["value"] for d in dims if d["name"] == "InstanceId")
    webhook = None
    if WEBHOOK_ENCRYPTED:
        # The Lambda console's "encryption helper" snippet: decrypt on every call.
        webhook = kms.decrypt(
            CiphertextBlob=base64.b64decode(WEBHOOK_ENCRYPTED),
            EncryptionContext={"LambdaFunctionName": FUNCTION_NAME},
        )["Plaintext"].decode()
    autoscaling.set_instance_health(
        InstanceId=instance_id, HealthStatus="Unhealthy", ShouldRespectGracePeriod=False)
    notification = "none"
    if webhook:
        text = f"Marked {instance_id} Unhealthy ({alarm.get('AlarmName', 'alarm')})"
        req = urllib.request.Request(webhook, data=json.dumps({"text": text}).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(req, timeout=10) as resp:
            resp.read()
        notification = "slack"
    return {"outcomes": [{"instance_id": instance_id, "action": "mark_unhealthy",
                          "result": "done", "reason": "baseline", "notification": notification}]}


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
