"""Staff web of meetings: schedule with CSRF, the OBS page (server, key, QR), motions with live
results, minutes after the meeting; every write in the audit trail."""
from __future__ import annotations

import datetime as dt
import io
import re

from flask import g

from portal_server.core.audit import events_for
from portal_server.core.db import session
from portal_server.meetings import operations as ops
from portal_server.meetings import queries

from .conftest import V001, V002, box_serials


def _login(auth, user):
    g.pop("csrf_token", None)
    assert auth.login(user).status_code == 302
    g.pop("csrf_token", None)


def _csrf(html):
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def test_schedule_run_and_close_a_meeting_on_the_staff_web(app, client, auth, box):
    _login(auth, "v001-editor")
    page = client.get("/admin/meetings/new").get_data(as_text=True)
    assert "安排会议" in page and V001 in page and V002 not in page  # only regions in scope
    tz = dt.timezone(dt.timedelta(hours=8))
    start = (dt.datetime.now(tz) - dt.timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M")
    end = (dt.datetime.now(tz) + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    form = {"title": "村民议事会", "region_code": V001, "starts_at": start, "ends_at": end, "agenda": "一、修路"}
    assert client.post("/admin/meetings/new", data=form).status_code == 400  # no CSRF token
    bad = client.post("/admin/meetings/new", data={**form, "ends_at": start, "csrf_token": _csrf(page)})
    assert bad.status_code == 400 and "结束时间必须晚于开始时间" in bad.get_data(as_text=True)
    r = client.post("/admin/meetings/new", data={**form, "csrf_token": _csrf(page)})
    assert r.status_code == 302
    mid = int(r.headers["Location"].rstrip("/").rsplit("/", 1)[1])
    show = client.get(f"/admin/meetings/{mid}").get_data(as_text=True)
    m = queries.meeting_by_id(mid)
    assert m.stream_key in show and app.config["SETTINGS"].rtmp_url in show and "<svg" in show
    assert "未开始" in show
    # The encoder publishes: the page shows it live and the host opens a motion.
    ops.admit_publish(m.stream_key, "3")
    session.commit()
    show = client.get(f"/admin/meetings/{mid}").get_data(as_text=True)
    assert "直播中" in show and 'id="motion-form"' in show
    r = client.post(f"/admin/meetings/{mid}/motions", data={"title": "是否同意硬化村东道路", "csrf_token": _csrf(show)})
    assert r.status_code == 302
    motion = queries.open_motion(queries.meeting_by_id(mid))
    serial = box_serials(V001)[0]
    assert client.post(f"/api/v1/meetings/{mid}/motions/{motion.id}/vote", headers=box(serial),
                       json={"choice": "yes"}).status_code == 200
    live = client.get(f"/admin/meetings/{mid}/status.json").get_json()
    assert live["motions"][0]["results"]["yes"] == 1 and live["attendance"]["boxes"] == 1
    show = client.get(f"/admin/meetings/{mid}").get_data(as_text=True)
    client.post(f"/admin/meetings/{mid}/motions/{motion.id}/close", data={"csrf_token": _csrf(show)})
    # After the meeting: minutes.
    ops.publish_done(m.stream_key, "3")
    session.commit()
    show = client.get(f"/admin/meetings/{mid}").get_data(as_text=True)
    assert "会议纪要" in show and "已结束" in show
    r = client.post(f"/admin/meetings/{mid}/minutes", data={"csrf_token": _csrf(show),
                    "file": (io.BytesIO("纪要正文".encode()), "会议纪要.txt")}, content_type="multipart/form-data")
    assert r.status_code == 302
    data = client.get(f"/api/v1/meetings/{mid}", headers=auth.headers("v001-editor")).get_json()
    assert data["minutes_name"] == "会议纪要.txt"
    assert client.get("/media/meetings/" + data["minutes_url"].rsplit("/", 1)[1]).data \
        == "纪要正文".encode()
    actions = [e.action for e in events_for("meeting", mid)]
    for a in ("meeting.schedule", "meeting.live", "meeting.motion_open", "meeting.motion_close", "meeting.ended",
              "meeting.minutes"):
        assert a in actions
    listing = client.get("/admin/meetings/").get_data(as_text=True)
    assert f'data-id="{mid}"' in listing


def test_another_villages_staff_cannot_open_the_meeting(client, auth):
    from .conftest import make_meeting
    m = make_meeting(client, auth)
    _login(auth, "v002-editor")
    assert client.get(f"/admin/meetings/{m['id']}").status_code == 404
