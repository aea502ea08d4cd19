"""Replacing the secret key (``communitv secrets rotate``) without losing anything.

Everything derived from the key is re-keyed in one database transaction: personal data (every
``*_enc`` column) is decrypted with the old key and encrypted with the new one, the audit chain is
checked with the old HMAC key and re-computed with the new. The broker password of the server
account is pinned to a file first, so MQTT keeps working without touching the broker. Staff
sessions, API tokens stay (stored hashed); box portal tokens and the TV/video link keys change:
boxes get their new portal URL in the config the server sends when they reconnect after the
restart. Run it with the stack stopped, then start it again.
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path

from sqlalchemy import select, update

from . import audit, crypto
from .config import Settings, mqtt_password_file
from .db import Base, session


def encrypted_columns() -> list[tuple]:
    """(table, primary key column, column) of every encrypted personal-data column."""
    out = []
    for table in Base.metadata.sorted_tables:
        pk = list(table.primary_key.columns)
        for col in table.columns:
            if col.name.endswith("_enc") and len(pk) == 1:
                out.append((table, pk[0], col))
    return out


def _write_private(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".new")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def rotate(old: Settings, new_key: str | None = None) -> dict:
    """Re-key everything from ``old.secret_key`` to ``new_key`` (generated when None) and write the
    new key file. Needs an app context of the old settings. Returns counts."""
    if os.environ.get("COMMUNITV_SECRET_KEY"):
        raise ValueError("COMMUNITV_SECRET_KEY is set: rotate by changing it there, not the key file")
    new_key = new_key or secrets.token_urlsafe(48)
    new = Settings(data_dir=old.data_dir, database_url=old.database_url, secret_key=new_key)
    pinned = mqtt_password_file(old.data_dir)
    if not pinned.exists():  # the broker keeps its password: nothing to change there
        _write_private(pinned, old.mqtt_server_password)
    counts = {"personal_data": 0, "audit_events": 0}
    for table, pk, col in encrypted_columns():
        for key, value in session.execute(select(pk, col).where(col.is_not(None))).all():
            clear = crypto.decrypt(value, secret=old.secret_key)
            if clear is None:
                raise ValueError(f"{table.name}.{col.name} of row {key} does not decrypt with the current key")
            session.execute(update(table).where(pk == key).values({col.name: crypto.encrypt(clear, secret=new_key)}))
            counts["personal_data"] += 1
    counts["audit_events"] = audit.rekey(old.audit_key, new.audit_key)
    key_file = old.data_dir / "secret_key"
    staged = key_file.with_name("secret_key.rotating")
    _write_private(staged, new_key)
    try:
        session.commit()
    except Exception:
        staged.unlink(missing_ok=True)
        raise
    os.replace(staged, key_file)
    return counts
