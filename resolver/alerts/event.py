"""An alert event: what one watch saw (:class:`Event`), its type and severity, and new ids.

What recording events at ingest needs (resolver.alerts.record, cache.outbox), apart from the
messages and send results of the delivery side (resolver.alerts.message), so that an ingest
does not build those classes. The data of each type is documented on
:class:`Event` and in the README.
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
