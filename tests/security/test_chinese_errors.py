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
