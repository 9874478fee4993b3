"""The rows of the outbox (cache.outbox): a stored event, messages, an event as a channel sees
it, and scheduled fetches. Importable from cache.outbox as ever; kept apart so that recording
events at ingest does not build these classes (about 0.5 ms of start-up each).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from resolver.alerts.event import Event


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An alert event as stored, with the snapshots it is about and whether it was queued."""

    event: Event
    from_snapshot: int | None
    to_snapshot: int | None
    queued: bool


@dataclass(frozen=True, slots=True)
class MessageRow:
    """One outgoing alert message and where its delivery stands."""

    id: str
    channel: str
    created: datetime
    state: str  # pending | sent | dead
    attempts: int
    next_attempt: datetime
    last_error: str | None
    finished: datetime | None


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    """One event as one channel sees it: ``message`` None while no round has taken it."""

    event: Event
    queued: bool
    channel: str | None  # None: a recorded event with no delivery
    message: MessageRow | None


@dataclass(frozen=True, slots=True)
class FetchRuns:
    """A cloud's recent refresh runs: the failures in a row and what was alerted about them."""

    cloud: str
    failures: int = 0  # failed runs in a row
    last_error: str | None = None
    last_attempt: datetime | None = None
    last_success: datetime | None = None
    failing_alerted: bool = False  # the "fetch failing" event of this streak was raised
    stale_alerted_snapshot: int | None = None  # the snapshot a "stale" event was raised for
