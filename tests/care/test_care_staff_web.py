"""Staff web: the grid worker's task list (masked phone, audited unmask, close), the services
catalogue and CSV import form, and the services counter."""
import re

from flask import g
from sqlalchemy import select

from portal_server.care import operations as ops
from portal_server.core.audit import AuditEvent
from portal_server.core.db import session


def _login(auth, user):
    g.pop("csrf_token", None)
    r = auth.login(user)
    assert r.status_code == 302
    g.pop("csrf_token", None)


def _csrf(html):
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def test_grid_worker_sees_masked_phone_unmasks_with_audit_and_closes(client, auth, elderly_box, city_time):
    _hid, _ = elderly_box
    ops.check_missed(city_time("10:05"))
    session.commit()
    _login(auth, "grid-v001")
    page = client.get("/admin/care/tasks").get_data(as_text=True)
    assert "未报平安" in page and "****" in page
    tid = re.search(r'data-task="(\d+)"', page).group(1)
    before = len(session.scalars(select(AuditEvent).where(AuditEvent.action == "pii.unmask")).all())
    page = client.post(f"/admin/care/tasks/{tid}/unmask", data={"csrf_token": _csrf(page)}).get_data(as_text=True)
    phone = re.search(r'<strong class="phone">(\d+)</strong>', page).group(1)
    assert len(phone) == 11
    assert len(session.scalars(select(AuditEvent).where(AuditEvent.action == "pii.unmask")).all()) == before + 1
    r = client.post(f"/admin/care/tasks/{tid}/close", data={"csrf_token": _csrf(page), "note": "已上门，老人无恙"})
    assert r.status_code == 302
    assert "没有任务" in client.get("/admin/care/tasks").get_data(as_text=True)


def test_catalogue_csv_import_form_reports_the_row(client, auth):
    _login(auth, "city-editor")
    page = client.get("/admin/services/").get_data(as_text=True)
    assert "居民养老保险参保登记" in page
    import io
    bad = ("code,name,type,category,department,implementer,basis,conditions,materials,steps,statutory_days,"
           "promised_days,fee,fee_basis,location,hours,visits,phone,local\n"
           "X-1,事项,不存在的类型,甲/乙,部门,主体,,,,申请,1,1,,,,,1,,否\n")
    r = client.post("/admin/services/import", data={"csrf_token": _csrf(page),
                                                    "file": (io.BytesIO(bad.encode()), "c.csv")},
                    content_type="multipart/form-data", follow_redirects=True)
    body = r.get_data(as_text=True)
    assert "导入失败" in body and "第 2 行" in body and "type" in body


def test_openapi_lists_the_section_endpoints(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    for path in ("/api/v1/services", "/api/v1/services/{code}/slots", "/api/v1/bookings", "/api/v1/checkins",
                 "/api/v1/care-tasks", "/api/v1/speech", "/api/v1/affairs/board"):
        assert path in doc["paths"], path
    assert "requestBody" in doc["paths"]["/api/v1/bookings"]["post"]
