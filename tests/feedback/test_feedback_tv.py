"""TV pages: file with the remote, answer in the staff web, rate with the digit keys."""
import re

import pytest
from playwright.sync_api import expect
from pyjsparser import parse

from portal_server.core.db import session
from tests.conftest import terminal_token as _terminal_token


def terminal_token(serial):
    """The box token, without keeping a transaction open (SQLite: BEGIN IMMEDIATE would block the server)."""
    try:
        return _terminal_token(serial)
    finally:
        session.remove()

SHOTS = "/tmp/feedback-shots"


def test_tv_script_is_es5():
    from pathlib import Path

    import portal_server.feedback as fb

    root = Path(fb.__file__).parent
    for tpl in (root / "templates" / "feedback").glob("tv_*.html"):
        for block in re.findall(r"<script>(.*?)</script>", tpl.read_text(), re.DOTALL):
            js = re.sub(r"\{%.*?%\}", "", block, flags=re.DOTALL)
            js = re.sub(r"\{\{.*?\}\}", "1", js)
            parse(js)


def test_tv_pages_need_a_box(client):
    assert client.get("/tv/feedback/new").status_code == 401


@pytest.mark.browser
def test_file_on_tv_answer_in_staff_web_rate_on_tv(live_server, tv_page, browser, app):
    import os
    os.makedirs(SHOTS, exist_ok=True)
    page = tv_page
    press = page.keyboard.press

    def key(name):  # a person at the remote: no faster than the held-key throttle
        press(name)
        page.wait_for_timeout(150)

    token = terminal_token("CTV-HH-000004")
    page.goto(f"{live_server}/tv/feedback/?token={token}")
    page.screenshot(path=f"{SHOTS}/tv-index.png")
    assert page.locator(".focused").inner_text().startswith("我要反映")
    page.keyboard.press("Enter")
    page.wait_for_url("**/tv/feedback/new")
    page.keyboard.press("ArrowRight")
    assert page.locator(".focused").get_attribute("data-category") == "roads"
    page.keyboard.press("ArrowLeft")
    page.screenshot(path=f"{SHOTS}/tv-categories.png")
    page.keyboard.press("Enter")  # 供水用水
    page.wait_for_url("**/tv/feedback/new?c=water")
    key("ArrowDown")
    key("ArrowDown")
    key("ArrowDown")  # 水井水泵坏了
    page.screenshot(path=f"{SHOTS}/tv-phrases.png")
    page.keyboard.press("Enter")
    page.wait_for_url("**/tv/feedback/new?c=water&p=3")
    assert page.locator(".focused").get_attribute("id") == "confirm"
    page.keyboard.press("ArrowUp")
    page.keyboard.press("Enter")  # 请回电话
    assert page.locator("#cb-box").inner_text() == "☑"
    page.keyboard.press("ArrowDown")
    page.screenshot(path=f"{SHOTS}/tv-confirm.png")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r".*/tv/feedback/orders/\d+\?new=1"))
    code = page.locator("#order-code").inner_text()
    assert code.startswith("FK")
    assert page.locator("#qr svg").count() == 1
    page.screenshot(path=f"{SHOTS}/tv-received.png")
    order_id = int(re.search(r"/orders/(\d+)", page.url).group(1))

    # The village handler answers in the staff web.
    staff = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    sp = staff.new_page()
    sp.goto(f"{live_server}/admin/login")
    sp.fill("input[name=username]", "v001-handler")
    sp.fill("input[name=password]", app.config["SETTINGS"].demo_password)
    sp.click("button[type=submit]")
    sp.wait_for_url(lambda u: "/login" not in u)  # signed in before leaving the page
    sp.goto(f"{live_server}/admin/feedback/")
    assert code in sp.locator("#mine").inner_text()
    sp.click(f"text={code}")
    # Each click below submits a form and lands on a new page: wait for that page, not the one in between
    # (content() read mid-navigation is an empty document).
    expect(sp.locator("body")).to_contain_text("请回电话")
    expect(sp.locator("body")).to_contain_text("水井水泵坏了")
    sp.click("form[data-action=accept] button")
    expect(sp.locator("form[data-action=reply] textarea[name=message]")).to_be_visible()
    sp.fill("form[data-action=reply] textarea[name=message]", "村委会已联系维修师傅，水泵明天上午修好。")
    sp.click("form[data-action=reply] button")
    expect(sp.locator("body")).to_contain_text("已答复")
    sp.screenshot(path=f"{SHOTS}/staff-order.png", full_page=True)
    staff.close()

    # Back on the TV: the reply in large text, rated with a digit key.
    page.goto(f"{live_server}/tv/feedback/orders")
    page.screenshot(path=f"{SHOTS}/tv-orders.png")
    assert "请评价" in page.locator(".focused").inner_text()
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/tv/feedback/orders/{order_id}")
    assert page.locator("#reply").inner_text() == "村委会已联系维修师傅，水泵明天上午修好。"
    size = page.eval_on_selector("#reply", "e => parseFloat(getComputedStyle(e).fontSize)")
    assert size >= 32
    page.screenshot(path=f"{SHOTS}/tv-reply.png")
    page.keyboard.press("4")
    page.wait_for_selector("#my-rating")
    assert page.locator("#my-rating").inner_text() == "4 分"
    assert page.locator("#order-status").get_attribute("data-status") == "closed"
    page.screenshot(path=f"{SHOTS}/tv-rated.png")

    # Everything inside the 5 % safe area, no text under 24 px.
    for url in ("/tv/feedback/", "/tv/feedback/new", "/tv/feedback/new?c=water", "/tv/feedback/polls",
                f"/tv/feedback/orders/{order_id}"):
        page.goto(live_server + url)
        bad = page.evaluate("""() => {
            var out = [];
            var els = document.querySelectorAll('.safe *');
            for (var i = 0; i < els.length; i++) {
              var e = els[i], r = e.getBoundingClientRect();
              if (!r.width || !r.height || e.closest('svg')) continue;
              if (r.left < 64 || r.top < 36 || r.right > 1216 || r.bottom > 684) out.push('outside: ' + e.tagName + ' ' + e.textContent.slice(0, 20));
              var t = Array.prototype.some.call(e.childNodes, function (n) { return n.nodeType === 3 && n.textContent.trim(); });
              if (t && parseFloat(getComputedStyle(e).fontSize) < 24) out.push('small: ' + e.textContent.slice(0, 20));
            }
            return out;
        }""")
        assert bad == [], (url, bad)


@pytest.mark.browser
def test_poll_vote_with_digit_keys(live_server, tv_page, app):
    page = tv_page
    token = terminal_token("CTV-HH-000003")
    page.goto(f"{live_server}/tv/feedback/polls?token={token}")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r".*/tv/feedback/polls/\d+"))
    page.screenshot(path=f"{SHOTS}/tv-poll.png")
    page.keyboard.press("2")
    page.wait_for_selector("#results")
    assert "（您的选择）" in page.locator("[data-result='1']").inner_text()
    assert "1 票" in page.locator("[data-result='1']").inner_text()
    page.screenshot(path=f"{SHOTS}/tv-poll-results.png")
