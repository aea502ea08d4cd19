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


def render() -> bytes:
    """The text exposition of this process's registry plus what the ingest put in Redis."""
    return generate_latest(REGISTRY)
