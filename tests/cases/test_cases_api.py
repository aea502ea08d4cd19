"""The issue's check through the API: a box applies; v001-clerk accepts and forwards to
town01-clerk; suspend without a note is 400; resume, complete, follow up, evaluate from the box,
archive; an illegal transition is 409; the box sees every step (API and MQTT notices)."""
from __future__ import annotations

import time

import time_machine

from portal_server.core.db import session

from .conftest import ID_CARD, LOW_INCOME, TOWN01, V001, listen, read

BOX = "CTV-HH-000001"         # a household of 东河村 (990101001001)
OTHER_BOX = "CTV-HH-000002"   # another household of the same village
# A Tuesday morning in city time: deadlines in working days are the same whenever the suite runs.
TUESDAY = "2026-12-01 09:00:00+08:00"


def act(client, headers, case_id, action, **kw):
    return client.post(f"/api/v1/cases/{case_id}/actions", json={"action": action, **kw}, headers=headers)


@time_machine.travel(TUESDAY, tick=True)
def test_the_whole_path_from_the_tv_to_the_archive(client, auth, box, demo_box, mosquitto_server):
    serial, secret = demo_box(BOX)
    notices = listen(mosquitto_server, serial, secret, f"ctv/v1/region/{V001}/notice", count=9)
    time.sleep(0.7)
    me = box(BOX)
    r = client.post("/api/v1/cases", json={"service_code": LOW_INCOME, "channel": "tv", "idempotency_key": "k-1"},
                    headers=me)
    assert r.status_code == 201, r.get_data(as_text=True)
    case = r.get_json()
    assert case["status"] == "submitted" and case["number"].startswith("BJ20261201")
    assert case["desk"] == V001 and case["light"] == "green"
    # 25 working days from Tuesday 1 December: Tuesday 5 January (no holidays modelled), 18:00 city time.
    assert case["deadline"].startswith("2027-01-05T18:00") and case["deadline"].endswith("+08:00")
    # The TV retried: the same case.
    again = client.post("/api/v1/cases", json={"service_code": LOW_INCOME, "channel": "tv", "idempotency_key": "k-1"},
                        headers=me)
    assert again.status_code == 200 and again.get_json()["id"] == case["id"]
    cid = case["id"]

    clerk, town, other_clerk = auth.headers("v001-clerk"), auth.headers("town01-clerk"), auth.headers("v002-clerk")
    assert cid in [c["id"] for c in client.get("/api/v1/cases", headers=clerk).get_json()["items"]]
    assert act(client, other_clerk, cid, "accept").status_code == 403          # another village's clerk
    assert client.get(f"/api/v1/cases/{cid}", headers=other_clerk).status_code == 403
    assert act(client, clerk, cid, "resume").status_code == 409                  # not suspended
    r = act(client, clerk, cid, "accept", note="材料齐全")
    assert r.status_code == 200 and r.get_json()["status"] == "accepted"
    r = act(client, clerk, cid, "forward", to="town01-clerk", note="报镇民政办入户调查")
    assert r.status_code == 200 and r.get_json()["desk"] == TOWN01
    # Now at the town centre: the village clerk no longer holds it.
    assert act(client, clerk, cid, "complete").status_code == 403
    r = act(client, town, cid, "suspend")
    assert r.status_code == 400 and r.get_json()["error"]["field"] == "note"
    assert act(client, town, cid, "suspend", note="请补充家庭收入证明").get_json()["status"] == "suspended"
    r = act(client, town, cid, "complete")
    assert r.status_code == 409 and "已挂起" in r.get_json()["error"]["message"]
    assert act(client, town, cid, "resume", note="材料已补齐").get_json()["status"] == "accepted"
    assert act(client, town, cid, "complete", note="审批通过，次月起发放").get_json()["status"] == "completed"
    assert act(client, me, cid, "complete").status_code == 403                    # a box only evaluates
    assert act(client, town, cid, "follow_up", note="电话回访，群众已知晓").get_json()["status"] == "followed_up"
    assert act(client, me, cid, "evaluate", score=9).status_code == 400
    r = act(client, me, cid, "evaluate", score=5)
    assert r.status_code == 200 and r.get_json()["status"] == "evaluated" and r.get_json()["score"] == 5
    assert act(client, town, cid, "archive").get_json()["status"] == "archived"
    r = act(client, auth.headers("town01-leader"), cid, "supervise")
    assert r.status_code == 409 and "archived" in r.get_json()["error"]["message"]

    # The box sees every step, in order, and nobody else's household reads it.
    seen = client.get(f"/api/v1/cases/{cid}", headers=me).get_json()
    assert [e["action"] for e in seen["events"]] == ["submit", "accept", "forward", "suspend", "resume", "complete",
                                                     "follow_up", "evaluate", "archive"]
    assert seen["events"][3]["note"] == "请补充家庭收入证明"
    assert client.get(f"/api/v1/cases/{cid}", headers=box(OTHER_BOX)).status_code == 403
    got = read(notices)
    assert len(got) == 9 and {n["type"] for n in got} == {"case"} and all(n["id"] == cid for n in got)
    assert all(n["expires"] == n["ts"] + 7 * 24 * 3600 for n in got)   # stale after a week
    # Every step is in the audit trail.
    from sqlalchemy import select

    from portal_server.core.audit import AuditEvent
    acts = list(session.scalars(select(AuditEvent.action).where(AuditEvent.object_type == "case",
                                                               AuditEvent.object_id == str(cid))))
    assert len(acts) == 9 and acts[0] == "cases.submit"


@time_machine.travel(TUESDAY, tick=True)
def test_admission_list_supervision_and_intake_flags(client, auth, box):
    clerk = auth.headers("v001-clerk")
    from portal_server.core.households import Household
    from portal_server.core.terminals import terminal_by_serial
    hh_id = terminal_by_serial(BOX).household_id
    session.remove()
    # Not a village-hall item: 409 telling where to go.
    r = client.post("/api/v1/cases", json={"service_code": ID_CARD, "channel": "counter", "household_id": hh_id},
                    headers=clerk)
    assert r.status_code == 409 and "市政务服务中心" in r.get_json()["error"]["message"]
    # The town takes 低保 off its villages' list: the village hall refuses it, the TV goes to the town.
    page = client.get("/api/v1/services/" + LOW_INCOME).get_json()
    assert page["tv_apply"] and page["local"] and page["handle_level"] == "department"
    from portal_server.core.accounts import user_by_username
    from portal_server.core.regions import region_by_code
    from portal_server.services import operations as service_ops
    service_ops.admit(user_by_username("town01-clerk"), region_by_code(TOWN01), [LOW_INCOME], False)
    session.commit()
    r = client.post("/api/v1/cases", json={"service_code": LOW_INCOME, "channel": "counter", "household_id": hh_id},
                    headers=clerk)
    assert r.status_code == 409 and "准入清单" in r.get_json()["error"]["message"]
    r = client.post("/api/v1/cases", json={"service_code": LOW_INCOME, "channel": "tv"}, headers=box(BOX))
    assert r.status_code == 201 and r.get_json()["desk"] == TOWN01
    cid = r.get_json()["id"]
    # 督办 by the town's leader; a village clerk cannot.
    assert act(client, clerk, cid, "supervise").status_code == 403
    r = act(client, auth.headers("town01-leader"), cid, "supervise", note="请加快办理")
    assert r.status_code == 200 and r.get_json()["supervised"] == 1
    # The light turns red when the deadline passes.
    with time_machine.travel("2027-01-20 10:00:00+08:00"):
        assert client.get(f"/api/v1/cases/{cid}", headers=box(BOX)).get_json()["light"] == "red"
    # Intake comparison: the same person (ID number) applying from another household, and a deceased mark.
    hh = session.get(Household, hh_id)
    from portal_server.core import crypto
    idn = crypto.decrypt(hh.id_number_enc)
    other = terminal_by_serial(OTHER_BOX).household_id
    session.get(Household, other).tags = "elderly_alone deceased"
    session.commit()
    r = client.post("/api/v1/cases", json={"service_code": LOW_INCOME, "channel": "counter", "household_id": other,
                                           "id_number": idn}, headers=auth.headers("town01-clerk"))
    assert r.status_code == 201, r.get_data(as_text=True)
    flags = {f["code"]: f["message"] for f in r.get_json()["flags"]}
    assert set(flags) == {"deceased", "duplicate"} and hh.number in flags["duplicate"]
    # The 12345 hotline (a city account) files for a household: its town centre receives it.
    r = client.post("/api/v1/cases", json={"service_code": ID_CARD, "channel": "hotline", "household_id": hh_id},
                    headers=auth.headers("hotline"))
    assert r.status_code == 201 and r.get_json()["desk"] == TOWN01 and r.get_json()["channel"] == "hotline"
    # Bad input is a 4xx in Chinese, never a 500.
    assert client.post("/api/v1/cases", json={"service_code": "nope", "channel": "tv"}, headers=box(BOX)).status_code == 404
    assert client.post("/api/v1/cases", json={"service_code": LOW_INCOME, "channel": "fax"}, headers=box(BOX)).status_code == 400
    assert act(client, clerk, cid, "dance").status_code == 400


def test_apply_retry_and_actions_on_both_databases(any_db_app):
    """SQLite and PostgreSQL: numbering, the idempotency key, a forward and the 409."""
    from tests.conftest import AuthActions, terminal_token
    client = any_db_app.test_client()
    auth = AuthActions(client, any_db_app.config["SETTINGS"].demo_password)
    me = {"X-Terminal-Token": terminal_token(BOX)}
    body = {"service_code": LOW_INCOME, "channel": "tv", "idempotency_key": "same"}
    first = client.post("/api/v1/cases", json=body, headers=me)
    second = client.post("/api/v1/cases", json=body, headers=me)
    assert first.status_code == 201 and second.status_code == 200
    assert first.get_json()["id"] == second.get_json()["id"] and first.get_json()["number"].startswith("BJ")
    cid = first.get_json()["id"]
    clerk = auth.headers("v001-clerk")
    assert act(client, clerk, cid, "accept").status_code == 200
    r = act(client, clerk, cid, "forward", to=TOWN01)
    assert r.status_code == 200 and r.get_json()["desk"] == TOWN01
    r = act(client, auth.headers("town01-clerk"), cid, "follow_up")
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "conflict"
    session.remove()
