"""A job queued by the previous version survives an upgrade that moved its function: RQ keeps the
job's path string in Redis, and a worker of the new version still runs it (core.jobs.RENAMED)."""
from __future__ import annotations

import datetime as dt
import json
import subprocess

from sqlalchemy import select

from portal_server.core import jobs, protocol
from portal_server.core.db import session, utcnow
from portal_server.core.mqtt import parse_url
from portal_server.core.terminals import Terminal


def test_a_command_job_queued_under_its_old_path_is_published_after_the_upgrade(app, mosquitto_server):
    from device_fleet.models import Command

    settings = app.config["SETTINGS"]
    term = session.scalars(select(Terminal).where(Terminal.serial == "CTV-HH-000001")).one()
    cmd = Command(id="renamedjob000001", terminal_id=term.id, serial=term.serial, type="reboot", args_json="{}",
                  created_by="admin", expires_at=utcnow() + dt.timedelta(hours=1))
    session.add(cmd)
    session.commit()
    session.remove()   # the worker's work horse writes nothing, but reads what we committed
    srv = parse_url(settings.mqtt_server_url)
    watcher = subprocess.Popen(["mosquitto_sub", "-p", str(mosquitto_server["port"]), "-u", srv["username"],
                                "-P", srv["password"], "-i", "ctv-test-renamed", "-q", "1",
                                "-t", protocol.dev_topic("CTV-HH-000001", "cmd"), "-C", "1", "-W", "20"],
                               stdout=subprocess.PIPE, text=True)
    try:
        # As the version before the upgrade queued it (device_fleet.operations:publish_commands).
        settings.jobs_inline = False
        job = jobs.enqueue("device_fleet.operations:publish_commands", [cmd.id], queue_name="high")
        assert job.args[0] == "device_fleet.operations:publish_commands"
        jobs.work(app, burst=True)
        job.refresh()
        assert job.get_status() == "finished", job.latest_result().exc_string if job.latest_result() else None
        assert job.return_value() == 1
        got = json.loads(watcher.communicate(timeout=25)[0])
        assert got["id"] == "renamedjob000001" and got["type"] == "reboot"
    finally:
        settings.jobs_inline = True
        if watcher.poll() is None:
            watcher.kill()


def test_every_renamed_path_leads_to_a_job_and_the_old_one_is_gone():
    import importlib

    for old, new in jobs.RENAMED.items():
        assert callable(jobs.resolve(old)) and jobs.resolve(old) is jobs.resolve(new)
        module, _, name = old.partition(":")
        try:
            gone = not hasattr(importlib.import_module(module), name)
        except ImportError:
            gone = True
        assert gone, f"{old} still exists: drop it from RENAMED or from the code"
