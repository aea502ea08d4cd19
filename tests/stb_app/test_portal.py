"""The TV portal over HTTP: box identity, per-village pages, invalidation on publish, bad input."""
import re
from pathlib import Path

from pyjsparser import parse

from portal_server.core.db import session
from portal_server.core.terminals import terminal_by_serial
from stb_app.sections import SECTION_KEYS

from .conftest import BOX_V001, BOX_V002, V001, V002


def text(r):
    return r.get_data(as_text=True)


def test_demo_boxes_are_in_the_villages_the_tests_assume(app):
    assert terminal_by_serial(BOX_V001).region.code == V001
    assert terminal_by_serial(BOX_V002).region.code == V002
    session.remove()


def test_a_box_lands_on_its_village_home_with_the_eight_sections(tv_client):
    c = tv_client(BOX_V001)
    assert c.home == f"/tv/v/{V001}/home.html"
    assert c.get_cookie("ctv_terminal") is not None and c.get_cookie("ctv_vk", path="/tv/v/") is not None
    home = text(c.get(c.home))
    assert re.findall(r'data-section="([a-z]+)"', home) == list(SECTION_KEYS)
    for name in ("社区党建", "下沉服务", "社区管理", "平安社区", "养老助老", "视频直播", "政民互动", "社区会议"):
        assert name in home
    assert "东河村" in home
    # one press of OK from the home screen opens each section
    for key in SECTION_KEYS:
        assert f'data-section="{key}" data-href="s-{key}.html"' in home
        assert c.get(f"/tv/v/{V001}/s-{key}.html").status_code == 200


def test_a_box_cannot_open_another_villages_pages(tv_client):
    c = tv_client(BOX_V001)
    r = c.get(f"/tv/v/{V002}/home.html")
    assert r.status_code == 302 and r.headers["Location"] == "/tv/"
    # nor with a made-up key
    c2 = tv_client(BOX_V002)
    c2.set_cookie("ctv_vk", "forged", path="/tv/v/")
    assert c2.get(f"/tv/v/{V002}/home.html").status_code == 302


def test_forged_or_revoked_token_shows_the_pairing_screen_and_no_content(app, client):
    from tests.conftest import terminal_token

    r = client.get("/tv/?token=forged.token")
    assert r.status_code == 200 and "尚未绑定" in text(r) and "东河村" not in text(r)
    tok = terminal_token(BOX_V001)
    term = terminal_by_serial(BOX_V001)
    term.token_version += 1
    session.commit()
    r = client.get("/tv/?token=" + tok)
    assert "尚未绑定" in text(r) and "社区党建" not in text(r)
    # the deleted cookies: the box cannot go on with the old identity
    assert "ctv_terminal=;" in r.headers.get("Set-Cookie", "") or any(
        h.startswith("ctv_terminal=;") for h in r.headers.getlist("Set-Cookie"))
    # an API call from a box without identity is refused, a TV page shows the pairing screen
    assert client.get("/tv/api/me").status_code == 401
    c = app.test_client()
    r = c.get("/tv/feedback/new")
    assert r.status_code == 401 and "尚未绑定" in text(r)


def test_pairing_screen_shows_a_real_pending_code_only(app, client):
    term = terminal_by_serial("CTV-NEW-0001")
    from device_fleet.operations import ensure_pairing_code

    ensure_pairing_code(term)
    session.commit()
    code = term.pairing_code
    r = client.get(f"/tv/pair?code={code}")
    assert code in text(r) and "/m/pair?code=" + code not in text(r)  # the QR is an SVG, not text
    assert 'id="pairing-code"' in text(r)
    r = client.get("/tv/pair?code=ZZZZ9999")
    assert 'id="pairing-code"' not in text(r) and "尚未绑定" in text(r)


def test_publishing_reaches_exactly_the_target_villages_pages_and_withdrawal_removes_it(app, tv_client, publish,
                                                                                         client, auth):
    c1, c2 = tv_client(BOX_V001), tv_client(BOX_V002)
    # both villages' pages exist as files before the change
    for c, v in ((c1, V001), (c2, V002)):
        assert c.get(f"/tv/v/{v}/s-safety.html").status_code == 200
    snap = app.config["SETTINGS"].snapshot_dir
    assert (snap / V001 / "s-safety.html").exists()

    cid = publish(targets=[V001], section="safety", title="东河村冬季用电安全提醒", pinned=True)
    page1 = text(c1.get(f"/tv/v/{V001}/s-safety.html"))
    page2 = text(c2.get(f"/tv/v/{V002}/s-safety.html"))
    assert "东河村冬季用电安全提醒" in page1 and f'data-href="i-{cid}.html"' in page1
    assert "东河村冬季用电安全提醒" not in page2
    assert "东河村冬季用电安全提醒" in text(c1.get(c1.home))      # newest pinned on the home screen
    item = c1.get(f"/tv/v/{V001}/i-{cid}.html")
    assert item.status_code == 200 and "东河村冬季用电安全提醒" in text(item)
    assert c2.get(f"/tv/v/{V002}/i-{cid}.html").status_code == 404
    # the page is now a file: served again without rendering
    assert (snap / V001 / f"i-{cid}.html").exists()

    r = client.post(f"/api/v1/contents/{cid}/withdraw", headers=auth.headers("v001-editor"))
    assert r.status_code == 200, text(r)
    assert "东河村冬季用电安全提醒" not in text(c1.get(f"/tv/v/{V001}/s-safety.html"))
    r = c1.get(f"/tv/v/{V001}/i-{cid}.html")
    assert r.status_code == 404 and "返回首页" in text(r)


def test_hostile_html_is_shown_as_text(tv_client, publish):
    cid = publish(title="<script>alert(1)</script>通知",
                  body='<p onclick="steal()">正文</p><script>alert(2)</script><a href="javascript:evil()">链接</a>'
                       '<iframe src="http://evil.example"></iframe><img src="x" onerror="evil()">')
    page = text(tv_client(BOX_V001).get(f"/tv/v/{V001}/i-{cid}.html"))
    assert "正文" in page and "&lt;script&gt;alert(1)&lt;/script&gt;通知" in page
    for bad in ("<script>alert", "onclick=", "onerror=", "javascript:", "<iframe"):
        assert bad not in page


def test_unknown_pages_are_a_friendly_tv_error(tv_client):
    c = tv_client(BOX_V001)
    for url in (f"/tv/v/{V001}/i-999999.html", f"/tv/v/{V001}/s-nosuch.html", "/tv/no/such/page",
                f"/tv/v/{V001}/..%2f..%2fsecret_key"):
        r = c.get(url)
        assert r.status_code == 404, url
        assert 'id="go-home"' in text(r) and "data-autofocus" in text(r) and "Traceback" not in text(r)


def test_personal_facts_come_as_json(app, tv_client, publish):
    from sqlalchemy import select

    from portal_server.core.households import Household
    from portal_server.core.terminals import Terminal

    hh = session.scalar(select(Household).join(Terminal, Terminal.household_id == Household.id)
                        .where(Terminal.serial == BOX_V001))
    hh.tags = "elderly_alone"
    session.commit()
    cid = publish(title="独居老人冬季取暖补贴", section="elderly", target_tags=["elderly_alone"])
    c = tv_client(BOX_V001)
    me = c.get("/tv/api/me").get_json()
    assert me["region"] == V001 and me["state"]["checkin"]["required"] is True
    assert cid in [p["id"] for p in me["personal"]]
    # a tagged item is not on the village's shared pages, but this household opens it
    assert "独居老人冬季取暖补贴" not in text(c.get(f"/tv/v/{V001}/s-elderly.html"))
    r = c.get(f"/tv/item/{cid}")
    assert r.status_code == 200 and "独居老人冬季取暖补贴" in text(r)
    assert tv_client(BOX_V002).get(f"/tv/item/{cid}").status_code == 404


def test_the_phone_continues_the_same_item(tv_client, publish, client):
    cid = publish(title="党员冬训安排", body="<p>十二月五日集中学习。</p>")
    page = text(tv_client(BOX_V001).get(f"/tv/v/{V001}/i-{cid}.html"))
    assert "<svg" in page and "用手机扫码" in page
    from stb_app.views import item_phone_url

    url = item_phone_url(cid, V001)
    r = client.get(url[url.index("/m/"):])
    assert r.status_code == 200 and "十二月五日集中学习" in text(r)
    assert client.get("/m/item/forged").status_code == 404
    other = item_phone_url(cid, V002)          # a link for a village the item was not meant for
    assert client.get(other[other.index("/m/"):]).status_code == 404


def test_page_weights(tv_client, publish):
    """First load under 150 KB (HTML + CSS + JS), a navigation afterwards under 30 KB."""
    cid = publish(title="村民议事会通知")
    c = tv_client(BOX_V001)
    home = c.get(c.home)
    assets = re.findall(r'(?:src|href)="(/tv/static/[^"?]+)', text(home))
    assert any(a.endswith("tv.js") for a in assets) and any(a.endswith("tv.css") for a in assets)
    first = len(home.data) + sum(len(c.get(a).data) for a in assets)
    assert first < 150_000, first
    for nav in (f"/tv/v/{V001}/s-party.html", f"/tv/v/{V001}/i-{cid}.html"):
        r = c.get(nav)
        new_assets = set(re.findall(r'(?:src|href)="(/tv/static/[^"?]+)', text(r))) - set(assets)
        assert len(r.data) + sum(len(c.get(a).data) for a in new_assets) < 30_000, nav


def test_every_tv_script_is_es5():
    """Everything the portal loads: its scripts (the vendored hls.js too) and inline scripts of
    every TV template of every feature."""
    import portal_server
    import stb_app

    static = Path(stb_app.__file__).parent / "static"
    scripts = list(static.rglob("*.js"))
    assert len(scripts) >= 5
    for js in scripts:
        parse(js.read_text())
    roots = [Path(stb_app.__file__).parent, Path(portal_server.__file__).parent]
    templates = [t for r in roots for t in r.rglob("*.html")
                 if "/tv/" in str(t) or t.name.startswith("tv_") or "sections_tv" in str(t)]
    assert len(templates) > 20
    for tpl in templates:
        for block in re.findall(r"<script>(.*?)</script>", tpl.read_text(), re.S):
            js = re.sub(r"\{%.*?%\}", "", block, flags=re.S)
            js = re.sub(r"\{\{.*?\}\}", "1", js)
            parse(js)


def test_an_item_is_read_aloud(tv_client, publish):
    """The 朗读全文 button's request: Mandarin speech of the item (espeak-ng → AAC), only for its village."""
    cid = publish(title="冬季防火", body="<p>不要在山上烧荒。</p>")
    r = tv_client(BOX_V001).post("/api/v1/speech", json={"ref": f"content:{cid}"},
                             headers={"Origin": "http://localhost"})  # tv.js: same origin
    assert r.status_code == 200, r.get_data(as_text=True)
    url = r.get_json()["url"]
    assert url.startswith("/media/speech/")
    audio = tv_client(BOX_V001).get(url)
    assert audio.status_code == 200 and len(audio.data) > 2000
    assert tv_client(BOX_V002).post("/api/v1/speech", json={"ref": f"content:{cid}"},
                                    headers={"Origin": "http://localhost"}).status_code == 404
