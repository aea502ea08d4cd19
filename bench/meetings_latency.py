"""Live meetings: latency at the edge with 1 s segments, and 720p30 transcoding speed on one core.

1. Latency. A real nginx-rtmp (the `make run` config) calls the app's on_publish; the app's HLS
   job runs ffmpeg; an encoder pushes testsrc + sine at real time (-re) for BENCH_PUSH_S seconds.
   Every 0.5 s the live playlist is read: edge = now − end of the newest segment by its
   EXT-X-PROGRAM-DATE-TIME; latency = edge + what the player holds back (hls.js on the boxes plays
   liveSyncDurationCount target durations behind the edge: the count is read from
   stb_app/static/player.js, the target duration from the live playlist). The encoder sends a
   keyframe every second, as the staff page asks, so the job copies it into 1 s segments and
   encodes the 480p rendition beside it (COMMUNITV_MEETING_LOW_RENDITION, on by default). The program date-times are
   stamped by our ffmpeg when it starts muxing, so its input buffering and the RTMP hop are not in
   that figure; the second figure is by the encoder's clock: nginx-rtmp passes the publisher's
   timestamps, our ffmpeg logs the input's start time, so the newest segment's end is
   push start + input start + the durations of every segment so far. On a busy machine the
   test encoder itself runs seconds behind the wall clock (its ``-progress`` says by how much);
   that lag taken off gives the edge from the encoder's output, which includes the RTMP hop and
   our ffmpeg's input buffering that the program date-times do not see.
   Goal (issue 19): under 3 s (it was 3.8 s with 2 s segments; issue 8 asked under 8 s).
2. Transcoding. The job's transcode command (ffmpeg-python, libx264 veryfast → 720p30 High 4.1 +
   AAC, 2 s HLS segments) on a 20 s 720p30 testsrc file, pinned to one core (taskset -c 0): media
   seconds per wall second (×). Goal: ≥ 1.0× (keeps up in real time). The limit printed next to
   it is the copy path (no encoding) on the same input.
"""
from __future__ import annotations

import datetime as dt
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from portal_server import stack

PUSH_S = int(os.environ.get("BENCH_PUSH_S", 30))
#: The encoder's keyframe interval (s): 1 as the staff page asks (copied into 1 s segments); 2 is
#: copied into 2 s segments (the latency of before).
GOP_S = int(os.environ.get("BENCH_GOP_S", "1"))
GOAL_LATENCY_S = 3.0
ROOT = Path(__file__).resolve().parent.parent


def player_sync_count() -> int:
    """hls.js's liveSyncDurationCount as the boxes' player sets it (hls.js's default is 3)."""
    import re
    found = re.search(r"liveSyncDurationCount:\s*([0-9]+)", (ROOT / "stb_app/static/player.js").read_text())
    return int(found.group(1)) if found else 3


def wait_port(port, proc=None):
    for _ in range(300):
        if stack.port_in_use(port):
            return
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"process exited before opening port {port}")
        time.sleep(0.05)
    raise SystemExit(f"port {port} did not open")


def latency(tmp: Path) -> dict:
    import m3u8
    from werkzeug.serving import make_server

    from portal_server.app import create_app
    from portal_server.core import db
    from portal_server.core.config import Settings

    rtmp_port, app_port = stack.free_port(), stack.free_port()
    settings = Settings(data_dir=tmp / "data", jobs_inline=True, secret_key="bench-secret-key-" * 3,
                        rtmp_url=f"rtmp://127.0.0.1:{rtmp_port}/live", public_url=f"http://127.0.0.1:{app_port}",
                        mqtt_url="mqtt://127.0.0.1:9")
    db.upgrade(settings.database_url)
    app = create_app(settings)
    server = make_server("127.0.0.1", app_port, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with app.app_context():
        from portal_server.core.db import session, utcnow
        from portal_server.core.regions import Region
        from portal_server.meetings.models import Meeting

        region = Region(code="990101001001", name="东河村", level="village", path="990101001001/")
        session.add(region)
        session.flush()
        m = Meeting(title="基准测试会议", agenda="", region=region, region_path=region.path,
                    starts_at=utcnow() - dt.timedelta(minutes=5), ends_at=utcnow() + dt.timedelta(hours=1),
                    stream_key="benchkey0123456789", status="scheduled", created_by="bench", ffmpeg_restarts=0,
                    replay_ready=False)
        session.add(m)
        session.commit()
        mid = m.id
    run_dir = tmp / "run"
    conf = stack.write_nginx_rtmp(run_dir, settings, rtmp_port, app_port)
    nginx = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(run_dir)], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    wait_port(rtmp_port, nginx)
    time.sleep(0.3)
    if nginx.poll() is not None:  # another process took the free port first
        raise SystemExit(f"nginx-rtmp could not start on port {rtmp_port}; run the benchmark again")
    live = settings.hls_dir / "meetings" / str(mid) / "live.m3u8"
    t0 = time.time()
    progress = tmp / "encoder-progress.txt"
    enc = subprocess.Popen(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-progress", str(progress), "-re",
                            "-f", "lavfi", "-i", "testsrc=size=1280x720:rate=30", "-f", "lavfi", "-i",
                            "sine=frequency=440:sample_rate=48000", "-t", str(PUSH_S), "-c:v", "libx264",
                            "-preset", "veryfast", "-tune", "zerolatency", "-g", str(30 * GOP_S), "-pix_fmt", "yuv420p",
                            "-c:a", "aac", "-f", "flv", f"{settings.rtmp_url}/benchkey0123456789"])
    first_live, edges, enc_edges, targets, enc_lags = None, [], [], [], []
    record = live.parent / "record.m3u8"
    ff_log = settings.log_dir / f"ffmpeg-meeting-{mid}.log"
    input_start = None
    try:
        while enc.poll() is None:
            time.sleep(0.5)
            if not live.exists():
                continue
            pl = m3u8.loads(live.read_text())
            if not pl.segments:
                continue
            now = time.time()
            first_live = first_live or now - t0
            seg = pl.segments[-1]
            targets.append(pl.target_duration)
            end = seg.program_date_time.timestamp() + seg.duration
            edges.append(now - end)
            if input_start is None and ff_log.exists():
                import re
                found = re.search(r"Duration: [^,]+, start: ([0-9.]+)", ff_log.read_text())
                input_start = float(found.group(1)) if found else None
            if input_start is not None and record.exists():
                rec = m3u8.loads(record.read_text())
                enc_edges.append(now - (t0 + input_start + sum(x.duration for x in rec.segments)))
                # How far the encoder's own output lags the wall clock (a slow encoder on a busy
                # machine inflates the figure above by this much).
                done = [l for l in progress.read_text().splitlines() if l.startswith("out_time_us=")] \
                    if progress.exists() else []
                if done and done[-1][12:].isdigit():
                    enc_lags.append(now - t0 - int(done[-1][12:]) / 1e6)
        with app.app_context():
            mode = session.get(Meeting, mid).hls_mode
            session.rollback()
        renditions = (live.parent / "index.m3u8").read_text().count("#EXT-X-STREAM-INF") \
            if (live.parent / "index.m3u8").exists() else 1
    finally:
        enc.wait(30)
        time.sleep(3)
        nginx.terminate()
        nginx.wait(10)
        server.shutdown()
    if not edges:
        raise SystemExit("no live playlist appeared: see the ffmpeg log of the meeting")
    steady = edges[len(edges) // 4:] or edges
    steady_enc = enc_edges[len(enc_edges) // 4:] or enc_edges
    return {"first_live_s": first_live, "edge_median": statistics.median(steady), "edge_max": max(steady),
            "samples": len(steady), "target": max(targets), "mode": mode, "renditions": renditions,
            "input_start": input_start, "enc_lag": statistics.median(enc_lags[len(enc_lags) // 4:]) if enc_lags else None,
            "enc_median": statistics.median(steady_enc) if steady_enc else None,
            "enc_max": max(steady_enc) if steady_enc else None}


def transcode_speed(tmp: Path) -> dict:
    from streaming import hls

    src = tmp / "src.flv"
    media_s = 20
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    "testsrc=size=1280x720:rate=30", "-f", "lavfi", "-i", "sine=sample_rate=48000", "-t", str(media_s),
                    "-c:v", "libx264", "-preset", "ultrafast", "-g", "300", "-pix_fmt", "yuv420p", "-c:a", "aac", str(src)],
                   check=True)
    out = {}
    for mode in ("transcode", "copy"):
        d = tmp / mode
        d.mkdir()
        info = None
        if mode == "copy":
            info = hls.InputInfo("h264", "High", 31, 1280, 720, 30.0, "aac", 1.0)
        argv, got = hls.build_command(str(src), d, info)
        assert got == mode
        t = time.perf_counter()
        subprocess.run(["taskset", "-c", "0", *argv], check=True, stderr=subprocess.DEVNULL)
        out[mode] = media_s / (time.perf_counter() - t)
    return out


def main() -> int:
    tmp = Path(tempfile.mkdtemp(prefix="ctv-bench-meetings-"))
    try:
        speed = transcode_speed(tmp)
        lat = latency(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    count = player_sync_count()
    hold = count * lat["target"]
    total = lat["edge_median"] + hold
    worst = lat["edge_max"] + hold
    print(f"meetings live latency ({PUSH_S} s push, keyframe every {GOP_S} s, {lat['target']} s target duration, {lat['mode']} + "
          f"{lat['renditions']} rendition(s) in the master, {lat['samples']} samples in steady state; "
          f"playlist live {lat['first_live_s']:.1f} s after the push started):")
    print(f"  edge (now − end of newest segment by PROGRAM-DATE-TIME): median {lat['edge_median']:.2f} s, "
          f"max {lat['edge_max']:.2f} s")
    print(f"  our ffmpeg's input start time (RTMP timestamp of its first packet): {lat['input_start']} s; "
          f"the encoder's output lags the wall clock by {lat['enc_lag']:.2f} s (median)")
    if lat["enc_median"] is not None:
        print(f"  edge by the encoder's clock (push start + input start + segment durations): median "
              f"{lat['enc_median']:.2f} s, max {lat['enc_max']:.2f} s → with the player's hold-back "
              f"{lat['enc_median'] + hold:.2f} s (ratio to goal {(lat['enc_median'] + hold) / GOAL_LATENCY_S:.2f})")
    if lat["enc_median"] is not None and lat["enc_lag"] is not None:
        out_edge = lat["enc_median"] - lat["enc_lag"]
        print(f"  edge from the encoder's output (the figure above − the encoder's lag; includes the RTMP hop and "
              f"our ffmpeg's input buffering): median {out_edge:.2f} s → latency with the hold-back "
              f"{out_edge + hold:.2f} s   goal < {GOAL_LATENCY_S:.0f} s   ratio {(out_edge + hold) / GOAL_LATENCY_S:.2f}")
    print(f"  latency = edge + player hold-back {count} × {lat['target']} s = {hold} s: median {total:.2f} s, max {worst:.2f} s   "
          f"goal < {GOAL_LATENCY_S:.0f} s   ratio to goal {total / GOAL_LATENCY_S:.2f}")
    print(f"transcoding 720p30 testsrc → 720p30 H.264 High 4.1 + AAC HLS on one core: {speed['transcode']:.2f}× "
          f"real time   goal ≥ 1.0×   (limit: copy path {speed['copy']:.0f}×; ratio {speed['transcode'] / speed['copy']:.3f})")
    return 0  # figures and ratios are the result; a noisy machine must not stop `make bench`


if __name__ == "__main__":
    sys.exit(main())
