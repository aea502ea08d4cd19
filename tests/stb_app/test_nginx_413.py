"""A body over nginx's limit (64 MB) never reaches the app: nginx answers it, in Chinese — a page
for the phone and the staff web, the API's JSON error shape for the API."""
from __future__ import annotations

import http.client
import json
from urllib.parse import urlparse


def _oversized_post(base: str, path: str) -> tuple[int, str, str]:
    u = urlparse(base)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    conn.putrequest("POST", path)
    conn.putheader("Content-Type", "multipart/form-data; boundary=x")
    conn.putheader("Content-Length", str(65 * 1024 * 1024))   # nginx refuses it from the header alone
    conn.endheaders()
    r = conn.getresponse()
    body = r.read().decode("utf-8")
    conn.close()
    return r.status, r.getheader("Content-Type", ""), body


def test_an_oversized_phone_post_gets_a_chinese_page_and_the_api_a_chinese_json_error(tv_nginx):
    status, ctype, body = _oversized_post(tv_nginx, "/m/feedback")
    assert status == 413 and ctype.startswith("text/html")
    assert "上传的内容太大" in body and "返回" in body
    status, ctype, body = _oversized_post(tv_nginx, "/api/v1/feedback")
    assert status == 413 and ctype.startswith("application/json")
    assert json.loads(body)["error"]["message"].startswith("上传的内容太大")
