"""Fixtures of the TV portal tests."""
import pytest

V001, V002 = "990101001001", "990101001002"
BOX_V001, BOX_V002 = "CTV-HH-000001", "CTV-HH-010001"   # first households of 东河村 / 东岭村


@pytest.fixture
def publish(client, auth):
    """Draft, submit and approve an item as demo accounts; returns its id."""
    def _publish(targets=(V001,), section="party", title="测试通知", body="<p>请大家相互转告。</p>",
                 editor="v001-editor", reviewer="town01-reviewer", **kw):
        h = auth.headers(editor)
        r = client.post("/api/v1/contents", headers=h, json={"section": section, "title": title, "body": body,
                                                             "target_regions": list(targets), **kw})
        assert r.status_code == 201, r.get_data(as_text=True)
        cid = r.get_json()["id"]
        assert client.post(f"/api/v1/contents/{cid}/submit", headers=h).status_code == 200
        r = client.post(f"/api/v1/contents/{cid}/approve", headers=auth.headers(reviewer))
        assert r.status_code == 200, r.get_data(as_text=True)
        return cid
    return _publish


@pytest.fixture
def tv_client(app):
    """A test client that entered the portal as a box: ``tv_client("CTV-HH-000001")``."""
    from tests.conftest import terminal_token

    def _enter(serial):
        c = app.test_client()
        r = c.get("/tv/?token=" + terminal_token(serial))
        assert r.status_code == 302, r.get_data(as_text=True)
        c.home = r.headers["Location"]
        return c
    return _enter


@pytest.fixture
def tv_nginx(app, live_server, tmp_path):
    """The HTTP nginx of `make run` (stack.write_nginx: snapshot files, the push channel, the portal
    entry) in front of the live app; boxes' portal URLs point at it. Yields its base URL."""
    import subprocess
    import time

    from portal_server import stack
    from tests.conftest import _stop, wait_port

    settings = app.config["SETTINGS"]
    upstream = int(live_server.rsplit(":", 1)[1])
    run_dir = tmp_path / "nginx"
    for _attempt in range(3):  # a free port can be taken before nginx binds it
        port = stack.free_port()
        conf = stack.write_nginx(run_dir, settings, port, upstream)
        proc = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(run_dir)], stdout=subprocess.DEVNULL,
                                stderr=open(tmp_path / "nginx.stderr", "w"))
        try:
            wait_port(port, proc=proc)
        except RuntimeError:
            pass
        time.sleep(0.2)
        if proc.poll() is None:
            break
        _stop(proc)
    else:
        raise RuntimeError("nginx could not start: " + (tmp_path / "nginx.stderr").read_text())
    base = f"http://127.0.0.1:{port}"
    settings.public_url = base
    yield base
    _stop(proc)
