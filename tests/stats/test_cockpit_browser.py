"""The leaders' cockpit in Chromium: a town leader sees charts and a map of their town only; the
city leader drills from the city to a town to a village by clicking the map; a TV page reports
its view (beacon) and the figure grows after aggregation. Screenshots go to docs/."""
from __future__ import annotations

from pathlib import Path

import pytest

from portal_server.stats import tasks
from tests.conftest import boxes_heard_from, terminal_token

pytestmark = pytest.mark.browser
DOCS = Path(__file__).resolve().parents[2] / "docs"
CITY = "990100000000"
TOWN01 = "990101001000"
V001 = "990101001001"


def _drawn(page):
    page.wait_for_function("() => window.__cockpit && window.__cockpit.mapCodes && window.__cockpit.charts.trend",
                           timeout=20000)
    return page.evaluate("({codes: window.__cockpit.mapCodes, region: window.__cockpit.data.region.code})")


def _click_region(page, code):
    """Click the middle of a region's shape on the map, as a leader would."""
    page.wait_for_function("() => window.__cockpit.charts.map.ctvReady", timeout=20000)
    xy = page.evaluate("""code => {
        var c = window.__cockpit, f = c.map.features.filter(function (x) { return x.properties.code === code; })[0];
        return c.charts.map.convertToPixel({geoIndex: 0}, f.properties.center); }""", code)
    box = page.locator("#map").bounding_box()
    with page.expect_navigation():
        page.mouse.click(box["x"] + xy[0], box["y"] + xy[1])


def test_town_leader_sees_their_town_only(app, live_server, browser, tv_page, staff_page):
    # A box visits two sections on the TV; its pages report the views.
    tv_page.goto(live_server + "/tv/?token=" + terminal_token("CTV-HH-000001"))
    tv_page.wait_for_load_state("load")
    tv_page.goto(live_server + f"/tv/v/{V001}/s-services.html")
    tv_page.wait_for_function("() => window.TV && TV.lastBeacon && TV.lastBeacon.complete")
    online, total = boxes_heard_from(TOWN01)
    tasks.aggregate_day()

    page = staff_page("town01-leader", 1440, 1000)
    page.goto(live_server + "/admin/cockpit/")
    got = _drawn(page)
    assert got["region"] == TOWN01
    assert len(got["codes"]) == 7 and all(c.startswith("990101001") for c in got["codes"])
    for chart in ("#map", "#trend", "#rank", "#sections"):
        assert page.locator(chart + " canvas").count() >= 1, chart
    assert page.locator("#figures .fig").count() == 14
    assert f"{online}/{total}" in page.locator("#figures").inner_text()  # the boxes heard from, of all the town's
    views = page.evaluate("window.__cockpit.data.now.tv.by_section")
    assert views.get("services", 0) >= 1
    DOCS.mkdir(exist_ok=True)
    page.wait_for_timeout(600)   # let the charts' entry animation end before the picture
    page.screenshot(path=str(DOCS / "cockpit.png"), full_page=True)
    # Another town is refused, with the reason on screen.
    r = page.goto(live_server + "/admin/cockpit/?region=990101002000")
    assert r.status == 403


def test_city_leader_drills_down_by_clicking_the_map(app, live_server, browser, staff_page):
    boxes_heard_from(CITY)
    tasks.aggregate_day()
    page = staff_page("city-leader", 1440, 1000)
    page.goto(live_server + "/admin/cockpit/")
    got = _drawn(page)
    assert got["region"] == "990100000000" and len(got["codes"]) == 14
    _click_region(page, TOWN01)
    got = _drawn(page)
    assert got["region"] == TOWN01 and len(got["codes"]) == 7
    assert "青石镇" in page.locator(".crumbs").inner_text()
    _click_region(page, V001)
    got = _drawn(page)
    assert got["region"] == V001 and got["codes"] == [V001]
    assert page.locator(".crumbs a").count() == 3
    # The wall screen: 1920×1080, no staff menu, nothing sideways.
    wall = browser.new_context(viewport={"width": 1920, "height": 1080}, locale="zh-CN",
                               storage_state=page.context.storage_state())
    w = wall.new_page()
    w.goto(live_server + "/admin/cockpit/?screen=1")
    _drawn(w)
    assert w.evaluate("document.body.className").find("wall") >= 0
    assert w.evaluate("document.documentElement.scrollWidth <= 1920")
    # The ranking of 14 towns gets the height of two boards: each name on its own line, none overlapping.
    assert w.evaluate("document.getElementById('rank').clientHeight") >= 14 * 28
    assert w.evaluate("document.documentElement.scrollHeight <= 1080")  # the whole cockpit on one wall screen
    w.wait_for_timeout(600)
    w.screenshot(path=str(DOCS / "cockpit-wall.png"))
    wall.close()


def test_cockpit_on_a_phone(app, live_server, browser, staff_page):
    page = staff_page("town01-leader", 390, 844)
    page.goto(live_server + "/admin/cockpit/")
    _drawn(page)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


def test_boards_draw_with_the_chart_helper(app, live_server, browser, staff_page):
    """The feedback ranking and the affairs board use the same helper: axes, names, an export."""
    page = staff_page("admin", 1440, 1000)
    for path, chart in (("/admin/feedback/board", "#villages-chart"), ("/admin/affairs/board", "#late-chart"),
                        ("/admin/grids/ranking?level=village", "#ranking-chart")):
        page.goto(live_server + path)
        page.wait_for_selector(chart + "[data-drawn='1'] canvas", timeout=20000)
        spec = page.evaluate(f"JSON.parse(document.querySelector('{chart}').getAttribute('data-ctv-chart'))")
        assert spec["xName"] and spec["yName"]
        assert page.locator(".board-chart a.button", has_text="导出 Excel").count() >= 1
    r = page.request.get(live_server + "/admin/affairs/board?format=xlsx")
    import io

    import openpyxl
    ws = openpyxl.load_workbook(io.BytesIO(r.body()))["督办看板"]
    assert ws.cell(1, 1).value == "镇" and ws.max_row == 86
