"""Scope on writes the review found open: the service catalogue (API, form, CSV), the programme
guide, staff reads of polls, NOC rollouts."""
import datetime as dt

from portal_server.core.accounts import create_user, user_by_username
from portal_server.core.db import session
from portal_server.core.regions import region_by_code

from tests.conftest import AuthActions, csrf_from

CSV = ("code,name,type,category,department,implementer,basis,conditions,materials,steps,statutory_days,"
       "promised_days,fee,fee_basis,location,hours,visits,phone,local\n"
       "S-001,安全测试事项,公共服务,测试/二级,{dept},镇中心,依据,条件,身份证:1:原件,申请|办结,10,5,不收费,,镇中心,工作日,1,12345,是\n")
ITEM = {"code": "S-002", "name": "安全测试事项二", "type": "公共服务", "category": "测试/二级",
        "department": "市民政局", "implementer": "镇中心", "statutory_days": 10, "promised_days": 5,
        "materials": "身份证:1:原件", "steps": "申请|办结"}


def _is_chinese(text):
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


def test_a_village_or_town_editor_cannot_write_the_city_catalogue(client, auth):
    for user in ("v001-editor", "town01-editor"):
        h = auth.headers(user)
        r = client.post("/api/v1/services", json=ITEM, headers=h)
        assert r.status_code == 403 and _is_chinese(r.get_json()["error"]["message"]), r.get_data(as_text=True)
        r = client.post("/api/v1/services/import", data=CSV.format(dept="市民政局").encode(),
                        headers={**h, "Content-Type": "text/csv"})
        assert r.status_code == 403
    assert client.get("/api/v1/services/S-001").status_code == 404
    assert client.get("/api/v1/services/S-002").status_code == 404
    # The catalogue's owners: city editors and admins.
    assert client.post("/api/v1/services", json=ITEM, headers=auth.headers("city-editor")).status_code == 201
    assert client.post("/api/v1/services/import", data=CSV.format(dept="市民政局").encode(),
                       headers={**auth.headers("admin"), "Content-Type": "text/csv"}).status_code == 200


def test_a_village_editor_cannot_use_the_catalogue_forms(app, client, auth):
    auth.login("v001-editor")
    page = client.get("/admin/services/new").get_data(as_text=True)
    form = {k: str(v) for k, v in ITEM.items()}
    r = client.post("/admin/services/new", data={**form, "csrf_token": csrf_from(page)})
    assert r.status_code == 403 and "市级" in r.get_data(as_text=True)
    page = client.get("/admin/services/").get_data(as_text=True)
    import io
    r = client.post("/admin/services/import", data={"csrf_token": csrf_from(page),
                    "file": (io.BytesIO(CSV.format(dept="市民政局").encode()), "c.csv")},
                    content_type="multipart/form-data")
    assert r.status_code == 403
    assert client.get("/api/v1/services/S-001").status_code == 404


def test_a_department_edits_only_its_own_items(app, client):
    create_user("dept-civil-editor", "pw-dept-civil-1", ["editor"], region_by_code("990100000000"),
                department_code="civil-affairs")
    session.commit()
    a = AuthActions(client, "pw-dept-civil-1")
    h = a.headers("dept-civil-editor")
    assert client.post("/api/v1/services", json=ITEM, headers=h).status_code == 201
    other = {**ITEM, "code": "S-003", "department": "市人社局"}
    r = client.post("/api/v1/services", json=other, headers=h)
    assert r.status_code == 403 and "本部门" in r.get_json()["error"]["message"]


def test_programme_guide_writes_are_scoped(client, auth):
    start = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).replace(microsecond=0)
    prog = {"channel": "qingshan.city", "title": "村里自排节目", "starts_at": start.isoformat(),
            "ends_at": (start + dt.timedelta(hours=1)).isoformat()}
    r = client.post("/api/v1/epg/programmes", json=prog, headers=auth.headers("v001-editor"))
    assert r.status_code == 403 and _is_chinese(r.get_json()["error"]["message"])
    r = client.post("/api/v1/epg/programmes", json=prog, headers=auth.headers("city-editor"))
    assert r.status_code == 201, r.get_data(as_text=True)


def test_staff_poll_reads_are_scoped(client, auth):
    closes = (dt.datetime.now(dt.UTC) + dt.timedelta(days=3)).isoformat()
    r = client.post("/api/v1/polls", json={"title": "二村修路意见", "options": ["同意", "不同意"],
                                           "region_code": "990101001002", "closes_at": closes},
                    headers=auth.headers("v002-editor"))
    assert r.status_code == 201, r.get_data(as_text=True)
    pid = r.get_json()["id"]
    r = client.get(f"/api/v1/polls/{pid}", headers=auth.headers("v001-editor"))
    assert r.status_code == 403 and _is_chinese(r.get_json()["error"]["message"])
    assert client.get(f"/api/v1/polls/{pid}", headers=auth.headers("town01-editor")).status_code == 200
    assert client.get(f"/api/v1/polls/{pid}", headers=auth.headers("v002-editor")).status_code == 200


def test_a_town_noc_operator_cannot_control_a_city_rollout(app, client, auth):
    from device_fleet import operations
    noc = user_by_username("noc")
    fw = operations.upload_firmware("2.9.0", b"image", noc)
    ro = operations.start_rollout(fw, noc, {}, waves=[10, 100])
    create_user("town01-noc", "pw-town-noc-1", ["noc"], region_by_code("990101001000"))
    session.commit()
    h = AuthActions(client, "pw-town-noc-1").headers("town01-noc")
    assert client.get(f"/api/v1/rollouts/{ro.id}", headers=h).status_code == 403
    r = client.post(f"/api/v1/rollouts/{ro.id}/pause", headers=h)
    assert r.status_code == 403 and _is_chinese(r.get_json()["error"]["message"])
    assert client.post(f"/api/v1/rollouts/{ro.id}/pause", headers=auth.headers("noc")).status_code == 200
    # Their own town's rollout is theirs.
    mine = client.post("/api/v1/rollouts", json={"version": "2.9.0", "region": "990101001000"}, headers=h)
    assert mine.status_code == 201, mine.get_data(as_text=True)
    assert client.post(f"/api/v1/rollouts/{mine.get_json()['id']}/pause", headers=h).status_code == 200
