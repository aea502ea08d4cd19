"""Service catalogue and bookings through the API: the contract, bad input, scope."""
import datetime as dt

from portal_server.core.db import session

PENSION = "居民养老保险参保登记"


def _future_slot(region_code: str, hours_ahead: int = 48, capacity: int = 2):
    from portal_server.core.regions import region_by_code
    from portal_server.services import operations as ops
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(hours=hours_ahead)
    slot = ops.add_slot(region_by_code(region_code), start, start + dt.timedelta(hours=1), capacity, "test")
    session.commit()
    return slot.id


def _pension_code(client):
    r = client.get("/api/v1/services", query_string={"q": PENSION})
    assert r.status_code == 200
    items = [i for i in r.get_json()["items"] if i["name"] == PENSION]
    assert items, "demo item missing"
    return items[0]


def test_catalogue_lists_the_demo_items_with_every_element(client):
    r = client.get("/api/v1/services?per_page=100")
    body = r.get_json()
    assert r.status_code == 200 and body["total"] >= 16
    it = _pension_code(client)
    for key in ("code", "name", "category", "department", "basis", "conditions", "materials", "steps",
                "time_limit_days", "fee", "location", "hours", "phone", "local"):
        assert key in it, key
    assert it["local"] is True
    assert it["materials"][0]["quantity"] >= 1 and it["materials"][0]["form"] in ("原件", "复印件", "原件和复印件")
    assert any(m["copy"] for m in it["materials"])
    assert len(it["steps"]) >= 3
    # Category filter (by name, includes sub-categories), three levels at most.
    r = client.get("/api/v1/services", query_string={"category": "社会保障"})
    names = [i["name"] for i in r.get_json()["items"]]
    assert PENSION in names and "居民身份证换领" not in names
    cats = client.get("/api/v1/services/categories").get_json()["items"]
    assert max(c["level"] for c in cats) == 3
    assert client.get("/api/v1/services", query_string={"category": "无此类"}).status_code == 400


def test_book_from_a_box_then_cancel(client, box, auth):
    it = _pension_code(client)
    slot_id = _future_slot("990101001001")
    r = client.get(f"/api/v1/services/{it['code']}/slots", headers=box("CTV-HH-000001"))
    assert r.status_code == 200
    assert slot_id in [s["id"] for s in r.get_json()["items"]]
    r = client.post("/api/v1/bookings", json={"service_code": it["code"], "slot_id": slot_id},
                    headers=box("CTV-HH-000001"))
    assert r.status_code == 201, r.get_data(as_text=True)
    b = r.get_json()
    assert b["id"] and b["code"].startswith("YY")
    # Staff of the village see it; staff of another village do not.
    listed = client.get("/api/v1/bookings", headers=auth.headers("v001-handler")).get_json()["items"]
    assert b["code"] in [x["code"] for x in listed]
    other = client.get("/api/v1/bookings", headers=auth.headers("v002-handler")).get_json()["items"]
    assert b["code"] not in [x["code"] for x in other]
    # Another household's box cannot see or cancel it.
    assert client.post(f"/api/v1/bookings/{b['id']}/cancel", headers=box("CTV-HH-000002")).status_code == 404
    r = client.post(f"/api/v1/bookings/{b['id']}/cancel", headers=box("CTV-HH-000001"))
    assert r.status_code == 200 and r.get_json()["status"] == "cancelled"
    assert r.get_json()["slot"]["booked"] == 0
    assert client.post(f"/api/v1/bookings/{b['id']}/cancel", headers=box("CTV-HH-000001")).status_code == 409


def test_full_past_and_closed_slots_are_409_with_a_clear_message(client, box, auth):
    code = _pension_code(client)["code"]
    full = _future_slot("990101001001", capacity=1)
    assert client.post("/api/v1/bookings", json={"service_code": code, "slot_id": full},
                       headers=box("CTV-HH-000001")).status_code == 201
    r = client.post("/api/v1/bookings", json={"service_code": code, "slot_id": full}, headers=box("CTV-HH-000002"))
    assert r.status_code == 409 and "约满" in r.get_json()["error"]["message"]

    past = _future_slot("990101001001", hours_ahead=-3)
    r = client.post("/api/v1/bookings", json={"service_code": code, "slot_id": past}, headers=box("CTV-HH-000002"))
    assert r.status_code == 409 and "已经过去" in r.get_json()["error"]["message"]

    closed = _future_slot("990101001001", hours_ahead=30)
    assert client.post(f"/api/v1/slots/{closed}/close", headers=auth.headers("v001-handler")).status_code == 200
    r = client.post("/api/v1/bookings", json={"service_code": code, "slot_id": closed}, headers=box("CTV-HH-000002"))
    assert r.status_code == 409 and "停止预约" in r.get_json()["error"]["message"]
    # Not the box's village: 400, not a booking.
    elsewhere = _future_slot("990101001002")
    r = client.post("/api/v1/bookings", json={"service_code": code, "slot_id": elsewhere}, headers=box("CTV-HH-000002"))
    assert r.status_code == 400
    # Bad body and unknown ids never 500.
    assert client.post("/api/v1/bookings", json={"service_code": code}, headers=box("CTV-HH-000002")).status_code == 400
    assert client.post("/api/v1/bookings", json={"service_code": "nope", "slot_id": full},
                       headers=box("CTV-HH-000002")).status_code == 404
    assert client.post("/api/v1/bookings", json={"service_code": code, "slot_id": full}).status_code == 401


def test_item_not_done_locally_books_only_at_the_town_centre(client, box):
    r = client.get("/api/v1/services", query_string={"q": "居民身份证换领"})
    code = r.get_json()["items"][0]["code"]
    village_slot = _future_slot("990101001001")
    town_slot = _future_slot("990101001000")
    slots = client.get(f"/api/v1/services/{code}/slots", headers=box("CTV-HH-000001")).get_json()["items"]
    ids = {s["id"] for s in slots}
    assert town_slot in ids and village_slot not in ids
    r = client.post("/api/v1/bookings", json={"service_code": code, "slot_id": village_slot}, headers=box("CTV-HH-000001"))
    assert r.status_code == 400 and "镇便民服务中心" in r.get_json()["error"]["message"]
    assert client.post("/api/v1/bookings", json={"service_code": code, "slot_id": town_slot},
                       headers=box("CTV-HH-000001")).status_code == 201


GOOD = ("code,name,type,category,department,implementer,basis,conditions,materials,steps,statutory_days,"
        "promised_days,fee,fee_basis,location,hours,visits,phone,local\n"
        "T-001,测试事项一,公共服务,测试/二级/三级,市测试局,镇中心,依据,条件,身份证:1:原件,申请|办结,10,5,不收费,,镇中心,工作日,1,12345,是\n")


def test_csv_import_all_or_nothing_with_the_row_number(client, auth):
    h = auth.headers("city-editor")
    bad = GOOD + "T-002,测试事项二,公共服务,测试/二级,市测试局,镇中心,依据,条件,身份证:两份:原件,申请,10,5,不收费,,镇中心,工作日,1,12345,否\n"
    r = client.post("/api/v1/services/import", data=bad.encode(), headers={**h, "Content-Type": "text/csv"})
    assert r.status_code == 400
    err = r.get_json()["error"]
    assert err["row"] == 3 and "第 3 行" in err["message"] and "份数" in err["message"]
    assert client.get("/api/v1/services", query_string={"q": "测试事项"}).get_json()["total"] == 0
    deep = GOOD.replace("测试/二级/三级", "测试/二级/三级/四级")
    r = client.post("/api/v1/services/import", data=deep.encode(), headers={**h, "Content-Type": "text/csv"})
    assert r.status_code == 400 and r.get_json()["error"]["row"] == 2
    r = client.post("/api/v1/services/import", data=GOOD.encode(), headers={**h, "Content-Type": "text/csv"})
    assert r.status_code == 200 and r.get_json()["created"] == 1
    it = client.get("/api/v1/services/T-001").get_json()
    assert it["category"] == "测试 / 二级 / 三级" and it["local"] is True
    # A resident's box or a grid worker may not import.
    assert client.post("/api/v1/services/import", data=GOOD.encode(),
                       headers={**auth.headers("grid-v001"), "Content-Type": "text/csv"}).status_code == 403
