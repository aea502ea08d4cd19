"""Village affairs: finance CSV (row errors, nothing imported), review → publication, the TV table,
masked subsidy names, the supervision board, safety contacts, party study records."""
from sqlalchemy import func, select

from portal_server.affairs.models import Disclosure, FinanceEntry
from portal_server.core.db import session

V1 = "990101001001"
CSV = "month,item,income,expense\n2026-10,光伏发电收入,1200.50,\n2026-10,保洁费,,800\n"


def _import(client, auth, data, region=V1, user="v001-editor"):
    return client.post(f"/api/v1/affairs/finance/import?region={region}", data=data.encode(),
                       headers={**auth.headers(user), "Content-Type": "text/csv"})


def test_finance_csv_bad_row_names_the_row_and_imports_nothing(client, auth):
    before = session.scalar(select(func.count(FinanceEntry.id)))
    for bad, row, word in [(CSV + "2026-10,村务支出,,-5\n", 4, "不能为负数"),
                           (CSV + "2026-11,另一个月,5,\n", 4, "一个月"),
                           (CSV.replace("1200.50", "12o0"), 2, "不是有效金额"),
                           (CSV + "2026-10,,5,\n", 4, "项目")]:
        r = _import(client, auth, bad)
        assert r.status_code == 400, bad
        err = r.get_json()["error"]
        assert err["row"] == row and f"第 {row} 行" in err["message"] and word in err["message"], err
    assert session.scalar(select(func.count(FinanceEntry.id))) == before
    assert _import(client, auth, "month,item\n2026-10,x\n").get_json()["error"]["row"] == 1
    # Outside the editor's scope, and not an editor.
    assert _import(client, auth, CSV, region="990101001002").status_code == 403
    assert _import(client, auth, CSV, user="grid-v001").status_code == 403


def test_finance_disclosure_reviewed_published_and_shown_as_a_table(client, auth, box):
    r = _import(client, auth, CSV)
    assert r.status_code == 201, r.get_data(as_text=True)
    d = r.get_json()
    assert d["status"] == "draft" and d["table"]["total_income"] == "1,200.50"
    # A box does not see drafts.
    mine = client.get("/api/v1/affairs/disclosures", headers=box("CTV-HH-000001")).get_json()["items"]
    assert d["id"] not in [x["id"] for x in mine]
    assert client.post(f"/api/v1/affairs/disclosures/{d['id']}/publish", headers=auth.headers("v001-editor")).status_code == 403
    r = client.post(f"/api/v1/affairs/disclosures/{d['id']}/publish", headers=auth.headers("v001-reviewer"))
    assert r.status_code == 200 and r.get_json()["published_at"]
    mine = client.get("/api/v1/affairs/disclosures?kind=finance", headers=box("CTV-HH-000001")).get_json()["items"]
    assert d["id"] in [x["id"] for x in mine]
    # Another village's box does not see it.
    assert client.get(f"/api/v1/affairs/disclosures/{d['id']}", headers=box("CTV-HH-010001")).status_code == 404
    # The TV page shows a real table with the publication date.
    page = client.get(f"/tv/affairs/d/{d['id']}", headers=box("CTV-HH-000001")).get_data(as_text=True)
    assert 'id="finance-table"' in page and "光伏发电收入" in page and "1,200.50" in page and "公开日期" in page


def test_subsidy_names_are_masked(client, auth, box):
    csv = "name,subsidy,amount,note\n欧阳秀英,高龄津贴,300,\n李明,临时救助,1500.00,因病\n"
    r = client.post(f"/api/v1/affairs/subsidy/import?region={V1}&period=2026Q3&title=补贴名单", data=csv.encode(),
                    headers={**auth.headers("v001-editor"), "Content-Type": "text/csv"})
    assert r.status_code == 201, r.get_data(as_text=True)
    d = r.get_json()
    client.post(f"/api/v1/affairs/disclosures/{d['id']}/publish", headers=auth.headers("v001-reviewer"))
    shown = client.get(f"/api/v1/affairs/disclosures/{d['id']}", headers=box("CTV-HH-000001")).get_data(as_text=True)
    assert "欧**英" in shown and "李*" in shown
    assert "欧阳秀英" not in shown and "李明" not in shown
    page = client.get(f"/tv/affairs/d/{d['id']}", headers=box("CTV-HH-000001")).get_data(as_text=True)
    assert "欧阳秀英" not in page and "欧**英" in page


def test_supervision_board_lists_late_villages_and_publication_clears_them(client, auth):
    board = client.get("/api/v1/affairs/board", headers=auth.headers("town01-reviewer")).get_json()
    by_code = {v["code"]: v for v in board["villages"]}
    assert len(by_code) == 7
    assert by_code[V1]["late"] == []                      # the demo publishes everything for village 1
    assert "decision" in by_code["990101001004"]["late"]  # the fourth village forgot its decision
    assert set(by_code["990101001005"]["late"]) == {"finance", "project", "subsidy", "decision"}
    # Village 5 publishes its finance for the due month: no longer late for finance.
    due = board["due"]["finance"]
    csv = f"month,item,income,expense\n{due},转移支付,1000,\n"
    r = client.post("/api/v1/affairs/finance/import?region=990101001005", data=csv.encode(),
                    headers={**auth.headers("town01-editor"), "Content-Type": "text/csv"})
    assert r.status_code == 201
    client.post(f"/api/v1/affairs/disclosures/{r.get_json()['id']}/publish", headers=auth.headers("town01-reviewer"))
    board = client.get("/api/v1/affairs/board", headers=auth.headers("town01-reviewer")).get_json()
    v5 = {v["code"]: v for v in board["villages"]}["990101001005"]
    assert "finance" not in v5["late"] and "decision" in v5["late"]
    # A village's editor sees only its village on the board.
    assert [v["code"] for v in client.get("/api/v1/affairs/board", headers=auth.headers("v001-editor")).get_json()["villages"]] == [V1]


def test_board_page_and_staff_pages_render(client, auth):
    from flask import g
    g.pop("csrf_token", None)
    auth.login("town01-reviewer")
    g.pop("csrf_token", None)
    page = client.get("/admin/affairs/board").get_data(as_text=True)
    assert 'data-code="990101001005"' in page and "逾期" in page
    assert client.get("/admin/affairs/").status_code == 200
    assert client.get("/admin/affairs/party").status_code == 200


def test_safety_contacts_and_party_study_records(client, auth, box):
    r = client.get("/api/v1/safety/contacts", headers=box("CTV-HH-000001")).get_json()
    roles = {c["role"] for c in r["items"]}
    assert {"police", "mediator"} <= roles and "alerts" in r
    assert "驻村民警" in client.get("/tv/affairs/safety", headers=box("CTV-HH-000001")).get_data(as_text=True)
    mats = client.get("/api/v1/party/materials", headers=box("CTV-HH-000001")).get_json()["items"]
    assert mats and not mats[0]["studied"]
    mid = mats[0]["id"]
    assert client.post("/api/v1/party/study", json={"material_id": mid}, headers=box("CTV-HH-000001")).status_code == 201
    assert client.post("/api/v1/party/study", json={"material_id": mid}, headers=box("CTV-HH-000001")).status_code == 200
    recs = client.get("/api/v1/party/records", headers=auth.headers("v001-editor")).get_json()["items"]
    assert [x["material_id"] for x in recs] == [mid] and recs[0]["household"].startswith(f"H{V1}")
    assert client.get("/api/v1/party/records", headers=auth.headers("v002-editor")).get_json()["items"] == []


def test_writes_work_on_sqlite_and_postgresql(any_db_app):
    """Affairs, bookings and check-ins on both databases (migrations, conditional UPDATE, dates)."""
    import datetime as dt

    from tests.conftest import AuthActions, terminal_token

    client = any_db_app.test_client()
    auth = AuthActions(client, any_db_app.config["SETTINGS"].demo_password)
    r = client.post(f"/api/v1/affairs/finance/import?region={V1}", data=CSV.encode(),
                    headers={**auth.headers("v001-editor"), "Content-Type": "text/csv"})
    assert r.status_code == 201, r.get_data(as_text=True)
    assert session.scalar(select(func.count(Disclosure.id)).where(Disclosure.status == "draft")) >= 1
    from portal_server.core.regions import region_by_code
    from portal_server.services import operations as sops
    start = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
    slot = sops.add_slot(region_by_code(V1), start, start + dt.timedelta(hours=1), 1, "test")
    session.commit()
    code = client.get("/api/v1/services?q=居民养老保险参保登记").get_json()["items"][0]["code"]
    h1 = {"X-Terminal-Token": terminal_token("CTV-HH-000001")}
    h2 = {"X-Terminal-Token": terminal_token("CTV-HH-000002")}
    assert client.post("/api/v1/bookings", json={"service_code": code, "slot_id": slot.id}, headers=h1).status_code == 201
    assert client.post("/api/v1/bookings", json={"service_code": code, "slot_id": slot.id}, headers=h2).status_code == 409
    assert client.post("/api/v1/checkins", headers=h1).status_code == 201
    assert client.post("/api/v1/checkins", headers=h1).status_code == 200


def test_disclosure_review_follows_the_content_rule_author_never_approves(client, auth):
    """Disclosures are approved under content's review rule: the reviewer role, a scope covering
    the village, never the author — and the approval is audited with both names."""
    from flask import g

    from portal_server.core import audit
    from tests.conftest import csrf_from

    # The admin holds every role: it may enter the disclosure but never approve its own.
    r = _import(client, auth, CSV, user="admin")
    assert r.status_code == 201, r.get_data(as_text=True)
    did = r.get_json()["id"]
    url = f"/api/v1/affairs/disclosures/{did}/publish"
    r = client.post(url, headers=auth.headers("admin"))
    assert r.status_code == 403 and "author" in str(r.get_json()["error"])
    assert client.post(url, headers=auth.headers("v001-editor")).status_code == 403     # not a reviewer
    assert session.get(Disclosure, did).status == "draft"
    # A reviewer of another village's scope is refused too; one whose scope covers it approves.
    other = _import(client, auth, CSV, region="990101001002", user="admin").get_json()["id"]
    r = client.post(f"/api/v1/affairs/disclosures/{other}/publish", headers=auth.headers("v001-reviewer"))
    assert r.status_code == 404  # the API does not even show it
    from portal_server.affairs import operations as ops
    from portal_server.core.accounts import user_by_username
    from portal_server.core.api import ApiError
    try:
        ops.publish(session.get(Disclosure, other), user_by_username("v001-reviewer"))
        raise AssertionError("a reviewer outside the village's scope published")
    except ApiError as e:
        assert e.status == 403 and "不在您的管辖范围内" in e.message
    session.rollback()
    r = client.post(url, headers=auth.headers("town01-reviewer"))
    assert r.status_code == 200 and r.get_json()["published_by"] == "town01-reviewer"
    trail = [(e.action, e.actor) for e in audit.events_for("disclosure", did)]
    assert trail == [("affairs.finance_imported", "admin"), ("affairs.published", "town01-reviewer")]
    # The staff page offers the author no approve button and says why; the home page counts
    # only what this reviewer may approve.
    draft = _import(client, auth, CSV, user="admin").get_json()["id"]
    g.pop("csrf_token", None)
    auth.login("admin")
    g.pop("csrf_token", None)
    assert "待我审核的村务公开" not in client.get("/admin/").get_data(as_text=True)
    page = client.get(f"/admin/affairs/d/{draft}").get_data(as_text=True)
    assert 'id="publish-form"' not in page and "录入人不能审核自己录入的公开内容" in page
    r = client.post(f"/admin/affairs/d/{draft}/publish", data={"csrf_token": csrf_from(page)})
    assert r.status_code == 302 and session.get(Disclosure, draft).status == "draft"
    client.post("/admin/logout", data={"csrf_token": csrf_from(client.get("/admin/").get_data(as_text=True))})
    g.pop("csrf_token", None)
    auth.login("town01-reviewer")
    g.pop("csrf_token", None)
    home = client.get("/admin/").get_data(as_text=True)
    assert "待我审核的村务公开" in home
