"""Staff web of grids: a clerk creates a grid and ticks households; the admin edits the rule table;
leaders see rankings and the Monday weekly report (page and xlsx)."""
from __future__ import annotations

import datetime as dt
import io
import re
from zoneinfo import ZoneInfo

import time_machine
from flask import g
from openpyxl import load_workbook

from portal_server.core import clock
from portal_server.grids import tasks
from tests.conftest import csrf_from

V001 = "990101001001"


def test_clerk_creates_a_grid_and_assigns_households_by_list(client, auth):
    auth.login("v001-clerk")
    html = client.get("/admin/grids/").get_data(as_text=True)
    assert "网格管理" in html and "第一网格" in html
    r = client.post("/admin/grids/", data={"csrf_token": csrf_from(html), "region_code": V001,
                                           "name": "第二网格", "worker": "grid-v001"})
    assert r.status_code == 302
    page = client.get(r.headers["Location"]).get_data(as_text=True)
    assert "已创建网格" in page
    ids = re.findall(r'name="household_id" value="(\d+)"', page)
    assert len(ids) >= 2
    r = client.post(r.headers["Location"], data={"csrf_token": csrf_from(page), "action": "assign",
                                                 "household_id": ids[:2]}, follow_redirects=True)
    text = r.get_data(as_text=True)
    assert "已划入 2 户" in text
    assert text.count("（本网格）") == 2
    # A worker of another village is refused with a Chinese message.
    html = client.get("/admin/grids/").get_data(as_text=True)
    r = client.post("/admin/grids/", data={"csrf_token": csrf_from(html), "region_code": V001, "name": "第三网格",
                                           "worker": "v001-handler"}, follow_redirects=True)
    assert "不是网格员" in r.get_data(as_text=True)


def test_admin_edits_rules_and_leaders_rank(client, auth):
    auth.login("admin")
    html = client.get("/admin/grids/rules").get_data(as_text=True)
    r = client.post("/admin/grids/rules", data={"csrf_token": csrf_from(html), "points_visit": "3",
                                                "yellow_on_time": "2"}, follow_redirects=True)
    assert "超出范围" in r.get_data(as_text=True)
    html = client.get("/admin/grids/rules").get_data(as_text=True)
    r = client.post("/admin/grids/rules", data={"csrf_token": csrf_from(html), "points_visit": "3"},
                    follow_redirects=True)
    assert "考核规则已保存" in r.get_data(as_text=True)
    w = auth.headers("grid-v001")
    me = client.get("/api/v1/grids/me", headers=w).get_json()
    client.post("/api/v1/visits", json={"household_id": me["households"][0]["id"], "note": "走访"}, headers=w)
    a = client.get("/api/v1/assessment?level=worker", headers=auth.headers("city-leader")).get_json()
    item = next(i for i in a["items"] if i["key"] == "grid-v001")
    assert item["visits"] == 1 and item["points"] == 3 + 10  # 3 per visit + the full on-time points
    client.post("/admin/logout", data={"csrf_token": csrf_from(client.get("/admin/").get_data(as_text=True))})
    g.pop("csrf_token", None)  # tests share one app context (see tests/feedback/conftest.py)
    auth.login("town01-leader")
    page = client.get("/admin/grids/ranking?level=worker").get_data(as_text=True)
    assert "东河村网格员" in page and "网格考核" in page
    x = client.get("/admin/grids/ranking.xlsx?level=village")
    ws = load_workbook(io.BytesIO(x.data)).active
    assert ws["B2"].value == "村（社区）" and ws.max_row > 3


def test_weekly_report_generated_on_monday(client, auth, app):
    tz = ZoneInfo(app.config["SETTINGS"].timezone)
    w = auth.headers("grid-v001")
    hid = client.get("/api/v1/grids/me", headers=w).get_json()["households"][0]["id"]
    wednesday = dt.datetime(2026, 11, 25, 10, 0, tzinfo=tz)
    with time_machine.travel(wednesday, tick=False):
        r = client.post("/api/v1/visits", json={"household_id": hid, "note": "周三走访"}, headers=w)
        assert r.status_code == 201
    monday = dt.datetime(2026, 11, 30, 7, 0, tzinfo=tz)
    with time_machine.travel(monday, tick=False):
        assert clock.today().weekday() == 0
        rid = tasks.weekly_report()
        assert rid is not None
        assert tasks.weekly_report() is None  # the next hourly tick finds it done
    auth.login("city-leader")
    page = client.get(f"/admin/grids/reports/{rid}").get_data(as_text=True)
    assert "2026-11-23 至 2026-11-29" in page and "东河村网格员" in page
    assert "走访 1 次" in page
    x = client.get(f"/admin/grids/reports/{rid}.xlsx")
    ws = load_workbook(io.BytesIO(x.data)).active
    rows = {r[1].value: r for r in ws.iter_rows(min_row=3)}
    assert rows["东河村网格员"][3].value == 1
    assert "周报告" in client.get("/admin/grids/reports").get_data(as_text=True)
