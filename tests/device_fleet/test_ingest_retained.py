"""After a power cut a box finds its config retained on the broker: the ingest leaves a current one
alone (its hello only marks it present and reports its firmware) and re-issues a portal URL that is
about to expire — on the box's hello, and ahead of time by the periodic job (frozen clock)."""
import json
import queue
import time

import paho.mqtt.client as paho
import pytest
import time_machine
from paho.mqtt.enums import CallbackAPIVersion

from device_fleet import presence, tasks
from device_fleet.ingest import retained_facts
from portal_server.core import mqtt, protocol, redis as core_redis
from portal_server.core.db import session
from portal_server.core.mqtt import parse_url
from portal_server.core.terminals import portal_url, terminal_by_serial

from .conftest import boxes, pub, read_config

BOX = "CTV-HH-000003"
DAY = 86400


@pytest.fixture
def watcher(app):
    """Every config message the broker sends for BOX: (retained flag, payload)."""
    got: queue.Queue = queue.Queue()
    args = parse_url(app.config["SETTINGS"].mqtt_server_url)
    c = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"cfg-watch-{time.time_ns()}", protocol=paho.MQTTv5)
    c.username_pw_set(args["username"], args["password"])
    c.on_message = lambda _c, _u, m: got.put((m.retain, json.loads(m.payload) if m.payload else None))
    c.connect(args["host"], args["port"])
    c.loop_start()
    c.subscribe(protocol.dev_topic(BOX, "config"), 1)
    yield got
    c.loop_stop()
    c.disconnect()


def publish_retained(app, expires: int | None = None) -> dict:
    """The server publishes BOX's retained config (its portal URL expiring at ``expires``)."""
    term = terminal_by_serial(BOX)
    s = app.config["SETTINGS"]
    payload = protocol.encode_config(paired=True, region_codes=term.region_codes(), heartbeat_s=s.heartbeat_s,
                                     timezone=s.timezone, portal_url=portal_url(term, expires))
    session.remove()
    mqtt.publish(protocol.dev_topic(BOX, "config"), payload, qos=1, retain=True)
    return json.loads(payload)


def expiry(cfg: dict) -> int:
    return retained_facts(json.dumps(cfg).encode())[1]


def drain(got: queue.Queue, wait: float) -> list:
    out, deadline = [], time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            out.append(got.get(timeout=max(0.01, deadline - time.monotonic())))
        except queue.Empty:
            pass
    return out


def wait_for(pred, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return False


def test_a_rebooting_box_with_a_current_config_is_not_answered_but_its_firmware_is_recorded(app, ingest, port,
                                                                                          watcher):
    sec = boxes(app, BOX)[BOX]
    cfg = publish_retained(app)
    assert wait_for(lambda: BOX in ingest.retained), "the ingest did not see the retained config"
    drain(watcher, 0.5)
    # The box comes back: its config is already there for it, and its hello gets no second one.
    assert read_config(port, BOX, sec)["portal_url"] == cfg["portal_url"]
    pub(port, BOX, sec, "hello", json.dumps({"model": "CTV-S905", "fw": "2.4.0", "ts": 1}))
    assert [m for m in drain(watcher, 1.5) if not m[0]] == []
    # Present at once, and the NOC sees the firmware it reported (written in a batch).
    assert wait_for(lambda: BOX in presence.online_serials())
    assert wait_for(lambda: (session.remove() or terminal_by_serial(BOX).firmware) == "2.4.0")


def test_a_portal_url_near_its_expiry_is_reissued_on_hello(app, ingest, port, watcher):
    sec = boxes(app, BOX)[BOX]
    soon = int(time.time()) + 2 * DAY
    publish_retained(app, expires=soon)
    assert wait_for(lambda: ingest.retained.get(BOX, (None, None))[1] == soon)
    drain(watcher, 0.3)
    pub(port, BOX, sec, "hello", json.dumps({"model": "CTV-S905", "fw": "2.3.1", "ts": 1}))
    fresh = [m for _r, m in drain(watcher, 2.0) if m]
    assert fresh and expiry(fresh[-1]) > time.time() + 80 * DAY
    assert expiry(read_config(port, BOX, sec)) > time.time() + 80 * DAY


def test_the_periodic_job_reissues_portal_urls_a_week_before_they_expire(app, ingest, port):
    sec = boxes(app, BOX)[BOX]
    first = expiry(publish_retained(app))  # 90 days ahead (portal_url_ttl_days), on a whole UTC day
    r = core_redis.client()
    assert wait_for(lambda: r.zscore(presence.PORTAL_EXPIRY, BOX) == first), "the ingest did not note the expiry"
    # A month on: nothing is due, the box keeps its URL.
    with time_machine.travel(first - 60 * DAY, tick=True):
        tasks.refresh_configs()
        assert expiry(read_config(port, BOX, sec)) == first
    # Five days before it runs out: a fresh URL, 90 days from then, is retained for the box.
    with time_machine.travel(first - 5 * DAY, tick=True):
        assert tasks.refresh_configs() >= 1
        cfg = read_config(port, BOX, sec)
        assert expiry(cfg) >= first - 5 * DAY + 89 * DAY
        assert r.zscore(presence.PORTAL_EXPIRY, BOX) == expiry(cfg)
        # A box unbound since its expiry was noted has no portal URL to refresh: skipped, forgotten.
        r.zadd(presence.PORTAL_EXPIRY, {"CTV-NEW-0001": first})
        tasks.refresh_configs()
        assert r.zscore(presence.PORTAL_EXPIRY, "CTV-NEW-0001") is None
        # ...and it was due once: the next run leaves it alone.
        before = cfg["portal_url"]
        tasks.refresh_configs()
        assert read_config(port, BOX, sec)["portal_url"] == before
