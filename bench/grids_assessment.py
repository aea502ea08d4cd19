"""Grids: the weekly assessment of a city with 3,400 households and 50,000 visits (limit 2 s), and the
phone app's first load (gzip, limit 150 KB).

The city is the demo city with 40 households in each of its 85 villages (3,400), one grid worker
and two grids per village, 50,000 visits of one week (one in ten an event, 300 of them with a real
work order) and 1,000 care tasks, in SQLite. The physical limit printed beside it: the same visits
counted by one bare GROUP BY over the table (the least work any assessment must do).
"""
from __future__ import annotations

import datetime as dt
import gzip
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from sqlalchemy import func, insert, select  # noqa: E402

from portal_server import demo  # noqa: E402
from portal_server.app import create_app  # noqa: E402
from portal_server.care.models import CareTask  # noqa: E402
from portal_server.core import clock, db  # noqa: E402
from portal_server.core.accounts import User, UserRole, create_user  # noqa: E402
from portal_server.core.config import Settings  # noqa: E402
from portal_server.core.db import session  # noqa: E402
from portal_server.core.households import Household  # noqa: E402
from portal_server.core.regions import Region  # noqa: E402
from portal_server.feedback import operations as feedback_ops  # noqa: E402
from portal_server.grids import queries  # noqa: E402
from portal_server.grids.models import Grid, GridHousehold, Visit  # noqa: E402

VISITS = 50_000
LIMIT_S = 2.0
LIMIT_KB = 150


def build(tmp: Path):
    url = f"sqlite:///{tmp / 'bench.db'}"
    settings = Settings(data_dir=tmp, database_url=url, redis_url="redis://127.0.0.1:1/0",
                        mqtt_url="mqtt://127.0.0.1:1", secret_key="bench-secret-key-0123456789abcdef0123",
                        testing=True, jobs_inline=True)
    db.upgrade(url)
    app = create_app(settings)
    return app


def seed(rng: random.Random, week_start: dt.date) -> Region:
    t = time.time()
    demo.seed(households_per_village=40, echo=lambda *a, **k: None)
    villages = session.scalars(select(Region).where(Region.level == "village").order_by(Region.code)).all()
    hh = session.scalar(select(func.count()).select_from(Household))
    print(f"seeded the demo city: {len(villages)} villages, {hh} households in {time.time() - t:.0f} s")
    t = time.time()
    grids_by_village = {}
    first = create_user("bench-grid-0", "bench-password-123", ("grid_worker",), villages[0], "基准网格员")
    for v in villages:
        # One Argon2 hash shared by every bench account (85 hashes would take half a minute).
        w = User(username=f"bench-grid-{v.code}", display_name=f"{v.name}网格员", region=v,
                 password_hash=first.password_hash, role_rows=[UserRole(role="grid_worker")])
        session.add(w)
        session.flush()
        gs = []
        for n in ("一", "二"):
            g = Grid(region_id=v.id, region_path=v.path, name=f"基准{n}格", worker_id=w.id, created_by="bench")
            session.add(g)
            gs.append(g)
        session.flush()
        grids_by_village[v.id] = (w, gs)
    households = session.scalars(select(Household)).all()
    session.execute(GridHousehold.__table__.delete())
    session.execute(insert(GridHousehold), [
        {"household_id": h.id, "grid_id": grids_by_village[h.region_id][1][h.id % 2].id, "assigned_by": "bench",
         "assigned_at": clock.now()} for h in households])
    t0, _ = clock.day_bounds(week_start)
    rows = []
    events = []
    for i in range(VISITS):
        h = rng.choice(households)
        w, gs = grids_by_village[h.region_id]
        kind = "event" if i % 10 == 0 else ("patrol" if i % 10 == 1 else "visit")
        rows.append({"worker_id": w.id, "grid_id": gs[h.id % 2].id, "household_id": h.id, "region_id": h.region_id,
                     "region_path": h.region_path, "kind": kind, "note": "基准走访",
                     "category": "roads" if kind == "event" else None, "client_key": f"b{i}",
                     "recorded_at": t0 + dt.timedelta(seconds=rng.randrange(7 * 86400)), "created_at": clock.now()})
        if kind == "event" and len(events) < 300:
            events.append((i, w, h))
    for i, w, h in events:
        order, _ = feedback_ops.submit("roads", "基准事件", channel="grid", actor=feedback_ops.Actor(user=w),
                                       region=h.region, household_id=h.id, idem_owner=f"user:{w.id}",
                                       idempotency_key=f"bench-{i}")
        rows[i]["feedback_id"] = order.id
    for r in rows:
        r.setdefault("feedback_id", None)
    session.execute(insert(Visit), rows)
    session.execute(insert(CareTask), [
        {"kind": "missed_checkin", "household_id": h.id, "region_path": h.region_path, "region_id": h.region_id,
         "day": week_start + dt.timedelta(days=k % 7), "status": rng.choice(("open", "done", "escalated")),
         "dedupe_key": f"bench:{h.id}:{k}", "created_at": t0 + dt.timedelta(hours=k % 160),
         "escalated_at": None} for k, h in enumerate(rng.sample(households, 1000))])
    session.commit()
    print(f"added {VISITS} visits, {len(events)} work orders, 1000 care tasks in {time.time() - t:.0f} s")
    return session.scalar(select(Region).where(Region.parent_id.is_(None)))


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-grids-"))
    app = build(tmp)
    rng = random.Random(17)
    with app.app_context():
        today = clock.today()
        week_start = today - dt.timedelta(days=today.weekday() + 7)
        week_end = week_start + dt.timedelta(days=7)
        city = seed(rng, week_start)
        t0, _ = clock.day_bounds(week_start)
        t1, _ = clock.day_bounds(week_end)
        best = {}
        for level in ("worker", "grid", "village"):
            times = []
            for _ in range(3):
                t = time.perf_counter()
                items = queries.assessment(city, level, week_start, week_end)
                times.append(time.perf_counter() - t)
            best[level] = min(times)
            print(f"assessment level={level}: {len(items)} items, visits {sum(i['visits'] for i in items)}, "
                  f"best of 3 {best[level] * 1000:.0f} ms")
        times = []
        for _ in range(3):
            t = time.perf_counter()
            queries.assessment_all(city, week_start, week_end)
            times.append(time.perf_counter() - t)
        print(f"the weekly report's three levels in one pass: best of 3 {min(times) * 1000:.0f} ms")
        total = max(best.values())
        t = time.perf_counter()
        session.execute(select(Visit.worker_id, Visit.kind, func.count()).where(
            Visit.recorded_at >= t0, Visit.recorded_at < t1).group_by(Visit.worker_id, Visit.kind)).all()
        bare = time.perf_counter() - t
        print(f"weekly assessment (slowest level): {total:.3f} s; limit {LIMIT_S} s; "
              f"ratio to limit {total / LIMIT_S:.2f}")
        print(f"physical floor (one bare GROUP BY of the week's visits): {bare * 1000:.0f} ms; "
              f"assessment / floor {total / bare:.1f}x")
        client = app.test_client()
        size = 0
        for path in ("/m/grid/", "/m/grid/app.js", "/m/grid/app.css", "/m/grid/manifest.webmanifest",
                     "/m/grid/icon.svg"):
            size += len(gzip.compress(client.get(path).data))
        print(f"phone app first load: {size / 1024:.1f} KB gzip; limit {LIMIT_KB} KB; ratio {size / 1024 / LIMIT_KB:.2f}")
    db.engine().dispose()
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
