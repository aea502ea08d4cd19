"""The programme guide: XMLTV valid against the shipped XMLTV DTD (lxml), +0800 times, meetings as
programmes, M3U tvg-id = XMLTV channel id, now/next, a village hall channel following its meeting."""
from __future__ import annotations

import datetime as dt

import pytest
from lxml import etree

from epg import xmltv
from portal_server.core.db import session
from portal_server.meetings import operations as mops
from portal_server.meetings import queries as mqueries
from tests.meetings.conftest import V001, box_serials, make_meeting


@pytest.mark.city_time
def test_xmltv_is_valid_and_lists_the_meeting(client, auth):
    m = make_meeting(client, auth, title="村民议事会（修路）", start_in=dt.timedelta(hours=2))
    r = client.get("/epg/xmltv.xml")
    assert r.status_code == 200 and r.mimetype == "application/xml"
    doc = etree.fromstring(r.data)
    dtd = etree.DTD(open(xmltv.DTD_PATH, "rb"))
    assert dtd.validate(doc), dtd.error_log.filter_from_errors()
    assert xmltv.validate(r.data) == []
    progs = doc.findall("programme")
    assert len(doc.findall("channel")) >= 88 and len(progs) > 100
    assert all(p.get("start").endswith(" +0800") and p.get("stop").endswith(" +0800") for p in progs)
    mine = [p for p in progs if "村民议事会（修路）" in p.findtext("title")]
    assert len(mine) == 1 and mine[0].get("channel") == f"v{V001}.qingshan"
    start = dt.datetime.fromisoformat(m["starts_at"])
    assert mine[0].get("start") == start.strftime("%Y%m%d%H%M%S") + " +0800"
    assert mine[0].findtext("category") == "社区会议"
    # Every programme's channel is declared.
    ids = {c.get("id") for c in doc.findall("channel")}
    assert {p.get("channel") for p in progs} <= ids


def test_an_invalid_document_is_caught_by_the_dtd():
    bad = b'<?xml version="1.0"?><tv><programme channel="x"><title>t</title></programme></tv>'
    assert xmltv.validate(bad)  # start is required


def test_m3u_tvg_ids_match_xmltv_channels(client, box):
    ids = {c.get("id") for c in etree.fromstring(client.get("/epg/xmltv.xml").data).findall("channel")}
    entries = xmltv.decode_m3u(client.get("/epg/channels.m3u").get_data(as_text=True))
    assert len(entries) >= 88
    assert all(e["tvg-id"] in ids for e in entries)
    assert all(e["url"].startswith("http") for e in entries)
    # A box gets the city and county channels and only its own village hall.
    serial = box_serials(V001)[0]
    mine = xmltv.decode_m3u(client.get("/epg/channels.m3u", headers=box(serial)).get_data(as_text=True))
    halls = [e for e in mine if e["tvg-id"].startswith("v")]
    assert [e["tvg-id"] for e in halls] == [f"v{V001}.qingshan"]
    assert {e["tvg-id"] for e in mine} >= {"qingshan.city", "relay1.qingshan"}


@pytest.mark.city_time
def test_now_next_and_the_village_hall_channel_follows_its_meeting(client, auth, box):
    m = make_meeting(client, auth, title="两委会议", start_in=dt.timedelta(minutes=-10))
    serial = box_serials(V001)[0]
    # The demo day runs 06:00–24:00 city time: at any hour, something is on now and next.
    from epg import operations as eops
    from epg import queries as equeries
    now = dt.datetime.now(dt.UTC)
    eops.add_programme(equeries.channel_by_xmltv_id("qingshan.city"), "夜间节目", now - dt.timedelta(minutes=20),
                       now + dt.timedelta(seconds=30))
    eops.add_programme(equeries.channel_by_xmltv_id("qingshan.city"), "夜间节目（二）", now + dt.timedelta(seconds=30),
                       now + dt.timedelta(minutes=50))
    session.commit()
    session.remove()
    r = client.get("/api/v1/epg/now-next", headers=box(serial)).get_json()
    chans = {c["id"]: c for c in r["items"]}
    city = chans["qingshan.city"]
    assert city["now"] and city["next"]
    assert dt.datetime.fromisoformat(city["now"]["start"]) <= dt.datetime.now(dt.UTC) < \
        dt.datetime.fromisoformat(city["now"]["stop"])
    hall = chans[f"v{V001}.qingshan"]
    assert hall["now"]["meeting_id"] == m["id"] and "两委会议" in hall["now"]["title"]
    assert client.get(f"/epg/live/v{V001}.qingshan.m3u8", headers=box("CTV-HH-000001")).status_code == 404
    session.remove()
    mops.admit_publish(mqueries.meeting_by_id(m["id"]).stream_key, "1")
    session.commit()
    assert client.get(f"/epg/live/v{V001}.qingshan.m3u8").status_code == 401  # the guide lists, only boxes play
    from tests.conftest import terminal_token
    r = client.get(f"/epg/live/v{V001}.qingshan.m3u8", headers={"X-Terminal-Token": terminal_token("CTV-HH-000001")})
    assert r.status_code == 302 and r.headers["Location"].endswith(f"/meetings/{m['id']}/index.m3u8")  # the master: both renditions
    assert r.headers["Location"].startswith("/hls/s/")  # signed, expiring
    assert client.get("/api/v1/epg/now-next").status_code == 401
    assert client.get("/epg/xmltv.xml?days=99").status_code == 400


def test_xmltv_round_trip_keeps_times():
    from zoneinfo import ZoneInfo
    tz = ZoneInfo("Asia/Shanghai")
    start = dt.datetime(2026, 11, 23, 11, 0, tzinfo=dt.UTC)
    doc = xmltv.encode_xmltv([{"id": "a.b", "name": "频道", "number": 1, "url": "http://x/a.m3u8"}],
                             [{"channel": "a.b", "start": start, "stop": start + dt.timedelta(hours=1), "title": "新闻"}], tz)
    assert xmltv.validate(doc) == []
    back = xmltv.decode_xmltv(doc)
    assert back["programmes"][0]["start"] == start and back["programmes"][0]["title"] == "新闻"
    assert b'start="20261123190000 +0800"' in doc


def test_titles_with_markup_and_control_characters_stay_valid():
    from zoneinfo import ZoneInfo
    start = dt.datetime(2026, 11, 23, 11, 0, tzinfo=dt.UTC)
    doc = xmltv.encode_xmltv([{"id": 'a"b<', "name": "A & B", "number": 1, "url": "http://x/?a=1&b=2"}],
                             [{"channel": 'a"b<', "start": start, "stop": start + dt.timedelta(hours=1),
                               "title": "<b>新闻</b>\x01 & 天气", "desc": "x\x0by"}], ZoneInfo("Asia/Shanghai"))
    assert xmltv.validate(doc) == []
    back = xmltv.decode_xmltv(doc)
    assert back["programmes"][0]["title"] == "<b>新闻</b> & 天气" and back["channels"][0]["id"] == 'a"b<'


@pytest.mark.city_time
def test_noc_adds_a_relayed_county_channel_and_its_programme(client, auth):
    h = auth.headers("noc")
    r = client.post("/api/v1/epg/channels", headers=h, json={"xmltv_id": "relay3.qingshan", "number": 13,
                    "name": "青山县公共频道", "kind": "relay", "stream_url": "http://10.0.0.8/live/ch3.m3u8"})
    assert r.status_code == 201 and r.get_json()["url"] == "http://10.0.0.8/live/ch3.m3u8"
    assert client.post("/api/v1/epg/channels", headers=h, json={"xmltv_id": "bad id", "number": 14, "name": "x",
                       "kind": "relay", "stream_url": "http://x/"}).status_code == 400
    assert client.post("/api/v1/epg/channels", headers=h, json={"xmltv_id": "relay4.qingshan", "number": 14,
                       "name": "x", "kind": "relay"}).status_code == 400  # a relay needs its URL
    assert client.post("/api/v1/epg/channels", headers=auth.headers("v001-editor"), json={}).status_code == 403
    start = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    r = client.post("/api/v1/epg/programmes", headers=h, json={"channel": "relay3.qingshan", "title": "县域新闻",
                    "starts_at": start.isoformat(), "ends_at": (start + dt.timedelta(minutes=30)).isoformat()})
    assert r.status_code == 201
    doc = client.get("/epg/xmltv.xml").data
    assert xmltv.validate(doc) == []
    assert b'channel="relay3.qingshan"' in doc and "县域新闻".encode() in doc
    entries = xmltv.decode_m3u(client.get("/epg/channels.m3u").get_data(as_text=True))
    assert {"tvg-id": "relay3.qingshan", "url": "http://10.0.0.8/live/ch3.m3u8"}.items() <= \
        next(e for e in entries if e["tvg-id"] == "relay3.qingshan").items()
