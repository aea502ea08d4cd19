"""/metrics under gunicorn with several workers: counters summed over every process of the host,
never going down between scrapes; fleet and queue gauges present."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import requests

from portal_server import stack
from tests.conftest import TEST_SECRET, wait_port


def _total(text: str, name: str) -> float:
    return sum(float(m.group(1)) for m in re.finditer(rf"^{name}(?:{{[^}}]*}})? ([0-9.e+]+)$", text, re.M))


def test_counters_summed_over_workers_never_go_down(app, tmp_path):
    from portal_server.core.db import session
    session.remove()
    s = app.config["SETTINGS"]
    prom = tmp_path / "prom"
    prom.mkdir()
    port = stack.free_port()
    env = dict(os.environ, COMMUNITV_DATA_DIR=str(s.data_dir), COMMUNITV_DATABASE_URL=s.database_url,
               COMMUNITV_REDIS_URL=s.redis_url, COMMUNITV_MQTT_URL=s.mqtt_url, COMMUNITV_SECRET_KEY=TEST_SECRET,
               PROMETHEUS_MULTIPROC_DIR=str(prom))
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    proc = subprocess.Popen([gunicorn, "--workers", "3", "--bind", f"127.0.0.1:{port}",
                             "-c", "python:portal_server.system.gunicorn_conf", "portal_server.app:create_app()"],
                            env=env, stdout=subprocess.DEVNULL, stderr=open(tmp_path / "gunicorn.log", "w"))
    try:
        wait_port(port, 60, proc=proc)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120   # three workers boot the app on a busy machine
        while True:
            try:
                requests.get(base + "/api/v1/regions/990100000000", timeout=30)
                break
            except requests.RequestException:
                assert time.monotonic() < deadline and proc.poll() is None, "gunicorn never answered"
        last = 0.0
        sess = requests.Session()
        for i in range(12):
            for _ in range(5):
                assert sess.get(base + "/api/v1/regions/990100000000", timeout=60).status_code == 200
            # A fresh connection each scrape: any of the three workers may answer.
            text = requests.get(base + "/metrics", headers={"Connection": "close"}, timeout=60).text
            total = _total(text, "ctv_http_requests_total")
            assert total >= last, f"scrape {i}: counter went down from {last} to {total}"
            last = total
        assert last >= 60          # every request of every worker is in the sum
        assert 'ctv_boxes_total{town="990101001000"' in text
        assert "ctv_boxes_firmware" in text and 'ctv_queue_jobs{queue="default"}' in text
        assert len(list(prom.glob("*.db"))) >= 2   # more than one process wrote counters
    finally:
        proc.terminate()
        proc.wait(15)


def test_grafana_dashboard_uses_metrics_we_export(app, auth):
    """Every metric the shipped Grafana dashboard queries is one /metrics exposes."""
    import json
    c = app.test_client()
    c.get("/api/v1/regions/990100000000")
    text = c.get("/metrics").get_data(as_text=True)
    exported = set(re.findall(r"^# TYPE (\w+) (\w+)", text, re.M))
    names = set()
    for name, kind in exported:
        names.add(name)
        if kind == "histogram":
            names.update({name + "_bucket", name + "_sum", name + "_count"})
        if kind == "counter":
            names.add(name + "_total" if not name.endswith("_total") else name)
    dash = json.loads((Path(__file__).resolve().parents[2] / "deploy/grafana/communitv.json").read_text())
    used = {m for p in dash["panels"] for t in p["targets"]
            for m in re.findall(r"\b(ctv_[a-z_]+)\b", t["expr"])}
    assert used and used <= names, sorted(used - names)
