"""EC2's instance event windows for the moto server, which moto does not implement
(CreateInstanceEventWindow and the rest are unknown actions to it).

Played over EC2's own API, with no control request: `CreateInstanceEventWindow`,
`AssociateInstanceEventWindow`, `DisassociateInstanceEventWindow`,
`DescribeInstanceEventWindows` and `DeleteInstanceEventWindow`, per account and region as
moto's backends are. The answers are moto's own serialization of botocore's EC2 model (an
`ActionResult`), so their XML is EC2's Query shape (`instanceEventWindowSet`/`item`,
`timeRangeSet`, `associationTarget` with `instanceIdSet`, `tagSet`, `dedicatedHostIdSet`),
which boto3 and the Rust SDK parse.

What EC2 documents is enforced: time ranges or a cron expression, not both, not neither
(`InvalidParameterCombination`); weekdays `sunday`..`saturday`, hours 0..23, each range at
least 2 hours and at least 4 hours a week in all (a range may run over the week's end,
Saturday into Sunday); a cron expression with `*` for minute, day of month and month, hour
ranges of at least 2 hours, days of week 0-6 or SUN-SAT, and at least 4 hours a week
(`InvalidParameterValue`); one target type per window, a target (instance id, instance tag,
host id) in one window only, at most 100 instance ids, 50 tags or 50 host ids per window,
200 windows per account and region. An associated instance or host must exist in the
account and region (`InvalidInstanceID.NotFound`, `InvalidHostID.NotFound`); an unknown
window is `InvalidInstanceEventWindowId.NotFound`. EC2 does not document its own messages
(nor the codes of the refusals beyond these): the wording is the wrapper's, and a refusal
the documentation gives no code for is `InvalidParameterValue` (disassociating a target the
window does not have, deleting an associated window without `ForceDelete`).

DescribeInstanceEventWindows takes EC2's filters: `instance-id` (the windows associated with
the instance by id), `instance-tag` (a value `key=value`), `instance-tag-key`,
`instance-tag-value`, `dedicated-host-id`, `event-window-name`, and the window's own tags
(`tag:<key>`, `tag-key`, `tag-value`); values may use `*` and `?` as EC2's do. Any other
filter is `InvalidParameterValue`. `MaxResults` (20..500) and `NextToken` page the windows
in the order they were created; `MaxResults` with `InstanceEventWindowIds` is
`InvalidParameterCombination`, a token not given by the wrapper `InvalidPaginationToken`.
A deleted window is gone at once (EC2 shows it `deleting` a while).

Installed by tools/moto_server.py after moto_world: `/_autoheal/reset` (all) and moto's reset
forget every window; a reset of one instance drops that instance from the windows
associated with it by id. See docs/emulator.md, "Instance event windows".
"""

import base64
import copy
import itertools
import re
import secrets
import threading

from moto.core.responses import ActionResult
from moto.ec2.exceptions import EC2ClientError
from moto.ec2.responses import EC2Response

import moto_world

WEEKDAYS = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
WEEK = 7 * 24
# EC2's documented limits.
MIN_RANGE_HOURS = 2
MIN_WEEK_HOURS = 4
MAX_WINDOWS = 200
MAX_TARGETS = {"instance_ids": 100, "tags": 50, "host_ids": 50}
MAX_RESULTS = (20, 500)
CRON_DAYS = {"SUN": 0, "MON": 1, "TUE": 2, "WED": 3, "THU": 4, "FRI": 5, "SAT": 6}
TARGETS = {"instance_ids": "instance IDs", "tags": "instance tags",
           "host_ids": "Dedicated Host IDs"}

_lock = threading.RLock()
# (account, region) -> {window id: window}; a window: {"id", "seq" (creation order), "name",
# "ranges" (the request's TimeRanges) or None, "cron" or None, "instance_ids", "tags"
# ((key, value) pairs), "host_ids", "own_tags" (the window's TagSpecifications tags)}.
_windows = {}
_seq = itertools.count(1)
_installed = False


def _refuse(message, code="InvalidParameterValue"):
    raise EC2ClientError(code, message)


def _not_found(window_id):
    _refuse(f"The event window ID '{window_id}' does not exist",
            "InvalidInstanceEventWindowId.NotFound")


# --- schedules -------------------------------------------------------------------------------


def _hour(value, what):
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 23:
        _refuse(f"Value ({value}) for parameter {what} is invalid. "
                "The hour must be an integer from 0 to 23.")
    return value


def _weekday(value, what):
    if value not in WEEKDAYS:
        _refuse(f"Value ({value}) for parameter {what} is invalid. "
                f"Valid values: {', '.join(WEEKDAYS)}.")
    return WEEKDAYS.index(value)


def _time_ranges(ranges):
    """The ranges as EC2 keeps them, once each is checked: a weekday and an hour at both
    ends, at least 2 hours long (over the week's end if it ends before it starts), and at
    least 4 hours a week covered in all."""
    kept, covered = [], set()
    for i, r in enumerate(ranges, 1):
        r = r or {}
        ends = []
        for day_key, hour_key in (("StartWeekDay", "StartHour"), ("EndWeekDay", "EndHour")):
            if r.get(day_key) is None or r.get(hour_key) is None:
                _refuse(f"TimeRange {i} must give StartWeekDay, StartHour, EndWeekDay and "
                        "EndHour")
            ends.append(_weekday(r[day_key], f"TimeRange.{i}.{day_key}") * 24
                        + _hour(r[hour_key], f"TimeRange.{i}.{hour_key}"))
        length = (ends[1] - ends[0]) % WEEK
        if length < MIN_RANGE_HOURS:
            _refuse(f"TimeRange {i} lasts {length} hours: each time range of an event window "
                    f"must be at least {MIN_RANGE_HOURS} hours")
        covered.update((ends[0] + h) % WEEK for h in range(length))
        kept.append({k: r[k] for k in ("StartWeekDay", "StartHour", "EndWeekDay", "EndHour")})
    if len(covered) < MIN_WEEK_HOURS:
        _refuse(f"The time ranges total {len(covered)} hours a week: an event window must "
                f"total at least {MIN_WEEK_HOURS} hours")
    return kept


def _cron_days(field):
    if field == "*":
        return set(range(7))
    days = set()
    for part in field.split(","):
        ends = part.split("-")
        if len(ends) > 2:
            return None
        values = []
        for end in ends:
            if end.upper() in CRON_DAYS:
                values.append(CRON_DAYS[end.upper()])
            elif end.isdigit() and int(end) <= 6:
                values.append(int(end))
            else:
                return None
        if values[0] > values[-1]:
            return None
        days.update(range(values[0], values[-1] + 1))
    return days


def _cron(expression):
    """Checks a cron expression as EC2 documents its constraints: `minute hour
    day-of-month month day-of-week`, only the hour and the day of week given."""
    fields = expression.split()
    bad = f"The cron expression '{expression}' is invalid"
    if len(fields) != 5:
        _refuse(f"{bad}: it must have 5 fields (minute hour day-of-month month day-of-week)")
    minute, hours, day_of_month, month, week_days = fields
    if (minute, day_of_month, month) != ("*", "*", "*"):
        _refuse(f"{bad}: the minute, day of month and month must be *")
    days = _cron_days(week_days)
    if not days:
        _refuse(f"{bad}: the day of week must be *, 0 to 6 or SUN to SAT")
    per_day = set()
    if hours == "*":
        per_day = set(range(24))
    else:
        for part in hours.split(","):
            m = re.fullmatch(r"(\d{1,2})-(\d{1,2})", part)
            if not m or int(m[2]) > 23 or int(m[1]) > int(m[2]):
                _refuse(f"{bad}: the hour must be one or more ranges such as 0-4 or "
                        "0-4,20-23, hours 0 to 23")
            start, end = int(m[1]), int(m[2])
            if end - start < MIN_RANGE_HOURS:
                _refuse(f"{bad}: each hour range must be at least {MIN_RANGE_HOURS} hours")
            per_day.update(range(start, end))
    total = len(per_day) * len(days)
    if total < MIN_WEEK_HOURS:
        _refuse(f"{bad}: the event window totals {total} hours a week, at least "
                f"{MIN_WEEK_HOURS} are required")
    return expression


# --- the windows, per account and region -----------------------------------------------------


def _scope(response):
    return (response.current_account, response.region)


def _get(windows, window_id):
    window = windows.get(window_id) if isinstance(window_id, str) else None
    if window is None:
        _not_found(window_id)
    return window


def _shape(window):
    """A window as EC2 answers it (InstanceEventWindow)."""
    shaped = {
        "InstanceEventWindowId": window["id"],
        "AssociationTarget": {
            "InstanceIds": list(window["instance_ids"]),
            "Tags": [{"Key": k, "Value": v} for k, v in window["tags"]],
            "DedicatedHostIds": list(window["host_ids"]),
        },
        "State": "active",
        "Tags": [{"Key": k, "Value": v} for k, v in window["own_tags"]],
    }
    if window["name"] is not None:
        shaped["Name"] = window["name"]
    if window["ranges"] is not None:
        shaped["TimeRanges"] = copy.deepcopy(window["ranges"])
    if window["cron"] is not None:
        shaped["CronExpression"] = window["cron"]
    return shaped


def _own_tags(response):
    tags = []
    for spec in response._get_param("TagSpecifications") or []:
        kind = spec.get("ResourceType")
        if kind != "instance-event-window":
            _refuse(f"'{kind}' is not a valid taggable resource type for this operation.")
        for tag in spec.get("Tags") or []:
            if not tag.get("Key"):
                _refuse("Tag keys must not be empty")
            tags.append((tag["Key"], tag.get("Value", "")))
    return tags


def _create_instance_event_window(self):
    """CreateInstanceEventWindow (moto: unknown)."""
    ranges = self._get_param("TimeRanges")
    cron = self._get_param("CronExpression")
    if ranges and cron:
        _refuse("Specify either TimeRanges or CronExpression, not both",
                "InvalidParameterCombination")
    if not ranges and not cron:
        _refuse("Specify TimeRanges or CronExpression", "InvalidParameterCombination")
    window = {
        "name": self._get_param("Name"),
        "ranges": _time_ranges(ranges) if ranges else None,
        "cron": _cron(cron) if cron else None,
        "instance_ids": [],
        "tags": [],
        "host_ids": [],
        "own_tags": _own_tags(self),
    }
    self.error_on_dryrun()
    with _lock:
        windows = _windows.setdefault(_scope(self), {})
        if len(windows) >= MAX_WINDOWS:
            _refuse(f"You can create at most {MAX_WINDOWS} event windows per Region",
                    "ResourceLimitExceeded")
        window["id"] = f"iew-{secrets.token_hex(9)[:17]}"
        window["seq"] = next(_seq)
        windows[window["id"]] = window
        return ActionResult({"InstanceEventWindow": _shape(window)})


def _targets(response):
    """The request's AssociationTarget, as the window keeps it."""
    target = response._get_param("AssociationTarget") or {}
    tags = []
    for tag in target.get("InstanceTags") or []:
        if not tag.get("Key"):
            _refuse("An instance tag of the association target must have a Key")
        tags.append((tag["Key"], tag.get("Value", "")))
    asked = {
        "instance_ids": list(dict.fromkeys(target.get("InstanceIds") or [])),
        "tags": list(dict.fromkeys(tags)),
        "host_ids": list(dict.fromkeys(target.get("DedicatedHostIds") or [])),
    }
    kinds = [k for k, v in asked.items() if v]
    if not kinds:
        _refuse("Specify InstanceIds, InstanceTags or DedicatedHostIds",
                "InvalidParameterCombination")
    if len(kinds) > 1:
        _refuse("Only one type of target (instance IDs, instance tags or Dedicated Host "
                "IDs) can be associated with an event window", "InvalidParameterCombination")
    return kinds[0], asked[kinds[0]]


def _associate_instance_event_window(self):
    """AssociateInstanceEventWindow (moto: unknown)."""
    window_id = self._get_param("InstanceEventWindowId")
    kind, asked = _targets(self)
    with _lock:
        windows = _windows.get(_scope(self), {})
        window = _get(windows, window_id)
        if kind == "instance_ids":
            for instance_id in asked:
                self.ec2_backend.get_instance(instance_id)  # InvalidInstanceID.NotFound
        if kind == "host_ids":
            for host_id in asked:
                if host_id not in self.ec2_backend.hosts:
                    _refuse(f"The host ID '{host_id}' does not exist",
                            "InvalidHostID.NotFound")
        self.error_on_dryrun()
        for other_kind in TARGETS:
            if other_kind != kind and window[other_kind]:
                _refuse(f"The event window {window_id} is associated with "
                        f"{TARGETS[other_kind]}: only one type of target can be associated "
                        "with an event window", "InvalidParameterCombination")
        for other in windows.values():
            if other is window:
                continue
            for target in asked:
                if target in other[kind]:
                    said = f"{target[0]}={target[1]}" if kind == "tags" else target
                    _refuse(f"The target {said} is already associated with the event "
                            f"window {other['id']}: a target can be associated with one "
                            "event window only")
        new = [t for t in asked if t not in window[kind]]
        if len(window[kind]) + len(new) > MAX_TARGETS[kind]:
            _refuse(f"An event window can be associated with at most {MAX_TARGETS[kind]} "
                    f"{TARGETS[kind]}")
        window[kind].extend(new)
        return ActionResult({"InstanceEventWindow": _shape(window)})


def _disassociate_instance_event_window(self):
    """DisassociateInstanceEventWindow (moto: unknown)."""
    window_id = self._get_param("InstanceEventWindowId")
    kind, asked = _targets(self)
    self.error_on_dryrun()
    with _lock:
        window = _get(_windows.get(_scope(self), {}), window_id)
        for target in asked:
            if target not in window[kind]:
                said = f"{target[0]}={target[1]}" if kind == "tags" else target
                _refuse(f"The target {said} is not associated with the event window "
                        f"{window_id}")
        window[kind] = [t for t in window[kind] if t not in asked]
        return ActionResult({"InstanceEventWindow": _shape(window)})


def _delete_instance_event_window(self):
    """DeleteInstanceEventWindow (moto: unknown)."""
    window_id = self._get_param("InstanceEventWindowId")
    force = bool(self._get_param("ForceDelete"))
    self.error_on_dryrun()
    with _lock:
        windows = _windows.get(_scope(self), {})
        window = _get(windows, window_id)
        if not force and any(window[kind] for kind in TARGETS):
            _refuse(f"The event window {window_id} is associated with targets: disassociate "
                    "them first, or specify ForceDelete")
        del windows[window_id]
        return ActionResult({"InstanceEventWindowState": {
            "InstanceEventWindowId": window_id, "State": "deleting"}})


# --- DescribeInstanceEventWindows ------------------------------------------------------------


def _matches(pattern, value):
    """EC2's filter values: `*` any run of characters, `?` one character."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.DOTALL) is not None


def _any(values, candidates):
    return any(_matches(v, c) for v in values for c in candidates)


def _filtered(window, name, values):
    pairs = window["tags"]
    if name == "instance-id":
        return _any(values, window["instance_ids"])
    if name == "instance-tag":
        return _any(values, [f"{k}={v}" for k, v in pairs])
    if name == "instance-tag-key":
        return _any(values, [k for k, _ in pairs])
    if name == "instance-tag-value":
        return _any(values, [v for _, v in pairs])
    if name == "dedicated-host-id":
        return _any(values, window["host_ids"])
    if name == "event-window-name":
        return window["name"] is not None and _any(values, [window["name"]])
    if name == "tag-key":
        return _any(values, [k for k, _ in window["own_tags"]])
    if name == "tag-value":
        return _any(values, [v for _, v in window["own_tags"]])
    if name.startswith("tag:"):
        return _any(values, [v for k, v in window["own_tags"] if k == name[4:]])
    raise AssertionError(name)


FILTERS = ("instance-id", "instance-tag", "instance-tag-key", "instance-tag-value",
           "dedicated-host-id", "event-window-name", "tag-key", "tag-value")


def _token(seq):
    return base64.urlsafe_b64encode(f"iew-page:{seq}".encode()).decode()


def _from_token(token):
    try:
        text = base64.urlsafe_b64decode(token.encode()).decode()
        prefix, seq = text.split(":")
        if prefix != "iew-page":
            raise ValueError(text)
        return int(seq)
    except (ValueError, UnicodeError):
        _refuse(f"The pagination token {token} is invalid", "InvalidPaginationToken")


def _describe_instance_event_windows(self):
    """DescribeInstanceEventWindows (moto: unknown)."""
    ids = self._get_param("InstanceEventWindowIds") or []
    filters = self._get_param("Filters") or []
    max_results = self._get_param("MaxResults")
    token = self._get_param("NextToken")
    if ids and max_results is not None:
        _refuse("You cannot specify MaxResults with InstanceEventWindowIds",
                "InvalidParameterCombination")
    if max_results is not None and not MAX_RESULTS[0] <= max_results <= MAX_RESULTS[1]:
        _refuse(f"Value ({max_results}) for parameter MaxResults is invalid. "
                f"Expecting a value between {MAX_RESULTS[0]} and {MAX_RESULTS[1]}.")
    for f in filters:
        name = f.get("Name")
        if name not in FILTERS and not (isinstance(name, str) and name.startswith("tag:")):
            _refuse(f"The filter '{name}' is invalid")
    after = _from_token(token) if token else 0
    self.error_on_dryrun()
    with _lock:
        windows = _windows.get(_scope(self), {})
        for window_id in ids:
            _get(windows, window_id)
        chosen = [w for w in sorted(windows.values(), key=lambda w: w["seq"])
                  if (not ids or w["id"] in ids)
                  and all(_filtered(w, f["Name"], f.get("Values") or []) for f in filters)]
        chosen = [w for w in chosen if w["seq"] >= after]
        answer = {}
        if max_results is not None and len(chosen) > max_results:
            answer["NextToken"] = _token(chosen[max_results]["seq"])
            chosen = chosen[:max_results]
        answer["InstanceEventWindows"] = [_shape(w) for w in chosen]
        return ActionResult(answer)


# --- reset -----------------------------------------------------------------------------------


def _forget(instance_id):
    with _lock:
        if instance_id is None:
            _windows.clear()
            return
        for windows in _windows.values():
            for window in windows.values():
                if instance_id in window["instance_ids"]:
                    window["instance_ids"].remove(instance_id)


def install():
    """Adds the actions to moto's EC2 responses and joins moto_world's reset. Idempotent;
    after moto_world.install()."""
    global _installed
    if _installed:
        return
    _installed = True
    # moto dispatches an EC2 action to the EC2Response method of its snake_case name.
    EC2Response.create_instance_event_window = _create_instance_event_window
    EC2Response.associate_instance_event_window = _associate_instance_event_window
    EC2Response.disassociate_instance_event_window = _disassociate_instance_event_window
    EC2Response.describe_instance_event_windows = _describe_instance_event_windows
    EC2Response.delete_instance_event_window = _delete_instance_event_window
    moto_world.on_reset(_forget)
