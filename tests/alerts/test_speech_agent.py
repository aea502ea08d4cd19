"""The spoken version: synthesised on the server (care's espeak-ng → AAC), republished with audio_url, and
the box agent shows the alert over the video, acks it through the real broker and plays the speech."""
from __future__ import annotations


import pytest
import requests

from device_fleet.agent import Agent, Player
from portal_server.alerts import queries

from tests.device_fleet.conftest import ingest  # noqa: F401

from .conftest import V001, send
from .test_acks_tv import wait_for


@pytest.fixture
def agent(app, ingest, demo_box, mosquitto_server):  # noqa: F811
    serial, secret, _ = demo_box("CTV-HH-000003")
    a = Agent(serial, secret, mosquitto_server["url"], player=Player(dummy=True)).start()
    assert a.configured.wait(10), "agent got no config"
    yield a
    a.stop()


def test_agent_shows_acks_and_plays_the_spoken_alert(app, client, auth, live_server, agent):
    app.config["ALERTS_SPEECH"] = True
    a = send(client, auth, headline="山洪预警", instruction="请立即转移到高处").get_json()
    detail = client.get(f"/api/v1/alerts/{a['id']}", headers=auth.headers("noc")).get_json()
    audio = detail["audio_url"]
    assert audio and audio.startswith(live_server + "/media/speech/") and audio.endswith(".m4a")
    r = requests.get(audio, timeout=10)
    assert r.status_code == 200 and len(r.content) > 2000  # real AAC from espeak-ng
    assert queries.active_for_region_chain(["990100000000", "990101001000", V001])[0]["audio_url"] == audio
    assert wait_for(lambda: agent.player.marquee and "山洪预警" in agent.player.marquee)
    assert wait_for(lambda: getattr(agent.player, "audio_url", None) == audio), "agent did not play the speech"
    vlc = agent.player.vlc
    assert wait_for(lambda: agent.player.audio_mp.get_state() in (vlc.State.Playing, vlc.State.Ended), 10)
    assert [x for x in agent.acked if x[0] == "alert"] == [("alert", a["id"], True)]  # once, though sent twice
    assert wait_for(lambda: client.get(f"/api/v1/alerts/{a['id']}", headers=auth.headers("noc")).get_json()["acked"] == 1)
    client.post(f"/api/v1/alerts/{a['id']}/cancel", headers=auth.headers("v001-reviewer"))
    assert wait_for(lambda: agent.player.marquee is None and agent.player.audio_url is None)
