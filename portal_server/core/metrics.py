"""Metrics that features record and the /metrics page (portal_server.system) renders: kept in core
so that any feature may observe them without importing another feature."""
from __future__ import annotations

from prometheus_client import Histogram

#: Seconds from an alert's sending to each box's acknowledgement (observed when acks are stored).
ALERT_ACK_SECONDS = Histogram("ctv_alert_ack_seconds", "Alert sent → box acknowledgement",
                              buckets=(0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900), registry=None)
