"""Figures for leaders (issue 18): a city of 10,000 household boxes with a year of daily aggregates.

Prints, each against its goal (ratio = figure / goal, ≤ 1 meets it):
- the city's overview over 90 days (goal 300 ms, median of BENCH_RUNS),
- the aggregation job for one day with 10,000 boxes' page views in the beacon log (goal 30 s),
- the cockpit's first paint in Chromium: login done, page opened → figures, charts and map drawn (goal 2 s).
"""
from __future__ import annotations

import datetime as dt
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

HOUSEHOLDS = int(os.environ.get("BENCH_HOUSEHOLDS_PER_VILLAGE", 118))   # 85 × 118 ≈ 10,000 boxes
DAYS = int(os.environ.get("BENCH_DAYS", 365))
VIEWS_PER_BOX = int(os.environ.get("BENCH_VIEWS_PER_BOX", 12))
RUNS = int(os.environ.get("BENCH_RUNS", 7))


def line(name, value, unit, goal):
    print(f"{name:<52} {value:10.1f} {unit:<3} goal {goal:>7.0f} {unit:<3} ratio {value / goal:.2f}")


def main() -> int:
    tmp = Path(tempfile.mkdtemp(prefix="ctv-bench-stats-"))
    env = dict(os.environ, COMMUNITV_DATA_DIR=str(tmp), COMMUNITV_SECRET_KEY="bench-secret-key-0123456789abcdef")
    os.environ.update(env)
    cli = [sys.executable, "-m", "portal_server.cli"]
    t = time.time()
    subprocess.run(cli + ["db", "upgrade"], env=env, check=True, stdout=subprocess.DEVNULL)
    subprocess.run(cli + ["demo", "seed", "--households-per-village", str(HOUSEHOLDS)], env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    print(f"seeded {HOUSEHOLDS} households per village in {time.time() - t:.0f} s ({tmp})")

    import redis as redis_lib

    from portal_server import stack
    port = stack.free_port()
    rproc = subprocess.Popen(["redis-server", "--port", str(port), "--save", ""], stdout=subprocess.DEVNULL)
    from portal_server.app import create_app
    from portal_server.core import clock
    from portal_server.core.config import Settings
    from portal_server.core.db import session
    settings = Settings.from_env(redis_url=f"redis://127.0.0.1:{port}/0", jobs_inline=True)
    app = create_app(settings)
    try:
        for _ in range(100):
            try:
                redis_lib.Redis(port=port).ping()
                break
            except redis_lib.ConnectionError:
                time.sleep(0.05)
        with app.app_context():
            from sqlalchemy import insert, select

            from portal_server.core.regions import Region
            from portal_server.core.terminals import Terminal
            from portal_server.stats import operations, queries
            from portal_server.stats.models import DailyFigure

            regions = session.execute(select(Region.code, Region.path)).all()
            serials = [s for (s,) in session.execute(select(Terminal.serial).where(Terminal.kind == "household"))]
            print(f"{len(serials)} household boxes, {len(regions)} regions")
            # A year of aggregates, plausible figures per region and day.
            t = time.time()
            today = clock.today()
            metrics = ["terminals.total", "terminals.online", "tv.active_boxes", "tv.page_views",
                       "feedback.received", "feedback.closed", "feedback.closed_on_time", "feedback.rating_sum",
                       "feedback.rated", "checkins.expected", "checkins.done", "alerts.sent", "alerts.targeted",
                       "alerts.acked", "meetings.held", "meetings.attendance", "affairs.late_villages",
                       "tv.section.services", "tv.section.elderly", "tv.section.party"]
            rnd = random.Random(7)
            batch = []
            for d in range(DAYS):
                day = today - dt.timedelta(days=d)
                for code, path in regions:
                    for m in metrics:
                        batch.append({"day": day, "region_code": code, "region_path": path, "metric": m,
                                      "value": rnd.randint(0, 120)})
                if len(batch) > 50000:
                    session.execute(insert(DailyFigure), batch)
                    batch = []
            if batch:
                session.execute(insert(DailyFigure), batch)
            session.commit()
            print(f"wrote {DAYS} days × {len(regions)} regions × {len(metrics)} metrics in {time.time() - t:.0f} s")

            city = session.scalar(select(Region).where(Region.parent_id.is_(None)))
            times = []
            for _ in range(RUNS):
                t = time.perf_counter()
                queries.overview(city, today - dt.timedelta(days=89), today)
                times.append((time.perf_counter() - t) * 1000)
            line("overview, city, 90 days (median ms)", statistics.median(times), "ms", 300)

            # One day of page views: VIEWS_PER_BOX per box, spread over the city day.
            start, _end = clock.day_bounds(today - dt.timedelta(days=1))
            pages = ["home.html", "s-services.html", "s-elderly.html", "s-party.html", "i-12.html"]
            by_file: dict[Path, list[str]] = {}
            for s in serials:
                for _ in range(VIEWS_PER_BOX):
                    at = start.timestamp() + rnd.random() * 86399
                    f = operations.beacon_file(dt.datetime.fromtimestamp(at, clock.UTC).date())
                    by_file.setdefault(f, []).append(f"{at:.3f} {s} /tv/v/990101001001/{rnd.choice(pages)}\n")
            for f, lines in by_file.items():
                f.write_text("".join(lines))
            n_views = sum(len(v) for v in by_file.values())
            t = time.perf_counter()
            operations.aggregate(today - dt.timedelta(days=1))
            session.commit()
            line(f"aggregation of one day ({n_views:,} page views, s)", time.perf_counter() - t, "s", 30)
        paint = cockpit_paint(app)
        if paint is not None:
            line("cockpit first paint, Chromium (s)", paint, "s", 2)
    finally:
        rproc.terminate()
    return 0


def cockpit_paint(app) -> float | None:
    """Seconds from opening /admin/cockpit (logged in) to figures, charts and map drawn."""
    from playwright.sync_api import sync_playwright
    from werkzeug.serving import make_server

    from portal_server import stack
    port = stack.free_port()
    server = make_server("127.0.0.1", port, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{port}"
    try:
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                  args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
            page = b.new_page(viewport={"width": 1440, "height": 1000})
            page.goto(base + "/admin/login")
            page.fill("input[name=username]", "city-leader")
            page.fill("input[name=password]", app.config["SETTINGS"].demo_password)
            page.click("button[type=submit]")
            page.wait_for_url(lambda u: "/admin/login" not in u)
            page.goto(base + "/admin/cockpit/")        # warm: static files cached as on a leader's PC
            page.wait_for_function("window.__cockpit && window.__cockpit.mapCodes", timeout=60000)
            runs = []
            for _ in range(3):
                t = time.perf_counter()
                page.goto(base + "/admin/cockpit/")
                page.wait_for_function("window.__cockpit && window.__cockpit.mapCodes && window.__cockpit.charts.trend",
                                       timeout=60000)
                runs.append(time.perf_counter() - t)
            b.close()
            return statistics.median(runs)
    except Exception as exc:  # no browser on this machine: say so, keep the other figures
        print(f"cockpit first paint: not measured ({exc})")
        return None
    finally:
        server.shutdown()


if __name__ == "__main__":
    sys.exit(main())
