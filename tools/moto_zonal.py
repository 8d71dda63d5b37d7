"""ARC zonal shifts for the emulator, which moto lacks: a test starts or ends a zonal shift
or a zonal autoshift away from a zone through the control API (`POST
/_autoheal/zonal-shift`), and the arc-zonal-shift calls autoheal makes answer from it
(`GET /zonalshifts`, `GET /autoshifts`, REST JSON as ARC speaks it), per account and region.
"""

import json
import re
import secrets
import threading
import time
from urllib.parse import parse_qs

import moto_world
from moto_world import HttpError

_lock = threading.Lock()
# (account, region) -> list of shifts: {"kind", "id", "away_from", "resource", "start",
# "expiry", "comment", "status"}
_shifts = {}
_installed = False

DEFAULT_ACCOUNT = "123456789012"
_SCOPE = re.compile(r"Credential=[^/]+/\d+/([^/]+)/arc-zonal-shift/")


def zonal_shift(body):
    """Starts (`active`: true, the default) or ends a shift away from `away_from` (a zone
    id such as `use1-az1`) in `account`/`region`: `kind` is `zonal-shift` (of `resource`)
    or `autoshift`. Answers the shifts of that account and region."""
    unknown = set(body) - {"account", "region", "away_from", "kind", "resource", "comment",
                           "expires_in_seconds", "active"}
    if unknown:
        raise HttpError(400, f"unknown keys {sorted(unknown)}")
    account = body.get("account", DEFAULT_ACCOUNT)
    region = moto_world._required(body, "region")
    away_from = moto_world._required(body, "away_from")
    kind = body.get("kind", "zonal-shift")
    if kind not in ("zonal-shift", "autoshift"):
        raise HttpError(400, "`kind` must be zonal-shift or autoshift")
    now = time.time()
    with _lock:
        shifts = _shifts.setdefault((account, region), [])
        for s in shifts:
            if s["away_from"] == away_from and s["kind"] == kind and s["status"] == "ACTIVE":
                s["status"] = "COMPLETED" if kind == "autoshift" else "CANCELED"
                s["end"] = now
        if body.get("active", True):
            shifts.append({
                "kind": kind,
                "id": secrets.token_hex(8),
                "away_from": away_from,
                "resource": body.get("resource", f"arn:aws:elasticloadbalancing:{region}:{account}:loadbalancer/app/web/1"),
                "comment": body.get("comment", "shifted by a test"),
                "start": now,
                "expiry": now + float(body.get("expires_in_seconds", 3600)),
                "status": "ACTIVE",
            })
        return {"shifts": [dict(s) for s in shifts]}


def _list(account, region, kind, status):
    now = time.time()
    with _lock:
        shifts = list(_shifts.get((account, region), []))
    items = []
    for s in shifts:
        state = s["status"]
        if state == "ACTIVE" and kind == "zonal-shift" and s["expiry"] <= now:
            state = "EXPIRED"
        if s["kind"] != kind or (status and state != status):
            continue
        if kind == "zonal-shift":
            items.append({
                "zonalShiftId": s["id"], "resourceIdentifier": s["resource"],
                "awayFrom": s["away_from"], "expiryTime": s["expiry"],
                "startTime": s["start"], "status": state, "comment": s["comment"],
                "shiftType": "ZONAL_SHIFT",
            })
        else:
            item = {"awayFrom": s["away_from"], "startTime": s["start"], "status": state}
            if "end" in s:
                item["endTime"] = s["end"]
            items.append(item)
    return {"items": items}


def _answer(start_response, status, body):
    data = json.dumps(body).encode()
    start_response(f"{status} {'OK' if status == 200 else 'Bad Request'}",
                   [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


def wrap(app):
    """WSGI middleware: answers arc-zonal-shift's list calls, passes the rest on."""

    def middleware(environ, start_response):
        scope = _SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
        if scope is None:
            return app(environ, start_response)
        region = scope.group(1)
        account = environ.get("HTTP_X_MOTO_ACCOUNT_ID", DEFAULT_ACCOUNT)
        path = environ.get("PATH_INFO", "").rstrip("/")
        query = parse_qs(environ.get("QUERY_STRING", ""))
        status = (query.get("status") or [None])[0]
        kinds = {"/zonalshifts": "zonal-shift", "/autoshifts": "autoshift"}
        if environ.get("REQUEST_METHOD") != "GET" or path not in kinds:
            return _answer(start_response, 400, {"message": f"the emulator plays only ListZonalShifts and ListAutoshifts, not {path}"})
        return _answer(start_response, 200, _list(account, region, kinds[path], status))

    return middleware


def _forget(instance_id):
    if instance_id is None:
        with _lock:
            _shifts.clear()


def install():
    """Joins moto_world's control API. Idempotent; after moto_world.install()."""
    global _installed
    if _installed:
        return
    _installed = True
    moto_world.ENDPOINTS["zonal-shift"] = zonal_shift
    moto_world.on_reset(_forget)
