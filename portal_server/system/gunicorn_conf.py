"""gunicorn settings used by ``make run`` and the production units: a dead worker's live gauges
are dropped from the summed metrics (its counters stay, so totals never go down)."""
import os


def child_exit(server, worker):  # noqa: ARG001 - gunicorn's hook signature
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess
        multiprocess.mark_process_dead(worker.pid)
