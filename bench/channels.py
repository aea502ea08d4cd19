"""Live channels (issue 19): how many channels one core relays in copy mode, and how long the
catch-up playlist of a 2-hour window takes to build.

1. Relays per core: a short 720p (and 1080p) H.264/AAC clip is encoded once and sent looped, in
   real time and without re-encoding, as MPEG-TS over UDP on loopback (the head-end); BENCH_RELAYS
   relays (the ffmpeg command the supervisor runs, copy mode, 2 s HLS segments) pull them for
   BENCH_SECONDS. The relays' CPU time (user+sys from /proc) gives the share of one core per channel
   → channels per core; a segment is late when its file appears more than one segment after it
   should. CPU time, not wall time: the figure holds on a loaded machine.
2. Catch-up: an index of 3 hours of 2 s segments (5,400) is written as the supervisor writes it;
   the median of BENCH_RUNS builds of a 2-hour VOD playlist, against the 100 ms limit.
"""
from __future__ import annotations

import datetime as dt
import itertools
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

RELAYS = int(os.environ.get("BENCH_RELAYS", "3"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "20"))
RUNS = int(os.environ.get("BENCH_RUNS", "7"))
CATCHUP_LIMIT_MS = 100.0


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def relays_per_core(tmp: Path, size: str) -> dict:
    from portal_server import stack
    from streaming import channels, headend

    clip = tmp / f"clip-{size}.ts"
    # A broadcaster's bit rates: 4 Mbit/s at 720p, 8 Mbit/s at 1080p.
    argv = headend.source_command(str(clip), "", size=size, seconds=4,
                                  bitrate="4000k" if size.endswith("720") else "8000k")
    argv[argv.index(str(clip) + "?pkt_size=1316")] = str(clip)
    subprocess.run(argv, check=True, timeout=120)
    senders, relays, outs = [], [], []
    try:
        for i in range(RELAYS):
            port = stack.free_port()
            senders.append(subprocess.Popen(
                ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re", "-stream_loop", "-1", "-i", str(clip),
                 "-c", "copy", "-f", "mpegts", f"udp://127.0.0.1:{port}?pkt_size=1316"]))
            out = tmp / f"relay-{size}-{i}"
            out.mkdir()
            outs.append(out)
            info = channels.hls.InputInfo(video_codec="h264", profile="High", level=41, width=1280, height=720,
                                          fps=25.0, audio_codec="aac", max_keyframe_gap_s=2.0)
            cmd, mode = channels.build_relay_command(f"udp://127.0.0.1:{port}", out, info, run=i)
            assert mode == "copy"
            relays.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        time.sleep(3)  # the first segment
        cpu0 = [_cpu_s(p.pid) for p in relays]
        t0 = time.monotonic()
        seen: dict[Path, float] = {}
        while time.monotonic() - t0 < SECONDS:
            for out in outs:
                for f in out.glob("seg_*.ts"):
                    seen.setdefault(f, time.monotonic())
            time.sleep(0.2)
        wall = time.monotonic() - t0
        cpu = sum(_cpu_s(p.pid) - c for p, c in zip(relays, cpu0))
        late = 0
        for out in outs:
            times = sorted(t for f, t in seen.items() if f.parent == out)
            late += sum(1 for a, b in itertools.pairwise(times) if b - a > 2 * channels.SEGMENT_S + 0.5)
        share = cpu / wall / RELAYS
        return {"size": size, "cpu_share_per_channel": share, "channels_per_core": 1 / share if share else float("inf"),
                "late_segments": late, "segments": len(seen)}
    finally:
        for p in relays + senders:
            p.terminate()
        for p in relays + senders:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()


def catchup_ms(tmp: Path) -> tuple[float, int]:
    from streaming import channels

    out = tmp / "catchup"
    out.mkdir()
    t0 = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)
    for i in range(3 * 3600 // 2):
        name = f"seg_1_{i:06d}.ts"
        (out / name).write_bytes(b"")
        pdt = (t0 + dt.timedelta(seconds=2 * i)).strftime("%Y-%m-%dT%H:%M:%S.000+0000")
        channels.append_index(out, ["#EXTINF:2.000000,", f"#EXT-X-PROGRAM-DATE-TIME:{pdt}", name], i == 900)
    start, end = t0 + dt.timedelta(minutes=30), t0 + dt.timedelta(minutes=150)
    times, n = [], 0
    for _ in range(RUNS):
        t = time.perf_counter()
        text = channels.catchup_playlist(out, start, end, lambda name: "/hls/channels/x/" + name)
        times.append((time.perf_counter() - t) * 1000)
        n = text.count(".ts")
    return statistics.median(times), n


def main() -> int:
    tmp = Path(tempfile.mkdtemp(prefix="ctv-bench-channels-"))
    try:
        ms, n = catchup_ms(tmp)
        print(f"catch-up playlist, 2-hour window ({n} segments): {ms:.1f} ms median of {RUNS} "
              f"(limit {CATCHUP_LIMIT_MS:.0f} ms, ratio {ms / CATCHUP_LIMIT_MS:.2f})")
        for size in ("1280x720", "1920x1080"):
            r = relays_per_core(tmp, size)
            print(f"relays in copy mode, {size}: {r['cpu_share_per_channel'] * 100:.2f}% of a core per channel → "
                  f"{r['channels_per_core']:.0f} channels per core ({RELAYS} relays × {SECONDS:.0f} s, "
                  f"{r['segments']} segments, {r['late_segments']} late)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
