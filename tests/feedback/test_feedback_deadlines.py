"""Deadlines in working days, traffic lights, the periodic overdue sweep, follow-up visits."""
import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from portal_server.core import jobs
from portal_server.core.db import session
from portal_server.feedback import queries, rules

CN = ZoneInfo("Asia/Shanghai")


def test_working_days_skip_weekends():
    fri = dt.datetime(2026, 11, 20, 10, 0, tzinfo=CN)  # a Friday
    assert rules.add_working_days(fri, 0, CN).astimezone(CN) == dt.datetime(2026, 11, 20, 23, 59, 59, tzinfo=CN)
    assert rules.add_working_days(fri, 1, CN).astimezone(CN).date() == dt.date(2026, 11, 23)  # Monday
    assert rules.add_working_days(fri, 3, CN).astimezone(CN).date() == dt.date(2026, 11, 25)
    assert rules.add_working_days(fri, 10, CN).astimezone(CN).date() == dt.date(2026, 12, 4)
    sat = dt.datetime(2026, 11, 21, 9, 0, tzinfo=CN)
    assert rules.add_working_days(sat, 5, CN).astimezone(CN).date() == dt.date(2026, 11, 27)


def test_lights():
    s = dt.datetime(2026, 11, 23, 0, 0, tzinfo=dt.UTC)
    d = s + dt.timedelta(hours=100)
    assert rules.light(s, d, s + dt.timedelta(hours=74)) == "green"
    assert rules.light(s, d, s + dt.timedelta(hours=75)) == "yellow"
    assert rules.light(s, d, s + dt.timedelta(hours=101)) == "red"
    assert rules.light(s, d, s + dt.timedelta(hours=101), done=True) == "green"


@pytest.mark.city_time
def test_category_deadlines_and_config(app, file_order, client, box):
    urgent = queries.get(file_order(category="water")["id"])
    complaint = queries.get(file_order(category="roads")["id"])
    help_ = queries.get(file_order(category="elderly")["id"])
    day = lambda o: o.deadline_at.astimezone(CN).date()
    created = urgent.created_at.astimezone(CN)
    assert day(urgent) == created.date()
    assert day(complaint) == rules.add_working_days(created, 10, CN).astimezone(CN).date()
    assert day(help_) == rules.add_working_days(created, 5, CN).astimezone(CN).date()
    app.config["FEEDBACK_DEADLINE_DAYS"] = {"urgent": 1, "enquiry": 3, "help": 5, "complaint": 10}
    again = queries.get(file_order(category="water")["id"])
    assert day(again) == rules.add_working_days(created, 1, CN).astimezone(CN).date()


@pytest.mark.city_time
def test_overdue_sweep_reminds_once_and_notes_the_level_above(app, file_order, act, client, auth):
    oid = file_order(category="water")["id"]
    order = queries.get(oid)
    order.deadline_at = order.clock_started_at - dt.timedelta(seconds=1)  # already overdue
    session.commit()
    jobs.run("portal_server.feedback.tasks:check_deadlines")
    jobs.run("portal_server.feedback.tasks:check_deadlines")
    body = client.get(f"/api/v1/feedback/{oid}", headers=auth.headers("v001-handler")).get_json()
    overdue = [e for e in body["events"] if e["action"] == "overdue"]
    assert len(overdue) == 1 and overdue[0]["supervisor"] == "990101001000" and overdue[0]["actor"] == "system"
    assert body["light"] == "red"
    assert "feedback-deadlines" in jobs.PERIODIC
    # A transfer restarts the clock: the next desk gets a fresh deadline and its own reminder.
    act("v001-handler", oid, "accept")
    r = act("v001-handler", oid, "escalate").get_json()
    assert r["light"] != "red"


@pytest.mark.city_time
def test_follow_up_by_the_village_grid_worker(file_order, act, client, auth, staff_login):
    oid = file_order(category="roads")["id"]
    act("v001-handler", oid, "accept")
    act("v001-handler", oid, "reply", message="路灯已修好")
    assert act("grid-v001", oid, "follow_up", message="回访").status_code == 409
    act("v001-handler", oid, "close")
    staff_login("grid-v001")
    page = client.get("/admin/feedback/follow-ups").get_data(as_text=True)
    assert queries.get(oid).code in page
    assert act("v002-handler", oid, "follow_up", message="x").status_code == 403
    r = act("grid-v001", oid, "follow_up", message="已上门回访，路灯正常，群众满意")
    assert r.status_code == 200 and r.get_json()["follow_up"] == "done"
    assert queries.get(oid).code not in client.get("/admin/feedback/follow-ups").get_data(as_text=True)
