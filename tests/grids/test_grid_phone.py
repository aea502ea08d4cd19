"""The grid worker's phone app /m/grid/ in Chromium at 390×844: layout, and the offline queue."""
from __future__ import annotations

import gzip
from pathlib import Path

import requests

SHOTS = Path("/tmp/grids-shots")

def _login(page, base):
    page.goto(base + "/m/grid/")
    page.fill("input[name=username]", "grid-v001")
    page.fill("input[name=password]", "demo-password-unused")
    return page

def _token(base, password):
    r = requests.post(base + "/api/v1/auth/token", json={"username": "grid-v001", "password": password}, timeout=10)
    return {"Authorization": "Bearer " + r.json()["token"]}

def test_phone_app_layout_and_offline_queue(live_server, app, phone_context, layout_checks):
    small_js, width_js = layout_checks
    password = app.config["SETTINGS"].demo_password
    page = phone_context.new_page()
    page.goto(live_server + "/m/grid/")
    page.fill("input[name=username]", "grid-v001")
    page.fill("input[name=password]", password)
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#tab-tasks h2")
    page.click("button[data-tab=households]")
    page.wait_for_selector("#tab-households .card")
    sw, cw = page.evaluate(width_js)
    assert sw <= cw, f"sideways scroll: {sw} > {cw}"
    assert page.evaluate(small_js) == []
    page.click("button[data-tab=record]")
    assert page.evaluate(small_js) == []
    SHOTS.mkdir(exist_ok=True)
    page.click("button[data-tab=tasks]")
    page.screenshot(path=str(SHOTS / "grid-phone-390.png"), full_page=False)

    # A visit written in a dead zone waits in the queue...
    page.click("button[data-tab=record]")
    page.evaluate("document.getElementById('geo').checked = false")
    phone_context.set_offline(True)
    page.fill("textarea[name=note]", "离线走访：老人身体健康")
    page.click("#visit-form button[type=submit]")
    page.wait_for_function("() => JSON.parse(localStorage.getItem('ctvGrid.queue') || '[]').length === 1")
    assert "待发送" in page.inner_text("#tab-log")
    headers = _token(live_server, password)
    assert requests.get(live_server + "/api/v1/visits", headers=headers, timeout=10).json()["total"] == 0
    page.screenshot(path=str(SHOTS / "grid-phone-390-offline.png"))
    # ...and is sent once when the signal returns (a second flush finds nothing to send).
    phone_context.set_offline(False)
    page.evaluate("window.dispatchEvent(new Event('online'))")
    page.wait_for_function("() => JSON.parse(localStorage.getItem('ctvGrid.queue') || '[]').length === 0", timeout=15000)
    page.evaluate("window.dispatchEvent(new Event('online'))")
    page.wait_for_timeout(500)
    log = requests.get(live_server + "/api/v1/visits", headers=headers, timeout=10).json()
    assert [v["note"] for v in log["items"]] == ["离线走访：老人身体健康"]

def test_photo_that_is_not_an_image_says_so(live_server, app, phone_context, tmp_path):
    page = phone_context.new_page()
    page.goto(live_server + "/m/grid/")
    page.fill("input[name=username]", "grid-v001")
    page.fill("input[name=password]", app.config["SETTINGS"].demo_password)
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#tab-tasks h2")
    page.click("button[data-tab=record]")
    bad = tmp_path / "notes.txt"
    bad.write_text("not a picture")
    page.set_input_files("#photo", str(bad))
    assert "不是图片" in page.inner_text("#photo-msg")

def test_first_load_is_small(client):
    total = 0
    for path in ("/m/grid/", "/m/grid/app.js", "/m/grid/app.css", "/m/grid/manifest.webmanifest", "/m/grid/icon.svg"):
        r = client.get(path)
        assert r.status_code == 200, path
        total += len(gzip.compress(r.data))
    assert total < 150 * 1024
    assert client.get("/m/grid/sw.js").headers["Content-Type"].startswith("text/javascript")


def test_event_closes_the_loop_with_a_follow_up_from_the_phone(live_server, app, phone_context):
    """An event filed by the worker is handled by the village, closed, and followed up on the phone."""
    password = app.config["SETTINGS"].demo_password

    def hdr(user):
        r = requests.post(live_server + "/api/v1/auth/token", json={"username": user, "password": password}, timeout=10)
        return {"Authorization": "Bearer " + r.json()["token"]}

    w, h = hdr("grid-v001"), hdr("v001-handler")
    me = requests.get(live_server + "/api/v1/grids/me", headers=w, timeout=10).json()
    hid = me["households"][0]["id"]
    ev = requests.post(live_server + "/api/v1/visits", headers=w, timeout=10, json={
        "household_id": hid, "kind": "event", "category": "water", "note": "水管漏水", "idempotency_key": "fu-1"}).json()
    fid = ev["feedback_id"]
    for body in ({"action": "accept"}, {"action": "reply", "message": "已派人修好水管"}, {"action": "close"}):
        r = requests.post(f"{live_server}/api/v1/feedback/{fid}/actions", headers=h, json=body, timeout=10)
        assert r.status_code == 200, r.text
    page = phone_context.new_page()
    page.goto(live_server + "/m/grid/")
    page.fill("input[name=username]", "grid-v001")
    page.fill("input[name=password]", password)
    page.click("#login-form button[type=submit]")
    form = page.wait_for_selector(f"form.follow[data-order='{fid}']")
    form.query_selector("input[name=message]").fill("居民说水管已修好，很满意")
    form.query_selector("button").click()
    page.wait_for_selector("text=回访已记录")
    order = requests.get(f"{live_server}/api/v1/feedback/{fid}", headers=h, timeout=10).json()
    assert order["follow_up"] == "done"
    assert order["channel"] == "grid"
