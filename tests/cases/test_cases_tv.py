"""With the remote only: home → an item's materials in three presses of OK; 我要办理; staff move the
case; 我的办件 shows each step in plain words; the colour keys evaluate. Screenshots at 1280×720."""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import requests
from pyjsparser import parse

from tests.conftest import terminal_token

from .conftest import LOW_INCOME

SHOTS = "/tmp/cases-shots"
BOX = "CTV-HH-000001"


def test_tv_scripts_are_es5():
    import portal_server
    root = Path(portal_server.__file__).parent
    for tpl in list((root / "cases" / "templates").rglob("tv_*.html")) + [root / "services/templates/services/tv_index.html",
                                                                         root / "services/templates/services/tv_item.html"]:
        for block in re.findall(r"<script>(.*?)</script>", tpl.read_text(), re.DOTALL):
            js = re.sub(r"\{%.*?%\}", "", block, flags=re.DOTALL)
            parse(re.sub(r"\{\{.*?\}\}", "1", js))


def phone_link_for(app, serial):
    from portal_server.cases.tv import phone_link
    from portal_server.core.db import session
    from portal_server.core.terminals import terminal_by_serial
    with app.test_request_context():
        link = phone_link(terminal_by_serial(serial).household_id)
    session.remove()
    return link[link.index("/m/cases/"):]


def focused(page, attr):
    return page.evaluate(f"() => {{ const f = document.querySelector('.focused'); return f && f.getAttribute('{attr}'); }}")


def press(page, *keys):
    for k in keys:
        page.keyboard.press(k)
        page.wait_for_timeout(150)


def wait_url(page, part):
    page.wait_for_function(f"() => location.pathname.indexOf({part!r}) >= 0", timeout=10000)
    page.wait_for_load_state("load")


def seek(page, attr, value, key="ArrowDown", limit=30):
    for _ in range(limit):
        if focused(page, attr) == value:
            return
        press(page, key)
    raise AssertionError(f"could not reach {attr}={value}; focused: {page.locator('.focused').inner_text()!r}")


@pytest.mark.browser
def test_apply_from_the_tv_and_follow_every_step(live_server, tv_page, app):
    os.makedirs(SHOTS, exist_ok=True)
    page, oks = tv_page, 0
    page.goto(live_server + "/tv/?token=" + terminal_token(BOX))
    wait_url(page, "/home.html")
    press(page, "ArrowRight")
    assert focused(page, "data-section") == "services"
    press(page, "Enter")
    oks += 1
    wait_url(page, "/s-services.html")
    assert focused(page, "data-href") == "/tv/services/"          # 办事指南 is the first tile
    press(page, "Enter")
    oks += 1
    wait_url(page, "/tv/services/")
    seek(page, "data-code", "社会救助")                            # categories: arrows only, no OK
    press(page, "ArrowRight")
    assert focused(page, "data-item")                              # the category's first item
    seek(page, "data-item", LOW_INCOME)
    page.screenshot(path=f"{SHOTS}/1-guide.png")
    press(page, "Enter")
    oks += 1
    wait_url(page, f"/tv/services/item/{LOW_INCOME}")
    assert oks <= 3
    mats = page.locator("#materials li").all_inner_texts()
    assert any("低保申请书" in m for m in mats) and any("户口簿" in m for m in mats)
    assert "本村" in page.locator("#where").inner_text()            # admitted at 东河村's hall
    assert page.evaluate("parseFloat(getComputedStyle(document.querySelector('#materials li')).fontSize)") >= 24
    page.screenshot(path=f"{SHOTS}/2-item.png")

    # 我要办理 has the focus: one OK applies.
    assert focused(page, "data-action") == "apply"
    press(page, "Enter")
    wait_url(page, "/tv/cases/")
    assert page.locator("#applied").is_visible()
    assert page.locator("#progress").inner_text() == "已提交，等待工作人员受理"
    case_id = int(re.search(r"/tv/cases/(\d+)", page.url).group(1))

    # Staff: the village clerk accepts and forwards to the town; the town completes.
    def bearer(user):
        r = requests.post(f"{live_server}/api/v1/auth/token",
                          json={"username": user, "password": app.config["SETTINGS"].demo_password}, timeout=10)
        return {"Authorization": "Bearer " + r.json()["token"]}
    v, t = bearer("v001-clerk"), bearer("town01-clerk")
    for headers, body in ((v, {"action": "accept"}), (v, {"action": "forward", "to": "town01-clerk"}),
                          (t, {"action": "complete", "note": "审批通过，次月起发放"})):
        r = requests.post(f"{live_server}/api/v1/cases/{case_id}/actions", json=body, headers=headers, timeout=10)
        assert r.status_code == 200, r.text

    # The home screen's notice line says so.
    page.goto(live_server + "/tv/")
    wait_url(page, "/home.html")
    page.wait_for_function("() => document.getElementById('notices').innerText.indexOf('已办结，请评价') >= 0",
                           timeout=10000)
    # 我的办件: progress in plain words.
    page.goto(live_server + "/tv/cases/")
    assert page.locator("[data-progress]").first.inner_text() == "已办结，请按彩色键评价"
    page.screenshot(path=f"{SHOTS}/3-my-cases.png")
    # The QR code opens the same list on a phone.
    assert page.locator("#phone-qr svg").count() == 1
    phone = requests.get(live_server + phone_link_for(app, BOX), timeout=10).text
    assert "已办结，请按彩色键评价" in phone and "审批通过，次月起发放" in phone
    assert requests.get(live_server + "/m/cases/forged", timeout=10).status_code == 404
    press(page, "Enter")
    wait_url(page, f"/tv/cases/{case_id}")
    steps = page.locator("#steps li").all_inner_texts()
    assert [s.split("　")[0] for s in steps] or steps
    joined = " ".join(steps)
    for word in ("提交申请", "工作人员已受理", "转交办理", "青石镇便民服务中心", "办理完成", "次月起发放"):
        assert word in joined, word
    page.screenshot(path=f"{SHOTS}/4-case.png")
    # The green key: 满意.
    press(page, "g")
    page.wait_for_function("() => document.getElementById('progress').getAttribute('data-status') === 'evaluated'",
                           timeout=10000)
    assert "您已评价" in page.locator("#steps").inner_text()
    page.screenshot(path=f"{SHOTS}/5-evaluated.png")


@pytest.mark.browser
def test_guide_digit_keys_and_pages(live_server, tv_page):
    page = tv_page
    page.goto(live_server + "/tv/services/?token=" + terminal_token(BOX))
    assert focused(page, "data-code") == "社会保障"
    first_page = page.locator("#page-0-0 .it").all_inner_texts()
    assert len(first_page) == 8
    press(page, "PageDown")                                   # channel key: the next eight items
    assert page.locator("#page-0-1").is_visible() and not page.locator("#page-0-0").is_visible()
    third = page.locator("#page-0-1 .it").nth(2).get_attribute("data-item")
    press(page, "3")                                          # digit 3 opens the third item of the page
    wait_url(page, f"/tv/services/item/{third}")
    assert page.locator("#materials li").count() >= 1
    press(page, "Backspace")                                  # back: same category, same page
    page.wait_for_function("() => location.pathname === '/tv/services/'", timeout=10000)
    page.wait_for_load_state("load")
    assert page.locator("#page-0-1").is_visible()
