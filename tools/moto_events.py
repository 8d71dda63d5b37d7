"""Scheduled events for the moto server: EC2's retirements, stops, reboots and maintenance,
announced ahead, which moto does not play (DescribeInstanceStatus has no `Events`, and
ModifyInstanceEventStartTime is not implemented).

A test schedules an event on an instance with `POST /_autoheal/scheduled-event`;
DescribeInstanceStatus then lists it in the instance's `Events` (whichever instances the
request returns: `IncludeAllInstances` is moto's, unchanged) until the instance is stopped
and started (it runs on a new host: every event of the instance is gone) or the event's
`NotAfter` passes; a terminated instance shows none. ModifyInstanceEventStartTime moves an
event's `NotBefore` (its `NotAfter` with it) within EC2's documented limits: only an event
with a `NotBeforeDeadline`, not within 5 minutes of its start, to a time at least 60 minutes
from now and no later than the deadline; otherwise `InvalidParameterValue` (the wording is
the wrapper's: EC2's own messages for these refusals are not documented).

Installed by tools/moto_server.py after moto_world; its endpoint sits among moto_world's
(`ENDPOINTS`), `/_autoheal/reset` (all, or one instance) and moto's own reset forget the
events, and time is moto_world's clock (`moto_world.time`), so a test that moves that clock
moves these events' deadlines too. See docs/emulator.md, "Scheduled events".
"""

import copy
import datetime
import secrets
import threading

from botocore.utils import parse_to_aware_datetime
from moto.core.responses import ActionResult
from moto.ec2.exceptions import EC2ClientError
from moto.ec2.models.instances import Instance
from moto.ec2.responses.instances import InstanceResponse

import moto_world
from moto_world import HttpError

# DescribeInstanceStatus' event codes, and the description the wrapper gives each when the
# test gives none (its own wording).
CODES = {
    "instance-retirement": "The instance is running on degraded hardware",
    "instance-stop": "The instance is running on degraded hardware",
    "instance-reboot": "Scheduled reboot of the instance",
    "system-reboot": "Scheduled reboot of the host",
    "system-maintenance": "Scheduled maintenance of the host",
}
# EC2's documented limits on moving an event.
AHEAD = datetime.timedelta(minutes=60)
CLOSED = datetime.timedelta(minutes=5)

_lock = threading.RLock()
# instance id -> [event]: {"id", "code", "description", "not_before", "not_after",
# "deadline" (None: cannot be moved)}, times as aware datetimes.
_events = {}
_installed = False


def _now():
    return datetime.datetime.fromtimestamp(moto_world.time.time(), datetime.timezone.utc)


def _standing(instance_id, now):
    """The instance's events whose NotAfter has not passed (the others are dropped)."""
    with _lock:
        events = [e for e in _events.get(instance_id, []) if e["not_after"] > now]
        if events:
            _events[instance_id] = events
        else:
            _events.pop(instance_id, None)
        return copy.deepcopy(events)


def _shape(event):
    """An event as DescribeInstanceStatus (and ModifyInstanceEventStartTime) answers it."""
    shaped = {
        "InstanceEventId": event["id"],
        "Code": event["code"],
        "Description": event["description"],
        "NotBefore": event["not_before"],
        "NotAfter": event["not_after"],
    }
    if event["deadline"] is not None:
        shaped["NotBeforeDeadline"] = event["deadline"]
    return shaped


def _events_property(self):
    if self.state == "terminated":
        return None
    events = _standing(self.id, _now())
    return [_shape(e) for e in events] or None


def _applies(original):
    # DescribeInstanceStatus' `event.code` filter (moto ignores it, answering every
    # instance): only instances with a standing event of one of the codes.
    def applies(self, filters):
        if not original(self, filters):
            return False
        for f in filters or []:
            if f["name"] == "event.code":
                codes = {e["code"] for e in _standing(self.id, _now())}
                if self.state == "terminated" or not codes & set(f["values"]):
                    return False
        return True

    return applies


def _start(original):
    # A stopped instance started again runs on a new host: its events are gone.
    def start(self):
        was_stopped = self.state == "stopped"
        result = original(self)
        if was_stopped:
            with _lock:
                _events.pop(self.id, None)
        return result

    return start


def _refuse(message):
    raise EC2ClientError("InvalidParameterValue", message)


def _modify_instance_event_start_time(self):
    """ModifyInstanceEventStartTime (moto: not implemented)."""
    instance = self.ec2_backend.get_instance(self._get_param("InstanceId"))
    event_id = self._get_param("InstanceEventId")
    requested = self._get_param("NotBefore")
    if not event_id or not requested:
        _refuse("InstanceEventId and NotBefore are required")
    try:
        new_start = parse_to_aware_datetime(requested)
    except (TypeError, ValueError):
        _refuse(f"Value ({requested}) for parameter NotBefore is invalid")
    self.error_on_dryrun()
    now = _now()
    with _lock:
        event = next((e for e in _events.get(instance.id, []) if e["id"] == event_id), None)
        if event is None or event["not_after"] <= now:
            _refuse(f"The event {event_id} of instance {instance.id} does not exist")
        if event["deadline"] is None:
            _refuse(f"The event {event_id} has no deadline and cannot be rescheduled")
        if now >= event["not_before"] - CLOSED:
            _refuse(f"The event {event_id} starts within 5 minutes and cannot be rescheduled")
        if new_start < now + AHEAD:
            _refuse("The new start time must be at least 60 minutes from now")
        if new_start > event["deadline"]:
            _refuse(
                f"The new start time is after the event's deadline "
                f"{event['deadline'].strftime('%Y-%m-%dT%H:%M:%SZ')}"
            )
        moved = new_start - event["not_before"]
        event["not_before"] = new_start
        event["not_after"] = event["not_after"] + moved
        return ActionResult({"Event": _shape(copy.deepcopy(event))})


# --- the control endpoint ------------------------------------------------------------------


def _time(body, key, required=True):
    value = body.get(key)
    if value is None and not required:
        return None
    try:
        if isinstance(value, bool):
            raise ValueError
        if isinstance(value, (int, float)):
            return datetime.datetime.fromtimestamp(value, datetime.timezone.utc)
        if isinstance(value, str) and value:
            return parse_to_aware_datetime(value)
        raise ValueError
    except (TypeError, ValueError, OverflowError):
        raise HttpError(400, f"`{key}` must be an ISO 8601 time or unix seconds")


def _iso(t):
    return None if t is None else t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _describe(event):
    return {
        "instance_event_id": event["id"],
        "code": event["code"],
        "description": event["description"],
        "not_before": _iso(event["not_before"]),
        "not_after": _iso(event["not_after"]),
        "not_before_deadline": _iso(event["deadline"]),
    }


def scheduled_event(body):
    """Schedules one event on an instance; answers the instance's standing events."""
    instance_id = moto_world._required(body, "instance_id")
    unknown = set(body) - {"instance_id", "code", "not_before", "not_after",
                           "not_before_deadline", "description"}
    if unknown:
        raise HttpError(400, f"unknown keys {sorted(unknown)}")
    code = body.get("code")
    if code not in CODES:
        raise HttpError(400, f"`code` must be one of {sorted(CODES)}")
    not_before, not_after = _time(body, "not_before"), _time(body, "not_after")
    deadline = _time(body, "not_before_deadline", required=False)
    if not_after < not_before:
        raise HttpError(400, "`not_after` is before `not_before`")
    if deadline is not None and deadline < not_before:
        raise HttpError(400, "`not_before_deadline` is before `not_before`")
    description = body.get("description", CODES[code])
    if not isinstance(description, str):
        raise HttpError(400, "`description` must be a string")
    instance = moto_world._find_instance(instance_id)
    event = {
        "id": f"instance-event-{secrets.token_hex(9)[:17]}",
        "code": code,
        "description": description,
        "not_before": not_before,
        "not_after": not_after,
        "deadline": deadline,
    }
    with _lock:
        _events.setdefault(instance.id, []).append(event)
    standing = _standing(instance.id, _now())
    return {"instance_id": instance.id, "event": _describe(event),
            "events": [_describe(e) for e in standing]}


def _forget(instance_id):
    with _lock:
        if instance_id is None:
            _events.clear()
        else:
            _events.pop(instance_id, None)


def install():
    """Patches moto's EC2 model and responses and joins moto_world's control API.
    Idempotent; after moto_world.install()."""
    global _installed
    if _installed:
        return
    _installed = True
    Instance.events = property(_events_property)
    Instance.applies = _applies(Instance.applies)
    Instance.start = _start(Instance.start)
    InstanceResponse.modify_instance_event_start_time = _modify_instance_event_start_time
    moto_world.ENDPOINTS["scheduled-event"] = scheduled_event
    moto_world.on_reset(_forget)
