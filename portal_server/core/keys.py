"""One key per purpose, derived from the secret key with HKDF (RFC 5869).

A key used for one thing (the audit chain, signed video links...) says nothing about the others,
and a purpose can be re-keyed by naming it anew. ``communitv secrets rotate`` (portal_server.cli)
replaces the secret key and re-keys what was derived from it.
"""
from __future__ import annotations

import functools

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

#: Shorter secret keys are refused at start (forgeable tokens).
MIN_SECRET_LEN = 32


@functools.lru_cache(maxsize=64)
def derive(secret: str, purpose: str, length: int = 32) -> bytes:
    """The key for ``purpose`` (e.g. ``"audit-chain"``) derived from ``secret`` (kept per process:
    every audit row and signed link asks for its key)."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=b"communitv-keys",
                info=purpose.encode()).derive(secret.encode())


def check_secret(secret: str | None, where: str) -> str:
    """``secret`` when long enough; otherwise the start stops with a message naming ``where``."""
    if not secret or len(secret.strip()) < MIN_SECRET_LEN:
        raise ValueError(f"the secret key from {where} is missing or shorter than {MIN_SECRET_LEN} "
                         f"characters: refusing to start (tokens signed with it could be forged). "
                         f"Delete the file to have a new one generated, or set a long COMMUNITV_SECRET_KEY.")
    return secret.strip()
