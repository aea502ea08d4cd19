"""`communitv ingest`."""
from __future__ import annotations

import signal
import threading

import click


def register(main: click.Group) -> None:
    @main.command("ingest")
    @click.option("--no-sync", is_flag=True, help="do not register demo boxes in the broker at start")
    def ingest(no_sync):
        """Run the MQTT ingest service (hello/config, heartbeats, status, acks)."""
        from portal_server.cli import make_app

        from .ingest import Ingest, sync_broker_accounts

        app = make_app()
        if not no_sync:
            import time
            for attempt in range(30):
                try:
                    n = sync_broker_accounts(app)
                    click.echo(f"broker accounts in sync for {n} boxes")
                    break
                except (ConnectionError, TimeoutError, OSError) as exc:
                    click.echo(f"waiting for the broker ({exc})", err=True)
                    time.sleep(1)
        ing = Ingest(app).start()
        click.echo("ingest running")
        done = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: done.set())
        signal.signal(signal.SIGINT, lambda *_: done.set())
        done.wait()
        ing.stop()
