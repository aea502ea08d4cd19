"""The meetings on the TV (headless Chromium at 1280×720): the list, the live page playing a real
pushed stream through hls.js with the vote overlay and the colour keys, the replay, the guide."""
from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest
from pyjsparser import parse

from portal_server.core.db import session
from portal_server.meetings import operations as ops
from portal_server.meetings import queries
from tests.conftest import terminal_token

from .conftest import V001, box_serials, fresh, make_meeting, push, wait_for

STATIC = Path(__file__).resolve().parents[2] / "portal_server" / "meetings" / "static"
SHOTS = Path(os.environ.get("CTV_SCREENSHOTS", "/tmp/ctv-screenshots"))


def _shot(page, name):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"meetings-{name}.png"))


def test_the_meeting_player_script_is_es5():
    parse((STATIC / "meetings_player.js").read_text())   # the portal's own scripts: tests/stb_app


def test_tv_pages_need_a_box(client):
    assert client.get("/tv/meetings/").status_code == 401
    assert client.get("/tv/guide/").status_code == 401


@pytest.mark.browser
def test_meetings_list_and_guide_with_the_remote(app, client, auth, live_server, tv_page):
    upcoming = make_meeting(client, auth, title="两委会议（公开）", start_in=dt.timedelta(hours=5))
    live = make_meeting(client, auth, title="村民议事会", start_in=dt.timedelta(minutes=-5))
    session.remove()
    ops.admit_publish(queries.meeting_by_id(live["id"]).stream_key, "1")
    session.commit()
    serial = box_serials(V001)[0]
    page = tv_page
    page.goto(f"{live_server}/tv/meetings/?token={terminal_token(serial)}")
    page.wait_for_selector(".focusable.focused")
    assert page.locator(f'[data-meeting="{upcoming["id"]}"]').count() == 1
    first = page.locator(".focusable.focused")
    assert first.get_attribute("data-meeting") == str(live["id"])  # the live meeting is one OK away
    # Text is large enough and inside the safe area.
    box = first.bounding_box()
    assert box["x"] >= 64 and box["x"] + box["width"] <= 1280 - 64
    size = page.evaluate("parseFloat(getComputedStyle(document.querySelector('.mt-item')).fontSize)")
    assert size >= 24
    _shot(page, "list")
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/tv/meetings/{live['id']}/live")
    page.goto(f"{live_server}/tv/guide/")
    page.wait_for_selector('[data-channel="qingshan.city"]')
    assert page.locator(f'[data-channel="v{V001}.qingshan"]').count() == 1
    assert page.locator('[data-channel^="v990101001002"]').count() == 0
    _shot(page, "guide")
    page.keyboard.press("Enter")                      # OK watches the channel
    page.wait_for_url(lambda u: "/tv/play?src=" in u and "channels/qingshan.city" in u)
    page.keyboard.press("Backspace")
    page.wait_for_url("**/tv/guide/")
    page.wait_for_selector(".focusable.focused")
    page.keyboard.press("g")                          # the green key: the channel's week
    page.wait_for_url("**/tv/guide/qingshan.city")
    assert page.locator("#list .item, .empty").count() >= 1
    _shot(page, "guide-week")


@pytest.mark.browser
@pytest.mark.xdist_group("rtmp")
def test_live_page_plays_the_stream_and_votes_with_the_colour_keys(app, client, auth, rtmp_stack, tv_page):
    m = make_meeting(client, auth, start_in=dt.timedelta(minutes=-5))
    enc = push(rtmp_stack["rtmp"], m["stream_key"], seconds=18)
    try:
        session.remove()
        wait_for(lambda: (app.config["SETTINGS"].hls_dir / "meetings" / str(m["id"]) / "live.m3u8").exists(), 15,
                 what="live playlist")
        r = client.post(f"/api/v1/meetings/{m['id']}/motions", headers=auth.headers("v001-editor"),
                        json={"title": "是否同意硬化村东道路"})
        assert r.status_code == 201, r.get_data(as_text=True)
        session.remove()
        serial = box_serials(V001)[0]
        page = tv_page
        page.goto(f"{rtmp_stack['app']}/tv/meetings/{m['id']}/live?token={terminal_token(serial)}")
        # hls.js plays it: the video's time advances.
        page.wait_for_function("document.getElementById('video').currentTime > 1.5", timeout=20000)
        page.wait_for_selector("#overlay.shown")
        assert page.inner_text("#motion-title") == "是否同意硬化村东道路"
        page.keyboard.press("g")  # green = 赞成
        page.wait_for_function("document.getElementById('motion-results').textContent.indexOf('赞成') >= 0")
        page.keyboard.press("r")  # changed to red = 反对
        page.wait_for_function("document.getElementById('motion-results').textContent.indexOf('反对') >= 0")
        _shot(page, "live-vote")
        session.remove()
        data = client.get(f"/api/v1/meetings/{m['id']}", headers=auth.headers("v001-editor")).get_json()
        assert data["vote_results"][0]["no"] == 1 and data["vote_results"][0]["total"] == 1
        assert data["attendance"]["boxes"] >= 1
    finally:
        enc.wait(40)
        session.remove()
    # The push ended: the page says so; the replay plays from the list.
    page.wait_for_function("document.getElementById('message').textContent.indexOf('会议已结束') >= 0", timeout=20000)
    wait_for(lambda: fresh(lambda: queries.meeting_by_id(m["id"]).replay_ready), 25, what="replay")
    session.remove()
    page.goto(f"{rtmp_stack['app']}/tv/meetings/")
    page.wait_for_selector(f'[data-meeting="{m["id"]}"][data-href$="/replay"]')
    page.evaluate(f"TV.focus(document.querySelector('[data-meeting=\"{m['id']}\"]'))")
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/tv/meetings/{m['id']}/replay")
    page.wait_for_function("document.getElementById('video').currentTime > 1", timeout=20000)
    assert "反对 1" in page.inner_text("#overlay")
    _shot(page, "replay")


def test_on_a_weak_line_the_box_plays_the_480p_rendition(app, client, auth, rtmp_stack, tv_page):
    """The box's hls.js reads the master playlist; with the line throttled to 0.8 Mbit/s (the main
    rendition announces 3 Mbit/s) it switches to the 480p rendition and goes on playing."""
    m = make_meeting(client, auth, start_in=dt.timedelta(minutes=-5))
    enc = push(rtmp_stack["rtmp"], m["stream_key"], seconds=40)
    try:
        session.remove()
        out = app.config["SETTINGS"].hls_dir / "meetings" / str(m["id"])
        wait_for(lambda: (out / "low.m3u8").exists() and (out / "live.m3u8").exists(), 20, what="both renditions")
        page = tv_page
        cdp = page.context.new_cdp_session(page)
        cdp.send("Network.enable")
        cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": 40,
                                                       "downloadThroughput": 800_000 / 8, "uploadThroughput": 500_000 / 8})
        page.goto(f"{rtmp_stack['app']}/tv/meetings/{m['id']}/live?token={terminal_token(box_serials(V001)[0])}")
        page.wait_for_function("TVPlayer.current && TVPlayer.current.hls() && TVPlayer.current.hls().levels.length === 2",
                               timeout=20000)
        page.wait_for_function("(function (h) { return h.currentLevel >= 0 && h.levels[h.currentLevel].height === 480; })"
                               "(TVPlayer.current.hls())", timeout=30000)
        t0 = page.evaluate("document.getElementById('video').currentTime")
        page.wait_for_function(f"document.getElementById('video').currentTime > {t0} + 1.5", timeout=20000)
        _shot(page, "live-480p")
    finally:
        enc.kill()
        enc.wait(10)
        session.remove()
