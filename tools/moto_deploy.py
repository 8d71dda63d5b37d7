"""What moto's CloudFormation and EventBridge lack for deploying autoheal's stack, filled in.

- TestEventPattern, which moto leaves unimplemented, with EventBridge's matching rules
  (tools/event_pattern.py).
- Resource types moto's CloudFormation skips with a warning, created for real in moto's
  backends: `AWS::SNS::TopicPolicy` (the topics' Policy attribute), `AWS::SQS::QueuePolicy`
  (the queues' Policy attribute), `AWS::SNS::Subscription` (with its RedrivePolicy),
  `AWS::Lambda::EventInvokeConfig` and `AWS::CloudWatch::Alarm` (metric and metric-math
  alarms). Updates replace them; stack deletion removes them.
- `AWS::Lambda::Function`'s `Architectures`, which moto's CloudFormation drops.
- The template's `Rules`, which moto's CloudFormation ignores: CreateStack and UpdateStack
  evaluate their assertions on the parameters (given, else defaults) and refuse the stack
  with a ValidationError carrying the failed assertion's `AssertDescription`, as
  CloudFormation does.
What stays unplayed (and is checked in the transformed template instead) is listed in
docs/deploy.md. Installed by tools/moto_server.py; idempotent.
"""

from __future__ import annotations

import json
import uuid

from moto.awslambda.models import LambdaFunction, lambda_backends
from moto.cloudformation.exceptions import ValidationError
from moto.cloudformation.models import CloudFormationBackend
from moto.cloudwatch.models import (
    Dimension,
    Metric,
    MetricDataQuery,
    MetricStat,
    cloudwatch_backends,
)
from moto.core.common_models import CloudFormationModel
from moto.events.exceptions import InvalidEventPatternException
from moto.events.responses import EventsHandler
from moto.sns.models import sns_backends
from moto.sqs.models import sqs_backends

import event_pattern

_installed = False


def install():
    global _installed
    if _installed:
        return
    _installed = True
    EventsHandler.test_event_pattern = _test_event_pattern
    CloudFormationBackend.create_stack = _ruled(CloudFormationBackend.create_stack)
    CloudFormationBackend.update_stack = _ruled(CloudFormationBackend.update_stack)
    LambdaFunction.create_from_cloudformation_json = _with_architectures(
        LambdaFunction.create_from_cloudformation_json
    )


def _ruled(operation):
    """CreateStack/UpdateStack, refused when one of the template's Rules fails."""

    def wrapped(self, name, template, *args, **kwargs):
        given = kwargs.get("parameters", args[-1] if args else {})
        if isinstance(given, list):
            given = self._resolve_update_parameters(self.get_stack(name), given)
        check_rules(json.loads(template), given)
        return operation(self, name, template, *args, **kwargs)

    return wrapped


def check_rules(template: dict, given: dict) -> None:
    """Raises ValidationError with the first failed assertion's description."""
    values = {k: str(p.get("Default", "")) for k, p in template.get("Parameters", {}).items()}
    values.update(given)
    for rule in template.get("Rules", {}).values():
        if "RuleCondition" in rule and not _rule_value(rule["RuleCondition"], values):
            continue
        for assertion in rule.get("Assertions", []):
            if not _rule_value(assertion["Assert"], values):
                raise ValidationError(message=assertion.get("AssertDescription", "a template rule failed"))


def _rule_value(expr, values: dict):
    """The rule functions CloudFormation allows in Rules, on parameter values."""
    if not isinstance(expr, dict):
        return expr
    (fn, arg), = expr.items()
    if fn == "Ref":
        return values[arg]
    args = [_rule_value(a, values) for a in arg]
    if fn == "Fn::Equals":
        return args[0] == args[1]
    if fn == "Fn::Not":
        return not args[0]
    if fn == "Fn::Or":
        return any(args)
    if fn == "Fn::And":
        return all(args)
    if fn == "Fn::Contains":
        return args[1] in args[0]
    raise ValidationError(message=f"rule function {fn} is not played by the emulator")


def _test_event_pattern(self):
    try:
        pattern = json.loads(self._get_param("EventPattern") or "")
        event = json.loads(self._get_param("Event") or "")
        result = event_pattern.matches(pattern, event)
    except (ValueError, event_pattern.PatternError) as e:
        raise InvalidEventPatternException(reason=str(e))
    return json.dumps({"Result": result}), self.response_headers


def _with_architectures(create):
    def wrapped(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        fn = create.__func__(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
        architectures = cloudformation_json["Properties"].get("Architectures")
        if architectures:
            fn.architectures = list(architectures)
        return fn

    return classmethod(wrapped)


def _present(value):
    """CloudFormation drops `AWS::NoValue` (None once moto resolves it) from lists and maps."""
    if isinstance(value, list):
        return [_present(v) for v in value if v is not None]
    if isinstance(value, dict):
        return {k: _present(v) for k, v in value.items() if v is not None}
    return value


class _Filled:
    """A resource moto's CloudFormation skips: applied to moto's backends by `apply`, undone
    by `remove`. Replaced on update. Each kind also names CloudFormationModel as a direct
    base: moto finds resource types among its direct subclasses. (moto files models by the
    service named in their module, hence `__module__`.)"""

    TYPE = ""
    __module__ = "moto.autoheal"

    def __init__(self, name, props, account_id, region_name):
        self.name = name
        self.props = props
        self.account_id = account_id
        self.region_name = region_name
        self.physical = self.apply()

    @property
    def physical_resource_id(self):
        return self.physical

    @classmethod
    def cloudformation_type(cls):
        return cls.TYPE

    @staticmethod
    def cloudformation_name_type():
        return ""

    @classmethod
    def has_cfn_attr(cls, attr):
        return False

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        return cls(resource_name, _present(cloudformation_json.get("Properties", {})), account_id, region_name)

    @classmethod
    def update_from_cloudformation_json(cls, original_resource, new_resource_name, cloudformation_json, account_id, region_name):
        original_resource.remove()
        return cls.create_from_cloudformation_json(new_resource_name, cloudformation_json, account_id, region_name)

    @classmethod
    def delete_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name):
        pass  # moto calls `delete` on the resource itself

    def delete(self, account_id, region_name):
        self.remove()

    def is_created(self):
        return True

    def apply(self) -> str:
        raise NotImplementedError

    def remove(self) -> None:
        raise NotImplementedError


def _document(value) -> str:
    return value if isinstance(value, str) else json.dumps(value)


class TopicPolicy(_Filled, CloudFormationModel):
    __module__ = "moto.autoheal"
    TYPE = "AWS::SNS::TopicPolicy"

    def apply(self):
        sns = sns_backends[self.account_id][self.region_name]
        for arn in self.props["Topics"]:
            sns.set_topic_attribute(arn, "policy", _document(self.props["PolicyDocument"]))
        return self.name

    def remove(self):
        pass  # the topic keeps its policy until it is deleted, as SNS does


class QueuePolicy(_Filled, CloudFormationModel):
    __module__ = "moto.autoheal"
    TYPE = "AWS::SQS::QueuePolicy"

    def apply(self):
        sqs = sqs_backends[self.account_id][self.region_name]
        for url in self.props["Queues"]:
            sqs.set_queue_attributes(url.rsplit("/", 1)[-1], {"Policy": _document(self.props["PolicyDocument"])})
        return self.name

    def remove(self):
        pass


class Subscription(_Filled, CloudFormationModel):
    __module__ = "moto.autoheal"
    TYPE = "AWS::SNS::Subscription"

    def apply(self):
        sns = sns_backends[self.account_id][self.region_name]
        sub = sns.subscribe(self.props["TopicArn"], self.props["Endpoint"], self.props["Protocol"])
        for key in ("RedrivePolicy", "FilterPolicy", "RawMessageDelivery"):
            if key in self.props:
                sns.set_subscription_attributes(sub.arn, key, _document(self.props[key]))
        return sub.arn

    def remove(self):
        sns_backends[self.account_id][self.region_name].unsubscribe(self.physical)


class EventInvokeConfig(_Filled, CloudFormationModel):
    __module__ = "moto.autoheal"
    TYPE = "AWS::Lambda::EventInvokeConfig"

    def apply(self):
        lam = lambda_backends[self.account_id][self.region_name]
        config = {k: v for k, v in self.props.items() if k not in ("FunctionName", "Qualifier")}
        lam.put_function_event_invoke_config(self.props["FunctionName"], config)
        return f"{self.props['FunctionName']}:{self.props.get('Qualifier', '$LATEST')}"

    def remove(self):
        lam = lambda_backends[self.account_id][self.region_name]
        try:
            lam.delete_function_event_invoke_config(self.props["FunctionName"])
        except Exception:  # noqa: BLE001 - the function went first
            pass


class Alarm(_Filled, CloudFormationModel):
    __module__ = "moto.autoheal"
    TYPE = "AWS::CloudWatch::Alarm"

    def apply(self):
        p = self.props
        name = p.get("AlarmName") or f"{self.name}-{uuid.uuid4().hex[:8]}"
        dims = lambda ds: [Dimension(d["Name"], d["Value"]) for d in ds or []]  # noqa: E731
        queries = None
        if p.get("Metrics"):
            queries = []
            for m in p["Metrics"]:
                stat = m.get("MetricStat")
                queries.append(MetricDataQuery(
                    query_id=m["Id"], label=m.get("Label"), period=m.get("Period"),
                    return_data=m.get("ReturnData"), expression=m.get("Expression"),
                    metric_stat=stat and MetricStat(
                        metric=Metric(stat["Metric"]["MetricName"], stat["Metric"]["Namespace"],
                                      dims(stat["Metric"].get("Dimensions"))),
                        period=stat["Period"], stat=stat["Stat"], unit=stat.get("Unit"),
                    ),
                ))
        cloudwatch_backends[self.account_id][self.region_name].put_metric_alarm(
            name=name, namespace=p.get("Namespace"), metric_name=p.get("MetricName"),
            comparison_operator=p["ComparisonOperator"], evaluation_periods=p["EvaluationPeriods"],
            period=p.get("Period"), threshold=p.get("Threshold"), statistic=p.get("Statistic"),
            description=p.get("AlarmDescription"), dimensions=p.get("Dimensions", []),
            alarm_actions=p.get("AlarmActions", []), ok_actions=p.get("OKActions", []),
            metric_data_queries=queries, treat_missing_data=p.get("TreatMissingData"),
            datapoints_to_alarm=p.get("DatapointsToAlarm"),
        )
        return name

    def remove(self):
        cloudwatch_backends[self.account_id][self.region_name].delete_alarms([self.physical])
