"""The TV portal in headless Chromium at 1280×720 with keyboard events only (a remote control)."""
import os

import pytest

from tests.conftest import terminal_token
from stb_app.sections import SECTION_KEYS

from .conftest import BOX_V001, V001

pytestmark = pytest.mark.browser
SHOTS = os.environ.get("CTV_SHOTS", "/tmp/tv-shots")

#: Checks every page: the focused element is visible with an obvious style; no visible element's
#: box (clipped by scrolling containers) leaves the 5% safe area; no rendered text under 24 px.
PAGE_CHECK = r"""() => {
  const safe = {l: 64 - 0.5, t: 36 - 0.5, r: 1216 + 0.5, b: 684 + 0.5};
  const problems = [];
  // WCAG contrast of an element's text against the first opaque background behind it
  const rgb = (c) => (c.match(/[\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const contrast = (el) => {
    let bg = null;
    for (let p = el; p; p = p.parentElement) {
      const c = rgb(getComputedStyle(p).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] > 0.9)) { bg = c.slice(0, 3); break; }
    }
    bg = bg || [255, 255, 255];
    const a = lum(rgb(getComputedStyle(el).color).slice(0, 3)), b = lum(bg);
    return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
  };
  const f = document.querySelectorAll('.focusable.focused');
  if (f.length !== 1) problems.push('focused elements: ' + f.length);
  const clipOf = (el) => {
    let r = el.getBoundingClientRect(), box = {l: r.left, t: r.top, r: r.right, b: r.bottom};
    for (let p = el.parentElement; p; p = p.parentElement) {
      const cs = getComputedStyle(p);
      if (cs.overflow !== 'visible' && p !== document.body && p !== document.documentElement) {
        const q = p.getBoundingClientRect();
        box = {l: Math.max(box.l, q.left), t: Math.max(box.t, q.top), r: Math.min(box.r, q.right), b: Math.min(box.b, q.bottom)};
      }
    }
    return box;
  };
  if (f.length === 1) {
    const el = f[0], cs = getComputedStyle(el), b = clipOf(el);
    if (b.r - b.l < 1 || b.b - b.t < 1) problems.push('focused element not visible');
    if (cs.borderTopColor === 'rgba(0, 0, 0, 0)' && cs.outlineStyle === 'none') problems.push('focus has no visible style');
  }
  const hint = document.querySelector('.hint');
  const modalOpen = [...document.querySelectorAll('.modal, #alert')].some(m => getComputedStyle(m).display !== 'none');
  for (const el of document.querySelectorAll('body *')) {
    if (el.closest('.modal, #alert, .player, script, style, audio') && !modalOpen) continue;
    const cs = getComputedStyle(el);
    if (cs.display === 'none' || cs.visibility === 'hidden') continue;
    const b = clipOf(el);
    if (b.r - b.l < 1 || b.b - b.t < 1) continue;
    if (el.closest('.modal, #alert, .player')) continue;
    if (b.l < safe.l || b.t < safe.t || b.r > safe.r || b.b > safe.b)
      problems.push('outside safe area: ' + el.tagName + '.' + el.className + ' ' + JSON.stringify(b));
    const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    if (own && parseFloat(cs.fontSize) < 24) problems.push('text under 24px: ' + el.tagName + ' ' + cs.fontSize + ' ' + el.textContent.slice(0, 20));
    if (own && contrast(el) < 4.5) problems.push('contrast ' + contrast(el).toFixed(2) + ': ' + el.textContent.slice(0, 20));
    if (own && hint && !hint.contains(el)) {
      const h = hint.getBoundingClientRect();
      if (b.b > h.top + 1 && b.t < h.bottom - 1) problems.push('over the key hints: ' + el.textContent.slice(0, 20));
    }
  }
  return problems;
}"""


def check(page, name):
    page.screenshot(path=f"{SHOTS}/{name}.png")
    problems = page.evaluate(PAGE_CHECK)
    assert problems == [], f"{name}: {problems[:5]}"


def focused(page, attr):
    return page.evaluate(f"() => {{ const f = document.querySelector('.focused'); return f && f.getAttribute('{attr}'); }}")


def press(page, *keys):
    for k in keys:
        page.keyboard.press(k)
        page.wait_for_timeout(150)   # a remote's key repeat is throttled; people press slower


def wait_url(page, part):
    page.wait_for_function(f"() => location.pathname.indexOf({part!r}) >= 0", timeout=10000)
    page.wait_for_load_state("load")


def test_every_section_with_the_remote_alone(live_server, tv_page, publish):
    os.makedirs(SHOTS, exist_ok=True)
    for key in SECTION_KEYS:   # at least one item in every section, so an item opens everywhere
        publish(section=key, title=f"{key} 测试内容：请各位村民知悉", targets=[V001])
    page = tv_page
    page.goto(live_server + "/tv/?token=" + terminal_token(BOX_V001))
    wait_url(page, "/home.html")
    assert focused(page, "data-section") == "party"      # default focus on the first tile
    check(page, "home")
    for i, key in enumerate(SECTION_KEYS):
        # from the first tile: right along the row, down to the second row
        if i >= 4:
            press(page, "ArrowDown")
        press(page, *["ArrowRight"] * (i % 4))
        assert focused(page, "data-section") == key
        press(page, "Enter")
        wait_url(page, f"/s-{key}.html")
        check(page, f"section-{key}")
        # to the first item of the list and open it
        for _ in range(4):
            if focused(page, "class") and "item" in focused(page, "class").split():
                break
            press(page, "ArrowDown")
        item_href = focused(page, "data-href")
        assert item_href and item_href.startswith("i-"), key
        press(page, "Enter")
        wait_url(page, "/" + item_href)
        check(page, f"item-{key}")
        press(page, "Backspace")
        wait_url(page, f"/s-{key}.html")
        assert focused(page, "data-href") == item_href      # focus restored where it was
        press(page, "Escape")
        wait_url(page, "/home.html")
        assert focused(page, "data-section") == key         # and on the home screen too
        press(page, *(["ArrowUp"] if i >= 4 else []), *["ArrowLeft"] * 3)   # back to the first tile
        assert focused(page, "data-section") == "party"


def test_digit_keys_open_a_section_from_home(live_server, tv_page):
    page = tv_page
    page.goto(live_server + "/tv/?token=" + terminal_token(BOX_V001))
    wait_url(page, "/home.html")
    press(page, "7")                                           # 政民互动 is the seventh tile
    wait_url(page, "/s-interaction.html")
    assert "政民互动" in page.inner_text(".top")


def test_back_on_home_asks_before_leaving(live_server, tv_page):
    page = tv_page
    page.goto(live_server + "/tv/?token=" + terminal_token(BOX_V001))
    wait_url(page, "/home.html")
    press(page, "Backspace")
    assert page.is_visible("#exit-dialog") and focused(page, "id") == "exit-stay"
    page.screenshot(path=f"{SHOTS}/home-exit.png")
    press(page, "ArrowRight", "ArrowLeft", "Enter")             # 继续使用
    assert not page.is_visible("#exit-dialog")
    assert "/home.html" in page.url and focused(page, "data-section") == "party"


def test_large_text_mode_is_on_by_default_and_toggles_with_the_blue_key(live_server, tv_page, publish):
    for n in range(9):
        publish(section="safety", title=f"安全提示第{n + 1}期", targets=[V001])
    page = tv_page
    page.goto(live_server + "/tv/?token=" + terminal_token(BOX_V001))
    wait_url(page, "/home.html")
    assert page.evaluate("document.body.className").split().count("simple") == 1
    press(page, "ArrowRight", "ArrowRight", "ArrowRight", "Enter")
    wait_url(page, "/s-safety.html")
    visible = "() => [...document.querySelectorAll('#list .item')].filter(e => e.offsetHeight > 0).length"
    in_simple = page.evaluate(visible)
    assert 3 <= in_simple <= 5                                  # large text: fewer items a screen
    size_simple = page.evaluate("parseFloat(getComputedStyle(document.querySelector('#list .item')).fontSize)")
    check(page, "section-simple")
    press(page, "b")                                             # the blue key (keyboard b in tests)
    assert "simple" not in page.evaluate("document.body.className").split()
    assert in_simple < page.evaluate(visible) <= 8
    assert page.evaluate("parseFloat(getComputedStyle(document.querySelector('#list .item')).fontSize)") < size_simple
    check(page, "section-standard")
    # channel + turns the page
    press(page, "PageDown")
    assert page.evaluate(visible) >= 1 and "第 2 /" in page.inner_text("#pager")
    page.reload()
    page.wait_for_load_state("load")
    assert "simple" not in page.evaluate("document.body.className").split()   # remembered


def test_server_unreachable_keeps_the_page_and_recovers(live_server, tv_page):
    page = tv_page
    page.goto(live_server + "/tv/?token=" + terminal_token(BOX_V001))
    wait_url(page, "/home.html")
    page.route("**/*", lambda route: route.abort("connectionrefused"))   # the line to the server is cut
    press(page, "Enter")
    page.wait_for_selector("#offline", state="visible", timeout=10000)
    assert "网络连接异常" in page.inner_text("#offline")
    assert "/home.html" in page.url and page.is_visible("[data-section=party]")   # last good page stays
    page.screenshot(path=f"{SHOTS}/offline.png")
    page.unroute("**/*")
    page.wait_for_selector("#offline", state="hidden", timeout=15000)         # the alert poll notices
    press(page, "Enter")
    wait_url(page, "/s-party.html")


def test_error_and_pairing_screens_work_with_the_remote(live_server, tv_page):
    page = tv_page
    page.goto(live_server + "/tv/?token=" + terminal_token(BOX_V001))
    wait_url(page, "/home.html")
    page.goto(live_server + f"/tv/v/{V001}/i-987654.html")
    assert focused(page, "id") == "go-home"
    check(page, "error")
    press(page, "Enter")
    wait_url(page, "/home.html")
    page.context.clear_cookies()
    page.goto(live_server + "/tv/?token=forged")
    assert "尚未绑定" in page.inner_text("body")
    check(page, "pairing")


def test_an_emergency_alert_takes_the_screen_until_ok_and_is_acknowledged(live_server, tv_page, client, auth, app):
    import datetime as dt

    page = tv_page
    page.goto(live_server + "/tv/?token=" + terminal_token(BOX_V001))
    wait_url(page, "/home.html")
    expires = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=2)).isoformat()
    r = client.post("/api/v1/alerts", headers=auth.headers("town01-reviewer"), json={
        "regions": [V001], "category": "Met", "event": "山洪", "severity": "Moderate", "urgency": "Expected",
        "certainty": "Likely", "headline": "东河村山洪蓝色预警", "description": "今夜有强降雨，河道水位上涨。",
        "instruction": "请远离河道，低洼处群众向村委会转移。", "expires": expires})
    assert r.status_code == 201, r.get_data(as_text=True)
    alert_id = r.get_json()["id"]
    from portal_server.core.db import session
    session.remove()
    page.wait_for_selector("#alert", state="visible", timeout=12000)      # the page polls every 5 s
    assert "东河村山洪蓝色预警" in page.inner_text("#alert")
    assert focused(page, "id") == "alert-ok"
    page.screenshot(path=f"{SHOTS}/alert.png")
    press(page, "Backspace", "ArrowDown", "b", "PageDown")                 # cannot be missed
    assert page.is_visible("#alert") and "/home.html" in page.url
    press(page, "Enter")
    page.wait_for_selector("#alert", state="hidden", timeout=5000)
    assert page.is_visible("#alert-banner") and "东河村山洪蓝色预警" in page.inner_text("#alert-banner")
    deadline = dt.datetime.now() + dt.timedelta(seconds=10)
    while True:
        got = client.get(f"/api/v1/alerts/{alert_id}", headers=auth.headers("town01-reviewer")).get_json()
        session.remove()
        if BOX_V001 not in got["unacked"] or dt.datetime.now() > deadline:
            break
        page.wait_for_timeout(300)
    assert got["acked"] >= 1 and BOX_V001 not in got["unacked"]
    # acknowledged: a reload does not bring the full screen back; a cancel clears the banner
    page.reload()
    page.wait_for_timeout(1500)
    assert not page.is_visible("#alert")
    assert client.post(f"/api/v1/alerts/{alert_id}/cancel", headers=auth.headers("town01-reviewer")).status_code == 200
    session.remove()
    page.wait_for_selector("#alert-banner", state="hidden", timeout=12000)


def test_the_video_page_plays_hls_ok_pauses_back_leaves(live_server, tv_page, app):
    """A real HLS VOD made by ffmpeg, played by the page's player (hls.js on Chromium)."""
    import subprocess

    out = app.config["SETTINGS"].hls_dir / "tvtest"
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=640x360:rate=25", "-f", "lavfi",
                    "-i", "sine=frequency=440", "-t", "8", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt",
                    "yuv420p", "-g", "50", "-c:a", "aac", "-f", "hls", "-hls_time", "2", "-hls_playlist_type", "vod",
                    str(out / "index.m3u8")], check=True, timeout=60)
    page = tv_page
    page.goto(live_server + "/tv/?token=" + terminal_token(BOX_V001))
    wait_url(page, "/home.html")
    page.goto(live_server + "/tv/play?src=/hls/tvtest/index.m3u8&title=测试视频&back=/tv/section/live")
    try:
        page.wait_for_function("() => document.getElementById('video').currentTime > 1", timeout=45000)
    except Exception:
        state = page.evaluate("() => { const v = document.getElementById('video'); return [v.currentTime, v.readyState,"
                              " v.networkState, v.error && v.error.code, !!window.Hls, document.getElementById('osd-state').textContent]; }")
        raise AssertionError(f"the video did not play: {state}")
    page.screenshot(path=f"{SHOTS}/player.png")
    if page.evaluate("document.getElementById('video').muted"):   # the browser refused sound at start
        assert "已静音" in page.inner_text("#osd-state")
        press(page, "Enter")                                       # OK turns the sound on first
        assert page.evaluate("document.getElementById('video').muted") is False
    assert "正在播放" in page.inner_text("#osd-state")
    press(page, "Enter")
    assert page.evaluate("document.getElementById('video').paused") is True
    assert "已暂停" in page.inner_text("#osd-state")
    press(page, "Enter")
    page.wait_for_function("() => !document.getElementById('video').paused", timeout=5000)
    press(page, "Backspace")
    wait_url(page, "/s-live.html")


def test_the_player_refuses_foreign_schemes(tv_client):
    c = tv_client(BOX_V001)
    assert c.get("/tv/play?src=javascript:alert(1)").status_code == 404
    assert c.get("/tv/play?src=/hls/x/index.m3u8&back=javascript:alert(1)").status_code == 200
    assert "javascript:" not in c.get("/tv/play?src=/hls/x/index.m3u8&back=javascript:alert(1)").get_data(as_text=True)
