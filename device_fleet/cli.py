"""`communitv ingest`, `communitv terminals import FILE.csv`, `communitv sim`."""
from __future__ import annotations

import signal
import threading

import click

from portal_server.core import locks
from portal_server.core.config import Settings
from portal_server.core.db import session


def take_ingest_lead(app, retry_s: float = 3.0):
    """One ingest for the whole layout: the broker hands every box message to each plain subscriber
    (a $share/ subscription was too slow on Mosquitto 2.0.11, see ingest.SHARE), so with several app
    hosts the first ingest takes a lock that holds across hosts (core.locks: a PostgreSQL advisory
    lock) and the others stand by; when its host dies, its database connection goes and one of them
    takes over within ``retry_s``."""
    import time

    settings = app.config["SETTINGS"]
    said = False
    while True:
        with app.app_context():
            held = locks.try_acquire("mqtt-ingest", settings.data_dir / "locks")
        if held is not None:
            return held
        if not said:
            click.echo("ingest standby: another app host runs the MQTT ingest; taking over when it stops", err=True)
            said = True
        time.sleep(retry_s)


def run_import(app, path: str) -> tuple[int, str]:
    """Import an inventory CSV with a progress bar → (exit code, message)."""
    from .operations import FleetError, import_terminals, parse_inventory_csv

    with app.app_context():
        try:
            with open(path, "rb") as fh:
                text = fh.read()  # bytes: UTF-8 or GBK, told apart by core.imports
        except OSError as exc:
            return 2, f"无法读取 {path}: {exc}"
        try:
            n = len(parse_inventory_csv(text))
            with click.progressbar(length=n, label="导入终端") as bar:
                res = import_terminals(text, progress=bar.update, actor="cli")
            session.commit()
        except FleetError as exc:
            return 1, f"导入失败，未导入任何终端。{exc}"
        except (ConnectionError, TimeoutError, OSError) as exc:
            return 1, f"导入失败，未导入任何终端：无法连接 MQTT 服务器 ({exc})"
        finally:
            session.remove()
    return 0, f"已导入 {res.created} 台新终端，更新 {res.updated} 台，并已在 MQTT 服务器注册"


def register(main: click.Group, make_app) -> None:
    """Add the commands of this package; ``make_app`` builds the app (passed in: features never import the cli)."""
    @main.command("ingest")
    @click.option("--no-sync", is_flag=True, help="do not register demo boxes in the broker at start")
    def ingest(no_sync):
        """Run the MQTT ingest service (hello/config, heartbeats, status, acks, alarms)."""

        from .ingest import Ingest
        from .operations import sync_broker_clients, sync_broker_roles

        app = make_app()
        leader = take_ingest_lead(app)
        if not no_sync:
            import time
            for _attempt in range(30):
                try:
                    n = sync_broker_clients(app)
                    click.echo(f"broker accounts in sync ({n} registered now)")
                    changed = sync_broker_roles(app)
                    click.echo(f"broker roles in sync ({len(changed)} brought to the current ACLs now)")
                    break
                except (ConnectionError, TimeoutError, OSError) as exc:
                    click.echo(f"waiting for the broker ({exc})", err=True)
                    time.sleep(1)
        ing = Ingest(app).start()
        while not ing.ready.wait(5):  # hellos before our subscription are lost (boxes repeat theirs)
            click.echo("waiting for the broker to take our subscription", err=True)
        click.echo("ingest running")
        done = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: done.set())
        signal.signal(signal.SIGINT, lambda *_: done.set())
        done.wait()
        ing.stop()
        leader.release()

    @main.group("terminals")
    def terminals():
        """Terminal inventory."""

    @terminals.command("import")
    @click.argument("file", type=click.Path(exists=True, dir_okay=False))
    def terminals_import(file):
        """Import FILE.csv (serial,mac,model,secret): all rows or none; registers each box in the broker."""
        code, msg = run_import(make_app(), file)
        click.echo(msg, err=code != 0)
        raise SystemExit(code)

    @main.command("sim")
    @click.option("--csv", "csv_path", type=click.Path(exists=True, dir_okay=False),
                  help="serial,secret CSV (default: $COMMUNITV_DATA_DIR/demo-terminals.csv)")
    @click.option("--boxes", type=int, default=0, help="how many boxes (0: every row of the CSV)")
    @click.option("--duration", type=float, default=0, help="seconds to run (0: until Ctrl-C)")
    @click.option("--fetch/--no-fetch", default=True, help="fetch the portal home page once configured")
    @click.option("--ramp", type=float, default=0, help="spread the first connects over this many seconds")
    def sim(csv_path, boxes, duration, fetch, ramp):
        """Fleet simulator: thousands of boxes speaking the real protocol to the real broker."""
        from .sim import Fleet, load_boxes
        settings = Settings.from_env()
        rows = load_boxes(csv_path or settings.data_dir / "demo-terminals.csv", boxes)
        fleet = Fleet(settings.mqtt_url, rows, fetch=fetch)
        fleet.run(duration=duration or None, ramp_s=ramp, report=lambda s: click.echo(s))
