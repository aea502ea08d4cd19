"""Reads of streaming that other features use: a relayed channel's catch-up playlist."""
from __future__ import annotations

import datetime as dt

from . import channels


def catchup_playlist(xmltv_id: str, start: dt.datetime, end: dt.datetime, uri_for) -> str | None:
    """VOD playlist of the channel's segments in [start, end) (None: nothing kept); segment URIs by
    ``uri_for(name)`` (the guide's one HLS URL function)."""
    return channels.catchup_playlist(channels.channel_dir(xmltv_id), start, end, uri_for)
