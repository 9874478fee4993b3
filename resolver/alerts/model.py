"""What the alert pipeline passes around: events, the messages that carry them, send results.

An :class:`Event` is one thing a watch saw (its prefixes changed, the cloud's snapshot was
quarantined, a publication was missed, fetching keeps failing, no new file for too long). Events
are stored in the outbox in the transaction that stored the snapshot; a :class:`Message` groups
the pending events of one channel so that one delivery round posts once per channel. A message
keeps its id and its events across attempts (the ``webhook-id`` of every retry is the same).

``Message``, ``SendStatus``, ``SendResult`` and ``sample_message`` are defined in
resolver.alerts.sending, loaded on first use: recording events at ingest needs none of them.
They are importable from here as ever.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from resolver.alerts.sending import Message as Message
    from resolver.alerts.sending import SendResult as SendResult
    from resolver.alerts.sending import SendStatus as SendStatus
    from resolver.alerts.sending import sample_message as sample_message

_SENDING = ("Message", "SendResult", "SendStatus", "sample_message")


def __getattr__(name: str) -> Any:
    """``Message``, ``SendResult``, ``SendStatus`` and ``sample_message``, from
    resolver.alerts.sending (PEP 562)."""
    if name in _SENDING:
        from resolver.alerts import sending

        return getattr(sending, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_id(prefix: str) -> str:
    """``prefix_`` + 26 characters (a ULID: milliseconds then randomness, Crockford base32), so
    ids sort by creation time and never contain a dot (Standard Webhooks forbids one)."""
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        value, digit = divmod(value, 32)
        chars.append(_CROCKFORD[digit])
    return f"{prefix}_{''.join(reversed(chars))}"


class EventType(StrEnum):
    """The ``type`` of an event (Standard Webhooks style: dotted, stable, documented)."""

    CHANGED = "servicetag.prefixes.changed"  # watched tags: prefixes and tags added/removed
    QUARANTINED = "snapshot.quarantined"  # a newer file was refused (kept for inspection)
    GAP = "snapshot.gap"  # changeNumbers skipped: a publication was never seen
    FETCH_FAILING = "source.fetch_failing"  # fail_alert_after failed runs in a row
    STALE = "source.stale"  # no new publication for stale_after_days
    # a prefix in the file for api_lag_alert_days without reaching the Discovery API, or in the
    # API that long after leaving the file
    API_LAG = "source.api_lag"
    TEST = "aztags.test"  # `aztags alerts test CHANNEL`


class Severity(StrEnum):
    NOTICE = "notice"  # a change a firewall team acts on
    WARNING = "warning"  # a gap, a quarantine
    ERROR = "error"  # fetching fails, data stale


SEVERITY = {
    EventType.CHANGED: Severity.NOTICE,
    EventType.QUARANTINED: Severity.WARNING,
    EventType.GAP: Severity.WARNING,
    EventType.FETCH_FAILING: Severity.ERROR,
    EventType.STALE: Severity.ERROR,
    EventType.API_LAG: Severity.WARNING,
    EventType.TEST: Severity.NOTICE,
}


@dataclass(frozen=True, slots=True)
class Event:
    """One event, as stored in the outbox and as sent (``as_json``).

    ``id``: ``evt_`` + 26 characters, stable for the life of the event (every delivery attempt
    carries it). ``summary``: one line for people ("Storage.WestEurope: +3 -1 prefixes").
    ``data``: the JSON-ready details, documented in the README per type. For ``CHANGED``::

        {"from": {"change_number": 376, "file_date": "2025-11-03", "snapshot": 12},
         "to":   {"change_number": 377, "file_date": "2025-11-10", "snapshot": 13},
         "azure_may_use_added_from": "2025-11-17",
         "counts": {"tags": 2, "added": 3, "removed": 1},
         "tags": [{"name": "Storage.WestEurope", "change": "changed",
                   "added": ["20.38.96.0/20"], "removed": ["2603:1020:206::/48"]}]}

    ``change`` is ``changed``, ``added`` (the tag is new: all its prefixes are added) or
    ``removed``; prefix lists are IPv4 first, sorted.
    """

    id: str
    type: EventType
    created: datetime  # aware, UTC
    cloud: str  # public | usgov | china | germany
    watch: str  # the [[watch]] name ("" for a test event)
    summary: str
    data: Mapping[str, Any]

    @property
    def severity(self) -> Severity:
        return SEVERITY[self.type]

    def as_json(self) -> dict[str, Any]:
        """The event as every channel sends it (and as ``alerts list --json`` prints it)."""
        return {
            "id": self.id,
            "type": str(self.type),
            "created": self.created.isoformat().replace("+00:00", "Z"),
            "cloud": self.cloud,
            "watch": self.watch,
            "severity": str(self.severity),
            "summary": self.summary,
            "data": dict(self.data),
        }
