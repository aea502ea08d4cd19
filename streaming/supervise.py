"""The one ffmpeg supervisor, for live meetings and for relayed channels.

``supervise(job)`` runs the job's ffmpeg, calls ``job.tick()`` while it runs (playlists, status),
stops it when the tick says so, and restarts it after it exits for as long as ``job.restart_delay``
gives a delay (backoff). Meetings restart a few times while the encoder still publishes;
channels restart for ever with a growing backoff while their source is away.

``communitv meeting-supervisor <id>`` runs a meeting's supervisor as its own process (started by
the ``spawn_supervisor`` job); ``communitv channel-relays`` is the relays process of ``make run``
(every channel of the database, each under this supervisor). Settings from ``COMMUNITV_*``.
"""
from __future__ import annotations

import logging
import signal
import subprocess
import time
from pathlib import Path

log = logging.getLogger(__name__)

STOP = "stop"


class Job:
    """What a supervised ffmpeg does; subclasses fill in the hooks."""

    name = "ffmpeg"
    log_path: Path
    poll_s = 0.25

    def command(self, restarts: int) -> tuple[list[str], str] | None:
        """(argv, mode) of the next ffmpeg, or None to give up."""
        raise NotImplementedError

    def started(self, proc: subprocess.Popen, mode: str, restarts: int) -> None:
        """ffmpeg ``proc`` is running."""

    def tick(self, proc: subprocess.Popen) -> str | None:
        """Called every ``poll_s`` while ffmpeg runs; return STOP to stop it."""
        return None

    def exited(self, rc: int | None) -> None:
        """ffmpeg is gone (by itself or stopped)."""

    def restart_delay(self, restarts: int) -> float | None:
        """Seconds to wait before restart number ``restarts`` + 1, or None to stop supervising."""
        return None


def stop_process(proc: subprocess.Popen, grace: float = 8.0) -> None:
    """SIGINT lets ffmpeg finish the segment and the playlist; SIGKILL if it does not."""
    if proc.poll() is not None:
        return
    try:
        proc.send_signal(signal.SIGINT)
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def backoff(restarts: int, first: float = 0.5, cap: float = 30.0) -> float:
    """0.5, 1, 2, 4 … seconds, at most ``cap``."""
    return min(cap, first * (2 ** max(0, restarts)))


def supervise(job: Job) -> dict:
    """Run ``job``'s ffmpeg under restart and backoff until the job says stop. Facts for logs/tests."""
    restarts = 0
    facts: dict = {"restarts": 0, "mode": None}
    job.log_path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        cmd = job.command(restarts)
        if cmd is None:
            break
        argv, mode = cmd
        facts["mode"] = mode
        with open(job.log_path, "a") as logf:
            logf.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {' '.join(argv)}\n")
            logf.flush()
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=logf,
                                    start_new_session=True)
        log.info("%s: ffmpeg pid %s (%s)", job.name, proc.pid, mode)
        try:
            job.started(proc, mode, restarts)
            while proc.poll() is None:
                if job.tick(proc) == STOP:
                    stop_process(proc)
                    break
                time.sleep(job.poll_s)
        finally:
            stop_process(proc)
        job.exited(proc.returncode)
        delay = job.restart_delay(restarts)
        if delay is None:
            break
        restarts += 1
        facts["restarts"] = restarts
        log.warning("%s: ffmpeg exited (%s); restart %d in %.1f s", job.name, proc.returncode, restarts, delay)
        time.sleep(delay)
    return facts
