"""Chinese error messages in one place (Flask-Babel catalogues; zh_CN by default, English second).

Features raise ``ApiError``s with short English messages (often built with f-strings); rather
than editing hundreds of call sites, the API's error handler passes every message through
``translate``: a message already in Chinese stays; otherwise the zh_CN catalogue
(``portal_server/translations``) is looked up for the exact text, then for one of the message
shapes below (``region %(code)s is outside your scope`` ...), and a message still unknown
becomes the Chinese sentence for its status, the English kept in ``error.detail``. A client that
prefers English (``Accept-Language: en``) gets the original text.
"""
from __future__ import annotations

import re
from pathlib import Path

from flask import current_app, has_request_context, request
from flask_babel import Babel, force_locale, get_locale, gettext, refresh

#: Catalogues, one folder per locale as Babel names it (zh_CN parses to zh_Hans_CN).
TRANSLATIONS = Path(__file__).resolve().parent.parent / "translations"
LOCALES = ("zh_CN", "en")

#: The Chinese sentence for a status when the message itself is not in the catalogue.
BY_STATUS = {400: "请求有误，请检查填写的内容", 401: "未登录或令牌无效", 403: "没有权限进行此操作",
             404: "请求的内容不存在", 405: "不支持该请求方法", 409: "当前状态下不能进行此操作",
             410: "内容已不存在", 413: "上传的内容太大", 415: "不支持的内容类型", 422: "请求无法处理",
             429: "操作太频繁，请稍后再试"}

#: Message shapes: (regex with named groups, catalogue msgid with the same names).
SHAPES = [(re.compile(p), msgid) for p, msgid in (
    (r"^missing field: (?P<field>[\w.]+)", "missing field: %(field)s"),
    (r"^invalid field (?P<field>[\w.]+): (?P<detail>.*)$", "invalid field %(field)s: %(detail)s"),
    (r"^this needs one of the roles: (?P<roles>.+)$", "this needs one of the roles: %(roles)s"),
    (r"^region (?P<code>\S+) is outside your scope$", "region %(code)s is outside your scope"),
    (r"^(?P<what>.+?) is outside your scope or needs the editor or reviewer role$",
     "%(what)s is outside your scope or needs the editor or reviewer role"),
    (r"^(?P<what>.+?) is outside your scope or needs the editor role$",
     "%(what)s is outside your scope or needs the editor role"),
    (r"^(?P<what>.+?) is outside your scope$", "%(what)s is outside your scope"),
    (r"^service_code (?P<value>.+) not found$", "service_code %(value)s not found"),
    (r"^service_request_id (?P<value>.+) not found$", "service_request_id %(value)s not found"),
    (r"^(?P<what>.+?) not found$", "%(what)s not found"),
    (r"^(?P<what>.+?) does not exist$", "%(what)s does not exist"),
    (r"^unknown region (?P<code>.+)$", "unknown region %(code)s"),
    (r"^(?P<field>\w+) must be one of (?P<choices>.+)$", "%(field)s must be one of %(choices)s"),
    (r"^(?P<field>\w+) must be an integer$", "%(field)s must be an integer"),
    (r"^(?P<what>\w+) is too long \(at most (?P<n>\d+) characters\)$",
     "%(what)s is too long (at most %(n)s characters)"),
    (r"^(?P<field>\w+) is required\b.*$", "%(field)s is required"),
    (r"^give \?(?P<param>.+)$", "give ?%(param)s"),
    # Messages the staff web flashes (services, affairs, feedback, content forms).
    (r"^(?P<field>\w+) (?P<value>.+) is not an amount$", "%(field)s %(value)s is not an amount"),
    (r"^(?P<field>\w+) cannot be negative$", "%(field)s cannot be negative"),
    (r"^(?P<field>\w+) has more than two decimals$", "%(field)s has more than two decimals"),
    (r"^(?P<field>\w+) is implausibly large$", "%(field)s is implausibly large"),
    (r"^(?P<field>\w+) must be a whole number$", "%(field)s must be a whole number"),
    (r"^(?P<field>\w+) must be between (?P<lo>\S+) and (?P<hi>\S+)$", "%(field)s must be between %(lo)s and %(hi)s"),
    (r"^disclosure is (?P<status>\w+); only drafts can be published$",
     "disclosure is %(status)s; only drafts can be published"),
    (r"^category has (?P<n>\d+) levels; at most (?P<max>\d+) are allowed$",
     "category has %(n)s levels; at most %(max)s are allowed"),
    (r"^unknown category (?P<value>\S+) \(one of: (?P<choices>.+)\)$", "unknown category %(value)s (one of: %(choices)s)"),
    (r"^unknown action (?P<value>\S+) \(one of: (?P<choices>.+)\)$", "unknown action %(value)s (one of: %(choices)s)"),
    (r"^action (?P<action>\w+) needs a handler$", "action %(action)s needs a handler"),
    (r"^action (?P<action>\w+) needs the handler role$", "action %(action)s needs the handler role"),
    (r"^unknown department (?P<code>.+)$", "unknown department %(code)s"),
    (r"^at most (?P<n>\d+) photos per order$", "at most %(n)s photos per order"),
    (r"^at most (?P<n>\d+) photos$", "at most %(n)s photos"),
    (r"^photo (?P<name>.*) is larger than 10 MB$", "photo %(name)s is larger than 10 MB"),
    (r"^photo (?P<name>.*) is not an image$", "photo %(name)s is not an image"),
    (r"^option must be 0 to (?P<n>\d+)$", "option must be 0 to %(n)s"),
    (r"^invalid (?P<field>lat|lon)$", "invalid %(field)s"),
    (r"^unknown kind: (?P<value>\S+) \(kinds: (?P<choices>.+)\)$", "unknown kind: %(value)s (kinds: %(choices)s)"),
    (r"^unknown ref (?P<value>.+)$", "unknown ref %(value)s"),
    (r"^unknown status (?P<value>.+)$", "unknown status %(value)s"),
    (r"^unknown category (?P<value>.+)$", "unknown category %(value)s"),
    (r"^channel (?P<value>\S+) exists$", "channel %(value)s exists"),
)]
#: Groups that name a thing ("poll 12", "work order 5"): its noun is translated too.
NOUN_GROUPS = ("what",)
_CJK = re.compile(r"[\u4e00-\u9fff]")
#: "第 4 行：<English>（整个文件未导入）": a Chinese head, the English message, a Chinese remark.
_MIXED = re.compile(r"^(?P<head>.*：)(?P<en>[^：（]*?)(?P<tail>（[^（）]*）)?$")


def select_locale() -> str:
    """zh_CN unless the client prefers English (Accept-Language)."""
    if not has_request_context():
        return "zh_CN"
    best = request.accept_languages.best_match(["zh-CN", "zh", "en"], default="zh-CN")
    return "en" if best.startswith("en") else "zh_CN"


def _compile_catalogues(target: Path) -> Path:
    """Compile the .po catalogues to .mo under ``target`` (the data dir: the package may be read-only)."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    for po in TRANSLATIONS.glob("*/LC_MESSAGES/messages.po"):
        mo = target / po.relative_to(TRANSLATIONS).with_suffix(".mo")
        if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
            continue
        mo.parent.mkdir(parents=True, exist_ok=True)
        with open(po, "rb") as fh:
            catalog = read_po(fh)
        tmp = mo.with_suffix(".tmp")
        with open(tmp, "wb") as fh:
            write_mo(fh, catalog)
        tmp.replace(mo)
    return target


def init_app(app) -> None:
    target = _compile_catalogues(app.config["SETTINGS"].data_dir / "translations")
    app.config.setdefault("BABEL_DEFAULT_LOCALE", "zh_CN")
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(target)
    Babel(app, locale_selector=select_locale)
    # Flask-Babel caches the locale in g, which can outlive a request (tests share an app
    # context): choose it afresh for every request.
    app.before_request(refresh)
    app.jinja_env.filters["zh"] = chinese


def _noun(what: str) -> str:
    """``poll 12`` → ``调查 12`` (longest known noun at the start)."""
    words = what.split(" ")
    for n in range(min(3, len(words)), 0, -1):
        head = " ".join(words[:n])
        zh = gettext(head)
        if zh != head:
            rest = " ".join(words[n:])
            return f"{zh} {rest}".strip() if rest else zh
    return what


def _translate(message: str) -> str | None:
    exact = gettext(message)
    if exact != message:
        return exact
    for pattern, msgid in SHAPES:
        m = pattern.match(message)
        if m is None:
            continue
        params = m.groupdict()
        for key in NOUN_GROUPS:
            if key in params:
                params[key] = _noun(params[key])
        if "roles" in params:
            params["roles"] = "、".join(gettext(r.strip()) for r in params["roles"].split(","))
        out = gettext(msgid, **params)
        if out != msgid % params:
            return out
    return None


def translate(message: str, status: int) -> tuple[str, str | None]:
    """(the message for the client's language, the English detail when it had to be replaced)."""
    if not message:
        return message, None
    if _CJK.search(message):
        # "第 4 行：amount cannot be negative" (imports name the row in Chinese): the English tail
        # from the catalogue when it is there; otherwise the message as it is.
        m = _MIXED.match(message)
        if m is None or not m["en"] or _CJK.search(m["en"]):
            return message, None
        try:
            found = None if str(get_locale()) == "en" else _translate(m["en"])
        except Exception:
            found = None
        return (f"{m['head']}{found}{m['tail'] or ''}" if found else message), None
    try:
        if str(get_locale()) == "en":
            return message, None
        found = _translate(message)
    except Exception:  # outside a request or without Babel: never fail an error response
        current_app.logger.debug("no translation for %r", message)
        found = None
    if found is not None:
        return found, None
    generic = BY_STATUS.get(status) or ("服务暂时不可用，请稍后再试" if status >= 500 else "请求有误")
    return generic, message


def chinese(message: str) -> str:
    """Flash messages of the staff web (``{{ msg|zh }}``): ``操作未完成：<English>`` gets its
    English part from the catalogue when it is there; an unknown message is left as it is."""
    text = str(message)
    head, sep, tail = text.rpartition("：")
    part = tail if sep else text
    if not part or _CJK.search(part):
        return text
    try:
        with force_locale("zh_CN"):
            found = _translate(part)
    except Exception:
        found = None
    return f"{head}{sep}{found}" if found else text
