"""Issue 15's "How it will be checked", item by item, plus the import helper's edge cases."""
import io
import re

import pytest
from openpyxl import Workbook, load_workbook
from sqlalchemy import func, select

from portal_server.core import audit, crypto
from portal_server.core.db import session
from portal_server.core.households import Household
from portal_server.registry import queries
from portal_server.registry.models import Person
from tests.conftest import csrf_from

V001, V002 = "990101001001", "990101001002"
GOOD_ID = "11010519491231002X"  # the GB 11643 standard's own example


def _count() -> int:
    n = session.scalar(select(func.count(Household.id)))
    session.remove()
    return n


def _xlsx(rows) -> bytes:
    wb = Workbook()
    ws = wb.active
    ws.append(["村代码", "地址", "户主姓名", "联系电话", "标签"])
    for r in rows:
        ws.append(r)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _upload(client, headers, name, data, query=""):
    return client.post(f"/api/v1/households/import{query}", headers=headers,
                       data={"file": (io.BytesIO(data), name)}, content_type="multipart/form-data")


def test_gbk_csv_with_a_bad_row_is_refused_whole_then_a_good_xlsx_imports(app, client, auth):
    h = auth.headers("v001-clerk")
    before = _count()
    csv_text = ("村代码,地址,户主姓名,联系电话,标签\n"
                f"{V001},5组1号,赵大山,13812345678,独居老人\n"
                f"{V001},5组2号,钱小河,1381234,低保户\n"          # row 3: malformed phone
                f"{V002},1组9号,孙三,13912345678,\n"                # row 4: village outside the clerk's scope
                f"{V001},5组3号,李四,13712345678,会员\n")           # row 5: unknown tag
    r = _upload(client, h, "住户.csv", csv_text.encode("gbk"))
    assert r.status_code == 400, r.get_data(as_text=True)
    err = r.get_json()["error"]
    rows = {x["row"]: x["message"] for x in err["rows"]}
    assert set(rows) == {3, 4, 5}
    assert "电话" in rows[3] and "不在您的管辖范围内" in rows[4] and "未知标签" in rows[5]
    assert "第 3 行" in err["message"]
    assert _count() == before  # nothing imported

    data = _xlsx([[V001, "6组1号", "周春梅", "13812345678", "独居老人、低保户"],
                  [V001, "6组2号", "吴建国", 13987654321, "veteran"]])   # a number cell, a tag code
    r = _upload(client, h, "住户.xlsx", data)
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.get_json()["imported"] == 2
    assert _count() == before + 2
    listing = client.get("/api/v1/households?q=周春梅", headers=h).get_json()
    assert listing["total"] == 1
    item = listing["items"][0]
    assert item["phone"] == "138****5678" and item["tags"] == ["elderly_alone", "low_income"]
    assert item["region_code"] == V001 and item["members"] == 1 and item["terminal"] is None
    # The same file again: unchanged rows, nothing new.
    r = _upload(client, h, "住户.xlsx", data, "?preview=1")
    assert r.get_json()["counts"] == {"new": 0, "updated": 0, "unchanged": 2, "bad": 0}


def test_utf8_csv_and_encoding_mixups_never_500(app, client, auth):
    h = auth.headers("v001-clerk")
    text = "村代码,地址,户主姓名,联系电话,标签\n" + f"{V001},7组1号,郑和平,0991-1234567,残疾人\n"
    r = _upload(client, h, "a.csv", ("\ufeff" + text).encode("utf-8"))
    assert r.status_code == 200 and r.get_json()["imported"] == 1
    # Bytes in neither UTF-8 nor GBK: a clear Chinese error, not a 500.
    r = _upload(client, h, "b.csv", b"\xff\xfe\x00\xd8garbage\x81\x30")
    assert r.status_code == 400 and r.get_json()["error"]["message"]
    # A wrong header row names the missing columns.
    r = _upload(client, h, "c.csv", "姓名,电话\n张三,13800000000\n".encode("gbk"))
    assert r.status_code == 400 and "村代码" in r.get_json()["error"]["message"]
    # Duplicate ID number in the file, ID failing its checksum.
    wb = Workbook()
    ws = wb.active
    ws.append(["村代码", "地址", "户主姓名", "联系电话", "标签", "户主身份证号"])
    ws.append([V001, "8组1号", "甲", "13800000001", "", GOOD_ID])
    ws.append([V001, "8组2号", "乙", "13800000002", "", GOOD_ID])
    ws.append([V001, "8组3号", "丙", "13800000003", "", "110105194912310021"])
    buf = io.BytesIO()
    wb.save(buf)
    r = _upload(client, h, "d.xlsx", buf.getvalue())
    rows = {x["row"]: x["message"] for x in r.get_json()["error"]["rows"]}
    assert "重复" in rows[3] and "校验" in rows[4]


def test_create_get_patch_and_people_with_masks_and_checks(app, client, auth):
    h = auth.headers("v001-clerk")
    r = client.post("/api/v1/households", headers=h, json={
        "region_code": V001, "address": "9组1号", "head_name": "王守田", "phone": "13812345678",
        "tags": ["独居老人"], "members": [{"name": "王守田", "id_number": GOOD_ID, "relation": "户主"}]})
    assert r.status_code == 201, r.get_data(as_text=True)
    hid = r.get_json()["id"]
    one = client.get(f"/api/v1/households/{hid}", headers=h).get_json()
    assert one["phone"] == "138****5678" and one["tags"] == ["elderly_alone"] and one["members_count"] == 1
    assert one["members"][0]["id_number"] == "110***********002X"
    assert one["members"][0]["birth_date"] == "1949-12-31"
    # ID failing the checksum and a bad phone: 400 naming the field, in Chinese.
    r = client.post("/api/v1/people", headers=h, json={"household_id": hid, "name": "王二", "id_number": "110105194912310021"})
    assert r.status_code == 400 and r.get_json()["error"]["field"] == "id_number"
    r = client.patch(f"/api/v1/households/{hid}", headers=h, json={"phone": "12345"})
    assert r.status_code == 400 and "电话" in r.get_json()["error"]["message"]
    r = client.patch(f"/api/v1/households/{hid}", headers=h, json={"tags": "低保户、elderly_alone", "address": "9组2号"})
    assert r.status_code == 200 and r.get_json()["tags"] == ["low_income", "elderly_alone"]
    pid = one["members"][0]["id"]
    r = client.patch(f"/api/v1/people/{pid}", headers=h, json={"status": "deceased", "died_on": "2026-11-30"})
    assert r.status_code == 200 and r.get_json()["status"] == "deceased" and "deceased" in r.get_json()["tags"]
    # The public queries cases will use.
    assert queries.is_deceased(GOOD_ID) and queries.person_by_id_number(GOOD_ID).household_id == hid
    people = client.get("/api/v1/people?tag=已故&region=" + V001, headers=h).get_json()
    assert pid in [p["id"] for p in people["items"]] and all("deceased" in p["tags"] for p in people["items"])
    # Unmasking is audited.
    r = client.post(f"/api/v1/households/{hid}/unmask", headers=h, json={"reason": "回访"})
    assert r.get_json()["phone"] == "13812345678"
    assert [e.action for e in audit.events_for("household", hid)][-1] == "pii.unmask"
    session.remove()


def test_clerk_outside_scope_gets_403_naming_the_region(app, client, auth):
    h = auth.headers("v001-clerk")
    hh = session.scalar(select(Household).where(Household.region_path.endswith(V002 + "/")))
    hid = hh.id
    session.remove()
    r = client.patch(f"/api/v1/households/{hid}", headers=h, json={"address": "x"})
    assert r.status_code == 403
    assert V002 in r.get_json()["error"]["message"] and "不在您的管辖范围内" in r.get_json()["error"]["message"]
    assert client.get(f"/api/v1/households/{hid}", headers=h).status_code == 403
    r = client.post("/api/v1/households", headers=h, json={"region_code": V002, "address": "1", "head_name": "x",
                                                           "phone": "13800000000"})
    assert r.status_code == 403 and V002 in r.get_json()["error"]["message"]
    listing = client.get("/api/v1/households?per_page=200", headers=h).get_json()
    assert listing["total"] > 0 and {i["region_code"] for i in listing["items"]} == {V001}
    assert client.get(f"/api/v1/households?region={V002}", headers=h).status_code == 403


def test_admin_creates_a_user_who_logs_in_and_is_deactivated(app, client, auth):
    a = auth.headers("admin")
    r = client.post("/api/v1/users", headers=a, json={"username": "v003-clerk", "password": "s3cret-pass",
                                                       "roles": ["clerk"], "region_code": "990101001003"})
    assert r.status_code == 201, r.get_data(as_text=True)
    tok = client.post("/api/v1/auth/token", json={"username": "v003-clerk", "password": "s3cret-pass"}).get_json()["token"]
    mine = {"Authorization": f"Bearer {tok}"}
    assert client.get("/api/v1/households", headers=mine).status_code == 200
    # A village admin cannot make accounts elsewhere; a clerk cannot make any.
    assert client.post("/api/v1/users", headers=mine, json={"username": "x1", "password": "12345678",
                                                            "roles": ["clerk"]}).status_code == 403
    r = client.patch("/api/v1/users/v003-clerk", headers=a, json={"roles": ["clerk", "grid_worker"],
                                                                  "department": "civil-affairs"})
    assert r.status_code == 200 and r.get_json()["roles"] == ["clerk", "grid_worker"]
    assert r.get_json()["department"] == "civil-affairs"
    r = client.patch("/api/v1/users/v003-clerk", headers=a, json={"roles": ["nonsense"]})
    assert r.status_code == 400 and "未知角色" in r.get_json()["error"]["message"]
    r = client.patch("/api/v1/users/v003-clerk", headers=a, json={"active": False})
    assert r.status_code == 200 and r.get_json()["active"] is False
    assert client.get("/api/v1/households", headers=mine).status_code == 401
    users = client.get("/api/v1/users?q=v003", headers=a).get_json()["items"]
    assert users == [{"username": "v003-clerk", "display_name": "v003-clerk", "roles": ["clerk", "grid_worker"],
                      "region_code": "990101001003", "department": "civil-affairs", "active": False}]
    # A town admin may not touch an account of another town.
    assert client.post("/api/v1/users", headers=a, json={"username": "town02-admin", "password": "s3cret-pass",
                                                         "roles": ["admin"], "region_code": "990101002000"}).status_code == 201
    t2 = client.post("/api/v1/auth/token", json={"username": "town02-admin", "password": "s3cret-pass"}).get_json()["token"]
    r = client.patch("/api/v1/users/v001-clerk", headers={"Authorization": f"Bearer {t2}"}, json={"active": False})
    assert r.status_code == 403 and "990101001001" in r.get_json()["error"]["message"]


def test_staff_web_lists_exports_imports_with_preview(app, client, auth):
    auth.login("v001-clerk")
    page = client.get("/admin/households?tag=elderly_alone").get_data(as_text=True)
    assert "住户名单" in page and "导出 Excel" in page
    r = client.get("/admin/households?format=xlsx")
    ws = load_workbook(io.BytesIO(r.data)).active
    header = [c.value for c in ws[1]]
    assert header[:4] == ["户号", "村代码", "地址", "户主姓名"]
    assert all(re.fullmatch(r"\d{3}\*+\d{4}", row[4].value) for row in ws.iter_rows(min_row=2))
    # Upload → preview (nothing written) → confirm.
    before = _count()
    form = client.get("/admin/households/import").get_data(as_text=True)
    data = _xlsx([[V001, "10组1号", "冯国庆", "15012345678", "留守儿童"]])
    r = client.post("/admin/households/import", data={"csrf_token": csrf_from(form), "file": (io.BytesIO(data), "a.xlsx")},
                    content_type="multipart/form-data")
    prev = r.get_data(as_text=True)
    assert r.status_code == 200 and 'data-count="new">1<' in prev and _count() == before
    token = re.search(r'name="token" value="([0-9a-f]+)"', prev).group(1)
    r = client.post("/admin/households/import", data={"csrf_token": csrf_from(prev), "token": token})
    assert r.status_code == 303 and _count() == before + 1
    # The page it leads to follows the background import (jobs run inline in tests: already done).
    job = re.search(r"job=([\w-]+)", r.headers["Location"]).group(1)
    assert 'id="import-job"' in client.get(r.headers["Location"]).get_data(as_text=True)
    st = client.get(f"/admin/imports/{job}").get_json()
    assert st["status"] == "done" and st["result"]["new"] == 1
    # A bad row: the preview names it, nothing is written and there is no confirm button.
    bad = _xlsx([[V001, "10组2号", "冯二", "1501234", ""]])
    r = client.post("/admin/households/import", data={"csrf_token": csrf_from(prev), "file": (io.BytesIO(bad), "b.xlsx")},
                    content_type="multipart/form-data")
    html = r.get_data(as_text=True)
    assert "第 2 行" in html and 'id="confirm-form"' not in html and _count() == before + 1


def test_pair_a_new_box_from_the_phone_and_the_portal_offers_checkin(app, client, auth):
    from device_fleet import operations as fleet_ops
    from portal_server.core.terminals import terminal_by_serial
    h = auth.headers("v001-clerk")
    hid = client.post("/api/v1/households", headers=h, json={
        "region_code": V001, "address": "11组1号", "head_name": "陈玉珍", "phone": "13800001111",
        "tags": ["独居老人"]}).get_json()["id"]
    term = terminal_by_serial("CTV-NEW-0003")
    fleet_ops.ensure_pairing_code(term)  # what the ingest does when the new box first says hello
    session.commit()  # the ingest commits after the operation (operations only flush)
    code = term.pairing_code
    session.remove()
    auth.login("v001-clerk")
    page = client.get(f"/m/households/{hid}").get_data(as_text=True)
    r = client.post(f"/m/households/{hid}", data={"csrf_token": csrf_from(page), "code": code})
    assert "绑定成功" in r.get_data(as_text=True)
    term = terminal_by_serial("CTV-NEW-0003")
    assert term.household_id == hid and term.region.code == V001
    from portal_server.core.terminals import portal_token
    tok = portal_token(term)
    session.remove()
    state = client.get("/tv/api/me", headers={"X-Terminal-Token": tok})
    assert state.get_json()["state"]["checkin"]["required"] is True
    listing = client.get("/api/v1/households?q=陈玉珍", headers=h).get_json()
    assert listing["items"][0]["terminal"] == "CTV-NEW-0003"


def test_map_and_comparison(app, client, auth):
    h = auth.headers("v001-clerk")
    plan = client.get(f"/api/v1/registry/villages/{V001}/plan", headers=h).get_json()
    assert plan["lanes"] and all(x["box"] in ("online", "offline", "none") for ln in plan["lanes"] for x in ln["houses"])
    assert client.get(f"/api/v1/registry/villages/{V002}/plan", headers=h).status_code == 403
    # A person in two households, a deceased person still on the low-income list, a bad ID number.
    hh1, hh2 = session.scalars(select(Household).where(Household.region_path.endswith(V001 + "/")).limit(2)).all()
    twice = "110105194912310046"
    assert crypto.lookup_hash(twice)
    for hh in (hh1, hh2):
        session.add(Person(household_id=hh.id, region_path=hh.region_path, name="重复人", relation="子女",
                           id_number_enc=crypto.encrypt(twice), id_number_hash=crypto.lookup_hash(twice), tags="",
                           status="active"))
    session.add(Person(household_id=hh1.id, region_path=hh1.region_path, name="故人", relation="父母", tags="low_income deceased",
                       status="deceased", id_number_enc=crypto.encrypt("110105194912310021")))
    session.commit()
    session.remove()
    r = client.get(f"/api/v1/registry/comparison?region={V001}&run=1", headers=h).get_json()
    kinds = {i["kind"] for i in r["items"]}
    assert {"two_households", "deceased_subsidy", "bad_id_number"} <= kinds
    auth.login("v001-clerk")
    page = client.get(f"/admin/households/compare?region={V001}").get_data(as_text=True)
    assert "同一人登记在两户" in page and "/admin/households/" in page
    assert 'id="plan"' in client.get("/admin/households/map").get_data(as_text=True)


@pytest.mark.postgres
def test_import_list_and_people_on_sqlite_and_postgresql(any_db_app):
    from tests.conftest import AuthActions
    client = any_db_app.test_client()
    auth = AuthActions(client, any_db_app.config["SETTINGS"].demo_password)
    h = auth.headers("town01-clerk")
    data = _xlsx([[V001, f"20组{i}号", f"测试{i}", f"1381234{i:04d}", "独居老人" if i % 2 else ""] for i in range(30)])
    r = _upload(client, h, "a.xlsx", data)
    assert r.status_code == 200 and r.get_json()["imported"] == 30, r.get_data(as_text=True)
    listing = client.get("/api/v1/households?region=990101001000&tag=独居老人&q=测试&per_page=10&page=2", headers=h).get_json()
    assert listing["total"] == 15 and len(listing["items"]) == 5
    assert all(i["phone"].startswith("138****") for i in listing["items"])
    people = client.get(f"/api/v1/people?region={V001}&q=测试", headers=h).get_json()
    assert people["total"] == 30
    assert client.get("/api/v1/households?region=990101002000", headers=h).status_code == 403


def test_a_moved_out_household_leaves_lists_and_needs_no_checkin(app, client, auth):
    from portal_server.care import operations as care_ops
    h = auth.headers("v001-clerk")
    hid = client.post("/api/v1/households", headers=h, json={"region_code": V001, "address": "30组1号", "head_name": "搬走了",
                                                             "phone": "13800003333", "tags": ["独居老人"]}).get_json()["id"]
    assert care_ops.needs_checkin(session.get(Household, hid))
    session.remove()
    r = client.post(f"/api/v1/households/{hid}/move-out", headers=h, json={"note": "迁往县城"})
    assert r.status_code == 200 and r.get_json()["status"] == "moved_out"
    assert client.get("/api/v1/households?q=搬走了", headers=h).get_json()["total"] == 0
    assert client.get("/api/v1/households?q=搬走了&status=moved_out", headers=h).get_json()["total"] == 1
    assert not care_ops.needs_checkin(session.get(Household, hid))
    assert client.patch(f"/api/v1/households/{hid}", headers=h, json={"address": "x"}).status_code == 400
    session.remove()
