"""Tests of the bench's region model: tools/latency_proxy.py adds its latency to every
request and lets concurrent requests wait at once; tools/bench.py counts rounds and
attributes requests to alarms from the proxy's records."""

import http.server
import os
import sys
import threading
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench import attribute, rounds_of  # noqa: E402
from latency_proxy import LatencyProxy, operation  # noqa: E402

SIGV4 = "AWS4-HMAC-SHA256 Credential=AKID/20261203/us-east-1/{}/aws4_request, SignedHeaders=host"


class Operation(unittest.TestCase):
    def test_service_and_action_of_each_protocol(self):
        cases = [
            ({"authorization": SIGV4.format("dynamodb"), "x-amz-target": "DynamoDB_20120810.PutItem"},
             "/", b"{}", ("dynamodb", "PutItem")),
            ({"authorization": SIGV4.format("ec2"), "content-type": "application/x-www-form-urlencoded"},
             "/", b"Action=DescribeInstances&Version=2016-11-15", ("ec2", "DescribeInstances")),
            ({"authorization": SIGV4.format("autoscaling")}, "/?Action=SetInstanceHealth", b"",
             ("autoscaling", "SetInstanceHealth")),
            ({"authorization": SIGV4.format("monitoring")},
             "/service/GraniteServiceVersion20100801/operation/PutMetricAlarm", b"",
             ("monitoring", "PutMetricAlarm")),
            ({"x-proxy-method": "POST"}, "/services/T/B/X", b"{}", (None, "POST /services/T/B/X")),
        ]
        for headers, path, body, want in cases:
            self.assertEqual(operation(headers, path, body), want, (headers, path))


class Rounds(unittest.TestCase):
    def test_overlapping_requests_are_one_round(self):
        recs = [{"start": s, "end": e, "n": n} for n, (s, e) in enumerate(
            [(0.0, 1.0), (0.5, 2.0), (1.9, 2.5), (3.0, 4.0), (4.5, 5.0), (4.6, 4.7)])]
        self.assertEqual([[r["n"] for r in rnd] for rnd in rounds_of(recs)], [[0, 1, 2], [3], [4, 5]])
        self.assertEqual(rounds_of([]), [])

    def test_requests_belong_to_the_window_they_started_in(self):
        recs = [{"start": s, "end": s + 0.1} for s in (0.5, 1.5, 1.6, 2.5, 9.0)]
        got = attribute(recs, [(1.0, 2.0), (0.0, 0.9), (2.0, 3.0)])
        self.assertEqual([[r["start"] for r in w] for w in got], [[1.5, 1.6], [0.5], [2.5]])


class Upstream(http.server.BaseHTTPRequestHandler):
    """Answers `{}`; a call named in `together` is held until all of them have arrived, so
    they can only complete if the proxy forwards them at once."""

    protocol_version = "HTTP/1.1"
    together: set = set()
    barrier: threading.Barrier

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.headers.get("X-Amz-Target", "").rsplit(".", 1)[-1] in self.together:
            self.barrier.wait(timeout=30)
        body = b"{}"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Proxy(unittest.TestCase):
    def setUp(self):
        self.upstream = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
        threading.Thread(target=self.upstream.serve_forever, daemon=True).start()
        self.proxy = LatencyProxy(f"http://127.0.0.1:{self.upstream.server_address[1]}", 200)

    def tearDown(self):
        self.proxy.stop()
        self.upstream.shutdown()
        self.upstream.server_close()

    def call(self, action: str) -> float:
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.proxy.port}/", data=b"{}", method="POST",
            headers={"X-Amz-Target": f"DynamoDB_20120810.{action}",
                     "Authorization": SIGV4.format("dynamodb")})
        t0 = time.perf_counter()
        with urllib.request.urlopen(req, timeout=10) as r:
            self.assertEqual(r.status, 200)
            r.read()
        return time.perf_counter() - t0

    def test_each_call_waits_the_latency_and_calls_made_at_once_wait_at_once(self):
        self.assertGreaterEqual(self.call("GetItem"), 0.2)
        together = ("PutItem", "Query", "DeleteItem", "UpdateItem")
        # Upstream answers none of the four before all four arrived: a proxy that forwarded
        # them one at a time would leave the first waiting, and the test failing.
        Upstream.together, Upstream.barrier = set(together), threading.Barrier(len(together))
        took = []
        threads = [threading.Thread(target=lambda a=a: took.append(self.call(a))) for a in together]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(len(took), 4, "a call made at once was not answered")
        self.assertTrue(all(t >= 0.2 for t in took), took)
        records = self.proxy.records()
        self.assertEqual(sorted(r["action"] for r in records),
                         ["DeleteItem", "GetItem", "PutItem", "Query", "UpdateItem"])
        self.assertEqual({r["service"] for r in records}, {"dynamodb"})
        self.assertEqual([len(r) for r in rounds_of(records)], [1, 4])


if __name__ == "__main__":
    unittest.main()
