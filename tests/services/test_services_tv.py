"""With the remote only: find 居民养老保险参保登记 within three levels, read its materials, book a
slot, see the code on screen, see the booking in the staff web; cancel on TV. Screenshots at 1280×720."""
import os
import re
from pathlib import Path

import pytest
from pyjsparser import parse

from portal_server.core.db import session
from tests.conftest import terminal_token as _terminal_token

SHOTS = "/tmp/sections-shots"
PENSION = "居民养老保险参保登记"


def terminal_token(serial):
    try:
        return _terminal_token(serial)
    finally:
        session.remove()


def test_tv_scripts_are_es5():
    import portal_server
    root = Path(portal_server.__file__).parent
    for pkg in ("services", "care", "affairs"):
        for tpl in (root / pkg / "templates").rglob("tv_*.html"):
            for block in re.findall(r"<script>(.*?)</script>", tpl.read_text(), re.DOTALL):
                js = re.sub(r"\{%.*?%\}", "", block, flags=re.DOTALL)
                js = re.sub(r"\{\{.*?\}\}", "1", js)
                parse(js)


def test_tv_pages_need_a_box(client):
    for url in ("/tv/services/", "/tv/care/", "/tv/affairs/", "/tv/affairs/party"):
        assert client.get(url).status_code == 401


def seek(page, text, keys=("ArrowRight", "ArrowDown"), limit=30):
    """Move with the arrow keys until the focused element shows ``text`` (a person scanning tiles)."""
    for _ in range(limit):
        if text in page.locator(".focused").inner_text():
            return
        for k in keys:
            page.keyboard.press(k)
            page.wait_for_timeout(120)
            if text in page.locator(".focused").inner_text():
                return
    raise AssertionError(f"could not reach {text!r}; focused: {page.locator('.focused').inner_text()!r}")


def ok(page):
    with page.expect_navigation():
        page.keyboard.press("Enter")


@pytest.mark.browser
def test_find_read_book_with_the_remote_then_staff_sees_it(live_server, tv_page, browser, app):
    os.makedirs(SHOTS, exist_ok=True)
    page = tv_page
    page.goto(f"{live_server}/tv/services/?token={terminal_token('CTV-HH-000001')}")
    page.screenshot(path=f"{SHOTS}/services-1-top.png")
    # 办事指南 shows the categories and the focused one's items on one screen: arrows, then one OK.
    seek(page, "社会保障", keys=("ArrowDown",))
    page.keyboard.press("ArrowRight")
    page.wait_for_timeout(120)
    seek(page, PENSION, keys=("ArrowDown",))
    page.screenshot(path=f"{SHOTS}/services-2-level3.png")
    ok(page)
    assert "/tv/services/item/" in page.url
    page.screenshot(path=f"{SHOTS}/services-3-item.png")
    assert page.locator("#item-name").inner_text() == PENSION
    mats = page.locator("#materials li").all_inner_texts()
    assert any("居民身份证" in m and "原件" in m for m in mats) and any("户口簿" in m for m in mats)
    # Text is large enough for old eyes, and the item fits the safe area.
    size = page.evaluate("parseFloat(getComputedStyle(document.querySelector('#materials li')).fontSize)")
    assert size >= 24
    assert page.locator("svg").count() >= 1  # the QR code to the phone page
    assert page.locator(".focused").get_attribute("data-action") == "apply"   # 我要办理 first, 预约 next to it
    page.keyboard.press("ArrowRight")
    page.wait_for_timeout(120)
    assert page.locator(".focused").get_attribute("data-action") == "book"
    ok(page)
    page.screenshot(path=f"{SHOTS}/services-4-slots.png")
    assert page.locator(".focused").get_attribute("data-slot")
    seek(page, "东河村便民服务站", keys=("ArrowDown",))  # the village hall: the item can be done locally
    with page.expect_navigation():
        page.keyboard.press("Enter")
    page.screenshot(path=f"{SHOTS}/services-5-booked.png")
    code = page.locator("[data-booking-code]").first.inner_text()
    assert re.fullmatch(r"YY\d{4}\d{5}", code), code
    assert "预约成功" in page.content()

    # The staff web of the village shows the booking.
    staff = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    sp = staff.new_page()
    sp.goto(f"{live_server}/admin/login")
    sp.fill("input[name=username]", "v001-handler")
    sp.fill("input[name=password]", app.config["SETTINGS"].demo_password)
    sp.click("button[type=submit]")
    sp.wait_for_url(lambda u: "/login" not in u)  # signed in before leaving the page
    sp.goto(f"{live_server}/admin/services/bookings?all=1")
    sp.screenshot(path=f"{SHOTS}/staff-bookings.png", full_page=True)
    assert sp.locator(f"tr[data-code='{code}']").count() == 1
    staff.close()

    # Cancel on the TV with OK.
    assert page.locator(".focused").inner_text().strip() == "取消预约"
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "已取消" in page.locator("body").inner_text()
    page.screenshot(path=f"{SHOTS}/services-6-cancelled.png")
