"""The NOC web page of alerts: send from a template with CSRF, the second person approves, live figures
in the browser, cancel, and the audited CSV of unacked households with masked phones."""
from __future__ import annotations

import csv
import io
import re

from flask import g
from sqlalchemy import select

from portal_server.core.audit import AuditEvent
from portal_server.core.db import session

from .conftest import V001, send


def _login(auth, user):
    g.pop("csrf_token", None)
    g.pop("user", None)  # the test shares one app context: an API call's user would leak into the form
    assert auth.login(user).status_code == 302
    g.pop("csrf_token", None)


def _csrf(html):
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def test_noc_sends_from_a_template_and_a_second_person_approves(app, client, auth):
    _login(auth, "town01-reviewer")
    page = client.get("/noc/alerts/").get_data(as_text=True)
    assert "发布预警" in page and "山洪/洪水" in page and "治安警示" in page
    form = {"csrf_token": _csrf(page), "idempotency_key": "web-1", "template": "flood", "regions": [V001],
            "category": "Met", "severity": "Severe", "urgency": "Expected", "certainty": "Likely",
            "expires_in_h": "3", "event": "山洪灾害预警", "headline": "山洪预警：东河村请转移",
            "description": "上游降雨", "instruction": "请到村委会避险"}
    r = client.post("/noc/alerts/", data=form)
    assert r.status_code == 302
    page = client.get(r.headers["Location"]).get_data(as_text=True)
    assert "待审批" in page and "山洪预警：东河村请转移" in page and "应收终端" in page
    alert_id = int(re.search(r"/noc/alerts/(\d+)", r.headers["Location"]).group(1))
    # Without the CSRF token nothing happens.
    assert client.post(f"/noc/alerts/{alert_id}/action", data={"action": "approve"}).status_code == 400
    # The sender cannot be their own second person.
    client.post(f"/noc/alerts/{alert_id}/action", data={"action": "approve", "csrf_token": _csrf(page)})
    page = client.get(f"/noc/alerts/{alert_id}").get_data(as_text=True)
    assert "待审批" in page and "第二人" in page
    client.post("/admin/logout", data={"csrf_token": _csrf(page)})
    _login(auth, "city-reviewer")
    page = client.get(f"/noc/alerts/{alert_id}").get_data(as_text=True)
    r = client.post(f"/noc/alerts/{alert_id}/action", data={"action": "approve", "csrf_token": _csrf(page)})
    page = client.get(r.headers["Location"]).get_data(as_text=True)
    assert "播发中" in page and "city-reviewer" in page and "alert.approve" in page
    figs = client.get(f"/noc/alerts/{alert_id}/figures.json").get_json()
    assert figs["targeted"] == 5 and figs["acked"] == 0 and figs["status"] == "active"


def test_unacked_csv_has_addresses_and_masked_phones_and_is_audited(app, client, auth, box):
    a = send(client, auth).get_json()
    client.post(f"/api/v1/alerts/{a['id']}/ack", headers=box("CTV-HH-000001"))
    _login(auth, "grid-v001")
    r = client.get(f"/noc/alerts/{a['id']}/unacked.csv")
    assert r.status_code == 200 and r.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(r.get_data(as_text=True).lstrip("\ufeff"))))
    assert [x["终端"] for x in rows] == ["CTV-HH-000002", "CTV-HH-000003", "CTV-HH-000004", "CTV-VIL-001"]
    for x in rows[:3]:
        assert x["地址"] and x["户主"] and x["村/社区"] == "东河村"
        assert re.fullmatch(r"1\d\d\*{4}\d{4}", x["电话（已脱敏）"]), x
    ev = session.scalars(select(AuditEvent).where(AuditEvent.action == "alert.export_unacked")).all()
    assert len(ev) == 1 and ev[0].actor == "grid-v001"
    # A grid worker reads but does not send or cancel.
    page = client.get(f"/noc/alerts/{a['id']}").get_data(as_text=True)
    assert "撤销预警" not in page
    assert client.post(f"/noc/alerts/{a['id']}/action", data={"action": "cancel", "csrf_token": _csrf(page)}).status_code == 403
    # Outside the alert's villages: not found.
    _login(auth, "v002-handler")
    assert client.get(f"/noc/alerts/{a['id']}/unacked.csv").status_code == 404


def test_alert_page_figures_refresh_live_in_the_browser(app, client, auth, box, live_server, browser):
    a = send(client, auth).get_json()
    ctx = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    page = ctx.new_page()
    try:
        page.goto(live_server + "/admin/login")
        page.fill("input[name=username]", "noc")
        page.fill("input[name=password]", app.config["SETTINGS"].demo_password)
        page.click("button[type=submit]")
        page.wait_for_url(lambda u: "/login" not in u)  # signed in before leaving the page
        page.goto(f"{live_server}/noc/alerts/{a['id']}")
        assert page.inner_text("#acked") == "0" and page.inner_text("#unacked") == "5"
        hdr = box("CTV-HH-000002")
        client.post(f"/api/v1/alerts/{a['id']}/ack", headers=hdr)  # a TV presses OK
        page.wait_for_function("() => document.getElementById('acked').textContent === '1'", timeout=8000)
        assert page.inner_text("#unacked") == "4"
        assert page.inner_text(f"tr[data-region='{V001}'] .acked") == "1"
        page.once("dialog", lambda d: d.accept())
        page.click("button[value=cancel]")
        page.wait_for_load_state()
        assert "已撤销" in page.inner_text("#status")
    finally:
        ctx.close()
