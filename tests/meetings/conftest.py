"""Fixtures of the meetings tests: meetings made through the API, and a real nginx with the RTMP
module (the config of ``stack.write_nginx``) whose callbacks reach the app served by ``live_server``."""
from __future__ import annotations

import datetime as dt
import subprocess
import time

import pytest

from portal_server import stack
from tests.conftest import _stop, wait_port

V001 = "990101001001"
V002 = "990101001002"


def make_meeting(client, auth, user="v001-editor", region=V001, start_in=dt.timedelta(minutes=10),
                 length=dt.timedelta(hours=1), title="村民议事会", **extra):
    now = dt.datetime.now(dt.UTC)
    r = client.post("/api/v1/meetings", headers=auth.headers(user),
                    json={"title": title, "region_code": region, "starts_at": (now + start_in).isoformat(),
                          "ends_at": (now + start_in + length).isoformat(), "agenda": "一、道路硬化\n二、群众提问",
                          **extra})
    assert r.status_code == 201, r.get_data(as_text=True)
    from portal_server.core.db import session
    session.remove()  # the request ran in the test's app context: release SQLite's write lock
    return r.get_json()


@pytest.fixture
def meeting(client, auth):
    return make_meeting(client, auth)


@pytest.fixture
def rtmp_stack(app, live_server, tmp_path):
    """nginx (RTMP + HTTP) on free ports; on_publish/on_publish_done go to the live app.
    Yields {"rtmp": rtmp://.../live, "http": nginx's HTTP base, "app": the app's base URL}."""
    settings = app.config["SETTINGS"]
    upstream = int(live_server.rsplit(":", 1)[1])
    run_dir = tmp_path / "nginx"
    for _attempt in range(3):  # a free port can be taken by another process before nginx binds it
        rtmp_port, http_port = stack.free_port(), stack.free_port()
        settings.rtmp_url = f"rtmp://127.0.0.1:{rtmp_port}/live"
        # As `make run`: RTMP in its own one-worker nginx, HTTP (/hls/ files, proxy) in another.
        http_conf = stack.write_nginx(run_dir, settings, http_port, upstream)
        rtmp_conf = stack.write_nginx_rtmp(run_dir, settings, rtmp_port, upstream)
        procs = [subprocess.Popen(["nginx", "-c", str(conf), "-p", str(run_dir)], stdout=subprocess.DEVNULL,
                                  stderr=open(tmp_path / f"{conf.stem}.stderr", "w")) for conf in (http_conf, rtmp_conf)]
        try:
            wait_port(http_port, proc=procs[0])
            wait_port(rtmp_port, proc=procs[1])
        except RuntimeError:
            pass  # exited: tried again below
        time.sleep(0.3)
        if all(p.poll() is None for p in procs):
            break
        for p in procs:
            _stop(p)
    else:
        raise RuntimeError("nginx could not bind free ports three times")
    yield {"rtmp": settings.rtmp_url, "http": f"http://127.0.0.1:{http_port}", "app": live_server,
           "log": run_dir / "log" / "nginx-rtmp-error.log"}
    for proc in procs:
        _stop(proc)


def push(rtmp_url: str, key: str, seconds: float = 14, size: str = "1280x720", rate: int = 30,
         extra: tuple = ()) -> subprocess.Popen:
    """ffmpeg pushing testsrc + sine like OBS set as the staff page says (H.264 High + AAC in FLV,
    keyframe every 1 s: copied into the meeting's 1 s segments)."""
    argv = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re",
            "-f", "lavfi", "-i", f"testsrc=size={size}:rate={rate}",
            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
            "-t", str(seconds), "-c:v", "libx264", "-preset", "ultrafast", "-g", str(rate),
            "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k", *extra, "-f", "flv", f"{rtmp_url}/{key}"]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def wait_for(fn, timeout: float, interval: float = 0.25, what: str = "condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"{what} not reached within {timeout}s (last: {last!r})")


def vlc_plays(url: str, seconds: float = 6.0) -> dict:
    """libVLC with dummy outputs plays ``url`` (streaming's playback probe)."""
    from streaming.probe import plays
    return plays(url, seconds)


def box_serials(village: str) -> list[str]:
    """Serials of the household boxes of ``village`` (demo seed order)."""
    from sqlalchemy import select

    from portal_server.core.db import session
    from portal_server.core.regions import region_by_code
    from portal_server.core.terminals import Terminal

    region = region_by_code(village)
    serials = list(session.scalars(select(Terminal.serial).where(Terminal.region_id == region.id,
                                                                 Terminal.kind == "household")
                                   .order_by(Terminal.serial)))
    session.remove()
    return serials


def fresh(fn):
    """``fn()`` on fresh rows, never keeping SQLite's write lock (every transaction takes it) from
    the live server's threads and the HLS job."""
    from portal_server.core.db import session

    session.remove()
    try:
        return fn()
    finally:
        session.remove()
