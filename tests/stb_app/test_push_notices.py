"""Content and meeting notices pushed into the open portal pages (stb_app/push.py, nginx nchan), as
alerts are: an item published to the village is on the notice line within a second and in the
latest list right after; a withdrawn one leaves the list; a meeting going live is on the notice line
and leaves it when it ends; a rolled-back change sends nothing."""
from __future__ import annotations

import datetime as dt
import time
from urllib.parse import urlparse

import pytest

from portal_server.content import operations as content_ops, queries as content_queries
from portal_server.core.accounts import user_by_username
from portal_server.core.db import session
from portal_server.meetings import queries as meeting_queries

from .conftest import BOX_V001, V001

TOWN01 = "990101001000"
from .test_push import _post, _url, _wait


def _text(page, selector: str) -> str:
    return page.evaluate("(s) => (document.querySelector(s) || {}).textContent || ''", selector)


def _submitted(client, auth, title: str, section: str = "party", **kw) -> int:
    """An item written and sent for review by the village's editor: the reviewer's approval publishes it."""
    h = auth.headers("v001-editor")
    r = _post(client, "/api/v1/contents", h, {"section": section, "title": title, "body": "<p>请相互转告。</p>",
                                               "target_regions": [V001], **kw})
    assert r.status_code == 201, r.get_data(as_text=True)
    cid = r.get_json()["id"]
    assert _post(client, f"/api/v1/contents/{cid}/submit", h).status_code == 200
    return cid


def _approve(client, auth, cid: int) -> None:
    r = _post(client, f"/api/v1/contents/{cid}/approve", auth.headers("town01-reviewer"))
    assert r.status_code == 200, r.get_data(as_text=True)


def _open(page, path: str = "home.html", box: str = BOX_V001, region: str = V001):
    page.goto(_url(box))
    assert urlparse(page.url).path == f"/tv/v/{region}/home.html"
    if path != "home.html":
        page.goto(page.url.rsplit("/", 1)[0] + "/" + path)
    page.wait_for_function("TV.pushConnected()", timeout=10000)


@pytest.mark.browser
def test_a_published_item_reaches_the_open_home_page_within_a_second_and_a_withdrawn_one_leaves(
        tv_nginx, tv_page, client, auth):
    page = tv_page
    _open(page)
    for n in range(2):
        title = f"村委会通知第{n + 1}号：本周六清理河道"
        cid = _submitted(client, auth, title, pinned=True)   # pinned: first of the home page's latest two
        t0 = time.monotonic()
        _approve(client, auth, cid)
        _wait(lambda: title in _text(page, "#notices"), 5)
        assert time.monotonic() - t0 < 1.0, "the notice line took more than a second"
        _wait(lambda: title in _text(page, "#latest"), 5)   # the latest list, fetched again (jittered)
        # The remote reaches it: the notice is a focusable link to the item.
        assert page.locator("#notices a.focusable", has_text=title).count() == 1
        t0 = time.monotonic()
        assert _post(client, f"/api/v1/contents/{cid}/withdraw", auth.headers("town01-reviewer"),
                     {"reason": "通知有误"}).status_code == 200
        _wait(lambda: title not in _text(page, "#notices"), 2)
        assert time.monotonic() - t0 < 1.0
        _wait(lambda: title not in _text(page, "#latest"), 5)
    assert page.evaluate("getComputedStyle(document.getElementById('offline')).display") == "none"


@pytest.mark.browser
def test_a_section_page_refreshes_its_list_and_keeps_the_focus(tv_nginx, tv_page, client, auth):
    page = tv_page
    _open(page, "s-party.html")
    page.keyboard.press("ArrowDown")
    focused = page.evaluate("TV.focused().getAttribute('data-href')")
    title = "党支部主题党日活动安排"
    cid = _submitted(client, auth, title)
    _approve(client, auth, cid)
    _wait(lambda: title in _text(page, "#list"), 5)
    assert page.locator(f'#list [data-href="i-{cid}.html"]').count() == 1
    assert title in _text(page, "#status-line")   # no notice line here: the status line says it
    assert page.evaluate("TV.focused().getAttribute('data-href')") == focused
    # Another section's item does not touch this list.
    other = "便民服务：周三义诊"
    _approve(client, auth, _submitted(client, auth, other, section="services"))
    page.wait_for_timeout(3000)
    assert other not in _text(page, "#list")


@pytest.mark.browser
def test_a_meeting_going_live_is_on_the_notice_line_until_it_ends(tv_nginx, tv_page, client, auth):
    page = tv_page
    _open(page)
    now = dt.datetime.now(dt.UTC)
    r = _post(client, "/api/v1/meetings", auth.headers("v001-editor"),
              {"title": "村民代表大会", "region_code": V001, "starts_at": (now - dt.timedelta(minutes=5)).isoformat(),
               "ends_at": (now + dt.timedelta(hours=1)).isoformat(), "agenda": "一、道路硬化"})
    assert r.status_code == 201, r.get_data(as_text=True)
    mid = r.get_json()["id"]
    key = meeting_queries.meeting_by_id(mid).stream_key
    session.remove()
    t0 = time.monotonic()
    r = client.post("/api/v1/streams/on_publish", data={"app": "live", "name": key, "clientid": "10"})
    session.remove()
    assert r.status_code == 200, r.get_data(as_text=True)
    _wait(lambda: "村民代表大会 正在直播" in _text(page, "#notices"), 5)
    assert time.monotonic() - t0 < 1.0
    assert page.locator("#notices a.focusable").first.get_attribute("data-href") == f"/tv/meetings/{mid}/live"
    assert _post(client, f"/api/v1/meetings/{mid}/finish", auth.headers("v001-editor")).status_code == 200
    _wait(lambda: "村民代表大会" not in _text(page, "#notices"), 2)


@pytest.mark.browser
def test_a_rolled_back_publication_sends_nothing(tv_nginx, tv_page, auth, client):
    page = tv_page
    _open(page)
    title = "尚未定稿的通知"
    cid = _submitted(client, auth, title, pinned=True)
    reviewer = user_by_username("town01-reviewer")
    content_ops.approve(reviewer, content_queries.get(cid))
    session.rollback()   # the handler failed after the approval: nothing was committed, nothing is said
    page.wait_for_timeout(1500)
    assert title not in _text(page, "#notices") and title not in _text(page, "#latest")


@pytest.mark.browser
def test_a_town_wide_item_reaches_the_town_halls_terminal(tv_nginx, tv_page, client, auth):
    """Town and city terminals listen to their own region: an item aimed at the town is pushed on the
    town's channel, which the town hall's page (and every village page of the town) hears."""
    page = tv_page
    _open(page, box="CTV-TOWN-01", region=TOWN01)
    title = "镇政府通知：冬季防火检查"
    h = auth.headers("town01-editor")
    r = _post(client, "/api/v1/contents", h, {"section": "affairs", "title": title, "body": "<p>请各村配合。</p>",
                                               "target_regions": [TOWN01], "pinned": True})
    assert r.status_code == 201, r.get_data(as_text=True)
    cid = r.get_json()["id"]
    assert _post(client, f"/api/v1/contents/{cid}/submit", h).status_code == 200
    t0 = time.monotonic()
    _approve(client, auth, cid)
    _wait(lambda: title in _text(page, "#notices"), 5)
    assert time.monotonic() - t0 < 1.0, "the town hall's notice line took more than a second"
