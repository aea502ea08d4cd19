"""Personal data at rest: Fernet encryption keyed from the secret key, and display masks."""
from __future__ import annotations

import base64
import functools
import hashlib

from cryptography.fernet import Fernet, InvalidToken
from flask import current_app


def _fernet(secret: str | None = None) -> Fernet:
    return _fernet_for(secret or current_app.config["SECRET_KEY"])


@functools.lru_cache(maxsize=8)
def _fernet_for(secret: str) -> Fernet:
    """The PII cipher of ``secret``, built once per process (every decrypted phone asks for it)."""
    key = hashlib.sha256(("communitv-pii:" + secret).encode()).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def encrypt(value: str | None, secret: str | None = None) -> str | None:
    """Encrypt a phone or ID number for storage."""
    if not value:
        return None
    return _fernet(secret).encrypt(value.encode()).decode()


def decrypt(token: str | None, secret: str | None = None) -> str | None:
    """The clear value; callers must log the access (see ``audit.record``)."""
    if not token:
        return None
    try:
        return _fernet(secret).decrypt(token.encode()).decode()
    except InvalidToken:
        return None


def mask_phone(phone: str | None) -> str:
    """138****1234."""
    if not phone:
        return ""
    return phone[:3] + "*" * max(0, len(phone) - 7) + phone[-4:] if len(phone) >= 7 else "*" * len(phone)


def mask_id_number(idn: str | None) -> str:
    """110***********1234 (INTERFACES §4.1: first three and last four only)."""
    if not idn:
        return ""
    return idn[:3] + "*" * max(0, len(idn) - 7) + idn[-4:] if len(idn) > 7 else "*" * len(idn)


def lookup_hash(value: str | None, secret: str | None = None) -> str | None:
    """A keyed hash (HMAC-SHA256) of a normalised ID number: finds a person by ID number and
    spots duplicates without decrypting every row. Keyed, so the column alone reveals nothing."""
    if not value:
        return None
    import hmac
    secret = secret or current_app.config["SECRET_KEY"]
    return hmac.new(("communitv-lookup:" + secret).encode(), value.strip().upper().encode(),
                    hashlib.sha256).hexdigest()


def mask_name(name: str | None) -> str:
    """张*明 / 李* — for lists published to the village (subsidy lists)."""
    if not name:
        return ""
    if len(name) <= 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]
