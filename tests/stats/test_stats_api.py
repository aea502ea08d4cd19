"""Figures for leaders (INTERFACES §4.4): beacon → daily aggregates → overview, series, xlsx."""
from __future__ import annotations

import datetime as dt
import io

import openpyxl
import pytest

from portal_server.core import clock
from portal_server.stats import operations, tasks

V001 = "990101001001"
TOWN01 = "990101001000"
TOWN02 = "990101002000"
CITY = "990100000000"


def _visit(client, serial: str, token: str, pages: list[str]) -> None:
    """A box opens its portal (cookies set as on a real box), then its pages report their views."""
    r = client.get(f"/tv/?token={token}")
    assert r.status_code in (200, 302)
    assert client.get_cookie("ctv_sn", path="/tv/").value == serial
    for p in pages:
        assert client.get("/tv/beacon", query_string={"p": p}).status_code == 204


def test_page_views_grow_after_aggregation(app, auth, box):
    from tests.conftest import terminal_token

    h = auth.headers("city-leader")
    before = app.test_client().get("/api/v1/stats/overview", headers=h).get_json()
    c1, c2 = app.test_client(), app.test_client()
    _visit(c1, "CTV-HH-000001", terminal_token("CTV-HH-000001"),
           [f"/tv/v/{V001}/home.html", f"/tv/v/{V001}/s-services.html", f"/tv/v/{V001}/s-party.html"])
    _visit(c2, "CTV-HH-000002", terminal_token("CTV-HH-000002"),
           [f"/tv/v/{V001}/s-services.html", "/tv/care/"])
    # Nothing moves until the aggregation runs (figures come from the daily tables only).
    same = app.test_client().get("/api/v1/stats/overview", headers=h).get_json()
    assert same["tv"] == before["tv"]
    tasks.aggregate_day()
    ov = app.test_client().get("/api/v1/stats/overview", headers=h).get_json()
    assert ov["tv"]["page_views"] == before["tv"]["page_views"] + 5
    assert ov["tv"]["by_section"]["services"] >= 2
    assert ov["tv"]["by_section"]["party"] >= 1
    assert ov["tv"]["by_section"]["elderly"] >= 1
    assert ov["tv"]["active_boxes"] >= 2
    # The village's own figures hold them too; a town elsewhere does not.
    v = app.test_client().get(f"/api/v1/stats/overview?region={V001}", headers=h).get_json()
    assert v["tv"]["page_views"] == 5 and v["region"]["code"] == V001
    t2 = app.test_client().get(f"/api/v1/stats/overview?region={TOWN02}", headers=h).get_json()
    assert t2["tv"]["page_views"] == 0
    # Aggregating again is idempotent.
    tasks.aggregate_day()
    again = app.test_client().get("/api/v1/stats/overview", headers=h).get_json()
    assert again["tv"] == ov["tv"]
    series = app.test_client().get("/api/v1/stats/timeseries?metric=tv.page_views", headers=h).get_json()
    assert series["metric"] == "tv.page_views"
    assert series["points"][-1] == {"t": clock.today().isoformat(), "v": ov["tv"]["page_views"]}
    assert len(series["points"]) == 30


def test_figures_of_every_feature(app, auth, box):
    c = app.test_client()
    h = auth.headers("town01-leader")
    tasks.aggregate_day()
    before = c.get(f"/api/v1/stats/overview?region={V001}", headers=h).get_json()
    r = c.post("/api/v1/feedback", json={"category": "roads", "content": "村口路灯坏了"},
               headers=box("CTV-HH-000001"))
    assert r.status_code in (200, 201), r.get_data(as_text=True)
    assert c.post("/api/v1/checkins", json={}, headers=box("CTV-HH-000001")).status_code in (200, 201)
    tasks.aggregate_day()
    ov = c.get(f"/api/v1/stats/overview?region={V001}", headers=h).get_json()
    assert ov["feedback"]["received"] == before["feedback"]["received"] + 1
    assert ov["checkins"]["done"] == before["checkins"]["done"] + 1
    assert ov["checkins"]["expected"] >= ov["checkins"]["done"] - 1
    assert ov["terminals"]["total"] >= 5          # the village hall and its households' boxes
    assert set(ov) >= {"terminals", "tv", "feedback", "cases", "checkins", "alerts", "meetings", "affairs"}
    city = c.get("/api/v1/stats/overview", headers=auth.headers("city-leader")).get_json()
    assert city["affairs"]["late_villages"] <= 85
    assert city["feedback"]["received"] >= 1


def test_xlsx_holds_the_same_figures(app, auth):
    h = auth.headers("city-leader")
    c = app.test_client()
    c.get("/tv/beacon")  # nothing: no box, no line
    operations.record_beacon("CTV-HH-000003", f"/tv/v/{V001}/s-meetings.html")
    tasks.aggregate_day()
    js = c.get(f"/api/v1/stats/overview?region={TOWN01}", headers=h).get_json()
    r = c.get(f"/api/v1/stats/overview?region={TOWN01}&format=xlsx", headers=h)
    assert r.status_code == 200
    assert r.mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    wb = openpyxl.load_workbook(io.BytesIO(r.data))
    rows = {row[0]: row[1] for row in wb["概览"].iter_rows(min_row=2, values_only=True)}
    assert rows["页面浏览量"] == js["tv"]["page_views"] == 1
    assert rows["终端总数"] == js["terminals"]["total"]
    assert rows["收到诉求"] == js["feedback"]["received"]
    assert rows["浏览量·社区会议"] == 1
    kids = list(wb["下级区域"].iter_rows(min_row=2, values_only=True))
    assert len(kids) == 7 and kids[0][0] == V001
    ts = c.get("/api/v1/stats/timeseries?metric=terminals.total&format=xlsx", headers=h)
    sheet = openpyxl.load_workbook(io.BytesIO(ts.data))["趋势"]
    assert sheet.cell(1, 2).value == "终端总数" and sheet.max_row == 31


@pytest.mark.parametrize("query,status,needle", [
    ("from=2026-12-05&to=2026-12-01", 400, "晚于"),
    ("from=2023-01-01&to=2026-12-01", 400, "两年"),
    ("from=yesterday", 400, "有效日期"),
    (f"region={TOWN02}", 403, TOWN02),
    ("format=pdf", 400, "xlsx"),
])
def test_bad_periods_and_scope(app, auth, query, status, needle):
    r = app.test_client().get(f"/api/v1/stats/overview?{query}", headers=auth.headers("town01-leader"))
    assert r.status_code == status
    assert needle in r.get_json()["error"]["message"]


def test_unknown_metric_lists_the_valid_ones(app, auth):
    r = app.test_client().get("/api/v1/stats/timeseries?metric=tv.bogus", headers=auth.headers("city-leader"))
    assert r.status_code == 400
    err = r.get_json()["error"]
    assert "tv.page_views" in err["message"] and "cases.received" in err["valid"]


def test_only_analysts_and_admins(app, auth):
    c = app.test_client()
    assert c.get("/api/v1/stats/overview", headers=auth.headers("v001-editor")).status_code == 403
    assert c.get("/api/v1/stats/overview").status_code == 401
    assert c.get("/api/v1/stats/overview", headers=auth.headers("admin")).status_code == 200


@pytest.mark.parametrize("city_time", ["00:30", "07:59", "12:00", "23:50"])
def test_views_count_for_the_city_day(app, auth, city_time):
    """A view at any city hour counts for that city day, not the UTC one (files are per UTC day)."""
    day = dt.date(2026, 11, 20)
    at = clock.at_city_time(day, dt.time.fromisoformat(city_time))
    operations.record_beacon("CTV-HH-000001", f"/tv/v/{V001}/s-safety.html", at=at.timestamp())
    operations.record_beacon("CTV-HH-000001", f"/tv/v/{V001}/s-safety.html",
                             at=(at + dt.timedelta(days=1)).timestamp())
    tasks.aggregate_day(day.isoformat())
    h = auth.headers("city-leader")
    c = app.test_client()
    one = c.get(f"/api/v1/stats/overview?region={V001}&from={day}&to={day}", headers=h).get_json()
    assert one["tv"]["page_views"] == 1 and one["tv"]["by_section"] == {"safety": 1}
    prev = day - dt.timedelta(days=1)
    none = c.get(f"/api/v1/stats/overview?region={V001}&from={prev}&to={prev}", headers=h).get_json()
    assert none["tv"]["page_views"] == 0


def test_beacon_ignores_junk(app):
    assert not operations.record_beacon("CTV-HH-000001", "/etc/passwd")
    assert not operations.record_beacon("bad serial", "/tv/v/x.html")
    assert not operations.record_beacon(None, "/tv/")
    c = app.test_client()
    assert c.get("/tv/beacon?p=%0Afake").status_code == 204
    assert not list(app.config["SETTINGS"].log_dir.glob("tv-beacon-*.log"))
