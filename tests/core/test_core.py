"""Core behaviour on both databases: scope, audit chain, PII, idempotent seed, CLI, staff login."""
import os
import sqlite3
import subprocess
import sys

import pytest
from sqlalchemy import func, select, text

from portal_server.core import audit, crypto
from portal_server.core.accounts import user_by_username
from portal_server.core.db import session
from portal_server.core.households import Household
from portal_server.core.regions import Region, Scope, region_by_code
from portal_server.core.terminals import Terminal


def test_scope_is_a_prefix_query(any_db_app):
    town = region_by_code("990101001000")
    scope = Scope.of(town)
    villages = session.scalars(select(Region).where(scope.region_filter(Region.path),
                                                    Region.level == "village")).all()
    assert [v.code for v in villages] == [f"990101001{n:03d}" for n in range(1, 8)]
    assert scope.covers("990101001007") and not scope.covers("990101002001")
    assert not Scope.of(region_by_code("990101001001")).covers("990101001002")


def test_demo_city_counts(any_db_app):
    assert session.scalar(select(func.count()).select_from(Region).where(Region.level == "town")) == 14
    assert session.scalar(select(func.count()).select_from(Region).where(Region.level == "village")) == 85
    inst = session.scalar(select(func.count()).select_from(Terminal)
                          .where(Terminal.kind.in_(["department", "town", "village"])))
    assert inst == 101
    unbound = session.scalars(select(Terminal.serial).where(Terminal.region_id.is_(None))).all()
    assert sorted(unbound) == [f"CTV-NEW-{i:04d}" for i in range(1, 11)]


def test_passwords_are_argon2_and_pii_is_encrypted_and_masked(any_db_app):
    u = user_by_username("v001-editor")
    assert u.password_hash.startswith("$argon2id$")
    assert u.check_password(any_db_app.config["SETTINGS"].demo_password) and not u.check_password("x")
    hh = session.scalars(select(Household)).first()
    clear = crypto.decrypt(hh.phone_enc)
    assert clear and clear not in hh.phone_enc and len(clear) == 11
    assert hh.phone_masked == clear[:3] + "****" + clear[-4:]
    assert hh.to_dict()["id_number"].count("*") == 11  # 110***********1234 (INTERFACES §4.1)


def test_audit_chain_detects_edit_and_delete(any_db_app):
    for i in range(3):
        audit.record("test.step", "thing", i, actor="pytest", n=i)
    session.commit()
    assert audit.verify().ok
    assert audit.seal() >= 3   # the sealing job chains them
    session.commit()
    assert audit.verify().ok and audit.verify().unsealed == 0
    last = session.scalar(select(func.max(audit.AuditEvent.id)))
    session.execute(text("UPDATE audit_events SET actor='mallory' WHERE id=:i"), {"i": last - 1})
    session.commit()
    res = audit.verify()
    assert not res.ok and res.at_id == last - 1 and "altered" in res.problem


def test_audit_detects_an_edit_before_the_row_is_sealed_and_never_seals_it(any_db_app):
    audit.record("test.step", "thing", 1, actor="pytest")
    audit.record("test.step", "thing", 2, actor="pytest")
    session.commit()
    last = session.scalar(select(func.max(audit.AuditEvent.id)))
    session.execute(text("UPDATE audit_events SET detail='{\"forged\": true}' WHERE id=:i"), {"i": last - 1})
    session.commit()
    res = audit.verify()
    assert not res.ok and res.at_id == last - 1 and "HMAC" in res.problem
    audit.seal()   # the sealer refuses to bless the edited row (nor anything after it)
    session.commit()
    unsealed = sorted(session.scalars(select(audit.AuditEvent.id).where(audit.AuditEvent.seq.is_(None))))
    assert unsealed == [last - 1, last]
    assert not audit.verify().ok


def test_audit_append_rows_verify_seal_and_catch_an_edit_like_recorded_ones(any_db_app):
    """audit.append (one INSERT, the applications' hot path) writes the same row HMAC as record."""
    audit.append("test.fast", "thing", 1, "990101001001", actor="pytest", number="BJ1", n=1)
    audit.record("test.step", "thing", 2, actor="pytest")
    audit.append("test.fast", "thing", 3, actor="pytest", note="中文")
    session.commit()
    assert audit.verify().ok and audit.verify().unsealed >= 3
    audit.seal()
    session.commit()
    assert audit.verify().ok and audit.verify().unsealed == 0
    row = session.scalar(select(audit.AuditEvent).where(audit.AuditEvent.action == "test.fast")
                         .order_by(audit.AuditEvent.id))
    assert (row.actor, row.object_id, row.region_code) == ("pytest", "1", "990101001001")
    audit.append("test.fast", "thing", 4, actor="pytest")
    session.commit()
    last = session.scalar(select(func.max(audit.AuditEvent.id)))
    session.execute(text("UPDATE audit_events SET actor='mallory' WHERE id=:i"), {"i": last})
    session.commit()
    res = audit.verify()
    assert not res.ok and res.at_id == last and "HMAC" in res.problem


def test_insert_row_writes_one_statement_and_leaves_a_loaded_unchanged_row(any_db_app):
    """db.insert_row: the row is in the table, the object is in the session with every column
    loaded (no SELECT to read one, nothing to flush), and a taken unique value inserts nothing."""
    from sqlalchemy import event

    from portal_server.core.db import engine, insert_row
    from portal_server.core.regions import Region

    town = region_by_code("990101001000")
    region = Region(code="990101001777", name="试验村", level="village", parent_id=town.id,
                    path=town.path + "990101001777/")
    statements = []

    def seen(conn, cursor, statement, *a):
        statements.append(statement.split()[0])
    event.listen(engine(), "before_cursor_execute", seen)
    try:
        assert insert_row(region, unless_taken="code") is True
        session.add(region)
        assert region.id and region.name == "试验村" and region in session and not session.dirty
        session.flush()
        assert statements == ["INSERT"]
        again = Region(code="990101001777", name="重复", level="village", parent_id=town.id, path=region.path)
        assert insert_row(again, unless_taken="code") is False
    finally:
        event.remove(engine(), "before_cursor_execute", seen)
    session.commit()
    assert session.scalar(select(func.count(Region.id)).where(Region.code == "990101001777")) == 1
    assert session.scalar(select(Region.name).where(Region.code == "990101001777")) == "试验村"


def test_audit_chain_detects_deleted_row(any_db_app):
    for i in range(3):
        audit.record("test.step", "thing", i, actor="pytest")
    session.commit()
    audit.seal()
    session.commit()
    last = session.scalar(select(func.max(audit.AuditEvent.id)))
    session.execute(text("DELETE FROM audit_events WHERE id=:i"), {"i": last - 1})
    session.commit()
    res = audit.verify()
    assert not res.ok and "missing" in res.problem
    session.rollback()


def test_audit_head_catches_the_newest_sealed_row_deleted(any_db_app):
    audit.record("test.step", "thing", 1, actor="pytest")
    session.commit()
    audit.seal()
    session.commit()
    last = session.scalar(select(func.max(audit.AuditEvent.id)))
    session.execute(text("DELETE FROM audit_events WHERE id=:i"), {"i": last})
    session.commit()
    res = audit.verify()
    assert not res.ok and "head records" in res.problem


@pytest.mark.parametrize("any_db_app", ["postgres"], indirect=True)   # SQLite has no row locks to compare
def test_audit_append_takes_no_lock_while_a_sealer_holds_the_head(any_db_app):
    """On PostgreSQL, appends used to lock the head row until commit (every audited write queued on
    it). Now a sealer holding the head does not keep an application's write from committing."""
    import threading

    from portal_server.core.db import engine

    audit.record("test.step", "thing", 0, actor="pytest")
    session.commit()
    with engine().connect() as other:
        other.exec_driver_sql("BEGIN")
        other.exec_driver_sql("SELECT seq FROM audit_head WHERE id = 1 FOR UPDATE")
        done = threading.Event()

        def append():
            with any_db_app.app_context():
                audit.record("test.step", "thing", 1, actor="pytest")
                session.commit()
                done.set()
        t = threading.Thread(target=append)
        t.start()
        assert done.wait(10), "the append waited for the head row"
        other.exec_driver_sql("ROLLBACK")
        t.join()
    audit.seal_job()
    res = audit.verify()
    assert res.ok and res.unsealed == 0 and res.count >= 2


def test_audit_rows_cannot_be_changed_through_the_orm(app):
    ev = audit.record("test.step", "thing", 1, actor="pytest")
    session.commit()
    ev.actor = "mallory"
    with pytest.raises(RuntimeError, match="append-only"):
        session.flush()
    session.rollback()


def _cli(app, *args, env_extra=None):
    s = app.config["SETTINGS"]
    env = dict(os.environ, COMMUNITV_DATA_DIR=str(s.data_dir), COMMUNITV_DATABASE_URL=s.database_url,
               COMMUNITV_REDIS_URL=s.redis_url, COMMUNITV_MQTT_URL=s.mqtt_url,
               COMMUNITV_SECRET_KEY=s.secret_key, **(env_extra or {}))
    return subprocess.run([sys.executable, "-m", "portal_server.cli", *args], env=env,
                          capture_output=True, text=True, timeout=120)


def test_cli_audit_verify_passes_then_fails_after_hand_edit(app):
    audit.record("test.step", "thing", 1, actor="pytest")
    session.commit()
    ok = _cli(app, "audit", "verify")
    assert ok.returncode == 0, ok.stderr
    assert "intact" in ok.stdout
    db_path = app.config["SETTINGS"].database_url.split("///", 1)[1]
    with sqlite3.connect(db_path) as c:  # an edit by hand, outside the app
        c.execute("UPDATE audit_events SET detail='{\"forged\": true}' WHERE id=1")
    bad = _cli(app, "audit", "verify")
    assert bad.returncode == 1 and "BROKEN" in bad.stderr


def test_cli_seed_is_idempotent_and_bad_arguments_fail(app):
    again = _cli(app, "demo", "seed", "--households-per-village", "4")
    assert again.returncode == 0, again.stderr
    assert "nothing to change" in again.stdout
    bad = _cli(app, "demo", "seed", "--households-per-village", "-3")
    assert bad.returncode != 0 and "households-per-village" in bad.stderr
    nouser = _cli(app, "user", "create", "--username", "x", "--role", "wizard", "--region", "990100000000",
                  env_extra={"COMMUNITV_NEW_USER_PASSWORD": "pw-123456"})
    assert nouser.returncode != 0 and "unknown role" in nouser.stderr
    noregion = _cli(app, "user", "create", "--username", "x", "--role", "editor", "--region", "1",
                    env_extra={"COMMUNITV_NEW_USER_PASSWORD": "pw-123456"})
    assert noregion.returncode != 0 and "unknown region" in noregion.stderr
    made = _cli(app, "user", "create", "--username", "v003-editor", "--role", "editor",
                "--region", "990101001003", env_extra={"COMMUNITV_NEW_USER_PASSWORD": "pw-123456"})
    assert made.returncode == 0, made.stderr
    session.expire_all()
    assert user_by_username("v003-editor").region.code == "990101001003"


def test_demo_terminal_csv_has_every_secret(app):
    path = app.config["SETTINGS"].data_dir / "demo-terminals.csv"
    rows = path.read_text().splitlines()
    assert rows[0] == "serial,secret,region_code,kind"
    assert any(r.startswith("CTV-VIL-001,") and r.endswith(",990101001001,village") for r in rows)
    assert oct(path.stat().st_mode & 0o777) == "0o600"


# Health --------------------------------------------------------------------------------------

def test_healthz_ok_with_all_services(client):
    r = client.get("/healthz")
    assert r.status_code == 200, r.get_json()
    assert r.get_json() == {"status": "ok", "checks": {"db": "ok", "redis": "ok", "mqtt": "ok"}}


def test_healthz_names_redis_when_it_is_down(tmp_path, redis_server, mosquitto_server, sqlite_template):
    from portal_server import stack
    from tests.conftest import make_test_app, wait_port

    port = stack.free_port()
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--save", ""], stdout=subprocess.DEVNULL)
    try:
        wait_port(port)
        app = make_test_app(tmp_path, {"url": f"redis://127.0.0.1:{port}"}, mosquitto_server, sqlite_template)
        c = app.test_client()
        assert c.get("/healthz").status_code == 200
        proc.terminate()
        proc.wait(10)
        r = c.get("/healthz")
        assert r.status_code == 503
        body = r.get_json()
        assert body["checks"]["redis"] != "ok" and body["failing"] == ["redis"]
        assert body["checks"]["db"] == "ok"
    finally:
        if proc.poll() is None:
            proc.kill()


# Staff login ---------------------------------------------------------------------------------

def test_login_page_is_chinese_and_wrong_password_says_so(client, auth):
    page = client.get("/admin/login")
    assert page.status_code == 200 and "工作人员登录" in page.get_data(as_text=True)
    from tests.conftest import csrf_from
    token = csrf_from(page.get_data(as_text=True))
    r = client.post("/admin/login", data={"username": "v001-editor", "password": "wrong", "csrf_token": token})
    assert r.status_code == 401 and "用户名或密码错误" in r.get_data(as_text=True)


def test_login_without_csrf_token_is_refused(client, app):
    r = client.post("/admin/login", data={"username": "v001-editor",
                                          "password": app.config["SETTINGS"].demo_password})
    assert r.status_code == 400
    assert client.get("/admin/", follow_redirects=False).status_code == 302


def test_fifth_wrong_try_in_a_minute_is_throttled(client, app):
    from tests.conftest import csrf_from
    token = csrf_from(client.get("/admin/login").get_data(as_text=True))
    codes = []
    for _ in range(5):
        r = client.post("/admin/login", data={"username": "city-editor", "password": "bad", "csrf_token": token})
        codes.append(r.status_code)
    assert codes == [401, 401, 401, 401, 429]
    assert "请一分钟后再试" in r.get_data(as_text=True)
    # Even the right password is refused while throttled.
    r = client.post("/admin/login", data={"username": "city-editor", "csrf_token": token,
                                          "password": app.config["SETTINGS"].demo_password})
    assert r.status_code == 429


def test_staff_home_shows_who_and_scope(client, auth):
    r = auth.login("v001-editor")
    assert r.status_code == 302
    home = client.get("/admin/").get_data(as_text=True)
    assert "东河村编辑" in home and "青山市 › 青石镇 › 东河村" in home and "990101001001" in home
    assert "编辑" in home
