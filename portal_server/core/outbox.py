"""The transactional outbox (DESIGN §1 "One way out of a transaction").

Operations never commit, publish or start threads. They add what must follow a successful
commit to the session's outbox::

    outbox.mqtt(protocol.region_notice_topic(code), payload)        # an MQTT message
    outbox.job("portal_server.feedback.tasks:notify", order.id)      # an RQ job
    outbox.call("stb_app.snapshots:invalidate", paths, "*.html")     # a quick after-commit call
    outbox.job("portal_server.alerts.tasks:deliver", codes, queue="high", eager=True,
               retry=(1, 2, 5, 10, 30))                              # now, and retried if it fails

A file the write puts on disk before the commit (a photo) is registered the other way round::

    outbox.file_written(media / rel, root=media)   # deleted unless the transaction commits

The handler (or job) commits once; one ``after_commit`` hook hands the outbox to the job queue
(inline when ``jobs_inline``). A transaction that ends without a commit (rollback, refused commit,
a failed request's session closed) drops it and deletes the files it wrote; a savepoint rolled
back drops only what was queued inside it. MQTT messages are sent by the job
``core.outbox:deliver`` which waits for the broker's PUBACK and raises (so RQ retries) when the
broker is away.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.orm import Session

from .db import session

log = logging.getLogger(__name__)

KEY = "ctv_outbox"
#: Where each open savepoint began in the outbox: {id(savepoint): len(outbox)}.
MARKS = "ctv_outbox_marks"
#: Files written in the session's transaction, deleted unless it commits: [(file, root)].
FILES = "ctv_outbox_files"


@dataclass
class Entry:
    """One thing to do after commit: ``kind`` is ``mqtt``, ``job`` or ``call``."""

    kind: str
    path: str
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    queue: str = "default"
    #: Run at once after commit (in this process); only if that fails, enqueue it.
    eager: bool = False
    #: Seconds between RQ retries of the enqueued job (RQ ``Retry``); empty = no retry.
    retry: tuple = ()
    #: Hard time limit of the queued job.
    timeout_s: int = 600


def _pending(sess=None) -> list[Entry]:
    sess = sess if sess is not None else session()
    return sess.info.setdefault(KEY, [])


def mqtt(topic: str, payload, qos: int = 1, retain: bool = False, expiry_s: int | None = None) -> None:
    """After commit, publish ``payload`` (dict → JSON, None → empty, clears a retained topic)."""
    _pending().append(Entry("mqtt", "portal_server.core.outbox:deliver",
                            (topic, payload), {"qos": qos, "retain": retain, "expiry_s": expiry_s},
                            queue="high", retry=(1, 5, 30)))


def job(path: str, *args, queue: str = "default", eager: bool = False, retry: tuple = (), timeout_s: int = 600,
        **kwargs) -> None:
    """After commit, enqueue the job ``path`` ("package.module:function") with ids as arguments.

    ``eager``: run it at once after commit (what must reach boxes within a second: alerts) and
    enqueue it only when that fails; ``retry``: the seconds between the queued job's retries."""
    _pending().append(Entry("job", path, args, kwargs, queue=queue, eager=eager, retry=tuple(retry),
                            timeout_s=timeout_s))


def call(path: str, *args, **kwargs) -> None:
    """After commit, call ``path`` in this process (cheap, local work such as cache invalidation)."""
    _pending().append(Entry("call", path, args, kwargs))


def file_written(path, root=None) -> None:
    """A file this transaction wrote before its commit (a visit's photo): kept when the transaction
    commits, deleted when it ends any other way (rollback, a commit the database refuses, a failed
    request whose session is closed), so no file stays behind a row that was never written. Empty
    folders between the file and ``root`` go with it."""
    session().info.setdefault(FILES, []).append((Path(path), Path(root) if root is not None else None))


def _delete_files(files) -> None:
    for path, root in files:
        try:
            path.unlink(missing_ok=True)
            log.info("outbox: %s removed (its transaction did not commit)", path)
        except OSError:
            log.warning("outbox: could not remove %s written by a transaction that did not commit", path,
                        exc_info=True)
            continue
        folder = path.parent
        while root is not None and root in folder.parents:
            try:
                folder.rmdir()
            except OSError:  # not empty (another photo of the same row) or gone: stop there
                break
            folder = folder.parent


def pending() -> list[Entry]:
    """What this session will hand over at commit (tests and debugging)."""
    return list(_pending())


def deliver(topic: str, payload, qos: int = 1, retain: bool = False, expiry_s: int | None = None) -> None:
    """The job that publishes one MQTT message and waits for the broker's acknowledgement."""
    from . import mqtt as core_mqtt

    info = core_mqtt.publish(topic, payload, qos=qos, retain=retain, expiry_s=expiry_s)
    if qos > 0 and info is not None and not info.is_published():
        raise ConnectionError(f"broker did not acknowledge {topic}")


#: MQTT messages are published by this process itself, not by a queued job (``_publish_now``): set
#: by the web server's workers (``system.gunicorn_conf``), long-lived processes that keep one
#: connection to the broker. Other processes (RQ's work horses live for one job) queue the job.
DIRECT_MQTT = False
#: Seconds a message published directly may wait for the broker's PUBACK before the job takes over.
ACK_WAIT_S = 10.0


def _publish_now(e: Entry) -> None:
    """Publish an outbox message through this process's broker connection without waiting: the
    PUBACK comes back to paho's network thread and ``_Unacked`` checks it. When the connection is
    down, or the broker does not acknowledge within ``ACK_WAIT_S``, the RQ job ``deliver`` takes
    over with its retries (at least once, as QoS 1 is). This spares each message a queued job — a
    Redis round trip here and a forked work horse in the worker — on paths such as a box's
    application, where fifty may come at once."""
    from . import jobs
    from . import mqtt as core_mqtt

    pub = core_mqtt.publisher()
    if pub.connected:
        try:
            info = pub.publish(*e.args, wait=False, **e.kwargs)
        except Exception:  # noqa: BLE001 - the queued job below delivers it
            log.warning("outbox: direct publish to %s failed; queued", e.args[0], exc_info=True)
        else:
            if e.kwargs.get("qos", 1) > 0:
                _UNACKED.watch(info, e)
            return
    jobs.enqueue(e.path, *e.args, queue_name=e.queue, retry=e.retry, timeout_s=e.timeout_s, **e.kwargs)


class _Unacked:
    """Messages ``_publish_now`` sent and the broker has not acknowledged yet; a thread of this
    process hands the ones older than ``ACK_WAIT_S`` to the queued job (in the app that sent them)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._items: list = []   # (deadline, paho MessageInfo, Entry, app)
        self._pid = None

    def watch(self, info, e: Entry) -> None:
        from flask import current_app

        with self._lock:
            self._items.append((time.monotonic() + ACK_WAIT_S, info, e, current_app._get_current_object()))
            if self._pid != os.getpid():   # first message of this process (or of a forked child)
                self._pid = os.getpid()
                threading.Thread(target=self._run, name="outbox-unacked", daemon=True).start()

    def due(self, now: float) -> list:
        """Forget the acknowledged messages; → (entry, app) of those past their wait (forgotten too)."""
        with self._lock:
            late = [(e, app) for t, info, e, app in self._items if t <= now and not info.is_published()]
            self._items = [x for x in self._items if x[0] > now and not x[1].is_published()]
        return late

    def _run(self) -> None:
        from . import jobs

        while True:
            time.sleep(0.5)
            for e, app in self.due(time.monotonic()):
                log.warning("outbox: broker did not acknowledge %s within %.0f s; queued", e.args[0], ACK_WAIT_S)
                try:
                    with app.app_context():
                        jobs.enqueue(e.path, *e.args, queue_name=e.queue, retry=e.retry, timeout_s=e.timeout_s,
                                     **e.kwargs)
                except Exception:  # noqa: BLE001 - Redis away too: nothing left to try
                    log.exception("outbox: %s lost (no PUBACK, could not queue it)", e.args[0])


_UNACKED = _Unacked()


def _inline(e: Entry) -> None:
    """Run a job now, in a thread of its own: the committing session cannot emit SQL inside its
    ``after_commit`` event, and the job gets its own scoped session as in a worker."""
    from flask import current_app

    from .jobs import resolve

    app = current_app._get_current_object()
    errors: list[BaseException] = []

    def run():
        with app.app_context():
            try:
                resolve(e.path)(*e.args, **e.kwargs)
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)
            finally:
                session.remove()

    t = threading.Thread(target=run, name=f"outbox-{e.path}")
    t.start()
    t.join()
    if errors:
        raise errors[0]


def _after_commit(sess) -> None:
    if sess.in_nested_transaction():
        # A savepoint released (``add_once``, ``begin_nested``): SQLAlchemy calls this hook for it
        # too, but nothing is committed until the outermost transaction is.
        return
    sess.info.pop(FILES, None)  # committed: the files belong to rows that exist
    entries = sess.info.pop(KEY, None)
    if not entries:
        return
    from flask import current_app, has_app_context

    from . import jobs
    from .jobs import resolve

    if not has_app_context():
        log.error("outbox: commit outside an app context; dropped %d entries", len(entries))
        return
    inline = current_app.config["SETTINGS"].jobs_inline
    for e in entries:
        try:
            if e.kind == "call":
                resolve(e.path)(*e.args, **e.kwargs)
            elif inline:
                _inline(e)
            elif e.kind == "mqtt" and DIRECT_MQTT:
                _publish_now(e)
            elif e.eager:
                try:
                    _inline(e)
                except Exception:  # broker or database away: the queue takes over, with retries
                    log.warning("outbox: %s failed at once; queued with retries", e.path, exc_info=True)
                    jobs.enqueue(e.path, *e.args, queue_name=e.queue, retry=e.retry, timeout_s=e.timeout_s,
                                 **e.kwargs)
            else:
                jobs.enqueue(e.path, *e.args, queue_name=e.queue, retry=e.retry, timeout_s=e.timeout_s, **e.kwargs)
        except Exception:  # the write is committed; a lost side effect is logged, never raised
            log.exception("outbox: %s %s failed after commit", e.kind, e.path)


def _after_transaction_create(sess, transaction) -> None:
    """A savepoint begins: remember how much of the outbox came before it."""
    if transaction.nested:
        sess.info.setdefault(MARKS, {})[id(transaction)] = len(sess.info.get(KEY, ()))


def _after_soft_rollback(sess, previous_transaction) -> None:
    """A savepoint rolled back (``add_once`` losing a race): drop only what was queued inside it.
    (SQLAlchemy's ``after_rollback`` fires for a savepoint too; it dropped the whole outbox.)"""
    if previous_transaction.nested:
        mark = sess.info.get(MARKS, {}).pop(id(previous_transaction), None)
        if mark is not None and KEY in sess.info:
            del sess.info[KEY][mark:]


def _after_transaction_end(sess, transaction) -> None:
    """The outermost transaction ended. After a commit ``_after_commit`` took everything; anything
    left belongs to one that did not commit (rollback, refused commit, a failed request's session
    closed): its outbox is dropped and the files it wrote are deleted. A savepoint's end leaves
    both to the outer transaction."""
    if transaction.parent is not None:
        return
    sess.info.pop(KEY, None)
    sess.info.pop(MARKS, None)
    if sess.info.get(FILES):
        _delete_files(sess.info.pop(FILES))


_installed = False


def install() -> None:
    """Listen on every session's commit and rollback (idempotent; called by ``create_app``)."""
    global _installed
    if _installed:
        return
    _installed = True
    event.listen(Session, "after_commit", _after_commit)
    event.listen(Session, "after_transaction_create", _after_transaction_create)
    event.listen(Session, "after_soft_rollback", _after_soft_rollback)
    event.listen(Session, "after_transaction_end", _after_transaction_end)
