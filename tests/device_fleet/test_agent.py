"""The box agent against the real broker and ingest: config, heartbeats, commands, alerts over video."""
import functools
import http.server
import subprocess
import threading
import time

import pytest

from device_fleet.agent import Agent, Player, backoff_delay
from portal_server.core import mqtt, signals
from portal_server.stack import free_port

from .conftest import boxes


def wait_for(fn, timeout=8.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.1)
    return fn()


@pytest.fixture
def hls(tmp_path):
    """A 6-second HLS test stream served over HTTP."""
    d = tmp_path / "hls"
    d.mkdir()
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=320x180:rate=10", "-f", "lavfi",
                    "-i", "sine=frequency=440", "-t", "6", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac",
                    "-f", "hls", "-hls_time", "2", "-hls_playlist_type", "vod", str(d / "index.m3u8")],
                   check=True, timeout=60)
    port = free_port()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(d))
    handler.log_message = lambda *a: None
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{port}/index.m3u8"
    srv.shutdown()


@pytest.fixture
def agent(app, ingest, mosquitto_server):
    sec = boxes(app, "CTV-HH-000002")["CTV-HH-000002"]
    a = Agent("CTV-HH-000002", sec, mosquitto_server["url"], fw="2.3.1", player=Player(dummy=True)).start()
    assert a.configured.wait(10), "agent got no config"
    yield a
    a.stop()


def test_backoff_has_full_jitter_and_a_cap():
    import random
    rng = random.Random(1)
    delays = [backoff_delay(10, rng=rng) for _ in range(200)]
    assert max(delays) <= 300 and min(delays) < 30 and len({round(d) for d in delays}) > 50


def test_agent_is_configured_online_and_acks_a_reboot(app, client, auth, agent):
    assert agent.config["state"] == "paired"
    assert agent.config["region_codes"] == ["990100000000", "990101001000", "990101001001"]
    h = auth.headers("noc")
    assert wait_for(lambda: client.get("/api/v1/terminals/CTV-HH-000002", headers=h).get_json()["online"])
    first = agent.started
    cid = client.post("/api/v1/terminals/CTV-HH-000002/commands", json={"type": "reboot"}, headers=h).get_json()["id"]
    assert wait_for(lambda: client.get(f"/api/v1/commands/{cid}", headers=h).get_json()["status"] == "acked")
    assert wait_for(lambda: agent.connected.is_set() and agent.started != first), "agent did not come back"
    assert client.get("/api/v1/terminals/CTV-HH-000002", headers=h).get_json()["online"]


def test_tune_plays_hls_with_vlc(app, client, auth, agent, hls):
    h = auth.headers("noc")
    cid = client.post("/api/v1/terminals/CTV-HH-000002/commands", json={"type": "tune", "args": {"url": hls}},
                      headers=h).get_json()["id"]
    res = wait_for(lambda: (lambda j: j["status"] != "sent" and j)(client.get(f"/api/v1/commands/{cid}", headers=h).get_json()), 20)
    assert res["status"] == "acked" and res["detail"] == "playing"
    assert agent.player.playing() == hls


def test_alert_shows_over_video_and_is_acked(app, agent):
    got = []
    rec = lambda sender, **kw: got.append((sender, kw))  # noqa: E731
    signals.box_acked.connect(rec)
    try:
        mqtt.publish("ctv/v1/region/990101001000/alert",
                     {"id": "A-1", "severity": "Severe", "urgency": "Immediate", "headline": "山洪预警",
                      "description": "上游降雨", "instruction": "请立即转移到高处", "expires": int(time.time()) + 600,
                      "display": "fullscreen", "cap_url": "http://x/a.cap", "ts": int(time.time())},
                     retain=True)
        assert wait_for(lambda: got)
        assert got[0][0] == "CTV-HH-000002" and got[0][1]["kind"] == "alert" and got[0][1]["id"] == "A-1"
        assert "山洪预警" in agent.player.marquee
        mqtt.publish("ctv/v1/region/990101001000/alert", b"", retain=True)  # cleared
        assert wait_for(lambda: agent.player.marquee is None)
    finally:
        signals.box_acked.disconnect(rec)
        mqtt.publish("ctv/v1/region/990101001000/alert", b"", retain=True)


def test_agent_as_a_process_refused_with_a_wrong_secret(app, mosquitto_server):
    boxes(app, "CTV-HH-000003")
    a = Agent("CTV-HH-000003", "wrong-secret", mosquitto_server["url"])
    a.start()
    time.sleep(1.5)
    assert not a.connected.is_set() and a.config is None
    a.stop(graceful=False)


def test_agent_repeats_an_unanswered_hello(app, mosquitto_server):
    """No ingest when the box first connects: its hello is lost, so it says it again until configured."""
    from device_fleet.ingest import Ingest
    from portal_server.core.protocol import dev_topic

    serial = "CTV-HH-510003"
    sec = boxes(app, serial)[serial]
    mqtt.publish(dev_topic(serial, "config"), b"", retain=True)  # no retained config from an earlier test
    a = Agent(serial, sec, mosquitto_server["url"], player=None, hello_retry_s=0.5).start()
    ing = None
    try:
        assert a.connected.wait(10)
        time.sleep(1.0)
        assert not a.configured.is_set()
        ing = Ingest(app, flush_interval=0.2, watch_interval=0.3).start()
        assert ing.ready.wait(10)
        assert a.configured.wait(10), "the agent never repeated its hello"
        assert a.config["state"] == "paired" and a.hello_attempt >= 2
    finally:
        a.stop()
        if ing is not None:
            ing.stop()
