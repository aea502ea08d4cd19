"""The README's pictures, taken by the suite so they always show the current screens: the TV home
and a section at 1280×720, the staff web on a desktop and on a phone (390 px)."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import boxes_heard_from, terminal_token

pytestmark = pytest.mark.browser
DOCS = Path(__file__).resolve().parents[2] / "docs"
V001 = "990101001001"


def test_tv_pictures(app, live_server, tv_page):
    DOCS.mkdir(exist_ok=True)
    tv_page.goto(live_server + "/tv/?token=" + terminal_token("CTV-HH-000001"))
    tv_page.wait_for_selector(".focusable.focused")
    assert tv_page.locator("[data-section]").count() == 8
    tv_page.screenshot(path=str(DOCS / "tv-home.png"))
    tv_page.keyboard.press("Enter")          # the focused tile opens its section with OK
    tv_page.wait_for_url(lambda u: "/s-" in u or "/section/" in u)
    tv_page.wait_for_selector(".focusable.focused")
    tv_page.screenshot(path=str(DOCS / "tv-section.png"))


def test_staff_pictures(app, staff_page):
    online, total = boxes_heard_from("990100000000")   # the city's boxes heartbeating, as in service
    page = staff_page("admin", 1280, 800)
    page.goto(page.url.split("/admin")[0] + "/admin/")
    assert page.locator("header.top nav a").count() >= 5
    assert f"{online}/{total}" in page.inner_text("main")   # 终端在线 counts the boxes heard from
    page.screenshot(path=str(DOCS / "staff-home.png"))
    page = staff_page("v001-handler", 390, 844)
    page.goto(page.url.split("/admin")[0] + "/admin/feedback/")
    page.screenshot(path=str(DOCS / "staff-phone.png"), full_page=True)
