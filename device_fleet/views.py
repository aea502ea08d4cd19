"""The NOC web (/noc/) and the installer's pairing page (/m/pair). Thin: parse, call operations, render."""
from __future__ import annotations

import datetime as dt

from flask import (Blueprint, abort, current_app, flash, g, redirect, render_template, request,
                   send_from_directory, url_for)
from sqlalchemy import select

from portal_server.core import clock
from portal_server.core.api import ApiError
from portal_server.core.auth import login_required, roles_required
from portal_server.core.db import session
from portal_server.core.households import Household
from portal_server.core.terminals import Terminal, terminal_by_serial

from . import operations, presence, queries
from .models import COMMAND_TYPES, Rollout
from .operations import FleetError

bp = Blueprint("noc", __name__, url_prefix="/noc", template_folder="templates")
pair_bp = Blueprint("fleet_pair", __name__, url_prefix="/m/pair", template_folder="templates")

NOC_ROLES = ("noc",)
TYPE_NAMES = {"reboot": "重启", "reload": "刷新页面", "tune": "切换播放", "message": "屏幕消息", "upgrade": "固件升级"}
STATUS_NAMES = {"sent": "已发送", "acked": "已确认", "failed": "失败", "expired": "已过期",
                "running": "进行中", "paused": "已暂停", "completed": "已完成", "rolled_back": "已回滚"}
ALARM_NAMES = {"institutional_offline": "机构终端离线", "area_outage": "区域断网", "channel_source_lost": "频道信号中断"}
KIND_NAMES = {"department": "部门", "town": "镇街", "village": "村居", "household": "家庭"}


def local(ts) -> str:
    if ts is None:
        return "—"
    if isinstance(ts, (int, float)):
        ts = dt.datetime.fromtimestamp(ts, dt.timezone.utc)
    return clock.fmt(ts, "%m-%d %H:%M:%S")


@bp.app_template_filter("fleet_time")
def _fleet_time(ts):
    return local(ts)


@bp.context_processor
def _names():
    return {"TYPE_NAMES": TYPE_NAMES, "STATUS_NAMES": STATUS_NAMES, "ALARM_NAMES": ALARM_NAMES,
            "KIND_NAMES": KIND_NAMES}


def _rate(on_total) -> float:
    on, total = on_total
    return on / total if total else 0.0


def history_svg(samples: list[dict]) -> str:
    """Inline SVG line chart of CPU % and free memory over the downsampled history."""
    if len(samples) < 2:
        return '<p class="hint">心跳历史不足，稍后再看。</p>'
    W, H = 600, 160
    t0, t1 = samples[0]["ts"], samples[-1]["ts"]
    span = max(t1 - t0, 1)
    mem_max = max((s.get("mem_free_kb") or 0) for s in samples) or 1

    def pts(key, top):
        out = []
        for s in samples:
            v = s.get(key)
            if v is None:
                continue
            out.append(f"{(s['ts'] - t0) / span * (W - 20) + 10:.1f},{H - 10 - (v / top) * (H - 30):.1f}")
        return " ".join(out)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="hb-chart" viewBox="0 0 {W} {H}" width="100%">'
            f'<rect x="0" y="0" width="{W}" height="{H}" fill="#fff" stroke="#ccd"/>'
            f'<polyline fill="none" stroke="#c92a2a" stroke-width="2" points="{pts("cpu", 100)}"/>'
            f'<polyline fill="none" stroke="#1971c2" stroke-width="2" points="{pts("mem_free_kb", mem_max)}"/>'
            f'<text x="10" y="14" font-size="11" fill="#c92a2a">CPU %</text>'
            f'<text x="70" y="14" font-size="11" fill="#1971c2">空闲内存</text>'
            f'<text x="{W - 10}" y="14" font-size="11" text-anchor="end">{local(t0)} – {local(t1)}</text></svg>')


@bp.get("/")
@roles_required(*NOC_ROLES)
def overview():
    scope = g.user.scope
    rates = queries.online_rates(scope)
    towns = queries.regions_in(scope, "town")
    villages = queries.regions_in(scope, "village")
    # The map shows the children of the operator's region: towns of the city, villages of a town.
    level = "town" if g.user.region.level == "city" else "village"
    map_values = {r.code: _rate(rates["regions"].get(r.code, (0, 0))) if rates["regions"].get(r.code, (0, 0))[1] else None
                  for r in (towns if level == "town" else villages)}
    return render_template("fleet/overview.html", rates=rates, towns=towns, villages=villages,
                           map_values=map_values, rate=_rate,
                           alarms=queries.alarms(scope)[:10], versions=queries.firmware_versions(scope))


@bp.route("/terminals", methods=["GET", "POST"])
@roles_required(*NOC_ROLES)
def terminals():
    f = {k: request.values.get(k) or None for k in ("region", "model", "firmware", "kind", "q", "status")}
    if request.method == "POST":
        selector = {k: f[k] for k in ("region", "model", "firmware", "kind") if f[k]}
        terms = queries.select_terminals(g.user.scope, **selector)
        try:
            args = _command_args(request.form)
            cmds = operations.send_commands(terms, request.form.get("type", ""), args, g.user,
                                            expires_s=int(request.form.get("expires_s") or 3600), selector=selector)
            session.commit()
            flash(f"已向 {len(cmds)} 台终端发送「{TYPE_NAMES[cmds[0].type]}」", "ok")
        except (FleetError, ValueError) as exc:
            session.rollback()
            flash(f"未发送：{exc}", "error")
        return redirect(url_for("noc.terminals", **{k: v for k, v in f.items() if v}))
    stmt = queries.terminals_query(g.user.scope, region=f["region"], model=f["model"], firmware=f["firmware"],
                                   kind=f["kind"], q=f["q"], include_unbound=True)
    rows = list(session.scalars(stmt))
    pres = presence.presence([t.serial for t in rows])
    if f["status"] in ("online", "offline"):
        rows = [t for t in rows if pres[t.serial][0] == (f["status"] == "online")]
    page = max(int(request.args.get("page", 1) or 1), 1)
    per = 100
    return render_template("fleet/terminals.html", rows=rows[(page - 1) * per: page * per], total=len(rows),
                           page=page, pages=(len(rows) + per - 1) // per, pres=pres, f=f,
                           models=queries.models(g.user.scope), versions=queries.firmware_versions(g.user.scope),
                           types=COMMAND_TYPES, batches=queries.recent_batches(10), batch_counts=queries.batch_counts)


def _command_args(form) -> dict:
    t = form.get("type")
    if t == "tune":
        return {"url": form.get("url", "").strip()}
    if t == "message":
        return {"text": form.get("text", "").strip()}
    if t == "upgrade":
        return {"version": form.get("version", "").strip()}
    return {}


def _terminal_or_404(serial: str) -> Terminal:
    t = terminal_by_serial(serial)
    scope = g.user.scope
    if t is None or not (t.region_path is None and scope.level == "city" or
                         t.region_path and t.region_path.startswith(scope.path)):
        abort(404)
    return t


@bp.route("/terminals/<serial>", methods=["GET", "POST"])
@roles_required(*NOC_ROLES)
def terminal(serial: str):
    t = _terminal_or_404(serial)
    if request.method == "POST":
        try:
            if request.form.get("action") == "bind":
                hh = request.form.get("household_id", "").strip()
                rc = request.form.get("region_code", "").strip()
                operations.bind_terminal(t, g.user, household_id=int(hh) if hh else None, region_code=rc or None)
                session.commit()
                flash("已绑定，终端配置已更新", "ok")
            elif request.form.get("action") == "rotate_token":
                operations.rotate_portal_token(t, g.user, request.form.get("reason", ""))
                session.commit()
                flash("已更换门户地址，旧地址已失效；新地址已随终端配置下发", "ok")
            else:
                c = operations.send_commands([t], request.form.get("type", ""), _command_args(request.form), g.user,
                                             expires_s=int(request.form.get("expires_s") or 3600))[0]
                session.commit()
                flash(f"已发送「{TYPE_NAMES[c.type]}」(编号 {c.id})", "ok")
        except (FleetError, ValueError) as exc:
            session.rollback()
            flash(f"操作未完成：{exc}", "error")
        return redirect(url_for("noc.terminal", serial=serial))
    online, seen, hb = presence.presence([serial])[serial]
    return render_template("fleet/terminal.html", t=t, online=online, seen=seen, hb=hb,
                           chart=history_svg(presence.history(serial)), commands=queries.commands_for(serial),
                           alarms=queries.alarms(g.user.scope, active=None, serial=serial, limit=20),
                           types=COMMAND_TYPES, firmware=queries.firmware_list())


@bp.get("/alarms")
@roles_required(*NOC_ROLES)
def alarms():
    return render_template("fleet/alarms.html", active=queries.alarms(g.user.scope, active=True),
                           cleared=queries.alarms(g.user.scope, active=False, limit=50))


@bp.route("/rollouts", methods=["GET", "POST"])
@roles_required(*NOC_ROLES)
def rollouts():
    if request.method == "POST":
        action = request.form.get("action")
        try:
            if action == "upload":
                up = request.files.get("file")
                fw = operations.upload_firmware(request.form.get("version", "").strip(), up.read() if up else b"",
                                                g.user, model=request.form.get("model") or None,
                                                notes=request.form.get("notes", ""),
                                                sha256=request.form.get("sha256") or None)
                session.commit()
                flash(f"固件 {fw.version} 已上传 (sha256 {fw.sha256[:12]}…)", "ok")
            elif action == "start":
                from .models import Firmware
                fw = session.scalar(select(Firmware).where(Firmware.version == request.form.get("version")))
                if fw is None:
                    raise FleetError("请选择固件版本")
                waves = [int(x) for x in request.form.get("waves", "5,15,80,100").split(",") if x.strip()]
                selector = {k: request.form.get(k) for k in ("region", "model", "firmware") if request.form.get(k)}
                ro = operations.start_rollout(fw, g.user, selector, waves,
                                              float(request.form.get("success_threshold") or 0.9),
                                              float(request.form.get("error_threshold") or 0.1))
                session.commit()
                flash(f"升级任务 #{ro.id} 已开始", "ok")
            elif action in ("pause", "resume", "rollback"):
                ro = session.get(Rollout, int(request.form.get("rollout_id", 0)))
                if ro is None:
                    abort(404)
                {"pause": operations.pause_rollout, "resume": operations.resume_rollout,
                 "rollback": operations.rollback_rollout}[action](ro, g.user)
                session.commit()
                flash(f"升级任务 #{ro.id}：{STATUS_NAMES[ro.status]}", "ok")
        except (FleetError, ValueError) as exc:
            session.rollback()
            flash(f"操作未完成：{exc}", "error")
        except ApiError as exc:
            flash(f"操作未完成：{exc.message}", "error")
        return redirect(url_for("noc.rollouts"))
    ros = queries.rollouts(g.user)
    from .models import Firmware
    return render_template("fleet/rollouts.html", rollouts=ros, counts={r.id: operations.rollout_counts(r) for r in ros},
                           fw={f.id: f for f in queries.firmware_list()}, firmware=queries.firmware_list(),
                           versions=queries.firmware_versions(g.user.scope))


@bp.get("/firmware/<path:filename>")
def firmware_file(filename: str):
    """Firmware images for boxes (integrity by the sha256 in the upgrade command)."""
    return send_from_directory(current_app.config["SETTINGS"].media_dir / "firmware", filename)


# The installer's phone -----------------------------------------------------------------------

PAIR_ROLES = ("noc", "grid_worker", "handler", "editor", "clerk")  # clerks onboard households


@pair_bp.route("", methods=["GET", "POST"])
@login_required
def pair():
    if not g.user.has_role(*PAIR_ROLES):
        abort(403)
    code = (request.values.get("code") or "").strip()
    term = operations.terminal_by_pairing_code(code)
    if request.method == "POST" and term is not None:
        hh = request.form.get("household_id", "").strip()
        rc = request.form.get("region_code", "").strip()
        try:
            operations.bind_terminal(term, g.user, household_id=int(hh) if hh else None, region_code=rc or None)
            session.commit()
            return render_template("fleet/pair_done.html", t=term)
        except (FleetError, ValueError) as exc:
            session.rollback()
            flash(str(exc), "error")
    households = []
    if term is not None:
        q = request.args.get("q", "").strip()
        stmt = select(Household).where(g.user.scope.region_filter(Household.region_path)).order_by(Household.number)
        if q:
            stmt = stmt.where(Household.head_name.contains(q, autoescape=True) | Household.number.contains(q, autoescape=True))
        households = list(session.scalars(stmt.limit(100)))
    villages = queries.regions_in(g.user.scope, "village")[:100]
    return render_template("fleet/pair.html", code=code, t=term, households=households, villages=villages)
