"""Demo data of the fleet: ``demo-terminals.csv`` in the data folder, the serial, factory secret,
region and kind of every demo box, which the simulator (``communitv sim``), the box agent and the
layout tests connect with. The boxes themselves come with the city's seed (core terminals: the
institutional terminals, the stock of unbound boxes and one box per household); this runs after it.
Idempotent: the file is rewritten from the database each time."""
from __future__ import annotations

import csv
import os

from flask import current_app
from sqlalchemy import select

from portal_server.core.db import session
from portal_server.core.regions import Region
from portal_server.core.terminals import Terminal, factory_secret

CSV_NAME = "demo-terminals.csv"


def seed(ctx) -> None:
    write_terminal_csv(current_app.config["SETTINGS"].data_dir / CSV_NAME)


def write_terminal_csv(path) -> None:
    """serial,secret,region_code,kind for every demo terminal (for simulators), written atomically,
    readable by its owner only (the secrets let anybody act as the box)."""
    rows = session.execute(select(Terminal.serial, Terminal.kind, Region.code)
                           .outerjoin(Region, Region.id == Terminal.region_id)
                           .order_by(Terminal.id)).all()
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["serial", "secret", "region_code", "kind"])
        for serial, kind, code in rows:
            if serial.startswith("CTV-"):
                w.writerow([serial, factory_secret(serial), code or "", kind])
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
