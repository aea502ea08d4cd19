"""A box's 我要办理 runs on plain rows (the box known by its ids, Core reads and writes, the answer
built from what was written): it must answer exactly what reading the case back answers, and keep
every rule of the box's credentials — a revoked or unpaired box gets 401, a cross-site write
carried by the cookie alone 403 — and the idempotency of a retry."""
from __future__ import annotations

import time_machine
from sqlalchemy import select, update

from portal_server.core.audit import AuditEvent
from portal_server.core.db import session
from portal_server.core.terminals import Terminal
from tests.conftest import terminal_token

from .conftest import LOW_INCOME, V001

BOX = "CTV-HH-000001"
TUESDAY = "2026-12-01 09:00:00+08:00"


def _apply(client, headers, key="k"):
    return client.post("/api/v1/cases", json={"service_code": LOW_INCOME, "channel": "tv", "idempotency_key": key,
                                              "note": "家里老人行动不便"}, headers=headers)


@time_machine.travel(TUESDAY, tick=True)
def test_the_answer_is_the_case_as_read_back(client, box):
    me = box(BOX)
    r = _apply(client, me)
    assert r.status_code == 201, r.get_data(as_text=True)
    made = r.get_json()
    back = client.get(f"/api/v1/cases/{made['id']}", headers=me).get_json()
    assert made == back   # every field, the first step and the materials checklist included
    assert made["events"][0]["action"] == "submit" and made["events"][0]["actor"] == f"terminal:{BOX}"
    assert made["events"][0]["note"] == "家里老人行动不便" and made["desk"] == V001
    assert made["materials"] and not any(m["received"] for m in made["materials"])
    audit = session.scalars(select(AuditEvent).where(AuditEvent.object_type == "case",
                                                     AuditEvent.object_id == str(made["id"]))).all()
    assert [a.action for a in audit] == ["cases.submit"] and audit[0].actor == f"terminal:{BOX}"
    assert audit[0].region_code == V001
    again = _apply(client, me)   # the TV retried
    assert again.status_code == 200 and again.get_json()["id"] == made["id"]


def test_a_revoked_or_unpaired_box_cannot_apply(client, box):
    me = box(BOX)
    session.execute(update(Terminal).where(Terminal.serial == BOX).values(token_version=Terminal.token_version + 1))
    session.commit()
    r = _apply(client, me)
    assert r.status_code == 401 and "终端令牌" in r.get_json()["error"]["message"]
    fresh = {"X-Terminal-Token": terminal_token(BOX)}   # the new version's token works
    assert _apply(client, fresh, key="k2").status_code == 201
    session.execute(update(Terminal).where(Terminal.serial == BOX).values(region_id=None, region_path=None))
    session.commit()
    assert _apply(client, fresh, key="k3").status_code == 401


def test_a_cross_site_write_with_the_box_cookie_alone_is_refused(app):
    c = app.test_client()
    assert c.get(f"/tv/?token={terminal_token(BOX)}").status_code == 302
    body = {"service_code": LOW_INCOME, "channel": "tv", "idempotency_key": "x"}
    r = c.post("/api/v1/cases", json=body, headers={"Origin": "https://evil.example"})
    assert r.status_code == 403 and r.get_json()["error"]["code"] == "cross_site"
    r = c.post("/api/v1/cases", json=body, headers={"Origin": app.config["SETTINGS"].public_url})
    assert r.status_code == 201, r.get_data(as_text=True)
    assert app.test_client().post("/api/v1/cases", json=body).status_code == 401
