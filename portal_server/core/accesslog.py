"""Access logs without secrets: gunicorn's logger with tokens and keys redacted.

Box portal URLs carry ``?token=``, Open311 clients send ``?api_key=``, signed video URLs carry a
signature in their path: none of it may land in a log file that ops staff read or ship. Used by
the ``web`` line of the Procfile (``--logger-class portal_server.core.accesslog.RedactingLogger``).
"""
from __future__ import annotations

import re

from gunicorn.glogging import Logger

REDACTED = "[redacted]"

#: Query parameters whose values are secrets.
_QUERY = re.compile(r"(?i)([?&;](?:token|access_token|api_key|apikey|key|md5|sig|signature|password|secret|"
                    r"csrf_token)=)[^&;\s\"]*")
#: The signature of a signed HLS path (/hls/s/<md5>/<expires>/...).
_HLS = re.compile(r"(/hls/s/)[A-Za-z0-9_-]+/")
#: Request headers never logged in clear.
_SECRET_HEADERS = ("authorization", "cookie", "x-terminal-token", "x-api-key")


def redact(text: str) -> str:
    """``text`` with every secret query value and HLS signature replaced."""
    return _HLS.sub(r"\1" + REDACTED + "/", _QUERY.sub(r"\1" + REDACTED, text))


class RedactingLogger(Logger):
    """gunicorn's access logger, secrets removed from every atom (request line, query, referer,
    headers) before the format is applied."""

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        for key, value in list(atoms.items()):
            if not isinstance(value, str):
                continue
            if key.startswith("{") and key[1:].split("}", 1)[0].lower() in _SECRET_HEADERS:
                atoms[key] = REDACTED
            else:
                atoms[key] = redact(value)
        return atoms
