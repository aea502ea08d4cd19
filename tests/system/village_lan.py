"""What a village LAN does, run INSIDE its network namespace (`ip netns exec <ns> python -m
tests.system.village_lan ...`): a box on MQTT, a TV browser, port probes, HTTP reads. Each
subcommand prints one JSON object on stdout."""
from __future__ import annotations

import json
import socket
import sys
import threading
import time


def box(mqtt_host: str, port: int, serial: str, secret: str) -> dict:
    """A box: CONNECT with its secret, announce itself, and wait for its retained config."""
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    from portal_server.core import protocol

    got, out = threading.Event(), {"connected": None, "config": None}

    def on_connect(c, _u, _f, reason, _p):
        out["connected"] = not reason.is_failure
        if reason.is_failure:
            out["reason"] = str(reason)
            got.set()
            return
        c.subscribe(protocol.dev_topic(serial, "config"), qos=1)
        c.publish(protocol.dev_topic(serial, "status"), protocol.encode_status("online"), qos=1, retain=True)
        c.publish(protocol.dev_topic(serial, "hello"),
                  protocol.encode_hello(model="sim", fw="1.0.0", mac="02:00:00:00:00:01", ip="10.213.0.2"), qos=1)

    def on_message(_c, _u, msg):
        if msg.payload:
            out["config"] = json.loads(msg.payload)
            got.set()

    c = paho.Client(CallbackAPIVersion.VERSION2, client_id=serial)
    c.username_pw_set(serial, secret)
    c.on_connect, c.on_message = on_connect, on_message
    c.connect(mqtt_host, port, 30)
    c.loop_start()
    got.wait(30)
    c.loop_stop()
    c.disconnect()
    return out


def browser(portal_url: str) -> dict:
    """A TV: open the box's portal URL, then OK on the first tile opens its section."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                              args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        page = b.new_page(viewport={"width": 1280, "height": 720})
        page.goto(portal_url)
        page.wait_for_function("() => location.pathname.indexOf('/home.html') >= 0", timeout=20000)
        home = page.url
        focused = page.evaluate("() => { var f = document.querySelector('.focused'); "
                                "return f && f.getAttribute('data-section'); }")
        page.keyboard.press("Enter")
        page.wait_for_function("() => location.pathname.indexOf('/s-') >= 0", timeout=20000)
        page.wait_for_load_state("load")
        out = {"home": home, "focused": focused, "section": page.url, "title": page.title(),
               "text": page.inner_text("body")[:300]}
        b.close()
    return out


def probe(host: str, *ports: str) -> dict:
    """open / refused / timeout for each TCP port."""
    out = {}
    for p in ports:
        s = socket.socket()
        s.settimeout(3)
        try:
            s.connect((host, int(p)))
            out[p] = "open"
        except ConnectionRefusedError:
            out[p] = "refused"
        except OSError as exc:
            out[p] = f"error: {exc}"
        finally:
            s.close()
    return out


def http(method: str, url: str, body: str = "", token: str = "") -> dict:
    import requests
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        r = requests.request(method, url, json=json.loads(body) if body else None, headers=headers, timeout=20)
    except requests.RequestException as exc:     # not up yet
        return {"status": 0, "error": str(exc)[:300]}
    ctype = r.headers.get("Content-Type", "")
    return {"status": r.status_code, "json": r.json() if "json" in ctype else None,
            "text": r.text[:2000] if "json" not in ctype and "text" in ctype or "mpegurl" in ctype else None,
            "bytes": len(r.content)}


def hls(playlist_url: str, timeout: float = 60) -> dict:
    """Wait until the live playlist lists segments, then fetch one (as a player would; a master
    playlist is followed to its first rendition)."""
    from urllib.parse import urljoin

    import requests
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        r = requests.get(playlist_url, timeout=10)
        last = r.status_code
        if r.status_code == 200:
            segs = [ln for ln in r.text.splitlines() if ln and not ln.startswith("#")]
            if segs and "#EXT-X-STREAM-INF" in r.text:  # a master playlist: its first rendition
                playlist_url = urljoin(playlist_url, segs[0])
                continue
            if segs:
                seg = requests.get(urljoin(playlist_url, segs[-1]), timeout=10)
                return {"playlist": r.text[:500], "segment_status": seg.status_code, "segment_bytes": len(seg.content)}
        time.sleep(1)
    return {"error": f"no segments within {timeout}s (last status {last})"}


def tvwatch(portal_url: str, path: str, text: str, timeout: float = 30) -> dict:
    """A box's TV reading pages: open the portal (its cookie), then poll ``path`` (relative to the
    home page) until ``text`` shows; seconds it took."""
    from urllib.parse import urljoin

    import requests
    s = requests.Session()
    r = s.get(portal_url, timeout=20)
    url, start, last = urljoin(r.url, path), time.monotonic(), None
    while time.monotonic() - start < timeout:
        last = s.get(url, timeout=10)
        if last.status_code == 200 and text in last.content.decode("utf-8", "replace"):
            return {"seen_after_s": round(time.monotonic() - start, 2), "url": url}
        time.sleep(0.2)
    return {"error": f"not seen within {timeout}s", "url": url, "status": getattr(last, "status_code", None)}


def sub(mqtt_host: str, port: str, serial: str, secret: str, topic: str, timeout: str = "30") -> dict:
    """A box listening on ``topic``: the first non-empty message (JSON) and when it came."""
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    got, out = threading.Event(), {"message": None}

    def on_connect(c, _u, _f, reason, _p):
        if reason.is_failure:
            out["error"] = str(reason)
            got.set()
        else:
            c.subscribe(topic, qos=1)

    def on_message(_c, _u, msg):
        if msg.payload:
            out["message"], out["at"] = json.loads(msg.payload), time.time()
            got.set()

    c = paho.Client(CallbackAPIVersion.VERSION2, client_id=serial)
    c.username_pw_set(serial, secret)
    c.on_connect, c.on_message = on_connect, on_message
    c.connect(mqtt_host, int(port), 30)
    c.loop_start()
    got.wait(float(timeout))
    c.loop_stop()
    c.disconnect()
    return out


def burst(url: str, n: str, token: str = "") -> dict:
    """``n`` GETs one after the other (a staff client retrying nothing): status counts."""
    import requests
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    counts: dict = {}
    for _ in range(int(n)):
        try:
            code = requests.get(url, headers=headers, timeout=20).status_code
        except requests.RequestException:
            code = 0
        counts[str(code)] = counts.get(str(code), 0) + 1
        time.sleep(0.05)
    return counts


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    fn = {"box": box, "browser": browser, "probe": probe, "http": http, "hls": hls, "tvwatch": tvwatch,
          "sub": sub, "burst": burst}[cmd]
    if cmd == "box":
        args = [args[0], int(args[1]), *args[2:]]
    if cmd == "tvwatch" and len(args) > 3:
        args = [*args[:3], float(args[3])]
    print(json.dumps(fn(*args), ensure_ascii=False))
