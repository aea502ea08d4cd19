"""The /metrics page: HTTP counters, and the metrics features record in ``portal_server.core.metrics``.

Under gunicorn every worker is its own process: with ``PROMETHEUS_MULTIPROC_DIR`` set (``make
run`` and production set it for web, worker and ingest, and empty it at start) the counters of
every process on the host are summed at scrape time, so a counter never goes down between two
scrapes whichever worker answers. Fleet and queue figures are read at scrape time (gauges).
"""
from __future__ import annotations

import os
import time

from flask import g, request
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

from portal_server.core import metrics as core_metrics
from portal_server.core import redis as core_redis
from portal_server.core.jobs import QUEUES

REGISTRY = CollectorRegistry(auto_describe=True)

HTTP_REQUESTS = Counter("ctv_http_requests_total", "HTTP requests", ["method", "endpoint", "status"],
                        registry=REGISTRY)
HTTP_LATENCY = Histogram("ctv_http_request_seconds", "HTTP request latency", ["endpoint"],
                         registry=REGISTRY)
#: Incremented by the MQTT ingest for payloads it had to drop (malformed, oversized...).
MQTT_DROPPED = Counter("ctv_mqtt_dropped_total", "MQTT payloads dropped by the ingest", ["reason"],
                       registry=REGISTRY)
#: MQTT messages the ingest took in, by kind (the ingest observes it; core owns it).
INGEST_MESSAGES = core_metrics.INGEST_MESSAGES
REGISTRY.register(INGEST_MESSAGES)
#: Seconds from an alert's sending to each box's acknowledgement (alerts observe it; core owns it).
ALERT_ACK_SECONDS = core_metrics.ALERT_ACK_SECONDS
REGISTRY.register(ALERT_ACK_SECONDS)


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


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
MQTT_DROPPED_KEY = core_metrics.MQTT_DROPPED_KEY


class LiveFigures:
    """Scrape-time gauges: boxes online by town, firmware versions, RQ queue lengths."""

    def __init__(self, fleet_source=None):
        self.fleet_source = fleet_source

    def collect(self):
        try:
            r = core_redis.client()
            q = GaugeMetricFamily("ctv_queue_jobs", "Jobs waiting in an RQ queue", labels=["queue"])
            for name in QUEUES:
                q.add_metric([name], r.llen(f"rq:queue:{name}"))
            yield q
        except Exception:  # Redis down: /healthz says so; metrics still answer
            pass
        for fn in FLEET_COLLECTORS:
            try:
                yield from fn()
            except Exception:
                continue


#: Scrape-time families features added with ``core.metrics.add_collector`` (device_fleet: boxes
#: online by town, firmware).
FLEET_COLLECTORS = core_metrics.COLLECTORS


def _ingest_dropped_lines() -> bytes:
    try:
        counts = core_redis.client().hgetall(MQTT_DROPPED_KEY)
    except Exception:
        counts = {}
    lines = ["# HELP ctv_ingest_dropped_total MQTT payloads the ingest dropped (malformed, oversized, unknown box)",
             "# TYPE ctv_ingest_dropped_total counter"]
    for reason, n in sorted(counts.items()):
        lines.append(f'ctv_ingest_dropped_total{{reason="{reason.decode()}"}} {int(n)}')
    return ("\n".join(lines) + "\n").encode()


def render() -> bytes:
    """The text exposition: every process's counters (summed in multiprocess mode), the
    scrape-time gauges, and what the ingest put in Redis."""
    if multiprocess_dir():
        from prometheus_client import multiprocess
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    live = CollectorRegistry()
    live.register(LiveFigures())
    return generate_latest(registry) + generate_latest(live) + _ingest_dropped_lines()
