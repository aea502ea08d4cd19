"""One way out of a transaction (DESIGN §1): what a write adds to the outbox — an MQTT notice to a
village's boxes, "the TV pages of this village are stale", a job (care's read-aloud speech) — is
handed over after the commit, and a forced rollback (or a commit the database refuses) sends none
of it: no message reaches a real subscriber, the pages rendered meanwhile are not marked stale
again, no job runs or waits in a queue, no audio file is made."""
from __future__ import annotations

import subprocess
import time

import pytest
from sqlalchemy import event

from portal_server.care import operations as care_ops
from portal_server.core import jobs, outbox, protocol, signals, speech
from portal_server.core import redis as core_redis
from portal_server.core.db import session
from portal_server.core.mqtt import parse_url
from portal_server.core.regions import region_by_code
from stb_app import snapshots

V001 = "990101001001"


def _listen(app, topic: str, wait: int):
    """A real mosquitto_sub (server account) on ``topic``, connected before the write."""
    c = parse_url(app.config["SETTINGS"].mqtt_server_url)
    proc = subprocess.Popen(["mosquitto_sub", "-h", c["host"], "-p", str(c["port"]), "-u", c["username"],
                             "-P", c["password"], "-t", topic, "-C", "1", "-W", str(wait), "-V", "mqttv5"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.7)
    return proc


def _queued() -> int:
    return sum(jobs.queue(name).count for name in jobs.QUEUES)


@pytest.mark.parametrize("how", ["commit", "rollback", "failed commit"])
def test_a_forced_rollback_sends_nothing(app, how):
    village = region_by_code(V001)
    gen_key = f"ctv:tvgen:{V001}"
    r = core_redis.client()
    with app.test_request_context():
        snapshots.materialise(village, "home.html")
    page = snapshots.root() / V001 / "home.html"
    assert page.exists()
    audio_before = set(speech.speech_dir().glob("*.m4a"))
    listener = _listen(app, protocol.region_notice_topic(V001), wait=3)

    # One write that adds the three kinds of after-commit work.
    text = f"测试朗读：{how}，{time.time_ns()}"
    clip = care_ops.read_aloud(f"test:{how}", text)
    assert clip.status == "pending"
    outbox.mqtt(protocol.region_notice_topic(V001),
                protocol.notice_payload("content", 1, "村里通知", "/tv/item/1"), qos=1)
    signals.village_pages_stale.send(V001)  # invalidates now, and again after the commit
    assert not page.exists()
    with app.test_request_context():  # a box asks for the page before the commit: rendered again
        snapshots.materialise(village, "home.html")
    assert page.exists()
    gen = int(r.get(gen_key) or 0)
    assert sorted(e.kind for e in outbox.pending()) == ["call", "job", "mqtt"]

    if how == "commit":
        session.commit()
    elif how == "rollback":
        session.rollback()
    else:
        def refuse(_sess):
            raise RuntimeError("the database refused the commit")
        event.listen(session(), "before_commit", refuse)
        try:
            with pytest.raises(RuntimeError):
                session.commit()
        finally:
            event.remove(session(), "before_commit", refuse)
        session.rollback()
    assert outbox.pending() == []
    out, _ = listener.communicate(timeout=10)
    session.expire_all()
    made = speech.find(text)
    audio_made = set(speech.speech_dir().glob("*.m4a")) - audio_before

    if how == "commit":  # the same write, committed, hands all three over
        assert protocol.decode_notice(out.strip().encode())["title"] == "村里通知"
        assert not page.exists() and int(r.get(gen_key) or 0) == gen + 1
        assert made is not None and made.status == "ready"
        assert audio_made == {speech.speech_dir() / made.filename}
        return
    assert out == ""  # no box heard anything
    assert page.exists() and int(r.get(gen_key) or 0) == gen  # pages not marked stale again
    assert made is None and _queued() == 0 and audio_made == set()  # no clip, no job run or waiting
    session.commit()  # the session's next commit hands over nothing left from before
    assert _queued() == 0 and page.exists() and int(r.get(gen_key) or 0) == gen


def test_a_committed_job_waits_in_its_queue_for_a_worker(app):
    """Not inline (as in production): after the commit the job is in Redis, on its queue, with
    its arguments and retries, ready for a worker (sent in one pipeline)."""
    app.config["SETTINGS"].jobs_inline = False
    before = jobs.queue("default").count
    outbox.job("portal_server.core.audit:seal_job", retry=(1, 2))
    session.commit()
    q = jobs.queue("default")
    assert q.count == before + 1
    job = q.jobs[-1]
    assert job.args[0] == "portal_server.core.audit:seal_job" and job.retries_left == 2
    assert q.key in [k.decode() if isinstance(k, bytes) else k
                     for k in core_redis.client().smembers("rq:queues")]
