"""RQ job infrastructure: queues, enqueueing by dotted path, periodic jobs declared as data.

Jobs take ids, not ORM objects. Every job runs inside an app context made once per worker
process from the environment (``COMMUNITV_*``). With ``jobs_inline`` (tests, or no worker),
``enqueue`` runs the job at once in the current app context.
"""
from __future__ import annotations

import importlib
import logging
import threading
import time
from dataclasses import dataclass

from flask import current_app, has_app_context

log = logging.getLogger(__name__)

QUEUES = ("high", "default", "media")


@dataclass(frozen=True)
class PeriodicJob:
    """A job enqueued every ``every_s`` seconds by the worker's scheduler (at most once per tick)."""

    name: str
    func: str          # "package.module:function"
    every_s: int
    queue: str = "default"
    timeout_s: int = 300


#: Filled by features' ``init_app`` via ``register_periodic``.
PERIODIC: dict[str, PeriodicJob] = {}


def register_periodic(job: PeriodicJob) -> None:
    PERIODIC[job.name] = job


#: Job paths renamed since a release, old → current. A queued job keeps its path string in Redis
#: (the argument of ``run``), so a job queued by the old version before an upgrade would fail with
#: an ImportError after it; ``resolve`` runs the current function instead. Keep an entry at least
#: one release after the rename; add one whenever a job function moves.
RENAMED = {
    # abd5aa5: device_fleet took the feature shape (jobs in tasks.py).
    "device_fleet.operations:publish_commands": "device_fleet.tasks:publish_commands",
    # fba3203: speech clips moved from care to core (same speech_clips table, same clip id).
    "portal_server.care.tasks:synthesise_speech": "portal_server.core.speech:make",
}


def resolve(path: str):
    """The function of a job path ``package.module:function`` (a renamed one: its current place)."""
    if path in RENAMED:
        log.info("job path %s was renamed: running %s", path, RENAMED[path])
        path = RENAMED[path]
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


_app = None
_factory = None


def set_app_factory(factory) -> None:
    """The app factory a worker process builds its app with (``create_app`` registers itself: core
    never imports the app, DESIGN §1)."""
    global _factory
    _factory = factory


def _worker_app():
    global _app
    if _app is None:
        if _factory is None:
            raise RuntimeError("no app factory: start workers with `communitv worker`")
        _app = _factory()
    return _app


def run(path: str, *args, **kwargs):
    """Entry point of every queued job: resolve ``path`` and call it inside an app context."""
    func = resolve(path)
    if has_app_context():
        return func(*args, **kwargs)
    app = _worker_app()
    _after_fork(app)
    with app.app_context():
        return func(*args, **kwargs)


def run_exclusive(path: str):
    """A periodic job's body, run by one worker at a time on every app host together (a lock that
    holds across hosts: core.locks): a tick claimed twice, or a run still going when the next tick
    comes on another host, skips instead of publishing or escalating twice."""
    from . import locks
    settings = current_app.config["SETTINGS"]
    with locks.held("periodic:" + path, settings.data_dir / "locks") as held:
        if held is None:
            log.info("periodic %s: already running on another worker, skipped", path)
            return {"skipped": "running elsewhere"}
        return resolve(path)()


_pid = None


def _after_fork(app) -> None:
    """RQ forks a work horse per job: never share the parent's database connections."""
    global _pid
    import os

    if _pid != os.getpid():
        _pid = os.getpid()
        eng = app.extensions.get("db_engine")
        if eng is not None:
            eng.dispose(close=False)


def queue(name: str = "default"):
    from rq import Queue

    from . import redis as core_redis
    return Queue(name, connection=core_redis.client())


def enqueue(path: str, *args, queue_name: str = "default", job_id: str | None = None,
            timeout_s: int = 600, retry: tuple = (), **kwargs):
    """Queue ``path(*args, **kwargs)``; inline when the app says so. Returns the RQ job or result.

    ``retry``: seconds between retries of a failing job (RQ ``Retry``, e.g. (1, 2, 5, 10, 30))."""
    settings = current_app.config["SETTINGS"]
    if settings.jobs_inline:
        return run(path, *args, **kwargs)
    from rq import Retry

    q = queue(queue_name)
    # One Redis round trip (MULTI…EXEC): left to itself RQ sends the queue's registration and the
    # job in two pipelines, and every application from a box waits for both after its commit.
    with q.connection.pipeline() as pipe:
        job = q.enqueue_call(run, args=(path, *args), kwargs=kwargs, job_id=job_id,
                             timeout=timeout_s, result_ttl=3600, failure_ttl=7 * 86400,
                             retry=Retry(max=len(retry), interval=list(retry)) if retry else None,
                             pipeline=pipe)
        pipe.execute()
    return job


def run_due_periodic(redis_client, now: float | None = None) -> list[str]:
    """Enqueue every periodic job whose tick has come; idempotent across workers (SET NX)."""
    from rq import Queue

    now = now or time.time()
    started = []
    for job in PERIODIC.values():
        tick = int(now // job.every_s)
        if redis_client.set(f"ctv:periodic:{job.name}:{tick}", 1, nx=True, ex=job.every_s * 2):
            Queue(job.queue, connection=redis_client).enqueue_call(
                run, args=("portal_server.core.jobs:run_exclusive", job.func), timeout=job.timeout_s, result_ttl=600,
                description=f"periodic {job.name}")
            started.append(job.name)
    return started


def start_scheduler(app, stop: threading.Event, interval_s: float = 1.0) -> threading.Thread:
    """A thread enqueueing periodic jobs until ``stop`` is set."""
    from . import redis as core_redis

    def loop():
        with app.app_context():
            r = core_redis.client()
            while not stop.is_set():
                try:
                    names = run_due_periodic(r)
                    if names:
                        log.info("periodic jobs enqueued: %s", ", ".join(names))
                except Exception:  # keep scheduling through a Redis blip
                    log.exception("periodic scheduler tick failed")
                stop.wait(interval_s)

    t = threading.Thread(target=loop, name="ctv-periodic", daemon=True)
    t.start()
    return t


#: Seconds between an RQ worker's maintenance runs (cleaning registries, restarting its scheduler).
MAINTENANCE_S = 15


def _worker_class():
    from rq import Worker

    class StoppableWorker(Worker):
        """RQ's worker, except that SIGTERM while Redis is away stops it: RQ's handler asks Redis
        for the worker's state, and its dequeue loop swallows the connection error (the worker
        then ignored every SIGTERM until Redis came back)."""

        def request_stop(self, signum, frame):
            import redis as redis_lib
            try:
                super().request_stop(signum, frame)
            except redis_lib.RedisError:
                raise SystemExit(0) from None

    return StoppableWorker


def work(app, burst: bool = False) -> None:
    """The `communitv worker` command: an RQ worker on every queue plus the periodic scheduler."""
    global _app
    import redis as redis_lib

    _Worker = _worker_class()

    from . import redis as core_redis

    _app = app
    stop = threading.Event()
    if not burst:
        start_scheduler(app, stop)
    with app.app_context():
        conn = core_redis.client()
        queues = [queue(n) for n in QUEUES]
        try:
            while True:
                # Redis away (not up yet, restarting): wait for it instead of exiting, which under
                # `make run` would take the whole stack down with the worker.
                wait_for_redis(conn)
                # with_scheduler: RQ puts a job's Retry intervals in its scheduled registry, and only a
                # worker running the scheduler moves them back to the queue (alert delivery retries).
                # RQ's scheduler process dies on a Redis error and the worker starts it again at its
                # next maintenance (every 10 minutes by default): every MAINTENANCE_S instead.
                w = None
                try:
                    w = _Worker(queues, connection=conn, maintenance_interval=MAINTENANCE_S)
                    w.work(burst=burst, with_scheduler=True)
                except (redis_lib.RedisError, SystemExit):  # RQ's own teardown after losing Redis raises too
                    log.warning("worker: Redis went away under RQ", exc_info=True)
                if burst or (w is not None and w._shutdown_requested_date is not None):  # done, or SIGTERM
                    break
                log.warning("worker: RQ stopped on an error (Redis went away?); starting it again")
        finally:
            stop.set()


def wait_for_redis(conn, max_delay_s: float = 10.0) -> None:
    """Return once Redis answers, saying what is wrong and backing off (1, 2, 4 … 10 s) until then."""
    import signal

    import redis as redis_lib

    # A stopped RQ worker leaves its handlers behind (they ask Redis for the worker's state): while
    # we wait, SIGTERM and Ctrl-C simply end the process.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    delay = 1.0
    while True:
        try:
            conn.ping()
            return
        except redis_lib.RedisError as exc:
            log.warning("worker: Redis not reachable (%s); retrying in %.0fs", exc, delay)
            time.sleep(delay)
            delay = min(max_delay_s, delay * 2)
