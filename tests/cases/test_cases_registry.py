"""Cases and base data together: a clerk applying for someone the population register lists as
deceased is warned at intake, the nightly comparison lists the open case, the household page shows
its cases, and the leaders' figures count cases."""
from __future__ import annotations

from portal_server.stats import tasks as stats_tasks

from .conftest import LOW_INCOME, V001

GOOD_ID = "11010519491231002X"   # passes the GB 11643 checksum


def test_deceased_applicant_is_flagged_and_reported(app, client, auth):
    h = auth.headers("v001-clerk")
    r = client.post("/api/v1/households", headers=h, json={
        "region_code": V001, "address": "9组1号", "head_name": "王守田", "phone": "13812345678",
        "tags": ["低保户"], "members": [{"name": "王守田", "id_number": GOOD_ID, "relation": "户主"}]})
    assert r.status_code == 201, r.get_data(as_text=True)
    hid = r.get_json()["id"]
    pid = client.get(f"/api/v1/households/{hid}", headers=h).get_json()["members"][0]["id"]
    assert client.patch(f"/api/v1/people/{pid}", headers=h, json={"status": "deceased"}).status_code == 200

    stats_tasks.aggregate_day()
    before = client.get(f"/api/v1/stats/overview?region={V001}", headers=auth.headers("town01-leader")).get_json()
    r = client.post("/api/v1/cases", headers=h, json={"service_code": LOW_INCOME, "channel": "counter",
                                                      "household_id": hid, "id_number": GOOD_ID})
    assert r.status_code == 201, r.get_data(as_text=True)
    case = client.get(f"/api/v1/cases/{r.get_json()['id']}", headers=h).get_json()
    assert any("已故" in f["message"] for f in case["flags"]), case["flags"]

    # The comparison (nightly, or on demand) lists the open case of a deceased person.
    report = client.get(f"/api/v1/registry/comparison?region={V001}&run=1", headers=h).get_json()
    found = [f for f in report["items"] if f["kind"] == "deceased_case"]
    assert found and case["number"] in found[0]["detail"]

    # The household page shows its cases.
    auth.login("v001-clerk")
    page = client.get(f"/admin/households/{hid}").get_data(as_text=True)
    assert "办件记录" in page and case["number"] in page

    # The leaders' figures count it after aggregation.
    stats_tasks.aggregate_day()
    after = client.get(f"/api/v1/stats/overview?region={V001}", headers=auth.headers("town01-leader")).get_json()
    assert after["cases"]["received"] == before["cases"]["received"] + 1
