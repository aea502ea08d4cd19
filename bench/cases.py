"""Benchmark of 一站式办理: (1) the case desk of a town holding 50,000 cases (goal < 200 ms) and
(2) applying from the TV at 50 concurrent boxes (goal p99 < 100 ms), through the path a box uses:
nginx as `make run` writes it (stack.write_nginx) in front of gunicorn with make run's worker model
(stack.gunicorn_argv), and Mosquitto as make run has it: each application's notice to the household's
village is published by the web worker that filed it (core.outbox.DIRECT_MQTT).

Limits measured in the same run: (1) the same 50 rows read straight from SQLite with the desk's
index (no ORM, no HTML); (2) the same nginx serving a 2.4 kB static file to the same client at the
same concurrency. The client costs next to nothing: wrk (C, one thread, 50 connections = 50 boxes,
a Lua script cycling the boxes' X-Terminal-Token and unique idempotency keys) for the sustained
load, a send-then-poll loop on raw sockets for (a) one box at a time and (b) 50 boxes pressing
我要办理 at the same instant, and a thread per box on blocking sockets for (d) 50 boxes in use at
once, paced like residents with a remote (item page → think → 我要办理 → think → 我的办件 → think,
3–8 s each, for a minute; the static file fetched in the same loop is its limit), and (e) for scale an
ordinary read (a box's 我的办件 list) through the same path at the same concurrency. Prints figures,
limits, ratios and the server's CPU per application and per read. Runs in about two and a half minutes. Needs
wrk and nginx (Makefile's SYSTEM_PACKAGES).

Run: `make bench` (or .venv/bin/python bench/cases.py). `--postgres` runs the same on a throwaway
PostgreSQL cluster (default durability: fsync and synchronous_commit on) instead of SQLite.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import random
import resource
import selectors
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

N_CASES, TOWN, BOXES, APPLIES_PER_BOX = 50_000, "990101001000", 50, 8
#: (d): how long the 50 paced boxes run, and a resident's think time between two presses (s).
PACED_SECONDS, THINK = 60, (3.0, 8.0)
ITEM = "11360100MB0003-003"   # 临时救助申请: TV application, village-level intake


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


def fill(app) -> None:
    """50,000 cases of town 01's households: a third open, desks spread over villages, town, departments."""
    from sqlalchemy import func, insert, select

    from portal_server.cases.models import Case, CaseEvent
    from portal_server.core import clock
    from portal_server.core.db import session
    from portal_server.core.households import Household
    from portal_server.core.regions import region_by_code

    with app.app_context():
        town = region_by_code(TOWN)
        hhs = list(session.scalars(select(Household).where(Household.region_path.startswith(town.path))))
        rng, now = random.Random(16), clock.now()
        rows, events = [], []
        first = (session.scalar(select(func.max(Case.id))) or 0) + 1   # after the demo's own cases
        for i in range(first - 1, first - 1 + N_CASES):
            hh = rng.choice(hhs)
            status = rng.choice(("submitted", "accepted", "suspended") if rng.random() < 0.33 else
                                ("completed", "followed_up", "evaluated", "archived", "returned"))
            where = rng.random()
            desk = (("village", hh.region.code, hh.region_path) if where < 0.3 else
                    ("town", town.code, town.path) if where < 0.8 else ("department", "civil-affairs", town.parent.path))
            created = now - dt.timedelta(days=rng.randint(0, 365), minutes=rng.randint(0, 1440))
            rows.append({"id": i + 1, "number": f"BJ{created:%Y%m%d}{i + 1:06d}", "service_code": ITEM,
                         "service_name": "临时救助申请", "household_id": hh.id, "region_path": hh.region_path,
                         "applicant_name": hh.head_name, "applicant_key": None, "channel": "tv", "status": status,
                         "desk_level": desk[0], "desk_code": desk[1], "desk_path": desk[2],
                         "deadline": created + dt.timedelta(days=rng.randint(1, 40)), "note": "", "materials_json": "[]",
                         "flags_json": "[]", "supervised": 0, "score": None, "idempotency_key": None,
                         "created_by": "bench", "created_at": created, "updated_at": created,
                         "suspended_at": None, "completed_at": None})
            events.append({"case_id": i + 1, "action": "submit", "actor": "bench", "level": "household",
                           "status": "submitted", "desk_code": desk[1], "note": "", "at": created})
        for k in range(0, N_CASES, 5000):
            session.execute(insert(Case), rows[k:k + 5000])
            session.execute(insert(CaseEvent), events[k:k + 5000])
        if session.get_bind().dialect.name == "postgresql":   # ids given above: move the sequence past them
            from sqlalchemy import text
            session.execute(text("SELECT setval(pg_get_serial_sequence('cases', 'id'), (SELECT max(id) FROM cases))"))
        session.commit()


def desk_figures(app, db_path: Path, pg_dsn: str | None = None) -> tuple[float, float, float]:
    """Median time of the town clerk's desk page (HTTP through Flask, rendered) and of the raw read."""
    client = app.test_client()
    with app.app_context():
        import re
        page = client.get("/admin/login").get_data(as_text=True)
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        client.post("/admin/login", data={"username": "town01-clerk", "csrf_token": token,
                                          "password": app.config["SETTINGS"].demo_password})
        times = []
        for _ in range(25):
            t = time.perf_counter()
            r = client.get("/admin/cases/")
            times.append((time.perf_counter() - t) * 1000)
            assert r.status_code == 200 and r.get_data(as_text=True).count("data-case=") == 50, r.status_code
        # 办件台账: the town's whole ledger as xlsx (one sheet, every case in scope).
        t = time.perf_counter()
        r = client.get("/admin/cases/ledger.xlsx")
        ledger_s = time.perf_counter() - t
        assert r.status_code == 200 and len(r.data) > 1_000_000, r.status_code
    if pg_dsn:
        import psycopg
        con = psycopg.connect(pg_dsn, autocommit=True)
    else:
        con = sqlite3.connect(db_path)
    raw = []
    q = "%s" if pg_dsn else "?"
    for _ in range(25):
        t = time.perf_counter()
        con.execute("SELECT * FROM cases WHERE desk_code=? AND status IN ('submitted','accepted','suspended') "
                    "ORDER BY deadline, id LIMIT 50".replace("?", q), (TOWN,)).fetchall()
        con.execute("SELECT count(id) FROM cases WHERE desk_code=? AND status IN ('submitted','accepted','suspended')"
                    .replace("?", q), (TOWN,)).fetchone()
        raw.append((time.perf_counter() - t) * 1000)
    # The ledger's limit: the same number of rows of 15 columns read raw and written by the same xlsx writer.
    from portal_server.core import exports
    t = time.perf_counter()
    rows = con.execute("SELECT number, service_code, service_name, applicant_name, household_id, region_path, channel, "
                       "status, desk_code, created_at, deadline, completed_at, status, supervised, score FROM cases "
                       "ORDER BY deadline, id").fetchall()
    exports.xlsx_bytes([str(i) for i in range(15)], rows)
    ledger_raw_s = time.perf_counter() - t
    con.close()
    return statistics.median(times), pct(times, 95), statistics.median(raw), ledger_s, ledger_raw_s


WRK_LUA = r"""
-- One wrk thread, 50 connections = 50 boxes. Each request carries the next box's token
-- (round robin, so every box sends the same number) and a unique idempotency key; the thread
-- stops after CAP answers, which keeps each box under its rate limit (20 writes a minute).
local tokens, sent, answered, cap, path, method = {}, 0, 0, 0, "/", "GET"
function init(args)
  cap, method, path = tonumber(args[1]), args[2], args[3]
  for k = 4, #args do tokens[#tokens + 1] = args[k] end
end
function request()
  sent = sent + 1
  if method == "GET" then return wrk.format("GET", path) end
  if method == "GETBOX" then   -- a box's read: its token in the header, nothing written
    return wrk.format("GET", path, {["X-Terminal-Token"] = tokens[(sent - 1) % #tokens + 1]})
  end
  local body = '{"service_code":"ITEM","channel":"tv","idempotency_key":"w' .. sent .. '"}'
  return wrk.format("POST", path, {["Content-Type"] = "application/json",
                                   ["X-Terminal-Token"] = tokens[(sent - 1) % #tokens + 1]}, body)
end
function response(status, headers, body)
  answered = answered + 1
  if answered == cap then
    io.write("CAP\n")   -- bench/cases.py then stops wrk (SIGINT: it prints its results at once)
    io.stdout:flush()
    wrk.thread:stop()
  end
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d %d %d %d\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    e.connect + e.read + e.write + e.status + e.timeout))
end
""".replace("ITEM", ITEM)


def wrk(port: int, script: Path, cap: int, method: str, path: str, tokens: list[str]) -> dict:
    """wrk (C, one thread) at ``BOXES`` connections until ``cap`` answers → latency figures in ms,
    requests/s, errors and the client's own CPU seconds."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.Popen(["wrk", "-t1", f"-c{BOXES}", "-d60s", "--timeout", "20s", "-s", str(script),
                             f"http://127.0.0.1:{port}{path}", "--", str(cap), method, path, *tokens],
                            stdout=subprocess.PIPE, text=True)
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if line.startswith("CAP"):
            proc.send_signal(signal.SIGINT)
    proc.wait()
    out = "".join(lines)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    n, dur, p50, p90, p99, mx, err = map(int, next(ln for ln in out.splitlines() if ln.startswith("RESULT")).split()[1:])
    return {"n": n, "rps": n / (dur / 1e6), "p50": p50 / 1000, "p90": p90 / 1000, "p99": p99 / 1000,
            "max": mx / 1000, "errors": err, "client_cpu": (after.ru_utime + after.ru_stime)
            - (before.ru_utime + before.ru_stime)}


def http_request(method: str, path: str, token: str | None = None, body: str = "") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
    if token:
        head += f"X-Terminal-Token: {token}\r\n"
    if body:
        head += f"Content-Type: application/json\r\nContent-Length: {len(body.encode())}\r\n"
    return (head + "\r\n" + body).encode()


def burst(port: int, requests: list[bytes]) -> tuple[list[float], list[str]]:
    """All ``requests`` sent at the same instant, each on its own (already open) connection, as 50
    boxes whose residents press OK together → each one's time to its full answer in ms, and errors.
    The client is a send loop and a poll: it costs well under a millisecond per request."""
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in requests]
    sel = selectors.DefaultSelector()
    sent, got, took, errors = {}, {}, {}, []
    for s, req in zip(socks, requests):
        sent[s] = time.perf_counter()
        s.sendall(req)
        got[s] = b""
        sel.register(s, selectors.EVENT_READ)
    while len(took) < len(socks):
        for key, _ in sel.select(30):
            s = key.fileobj
            chunk = s.recv(65536)
            if chunk:
                got[s] += chunk
                continue
            took[s] = (time.perf_counter() - sent[s]) * 1000
            sel.unregister(s)
            s.close()
            status = got[s][9:12].decode()
            if not status.startswith("2"):
                errors.append(got[s][:300].decode(errors="replace"))
    return [took[s] for s in socks], errors


def one_by_one(port: int, requests: list[bytes]) -> tuple[list[float], list[str]]:
    """The same requests one after another (each alone on the server)."""
    times, errors = [], []
    for req in requests:
        t, e = burst(port, [req])
        times += t
        errors += e
    return times, errors


def fetch(port: int, req: bytes) -> tuple[float, float, str]:
    """One request on a new connection, blocking → (start s, ms to the full answer, status)."""
    t = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(req)
        got = b""
        while chunk := s.recv(65536):
            got += chunk
    return t, (time.perf_counter() - t) * 1000, got[9:12].decode(errors="replace")


def paced(port: int, boxes: list[tuple[bytes, bytes, bytes, bytes]], seconds: float) -> dict:
    """(d) Every box in use at once, as a resident with a remote uses it: the item's TV page,
    think, 我要办理 (the application), think, 我的办件, think, again, for ``seconds``. Each box
    starts at a random moment of its first think (residents do not start together) and fetches
    the static file once a cycle at a random moment of a think: the limit, under the same load.
    One thread per box, blocking sockets, asleep while its resident thinks (seeded per box).
    → latencies in ms per kind ("page", "apply", "static"), errors, elapsed s, the client's CPU s
    and "spans" (kind, start s, end s) of every request."""
    import threading
    out = {"page": [], "apply": [], "static": [], "errors": [], "spans": []}
    lock = threading.Lock()
    t0 = time.monotonic()
    end = t0 + seconds

    def box(i, item_page, apply, cases_page, static):
        rng = random.Random(1600 + i)

        def step(kind, req):
            if time.monotonic() >= end:
                return False
            start, ms, status = fetch(port, req)
            with lock:
                out[kind].append(ms)
                out["spans"].append((kind, start, start + ms / 1000))
                if not status.startswith("2"):
                    out["errors"].append(f"{kind} {status}")
            return True

        def think(with_static=False):
            wait = rng.uniform(*THINK)
            if with_static:
                first = rng.uniform(0, wait)
                time.sleep(max(0.0, min(first, end - time.monotonic())))
                step("static", static)
                wait -= first
            time.sleep(max(0.0, min(wait, end - time.monotonic())))

        time.sleep(rng.uniform(0, THINK[0]))
        n = 0
        while True:
            n += 1
            static_at = rng.randrange(3)
            if not step("page", item_page):
                break
            think(static_at == 0)
            if not step("apply", apply(n)):
                break
            think(static_at == 1)
            if not step("page", cases_page):
                break
            think(static_at == 2)

    before = resource.getrusage(resource.RUSAGE_SELF)
    threads = [threading.Thread(target=box, args=(i, *b), daemon=True) for i, b in enumerate(boxes)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    after = resource.getrusage(resource.RUSAGE_SELF)
    out["elapsed"] = time.monotonic() - t0
    out["client_cpu"] = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return out


def print_profile(path: Path, top: int = 30) -> None:
    """py-spy's collapsed stacks → the functions with the most samples on the stack (inclusive)
    and at its top (own time), as shares of all samples of gunicorn's workers."""
    from collections import Counter
    incl, own, total = Counter(), Counter(), 0
    for line in path.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        frames = [f.split(" (")[0] + " " + f.rsplit("/", 1)[-1].rstrip(")") for f in stack.split(";")[1:]]
        n = int(n)
        total += n
        for f in set(frames):
            incl[f] += n
        if frames:
            own[frames[-1]] += n
    print(f"  py-spy, {total} samples of gunicorn's workers:")
    for title, counter in (("inclusive", incl), ("own", own)):
        print(f"   {title}: " + "; ".join(f"{f} {c / total:.0%}" for f, c in counter.most_common(top)))


def cpu_seconds(*roots: int) -> float:
    """User+system CPU seconds used so far by processes ``roots`` and their descendants (/proc):
    gunicorn's master and workers, PostgreSQL's server and backends."""
    tick = os.sysconf("SC_CLK_TCK")
    pids, todo = [], list(roots)
    while todo:
        pid = todo.pop()
        pids.append(pid)
        try:
            todo += [int(p) for t in Path(f"/proc/{pid}/task").iterdir()
                     for p in (t / "children").read_text().split()]
        except OSError:
            pass
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])   # utime, stime
    return total / tick


def start_postgres(base: Path, procs: list) -> tuple[str, str]:
    """A throwaway cluster (as tests/conftest.py's postgres_server, with default durability) →
    (SQLAlchemy URL, psycopg DSN) of an empty database ``bench``."""
    import shutil as sh

    from portal_server import stack

    def pg_bin(name):
        found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True)
        return str(found[0]) if found else sh.which(name)
    base.mkdir(mode=0o755)
    datadir, sockdir = base / "data", base / "sock"
    sockdir.mkdir()
    as_user = []
    if os.geteuid() == 0:
        os.chmod(base.parent, 0o755)
        sh.chown(base, "postgres")
        sh.chown(sockdir, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    subprocess.run(as_user + [pg_bin("initdb"), "-D", str(datadir), "-U", "ctv", "--auth=trust", "-E", "UTF8",
                              "--locale=C"], check=True, stdout=subprocess.DEVNULL)
    port = stack.free_port()
    procs.append(subprocess.Popen(as_user + [pg_bin("postgres"), "-D", str(datadir), "-p", str(port), "-k", str(sockdir),
                                             "-c", "listen_addresses=127.0.0.1", "-c", "max_connections=200"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    import psycopg
    for _ in range(300):
        try:
            with psycopg.connect(f"host=127.0.0.1 port={port} user=ctv dbname=postgres", autocommit=True) as c:
                c.execute("CREATE DATABASE bench")
            break
        except psycopg.OperationalError:
            time.sleep(0.1)
    return (f"postgresql+psycopg://ctv@127.0.0.1:{port}/bench", f"host=127.0.0.1 port={port} user=ctv dbname=bench")


def main() -> int:
    from portal_server import stack

    tmp = Path(tempfile.mkdtemp(prefix="ctv-bench-cases-"))
    procs = []
    postgres = "--postgres" in sys.argv
    try:
        redis_port, web_port, mqtt_port = stack.free_port(), stack.free_port(), stack.free_port()
        procs.append(subprocess.Popen(["redis-server", str(stack.write_redis(tmp / "run", redis_port)), "--save", ""],
                                      stdout=subprocess.DEVNULL))
        env = dict(os.environ, COMMUNITV_DATA_DIR=str(tmp), COMMUNITV_REDIS_URL=f"redis://127.0.0.1:{redis_port}/0",
                   COMMUNITV_MQTT_URL=f"mqtt://127.0.0.1:{mqtt_port}",
                   COMMUNITV_PUBLIC_URL=f"http://127.0.0.1:{web_port}")
        pg_dsn = None
        if postgres:
            env["COMMUNITV_DATABASE_URL"], pg_dsn = start_postgres(tmp / "pg", procs)
        dbname = "PostgreSQL" if postgres else "SQLite"
        os.environ.update(env)
        cli = [sys.executable, "-m", "portal_server.cli"]
        t0 = time.time()
        subprocess.run(cli + ["db", "upgrade"], env=env, check=True, stdout=subprocess.DEVNULL)
        subprocess.run(cli + ["demo", "seed", "--households-per-village", "1"], env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # The broker as make run has it (dynamic security, the server account): the web workers
        # publish each application's notice to the household's village over their connection.
        from portal_server.core.config import Settings
        conf = stack.write_mosquitto(tmp / "run" / "mosquitto", mqtt_port, Settings.from_env().mqtt_server_password,
                                     overwrite_dynsec=True)
        procs.append(subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL))
        mosquitto = procs[-1]
        from portal_server.app import create_app
        app = create_app()
        fill(app)
        print(f"seeded the demo city and {N_CASES:,} cases of town {TOWN} in {time.time() - t0:.0f} s")

        med, p95, raw, ledger_s, ledger_raw_s = desk_figures(app, tmp / "communitv.db", pg_dsn)
        print(f"case desk of town {TOWN} (town01-clerk, 50 of its open cases, overdue first, HTML page):")
        print(f"  median {med:.1f} ms, p95 {p95:.1f} ms (goal < 200 ms); limit: the same rows read raw from "
              f"{dbname} {raw:.2f} ms; ratio page/raw {med / raw:.0f}×, page/goal {med / 200:.2f}")
        print(f"办件台账 of town {TOWN} as xlsx ({N_CASES:,}+ cases, one sheet): {ledger_s:.1f} s; limit: the same rows "
              f"read raw from {dbname} and written by the same xlsx writer {ledger_raw_s:.1f} s; ratio "
              f"{ledger_s / ledger_raw_s:.1f}×")

        # TV apply as a box reaches it: nginx (stack.write_nginx, as `make run` writes it) in front of
        # gunicorn (stack.gunicorn_argv: make run's worker model), 50 boxes at once.
        with app.app_context():
            from sqlalchemy import select

            from portal_server.core.db import session
            from portal_server.core.terminals import Terminal, portal_token
            terms = list(session.scalars(select(Terminal).where(Terminal.household_id.is_not(None))
                                         .order_by(Terminal.id).limit(2 * BOXES)))
            all_tokens = [portal_token(t) for t in terms]
            session.remove()
        tokens = all_tokens[:BOXES]
        # (d) uses 50 other boxes when the demo has them (one household a village gives exactly 50):
        # with the same boxes, (a)–(c) leave up to 3 + APPLIES_PER_BOX = 11 writes in a box's moving
        # minute and (d) adds at most 60 s / (3 thinks × 3 s) ≈ 7: 18, under the box's 20 a minute.
        paced_tokens = all_tokens[BOXES:2 * BOXES] if len(all_tokens) >= 2 * BOXES else tokens
        assert len(tokens) == BOXES, len(tokens)
        run_dir, http_port = tmp / "run", stack.free_port()
        nginx_conf = stack.write_nginx(run_dir, Settings.from_env(), http_port, web_port, listen="127.0.0.1")
        web_env = dict(env, PROMETHEUS_MULTIPROC_DIR=str(stack.metrics_dir(run_dir)))
        procs.append(subprocess.Popen(stack.gunicorn_argv(f"127.0.0.1:{web_port}"), env=web_env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        gunicorn = procs[-1]
        procs.append(subprocess.Popen(["nginx", "-c", str(nginx_conf), "-p", str(run_dir)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        nginx = procs[-1]
        deadline = time.time() + 90
        while True:   # every worker has loaded the app (a busy machine takes a while)
            try:
                _, e = one_by_one(http_port, [http_request("GET", "/api/v1/cases", tok) for tok in tokens[:16]])
                if not e:
                    break
            except OSError:
                pass
            if time.time() > deadline:
                raise RuntimeError("gunicorn behind nginx did not answer")
            time.sleep(0.5)
        static = "/tv/static/pager.js"   # 2.4 kB, served by nginx itself

        def apply_req(tok, key):
            return http_request("POST", "/api/v1/cases", tok, json.dumps(
                {"service_code": ITEM, "channel": "tv", "idempotency_key": key}))
        # Warm-up: every worker's first application compiles its statements and imports lazily. All
        # boxes at once, so that every worker takes some (one after another, a few workers would
        # take them all and (a) would meet a cold one).
        burst(http_port, [apply_req(tok, "warm") for tok in tokens])
        alone_cpu0 = cpu_seconds(gunicorn.pid)
        alone, e1 = one_by_one(http_port, [apply_req(tok, "l") for tok in tokens[:40]])
        alone_cpu = (cpu_seconds(gunicorn.pid) - alone_cpu0) / len(alone) * 1000
        limit_burst, e2 = burst(http_port, [http_request("GET", static) for _ in tokens])
        ours_burst, e3 = burst(http_port, [apply_req(tok, "b") for tok in tokens])
        script = tmp / "apply.lua"
        script.write_text(WRK_LUA)
        cap = BOXES * APPLIES_PER_BOX   # + 3 before, + (d)'s ≤ 7: under the box's 20 writes a minute
        limit = wrk(http_port, script, cap, "GET", static, tokens)
        servers = [gunicorn.pid, nginx.pid, procs[0].pid, mosquitto.pid] + ([procs[1].pid] if postgres else [])
        cpu0, app_cpu0 = cpu_seconds(*servers), cpu_seconds(gunicorn.pid)
        spy = None
        if "--profile" in sys.argv:   # py-spy (pip install py-spy) samples gunicorn's workers meanwhile
            spy = subprocess.Popen([str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(gunicorn.pid),
                                    "--subprocesses", "--gil", "--nonblocking",   # CPU (GIL holders), not waits
                                    "--format", "raw", "--rate", "250", "-o", str(tmp / "spy.txt")],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(2)
        ours = wrk(http_port, script, cap, "POST", "/api/v1/cases", tokens)
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(30)
            print_profile(tmp / "spy.txt")
        cpu, app_cpu = cpu_seconds(*servers) - cpu0, cpu_seconds(gunicorn.pid) - app_cpu0
        # (e) For scale: an ordinary read of the same boxes through the same path at the same
        # concurrency (a box's 我的办件 list: its credentials, its cases read and serialised).
        read_cpu0 = cpu_seconds(*servers)
        reads = wrk(http_port, script, cap, "GETBOX", "/api/v1/cases", tokens)
        read_cpu = cpu_seconds(*servers) - read_cpu0

        # (d) 50 boxes in use at once, paced like residents with a remote.
        item_page, cases_page = f"/tv/services/item/{ITEM}", "/tv/cases/"

        def page_req(path, tok):   # a TV page as the box's browser asks for it: the portal cookie
            return (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                    f"Cookie: ctv_terminal={tok}\r\n\r\n").encode()
        # Warm-up as for applications: every worker's first TV page compiles its templates.
        burst(http_port, [page_req(p, tok) for tok in paced_tokens for p in (item_page, cases_page)])
        boxes = [(page_req(item_page, tok), (lambda n, tok=tok, i=i: apply_req(tok, f"d{i}-{n}")),
                  page_req(cases_page, tok), http_request("GET", static)) for i, tok in enumerate(paced_tokens)]
        d_cpu0, d_app_cpu0 = cpu_seconds(*servers), cpu_seconds(gunicorn.pid)
        d = paced(http_port, boxes, PACED_SECONDS)
        d_cpu, d_app_cpu = cpu_seconds(*servers) - d_cpu0, cpu_seconds(gunicorn.pid) - d_app_cpu0
        d_load = os.getloadavg()[0]
        for what, errs in (("one at a time", e1), ("static burst", e2), ("apply burst", e3)):
            if errs:
                print(f"  {what}: {len(errs)} errors, first: {errs[0][:300]}")
        if d["errors"]:
            print(f"  (d): {len(d['errors'])} errors, first: {d['errors'][:5]}")
        if ours["errors"] or limit["errors"] or reads["errors"]:
            print(f"  wrk errors: apply {ours['errors']}, static {limit['errors']}, reads {reads['errors']}")
        cores = len(os.sched_getaffinity(0))
        per, app_per = cpu / ours["n"] * 1000, app_cpu / ours["n"] * 1000
        model = " ".join(stack.GUNICORN_WORKERS).replace("--", "")
        print(f"TV apply through nginx → gunicorn ({model}), {dbname}; limit: the same nginx serving a "
              f"{Path(static).name} of 2.4 kB, same client, same run:")
        print(f"  (a) one box at a time, 40 applications: p50 {pct(alone, 50):.1f} ms, p99 {pct(alone, 99):.1f} ms, "
              f"gunicorn CPU {alone_cpu:.1f} ms per application")
        print(f"  (b) {BOXES} boxes pressing 我要办理 at the same instant, one request each: p50 "
              f"{pct(ours_burst, 50):.1f} ms, p99 {pct(ours_burst, 99):.1f} ms; limit p99 {pct(limit_burst, 99):.1f} ms; "
              f"ratio {pct(ours_burst, 99) / pct(limit_burst, 99):.0f}×")
        print(f"  (c) {BOXES} boxes back to back (wrk, {BOXES} connections, {ours['n']} applications): p50 "
              f"{ours['p50']:.1f} ms, p90 {ours['p90']:.1f} ms, p99 {ours['p99']:.1f} ms (goal < 100 ms), "
              f"{ours['rps']:.0f} applications/s; limit p50 {limit['p50']:.2f} ms, p99 {limit['p99']:.2f} ms, "
              f"{limit['rps']:.0f}/s; ratio p99 {ours['p99'] / limit['p99']:.0f}×")
        print(f"  server CPU per application {per:.1f} ms (gunicorn {app_per:.1f} ms, the rest nginx and "
              f"{'Redis, Mosquitto, PostgreSQL' if postgres else 'Redis, Mosquitto'}) on {cores} cores; the client (wrk) used "
              f"{ours['client_cpu'] / ours['n'] * 1000:.2f} ms per application; p50 floor of {BOXES} boxes back "
              f"to back = {BOXES} × CPU / cores = {BOXES * per / cores:.0f} ms; load average {os.getloadavg()[0]:.1f}")
        read_per = read_cpu / reads["n"] * 1000
        print(f"  (e) for scale, a box's 我的办件 list (GET /api/v1/cases: credentials, its cases as JSON), same path, "
              f"{BOXES} connections: p50 {reads['p50']:.1f} ms, p99 {reads['p99']:.1f} ms, {reads['rps']:.0f}/s, "
              f"server CPU {read_per:.1f} ms per request (floor {BOXES} × CPU / cores = "
              f"{BOXES * read_per / cores:.0f} ms); an application (a durable write, audit row, notice) costs {per / read_per:.1f} such reads; "
              f"p99 < 100 ms for {BOXES} at once needs ≤ {100 * cores / BOXES:.1f} ms of server CPU per request "
              f"on {cores} cores")
        da, dp, ds = d["apply"], d["page"], d["static"]
        d_req = len(da) + len(dp) + len(ds)
        print(f"  (d) {BOXES} boxes in use at once, paced like residents with a remote (item page, think "
              f"{THINK[0]:.0f}–{THINK[1]:.0f} s, 我要办理, think, 我的办件, think; {d['elapsed']:.0f} s; thread per box, "
              f"blocking sockets): application p50 {pct(da, 50):.1f} ms, p95 {pct(da, 95):.1f} ms, p99 "
              f"{pct(da, 99):.1f} ms (goal < 100 ms), max {max(da):.1f} ms, {len(da)} applications, "
              f"{len(da) / d['elapsed']:.2f} applications/s; TV pages (item, 我的办件) p50 {pct(dp, 50):.1f} ms, "
              f"p99 {pct(dp, 99):.1f} ms, {len(dp)} pages; limit (static file in the same loop) p50 "
              f"{pct(ds, 50):.2f} ms, p99 {pct(ds, 99):.2f} ms, {len(ds)} fetches; ratio application p99 / limit "
              f"p99 {pct(da, 99) / pct(ds, 99):.0f}×")
        print(f"      server CPU {d_cpu:.1f} s in {d['elapsed']:.0f} s ({d_cpu / d['elapsed'] / cores:.0%} of {cores} "
              f"cores; gunicorn {d_app_cpu:.1f} s); the client used {d['client_cpu'] * 1000 / d_req:.2f} ms CPU per "
              f"request ({d['client_cpu']:.2f} s in all); "
              f"{'50 other boxes than (a)–(c)' if paced_tokens is not tokens else 'the same boxes as (a)–(c)'}; "
              f"load average at its end {d_load:.1f}")
        # Whose is the tail: applications with no other page or application of (d) in flight on the
        # server wait only for the machine (other processes), the others also for each other.
        app_spans = [x for x in d["spans"] if x[0] != "static"]
        alone_d, crowded = [], []
        for kind, a0, a1 in app_spans:
            if kind == "apply":
                others = sum(1 for _, b0, b1 in app_spans if b0 < a1 and b1 > a0) - 1
                (alone_d if others == 0 else crowded).append((a1 - a0) * 1000)
        print(f"      applications with no other request of (d) in flight: {len(alone_d)}, p50 {pct(alone_d, 50):.1f} ms, "
              f"p99 {pct(alone_d, 99):.1f} ms; overlapping others: {len(crowded)}, p50 {pct(crowded, 50):.1f} ms, "
              f"p99 {pct(crowded, 99):.1f} ms" if alone_d and crowded else "")
        verdicts = {"case desk < 200 ms": med < 200, "(a) p99 < 100 ms": pct(alone, 99) < 100,
                    "(b) p99 < 100 ms": pct(ours_burst, 99) < 100, "(c) p99 < 100 ms": ours["p99"] < 100,
                    "(d) p99 < 100 ms": pct(da, 99) < 100}
        print("per scenario: " + "; ".join(f"{k} {'yes' if v else 'NO'}" for k, v in verdicts.items()))
        # The goal is 50 concurrent boxes: (b) and (c) are the hard cases; (d) alone never makes it PASS.
        print("PASS" if med < 200 and ours["p99"] < 100 and pct(ours_burst, 99) < 100 and pct(da, 99) < 100
              else "BELOW GOAL (goal: case desk < 200 ms and p99 < 100 ms in (b), (c) and (d))")
        return 0
    finally:
        for p in procs:
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
