"""On the TV with the remote: 报平安 clears the grid worker's task; the finance disclosure is a table;
a help press needs a second OK. Screenshots at 1280×720."""
import os

import pytest

from portal_server.care import operations as ops
from portal_server.core.db import session
from tests.conftest import terminal_token as _terminal_token

SHOTS = "/tmp/sections-shots"


def terminal_token(serial):
    try:
        return _terminal_token(serial)
    finally:
        session.remove()


@pytest.mark.browser
def test_checkin_with_ok_clears_the_task(live_server, tv_page, app, elderly_box, city_time, client, auth):
    os.makedirs(SHOTS, exist_ok=True)
    hid, serial = elderly_box
    ops.check_missed(city_time("10:05"))
    session.commit()
    tasks = client.get("/api/v1/care-tasks?status=open", headers=auth.headers("grid-v001")).get_json()["items"]
    assert [t["household"]["id"] for t in tasks if t["kind"] == "missed_checkin"] == [hid]
    session.remove()
    page = tv_page
    page.goto(f"{live_server}/tv/care/?token={terminal_token(serial)}")
    page.screenshot(path=f"{SHOTS}/care-1-index.png")
    assert page.locator(".focused").get_attribute("data-action") == "checkin"
    page.keyboard.press("Enter")
    page.wait_for_function("document.getElementById('status-line').textContent.indexOf('已报平安') >= 0")
    page.screenshot(path=f"{SHOTS}/care-2-done.png")
    tasks = client.get("/api/v1/care-tasks?status=open", headers=auth.headers("grid-v001")).get_json()["items"]
    assert [t for t in tasks if t["kind"] == "missed_checkin"] == []
    session.remove()  # SQLite: do not hold the write lock the server needs next
    # 一键求助 asks for a second OK before it calls anybody.
    page.keyboard.press("ArrowRight")
    page.wait_for_timeout(150)
    assert page.locator(".focused").get_attribute("data-action") == "help"
    page.keyboard.press("Enter")
    page.wait_for_timeout(200)
    assert "再按一次" in page.locator("#status-line").inner_text()
    page.keyboard.press("Enter")
    page.wait_for_function("document.getElementById('status-line').textContent.indexOf('求助已发出') >= 0")
    page.screenshot(path=f"{SHOTS}/care-3-help.png")
    tasks = client.get("/api/v1/care-tasks?status=open", headers=auth.headers("grid-v001")).get_json()["items"]
    assert [t["kind"] for t in tasks] == ["help"]


@pytest.mark.browser
def test_finance_disclosure_is_a_table_on_tv_and_reads_aloud(live_server, tv_page, app):
    os.makedirs(SHOTS, exist_ok=True)
    page = tv_page
    page.goto(f"{live_server}/tv/affairs/?token={terminal_token('CTV-HH-000001')}")
    page.screenshot(path=f"{SHOTS}/affairs-1-index.png")
    for _ in range(6):
        if page.locator(".focused").get_attribute("data-kind") == "finance":
            break
        page.keyboard.press("ArrowDown")
        page.wait_for_timeout(150)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    page.screenshot(path=f"{SHOTS}/affairs-2-finance.png")
    table = page.locator("#finance-table")
    assert table.count() == 1
    assert table.locator("tr").count() >= 4
    assert "收入（元）" in table.inner_text() and "公开日期" in page.locator("#published").inner_text()
    # Read aloud: OK on 朗读 → an audio source from the speech worker.
    page.keyboard.press("Enter")
    page.wait_for_function("document.getElementById('speech-audio').src.indexOf('/media/speech/') >= 0",
                           timeout=60000)
    src = page.evaluate("document.getElementById('speech-audio').src")
    assert src.endswith(".m4a")
    for url in ("/tv/affairs/safety", "/tv/affairs/party"):
        page.goto(live_server + url)
        page.screenshot(path=f"{SHOTS}/affairs-{url.rsplit('/', 1)[1]}.png")
        assert page.locator(".focused").count() == 1
