"""The page is the box: alerts pushed into the portal page through nginx (no box agent), city time in
the header whatever the box's zone or clock, and the portal URL that nginx admits by itself."""
from __future__ import annotations

import datetime as dt
import json
import subprocess
import time
from urllib.parse import parse_qs, urlencode, urlparse
from zoneinfo import ZoneInfo

import pytest
import requests

from portal_server.core import mqtt
from portal_server.core.db import session
from portal_server.core.terminals import portal_url, terminal_by_serial

from .conftest import BOX_V001, V001

ALERT = {"regions": [V001], "category": "Met", "event": "山洪灾害预警", "severity": "Severe",
         "urgency": "Immediate", "certainty": "Likely", "description": "上游强降雨",
         "instruction": "请立即转移到村委会避险点"}


@pytest.fixture(autouse=True)
def _quiet_alerts(app):
    """No speech synthesis; afterwards the retained alert topics this test used are cleared."""
    app.config["ALERTS_SPEECH"] = False
    yield
    for code in (V001, "990101001000", "990100000000"):
        mqtt.publish(f"ctv/v1/region/{code}/alert", b"", retain=True)


def _url(serial: str, **kw) -> str:
    url = portal_url(terminal_by_serial(serial), **kw)
    session.remove()  # SQLite: do not hold the write lock while the live server writes
    return url


def _post(client, path, headers, json=None):
    r = client.post(path, json=json or {}, headers=headers)
    session.remove()
    return r


def _alert_shown(page, headline: str) -> bool:
    return page.evaluate("""(h) => { const a = document.getElementById('alert');
        return getComputedStyle(a).display !== 'none' && document.getElementById('alert-headline').textContent === h; }""",
                         headline)


def _wait(fn, timeout: float, step: float = 0.02) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if fn():
            return time.monotonic() - t0
        time.sleep(step)
    raise AssertionError(f"not within {timeout} s")


@pytest.mark.browser
def test_a_page_without_agent_shows_its_villages_alert_within_a_second(tv_nginx, tv_page, client, auth):
    page = tv_page
    page.goto(_url(BOX_V001))
    assert urlparse(page.url).path == f"/tv/v/{V001}/home.html"
    page.wait_for_function("TV.pushConnected()", timeout=10000)
    h = auth.headers("v001-reviewer")
    for n in range(3):
        headline = f"山洪预警第{n + 1}次：请向高处转移"
        t0 = time.monotonic()
        r = _post(client, "/api/v1/alerts", h, {**ALERT, "headline": headline})
        assert r.status_code == 201, r.get_data(as_text=True)
        aid = r.get_json()["id"]
        _wait(lambda: _alert_shown(page, headline), 5)
        shown = time.monotonic() - t0
        assert shown < 1.0, f"alert {n + 1} shown after {shown:.2f} s"
        t0 = time.monotonic()
        assert _post(client, f"/api/v1/alerts/{aid}/cancel", h).status_code == 200
        _wait(lambda: not _alert_shown(page, headline), 5)
        assert time.monotonic() - t0 < 1.0, "the cancelled alert stayed on screen"
    assert page.evaluate("getComputedStyle(document.getElementById('offline')).display") == "none"


@pytest.mark.browser
def test_a_refused_push_connection_falls_back_to_polling_silently(live_server, tv_page, client, auth):
    """Straight to the app (no nginx): the push URL is refused; the 5 s poll still brings the alert and
    the resident sees no error."""
    page = tv_page
    page.goto(live_server + "/tv/?token=" + parse_qs(urlparse(_url(BOX_V001)).query)["token"][0])
    page.wait_for_timeout(1500)
    assert page.evaluate("TV.pushConnected()") is False
    headline = "停水通知：明日检修"
    r = _post(client, "/api/v1/alerts", auth.headers("v001-reviewer"), {**ALERT, "headline": headline})
    assert r.status_code == 201
    _wait(lambda: _alert_shown(page, headline), 8)
    assert page.evaluate("getComputedStyle(document.getElementById('offline')).display") == "none"
    assert page.evaluate("(document.getElementById('status-line') || {}).textContent || ''") == ""


def _city_clock(at: dt.datetime) -> str:
    local = at.astimezone(ZoneInfo("Asia/Shanghai"))
    return f"{local.month}月{local.day}日 星期{'一二三四五六日'[local.weekday()]} {local:%H:%M}"


@pytest.mark.browser
def test_the_header_clock_shows_city_time_on_a_utc_box_whose_clock_is_hours_wrong(tv_nginx, browser):
    ctx = browser.new_context(viewport={"width": 1280, "height": 720}, locale="zh-CN", timezone_id="UTC")
    try:
        page = ctx.new_page()
        # The box's clock is 5 h 17 min behind and its zone UTC: only the server's Date header is right.
        page.clock.install(time=time.time() - 5 * 3600 - 17 * 60)
        page.goto(_url(BOX_V001))
        page.wait_for_function("document.getElementById('clock').textContent.length > 0")
        page.wait_for_timeout(500)
        shown = page.text_content("#clock")
        now = dt.datetime.now(dt.timezone.utc)
        assert shown in (_city_clock(now - dt.timedelta(minutes=1)), _city_clock(now)), shown
        assert page.evaluate("TV.today()") in {(now + dt.timedelta(hours=8) + dt.timedelta(seconds=s)).strftime("%Y-%m-%d")
                                               for s in (-60, 0)}
    finally:
        ctx.close()


# The portal URL, verified by nginx ---------------------------------------------------------------

def _get(url: str, **kw):
    return requests.get(url, allow_redirects=False, timeout=5, **kw)


def test_nginx_admits_a_boxs_portal_url_by_itself_and_refuses_a_forged_one(tv_nginx):
    url = _url(BOX_V001)
    assert url.startswith(tv_nginx + "/tv/?token=")
    r = _get(url)
    assert r.status_code == 302 and r.headers["Location"] == f"/tv/v/{V001}/home.html"
    assert "nginx" in r.text  # nginx's own redirect page: the app never saw this request
    assert {"ctv_terminal", "ctv_vk"} <= set(r.cookies.keys())
    home = _get(tv_nginx + r.headers["Location"], cookies=r.cookies)
    assert home.status_code == 200 and "社区公共服务" in home.text
    # A forged URL: another village, or a changed expiry, with the old signature.
    q = parse_qs(urlparse(url).query)
    for change in ({"vc": "990101001002"}, {"e": str(int(q["e"][0]) + 86400 * 365)}, {"ver": "99"}):
        forged = {k: v[0] for k, v in q.items()} | change
        r = _get(tv_nginx + "/tv/?" + urlencode(forged))
        assert r.status_code == 403, change
        assert "ctv_vk" not in r.cookies


def test_an_expired_portal_url_goes_to_the_pairing_screen(tv_nginx):
    url = _url(BOX_V001, expires=int(time.time()) - 60)
    r = _get(url)
    assert r.status_code == 200 and "本机的登录信息已失效" in r.text
    assert "ctv_vk" not in r.cookies


def test_rotating_a_boxs_token_revokes_its_old_url_and_republishes_its_config(tv_nginx, client, auth, app):
    old = _url(BOX_V001)
    assert _get(old).status_code == 302
    # Another role may not rotate.
    assert _post(client, f"/api/v1/terminals/{BOX_V001}/token/rotate", auth.headers("v001-editor")).status_code == 403
    r = _post(client, f"/api/v1/terminals/{BOX_V001}/token/rotate", auth.headers("noc"), {"reason": "盒子转卖"})
    assert r.status_code == 200, r.get_data(as_text=True)
    new = r.get_json()["portal_url"]
    assert new != old
    # The old URL (and its token) now open the pairing screen; the new one goes straight home.
    r = _get(old)
    assert r.status_code == 200 and "本机的登录信息已失效" in r.text and "ctv_vk" not in r.cookies
    r = _get(new)
    assert r.status_code == 302 and r.headers["Location"] == f"/tv/v/{V001}/home.html" and "nginx" in r.text
    # The box's retained config carries the new URL.
    u = urlparse(app.config["SETTINGS"].mqtt_server_url)
    out = subprocess.run(["mosquitto_sub", "-h", u.hostname, "-p", str(u.port), "-u", u.username, "-P", u.password,
                          "-t", f"ctv/v1/dev/{BOX_V001}/config", "-C", "1", "-W", "5"],
                         capture_output=True, text=True, timeout=10)
    assert json.loads(out.stdout)["portal_url"] == new


def test_an_expired_or_rotated_box_token_gets_401_from_the_api(client, auth):
    from portal_server.core.terminals import portal_token

    term = terminal_by_serial(BOX_V001)
    live, expired = portal_token(term), portal_token(term, expires=int(time.time()) - 1)
    session.remove()
    url = "/api/v1/terminal/contents?section=party"
    assert client.get(url, headers={"X-Terminal-Token": live}).status_code == 200
    assert client.get(url, headers={"X-Terminal-Token": expired}).status_code == 401
    session.remove()
    assert _post(client, f"/api/v1/terminals/{BOX_V001}/token/rotate", auth.headers("admin")).status_code == 200
    assert client.get(url, headers={"X-Terminal-Token": live}).status_code == 401


@pytest.mark.browser
def test_a_browser_without_websocket_gets_the_alert_by_long_poll(tv_nginx, tv_page, client, auth):
    page = tv_page
    page.add_init_script("delete window.WebSocket; window.WebSocket = undefined;")
    page.goto(_url(BOX_V001))
    page.wait_for_timeout(1000)  # the long-poll is waiting in nginx
    h = auth.headers("v001-reviewer")
    for n in range(2):
        headline = f"老机顶盒第{n + 1}条预警"
        t0 = time.monotonic()
        r = _post(client, "/api/v1/alerts", h, {**ALERT, "headline": headline})
        assert r.status_code == 201
        _wait(lambda: _alert_shown(page, headline), 5)
        assert time.monotonic() - t0 < 1.0
        assert _post(client, f"/api/v1/alerts/{r.get_json()['id']}/cancel", h).status_code == 200
        _wait(lambda: not _alert_shown(page, headline), 1.0)
    assert page.evaluate("TV.pushConnected()") is True


def test_the_app_refuses_a_forged_portal_url_too(client):
    """Without nginx in front (development, or nginx's fallback) the same URL rules hold."""
    q = {k: v[0] for k, v in parse_qs(urlparse(_url(BOX_V001)).query).items()}
    assert client.get("/tv/?" + urlencode(q)).status_code == 302
    for change in ({"vc": "990101001002"}, {"sig": "x"}, {"sig": "签名"}, {"e": "1 2"}):
        assert client.get("/tv/?" + urlencode(q | change)).status_code == 403, change
    assert "本机的登录信息已失效" in client.get(
        "/tv/?" + urlencode(parse_qs(urlparse(_url(BOX_V001, expires=1)).query), doseq=True)).get_data(as_text=True)
