"""Backup and restore (INTERFACES §1), against the real database (SQLite and PostgreSQL), a real
Mosquitto with the dynamic-security plugin, and the real `communitv` command line."""
from __future__ import annotations

import datetime as dt
import io
import os
import shutil
import subprocess
import sys
import tarfile
import threading
import uuid
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from portal_server import stack
from portal_server.backup import archive, tasks
from portal_server.core.config import Settings
from tests.conftest import _pg_admin, _stop, terminal_token, wait_port

BOX = "CTV-HH-000001"
VILLAGE = "990101001001"
BROKER_BOXES = ["CTV-HH-000001", "CTV-HH-000002", "CTV-VIL-001"]


def _start_broker(run_dir: Path, password: str, clients=()) -> tuple[subprocess.Popen, int]:
    """Mosquitto as `make run` starts it: on the data folder's run/ (keeping its account file)."""
    port = stack.free_port()
    conf = stack.write_mosquitto(run_dir, port, password, clients)
    proc = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port, proc=proc)
    return proc, port


def _connects(port: int, serial: str, secret: str) -> bool:
    done, ok = threading.Event(), []

    def on_connect(_c, _u, _f, reason, _p):
        ok.append(not reason.is_failure)
        done.set()

    c = paho.Client(CallbackAPIVersion.VERSION2, client_id=serial)
    c.username_pw_set(serial, secret)
    c.on_connect = on_connect
    c.connect("127.0.0.1", port, 10)
    c.loop_start()
    try:
        done.wait(10)
    finally:
        c.loop_stop()
        c.disconnect()
    return ok == [True]


def _file_order(client, token, content="门口路灯坏了") -> dict:
    from portal_server.core import db
    r = client.post("/api/v1/feedback", json={"category": "roads", "content": content},
                    headers={"X-Terminal-Token": token})
    # Tests share one app context across requests: do not keep SQLite's write lock between them.
    db.session.remove()
    assert r.status_code in (200, 201), r.get_data(as_text=True)
    return r.get_json()


def _cli(args, settings: Settings, redis_url: str, mqtt_url: str):
    env = dict(os.environ, COMMUNITV_DATA_DIR=str(settings.data_dir), COMMUNITV_DATABASE_URL=settings.database_url,
               COMMUNITV_REDIS_URL=redis_url, COMMUNITV_MQTT_URL=mqtt_url)
    env.pop("COMMUNITV_SECRET_KEY", None)
    return subprocess.run([str(Path(sys.executable).parent / "communitv"), *args], env=env,
                          capture_output=True, text=True, timeout=300)


def test_backup_while_running_wipe_restore_everything_works(any_db_app, tmp_path, redis_server, mosquitto_server,
                                                            request):
    from device_fleet.broker import register_boxes
    from portal_server import demo
    from portal_server.app import create_app
    from portal_server.core import db

    app = any_db_app
    settings = app.config["SETTINGS"]
    data = settings.data_dir
    secrets = {s: demo.terminal_secret(s) for s in BROKER_BOXES}
    # The broker as `make run` has it, and a box registered at runtime (saved by the plugin).
    broker, port = _start_broker(data / "run", settings.mqtt_server_password, list(secrets.items()))
    try:
        register_boxes(f"mqtt://{stack.MQTT_SERVER_USER}:{settings.mqtt_server_password}@127.0.0.1:{port}",
                       [("CTV-RT-0001", "runtime-secret-0001")])
        assert _connects(port, BOX, secrets[BOX])
    finally:
        _stop(broker)
    (data / "media" / "feedback").mkdir(parents=True, exist_ok=True)
    (data / "media" / "feedback" / "photo.jpg").write_bytes(b"\xff\xd8photo" * 1000)
    rec = data / "hls" / "meetings" / "7"
    rec.mkdir(parents=True, exist_ok=True)
    (rec / "record.m3u8").write_text("#EXTM3U\n#EXT-X-ENDLIST\n")
    (data / "tv" / VILLAGE).mkdir(parents=True, exist_ok=True)
    (data / "tv" / VILLAGE / "home.html").write_text("cache")

    token = terminal_token(BOX)
    client = app.test_client()
    last = _file_order(client, token, "备份前最后一张工单")
    # Residents keep filing while the backup runs.
    stop, filed = threading.Event(), []

    def keep_filing():
        with app.app_context():
            c = app.test_client()
            while not stop.is_set():
                r = c.post("/api/v1/feedback", json={"category": "roads", "content": "备份进行中"},
                           headers={"X-Terminal-Token": token})
                db.session.remove()
                if r.status_code == 429:          # the box's filing limit: a resident would wait
                    stop.wait(1)
                    continue
                assert r.status_code in (200, 201), r.get_data(as_text=True)
                filed.append(r.get_json()["id"])
    writer = threading.Thread(target=keep_filing)
    writer.start()
    try:
        target = tmp_path / "backups" / "communitv.tar.gz"
        target.parent.mkdir()
        res = archive.create(settings, target)
    finally:
        stop.set()
        writer.join(60)
    assert filed, "no order was filed during the backup"
    manifest = archive.verify(target)
    names = {e["path"] for e in manifest["files"]}
    assert {"secrets/secret_key", "data/run/dynamic-security.json", "data/media/feedback/photo.jpg",
            "data/hls/meetings/7/record.m3u8"} <= names
    assert not any(n.startswith("data/tv/") for n in names)       # rebuilt, not archived
    assert res.files == len(names) and not list(target.parent.glob(".communitv-backup-*"))

    # The disk is lost: wipe the data folder (and, for PostgreSQL, restore into a new empty database).
    db.session.remove()
    db.engine().dispose()
    shutil.rmtree(data)
    new_url = settings.database_url
    if settings.database_url.startswith("postgresql"):
        pg = request.getfixturevalue("postgres_server")
        name = "r_" + uuid.uuid4().hex[:12]
        _pg_admin(pg, f"CREATE DATABASE {name}")
        new_url = pg["url"] + name
    restored = Settings(data_dir=data, database_url=new_url, secret_key="placeholder-key-of-at-least-32-chars")
    mqtt_url = mosquitto_server["url"]
    r = _cli(["restore", str(target)], restored, redis_server["url"] + "/1", mqtt_url)
    assert r.returncode == 0, r.stderr
    # A second restore onto the now full target is refused, naming the reason.
    again = _cli(["restore", str(target)], restored, redis_server["url"] + "/1", mqtt_url)
    assert again.returncode == 1 and ("不是空的" in again.stderr) and "not empty" in again.stderr

    verify = _cli(["audit", "verify"], restored, redis_server["url"] + "/1", mqtt_url)
    assert verify.returncode == 0 and "intact" in verify.stdout, verify.stdout + verify.stderr
    assert (data / "secret_key").stat().st_mode & 0o777 == 0o600

    # The box's old token still opens its portal; its order is there.
    app2 = create_app(Settings(data_dir=data, database_url=new_url, redis_url=redis_server["url"] + "/1",
                               mqtt_url=mqtt_url, testing=True, jobs_inline=True))
    try:
        with app2.app_context():
            c2 = app2.test_client()
            entry = c2.get("/tv/?token=" + token)
            assert entry.status_code == 302 and entry.headers["Location"] == f"/tv/v/{VILLAGE}/home.html"
            home = c2.get(f"/tv/v/{VILLAGE}/home.html")
            assert home.status_code == 200 and 'data-section="party"' in home.get_data(as_text=True)
            got = c2.get(f"/api/v1/feedback/{last['id']}", headers={"X-Terminal-Token": token})
            assert got.status_code == 200 and got.get_json()["code"] == last["code"]
    finally:
        db.session.remove()
        db.engine().dispose()
    # Every box's MQTT secret still connects to a broker started on the restored folder.
    server_password = Settings(data_dir=data).mqtt_server_password      # from the restored secret_key
    broker, port = _start_broker(data / "run", server_password)
    try:
        assert _connects(port, BOX, secrets[BOX])
        assert _connects(port, "CTV-RT-0001", "runtime-secret-0001")
        assert not _connects(port, BOX, "wrong-secret")
    finally:
        _stop(broker)


def _small_backup(tmp_path) -> tuple[Path, Settings]:
    import sqlite3
    data = tmp_path / "src"
    data.mkdir()
    con = sqlite3.connect(data / "communitv.db")
    con.execute("create table t (x)")
    con.executemany("insert into t values (?)", [(i,) for i in range(1000)])
    con.commit()
    con.close()
    (data / "media").mkdir()
    (data / "media" / "a.bin").write_bytes(os.urandom(200_000))
    settings = Settings(data_dir=data, secret_key="k" * 40)
    out = tmp_path / "b.tar.gz"
    archive.create(settings, out)
    return out, settings


def test_a_truncated_or_edited_archive_is_refused_before_anything_is_written(tmp_path):
    good, _ = _small_backup(tmp_path)
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    edited = tmp_path / "edited.tar.gz"
    with tarfile.open(good, "r:gz") as src, tarfile.open(edited, "w:gz") as dst:
        for m in src:
            body = src.extractfile(m).read()
            if m.name == "secrets/secret_key":
                body = b"attacker-key"
                m.size = len(body)
            dst.addfile(m, io.BytesIO(body))
    for bad, words in ((cut, "damaged or truncated"), (edited, "fails its checksums")):
        target = Settings(data_dir=tmp_path / ("t-" + bad.stem), secret_key="placeholder-key-of-at-least-32-chars")
        with pytest.raises(archive.BackupError) as exc:
            archive.restore(target, bad)
        assert words in str(exc.value) and "未做任何恢复" in str(exc.value)
        assert not target.data_dir.exists() or not any(target.data_dir.rglob("*"))


def test_a_full_disk_or_missing_folder_leaves_no_half_archive(tmp_path):
    _, settings = _small_backup(tmp_path)
    with pytest.raises(archive.BackupError) as exc:
        archive.create(settings, tmp_path / "no" / "such" / "dir" / "b.tar.gz")
    assert "目录不存在" in str(exc.value)
    full = tmp_path / "full"
    full.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(full)]).returncode != 0:
        pytest.skip("cannot mount a small tmpfs to fill (needs root)")
    try:
        with pytest.raises(archive.BackupError) as exc:
            archive.create(settings, full / "b.tar.gz")
        assert "磁盘已满" in str(exc.value) and "disk is full" in str(exc.value)
        assert list(full.iterdir()) == []                      # nothing half-written left behind
    finally:
        subprocess.run(["umount", str(full)])


def test_nightly_backup_runs_once_a_city_day_and_keeps_7_daily_and_4_weekly(app, tmp_path):
    settings = app.config["SETTINGS"]
    settings.backup_dir = str(tmp_path / "nightly")
    tz = dt.timezone(dt.timedelta(hours=8))
    assert tasks.nightly(dt.datetime(2026, 12, 1, 1, 30, tzinfo=tz)) is None        # before 02:00 city time
    made = tasks.nightly(dt.datetime(2026, 12, 1, 2, 5, tzinfo=tz))
    assert made and Path(made).name == "communitv-20261201.tar.gz" and archive.verify(Path(made))
    assert tasks.nightly(dt.datetime(2026, 12, 1, 3, 5, tzinfo=tz)) is None         # once per day
    folder = Path(settings.backup_dir)
    for i in range(1, 60):
        (folder / tasks.archive_name(dt.date(2026, 12, 1) - dt.timedelta(days=i))).write_bytes(b"x")
    tasks.prune(folder)
    kept = sorted(p.name for p in folder.iterdir())
    assert len(kept) == 11 and kept[-7] == "communitv-20261125.tar.gz"
    # then the newest archive of each of the 4 ISO weeks before the dailies
    assert kept[:4] == ["communitv-20261108.tar.gz", "communitv-20261115.tar.gz", "communitv-20261122.tar.gz",
                        "communitv-20261124.tar.gz"]
