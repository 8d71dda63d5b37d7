#!/usr/bin/env python3
"""An HTTP proxy that adds a fixed latency to every request: a region modelled on loopback.

`make bench` puts one in front of the emulator (moto; 40 ms per AWS call) and one in front
of the local Slack receiver (150 ms per post), so that the function under test waits on the
network the way it does in a region, and calls it makes at once overlap the way they do
there: every connection is served by its own thread, and the latency is slept, not
computed, so concurrent requests wait concurrently. moto itself still answers one request
at a time; its own time comes on top of the latency (`--mode add`, the default) or is hidden
under it when shorter (`--mode floor`).

Each request is recorded: when it arrived and when its answer was sent (time.perf_counter,
which is CLOCK_MONOTONIC on Linux: comparable across processes of this machine and the
same clock as tools/rig.py's Runtime API marks), how long the upstream took, the service
(the SigV4 credential scope, or `--name`) and the API action (the `X-Amz-Target` header,
else the `Action=` form field of the query protocols of EC2 and Auto Scaling, else
`METHOD /path`). The records are served at `GET /_latency_proxy/records?since=N`
(JSON; `next` is the N to ask with next time); no latency is added there.

    latency_proxy.py --upstream http://127.0.0.1:5000 --latency-ms 40
    # prints "LISTENING <port>" on stdout once it accepts connections

Standard library only. `spawn()` runs it as a child process (what tools/bench.py does).
"""

from __future__ import annotations

import argparse
import http.client
import http.server
import json
import re
import select
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

CONTROL = "/_latency_proxy/"
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te",
              "trailer", "upgrade", "content-length", "server", "date"}


def operation(headers, path: str, body: bytes) -> tuple[str | None, str]:
    """(service, action) of one AWS request; service None when the request is unsigned."""
    m = re.search(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/", headers.get("authorization", "") or "")
    service = m.group(1) if m else None
    target = headers.get("x-amz-target")
    if target:
        return service, target.rsplit(".", 1)[-1]
    parsed = urllib.parse.urlsplit(path)
    query = urllib.parse.parse_qs(parsed.query)
    if "Action" in query:
        return service, query["Action"][0]
    ctype = (headers.get("content-type") or "").lower()
    if body and (ctype.startswith("application/x-www-form-urlencoded") or body[:7] == b"Action="):
        form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
        if "Action" in form:
            return service, form["Action"][0]
    m = re.search(r"/operation/([A-Za-z0-9]+)$", parsed.path)  # Smithy RPC v2 (CloudWatch CBOR)
    if m:
        return service, m.group(1)
    return service, f"{headers.get('x-proxy-method', 'POST')} {parsed.path}"


class LatencyProxy:
    """The proxy itself, in this process: `url`, `records()`, `stop()`."""

    def __init__(self, upstream: str, latency_ms: float, name: str | None = None,
                 host: str = "127.0.0.1", port: int = 0, mode: str = "add"):
        if mode not in ("add", "floor"):
            raise ValueError("mode must be add or floor")
        up = urllib.parse.urlsplit(upstream)
        if up.scheme != "http" or not up.hostname:
            raise ValueError(f"upstream must be http://host:port, got {upstream!r}")
        self.upstream_host, self.upstream_port = up.hostname, up.port or 80
        self.latency = latency_ms / 1000.0
        self.name, self.mode = name, mode
        self.lock = threading.Lock()
        self._records: list[dict] = []
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # small writes must not wait on delayed ACKs
            wbufsize = -1

            def setup(self):
                super().setup()
                self.upstream: http.client.HTTPConnection | None = None

            def finish(self):
                try:
                    super().finish()
                finally:
                    if self.upstream is not None:
                        self.upstream.close()

            def do_GET(self):
                self._proxy()

            def do_POST(self):
                self._proxy()

            def do_PUT(self):
                self._proxy()

            def do_DELETE(self):
                self._proxy()

            def do_HEAD(self):
                self._proxy()

            def _read_body(self) -> bytes:
                if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                    parts = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            return b"".join(parts)
                        parts.append(self.rfile.read(size))
                        self.rfile.readline()
                n = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(n) if n else b""

            def _proxy(self):
                start = time.perf_counter()
                body = self._read_body()
                if self.path.startswith(CONTROL):
                    return self._control()
                headers = {k.lower(): v for k, v in self.headers.items()}
                headers["x-proxy-method"] = self.command
                service, action = operation(headers, self.path, body)
                service = proxy.name or service or "?"
                if proxy.mode == "add":
                    time.sleep(proxy.latency / 2)  # on the way there
                up_start = time.perf_counter()
                try:
                    status, reason, up_headers, payload = self._forward(body)
                except (OSError, http.client.HTTPException) as e:
                    status, reason, up_headers = 502, "Bad Gateway", [("Content-Type", "text/plain")]
                    payload = f"latency proxy: upstream failed: {e}".encode()
                up_end = time.perf_counter()
                if proxy.mode == "add":
                    time.sleep(proxy.latency / 2)  # on the way back
                else:
                    left = start + proxy.latency - time.perf_counter()
                    if left > 0:
                        time.sleep(left)
                # Recorded before the answer goes out, so a client that reads the records
                # right after its answer finds this one (`end`: the answer leaves now).
                end = time.perf_counter()
                with proxy.lock:
                    proxy._records.append({
                        "service": service, "action": action, "start": start, "end": end,
                        "upstream_ms": round(1000 * (up_end - up_start), 3), "status": status,
                        "conn": id(self),
                    })
                self.send_response(status, reason)
                for k, v in up_headers:
                    if k.lower() not in HOP_BY_HOP:
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)
                self.wfile.flush()

            def _forward(self, body: bytes):
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("connection", "keep-alive", "proxy-connection",
                                                "transfer-encoding", "te", "content-length")}
                headers["Content-Length"] = str(len(body))
                for attempt in (0, 1):
                    if self.upstream is None:
                        self.upstream = http.client.HTTPConnection(
                            proxy.upstream_host, proxy.upstream_port, timeout=60)
                    try:
                        self.upstream.request(self.command, self.path, body=body, headers=headers)
                        resp = self.upstream.getresponse()
                        payload = resp.read()
                        if resp.will_close:
                            self.upstream.close()
                            self.upstream = None
                        return resp.status, resp.reason, resp.getheaders(), payload
                    except (ConnectionError, http.client.RemoteDisconnected, http.client.BadStatusLine):
                        # A kept-alive upstream connection that the server closed: once more.
                        self.upstream.close()
                        self.upstream = None
                        if attempt:
                            raise
                raise AssertionError("unreachable")

            def _control(self):
                url = urllib.parse.urlsplit(self.path)
                what = url.path[len(CONTROL):].strip("/")
                if what == "records":
                    since = int(urllib.parse.parse_qs(url.query).get("since", ["0"])[0])
                    with proxy.lock:
                        recs, nxt = proxy._records[since:], len(proxy._records)
                    out = {"records": recs, "next": nxt}
                elif what == "info":
                    out = {"latency_ms": proxy.latency * 1000, "mode": proxy.mode, "name": proxy.name,
                           "upstream": f"http://{proxy.upstream_host}:{proxy.upstream_port}"}
                else:
                    out = {"error": f"no endpoint {what!r}", "endpoints": ["records", "info"]}
                payload = json.dumps(out).encode()
                self.send_response(200 if "error" not in out else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                self.wfile.flush()

            def log_message(self, *args):
                pass

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 128

            def handle_error(self, request, client_address):
                if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
                    return
                super().handle_error(request, client_address)

        self.server = Server((host, port), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://{host}:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.1}, daemon=True)
        self.thread.start()

    def records(self, since: int = 0) -> list[dict]:
        with self.lock:
            return list(self._records[since:])

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class ProxyProcess:
    """A LatencyProxy in a child process (`spawn`); records fetched over HTTP."""

    def __init__(self, proc: subprocess.Popen, port: int, log_path: Path | None):
        self.proc, self.port, self.log_path = proc, port, log_path
        self.url = f"http://127.0.0.1:{port}"
        self._next = 0

    def records(self, since: int = 0) -> list[dict]:
        with urllib.request.urlopen(f"{self.url}{CONTROL}records?since={since}", timeout=30) as r:
            return json.loads(r.read())["records"]

    def mark(self) -> int:
        """How many records there are now: pass it to `records(since=...)` later."""
        with urllib.request.urlopen(f"{self.url}{CONTROL}records?since=1000000000", timeout=30) as r:
            return json.loads(r.read())["next"]

    def stop(self, timeout: float = 5.0) -> None:
        if self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=timeout)


def spawn(upstream: str, latency_ms: float, name: str | None = None, mode: str = "add",
          log_path: Path | None = None, preexec_fn=None, timeout: float = 15.0) -> ProxyProcess:
    """Start `latency_proxy.py` as a child process and wait until it listens."""
    argv = [sys.executable, str(Path(__file__).resolve()), "--upstream", upstream,
            "--latency-ms", str(latency_ms), "--mode", mode]
    if name:
        argv += ["--name", name]
    logf = open(log_path, "ab") if log_path else subprocess.DEVNULL
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=logf,
                                preexec_fn=preexec_fn)
    finally:
        if log_path:
            logf.close()
    deadline = time.monotonic() + timeout
    line = b""
    while time.monotonic() < deadline and not line.endswith(b"\n"):
        ready, _, _ = select.select([proc.stdout], [], [], 0.1)
        if ready:
            chunk = proc.stdout.read1(256)
            if not chunk:
                break
            line += chunk
        elif proc.poll() is not None:
            break
    m = re.match(rb"LISTENING (\d+)", line)
    if not m:
        if proc.poll() is None:
            proc.kill()
        raise RuntimeError(f"latency proxy did not start (said {line!r}; see {log_path})")
    return ProxyProcess(proc, int(m.group(1)), log_path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--upstream", required=True, help="http://host:port to forward to")
    ap.add_argument("--latency-ms", type=float, default=40.0, help="added to every request (default %(default)s)")
    ap.add_argument("--mode", choices=("add", "floor"), default="add",
                    help="add: latency + upstream time; floor: at least the latency (default %(default)s)")
    ap.add_argument("--name", help="service name to record (default: from the SigV4 credential scope)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    proxy = LatencyProxy(args.upstream, args.latency_ms, args.name, args.host, args.port, args.mode)
    sys.stdout.write(f"LISTENING {proxy.port}\n")
    sys.stdout.flush()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        proxy.stop()


if __name__ == "__main__":
    import signal
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    main()
