"""Grids, visits and events (INTERFACES §4.3): the issue's check list through the real API."""
from __future__ import annotations

import base64
import io

import pytest
from PIL import Image
from sqlalchemy import select

from portal_server.core.db import session
from portal_server.core.households import Household

V001 = "990101001001"
V002 = "990101001002"


def _households(code):
    rows = session.scalars(select(Household).where(Household.region_path.endswith(code + "/"))
                           .order_by(Household.number)).all()
    return [h.id for h in rows]


@pytest.fixture
def grid(client, auth):
    """A new grid in village 001 for grid-v001 with every household of the village."""
    r = client.post("/api/v1/grids", json={"region_code": V001, "name": "测试网格", "worker": "grid-v001"},
                    headers=auth.headers("admin"))
    assert r.status_code == 201, r.get_json()
    gid = r.get_json()["id"]
    ids = _households(V001)
    r = client.post(f"/api/v1/grids/{gid}/households", json={"household_ids": ids},
                    headers=auth.headers("v001-clerk"))
    assert r.status_code == 200, r.get_json()
    return gid, ids


def test_create_grid_assign_and_list(client, auth, grid):
    gid, ids = grid
    r = client.get(f"/api/v1/grids?region={V001}", headers=auth.headers("v001-clerk"))
    items = {g["id"]: g for g in r.get_json()["items"]}
    assert items[gid]["households"] == len(ids)
    assert items[gid]["worker"] == "grid-v001"
    # One grid at a time: the demo grid lost the households that moved here.
    assert all(g["households"] == 0 for k, g in items.items() if k != gid)


def test_grid_worker_of_another_village_is_refused(client, auth):
    r = client.post("/api/v1/grids", json={"region_code": V002, "name": "东岭一格", "worker": "grid-v001"},
                    headers=auth.headers("admin"))
    assert r.status_code == 400
    assert "不属于" in r.get_json()["error"]["message"]
    r = client.post("/api/v1/grids", json={"region_code": V001, "name": "某格", "worker": "v001-handler"},
                    headers=auth.headers("admin"))
    assert r.status_code == 400
    # A clerk of village 002 cannot make grids in village 001.
    r = client.post("/api/v1/grids", json={"region_code": V001, "name": "某格", "worker": "grid-v001"},
                    headers=auth.headers("v002-clerk"))
    assert r.status_code == 403


def test_household_of_another_village_cannot_join(client, auth, grid):
    gid, _ = grid
    r = client.post(f"/api/v1/grids/{gid}/households", json={"household_ids": _households(V002)[:1]},
                    headers=auth.headers("admin"))
    assert r.status_code == 400


def test_visit_and_event_reach_the_village_desk(client, auth, grid):
    _gid, ids = grid
    w = auth.headers("grid-v001")
    r = client.post("/api/v1/visits", json={"household_id": ids[0], "kind": "visit", "note": "老人身体健康",
                                            "lat": 28.68, "lon": 115.86, "idempotency_key": "k-visit-1"}, headers=w)
    assert r.status_code == 201, r.get_json()
    r = client.post("/api/v1/visits", json={"household_id": ids[1], "kind": "event", "category": "roads",
                                            "note": "村口道路塌陷，需要修补", "idempotency_key": "k-event-1"}, headers=w)
    assert r.status_code == 201, r.get_json()
    fid = r.get_json()["feedback_id"]
    assert fid
    # The work order is at v001-handler's desk, filed through channel grid.
    order = client.get(f"/api/v1/feedback/{fid}", headers=auth.headers("v001-handler")).get_json()
    assert order["handler"] == {"level": "village", "code": V001}
    assert order["channel"] == "grid"
    page = client.get("/admin/feedback/", follow_redirects=True)
    auth.login("v001-handler")
    page = client.get("/admin/feedback/").get_data(as_text=True)
    assert order["code"] in page
    # The replayed offline submission is stored once and answers with the same entry.
    again = client.post("/api/v1/visits", json={"household_id": ids[1], "kind": "event", "category": "roads",
                                                "note": "村口道路塌陷，需要修补", "idempotency_key": "k-event-1"},
                        headers=w)
    assert again.status_code == 200
    assert again.get_json()["feedback_id"] == fid
    log = client.get("/api/v1/visits", headers=w).get_json()
    assert [v["kind"] for v in log["items"]] == ["visit", "event"]
    # The assessment lists grid-v001 with the visit and the event.
    a = client.get(f"/api/v1/assessment?period=week&level=worker&region={V001}",
                   headers=auth.headers("town01-leader")).get_json()
    me = next(i for i in a["items"] if i["key"] == "grid-v001")
    assert (me["visits"], me["events"]) == (1, 1)
    assert me["card"] in ("none", "yellow", "red") and me["points"] > 0
    for level in ("grid", "village"):
        a = client.get(f"/api/v1/assessment?period=month&level={level}", headers=auth.headers("city-leader")).get_json()
        assert sum(i["visits"] for i in a["items"]) == 1 and sum(i["events"] for i in a["items"]) == 1


def test_household_outside_my_grids_is_forbidden(client, auth, grid):
    w = auth.headers("grid-v001")
    r = client.post("/api/v1/visits", json={"household_id": _households(V002)[0], "kind": "visit", "note": "x"},
                    headers=w)
    assert r.status_code == 403
    assert "网格" in r.get_json()["error"]["message"]


def test_bad_photo_and_bad_input(client, auth, grid):
    _gid, ids = grid
    w = auth.headers("grid-v001")
    not_image = "data:image/jpeg;base64," + base64.b64encode(b"this is not a picture").decode()
    r = client.post("/api/v1/visits", json={"household_id": ids[0], "note": "x", "photo": not_image}, headers=w)
    assert r.status_code == 400 and "不是图片" in r.get_json()["error"]["message"]
    big = "data:image/jpeg;base64," + "A" * (11 * 1024 * 1024 * 4 // 3)
    r = client.post("/api/v1/visits", json={"household_id": ids[0], "note": "x", "photo": big}, headers=w)
    assert r.status_code == 400 and "太大" in r.get_json()["error"]["message"]
    r = client.post("/api/v1/visits", json={"household_id": ids[0], "kind": "nap"}, headers=w)
    assert r.status_code == 400
    r = client.post("/api/v1/visits", json={"household_id": ids[0], "kind": "event", "note": "x",
                                            "category": "weather"}, headers=w)
    assert r.status_code == 400
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), "red").save(buf, "PNG")
    good = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    r = client.post("/api/v1/visits", json={"household_id": ids[0], "note": "带照片", "photo": good}, headers=w)
    assert r.status_code == 201 and r.get_json()["photo"] is True


def test_care_tasks_go_to_the_grid_worker(client, auth, app):
    """A household in another worker's grid leaves grid-v001's care list (core.fieldwork)."""
    from portal_server.core.accounts import create_user, user_by_username
    from portal_server.care.models import CareTask
    from portal_server.core import clock
    from portal_server.core.regions import region_by_code

    village = region_by_code(V001)
    create_user("grid-v001b", app.config["SETTINGS"].demo_password, ("grid_worker",), village, "东河村网格员二")
    session.commit()
    ids = _households(V001)
    for hid in ids[:2]:
        session.add(CareTask(kind="missed_checkin", household_id=hid, region_path=village.path,
                             region_id=village.id, day=clock.today(), status="open"))
    session.commit()
    r = client.post("/api/v1/grids", json={"region_code": V001, "name": "第二网格", "worker": "grid-v001b"},
                    headers=auth.headers("admin"))
    gid = r.get_json()["id"]
    client.post(f"/api/v1/grids/{gid}/households", json={"household_ids": [ids[1]]}, headers=auth.headers("admin"))
    mine = {t["household"]["id"] for t in client.get("/api/v1/care-tasks?status=open",
                                                      headers=auth.headers("grid-v001")).get_json()["items"]}
    theirs = {t["household"]["id"] for t in client.get("/api/v1/care-tasks?status=open",
                                                       headers=auth.headers("grid-v001b")).get_json()["items"]}
    assert ids[0] in mine and ids[1] not in mine
    assert ids[1] in theirs
    assert user_by_username("grid-v001b") is not None


def test_patrol_track(client, auth):
    w = auth.headers("grid-v001")
    p = client.post("/api/v1/patrols", headers=w).get_json()
    client.post(f"/api/v1/patrols/{p['id']}/track", json={"points": [[28.68, 115.86, 1], [28.681, 115.86, 2]]}, headers=w)
    d = client.post(f"/api/v1/patrols/{p['id']}/stop", json={"points": [[28.682, 115.86, 3]]}, headers=w).get_json()
    assert d["ended_at"] and d["points"] == 3 and 200 < d["distance_m"] < 250
    me = client.get("/api/v1/grids/me", headers=w).get_json()
    assert me["patrol"] is None and me["households"]


def test_assessment_bad_input(client, auth):
    h = auth.headers("town01-leader")
    assert client.get("/api/v1/assessment?period=year", headers=h).status_code == 400
    assert client.get("/api/v1/assessment?level=planet", headers=h).status_code == 400
    assert client.get("/api/v1/assessment?region=990102", headers=h).status_code in (403, 400)


def test_loop_and_assessment_on_sqlite_and_postgresql(any_db_app):
    """The core path on both databases: grid, event → work order, replay stored once, assessment."""
    from tests.conftest import AuthActions

    client = any_db_app.test_client()
    auth = AuthActions(client, any_db_app.config["SETTINGS"].demo_password)
    r = client.post("/api/v1/grids", json={"region_code": V001, "name": "库测网格", "worker": "grid-v001"},
                    headers=auth.headers("admin"))
    gid = r.get_json()["id"]
    ids = _households(V001)
    client.post(f"/api/v1/grids/{gid}/households", json={"household_ids": ids}, headers=auth.headers("admin"))
    w = auth.headers("grid-v001")
    body = {"household_id": ids[0], "kind": "event", "category": "water", "note": "自来水管漏水",
            "idempotency_key": "db-1"}
    first = client.post("/api/v1/visits", json=body, headers=w)
    second = client.post("/api/v1/visits", json=body, headers=w)
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.get_json()["id"] == second.get_json()["id"]
    a = client.get("/api/v1/assessment?level=grid", headers=auth.headers("admin")).get_json()
    mine = next(i for i in a["items"] if i["key"] == str(gid))
    assert mine["events"] == 1 and mine["visits"] == 0
