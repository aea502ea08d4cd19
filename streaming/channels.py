"""Relayed live channels: ffmpeg pulls a head-end source (UDP/RTP multicast or unicast MPEG-TS,
RTSP, SRT, HTTP TS or HLS) into HLS under ``$HLS/channels/<xmltv id>/``, supervised by the one
supervisor of streaming.supervise (restart with backoff while the source is away).

Files of a channel:

- ``ffmpeg.m3u8``: ffmpeg's own short sliding playlist (2 s segments named ``seg_<run>_<n>.ts``,
  ``EXT-X-PROGRAM-DATE-TIME`` on each, nothing deleted by ffmpeg);
- ``live.m3u8``: the live playlist the boxes play, derived by the supervisor so that it carries on
  across ffmpeg restarts (media sequence continues, a restart adds a DISCONTINUITY and the
  DISCONTINUITY-SEQUENCE advances when it leaves, RFC 8216 §6.2.2);
- ``idx/<YYYYMMDDHH>.m3u8``: the catch-up index, one fragment per UTC hour (program date-time,
  duration, segment), appended as segments appear; ``catchup_playlist`` reads the hours of a
  window only, and the cleanup job drops segments and hours older than ``catchup_hours``.

HTTP(S) sources: the host was checked against ``COMMUNITV_CHANNEL_SOURCES`` when the channel was
created, so neither ffmpeg nor ffprobe follows a redirect (``max_redirects`` 0: a redirect is a
failed read), and before every ffmpeg start ``check_http_source`` refuses a source that answers
3xx and an HLS source whose playlists name a URI outside the allowed networks (the HLS demuxer
would open those itself).

Status: ``starting`` until the first segment, ``live`` while segments come, ``source_lost`` when
the source cannot be probed or ffmpeg writes nothing for ``LOST_AFTER_S`` (a NOC alarm; boxes show
a slate), ``live`` again by itself when it returns.
"""
from __future__ import annotations

import datetime as dt
import fcntl
import json
import logging
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import ffmpeg
import requests
from flask import current_app
from sqlalchemy import select

from epg import operations as epg_ops
from epg import queries as epg_queries
from epg.models import Channel
from portal_server.core.api import ApiError
from portal_server.core.db import session

from . import hls, supervise

log = logging.getLogger(__name__)

SEGMENT_S = hls.SEGMENT_S
LIVE_WINDOW = hls.LIVE_WINDOW
#: ffmpeg's own playlist keeps this many segments (the supervisor reads it every tick).
FFMPEG_LIST = 10
#: No new segment for this long while ffmpeg runs → the source is lost (ffmpeg is restarted).
LOST_AFTER_S = 12.0
#: The source's read timeout given to ffmpeg/ffprobe (µs).
IO_TIMEOUT_US = 5_000_000
PROBE_S = 4.5

_threads: dict[int, tuple[threading.Thread, threading.Event]] = {}


def channel_dir(xmltv_id: str) -> Path:
    return current_app.config["SETTINGS"].hls_dir / "channels" / xmltv_id


# ffmpeg ------------------------------------------------------------------------------------------

def input_options(url: str) -> dict:
    """Read timeout (so a silent source ends ffmpeg) and the demuxer options of the source's scheme."""
    scheme = url.split(":", 1)[0].lower()
    if scheme in ("udp", "rtp"):
        return {"timeout": IO_TIMEOUT_US, "fflags": "+genpts+discardcorrupt"}
    if scheme == "rtsp":
        return {"timeout": IO_TIMEOUT_US, "rtsp_transport": "tcp", "fflags": "+genpts"}
    if scheme in ("http", "https"):
        # Never follow a redirect: its target was not checked against the allowed networks.
        return {"rw_timeout": IO_TIMEOUT_US, "max_redirects": 0, "fflags": "+genpts"}
    return {"rw_timeout": IO_TIMEOUT_US, "fflags": "+genpts"}


class SourceRefused(ValueError):
    """The source points ffmpeg somewhere it may not go (a redirect, a URI outside the networks)."""


#: Most bytes of a playlist read by the check; nested playlists followed at most this deep.
PLAYLIST_MAX_BYTES = 1 << 20
PLAYLIST_DEPTH = 2


def check_http_source(url: str, depth: int = 0, timeout: float = 5.0) -> None:
    """An HTTP(S) source, read as ffmpeg would but without following redirects: a 3xx answer, or
    an HLS playlist naming (directly or in a variant playlist) a URI whose scheme or host
    ``COMMUNITV_CHANNEL_SOURCES`` does not allow, raises ``SourceRefused``. Other failures (the
    source is down) are left to ffprobe."""
    if urlsplit(url).scheme.lower() not in ("http", "https"):
        return
    with requests.Session() as http:
        http.trust_env = False  # the source itself, not a proxy of the environment
        try:
            r = http.get(url, stream=True, allow_redirects=False, timeout=timeout)
        except requests.RequestException:
            return
        with r:
            if 300 <= r.status_code < 400:
                raise SourceRefused(f"the source redirects ({r.status_code}) to {r.headers.get('Location', '?')[:200]}")
            ctype = r.headers.get("Content-Type", "").lower()
            if r.status_code != 200 or not (urlsplit(url).path.lower().endswith(".m3u8") or "mpegurl" in ctype):
                return
            body = r.raw.read(PLAYLIST_MAX_BYTES, decode_content=True).decode("utf-8", "replace")
    if not body.lstrip().startswith("#EXTM3U"):
        return
    nested = []
    for line in body.splitlines():
        line = line.strip()
        uris = [line] if line and not line.startswith("#") else []
        if line.startswith("#") and 'URI="' in line:  # EXT-X-KEY, EXT-X-MEDIA, EXT-X-MAP ...
            uris = [part.split('"', 1)[0] for part in line.split('URI="')[1:]]
        for uri in uris:
            target = urljoin(url, uri)
            try:
                epg_ops.validate_source(target)
            except ApiError as e:  # the 400 of an outside host or scheme
                raise SourceRefused(f"the playlist names {target[:200]}: {e.message}") from None
            if urlsplit(target).path.lower().endswith(".m3u8"):
                nested.append(target)
    if depth < PLAYLIST_DEPTH:
        for target in nested[:8]:
            check_http_source(target, depth + 1, timeout)


def probe(url: str, seconds: float = PROBE_S, timeout: float = 12.0) -> hls.InputInfo:
    """What the source carries (codecs, size, rate, keyframe interval), under a hard timeout."""
    opts = input_options(url)
    argv = ["ffprobe", "-v", "error"]
    for k, v in opts.items():
        if k != "fflags":
            argv += [f"-{k}", str(v)]
    argv += ["-read_intervals", f"%+{seconds}", "-show_streams", "-show_packets",
             "-show_entries", "packet=stream_index,pts_time,flags", "-of", "json", url]
    out = subprocess.run(argv, capture_output=True, timeout=timeout, check=True)
    return hls.parse_probe(json.loads(out.stdout or b"{}"))


def _hls_opts(out_dir: Path, run: int) -> dict:
    return dict(f="hls", hls_time=SEGMENT_S, hls_list_size=FFMPEG_LIST,
                hls_flags="program_date_time+independent_segments+temp_file",
                hls_segment_filename=str(out_dir / f"seg_{run}_%06d.ts"), start_number=0)


def build_relay_command(url: str, out_dir: Path, info: hls.InputInfo | None, run: int,
                        low: bool = False) -> tuple[list[str], str]:
    """ffmpeg relaying ``url`` into ``out_dir`` (copy when the codecs fit the boxes, else transcode);
    with ``low`` also the 480p rendition (``hls.low_output``, as meetings) into ``out_dir/low``."""
    src = ffmpeg.input(url, **input_options(url))
    streams, opts, mode = hls.encode_args(src, info)
    out = ffmpeg.output(*streams, str(out_dir / "ffmpeg.m3u8"), **opts, **_hls_opts(out_dir, run))
    if low:
        (out_dir / "low").mkdir(exist_ok=True)
        out = ffmpeg.merge_outputs(out, hls.low_output(src, out_dir / "low" / "ffmpeg.m3u8",
                                                       _hls_opts(out_dir / "low", run)))
    return hls.finish(out), mode


def write_master(out_dir: Path, width: int, height: int) -> None:
    """``index.m3u8``: the relayed rendition and the 480p one; players pick by bandwidth."""
    hls.write_master(out_dir, width, height, main="live.m3u8", low="low/live.m3u8")


# Playlists ---------------------------------------------------------------------------------------

class LiveWindow:
    """The live playlist of the newest ``size`` segments, continuous across ffmpeg restarts."""

    def __init__(self, size: int = LIVE_WINDOW, first_seq: int | None = None):
        self.size = size
        self.entries: list[tuple[list[str], bool]] = []  # (lines ending with the URI, discontinuity before)
        self.seq = int(time.time()) if first_seq is None else first_seq  # media sequence of entries[0]
        self.disc_removed = 0  # DISCONTINUITY tags that left the window

    def add(self, lines: list[str], discontinuity: bool) -> None:
        self.entries.append(([l for l in lines if l != "#EXT-X-DISCONTINUITY"], discontinuity))
        while len(self.entries) > self.size:
            _l, d = self.entries.pop(0)
            self.seq += 1
            self.disc_removed += int(d)

    def render(self) -> str:
        # The first segment is shown without its tag: its tag counts as gone (§6.2.2).
        disc_seq = self.disc_removed + int(bool(self.entries) and self.entries[0][1])
        target = max([SEGMENT_S] + [_duration(lines) for lines, _d in self.entries])
        out = ["#EXTM3U", "#EXT-X-VERSION:3", f"#EXT-X-TARGETDURATION:{int(target + 0.999)}",
               f"#EXT-X-MEDIA-SEQUENCE:{self.seq}", f"#EXT-X-DISCONTINUITY-SEQUENCE:{disc_seq}",
               "#EXT-X-INDEPENDENT-SEGMENTS"]
        for i, (lines, d) in enumerate(self.entries):
            if d and i > 0:
                out.append("#EXT-X-DISCONTINUITY")
            out += lines
        return "\n".join(out) + "\n"


def _duration(lines: list[str]) -> float:
    for l in lines:
        if l.startswith("#EXTINF:"):
            return float(l.split(":", 1)[1].split(",")[0])
    return 0.0


def _pdt(lines: list[str]) -> dt.datetime | None:
    for l in lines:
        if l.startswith("#EXT-X-PROGRAM-DATE-TIME:"):
            try:
                return dt.datetime.fromisoformat(l.split(":", 1)[1].strip())
            except ValueError:
                return None
    return None


def index_path(out_dir: Path, ts: dt.datetime) -> Path:
    return out_dir / "idx" / (ts.astimezone(dt.UTC).strftime("%Y%m%d%H") + ".m3u8")


def append_index(out_dir: Path, lines: list[str], discontinuity: bool) -> None:
    """Add one segment to the catch-up index of its hour."""
    pdt = _pdt(lines)
    if pdt is None:
        return
    path = index_path(out_dir, pdt)
    path.parent.mkdir(exist_ok=True)
    body = [l for l in lines if l != "#EXT-X-DISCONTINUITY"]
    with open(path, "a") as fh:
        fh.write("\n".join((["#EXT-X-DISCONTINUITY"] if discontinuity else []) + body) + "\n")


def _read_index(text: str):
    """(pdt, duration, [lines], discontinuity) of each segment of an index fragment; a plain
    line scan (the catch-up of a 2-hour window reads ~3,600 of them)."""
    disc, dur, pdt, lines = False, 0.0, None, []
    for line in text.split("\n"):
        if not line:
            continue
        if line[0] != "#":
            lines.append(line)
            yield pdt, dur, lines, disc
            disc, dur, pdt, lines = False, 0.0, None, []
        elif line == "#EXT-X-DISCONTINUITY":
            disc = True
        else:
            if line.startswith("#EXTINF:"):
                dur = float(line[8:].split(",", 1)[0])
            elif line.startswith("#EXT-X-PROGRAM-DATE-TIME:"):
                try:
                    pdt = dt.datetime.fromisoformat(line[25:].strip())
                except ValueError:
                    pdt = None
            lines.append(line)


def catchup_entries(out_dir: Path, start: dt.datetime, end: dt.datetime) -> list[tuple[list[str], bool, float]]:
    """Segments (lines, discontinuity, duration) overlapping [start, end) by their
    EXT-X-PROGRAM-DATE-TIME, from the hourly index, oldest first."""
    out: list[tuple[list[str], bool, float]] = []
    hour = start.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0) - dt.timedelta(hours=1)
    while hour < end:
        path = index_path(out_dir, hour)
        hour += dt.timedelta(hours=1)
        try:
            text = path.read_text()
        except FileNotFoundError:
            continue
        for pdt, dur, lines, disc in _read_index(text):
            if pdt is None or pdt >= end or pdt + dt.timedelta(seconds=dur) <= start:
                continue
            out.append((lines, disc, dur))
    return out


def _first_kept(out_dir: Path, entries: list) -> int:
    """Index of the first entry whose segment is still on disk (cleanup removes the oldest first)."""
    lo, hi = 0, len(entries)
    while lo < hi:
        mid = (lo + hi) // 2
        if (out_dir / entries[mid][0][-1]).exists():
            hi = mid
        else:
            lo = mid + 1
    return lo


def catchup_playlist(out_dir: Path, start: dt.datetime, end: dt.datetime, uri_for) -> str | None:
    """A finished VOD playlist of [start, end) (None when nothing was kept); segment URIs by ``uri_for(name)``."""
    entries = catchup_entries(out_dir, start, end)
    entries = entries[_first_kept(out_dir, entries):]
    if not entries:
        return None
    target = max([SEGMENT_S] + [d for _l, _d, d in entries])
    out = ["#EXTM3U", "#EXT-X-VERSION:3", f"#EXT-X-TARGETDURATION:{int(target + 0.999)}", "#EXT-X-MEDIA-SEQUENCE:0",
           "#EXT-X-PLAYLIST-TYPE:VOD", "#EXT-X-INDEPENDENT-SEGMENTS"]
    for i, (lines, d, _dur) in enumerate(entries):
        if d and i > 0:
            out.append("#EXT-X-DISCONTINUITY")
        out += lines[:-1]
        out.append(uri_for(lines[-1]))
    out.append("#EXT-X-ENDLIST")
    return "\n".join(out) + "\n"


# The supervisor ----------------------------------------------------------------------------------

def _read_channel(channel_id: int) -> tuple[str, str, str, bool] | None:
    """(xmltv id, source URL, status, low rendition) read without holding a transaction; None when deleted."""
    try:
        row = session.execute(select(Channel.xmltv_id, Channel.source_url, Channel.status, Channel.low_rendition)
                              .where(Channel.id == channel_id)).first()
        return tuple(row) if row and row[1] else None
    finally:
        session.rollback()


def _set_status(channel_id: int, status: str) -> None:
    try:
        epg_ops.set_channel_status(channel_id, status)
        session.commit()
    except Exception:
        session.rollback()
        log.exception("channel %s: status %s not saved", channel_id, status)


def _set_facts(channel_id: int, **facts) -> None:
    try:
        epg_ops.set_relay_facts(channel_id, **facts)
        session.commit()
    except Exception:
        session.rollback()
        log.exception("channel %s: facts not saved", channel_id)


class ChannelJob(supervise.Job):
    """One channel's relay: probe, ffmpeg, live playlist and catch-up index, status."""

    def __init__(self, channel_id: int, xmltv_id: str, stop: threading.Event | None = None):
        settings = current_app.config["SETTINGS"]
        self.channel_id, self.xmltv_id = channel_id, xmltv_id
        self.stop = stop or threading.Event()
        self.name = f"channel {xmltv_id}"
        self.out_dir = channel_dir(xmltv_id)
        self.log_path = settings.log_dir / f"ffmpeg-channel-{xmltv_id}.log"
        self.backoff_cap = float(settings.channel_backoff_cap_s)
        self.window = LiveWindow()
        self.low_window = LiveWindow(first_seq=self.window.seq)
        self.low = False
        self.seen: set[str] = set()
        self.failures = 0  # consecutive runs that gave no segment
        self.gone = False

    def _wanted(self) -> tuple[str, str, str, bool] | None:
        if self.stop.is_set():
            return None
        row = _read_channel(self.channel_id)
        if row is None:
            self.gone = True
        return row

    def command(self, restarts):
        while True:
            row = self._wanted()
            if row is None:
                return None
            _xid, url, status, self.low = row
            try:
                check_http_source(url)
                info = probe(url)
                if info.video_codec:
                    break
                why = "no video"
            except (subprocess.SubprocessError, OSError, ValueError) as e:  # SourceRefused too
                why = str(e)[:200]
            log.info("%s: source not there (%s)", self.name, why)
            if status != "source_lost":
                _set_status(self.channel_id, "source_lost")
            self.failures += 1
            if self.stop.wait(supervise.backoff(self.failures, cap=self.backoff_cap)):
                return None
        self.run = int(time.time() * 1000)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        if self.low:
            write_master(self.out_dir, info.width, info.height)
        return build_relay_command(url, self.out_dir, info, self.run, low=self.low)

    def started(self, proc, mode, restarts):
        _set_facts(self.channel_id, relay_pid=proc.pid, relay_mode=mode)
        self.run_prefix = f"seg_{self.run}_"
        self.first_of_run = restarts > 0 or self.window.entries != []
        self.low_first = self.first_of_run
        self.low_seen: set[str] = set()
        self.last_new = time.monotonic()
        self.last_check = 0.0
        self.got = 0

    def tick(self, proc):
        try:
            text = (self.out_dir / "ffmpeg.m3u8").read_text()
        except FileNotFoundError:
            text = ""
        _h, entries = hls._entries(text)
        new = [e for e in entries if e[-1].startswith(self.run_prefix) and e[-1] not in self.seen]
        for e in new:
            self.seen.add(e[-1])
            disc = self.first_of_run
            self.first_of_run = False
            self.window.add(e, disc)
            append_index(self.out_dir, e, disc)
        if self.low:
            self._tick_low()
        now = time.monotonic()
        if new:
            hls._write_atomic(self.out_dir / "live.m3u8", self.window.render())
            if self.got == 0:
                self.failures = 0
                _set_status(self.channel_id, "live")
            self.got += len(new)
            self.last_new = now
            if len(self.seen) > 4 * FFMPEG_LIST:
                self.seen = {e[-1] for e in entries}
        elif now - self.last_new > LOST_AFTER_S:
            log.warning("%s: no segment for %.0f s", self.name, now - self.last_new)
            return supervise.STOP
        if now - self.last_check >= 1.0:
            self.last_check = now
            if self._wanted() is None:
                return supervise.STOP
        return None

    def _tick_low(self) -> None:
        """The 480p rendition's live playlist (no catch-up: the relayed rendition has it)."""
        low_dir = self.out_dir / "low"
        try:
            text = (low_dir / "ffmpeg.m3u8").read_text()
        except FileNotFoundError:
            return
        _h, entries = hls._entries(text)
        new = [e for e in entries if e[-1].startswith(self.run_prefix) and e[-1] not in self.low_seen]
        for e in new:
            self.low_seen.add(e[-1])
            self.low_window.add(e, self.low_first)
            self.low_first = False
        if new:
            hls._write_atomic(low_dir / "live.m3u8", self.low_window.render())
            if len(self.low_seen) > 4 * FFMPEG_LIST:
                self.low_seen = {e[-1] for e in entries}

    def exited(self, rc):
        if not self.gone:
            _set_facts(self.channel_id, relay_pid=None)

    def restart_delay(self, restarts):
        if self.stop.is_set() or self.gone:
            return None
        if self.got:
            return 0.5
        self.failures += 1
        return supervise.backoff(self.failures, cap=self.backoff_cap)


def run_channel(channel_id: int, stop: threading.Event | None = None) -> dict:
    """Relay a channel until it is deleted (or ``stop`` is set). One supervisor per channel
    (a lock file in its folder): a second one returns at once."""
    row = _read_channel(channel_id)
    if row is None:
        return {"error": "no such channel"}
    xid = row[0]
    out_dir = channel_dir(xid)
    out_dir.mkdir(parents=True, exist_ok=True)
    lock = open(out_dir / ".supervisor.lock", "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        return {"skipped": "another supervisor holds the channel"}
    job = ChannelJob(channel_id, xid, stop)
    try:
        facts = supervise.supervise(job)
    finally:
        lock.close()
    if job.gone:
        remove_files(xid)
    facts["gone"] = job.gone
    return facts


def remove_files(xmltv_id: str) -> None:
    shutil.rmtree(channel_dir(xmltv_id), ignore_errors=True)


# Threads (tests, a machine without a worker) -----------------------------------------------------

def start_thread(channel_id: int) -> None:
    app = current_app._get_current_object()
    old = _threads.get(channel_id)
    if old and old[0].is_alive():
        return
    stop = threading.Event()

    def main():
        with app.app_context():
            try:
                run_channel(channel_id, stop)
            except Exception:
                log.exception("channel %s: supervisor failed", channel_id)
            finally:
                session.remove()

    t = threading.Thread(target=main, name=f"relay-channel-{channel_id}", daemon=True)
    _threads[channel_id] = (t, stop)
    t.start()


def stop_threads(timeout: float = 15.0) -> None:
    """Stop every in-process relay (ffmpeg is stopped with them)."""
    items = list(_threads.items())
    for _cid, (_t, stop) in items:
        stop.set()
    for cid, (t, _stop) in items:
        t.join(timeout)
        _threads.pop(cid, None)


# Catch-up cleanup and disk use -------------------------------------------------------------------

def cleanup_channel(ch: Channel, now: float | None = None) -> int:
    """Drop segments and index hours older than the channel's catch-up; returns the bytes kept."""
    now = now or time.time()
    out_dir = channel_dir(ch.xmltv_id)
    cutoff = now - ch.catchup_hours * 3600
    kept = 0
    if not out_dir.exists():
        return 0
    with os.scandir(out_dir) as it:
        for e in it:
            if not e.name.endswith(".ts"):
                continue
            st = e.stat()
            if st.st_mtime < cutoff:
                os.unlink(e.path)
            else:
                kept += st.st_size
    low = out_dir / "low"
    if low.exists():  # the 480p rendition keeps its live window only
        for f in low.glob("seg_*.ts"):
            try:
                if f.stat().st_mtime < now - 120:
                    f.unlink()
            except FileNotFoundError:
                pass
    hour_cut = dt.datetime.fromtimestamp(cutoff, dt.UTC).strftime("%Y%m%d%H")
    idx = out_dir / "idx"
    if idx.exists():
        for p in idx.glob("*.m3u8"):
            if p.stem < hour_cut:
                p.unlink()
    return kept


# The relays process ------------------------------------------------------------------------------

POLL_S = 5.0


def serve(stop: threading.Event) -> None:
    """Relay every channel of the database, picking up new ones and letting deleted ones go
    (their supervisor sees the deletion and stops), until ``stop`` is set."""
    while not stop.is_set():
        try:
            ids = [ch.id for ch in epg_queries.relayed_channels()]
        except Exception:
            log.exception("relays: channel list not read")
            ids = []
        finally:
            session.rollback()
        for cid in ids:
            start_thread(cid)
        stop.wait(POLL_S)
    stop_threads()
