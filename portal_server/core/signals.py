"""Signals between features (blinker). Senders pass the object id as sender and facts as kwargs.

Receivers run in the sender's transaction after flush; long work belongs in a job.
"""
from blinker import Namespace

_signals = Namespace()

#: sender=content id; kwargs: region_codes (list of village codes affected), section, notice (the
#: INTERFACES §5 notice payload: type, id, title, url — what the boxes and the open pages are told),
#: targets (the region codes the item is aimed at: city, towns or villages).
content_published = _signals.signal("content-published")
#: sender=content id; kwargs: region_codes, reason ("withdrawn" | "expired"), targets (as above; absent
#: when only some villages lose the item).
content_unpublished = _signals.signal("content-unpublished")
#: sender=work order id; kwargs: action, region_code.
feedback_changed = _signals.signal("feedback-changed")
#: sender=meeting id; kwargs: region_code, state ("live" | "ended"; also "scheduled" on create/edit,
#: "cancelled", and "motion" when a motion opens or closes); with "live" also notice (the §5 notice payload).
meeting_state_changed = _signals.signal("meeting-state-changed")
#: sender=alert id; kwargs: region_codes, state ("active" | "cancelled" | "expired"; also "pending_approval",
#: "rejected", and "superseded" for an alert replaced by a CAP Update, which is sent as a new "active" alert).
alert_changed = _signals.signal("alert-changed")
#: sender=terminal serial; kwargs: region_code.
terminal_bound = _signals.signal("terminal-bound")
#: sender=village code: the TV pages of this village must be re-rendered.
village_pages_stale = _signals.signal("village-pages-stale")
#: sender=terminal serial; kwargs: kind ("cmd" | "alert"), id, ok, detail. Sent by the MQTT ingest
#: for every ack a box publishes; alerts and commands connect receivers.
box_acked = _signals.signal("box-acked")
#: sender=terminal serial; kwargs: online (bool). Sent by the ingest when presence changes.
presence_changed = _signals.signal("presence-changed")
