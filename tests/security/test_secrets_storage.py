"""Secrets and storage: a missing or short key stops the start, per-purpose keys, the rotation
command (MQTT keeps working, personal data re-encrypted, audit chain re-keyed), private files,
an HMAC audit chain, SQLite transactions, probes that cannot follow playlists."""
import os
import stat
import subprocess
import time

import pytest
from sqlalchemy import select, text, update

from portal_server.core import audit, crypto, keys
from portal_server.core.config import Settings
from portal_server.core.db import session
from portal_server.core.households import Household


def test_a_missing_or_short_key_refuses_to_start(tmp_path):
    (tmp_path / "secret_key").write_text("")
    with pytest.raises(ValueError, match="refusing to start"):
        Settings(data_dir=tmp_path)
    (tmp_path / "secret_key").write_text("short")
    with pytest.raises(ValueError, match="refusing to start"):
        Settings(data_dir=tmp_path)
    with pytest.raises(ValueError, match="COMMUNITV_SECRET_KEY"):
        Settings(data_dir=tmp_path, secret_key="x" * 12)
    (tmp_path / "secret_key").unlink()
    s = Settings(data_dir=tmp_path)          # generated on first start, owner-only
    assert len(s.secret_key) >= 32
    assert stat.S_IMODE((tmp_path / "secret_key").stat().st_mode) == 0o600


def test_keys_are_separate_per_purpose():
    a, b = keys.derive("k" * 40, "audit-chain"), keys.derive("k" * 40, "hls-link")
    assert a != b and len(a) == 32 and keys.derive("k" * 40, "audit-chain") == a


def test_database_and_nginx_config_are_private(app, tmp_path):
    from portal_server import stack
    db_file = app.config["SETTINGS"].database_url.split("///", 1)[1]
    assert stat.S_IMODE(os.stat(db_file).st_mode) == 0o600
    conf = stack.write_nginx(tmp_path / "n", app.config["SETTINGS"], stack.free_port(), stack.free_port())
    assert stat.S_IMODE(conf.stat().st_mode) == 0o600


def test_the_audit_chain_is_keyed(app):
    audit.record("test.event", "thing", 1, None, actor="tester", note="x")
    session.commit()
    assert audit.verify().ok
    # A database writer re-hashing an edited row with SHA-256 (no key) is caught.
    import hashlib
    import json
    ev = session.scalars(select(audit.AuditEvent).order_by(audit.AuditEvent.id.desc())).first()
    at = ev.at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    material = json.dumps([ev.prev_hash, ev.id, at, "someone-else", ev.action, ev.object_type, ev.object_id,
                           ev.region_code, ev.detail, ev.ip], ensure_ascii=False, separators=(",", ":"))
    session.execute(update(audit.AuditEvent).where(audit.AuditEvent.id == ev.id).values(
        actor="someone-else", hash=hashlib.sha256(material.encode()).hexdigest()))
    session.commit()
    assert not audit.verify().ok


def test_rotation_keeps_mqtt_reencrypts_personal_data_and_rekeys_audit(app, tmp_path, monkeypatch):
    from portal_server.core import rotation
    monkeypatch.delenv("COMMUNITV_SECRET_KEY", raising=False)
    old = app.config["SETTINGS"]
    hh = session.scalars(select(Household).where(Household.phone_enc.is_not(None))).first()
    phone = crypto.decrypt(hh.phone_enc)
    mqtt_before = old.mqtt_server_password
    counts = rotation.rotate(old, new_key="n" * 48)
    assert counts["personal_data"] > 0 and counts["audit_events"] > 0
    new = Settings(data_dir=old.data_dir, database_url=old.database_url)
    assert new.secret_key == "n" * 48
    assert stat.S_IMODE((old.data_dir / "secret_key").stat().st_mode) == 0o600
    assert new.mqtt_server_password == mqtt_before            # the broker account still works
    session.expire_all()
    enc = session.get(Household, hh.id).phone_enc
    assert crypto.decrypt(enc, secret="n" * 48) == phone and crypto.decrypt(enc, secret=old.secret_key) is None
    app.config["SETTINGS"] = new
    assert audit.verify().ok


def test_sqlite_reads_do_not_wait_for_a_writer(app, client):
    """A GET runs in a deferred transaction: it answers while another connection holds the write lock."""
    from portal_server.core import db
    assert db.engine().dialect.name == "sqlite"
    conn = db.engine().raw_connection()
    cur = conn.cursor()
    cur.execute("BEGIN IMMEDIATE")
    cur.execute("UPDATE audit_head SET seq = seq WHERE id = 1")
    try:
        t0 = time.monotonic()
        r = client.get("/api/v1/regions/990100000000")
        assert r.status_code == 200 and time.monotonic() - t0 < 5
        sync = session.execute(text("PRAGMA synchronous")).scalar()
        assert sync == 2  # FULL
    finally:
        conn.rollback()
        conn.close()


def test_an_upload_probe_never_follows_a_playlist(tmp_path):
    from portal_server.content import media
    seg = tmp_path / "seg.ts"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=160x120:rate=10", "-t", "1",
                    "-pix_fmt", "yuv420p", "-f", "mpegts", str(seg)], check=True, timeout=60)
    evil = tmp_path / "holiday.mp4"
    evil.write_text(f"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1.0,\nfile://{seg}\n#EXT-X-ENDLIST\n")
    assert media._has_video_stream(evil) is False
    assert media._has_video_stream(seg) is True
