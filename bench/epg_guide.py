"""Programme guide for 100 channels × 7 days: how long the XMLTV document, the M3U and the week's
now/next take to build (ms), against the goal (issue 8: the guide renders in under 200 ms).

A throwaway SQLite database in a temporary data dir gets 100 channels and about 13 programmes per
channel per day for 7 days (≈9,100 programmes); each figure is the median of BENCH_RUNS builds.
"""
from __future__ import annotations

import datetime as dt
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

CHANNELS = int(os.environ.get("BENCH_CHANNELS", 100))
DAYS = int(os.environ.get("BENCH_DAYS", 7))
RUNS = int(os.environ.get("BENCH_RUNS", 7))
GOAL_MS = 200.0


def main() -> int:
    from zoneinfo import ZoneInfo

    from portal_server.app import create_app
    from portal_server.core import db
    from portal_server.core.config import Settings

    tmp = Path(tempfile.mkdtemp(prefix="ctv-bench-epg-"))
    settings = Settings(data_dir=tmp, jobs_inline=True, secret_key="bench-secret-key-" * 3)
    db.upgrade(settings.database_url)
    app = create_app(settings)
    with app.app_context():
        from epg import operations as ops
        from epg import queries, xmltv
        from epg.models import Channel
        from portal_server.core.db import session

        tz = ZoneInfo(settings.timezone)
        today = dt.datetime.now(tz).date()
        for i in range(CHANNELS):
            ch = Channel(xmltv_id=f"bench{i:03d}.qingshan", number=i + 1, name=f"测试频道{i + 1}", kind="relay",
                         stream_url=f"http://127.0.0.1:8000/hls/channels/bench{i:03d}/index.m3u8")
            session.add(ch)
            session.flush()
            for d in range(DAYS):
                ops.fill_day(ch, today + dt.timedelta(days=d), ops.CITY_DAY, tz)
        session.commit()
        n_prog = sum(1 for _ in queries.programmes(dt.datetime.combine(today, dt.time(0), tz),
                                                   dt.datetime.combine(today, dt.time(0), tz) + dt.timedelta(days=DAYS)))

        def timed(fn):
            out = []
            for _ in range(RUNS):
                t0 = time.perf_counter()
                result = fn()
                out.append((time.perf_counter() - t0) * 1000)
                session.rollback()
            return statistics.median(out), result

        xml_ms, doc = timed(lambda: queries.xmltv_document(DAYS))
        m3u_ms, _ = timed(queries.m3u_document)
        nn_ms, _ = timed(queries.now_next)
        t0 = time.perf_counter()
        errors = xmltv.validate(doc)
        valid_ms = (time.perf_counter() - t0) * 1000
        # The floor: serialising the same document from an already-built list (no database, no tree).
        chans, progs = queries.guide(dt.datetime.combine(today, dt.time(0), tz), DAYS)
        enc_ms, _ = timed(lambda: xmltv.encode_xmltv(chans, progs, tz))
    print(f"epg guide: {CHANNELS} channels × {DAYS} days = {n_prog} programmes, XMLTV {len(doc) / 1024:.0f} KiB "
          f"({'valid' if not errors else 'INVALID: ' + errors[0]} against the DTD, checked in {valid_ms:.0f} ms)")
    print(f"  XMLTV document (query + build + serialise): {xml_ms:7.1f} ms   goal < {GOAL_MS:.0f} ms   "
          f"ratio to goal {xml_ms / GOAL_MS:.2f}")
    print(f"  of which encoding alone (limit: no database): {enc_ms:7.1f} ms   ratio {xml_ms / enc_ms:.2f}")
    print(f"  M3U playlist:                                 {m3u_ms:7.1f} ms")
    print(f"  now/next for every channel:                   {nn_ms:7.1f} ms   ratio to goal {nn_ms / GOAL_MS:.2f}")
    import shutil
    shutil.rmtree(tmp, ignore_errors=True)
    return 0 if not errors else 1  # a slow run is reported by its ratio, not by failing `make bench`


if __name__ == "__main__":
    sys.exit(main())
