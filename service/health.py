"""The operations HTTP endpoint: /metrics (Prometheus), /healthz (liveness), /readyz (readiness)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest


# The consumer loop is stuck if it has not come round for this long. A batch can legitimately
# wait 60 s for delivery reports, so keep well above that.
LIVENESS_TIMEOUT_S = 180.0


_LAST_LOOP, _ASSIGNED, _KAFKA, _REDIS = range(4)
SLOT_SIZE = 4

# What the dependency probes (probes.py) last concluded, after hysteresis.
PROBING, OK, BROKER_DOWN, TOPIC_MISSING = 0, 1, 2, 3  # Kafka
NOT_CONFIGURED, REDIS_DOWN = -1, 2  # Redis (also PROBING and OK)


class Health:
    """State one worker reports, read by the HTTP handler.

    It lives in a slot of 4 doubles: a plain list in-process, or a shared-memory
    `multiprocessing.Array` when the workers are processes and their parent serves HTTP.
    Times are `time.time()` so that they compare across processes.
    """

    def __init__(self, slot=None, reset: bool = True, input_topic: str = "") -> None:
        """`reset=False` reads a slot another process writes; `input_topic` names it in reasons."""
        self.slot = slot if slot is not None else [0.0] * SLOT_SIZE
        self.input_topic = input_topic
        if reset:
            self.slot[_LAST_LOOP] = time.time()
            self.slot[_ASSIGNED] = 0.0
            self.slot[_KAFKA] = PROBING
            self.slot[_REDIS] = PROBING

    last_loop = property(lambda self: self.slot[_LAST_LOOP], lambda self, v: self._set(_LAST_LOOP, v))
    assigned_partitions = property(lambda self: int(self.slot[_ASSIGNED]), lambda self, v: self._set(_ASSIGNED, v))
    kafka = property(lambda self: int(self.slot[_KAFKA]), lambda self, v: self._set(_KAFKA, v))
    redis = property(lambda self: int(self.slot[_REDIS]), lambda self, v: self._set(_REDIS, v))

    def _set(self, i: int, value: float) -> None:
        self.slot[i] = float(value)

    def live(self) -> tuple[bool, list[str]]:
        stalled = time.time() - self.last_loop
        if stalled > LIVENESS_TIMEOUT_S:
            return False, [f"consumer loop stalled for {stalled:.0f}s"]
        return True, []

    def ready(self) -> tuple[bool, list[str]]:
        reasons = []
        kafka = {PROBING: "Kafka not probed yet", BROKER_DOWN: "Kafka broker unreachable",
                 TOPIC_MISSING: f"input topic {self.input_topic} missing"}.get(self.kafka)
        redis = {PROBING: "Redis not probed yet", REDIS_DOWN: "Redis unreachable"}.get(self.redis)
        reasons += [r for r in (kafka, redis) if r]
        if not self.assigned_partitions:
            reasons.append("no partitions assigned")
        live, why = self.live()
        return live and not reasons, why + reasons


class HealthGroup:
    """Several workers: live if every worker is; ready if any is (one idle worker in a group
    with fewer partitions than workers must not take the pod out of service)."""

    def __init__(self, members: list[Health]):
        self.members = members

    def live(self) -> tuple[bool, list[str]]:
        results = [m.live() for m in self.members]
        return all(ok for ok, _ in results), [f"worker {i}: {r}" for i, (_, rs) in enumerate(results) for r in rs]

    def ready(self) -> tuple[bool, list[str]]:
        results = [m.ready() for m in self.members]
        ok = any(ok for ok, _ in results) and all(m.live()[0] for m in self.members)
        return ok, [f"worker {i}: {r}" for i, (_, rs) in enumerate(results) for r in rs]


def serve(port: int, registry, health: Health | HealthGroup, host: str = "0.0.0.0") -> ThreadingHTTPServer:
    """Start the endpoint on a daemon thread; returns the server (call shutdown() to stop)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, CONTENT_TYPE_LATEST, generate_latest(registry))
            elif path in ("/healthz", "/readyz"):
                ok, reasons = health.live() if path == "/healthz" else health.ready()
                body = json.dumps({"status": "ok" if ok else "unavailable", "reasons": reasons}).encode()
                self._send(200 if ok else 503, "application/json", body)
            else:
                self._send(404, "text/plain", b"not found\n")

        def _send(self, code: int, content_type: str, body: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:  # probes every few seconds: keep the log quiet
            pass

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, name="ops-http", daemon=True).start()
    return server
