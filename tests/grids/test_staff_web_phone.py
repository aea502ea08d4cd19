"""Every staff page at 390×844 (a phone): no sideways scrolling and no visible text under 16 px.

The pages are those of the staff nav (admin.add_nav) as an admin sees them — every feature's —
plus the staff home and this feature's detail pages."""
from __future__ import annotations

from pathlib import Path

SHOTS = Path("/tmp/grids-shots")


def test_every_staff_page_fits_a_phone(live_server, app, phone_context, layout_checks):
    small_js, width_js = layout_checks
    with app.test_request_context():
        from flask import url_for
        pages = ["/admin/"] + [url_for(ep) for ep, _label, _roles in app.extensions["staff_nav"]]
    pages += ["/admin/grids/1", "/admin/grids/reports", "/admin/login"]
    page = phone_context.new_page()
    page.goto(live_server + "/admin/login")
    assert page.evaluate(small_js) == []
    sw, cw = page.evaluate(width_js)
    assert sw <= cw
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", app.config["SETTINGS"].demo_password)
    page.click("button[type=submit]")
    page.wait_for_url("**/admin/")
    SHOTS.mkdir(exist_ok=True)
    problems = {}
    for path in dict.fromkeys(pages):
        if path == "/admin/login":
            continue
        page.goto(live_server + path)
        sw, cw = page.evaluate(width_js)
        small = page.evaluate(small_js)
        page.screenshot(path=str(SHOTS / ("staff" + path.replace("/", "_") + ".png")))
        if sw > cw or small:
            problems[path] = {"scrollWidth": sw, "clientWidth": cw, "small": small[:5]}
    assert len(pages) > 10
    assert problems == {}, "\n".join(f"{k}: {v}" for k, v in problems.items())
