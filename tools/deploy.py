"""Deploys template.yaml the way `sam deploy` does, to the AWS that AWS_ENDPOINT_URL names
(the emulator in tests/deploy.rs), and reads back the deployed world as JSON.

  up     --stack S [--binary PATH] [--param Key=Value ...]   package, transform, create or update
  world  --stack S                                           the deployed resources, read back
  match  --stack S                                           each events/*.json against each rule
  down   --stack S                                           delete the stack

`up` is what `sam deploy` does: zip the bootstrap, put it in an artifacts bucket, turn the
SAM template into CloudFormation with the SAM translator (AWS runs the same transform
server-side for `Transform: AWS::Serverless-2016-10-31`), then create the stack, or update
it when it exists, and wait. Every command prints one JSON object. The region is
AWS_REGION; credentials are the environment's. Python 3.11 with boto3 and
aws-sam-translator (tools/requirements.txt).
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import io
import json
import os
import sys
import time
import zipfile
from pathlib import Path

import boto3
from botocore.exceptions import ClientError

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"
EVENTS = ROOT / "events"


def client(service: str):
    return boto3.client(service, region_name=os.environ["AWS_REGION"])


def account() -> str:
    return client("sts").get_caller_identity()["Account"]


# ------------------------------------------------------------------------------- up


def package(binary: Path | None) -> str:
    """Zips the bootstrap into the artifacts bucket; returns its s3:// URI (CodeUri)."""
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w", zipfile.ZIP_DEFLATED) as z:
        info = zipfile.ZipInfo("bootstrap")
        info.external_attr = 0o755 << 16
        z.writestr(info, binary.read_bytes() if binary else b"#!/bin/sh\n")
    body = data.getvalue()
    region = os.environ["AWS_REGION"]
    bucket = f"autoheal-artifacts-{account()}-{region}"
    key = f"autoheal/{hashlib.sha256(body).hexdigest()}.zip"
    s3 = client("s3")
    try:
        if region == "us-east-1":
            s3.create_bucket(Bucket=bucket)
        else:
            s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
    except ClientError as e:
        if e.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise
    s3.put_object(Bucket=bucket, Key=key, Body=body)
    return f"s3://{bucket}/{key}"


def transform(code_uri: str) -> dict:
    """template.yaml as CloudFormation, with the function's code at `code_uri`."""
    from samtranslator.translator.transform import transform as sam_transform
    from samtranslator.yaml_helper import yaml_parse

    class NoManagedPolicies:  # the template names no managed policy by name
        def load(self):
            return {}

    template = yaml_parse(TEMPLATE.read_text())
    template["Resources"]["Function"]["Properties"]["CodeUri"] = code_uri
    os.environ.setdefault("AWS_DEFAULT_REGION", os.environ["AWS_REGION"])
    return sam_transform(template, {}, NoManagedPolicies())


def wait(cf, stack: str) -> dict:
    """The stack once no operation is in progress (`stack` may be its id, which outlives a
    deletion, unlike its name)."""
    for _ in range(300):
        s = cf.describe_stacks(StackName=stack)["Stacks"][0]
        if not s["StackStatus"].endswith("_IN_PROGRESS"):
            return s
        time.sleep(0.2)
    raise SystemExit(f"{stack} still {s['StackStatus']} after 60 s")


def up(args) -> dict:
    cf = client("cloudformation")
    template = transform(package(args.binary))
    params = [
        {"ParameterKey": k, "ParameterValue": v}
        for k, v in (p.split("=", 1) for p in args.param)
    ]
    kwargs = dict(
        StackName=args.stack,
        TemplateBody=json.dumps(template),
        Parameters=params,
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"],
    )
    try:
        try:
            cf.describe_stacks(StackName=args.stack)
            cf.update_stack(**kwargs)
        except ClientError as e:
            if "does not exist" not in str(e):
                raise
            cf.create_stack(**kwargs)
    except ClientError as e:
        # Refused before anything is made (a template rule, a bad parameter): say why.
        if e.response["Error"]["Code"] != "ValidationError":
            raise
        return {"status": "REFUSED", "reason": e.response["Error"]["Message"]}
    s = wait(cf, args.stack)
    return {
        "status": s["StackStatus"],
        "reason": s.get("StackStatusReason"),
        "outputs": {o["OutputKey"]: o["OutputValue"] for o in s.get("Outputs", [])},
        "resources": resources(cf, args.stack),
        "template": template,
    }


def resources(cf, stack: str) -> dict:
    out = {}
    for r in cf.list_stack_resources(StackName=stack)["StackResourceSummaries"]:
        out[r["LogicalResourceId"]] = {"type": r["ResourceType"], "physical": r.get("PhysicalResourceId")}
    return out


# ------------------------------------------------------------------------------- world


def document(value):
    """A policy document as data: JSON text, or the Python repr moto keeps for inline role
    policies that CloudFormation created."""
    if isinstance(value, (dict, list)):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return ast.literal_eval(value)


def world(args) -> dict:
    cf = client("cloudformation")
    stack = cf.describe_stacks(StackName=args.stack)["Stacks"][0]
    res = resources(cf, args.stack)
    of = lambda t: {k: v["physical"] for k, v in res.items() if v["type"] == t}  # noqa: E731
    lam, iam, ev, sns, sqs, cw, ddb = (
        client(s) for s in ("lambda", "iam", "events", "sns", "sqs", "cloudwatch", "dynamodb")
    )
    (fn_name,) = of("AWS::Lambda::Function").values()
    fn = lam.get_function_configuration(FunctionName=fn_name)
    role = fn["Role"].rsplit("/", 1)[-1]
    try:
        invoke_config = lam.get_function_event_invoke_config(FunctionName=fn_name)
        invoke_config.pop("ResponseMetadata", None)
        invoke_config.pop("LastModified", None)
    except ClientError:
        invoke_config = None
    rules = {}
    for logical, name in of("AWS::Events::Rule").items():
        r = ev.describe_rule(Name=name)
        rules[logical] = {
            "name": name,
            "arn": r["Arn"],
            "pattern": json.loads(r["EventPattern"]) if r.get("EventPattern") else None,
            "schedule": r.get("ScheduleExpression"),
            "targets": ev.list_targets_by_rule(Rule=name)["Targets"],
        }
    topics = {}
    for logical, arn in of("AWS::SNS::Topic").items():
        subs = []
        for s in sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"]:
            attrs = sns.get_subscription_attributes(SubscriptionArn=s["SubscriptionArn"])["Attributes"]
            subs.append({
                "protocol": s["Protocol"],
                "endpoint": s["Endpoint"],
                "redrive": document(attrs["RedrivePolicy"]) if attrs.get("RedrivePolicy") else None,
            })
        attrs = sns.get_topic_attributes(TopicArn=arn)["Attributes"]
        topics[logical] = {"arn": arn, "policy": document(attrs["Policy"]), "subscriptions": subs}
    queues = {}
    for logical, url in of("AWS::SQS::Queue").items():
        attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        queues[logical] = {
            "arn": attrs["QueueArn"],
            "policy": document(attrs["Policy"]) if attrs.get("Policy") else None,
        }
    alarms = {}
    names = of("AWS::CloudWatch::Alarm")
    if names:
        for a in cw.describe_alarms(AlarmNames=list(names.values()))["MetricAlarms"]:
            logical = next(k for k, v in names.items() if v == a["AlarmName"])
            alarms[logical] = {
                "actions": a.get("AlarmActions", []),
                "ok_actions": a.get("OKActions", []),
                "metric": a.get("MetricName"),
                "dimensions": a.get("Dimensions", []),
                "metrics": [m["Id"] for m in a.get("Metrics", [])],
            }
    tables = {}
    for logical, name in of("AWS::DynamoDB::Table").items():
        t = ddb.describe_table(TableName=name)["Table"]
        tables[logical] = {"name": name, "arn": t["TableArn"], "keys": t["KeySchema"]}
    try:
        function_policy = document(lam.get_policy(FunctionName=fn_name)["Policy"])
    except ClientError:
        function_policy = None
    return {
        "status": stack["StackStatus"],
        "outputs": {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])},
        "parameters": {p["ParameterKey"]: p.get("ParameterValue") for p in stack.get("Parameters", [])},
        "resources": res,
        "function": {
            "name": fn_name,
            "arn": fn["FunctionArn"],
            "runtime": fn.get("Runtime"),
            "handler": fn.get("Handler"),
            "architectures": fn.get("Architectures"),
            "memory": fn.get("MemorySize"),
            "timeout": fn.get("Timeout"),
            "environment": fn.get("Environment", {}).get("Variables", {}),
            "reserved_concurrency": lam.get_function_concurrency(FunctionName=fn_name).get(
                "ReservedConcurrentExecutions"
            ),
            "policy": function_policy,
            "invoke_config": invoke_config,
        },
        "role": {
            "name": role,
            "inline": {
                p: document(iam.get_role_policy(RoleName=role, PolicyName=p)["PolicyDocument"])
                for p in iam.list_role_policies(RoleName=role)["PolicyNames"]
            },
            "attached": [p["PolicyArn"] for p in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]],
            "trust": document(iam.get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"]),
        },
        "rules": rules,
        "topics": topics,
        "queues": queues,
        "alarms": alarms,
        "tables": tables,
    }


# ------------------------------------------------------------------------------- match


def match(args) -> dict:
    """For each sample event: the rules (logical ids) whose pattern TestEventPattern says it
    matches, or why it is not an EventBridge event."""
    cf, ev = client("cloudformation"), client("events")
    rules = {}
    for logical, r in resources(cf, args.stack).items():
        if r["type"] == "AWS::Events::Rule":
            pattern = ev.describe_rule(Name=r["physical"]).get("EventPattern")
            if pattern:
                rules[logical] = pattern
    out = {}
    for path in sorted(EVENTS.glob("*.json")):
        body = path.read_text()
        matched, refused = [], None
        for logical, pattern in rules.items():
            try:
                if ev.test_event_pattern(EventPattern=pattern, Event=body)["Result"]:
                    matched.append(logical)
            except ClientError as e:
                refused = e.response["Error"]["Message"]
        out[path.name] = {"rules": sorted(matched), "refused": refused}
    return out


# ------------------------------------------------------------------------------- down


def down(args) -> dict:
    cf = client("cloudformation")
    before = resources(cf, args.stack)
    stack_id = cf.describe_stacks(StackName=args.stack)["Stacks"][0]["StackId"]
    cf.delete_stack(StackName=args.stack)
    s = wait(cf, stack_id)
    return {"status": s["StackStatus"], "resources": before}


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("command", choices=["up", "world", "match", "down"])
    p.add_argument("--stack", required=True)
    p.add_argument("--binary", type=Path)
    p.add_argument("--param", action="append", default=[], help="Key=Value, repeatable")
    args = p.parse_args(argv)
    result = {"up": up, "world": world, "match": match, "down": down}[args.command](args)
    json.dump(result, sys.stdout, default=str)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
