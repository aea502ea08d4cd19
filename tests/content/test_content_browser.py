"""In Chromium: an editor drafts in the staff web, a reviewer approves, and the TV portal of the
target village shows the item while another village's does not. Screenshots at 1280×720."""
import os

import pytest

from portal_server.core.db import session
from tests.conftest import terminal_token

from .conftest import V001, V002, household_box

pytestmark = pytest.mark.browser
SHOTS = os.environ.get("CTV_SHOTS", "/tmp/content-shots")
TITLE = "东河村冬季安全用电须知"


def _staff(browser, live_server, username, password):
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = ctx.new_page()
    page.goto(live_server + "/admin/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(lambda u: "/admin/login" not in u)
    return ctx, page


def test_editor_drafts_reviewer_approves_only_the_target_village_sees_it(app, live_server, browser, tv_page):
    os.makedirs(SHOTS, exist_ok=True)
    password = app.config["SETTINGS"].demo_password
    box1, box2 = household_box(V001), household_box(V002)
    tok1, tok2 = terminal_token(box1), terminal_token(box2)
    session.remove()

    ctx, page = _staff(browser, live_server, "v001-editor", password)
    page.goto(live_server + "/admin/content/new")
    page.select_option("select[name=section]", "safety")
    page.fill("input[name=title]", TITLE)
    page.fill("textarea[name=body]", "<p>冬季取暖不要私拉乱接电线，电热毯不要长时间通电。</p>"
                                     "<p>发现电线老化请联系村电工，电话 138 0000 1234。</p>")
    assert page.is_checked(f"input[name=target_regions][value='{V001}']")
    page.screenshot(path=f"{SHOTS}/staff-1-form.png", full_page=True)
    page.click("button[value=submit]")
    page.wait_for_selector("#status")
    assert page.inner_text("#status") == "待审核"
    item_url = page.url
    ctx.close()

    # Not on TV before approval.
    tv_page.goto(live_server + "/tv/?token=" + tok1)
    tv_page.wait_for_load_state("load")
    tv_page.goto(live_server + "/tv/section/safety")
    assert TITLE not in tv_page.content()

    ctx, page = _staff(browser, live_server, "v001-reviewer", password)
    assert "待审核信息" in page.content()
    page.goto(live_server + "/admin/content/review")
    page.click(f"text={TITLE}")
    page.wait_for_url(item_url)
    page.click("button[data-action=approve]")
    page.wait_for_selector(".flash")
    assert page.inner_text("#status") == "已发布"
    page.screenshot(path=f"{SHOTS}/staff-2-approved.png", full_page=True)
    page.goto(item_url + "/preview")
    page.screenshot(path=f"{SHOTS}/staff-3-preview.png")
    ctx.close()

    # Village 001's box shows it on its section page and opens it.
    tv_page.goto(live_server + "/tv/section/safety")
    tv_page.wait_for_load_state("load")
    assert f"/tv/v/{V001}/s-safety.html" in tv_page.url
    link = tv_page.locator(f".focusable:has-text('{TITLE}')")
    assert link.count() == 1
    tv_page.screenshot(path=f"{SHOTS}/tv-1-section-v001.png")
    href = link.first.get_attribute("data-href")
    tv_page.goto(live_server + f"/tv/v/{V001}/" + href)
    tv_page.wait_for_load_state("load")
    assert TITLE in tv_page.inner_text("body") and "电热毯" in tv_page.inner_text("body")
    tv_page.screenshot(path=f"{SHOTS}/tv-2-item-v001.png")

    # Village 002's box does not.
    other = tv_page.context.browser.new_context(viewport={"width": 1280, "height": 720}, locale="zh-CN")
    p2 = other.new_page()
    p2.goto(live_server + "/tv/?token=" + tok2)
    p2.wait_for_load_state("load")
    p2.goto(live_server + "/tv/section/safety")
    p2.wait_for_load_state("load")
    assert f"/tv/v/{V002}/s-safety.html" in p2.url
    assert TITLE not in p2.content()
    p2.screenshot(path=f"{SHOTS}/tv-3-section-v002.png")
    other.close()
