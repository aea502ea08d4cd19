"""视频直播 on the TV (headless Chromium at 1280×720): the channel list with now/next, zapping with
digits (2 s), channel ± and up/down between a relayed test source and the demo channels, the info
banner on OK, pause (timeshift bar), Back to the list; past programmes in the guide open as catch-up."""
from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path

import pytest
from pyjsparser import parse

from portal_server import stack
from portal_server.core.db import session
from tests.conftest import terminal_token
from tests.meetings.conftest import V001, box_serials, fresh, wait_for

from .conftest import source
from .test_channels import _post, _status

STATIC = Path(__file__).resolve().parents[2] / "epg" / "static"
SHOTS = Path(os.environ.get("CTV_SCREENSHOTS", "/tmp/ctv-screenshots"))

pytestmark = [pytest.mark.xdist_group("channels")]


def _shot(page, name):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"channels-{name}.png"))


def test_the_channel_player_script_is_es5():
    import re
    parse((STATIC / "channels.js").read_text())
    for tpl in (STATIC.parent / "templates" / "epg").glob("tv_*.html"):  # inline scripts too
        for block in re.findall(r"<script>(.*?)</script>", tpl.read_text(), re.DOTALL):
            parse(re.sub(r"\{\{.*?\}\}", "1", re.sub(r"\{%.*?%\}", "", block, flags=re.DOTALL), flags=re.DOTALL))


def test_channel_pages_need_a_box(client):
    assert client.get("/tv/channels/").status_code == 401
    assert client.get("/tv/channels/watch").status_code == 401


@pytest.mark.browser
def test_digits_zap_between_channels_banner_pause_and_back(app, client, auth, relays, live_server, tv_page):
    port = stack.free_port()
    src = source(port, label="31 测试频道")
    try:
        r = _post(client, auth, source_url=f"udp://127.0.0.1:{port}", name="青山县测试频道", number=31)
        assert r.status_code == 201, r.get_json()
        cid = r.get_json()["id"]
        wait_for(lambda: _status(cid) == "live", 40, what="live")
        serial = box_serials(V001)[0]
        session.remove()
        page = tv_page
        page.goto(f"{live_server}/tv/channels/?token={terminal_token(serial)}")
        page.wait_for_selector(".focusable.focused")
        rows = page.locator(".ch-row")
        numbers = [rows.nth(i).get_attribute("data-number") for i in range(rows.count())]
        assert numbers[:4] == ["1", "11", "12", "31"], numbers
        assert "早间新闻" in page.content() or "下一个" in page.content()  # now/next of the demo week
        _shot(page, "list")

        # Digits on the list: 3 1 → the test channel plays.
        page.keyboard.press("3")
        page.keyboard.press("1")
        page.wait_for_url("**/tv/channels/watch?ch=ch31.qingshan", timeout=8000)
        page.wait_for_function("document.getElementById('video').currentTime > 0.5", timeout=25000)
        assert page.get_attribute("body", "data-playing") == "ch31.qingshan"

        # Digits in the player: 1 1 → channel 11 after the 2 s timeout, without a page load.
        page.evaluate("window.__same = 1")
        t = time.monotonic()
        page.keyboard.press("1")
        page.wait_for_timeout(200)  # tv.js drops a key repeated within 120 ms (a held key)
        page.keyboard.press("1")
        assert page.locator("#digits").inner_text() == "11"
        page.wait_for_function("document.body.getAttribute('data-playing') === 'relay1.qingshan'", timeout=5000)
        assert time.monotonic() - t >= 1.8  # waited for a possible third digit
        assert page.evaluate("window.__same") == 1
        # 3 1 again: back on the test channel, which plays.
        page.keyboard.press("3")
        page.keyboard.press("1")
        page.wait_for_function("document.body.getAttribute('data-playing') === 'ch31.qingshan'", timeout=5000)
        page.wait_for_function("document.getElementById('video').currentTime > 0.5", timeout=25000)
        # Channel - (PageDown) and up/down.
        page.keyboard.press("PageDown")
        page.wait_for_function("document.body.getAttribute('data-playing') === 'relay2.qingshan'", timeout=3000)
        page.keyboard.press("ArrowUp")
        page.wait_for_function("document.body.getAttribute('data-playing') === 'ch31.qingshan'", timeout=3000)
        page.wait_for_function("document.getElementById('video').currentTime > 0.5", timeout=25000)

        # Zap time, key press → first frame (channel + onto the playing test channel), Chromium.
        zaps = []
        for _i in range(5):
            page.keyboard.press("ArrowDown")
            page.wait_for_function("document.body.getAttribute('data-playing') === 'relay2.qingshan'", timeout=3000)
            page.wait_for_timeout(300)
            page.keyboard.press("ArrowUp")
            zaps.append(page.wait_for_function("TVChannels.lastZapMs", timeout=20000).json_value())
        zaps.sort()
        print(f"zap time to first frame: median {zaps[2]} ms, p95 {zaps[-1]} ms over {len(zaps)} zaps (goal 1500 ms)")
        assert zaps[2] < 4000, zaps  # the goal is 1.5 s; the shared test machine is slower

        # OK: the info banner; OK again: pause with the timeshift bar.
        page.wait_for_timeout(6500)  # the banner of the last zap has gone
        assert not page.is_visible("#banner")
        page.keyboard.press("Enter")
        page.wait_for_selector("#banner", state="visible")
        assert "31" in page.inner_text("#b-no") and "青山县测试频道" in page.inner_text("#b-name")
        _shot(page, "banner")
        page.wait_for_timeout(200)  # a second OK within 120 ms of the first is a held key: tv.js drops it
        page.keyboard.press("Enter")
        page.wait_for_selector("#b-ts", state="visible")
        assert page.evaluate("document.getElementById('video').paused")
        assert "已暂停" in page.inner_text("#ts-text")
        page.wait_for_timeout(5000)
        page.keyboard.press("Enter")  # resume: timeshift from the pause point, behind live
        page.wait_for_function("document.body.getAttribute('data-mode') === 'timeshift'", timeout=5000)
        page.wait_for_function("!document.getElementById('video').paused && document.getElementById('video').currentTime > 0.5",
                               timeout=25000)
        assert "比直播晚" in page.inner_text("#ts-text")
        _shot(page, "timeshift")

        # Back: the channel list.
        page.keyboard.press("Escape")
        page.wait_for_function("location.pathname === '/tv/channels/'", timeout=5000)
        page.wait_for_selector(".ch-row")
    finally:
        src.kill()
        src.wait(5)


@pytest.mark.browser
def test_the_guide_opens_a_past_programme_as_catchup(app, client, auth, live_server, tv_page):
    from epg import operations as ops
    from epg import queries

    serial = box_serials(V001)[0]
    ch = queries.channel_by_xmltv_id("relay1.qingshan")
    now = dt.datetime.now(dt.UTC)
    ops.add_programme(ch, "回看测试节目", now - dt.timedelta(hours=1, minutes=30), now - dt.timedelta(minutes=30))
    session.commit()
    session.remove()
    page = tv_page
    page.goto(f"{live_server}/tv/guide/relay1.qingshan?day=0&token={terminal_token(serial)}")
    item = page.locator('[data-catchup="1"]', has_text="回看测试节目")
    assert item.count() == 1
    href = item.get_attribute("data-href")
    assert href.startswith("/tv/channels/watch?ch=relay1.qingshan&start=")
    page.goto(f"{live_server}{href}")
    page.wait_for_function("document.body.getAttribute('data-mode') === 'catchup'", timeout=5000)
    assert "回看" in page.inner_text("#b-now")
    # Yesterday is in the day list (catch-up of 72 h).
    page.goto(f"{live_server}/tv/guide/relay1.qingshan")
    assert page.locator(".act", has_text="昨天").count() == 1


def test_the_village_meeting_is_a_channel_while_live(app, client, auth, relays):
    from portal_server.meetings import operations as mops
    from portal_server.meetings import queries as mqueries
    from tests.meetings.conftest import make_meeting

    serial = box_serials(V001)[0]
    hall = f"v{V001}.qingshan"
    page = client.get(f"/tv/channels/?token={terminal_token(serial)}").get_data(as_text=True)
    assert f'data-channel="{hall}"' not in page  # nothing live: not in the list
    m = make_meeting(client, auth, title="村民议事会", start_in=dt.timedelta(minutes=-5))
    mops.admit_publish(mqueries.meeting_by_id(m["id"]).stream_key, "1")
    session.commit()
    session.remove()
    page = client.get("/tv/channels/").get_data(as_text=True)
    assert f'data-channel="{hall}"' in page and "村民议事会" in page
    watch = client.get(f"/tv/channels/watch?ch={hall}").get_data(as_text=True)
    assert f"/epg/live/{hall}.m3u8" in watch
    # A box of another village does not get it.
    other = box_serials("990101002001")[0]
    page = client.get(f"/tv/channels/?token={terminal_token(other)}").get_data(as_text=True)
    assert f'data-channel="{hall}"' not in page


@pytest.mark.browser
def test_a_lost_source_shows_the_slate_until_it_is_back(app, client, live_server, tv_page):
    from epg import operations as ops
    from epg import queries

    serial = box_serials(V001)[0]
    cid = queries.channel_by_xmltv_id("relay1.qingshan").id
    ops.set_channel_status(cid, "source_lost")
    session.commit()
    session.remove()
    page = tv_page
    page.goto(f"{live_server}/tv/channels/watch?ch=relay1.qingshan&token={terminal_token(serial)}")
    page.wait_for_selector("#slate", state="visible")
    assert "信号中断，正在恢复" in page.inner_text("#slate")
    _shot(page, "slate")
    fresh(lambda: (ops.set_channel_status(cid, "live"), session.commit()))
    page.wait_for_selector("#slate", state="hidden", timeout=12000)  # the player polls every 5 s
    page.goto(f"{live_server}/tv/channels/")
    assert "信号中断" not in page.inner_text("#list")
