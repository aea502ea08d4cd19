"""Fixtures of the content tests."""
import pytest

V001, V002, V003 = "990101001001", "990101001002", "990101001003"
TOWN01, TOWN02, CITY = "990101001000", "990101002000", "990100000000"


@pytest.fixture
def api(client, auth):
    """``api("v001-editor", "post", "/contents", json=...)`` → response (paths under /api/v1)."""
    def _call(user, method, path, **kw):
        return getattr(client, method)("/api/v1" + path, headers=auth.headers(user), **kw)
    return _call


@pytest.fixture
def draft(api):
    """Create a draft as ``user``; returns its JSON (asserting 201)."""
    def _draft(user="v001-editor", targets=(V001,), section="affairs", title="村务公开：十一月财务收支",
               **kw):
        r = api(user, "post", "/contents", json={"section": section, "title": title,
                                                 "body": kw.pop("body", "<p>本月收支明细见附件。</p>"),
                                                 "target_regions": list(targets), **kw})
        assert r.status_code == 201, r.get_data(as_text=True)
        return r.get_json()
    return _draft


@pytest.fixture
def publish(api, draft):
    """Draft, submit and approve: returns the item's id."""
    def _publish(editor="v001-editor", reviewer="town01-reviewer", targets=(V001,), **kw):
        item = draft(editor, targets, **kw)
        assert api(editor, "post", f"/contents/{item['id']}/submit").status_code == 200
        r = api(reviewer, "post", f"/contents/{item['id']}/approve")
        assert r.status_code == 200, r.get_data(as_text=True)
        return item["id"]
    return _publish


@pytest.fixture
def captured_signals():
    """Every content_published / content_unpublished sent while the test runs."""
    from portal_server.core import signals

    got = []

    def on_pub(sender, **kw):
        got.append(("published", sender, kw))

    def on_unpub(sender, **kw):
        got.append(("unpublished", sender, kw))

    signals.content_published.connect(on_pub)
    signals.content_unpublished.connect(on_unpub)
    yield got
    signals.content_published.disconnect(on_pub)
    signals.content_unpublished.disconnect(on_unpub)


def household_box(village_code: str, tag: str | None = None, without_tags: bool = False) -> str:
    """Serial of a household box in the village (optionally of a household with ``tag``)."""
    from sqlalchemy import select

    from portal_server.core.db import session
    from portal_server.core.households import Household
    from portal_server.core.regions import region_by_code
    from portal_server.core.terminals import Terminal

    v = region_by_code(village_code)
    rows = session.execute(select(Terminal.serial, Household.tags).join(Household, Terminal.household_id == Household.id)
                           .where(Terminal.region_id == v.id).order_by(Terminal.serial)).all()
    for serial, tags in rows:
        if tag and tag not in tags.split():
            continue
        if without_tags and tags.strip():
            continue
        return serial
    raise LookupError(f"no household box in {village_code} (tag={tag})")
