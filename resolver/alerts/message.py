"""What delivery passes around: the messages that carry events, and send results.

An event (resolver/alerts/event.py) is one thing a watch saw (its prefixes changed, the cloud's
snapshot was quarantined, a publication was missed, fetching keeps failing, no new file for too
long). Events are stored in the outbox in the transaction that stored the snapshot; a
:class:`Message` groups the pending events of one channel so that one delivery round posts once
per channel. A message keeps its id and its events across attempts (the ``webhook-id`` of every
retry is the same).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from resolver.alerts.event import Event, EventType, new_id


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
