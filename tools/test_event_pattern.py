"""Table tests of tools/event_pattern.py: EventBridge's documented matching rules."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from event_pattern import PatternError, matches  # noqa: E402


def event(**detail):
    return {
        "id": "1", "account": "123456789012", "source": "aws.ec2", "time": "2026-12-02T00:00:00Z",
        "region": "us-east-1", "resources": [], "detail-type": "EC2 Instance State-change Notification",
        "detail": detail,
    }


ALARM = event(configuration={"metrics": [
    {"id": "m1", "expression": "MAX([a])"},
    {"id": "a", "metricStat": {"metric": {"name": "StatusCheckFailed_System", "namespace": "AWS/EC2"}}},
]}, state={"value": "ALARM"}, count=5, ip="10.0.1.7", tags=["blue", "green"], flag=True, gone=None)

CASES = [
    # (pattern, expected)
    ({"source": ["aws.ec2"]}, True),
    ({"source": ["aws.health", "aws.ec2"]}, True),
    ({"source": ["aws.health"]}, False),
    ({"detail": {"state": {"value": ["ALARM"]}}}, True),
    ({"detail": {"state": {"value": ["OK"]}}}, False),
    # arrays of objects are flattened: any element's value at the path
    ({"detail": {"configuration": {"metrics": {"metricStat": {"metric": {"name": [{"prefix": "StatusCheckFailed"}]}}}}}}, True),
    ({"detail": {"configuration": {"metrics": {"metricStat": {"metric": {"name": [{"prefix": "CPU"}]}}}}}}, False),
    ({"detail": {"configuration": {"metrics": {"id": ["a"]}}}}, True),
    # arrays of scalars: any element
    ({"detail": {"tags": ["green"]}}, True),
    ({"detail": {"tags": ["red"]}}, False),
    ({"detail": {"tags": [{"suffix": "ue"}]}}, True),
    ({"detail": {"state": {"value": [{"equals-ignore-case": "alarm"}]}}}, True),
    ({"detail": {"state": {"value": [{"prefix": {"equals-ignore-case": "al"}}]}}}, True),
    ({"detail": {"state": {"value": [{"wildcard": "AL*M"}]}}}, True),
    ({"detail": {"state": {"value": [{"wildcard": "AL*X"}]}}}, False),
    ({"detail": {"state": {"value": [{"anything-but": "OK"}]}}}, True),
    ({"detail": {"state": {"value": [{"anything-but": ["ALARM", "OK"]}]}}}, False),
    ({"detail": {"state": {"value": [{"anything-but": {"prefix": "AL"}}]}}}, False),
    ({"detail": {"count": [{"numeric": [">", 3, "<=", 5]}]}}, True),
    ({"detail": {"count": [{"numeric": [">", 5]}]}}, False),
    ({"detail": {"count": [5]}}, True),
    ({"detail": {"count": ["5"]}}, False),
    ({"detail": {"flag": [True]}}, True),
    ({"detail": {"flag": [1]}}, False),
    ({"detail": {"gone": [None]}}, True),
    ({"detail": {"ip": [{"cidr": "10.0.0.0/16"}]}}, True),
    ({"detail": {"ip": [{"cidr": "10.1.0.0/16"}]}}, False),
    ({"detail": {"count": [{"exists": True}]}}, True),
    ({"detail": {"missing": [{"exists": False}]}}, True),
    ({"detail": {"missing": [{"exists": True}]}}, False),
    # exists matches leaves only, not objects
    ({"detail": {"state": [{"exists": True}]}}, False),
    # a path absent from the event matches no value matcher
    ({"detail": {"missing": ["x"]}}, False),
    ({"$or": [{"source": ["aws.health"]}, {"detail": {"count": [5]}}]}, True),
    ({"$or": [{"source": ["aws.health"]}, {"detail": {"count": [6]}}]}, False),
    # every key must match (AND)
    ({"source": ["aws.ec2"], "detail-type": ["nope"]}, False),
]

INVALID = [
    {"source": "aws.ec2"},
    {"source": []},
    {"detail": {"count": [{"numeric": ["~", 1]}]}},
    {"detail": {"count": [{"between": [1, 2]}]}},
    {"$or": [{"source": ["x"]}]},
]


class EventPatternTest(unittest.TestCase):
    def test_the_documented_rules(self):
        for pattern, expected in CASES:
            with self.subTest(pattern=pattern):
                self.assertIs(matches(pattern, ALARM), expected)

    def test_invalid_patterns_are_refused(self):
        for pattern in INVALID:
            with self.subTest(pattern=pattern):
                with self.assertRaises(PatternError):
                    matches(pattern, ALARM)

    def test_an_event_without_the_mandatory_fields_is_refused(self):
        with self.assertRaisesRegex(PatternError, "lacks id, account"):
            matches({"source": ["aws.ec2"]}, {"Records": []})


if __name__ == "__main__":
    unittest.main()
