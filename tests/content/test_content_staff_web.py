"""Staff web: the editor form (region tree, CSRF, readable errors), review queue and home card,
item page actions, version diff, TV preview; no cross-scope page."""
import re

import pytest
from flask import g

from portal_server.content import queries
from tests.conftest import csrf_from

from .conftest import V001, V002


@pytest.fixture
def login(auth, client):
    def _login(username):
        client.post("/admin/logout", data={"csrf_token": csrf_from(client.get("/admin/login").get_data(as_text=True))})
        g.pop("csrf_token", None)
        r = auth.login(username)
        assert r.status_code == 302, r.get_data(as_text=True)
        g.pop("csrf_token", None)
    return _login


def _form(client, url):
    page = client.get(url)
    assert page.status_code == 200, page.status_code
    return csrf_from(page.get_data(as_text=True)), page.get_data(as_text=True)


def test_editor_drafts_reviewer_approves_through_the_web(client, login):
    login("v001-editor")
    token, html = _form(client, "/admin/content/new")
    boxes = re.findall(r'name="target_regions" value="(\d+)"', html)
    assert boxes == [V001]                      # the tree holds the editor's scope only
    base = {"csrf_token": token, "section": "safety", "title": "东河村冬季用电安全提示",
            "body": "<p>不要私拉乱接电线。</p><script>x()</script>", "target_regions": V001}
    r = client.post("/admin/content/new", data={**base, "publish_at": "2030-01-02T08:00",
                                                "expire_at": "2030-01-01T08:00"})
    assert r.status_code == 400 and "下线时间" in r.get_data(as_text=True)
    assert "东河村冬季用电安全提示" in r.get_data(as_text=True)  # what was typed is kept
    r = client.post("/admin/content/new", data={**base, "target_regions": V002})
    assert r.status_code == 403 and V002 in r.get_data(as_text=True)
    r = client.post("/admin/content/new", data={**base, "title": ""})
    assert r.status_code == 400 and "标题" in r.get_data(as_text=True)
    assert client.post("/admin/content/new", data={**base, "csrf_token": "forged"}).status_code == 400
    r = client.post("/admin/content/new", data={**base, "then": "submit"})
    assert r.status_code == 302
    cid = int(r.headers["Location"].rstrip("/").split("/")[-1])
    page = client.get(f"/admin/content/{cid}").get_data(as_text=True)
    assert "待审核" in page and "<script>x()" not in page

    login("v001-reviewer")
    home = client.get("/admin/").get_data(as_text=True)
    assert re.search(r'<span class="v">(\d+)</span><span class="t">待审核信息', home)
    queue = client.get("/admin/content/review").get_data(as_text=True)
    assert f'data-content="{cid}"' in queue
    token = csrf_from(client.get(f"/admin/content/{cid}").get_data(as_text=True))
    r = client.post(f"/admin/content/{cid}/action", data={"csrf_token": token, "action": "reject", "reason": ""})
    assert r.status_code == 400 and "退回理由" in r.get_data(as_text=True)
    r = client.post(f"/admin/content/{cid}/action", data={"csrf_token": token, "action": "approve"})
    assert r.status_code == 302
    assert queries.tv_item(cid, V001)["title"] == "东河村冬季用电安全提示"
    assert f'data-content="{cid}"' not in client.get("/admin/content/review").get_data(as_text=True)

    # A new version: diff side by side, preview of the pending one, the live one unchanged.
    login("v001-editor")
    token, html = _form(client, f"/admin/content/{cid}/edit")
    assert "形成新版本" in html
    r = client.post(f"/admin/content/{cid}/edit", data={**base, "csrf_token": token, "title": "东河村冬季用电安全须知"})
    assert r.status_code == 302
    diff = client.get(f"/admin/content/{cid}/diff").get_data(as_text=True)
    assert "第 1 版" in diff and "第 2 版" in diff and "提示" in diff and "须知" in diff and 'class="diff_chg"' in diff
    assert queries.tv_item(cid, V001)["title"] == "东河村冬季用电安全提示"
    prev = client.get(f"/admin/content/{cid}/preview?version=2").get_data(as_text=True)
    assert "<iframe" in prev and "version=2" in prev
    frame = client.get(f"/admin/content/{cid}/preview/frame?version=2").get_data(as_text=True)
    assert "东河村冬季用电安全须知" in frame and "<script>x()" not in frame

    # Another village's editor gets no page of it.
    login("v002-editor")
    assert client.get(f"/admin/content/{cid}").status_code == 403
    assert client.get(f"/admin/content/{cid}/preview").status_code == 403
    listing = client.get("/admin/content/?q=东河村冬季").get_data(as_text=True)
    assert f'data-content="{cid}"' not in listing


def test_listing_search_and_filters(client, login, publish):
    a = publish(title="关于秸秆禁烧的通告", section="safety")
    b = publish(title="党员积分公示", section="party")
    login("town01-editor")
    html = client.get("/admin/content/?q=秸秆").get_data(as_text=True)
    assert f'data-content="{a}"' in html and f'data-content="{b}"' not in html
    html = client.get("/admin/content/?section=party&status=published&region=" + V001).get_data(as_text=True)
    assert f'data-content="{b}"' in html and f'data-content="{a}"' not in html
    # Upload form on an item: a non-image is refused with a readable message.
    token = csrf_from(client.get(f"/admin/content/{a}").get_data(as_text=True))
    import io
    r = client.post(f"/admin/content/{a}/media", data={"csrf_token": token, "kind": "image",
                                                       "file": (io.BytesIO(b"nope"), "x.jpg")},
                    content_type="multipart/form-data")
    assert r.status_code == 400 and "文件" in r.get_data(as_text=True)
