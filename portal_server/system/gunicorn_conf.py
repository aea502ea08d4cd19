"""gunicorn settings used by ``make run`` and the production units: a dead worker's live gauges
are dropped from the summed metrics (its counters stay, so totals never go down); each worker
publishes the outbox's MQTT messages over its own broker connection."""
import os

from portal_server.core import outbox


def child_exit(server, worker):  # noqa: ARG001 - gunicorn's hook signature
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess
        multiprocess.mark_process_dead(worker.pid)


def post_fork(server, worker):  # noqa: ARG001 - gunicorn's hook signature
    # A web worker lives long and keeps one broker connection: it publishes the outbox's MQTT
    # messages itself instead of queueing a job for each (core.outbox.DIRECT_MQTT).
    outbox.DIRECT_MQTT = True
