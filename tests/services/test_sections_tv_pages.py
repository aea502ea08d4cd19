"""Every TV page of services, elderly care, village affairs, safe community, party building and
feedback, on the portal's base at 1280×720 in Chromium: inside the 5 % safe area, text ≥ 24 px,
contrast ≥ 4.5 (the portal's own page check), and nothing drawn over the key hints at the bottom."""
import os

import pytest
from sqlalchemy import select

from portal_server.core.db import session
from tests.conftest import terminal_token
from tests.stb_app.test_portal_browser import PAGE_CHECK

pytestmark = pytest.mark.browser
SHOTS = os.environ.get("CTV_SHOTS", "/tmp/sections-shots")
BOX = "CTV-HH-000001"

#: Visible elements (outside the hint line itself) whose box meets the hint line's box.
HINT_CHECK = r"""() => {
  const hints = [...document.querySelectorAll('.safe .hint')].filter(h => getComputedStyle(h).display !== 'none');
  const out = [];
  if (hints.length !== 1) { out.push('hint lines: ' + hints.length); return out; }
  const h = hints[0].getBoundingClientRect();
  if (h.bottom > 684.5 || h.top < 36) out.push('hint line outside the safe area');
  for (const el of document.querySelectorAll('.safe *')) {
    if (el.closest('.hint') || el.contains(hints[0])) continue;
    const cs = getComputedStyle(el);
    if (cs.display === 'none' || cs.visibility === 'hidden') continue;
    let r = el.getBoundingClientRect();
    // Clipped by a scrolling box: only the part that shows counts.
    let t = r.top, b = r.bottom;
    for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
      if (getComputedStyle(p).overflow !== 'visible') {
        const q = p.getBoundingClientRect(); t = Math.max(t, q.top); b = Math.min(b, q.bottom);
      }
    }
    if (r.width < 1 || b - t < 1) continue;
    if (b > h.top + 0.5 && t < h.bottom && r.right > h.left && r.left < h.right)
      out.push('over the hints: ' + el.tagName + '.' + el.className + ' ' + (el.textContent || '').trim().slice(0, 20));
  }
  return out;
}"""


def _urls(client, auth, box):
    """One URL of every kind of page, with the demo data the box sees."""
    from portal_server.affairs.models import Disclosure
    from portal_server.services.models import ServiceCategory

    items = client.get("/api/v1/services", headers=box(BOX)).get_json()["items"]
    item = next(i for i in items if i["local"]) if any(i["local"] for i in items) else items[0]
    cat = session.scalar(select(ServiceCategory).order_by(ServiceCategory.id))
    finance = session.scalar(select(Disclosure.id).where(Disclosure.kind == "finance",
                                                         Disclosure.status == "published",
                                                         Disclosure.region_path.endswith("990101001001/")))
    subsidy = session.scalar(select(Disclosure.id).where(Disclosure.kind == "subsidy",
                                                         Disclosure.status == "published",
                                                         Disclosure.region_path.endswith("990101001001/")))
    slots = client.get(f"/api/v1/services/{item['code']}/slots", headers=box(BOX)).get_json()["items"]
    booked = client.post("/api/v1/bookings", json={"service_code": item["code"], "slot_id": slots[0]["id"]},
                         headers=box(BOX))
    assert booked.status_code in (200, 201), booked.get_data(as_text=True)
    fresh = client.post("/api/v1/feedback", json={"category": "roads"}, headers=box(BOX)).get_json()["id"]
    order = client.post("/api/v1/feedback", json={"category": "water", "content": "村东头的水井水泵坏了，全组十几户人家停水两天了"},
                        headers=box(BOX)).get_json()["id"]
    client.post(f"/api/v1/feedback/{order}/actions", json={"action": "accept"}, headers=auth.headers("v001-handler"))
    client.post(f"/api/v1/feedback/{order}/actions", json={"action": "reply",
                "message": "村委会已联系镇水务站，维修师傅明天上午九点到村更换水泵，请大家先到村委会门口的备用水井取水。" * 4},
                headers=auth.headers("v001-handler"))
    polls = client.get("/api/v1/polls", headers=box(BOX)).get_json()["items"]
    session.remove()
    urls = {
        "services-index": "/tv/services/", "services-category": f"/tv/services/c/{cat.code}",
        "services-item": f"/tv/services/item/{item['code']}", "services-book": f"/tv/services/item/{item['code']}/book",
        "services-bookings": "/tv/services/bookings",
        "care-index": "/tv/care/", "care-checkin": "/tv/care/checkin",
        "affairs-index": "/tv/affairs/", "affairs-finance": f"/tv/affairs/d/{finance}",
        "affairs-subsidy": f"/tv/affairs/d/{subsidy}", "safety": "/tv/affairs/safety", "party": "/tv/affairs/party",
        "feedback-index": "/tv/feedback/", "feedback-new": "/tv/feedback/new", "feedback-new-water": "/tv/feedback/new?c=water",
        "feedback-confirm": "/tv/feedback/new?c=water&p=0",
        "feedback-orders": "/tv/feedback/orders", "feedback-order": f"/tv/feedback/orders/{order}",
        "feedback-received": f"/tv/feedback/orders/{fresh}?new=1",
        "feedback-polls": "/tv/feedback/polls",
    }
    if polls:
        urls["feedback-poll"] = f"/tv/feedback/polls/{polls[0]['id']}"
    return urls


def test_every_section_page_fits_the_screen_and_leaves_the_hints_free(live_server, tv_page, client, auth, box):
    os.makedirs(SHOTS, exist_ok=True)
    urls = _urls(client, auth, box)
    page = tv_page
    page.goto(f"{live_server}/tv/services/?token={terminal_token(BOX)}")
    problems = {}
    for name, url in urls.items():
        r = page.goto(live_server + url)
        assert r.status == 200, (name, url, r.status)
        page.wait_for_load_state("load")
        page.wait_for_timeout(300)  # personal bits load as small JSON after the page
        page.screenshot(path=f"{SHOTS}/{name}.png")
        found = page.evaluate(PAGE_CHECK) + page.evaluate(HINT_CHECK)
        if name == "feedback-order":  # a long reply scrolls; the 1–5 buttons stay on the screen
            bottom = page.evaluate("() => document.querySelector('[data-score=\"1\"]').getBoundingClientRect().bottom")
            if bottom > 650:
                found.append(f"rating buttons pushed down to {bottom}")
            page.keyboard.press("ArrowDown")
            page.wait_for_timeout(150)
            if not page.evaluate("() => document.getElementById('scroller').scrollTop > 0"):
                found.append("the long reply does not scroll with the down key")
        if found:
            problems[name] = found[:6]
    assert not problems, "\n".join(f"{k}: {v}" for k, v in problems.items())
