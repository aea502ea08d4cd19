"""The demo head-end: test pictures with the channel's name and a tone, sent as MPEG-TS over UDP
on loopback, one ffmpeg per demo channel (``make run`` starts it: ``python -m streaming.headend``).
The relays pull them like a real head-end's multicast. Also used by the tests as a source."""
from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import ffmpeg

log = logging.getLogger(__name__)

FONTS = ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", "/usr/share/fonts/opentype/noto/NotoSerifCJK-Bold.ttc",
         "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")


def _font() -> str | None:
    return next((f for f in FONTS if Path(f).exists()), None)


def source_command(url: str, label: str = "", size: str = "1280x720", rate: int = 25, tone: int = 440,
                   gop_s: float = 2.0, seconds: float | None = None, bitrate: str = "1500k") -> list[str]:
    """ffmpeg sending a test picture (with ``label`` written on it) and a tone to ``url`` as
    MPEG-TS in real time: H.264 High 4.1 with a keyframe every ``gop_s``, AAC — what a head-end's
    encoder sends, so the relay copies it."""
    extra = {"t": seconds} if seconds else {}
    v = ffmpeg.input(f"testsrc2=size={size}:rate={rate}", f="lavfi", re=None, **extra)
    a = ffmpeg.input(f"sine=frequency={tone}:sample_rate=48000", f="lavfi", re=None, **extra)
    font = _font()
    if label and font:
        v = v.filter("drawtext", fontfile=font, text=label, fontsize=64, fontcolor="white", box=1,
                     boxcolor="black@0.6", boxborderw=16, x="(w-text_w)/2", y="h-text_h-60")
    if font:  # the head-end's clock: the catch-up shows what was on the air when
        v = v.filter("drawtext", fontfile=font, text="%{localtime}", fontsize=36, fontcolor="white", box=1,
                     boxcolor="black@0.6", boxborderw=8, x="w-text_w-40", y=40)
    gop = max(1, int(rate * gop_s))
    out = ffmpeg.output(v, a, url + ("&" if "?" in url else "?") + "pkt_size=1316", f="mpegts", vcodec="libx264",
                        preset="ultrafast", tune="zerolatency", g=gop, keyint_min=gop, sc_threshold=0,
                        pix_fmt="yuv420p", level="4.1", acodec="aac", ar=48000, ac=2,
                        **{"profile:v": "high", "b:v": bitrate, "b:a": "96k"})
    return out.global_args("-hide_banner", "-nostdin", "-nostats", "-loglevel", "error").compile()


def demo_sources() -> list[tuple[str, str, int]]:
    """(udp url, label, tone) of the demo city's channels (epg.operations.DEMO_HEADEND)."""
    from epg.operations import DEMO_HEADEND
    names = {"qingshan.city": "青山市综合频道", "relay1.qingshan": "青山县新闻综合频道",
             "relay2.qingshan": "青山县农业科教频道"}
    return [(f"udp://127.0.0.1:{port}", names.get(xid, xid), 330 + 110 * i)
            for i, (xid, port) in enumerate(DEMO_HEADEND)]


def run(stop: threading.Event, size: str = "960x540") -> None:
    """Keep one ffmpeg per demo channel running (restarted when it dies) until ``stop``."""
    procs: dict[str, subprocess.Popen] = {}
    # The on-screen clock in city time.
    env = dict(os.environ, TZ=os.environ.get("COMMUNITV_TIMEZONE", "Asia/Shanghai"))
    try:
        while not stop.is_set():
            for url, label, tone in demo_sources():
                p = procs.get(url)
                if p is None or p.poll() is not None:
                    procs[url] = subprocess.Popen(source_command(url, label, size=size, tone=tone),
                                                  stdin=subprocess.DEVNULL, env=env)
                    log.info("head-end: %s → %s (pid %s)", label, url, procs[url].pid)
            stop.wait(2)
    finally:
        for p in procs.values():
            p.terminate()
        for p in procs.values():
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_a: stop.set())
    signal.signal(signal.SIGINT, lambda *_a: stop.set())
    run(stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
