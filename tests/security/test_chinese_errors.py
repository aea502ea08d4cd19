"""Error messages are Chinese (zh-CN by default, English for clients asking for it): one catalogue
applied by the API's error handler, whatever English the feature raised."""
import re

CJK = re.compile(r"[\u4e00-\u9fff]")


def _msg(r):
    return r.get_json()["error"]["message"]


def test_errors_are_chinese(client, auth, box):
    h = auth.headers("v001-editor")
    cases = [
        client.get("/api/v1/contents"),                                              # 401, no token
        client.get("/api/v1/meetings/999999", headers=h),                            # X not found
        client.get("/api/v1/regions/123"),                                           # region not found
        client.post("/api/v1/contents", headers=h, data="nonsense",
                    content_type="text/plain"),                                      # not JSON
        client.post("/api/v1/contents", headers=h, json={"section": "party"}),       # missing field
        client.get("/api/v1/terminals?status=sleeping", headers=auth.headers("noc")),
        client.get("/api/v1/terminals?region=990101002001", headers=h),              # out of scope
        client.post("/api/v1/alerts", headers=h, json={}),                           # role
        client.delete("/api/v1/regions/990100000000"),                               # 405
        client.get("/api/v1/no-such-thing"),                                          # 404
        client.post("/api/v1/checkins", headers=box("CTV-VIL-001")),
        client.post("/api/v1/feedback", headers=box("CTV-HH-000001"), json={"category": "nonsense"}),
    ]
    for r in cases:
        assert 400 <= r.status_code < 500, (r.status_code, r.get_data(as_text=True))
        assert CJK.search(_msg(r)), (r.request.path, r.status_code, _msg(r))


def test_specific_messages_keep_their_sense(client, auth):
    h = auth.headers("v001-editor")
    assert _msg(client.get("/api/v1/meetings/999999", headers=h)) == "未找到会议 999999"
    r = client.post("/api/v1/contents", headers=h, json={"section": "party"})
    assert _msg(r).startswith("缺少字段")
    r = client.get("/api/v1/contents", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401 and CJK.search(_msg(r))


def test_english_is_the_second_language(client, auth):
    h = {**auth.headers("v001-editor"), "Accept-Language": "en-US,en;q=0.9"}
    r = client.get("/api/v1/meetings/999999", headers=h)
    assert r.status_code == 404 and _msg(r) == "meeting 999999 not found"
    zh = client.get("/api/v1/meetings/999999", headers={**h, "Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"})
    assert _msg(zh) == "未找到会议 999999"


def test_staff_web_flash_messages_use_the_catalogue(app):
    from portal_server.core import i18n
    with app.test_request_context("/admin/"):
        assert i18n.chinese("操作未完成：the poll is closed") == "操作未完成：调查已结束"
        assert i18n.chinese("meeting 12 not found") == "未找到会议 12"
        assert i18n.chinese("已保存") == "已保存"


def test_staff_form_messages_found_in_english_are_chinese_now(app):
    """Messages the staff web and the phone form show (a sweep of the raise sites after issue 20)."""
    from portal_server.core import i18n
    with app.test_request_context("/admin/"):
        for english, chinese in [
                ("amount cannot be negative", "amount 不能为负数"),
                ("promised_days must be between 1 and 60", "promised_days 必须在 1 到 60 之间"),
                ("category has 5 levels; at most 3 are allowed", "分类有 5 级，最多允许 3 级"),
                ("at most 3 photos per order", "每件诉求最多 3 张照片"),
                ("photo a.jpg is not an image", "a.jpg 不是图片，请选择照片文件"),
                ("action assign needs the handler role", "操作 assign 需要承办人角色"),
                ("outside the meeting's window (30 minutes before the start until 2 hours after the end)",
                 "不在会议时间内（开始前 30 分钟至结束后 2 小时）"),
                ("slots are at a village hall or a town service centre", "预约时段只能设在村委会或镇便民服务中心"),
                ("unknown status x", "未知的状态 x"), ("day must be YYYY-MM-DD", "日期格式应为 YYYY-MM-DD")]:
            assert i18n.chinese("操作未完成：" + english) == "操作未完成：" + chinese


def test_an_import_error_naming_the_row_in_chinese_gets_its_english_part_translated(client, auth):
    """CSV imports say "第 N 行：<message>（整个文件未导入）": the message part comes from the catalogue too."""
    csv = "month,item,income,expense\n2026-10,村务支出,,-5\n"
    r = client.post("/api/v1/affairs/finance/import?region=990101001001", data=csv.encode(),
                    headers={**auth.headers("v001-editor"), "Content-Type": "text/csv"})
    assert r.status_code == 400
    assert r.get_json()["error"]["message"] == "第 2 行：expense 不能为负数（整个文件未导入）"


# Every message written out in the code (``ApiError(status, code, "…")``, ``bad_request("…")``,
# ``forbidden``/``conflict``/``not_found``, Open311's errors) reaches staff and residents in Chinese of its own, not
# the generic sentence for its status: a new English message without its catalogue line fails here.
_CALLS = {"ApiError": 2, "Open311Error": 1, "bad_request": 0, "forbidden": 0, "conflict": 0, "not_found": 0}
_STATUS = {"bad_request": 400, "forbidden": 403, "conflict": 409, "not_found": 404}
#: f-string holes get a number; a hole that names a field gets one of the field's real names.
_SAMPLES = {"name": "lat"}


def _literal_messages():
    import ast
    from pathlib import Path
    root = Path(__file__).resolve().parents[2]

    def text(node):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.JoinedStr):
            out = ""
            for v in node.values:
                if isinstance(v, ast.Constant):
                    out += str(v.value)
                else:
                    hole = v.value.id if isinstance(v.value, ast.Name) else ""
                    out += _SAMPLES.get(hole, "7")
            return out
        return None
    for pkg in ("portal_server", "device_fleet", "streaming", "epg", "stb_app"):
        for path in sorted((root / pkg).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not isinstance(node, ast.Call):
                    continue
                f = node.func
                name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None
                if name not in _CALLS or len(node.args) <= _CALLS[name]:
                    continue
                msg = text(node.args[_CALLS[name]])
                if msg is None:
                    continue
                status = _STATUS.get(name)
                if status is None:
                    first = node.args[0]
                    status = first.value if isinstance(first, ast.Constant) and isinstance(first.value, int) else 400
                if name == "not_found":
                    msg += " not found"
                yield f"{path.relative_to(root)}:{node.lineno}", status, msg


def test_every_message_written_in_the_code_has_its_own_chinese(app):
    from portal_server.core import i18n
    found = list(_literal_messages())
    assert len(found) > 300          # the scan sees the code's messages
    missing = []
    with app.test_request_context("/api/v1/x"):
        for where, status, msg in found:
            shown, detail = i18n.translate(msg, status)
            if detail is not None or not CJK.search(shown):
                missing.append(f"{where} ({status}): {msg}")
    assert not missing, "no Chinese in portal_server/translations for:\n" + "\n".join(missing)


HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


def test_staff_and_phone_error_pages_are_chinese(client, auth):
    """A browser on the staff web or a phone page never sees werkzeug's English "Forbidden / You don't
    have the permission…": the status said in Chinese, the reason when there is one, a way back."""
    auth.login("town01-leader")
    r = client.get("/admin/audit", headers=HTML)                    # a page of another role
    page = r.get_data(as_text=True)
    assert r.status_code == 403 and "没有权限进行此操作" in page and "permission" not in page
    assert 'href="/admin/"' in page and 'lang="zh-CN"' in page
    r = client.get("/admin/no-such-page", headers=HTML)
    assert r.status_code == 404 and "请求的内容不存在" in r.get_data(as_text=True)
    r = client.get("/m/no-such-page", headers=HTML)
    assert r.status_code == 404 and 'href="/m/"' in r.get_data(as_text=True)
    r = client.put("/admin/login", headers=HTML)                    # 405 keeps its Allow header
    assert r.status_code == 405 and "不支持该请求方法" in r.get_data(as_text=True) and "POST" in r.headers["Allow"]
    # A script asking for JSON still gets JSON; the API stays JSON whatever the Accept header says.
    assert client.get("/admin/audit", headers={"Accept": "application/json"}).status_code == 403
    api = client.get("/api/v1/meetings/999999", headers={**auth.headers("v001-editor"), **HTML})
    assert api.status_code == 404 and api.get_json()["error"]["message"] == "未找到会议 999999"


def test_a_refusal_raised_on_a_staff_page_is_a_chinese_page_naming_the_reason(app, client, auth):
    """An ApiError (scope, bad input) that a staff page lets through: the page says why, in Chinese."""
    from portal_server.core.api import forbidden

    @app.get("/admin/_test_refusal")
    def _refusal():
        raise forbidden("region 990101002001 is outside your scope")
    r = client.get("/admin/_test_refusal", headers=HTML)
    page = r.get_data(as_text=True)
    assert r.status_code == 403 and "text/html" in r.headers["Content-Type"]
    assert "990101002001" in page and "outside" not in page
    j = client.get("/admin/_test_refusal")
    assert j.status_code == 403 and j.get_json()["error"]["code"] == "forbidden"
