"""Prometheus metrics shared by every feature (import the counters from here)."""
from __future__ import annotations

import time

from flask import g, request
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

REGISTRY = CollectorRegistry(auto_describe=True)

HTTP_REQUESTS = Counter("ctv_http_requests_total", "HTTP requests", ["method", "endpoint", "status"],
                        registry=REGISTRY)
HTTP_LATENCY = Histogram("ctv_http_request_seconds", "HTTP request latency", ["endpoint"],
                         registry=REGISTRY)
#: Incremented by the MQTT ingest for payloads it had to drop (malformed, oversized...).
MQTT_DROPPED = Counter("ctv_mqtt_dropped_total", "MQTT payloads dropped by the ingest", ["reason"],
                       registry=REGISTRY)


def init_app(app) -> None:
    @app.before_request
    def _start():
        g._t0 = time.perf_counter()

    @app.after_request
    def _count(resp):
        ep = request.endpoint or "unknown"
        HTTP_REQUESTS.labels(request.method, ep, resp.status_code).inc()
        if hasattr(g, "_t0"):
            HTTP_LATENCY.labels(ep).observe(time.perf_counter() - g._t0)
        return resp


#: Redis hash reason → count, written by the MQTT ingest process (another process than the web).
MQTT_DROPPED_KEY = "ctv:mqtt:dropped"


def render() -> bytes:
    """The text exposition of this process's registry plus what the ingest put in Redis."""
    out = generate_latest(REGISTRY)
    try:
        from portal_server.core import redis as core_redis
        counts = core_redis.client().hgetall(MQTT_DROPPED_KEY)
    except Exception:
        counts = {}
    lines = ["# HELP ctv_ingest_dropped_total MQTT payloads the ingest dropped (malformed, oversized, unknown box)",
             "# TYPE ctv_ingest_dropped_total counter"]
    for reason, n in sorted(counts.items()):
        lines.append(f'ctv_ingest_dropped_total{{reason="{reason.decode()}"}} {int(n)}')
    return out + ("\n".join(lines) + "\n").encode()
