"""The `communitv` command line. Features add groups through ``<package>.cli:register(group)``."""
from __future__ import annotations

import importlib
import importlib.util
import sys

import click

from portal_server.core import rotation
from portal_server.features import FEATURES
from streaming import channels, tasks


def make_app():
    from portal_server.app import create_app
    return create_app()


@click.group()
def main():
    """CommuniTV: community public-service TV platform."""


@main.group()
def db():
    """Database commands."""


@db.command("upgrade")
def db_upgrade():
    """Apply every migration."""
    from portal_server.core import db as core_db
    from portal_server.core.config import Settings

    settings = Settings.from_env()
    core_db.upgrade(settings.database_url)
    click.echo("database is up to date")


@main.group()
def demo():
    """Demo city."""


@demo.command("seed")
@click.option("--households-per-village", type=click.IntRange(0, 2000), default=40, show_default=True,
              help="households (each with one box) per village")
def demo_seed(households_per_village: int):
    """Create the demo city of INTERFACES §3 (idempotent: a second run changes nothing)."""
    from portal_server import demo as demo_mod

    app = make_app()
    with app.app_context():
        stats = demo_mod.seed(households_per_village=households_per_village, echo=click.echo)
    if stats:
        click.echo("demo city ready, created: " + ", ".join(f"{k} {v}" for k, v in stats.items()))
    else:
        click.echo("demo city already complete: nothing to change")


@main.group()
def user():
    """Staff accounts."""


@user.command("create")
@click.option("--username", required=True)
@click.option("--role", "roles", required=True, multiple=True, help="repeatable; admin, editor, reviewer, handler, grid_worker, noc, analyst")
@click.option("--region", required=True, help="region code of the user's scope")
@click.option("--department", default=None, help="department code (department handlers)")
@click.option("--display-name", default=None)
@click.password_option(envvar="COMMUNITV_NEW_USER_PASSWORD")
def user_create(username, roles, region, department, display_name, password):
    """Create a staff account."""
    from portal_server.core import audit
    from portal_server.core.accounts import create_user
    from portal_server.core.db import session
    from portal_server.core.regions import region_by_code

    app = make_app()
    with app.app_context():
        r = region_by_code(region)
        if r is None:
            raise click.BadParameter(f"unknown region code {region}", param_hint="--region")
        try:
            u = create_user(username, password, roles, r, display_name, department)
        except ValueError as exc:
            raise click.UsageError(str(exc)) from None
        audit.record("user.create", "user", u.id, r.code, actor="cli", roles=sorted(roles))
        session.commit()
    click.echo(f"created {username} ({', '.join(roles)}) in {region}")


@main.command("worker")
@click.option("--burst", is_flag=True, help="run queued jobs and exit")
def worker(burst):
    """Run the background worker (RQ) and the periodic job scheduler."""
    from portal_server.core import jobs

    jobs.work(make_app(), burst=burst)


@main.command("meeting-supervisor", hidden=True)
@click.argument("meeting_id", type=int)
def meeting_supervisor(meeting_id):
    """The HLS supervisor of one live meeting as its own process (started by the
    ``spawn_supervisor`` job; settings from the ``COMMUNITV_*`` environment)."""
    import logging


    app = make_app()
    with app.app_context():
        facts = tasks.run_live(meeting_id)
    logging.getLogger(__name__).info("meeting %s supervisor done: %s", meeting_id, facts)


@main.command("channel-relays", hidden=True)
def channel_relays():
    """The relays process of ``make run``: every live channel under the ffmpeg supervisor until
    SIGTERM (settings from the ``COMMUNITV_*`` environment)."""
    import logging
    import signal
    import threading


    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_a: stop.set())
    signal.signal(signal.SIGINT, lambda *_a: stop.set())
    with make_app().app_context():
        channels.serve(stop)


@main.group()
def secrets():
    """The secret key."""


@secrets.command("rotate")
@click.confirmation_option(prompt="Stop `make run` first. Rotate the secret key now?")
def secrets_rotate():
    """Replace $COMMUNITV_DATA_DIR/secret_key: personal data is re-encrypted and the audit chain
    re-keyed in one transaction, MQTT keeps its password; boxes get new portal URLs when they
    reconnect. Start the stack again afterwards."""

    app = make_app()
    with app.app_context():
        try:
            counts = rotation.rotate(app.config["SETTINGS"])
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"secret key rotated: {counts['personal_data']} personal data fields re-encrypted, "
               f"{counts['audit_events']} audit events re-keyed")


@main.group()
def deploy():
    """The production layout: configuration per host role (db, broker, app, edge)."""


@deploy.command("write")
@click.option("--role", "role", required=True, type=click.Choice(["db", "broker", "app", "edge"]))
@click.option("--out", "out", required=True, type=click.Path(file_okay=False), help="folder for the role's files")
def deploy_write(role, out):
    """Write a role's configs, env file, Procfile and systemd units (settings: COMMUNITV_*)."""
    from pathlib import Path

    from portal_server import deploy as layout
    r = layout.write_role(role, Path(out))
    for f in r.files:
        click.echo(str(f))


@deploy.command("wait")
@click.option("--role", "role", required=True, type=click.Choice(["db", "broker", "app", "edge"]))
@click.option("--env-file", type=click.Path(dir_okay=False), default=None, help="re-read every round")
@click.option("--max-wait", type=float, default=None, help="give up after this many seconds (exit 1)")
def deploy_wait(role, env_file, max_wait):
    """Wait for the role's peers, naming a missing or unreachable one and retrying with backoff."""
    from pathlib import Path

    from portal_server import deploy as layout
    ok = layout.wait_for_peers(role, Path(env_file) if env_file else None, max_wait_s=max_wait)
    sys.exit(0 if ok else 1)


@deploy.command("run")
@click.option("--role", "role", required=True, type=click.Choice(["db", "broker", "app", "edge"]))
@click.option("--out", "out", required=True, type=click.Path(file_okay=False))
def deploy_run(role, out):
    """Wait for the peers, write the role and run it in the foreground (containers, tests)."""
    from pathlib import Path

    from portal_server import deploy as layout
    sys.exit(layout.run(role, Path(out)))


@deploy.command("migrate")
def deploy_migrate():
    """Upgrade the database, one app host at a time (an advisory lock on PostgreSQL)."""
    from portal_server import deploy as layout
    from portal_server.core.config import Settings
    layout.migrate(Settings.from_env().database_url)


@deploy.command("docker")
@click.option("--check", is_flag=True, help="exit 1 when Dockerfile or docker-compose.yml differ from the writer")
def deploy_docker(check):
    """Write (or check) the Dockerfile and docker-compose.yml at the top of the repository."""
    from pathlib import Path

    from portal_server import deploy as layout
    root = Path(__file__).resolve().parent.parent
    stale = []
    for name, text in (("Dockerfile", layout.dockerfile()), ("docker-compose.yml", layout.compose_yaml())):
        if check:
            if not (root / name).exists() or (root / name).read_text() != text:
                stale.append(name)
        else:
            (root / name).write_text(text)
    if stale:
        click.echo("out of date: " + ", ".join(stale) + " (run `communitv deploy docker`)", err=True)
        sys.exit(1)


@main.group()
def audit():
    """The audit trail."""


@audit.command("verify")
@click.option("--no-seal", is_flag=True, help="Only check: do not first seal the rows written since the last seal.")
def audit_verify(no_seal):
    """Seal what is pending (as the worker does every few seconds), then check the hash chain and
    every row's HMAC; exit 1 on an edited or deleted row (an edited row is never sealed)."""
    from portal_server.core import audit as core_audit
    from portal_server.core.db import session

    app = make_app()
    with app.app_context():
        if not no_seal:
            core_audit.seal_job()
        res = core_audit.verify()
        session.remove()
    if res.ok:
        pending = f" ({res.unsealed} not sealed yet)" if res.unsealed else ""
        click.echo(f"audit trail intact: {res.count} events{pending}")
    else:
        click.echo(f"audit trail BROKEN: {res.problem}", err=True)
        sys.exit(1)


def _register_feature_commands() -> None:
    for pkg in FEATURES:
        name = pkg + ".cli"
        try:
            found = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:
            found = False
        if found:
            importlib.import_module(name).register(main, lambda: make_app())  # late: tests swap make_app


_register_feature_commands()


if __name__ == "__main__":
    main()
