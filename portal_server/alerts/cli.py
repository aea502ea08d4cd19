"""`communitv alerts send ...`: send an alert from the command line (operators' scripts)."""
from __future__ import annotations

import datetime as dt

import click

from portal_server.core.accounts import user_by_username
from portal_server.core.api import ApiError
from portal_server.core.db import session

from .models import CATEGORIES, CERTAINTIES, SEVERITIES, URGENCIES
from .texts import TEMPLATES


def register(main: click.Group, make_app) -> None:
    """Add the commands of this package; ``make_app`` builds the app (passed in: features never import the cli)."""
    @main.group("alerts")
    def alerts():
        """Emergency alerts."""

    @alerts.command("send")
    @click.option("--region", "regions", multiple=True, required=True, help="region code (repeatable)")
    @click.option("--template", type=click.Choice(sorted(TEMPLATES)), help="Chinese text of a common case")
    @click.option("--category", type=click.Choice(CATEGORIES))
    @click.option("--event")
    @click.option("--severity", type=click.Choice(SEVERITIES))
    @click.option("--urgency", type=click.Choice(URGENCIES))
    @click.option("--certainty", type=click.Choice(CERTAINTIES))
    @click.option("--headline")
    @click.option("--description")
    @click.option("--instruction")
    @click.option("--expires", help="ISO 8601 (default: the template's lifetime, or 6 hours)")
    @click.option("--expires-in", type=float, help="hours from now")
    @click.option("--user", "username", help="send as this staff account (its scope and roles apply); "
                                                "default: the operator (audit actor 'cli')")
    @click.option("--idempotency-key")
    def send(regions, template, username, idempotency_key, expires_in, **fields):
        """Send an alert: one retained message per region; prints its id, status and targeted boxes.

        Severe/Extreme alerts that are not Immediate wait for a second person's approval (NOC page or
        POST /api/v1/alerts/<id>/approve)."""
        from . import operations as ops

        data = {k: v for k, v in fields.items() if v is not None}
        data["regions"] = list(regions)
        if template:
            data["template"] = template
        if expires_in is not None:
            data["expires"] = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=expires_in)).isoformat()
        app = make_app()
        with app.app_context():
            user = None
            if username:
                user = user_by_username(username)
                if user is None:
                    raise click.BadParameter(f"no such user {username}", param_hint="--user")
            try:
                alert, created = ops.create(data, user, idempotency_key=idempotency_key)
                session.commit()
            except ApiError as e:
                click.echo(f"alert not sent: {e.message}", err=True)
                raise SystemExit(1 if e.status == 400 else 2)
            except (ConnectionError, TimeoutError, OSError) as e:
                click.echo(f"alert saved but not delivered: MQTT broker unreachable ({e})", err=True)
                raise SystemExit(3)
            click.echo(f"alert {alert.id} {alert.status}{'' if created else ' (already sent with this key)'}: "
                       f"{alert.headline} → {', '.join(alert.region_codes)}; {alert.targeted_at_send} boxes targeted")
