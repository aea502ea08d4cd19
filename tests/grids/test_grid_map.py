"""Households are assigned to grids on the registry's 电子装户图 (issue 17): a clerk picks a grid,
taps houses or a whole lane, and assigns them in one POST; every house shows its grid (label and
outline colour, with a legend); the page fits a 390 px phone. Writes go through grids' operations:
a grid outside the caller's scope → 403 naming its region, a grid of another village → 400."""
from __future__ import annotations

import re

from sqlalchemy import select

from portal_server.core.db import session
from portal_server.core.households import Household
from portal_server.grids.models import Grid, GridHousehold
from tests.conftest import csrf_from

V001 = "990101001001"
V002 = "990101001002"
MAP = f"/admin/households/map?village={V001}"


def _new_grid(client, auth, name: str, region=V001, worker="grid-v001", who="v001-clerk") -> int:
    r = client.post("/api/v1/grids", headers=auth.headers(who), json={"region_code": region, "name": name,
                                                                      "worker": worker})
    assert r.status_code == 201, r.get_data(as_text=True)
    session.remove()
    return r.get_json()["id"]


def _grid_of(household_ids) -> dict[int, int]:
    session.remove()
    rows = dict(session.execute(select(GridHousehold.household_id, GridHousehold.grid_id)
                                .where(GridHousehold.household_id.in_(household_ids))).all())
    session.remove()
    return rows


def _assign_on_the_map(page, live_server, grid_label: str) -> list[int]:
    """Pick the grid, tap two houses and a whole lane, submit; returns the household ids chosen."""
    page.goto(live_server + MAP)
    page.select_option("#assign-group", label=grid_label)
    page.click("#pick-toggle")
    plots = page.locator("#plan .plot:not(.empty)")
    assert plots.count() >= 4
    plots.nth(0).click()
    plots.nth(1).click()
    assert page.url.endswith(MAP)  # tapping selects instead of opening the household
    last_lane = page.locator("#plan .lane").last
    last_lane.locator(".pick-lane").click()
    chosen = [int(x) for x in page.eval_on_selector_all(
        "#pick-ids input[name=household_ids]", "els => els.map(e => e.value)")]
    assert "已选" in page.inner_text("#pick-count") and len(chosen) >= 3
    page.click("#assign-submit")
    page.wait_for_url(lambda u: u.endswith(MAP))
    return chosen


def test_clerk_assigns_houses_and_a_lane_to_a_grid_on_the_map_at_390px(
        app, client, auth, live_server, browser, phone_context, layout_checks):
    gid = _new_grid(client, auth, "第二网格")
    page = phone_context.new_page()
    page.goto(f"{live_server}/admin/login?next={MAP}")
    page.fill("input[name=username]", "v001-clerk")
    page.fill("input[name=password]", app.config["SETTINGS"].demo_password)
    page.click("button[type=submit]")
    page.wait_for_url(lambda u: "/households/map" in u)
    legend = page.inner_text("#layer-legend")
    assert "第一网格" in legend and "第二网格" in legend and "未划入网格" in legend
    chosen = _assign_on_the_map(page, live_server, re.search(r"第二网格·[^（]+", legend).group(0))
    assert "划入“第二网格”" in page.inner_text("main")
    assert set(_grid_of(chosen).values()) == {gid} and set(_grid_of(chosen)) == set(chosen)
    # Each chosen house now shows its grid: the label and the grid's outline colour from the legend.
    colour = page.eval_on_selector(f'#layer-legend [data-group="{gid}"] i', "e => getComputedStyle(e).borderTopColor")
    first = page.locator(f'#plan .plot[data-households*="{chosen[0]}"]').first
    assert "第二网格" in first.inner_text()
    assert first.evaluate("e => getComputedStyle(e).borderTopColor") == colour
    # 390 px: no sideways scrolling, no text under 16 px (with the picking controls shown too).
    small_js, width_js = layout_checks
    page.click("#pick-toggle")
    sw, cw = page.evaluate(width_js)
    assert sw <= cw, (sw, cw)
    assert page.evaluate(small_js) == []
    page.screenshot(path="/tmp/grids-map-390.png", full_page=True)
    # On the desktop the same page: a read-only user sees the grids but gets no assign form.
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    try:
        desk = ctx.new_page()
        desk.goto(f"{live_server}/admin/login?next={MAP}")
        desk.fill("input[name=username]", "v001-handler")
        desk.fill("input[name=password]", app.config["SETTINGS"].demo_password)
        desk.click("button[type=submit]")
        desk.wait_for_url(lambda u: "/households/map" in u)
        assert "第二网格" in desk.inner_text("#layer-legend") and desk.locator("#assign-form").count() == 0
    finally:
        ctx.close()


def test_a_grid_outside_scope_is_403_and_of_another_village_400_nothing_changes(app, client, auth):
    from portal_server.core.accounts import create_user
    from portal_server.core.regions import region_by_code
    create_user("grid-v002", "password-v002", ["grid_worker"], region_by_code(V002), display_name="西岭村网格员")
    session.commit()
    session.remove()
    other = _new_grid(client, auth, "西岭一网格", region=V002, worker="grid-v002", who="admin")
    ids = [h for h in session.scalars(select(Household.id).where(Household.region_path.contains(V001))
                                      .order_by(Household.id).limit(2))]
    before = _grid_of(ids)
    auth.login("v001-clerk")
    page = client.get(MAP).get_data(as_text=True)
    assert 'id="assign-form"' in page
    form = {"csrf_token": csrf_from(page), "grid_id": other, "household_ids": ids, "next": MAP}
    r = client.post("/admin/grids/map-assign", data=form)
    assert r.status_code == 403 and "不在您的管辖范围内" in r.get_data(as_text=True) and V002 in r.get_data(as_text=True)
    auth.login("town01-clerk")
    page = client.get(MAP).get_data(as_text=True)
    r = client.post("/admin/grids/map-assign", data={**form, "csrf_token": csrf_from(page)})
    text = r.get_data(as_text=True)
    assert r.status_code == 400 and "不能划入该网格" in text and "没有任何住户被划入" in text
    # Without the CSRF token the form is refused too.
    r = client.post("/admin/grids/map-assign", data={k: v for k, v in form.items() if k != "csrf_token"})
    assert r.status_code in (400, 403)
    assert _grid_of(ids) == before
    assert session.scalar(select(Grid.id).where(Grid.id == other))
