"""CloudWatch over Smithy RPC v2 CBOR, for moto, which speaks only CloudWatch's JSON 1.0.

The current Rust aws-sdk-cloudwatch sends `POST /service/GraniteServiceVersion20100801/
operation/<Op>` with a CBOR body and expects CBOR back; moto 5.2 answers that path with 404.
This WSGI wrapper turns such a request into the same operation in JSON 1.0 (`POST /`,
`X-Amz-Target`), lets moto answer it, and turns the answer back into CBOR (timestamps as
CBOR tag 1, blobs as byte strings, errors as `__type` + `message`), using botocore's model
of CloudWatch for the shapes. Every other request passes through untouched.
"""

import base64
import datetime
import io
import json

import cbor2
from botocore.session import get_session

PREFIX = "/service/GraniteServiceVersion20100801/operation/"
TARGET = "GraniteServiceVersion20100801"
_model = get_session().get_service_model("cloudwatch")


def _epoch(value):
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.timezone.utc)
        return value.timestamp()
    return value


def _convert(value, shape, leaf):
    """Walks `value` along `shape`, applying `leaf(value, type_name)` to scalars."""
    if shape is None or value is None:
        return value
    kind = shape.type_name
    if kind == "structure":
        return {k: _convert(v, shape.members.get(k), leaf) for k, v in value.items()}
    if kind == "list":
        return [_convert(v, shape.member, leaf) for v in value]
    if kind == "map":
        return {k: _convert(v, shape.value, leaf) for k, v in value.items()}
    return leaf(value, kind)


def _request_leaf(value, kind):
    if kind == "timestamp":
        return _epoch(value)
    if kind == "blob" and isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return value


def _response_leaf(value, kind):
    if kind == "timestamp":
        if isinstance(value, str):
            value = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
        if isinstance(value, (int, float)):
            value = datetime.datetime.fromtimestamp(value, tz=datetime.timezone.utc)
        return value
    if kind == "blob" and isinstance(value, str):
        return base64.b64decode(value)
    return value


def wrap(app):
    def shim(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if not path.startswith(PREFIX):
            return app(environ, start_response)
        operation = _model.operation_model(path[len(PREFIX) :])
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        params = cbor2.loads(raw) if raw else {}
        body = json.dumps(_convert(params, operation.input_shape, _request_leaf)).encode()
        inner = dict(environ)
        inner.update(
            {
                "PATH_INFO": "/",
                "CONTENT_TYPE": "application/x-amz-json-1.0",
                "CONTENT_LENGTH": str(len(body)),
                "HTTP_X_AMZ_TARGET": f"{TARGET}.{operation.name}",
                "wsgi.input": io.BytesIO(body),
            }
        )
        answer = {}

        def capture(status, headers, exc_info=None):
            answer["status"], answer["headers"] = status, headers
            return lambda _data: None

        chunks = app(inner, capture)
        try:
            text = b"".join(chunks)
        finally:
            getattr(chunks, "close", lambda: None)()
        data = json.loads(text) if text.strip() else {}
        if answer["status"].startswith("2"):
            out = _convert(data, operation.output_shape, _response_leaf) or {}
        else:
            out = {
                "__type": data.get("__type") or data.get("code") or "InternalFailure",
                "message": data.get("message") or data.get("Message") or "",
            }
        encoded = cbor2.dumps(out, datetime_as_timestamp=True)
        headers = [
            (k, v)
            for k, v in answer["headers"]
            if k.lower() not in ("content-type", "content-length")
        ]
        headers += [
            ("Content-Type", "application/cbor"),
            ("smithy-protocol", "rpc-v2-cbor"),
            ("Content-Length", str(len(encoded))),
        ]
        start_response(answer["status"], headers)
        return [encoded]

    return shim
