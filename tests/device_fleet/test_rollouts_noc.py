"""Firmware rollouts in waves (auto-pause, rollback) and the NOC pages."""
import hashlib
import re

from device_fleet import operations
from device_fleet.models import Command
from portal_server.core.accounts import user_by_username
from portal_server.core.audit import events_for
from portal_server.core.db import session
from sqlalchemy import select

from tests.conftest import csrf_from


def _ack_all(rollout_id, ok=True, limit=None):
    cmds = session.scalars(select(Command).where(Command.rollout_id == rollout_id, Command.status == "sent")).all()
    for c in cmds[:limit]:
        operations.command_ack(c.serial, c.id, ok, "installed" if ok else "flash write error")
    return len(cmds[:limit] if limit else cmds)


def test_rollout_waves_advance_pause_on_errors_and_roll_back(app):
    noc = user_by_username("noc")
    old = operations.upload_firmware("2.3.1", b"old image", noc)
    fw = operations.upload_firmware("2.4.0", b"new image", noc)
    assert fw.sha256 == hashlib.sha256(b"new image").hexdigest()
    ro = operations.start_rollout(fw, noc, {"region": "990101001"[:9] and "990101002000"}, waves=[10, 50, 100],
                                  success_threshold=0.9, error_threshold=0.2)
    c = operations.rollout_counts(ro)
    total = c["total"]
    assert total == 6 * 4 + 6 + 1  # town 02: 6 villages × 4 households, 6 village halls, the town terminal
    assert c["sent"] == 4  # ceil(10% of 31)
    assert _ack_all(ro.id) == 4
    session.refresh(ro)
    assert ro.wave == 1 and operations.rollout_counts(ro)["sent"] == 16 - 4
    _ack_all(ro.id, ok=False, limit=3)  # 3 of 16 failed ≥ 20%? 3/16 = 19% → not yet
    session.refresh(ro)
    assert ro.status == "running"
    _ack_all(ro.id, ok=False, limit=1)  # 4/16 = 25% → paused by itself
    session.refresh(ro)
    assert ro.status == "paused" and "失败率" in ro.pause_reason
    assert operations.rollout_counts(ro)["pending"] == total - 16
    n = operations.rollback_rollout(ro, noc)
    session.refresh(ro)
    assert ro.status == "rolled_back" and n == 4
    back = session.scalars(select(Command).where(Command.batch_id.is_not(None))).all()
    assert len(back) == 4 and all(c.args["version"] == "2.3.1" and c.args["sha256"] == old.sha256 for c in back)
    assert [e.action for e in events_for("rollout", ro.id)] == ["rollout.start", "rollout.advance",
                                                                "rollout.auto_pause", "rollout.rollback"]


def test_noc_pages_for_noc_only_and_actions_audited(app, client, auth):
    from tests.conftest import AuthActions
    other = app.test_client()
    AuthActions(other, app.config["SETTINGS"].demo_password).login("v001-editor")
    assert other.get("/noc/").status_code == 403
    assert client.get("/noc/").status_code == 302  # login first
    auth.login("noc")
    page = client.get("/noc/").get_data(as_text=True)
    assert "终端地图" in page and 'data-region="990101001001"' in page and 'id="noc-map"' in page
    assert "990101014000" in page  # every town has its row
    lst = client.get("/noc/terminals?region=990101001001").get_data(as_text=True)
    assert lst.count("data-serial=") == 5
    assert client.get("/noc/terminals?kind=village&firmware=2.3.1").status_code == 200
    term = client.get("/noc/terminals/CTV-VIL-001").get_data(as_text=True)
    assert "命令记录" in term and "心跳历史" in term
    r = client.post("/noc/terminals/CTV-VIL-001", data={"csrf_token": csrf_from(term), "type": "message",
                                                         "text": "今晚七点开会"})
    assert r.status_code == 302
    term = client.get("/noc/terminals/CTV-VIL-001").get_data(as_text=True)
    assert "屏幕消息" in term and "已发送" in term
    ev = [e for e in events_for("command", re.search(r'data-command="(\w+)"', term).group(1))]
    assert ev and ev[0].actor == "noc" and ev[0].action == "command.send"
    # Bulk command from the list page, then its result line.
    r = client.post("/noc/terminals", data={"csrf_token": csrf_from(lst), "region": "990101001001",
                                            "type": "reload"})
    assert "已向 5 台终端发送" in client.get(r.headers["Location"]).get_data(as_text=True)
    assert client.get("/noc/alarms").status_code == 200
    ro_page = client.get("/noc/rollouts").get_data(as_text=True)
    from io import BytesIO
    r = client.post("/noc/rollouts", data={"csrf_token": csrf_from(ro_page), "action": "upload", "version": "2.5.0",
                                           "file": (BytesIO(b"firmware bytes"), "fw.bin")},
                    content_type="multipart/form-data")
    assert "固件 2.5.0 已上传" in client.get(r.headers["Location"]).get_data(as_text=True)
    dl = client.get("/noc/firmware/" + re.search(r"ctv-2\.5\.0-\w+\.bin", str(
        [f.filename for f in operations.session.scalars(select(operations.Firmware))])).group(0))
    assert dl.data == b"firmware bytes"
