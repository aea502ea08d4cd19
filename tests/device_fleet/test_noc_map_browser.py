"""The NOC overview in Chromium: the same city map as the cockpit (towns coloured by online rate,
clicking one lists its terminals) and the long rate tables sortable, filterable and paged."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser


def test_noc_overview_map_and_tables(live_server, staff_page):
    page = staff_page("noc")
    page.goto(live_server + "/noc/")
    page.wait_for_function("() => window.__nocMap && window.__nocMap.ctvCodes", timeout=20000)
    assert len(page.evaluate("window.__nocMap.ctvCodes")) == 14
    assert page.locator("#noc-map canvas").count() >= 1
    # 85 villages, 20 a page; the filter keeps the matching ones; sorting by rate orders the rows.
    visible = "() => [...document.querySelectorAll('#village-rates tr[data-region]')].filter(r => r.style.display !== 'none').length"
    assert page.evaluate(visible) == 20
    assert "共 85 行" in page.locator(".table-tools .pages").nth(1).inner_text()
    page.locator(".table-tools input").nth(1).fill("东河")
    assert page.evaluate(visible) == 1
    page.locator(".table-tools input").nth(1).fill("")
    page.locator("#village-rates th", has_text="总数").click()
    totals = page.evaluate("() => [...document.querySelectorAll('#village-rates tr[data-region]')]"
                           ".filter(r => r.style.display !== 'none').map(r => +r.children[2].textContent)")
    assert totals == sorted(totals)
    # Clicking a town on the map lists its terminals.
    page.goto(live_server + "/noc/")
    page.wait_for_function("() => window.__nocMap && window.__nocMap.ctvReady", timeout=20000)
    page.wait_for_timeout(500)
    xy = page.evaluate("() => window.__nocMap.convertToPixel({geoIndex: 0}, window.__nocMap.ctvCenters['990101001000'])")
    box = page.locator("#noc-map").bounding_box()
    with page.expect_navigation():
        page.mouse.click(box["x"] + xy[0], box["y"] + xy[1])
    assert "/noc/terminals" in page.url and "region=990101001" in page.url
