"""What the alert pipeline passes around: events, the messages that carry them, send results.

An :class:`Event` is one thing a watch saw (its prefixes changed, the cloud's snapshot was
quarantined, a publication was missed, fetching keeps failing, no new file for too long). Events
are stored in the outbox in the transaction that stored the snapshot; a :class:`Message` groups
the pending events of one channel so that one delivery round posts once per channel. A message
keeps its id and its events across attempts (the ``webhook-id`` of every retry is the same).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

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


@dataclass(frozen=True, slots=True)
class Message:
    """The events one channel receives in one post. ``id``: ``msg_`` + 26 characters, the same
    on every attempt (the ``webhook-id``); ``attempt``: 1 for the first try."""

    id: str
    channel: str
    events: tuple[Event, ...]
    created: datetime
    attempt: int = 1


class SendStatus(StrEnum):
    SENT = "sent"  # the receiver took it
    RETRY = "retry"  # transient: timeouts, 5xx, 408, 429, connection refused, SMTP 4xx
    PERMANENT = "permanent"  # 4xx other than 408/429, SMTP 5xx: retrying cannot help
    DISABLE = "disable"  # 410 Gone, Slack no_service: the endpoint is gone; stop using it


@dataclass(frozen=True, slots=True)
class SendResult:
    """What one attempt did. ``detail``: a sentence for logs and ``alerts list`` that never
    holds a secret (no URL path or query, no password, no token); ``retry_after``: seconds the
    receiver asked us to wait (``Retry-After``), if it did."""

    status: SendStatus
    detail: str
    retry_after: float | None = None


def sample_message(channel: str, now: datetime) -> Message:
    """What ``aztags alerts test CHANNEL`` sends: one event of type ``aztags.test``."""
    event = Event(
        new_id("evt"),
        EventType.TEST,
        now,
        "public",
        "",
        "aztags test alert: this channel works",
        {"note": "sent by 'aztags alerts test'; no prefix changed"},
    )
    return Message(new_id("msg"), channel, (event,), now)
