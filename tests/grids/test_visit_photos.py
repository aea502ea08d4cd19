"""A visit's photo is written before the commit; when the visit never reaches the database (its
commit is refused, or the request fails after the photo was written) the photo goes too (issue 17:
it stayed orphaned in media/grids/)."""
from __future__ import annotations

import base64
import io

import pytest
from PIL import Image
from sqlalchemy import event, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from portal_server.core.db import session
from portal_server.grids.models import Visit

from .test_grids_api import grid  # noqa: F401 - the fixture


def _photo() -> str:
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), "green").save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _photos(app) -> set:
    root = app.config["SETTINGS"].media_dir / "grids"
    return {p for p in root.rglob("*") if p.is_file()} if root.exists() else set()


def _visits(note: str) -> int:
    session.remove()
    return len(session.scalars(select(Visit).where(Visit.note == note)).all())


@pytest.fixture
def post_visit(client, auth, grid):  # noqa: F811
    _gid, ids = grid
    w = auth.headers("grid-v001")
    return lambda note: client.post("/api/v1/visits", json={"household_id": ids[0], "note": note,
                                                           "photo": _photo()}, headers=w)


def test_a_good_visit_keeps_its_photo(app, post_visit):
    before = _photos(app)
    r = post_visit("带照片的走访")
    assert r.status_code == 201 and r.get_json()["photo"] is True
    new = _photos(app) - before
    assert len(new) == 1
    v = session.scalars(select(Visit).where(Visit.note == "带照片的走访")).one()
    assert app.config["SETTINGS"].media_dir / v.photo_path in new


def test_a_refused_commit_leaves_no_photo(app, post_visit):
    before = _photos(app)

    def refuse(sess):
        if any(isinstance(o, Visit) and o.note == "提交失败的走访" for o in sess.identity_map.values()):
            raise RuntimeError("the database refused the commit")
    event.listen(Session, "before_commit", refuse)
    try:
        with pytest.raises(RuntimeError):  # the test app hands the 500's exception to the test
            post_visit("提交失败的走访")
    finally:
        event.remove(Session, "before_commit", refuse)
    assert _visits("提交失败的走访") == 0
    assert _photos(app) == before
    # The visit's own folder went with it; the next good visit still keeps its photo.
    assert post_visit("之后的走访").status_code == 201 and len(_photos(app) - before) == 1


def test_a_request_failing_after_the_photo_was_written_leaves_no_photo(app, post_visit):
    """The database refuses the photo's row update (a real SQLite error inside the operation): the
    request fails and its session is closed without any commit."""
    if not str(session.get_bind().url).startswith("sqlite"):
        pytest.skip("the trigger is written for SQLite")
    session.execute(text("CREATE TRIGGER no_photo BEFORE UPDATE OF photo_path ON grid_visits "
                         "BEGIN SELECT RAISE(ABORT, 'disk full'); END"))
    session.commit()
    before = _photos(app)
    try:
        with pytest.raises(DBAPIError, match="disk full"):
            post_visit("请求失败的走访")
    finally:
        session.remove()
        session.execute(text("DROP TRIGGER no_photo"))
        session.commit()
    assert _visits("请求失败的走访") == 0
    assert _photos(app) == before
