"""Dates on the staff web read 年-月-日 whatever the browser's language (issue 18: the cockpit showed
"mm/dd/yyyy" to Chinese leaders): the cockpit's period buttons (近7天 … 本年, in city time), typed
dates, a Chinese message for a bad one, and the same field on the other staff pages."""
from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from sqlalchemy import select

from portal_server.core import clock
from portal_server.core.db import session
from portal_server.meetings.models import Meeting
from portal_server.stats import params
from tests.conftest import log_in_page

TOWN01 = "990101001000"


def test_presets_are_cut_in_city_time():
    # 2026-12-31 17:30 UTC is already 2027-01-01 in the city: 本月 and 本年 start on the city's new day.
    with time_machine.travel(dt.datetime(2026, 12, 31, 17, 30, tzinfo=dt.UTC), tick=False):
        got = {label: (a.isoformat(), b.isoformat()) for label, a, b in params.presets(clock.today())}
    assert got == {"近7天": ("2026-12-26", "2027-01-01"), "近30天": ("2026-12-03", "2027-01-01"),
                   "近90天": ("2026-10-04", "2027-01-01"), "本月": ("2027-01-01", "2027-01-01"),
                   "本年": ("2027-01-01", "2027-01-01")}


def _english_page(app, browser, live_server, username, width=1280, height=900):
    """A staff page in an en-US browser — where <input type=date> showed mm/dd/yyyy."""
    ctx = browser.new_context(viewport={"width": width, "height": height}, locale="en-US",
                              timezone_id="America/New_York")
    return ctx, log_in_page(ctx.new_page(), live_server, username, app.config["SETTINGS"].demo_password)


def _period(page):
    page.wait_for_function("() => window.__cockpit && window.__cockpit.data", timeout=20000)
    return page.locator("#period").inner_text()


@pytest.mark.browser
def test_cockpit_period_in_chinese_dates(app, live_server, browser):
    ctx, page = _english_page(app, browser, live_server, "town01-leader")
    try:
        page.goto(live_server + "/admin/cockpit/")
        today = clock.today()
        week = (today - dt.timedelta(days=6)).isoformat()
        assert _period(page) == f"{week} 至 {today}"
        # The fields show the period on screen as 年-月-日, not the browser's mm/dd/yyyy.
        assert page.get_attribute("input[name=from]", "type") == "text"
        assert page.input_value("input[name=from]") == week
        assert page.input_value("input[name=to]") == today.isoformat()
        assert page.get_attribute("input[name=from]", "placeholder") == "2026-12-01"
        assert page.locator(".presets a[aria-current]").inner_text() == "近7天"
        assert [a.inner_text() for a in page.locator(".presets a").all()] == ["近7天", "近30天", "近90天", "本月", "本年"]

        # A preset sets the period shown.
        with page.expect_navigation():
            page.click(".presets a:text('近30天')")
        month = (today - dt.timedelta(days=29)).isoformat()
        assert _period(page) == f"{month} 至 {today}"
        assert page.input_value("input[name=from]") == month
        assert page.locator(".presets a[aria-current]").inner_text() == "近30天"
        with page.expect_navigation():
            page.click(".presets a:text('本年')")
        assert _period(page) == f"{today.year}-01-01 至 {today}"

        # A typed date works (also written 2026/11/1).
        page.fill("input[name=from]", "2026/11/1")
        page.fill("input[name=to]", "2026-11-30")
        with page.expect_navigation():
            page.click("form.period button[type=submit]")
        assert _period(page) == "2026-11-01 至 2026-11-30"
        assert "from=2026-11-01" in page.url
        assert page.locator(".presets a[aria-current]").count() == 0
        assert "from=2026-11-01&to=2026-11-30" in page.get_attribute("a:text('导出 Excel')", "href")

        # A bad date is not sent; the leader reads why, in Chinese, under the field.
        before = page.url
        page.fill("input[name=from]", "2026-02-30")
        page.click("form.period button[type=submit]")
        err = page.locator("input[name=from] + .date-error")
        assert err.is_visible() and err.inner_text() == "没有这一天：2026-02-30（2026 年 2 月没有 30 日）"
        assert page.evaluate("document.querySelector('input[name=from]').validationMessage") == err.inner_text()
        page.fill("input[name=from]", "11/01/2026")
        page.click("form.period button[type=submit]")
        assert "请按 年-月-日 填写，如 2026-12-01" in err.inner_text()
        assert page.url == before
        # A bad date in the address (a shared link) is named on the page too.
        page.goto(live_server + "/admin/cockpit/?from=2026-13-01")
        page.wait_for_selector("#cockpit-error:not([hidden])")
        assert "不是有效日期" in page.locator("#cockpit-error").inner_text()
    finally:
        ctx.close()


@pytest.mark.browser
def test_period_bar_on_a_phone(app, live_server, browser):
    ctx, page = _english_page(app, browser, live_server, "town01-leader", 390, 844)
    try:
        page.goto(live_server + "/admin/cockpit/")
        _period(page)
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
        for a in page.locator(".presets a").all():
            box = a.bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= 391 and box["height"] >= 30
    finally:
        ctx.close()


@pytest.mark.browser
def test_same_date_field_on_other_staff_pages(app, live_server, browser):
    ctx, page = _english_page(app, browser, live_server, "admin")
    try:
        page.goto(live_server + "/admin/audit")
        assert page.get_attribute("input[name=from]", "type") == "text"
        page.fill("input[name=from]", "2026年11月1日")
        with page.expect_navigation():
            page.click("#audit-filters button[type=submit]")
        assert "from=2026-11-01" in page.url
        assert page.input_value("input[name=from]") == "2026-11-01"
        page.goto(live_server + "/admin/services/bookings")
        page.fill("input[name=day]", "2026-1-5")
        with page.expect_navigation():
            page.click("form button[type=submit]:text('查看')")
        assert "2026-01-05" in page.locator("h1").inner_text()
    finally:
        ctx.close()


@pytest.mark.browser
def test_date_and_time_fields_read_year_month_day_hour_minute(app, live_server, browser):
    """Meetings, content and polls took <input type=datetime-local> ("mm/dd/yyyy, --:-- --" in an
    English browser): the same field with a time, 2026-12-05 08:30, tidied and checked in Chinese."""
    ctx, page = _english_page(app, browser, live_server, "v001-editor")
    try:
        page.goto(live_server + "/admin/meetings/new")
        start = page.locator("input[name=starts_at]")
        assert start.get_attribute("type") == "text" and start.get_attribute("placeholder") == "2026-12-01 14:30"
        assert " " in start.input_value() and "T" not in start.input_value()     # the form's default
        page.fill("input[name=title]", "村民代表会议")
        page.fill("input[name=starts_at]", "2026/12/5 8:30")
        page.fill("input[name=ends_at]", "2026-12-05 25:00")
        page.click("#meeting-form button[type=submit]")
        assert page.input_value("input[name=starts_at]") == "2026-12-05 08:30"
        assert "没有这个时刻" in page.locator("input[name=ends_at] ~ .date-error").inner_text()
        assert "/admin/meetings/new" in page.url                                   # not sent
        page.fill("input[name=ends_at]", "2026年12月5日 10:00")
        with page.expect_navigation():
            page.click("#meeting-form button[type=submit]")
        session.remove()
        m = session.scalars(select(Meeting).where(Meeting.title == "村民代表会议")).one()
        assert clock.fmt(m.starts_at, "%Y-%m-%d %H:%M") == "2026-12-05 08:30"      # city time, as typed
        assert clock.fmt(m.ends_at, "%Y-%m-%d %H:%M") == "2026-12-05 10:00"
        session.remove()
        for path, name in (("/admin/content/new", "publish_at"), ("/admin/feedback/polls", "closes_at")):
            page.goto(live_server + path)
            assert page.get_attribute(f"input[name={name}]", "data-date") == "datetime", path
    finally:
        ctx.close()
