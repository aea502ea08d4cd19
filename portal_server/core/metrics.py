"""Metrics that features record and the /metrics page (portal_server.system) renders: kept in core
so that any feature may observe them without importing another feature."""
from __future__ import annotations

from prometheus_client import Counter, Histogram

#: Seconds from an alert's sending to each box's acknowledgement (observed when acks are stored).
ALERT_ACK_SECONDS = Histogram("ctv_alert_ack_seconds", "Alert sent → box acknowledgement",
                              buckets=(0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900), registry=None)

#: MQTT messages the ingest took in, by kind (hb, status, hello, ack): its rate is the ingest rate.
INGEST_MESSAGES = Counter("ctv_ingest_messages_total", "MQTT messages taken in by the ingest", ["kind"],
                          registry=None)

#: Redis hash reason → count of MQTT payloads the ingest dropped (malformed, oversized, unknown box),
#: written by the ingest process (another process than the web, hence Redis and not a counter).
MQTT_DROPPED_KEY = "ctv:mqtt:dropped"

#: Scrape-time families (``fn() -> iterable of metric families``) that features add with
#: ``add_collector`` (device_fleet: boxes online by town, firmware versions).
COLLECTORS: list = []


def add_collector(fn) -> None:
    """Have ``/metrics`` yield ``fn()``'s metric families at every scrape (once per function)."""
    if fn not in COLLECTORS:
        COLLECTORS.append(fn)
