"""EventBridge event patterns, matched the way EventBridge matches them (for TestEventPattern,
which moto leaves unimplemented, and moto's own matcher does not descend into arrays of
objects, as `detail.configuration.metrics[].metricStat.metric.name` in an alarm event needs).

The rules, from EventBridge's documentation on event patterns:
- a pattern is an object whose leaves are non-empty arrays of matchers; the event matches
  when every leaf finds, at the same path in the event, a value one of its matchers takes;
- the event's arrays are flattened: a path through an array of objects reaches each
  element's value, and an array of scalars matches when any element does;
- matchers are JSON scalars (exact, `null` included) or one of `prefix`, `suffix`,
  `equals-ignore-case`, `wildcard`, `anything-but`, `numeric`, `exists`, `cidr`;
  `$or` takes a list of alternative patterns.
Anything else is an invalid pattern, as EventBridge says (`PatternError`).
"""

from __future__ import annotations

import ipaddress
import re

# TestEventPattern's mandatory event fields.
EVENT_FIELDS = ("id", "account", "source", "time", "region", "resources", "detail-type")
_ABSENT = object()
_NUMERIC_OPS = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    "=": lambda a, b: a == b,
    ">=": lambda a, b: a >= b,
    ">": lambda a, b: a > b,
}


class PatternError(ValueError):
    """The pattern (or the event) is not one EventBridge accepts."""


def matches(pattern: dict, event: dict) -> bool:
    """Whether `event` (a full EventBridge event) matches `pattern`."""
    if not isinstance(pattern, dict):
        raise PatternError("an event pattern is a JSON object")
    if not isinstance(event, dict):
        raise PatternError("an event is a JSON object")
    missing = [f for f in EVENT_FIELDS if f not in event]
    if missing:
        raise PatternError(f"the event lacks {', '.join(missing)}")
    return _object(pattern, [event])


def _object(pattern: dict, nodes: list) -> bool:
    """Every key of `pattern` matches among `nodes` (the event objects at this depth)."""
    for key, sub in pattern.items():
        if key == "$or":
            if not isinstance(sub, list) or len(sub) < 2:
                raise PatternError("$or takes a list of at least two patterns")
            if not any(_object(p, nodes) for p in sub):
                return False
            continue
        below = _children(nodes, key)
        if isinstance(sub, dict):
            if not _object(sub, [n for n in below if isinstance(n, dict)]):
                return False
        elif isinstance(sub, list):
            if not sub:
                raise PatternError(f"'{key}': empty arrays are not allowed")
            leaves = [n for n in below if not isinstance(n, dict)]
            if not any(_matcher(m, leaves) for m in sub):
                return False
        else:
            raise PatternError(f"'{key}' must be an object or an array")
    return True


def _children(nodes: list, key: str) -> list:
    """The values under `key` in each node, arrays flattened (of objects and of scalars)."""
    out = []
    for node in nodes:
        if isinstance(node, dict) and key in node:
            out.extend(_flatten(node[key]))
    return out


def _flatten(value) -> list:
    if isinstance(value, list):
        return [v for item in value for v in _flatten(item)]
    return [value]


def _matcher(m, leaves: list) -> bool:
    """Whether one matcher takes one of `leaves` (the event's scalar values at the path)."""
    if m is None or isinstance(m, (str, bool, int, float)):
        return any(_same(m, v) for v in leaves)
    if not isinstance(m, dict) or len(m) != 1:
        raise PatternError(f"a matcher is a scalar or an object of one key, not {m!r}")
    (name, arg), = m.items()
    if name == "exists":
        if not isinstance(arg, bool):
            raise PatternError("exists takes true or false")
        return bool(leaves) == arg
    strings = [v for v in leaves if isinstance(v, str)]
    if name == "prefix":
        return any(_affix(arg, s, str.startswith) for s in strings)
    if name == "suffix":
        return any(_affix(arg, s, str.endswith) for s in strings)
    if name == "equals-ignore-case":
        return any(s.casefold() == _string(arg, name).casefold() for s in strings)
    if name == "wildcard":
        rx = _wildcard(_string(arg, name))
        return any(rx.fullmatch(s) for s in strings)
    if name == "numeric":
        return any(_numeric(arg, v) for v in leaves if _number(v))
    if name == "cidr":
        net = ipaddress.ip_network(_string(arg, name), strict=False)
        return any(_in_network(s, net) for s in strings)
    if name == "anything-but":
        return bool(leaves) and any(not _anything_but_hit(arg, v) for v in leaves)
    raise PatternError(f"unknown matcher {name!r}")


def _same(m, v) -> bool:
    # JSON true is not the number 1; a number matches a number of the same value.
    if isinstance(m, bool) or isinstance(v, bool):
        return type(m) is type(v) and m == v
    return m == v


def _string(arg, name: str) -> str:
    if not isinstance(arg, str):
        raise PatternError(f"{name} takes a string")
    return arg


def _affix(arg, s: str, test) -> bool:
    if isinstance(arg, dict) and set(arg) == {"equals-ignore-case"}:
        return test(s.casefold(), _string(arg["equals-ignore-case"], "equals-ignore-case").casefold())
    return test(s, _string(arg, "prefix/suffix"))


def _wildcard(arg: str) -> re.Pattern:
    return re.compile(".*".join(re.escape(part) for part in arg.split("*")), re.DOTALL)


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _numeric(arg, v) -> bool:
    if not isinstance(arg, list) or len(arg) not in (2, 4):
        raise PatternError("numeric takes [op, value] or [op, value, op, value]")
    for op, bound in zip(arg[::2], arg[1::2]):
        if op not in _NUMERIC_OPS or not _number(bound):
            raise PatternError(f"numeric: bad comparison {op!r} {bound!r}")
        if not _NUMERIC_OPS[op](v, bound):
            return False
    return True


def _in_network(s: str, net) -> bool:
    try:
        return ipaddress.ip_address(s) in net
    except ValueError:
        return False


def _anything_but_hit(arg, v) -> bool:
    """Whether `v` is one of the values anything-but excludes."""
    if isinstance(arg, list):
        return any(_same(a, v) for a in arg)
    if isinstance(arg, dict):
        if len(arg) != 1:
            raise PatternError("anything-but takes one matcher")
        (name, inner), = arg.items()
        if name not in ("prefix", "suffix", "equals-ignore-case", "wildcard"):
            raise PatternError(f"anything-but does not take {name!r}")
        if isinstance(inner, list):
            return any(_matcher({name: i}, [v]) for i in inner)
        return _matcher({name: inner}, [v])
    return _same(arg, v)
