"""The delivery worker: pending events -> one message per channel -> attempts until sent or dead.

A round (:func:`deliver`):

1. groups every event waiting for a channel into a message for that channel (so fifty watches
   make one post per channel, not fifty); a channel disabled by its receiver gets its message
   as a dead letter at once;
2. makes one attempt per due message. Before sending, it claims the message for a lease (its
   ``next_attempt_at`` moves past the attempt's timeout), so two processes delivering at once
   do not both send it, and one killed mid-attempt leaves it to be sent again after the lease:
   delivery is at least once, and every attempt carries the same message and event ids;
3. after a failed attempt, waits ``retry_delays[n]`` (with jitter; longer if the receiver's
   ``Retry-After`` says so) before the next; after ``max_attempts`` it is a dead letter. A
   permanent refusal (4xx other than 408/429) is a dead letter at once; 410 Gone (Slack
   ``no_service``) also disables the channel until ``aztags alerts retry``;
4. sleeps for a retry that falls due within ``round_wait`` seconds, and leaves later ones to the
   next round (``aztags run`` runs one as soon as they are due).
"""

from __future__ import annotations

import logging
import random
import sqlite3
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from cache import outbox
from cache.db import transaction
from resolver.alerts.event import new_id
from resolver.alerts.message import Message, SendResult, SendStatus
from resolver.errors import AztagsError

log = logging.getLogger("aztags")

Channel = Mapping[str, Any]  # a checked [[channel]] entry of the config file
Sender = Callable[..., SendResult]  # (channel, message, *, timeout) -> SendResult

# Standard Webhooks' schedule after the first attempt: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h,
# 20 h, 24 h (about three days in all).
DEFAULT_DELAYS = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 50400.0, 72000.0, 86400.0)
MAX_RETRY_AFTER = 86400.0  # a Retry-After beyond a day is read as a day


@dataclass(frozen=True, slots=True)
class Policy:
    """How hard to try. From the config file's ``[alerts]`` table (:func:`policy_from_config`)."""

    max_attempts: int = len(DEFAULT_DELAYS) + 1
    delays: tuple[float, ...] = DEFAULT_DELAYS
    jitter: float = 0.1  # each delay is stretched by up to this fraction, at random
    round_wait: float = 10.0  # seconds a round waits for retries that fall due
    timeout: float = 15.0  # per attempt, unless the channel sets its own
    events_per_message: int = 100

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1 = the first)."""
        base = self.delays[min(attempt, len(self.delays)) - 1] if self.delays else 0.0
        wait = base * (1 + rng.uniform(0, self.jitter))
        return max(wait, min(retry_after or 0.0, MAX_RETRY_AFTER))


def policy_from_config(section: Mapping[str, Any]) -> Policy:
    from resolver.config import parse_duration

    policy = Policy()
    delays = section.get("retry_delays")
    return Policy(
        max_attempts=int(section.get("max_attempts", policy.max_attempts)),
        delays=tuple(parse_duration(d) for d in delays) if delays else policy.delays,
        round_wait=float(section.get("round_wait", policy.round_wait)),
    )


@dataclass(slots=True)
class Attempt:
    """One attempt to send one message on one channel, as the delivery report lists it."""

    message: str
    channel: str
    attempt: int
    events: int
    status: SendStatus
    detail: str
    outcome: str  # sent | retrying | dead | disabled


@dataclass(slots=True)
class Report:
    """What one round did, attempt by attempt."""

    attempts: list[Attempt] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)  # channels named by events, not configured

    @property
    def sent(self) -> int:
        return sum(a.outcome == "sent" for a in self.attempts)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def deliver(
    conn: sqlite3.Connection,
    channels: Mapping[str, Channel],
    *,
    policy: Policy | None = None,
    send: Sender | None = None,
    now: Callable[[], datetime] = _utcnow,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
) -> Report:
    """One delivery round over the outbox (see the module doc). ``channels``: the configured
    ``[[channel]]`` entries by name. Never raises for a failed send: the outbox records it."""
    if send is None:
        from resolver.alerts.channels import send as send_any

        send = send_any
    policy = policy or Policy()
    rng = rng or random.Random()
    report = Report()
    _group(conn, channels, policy, now(), report)
    deadline = now() + timedelta(seconds=policy.round_wait)
    while True:
        for row in outbox.due_messages(conn, now()):
            if row.channel in channels:
                _attempt(conn, row, channels[row.channel], policy, send, now, rng, report)
        upcoming = [
            m.next_attempt
            for m in outbox.pending_rows(conn)
            if m.channel in channels and m.next_attempt <= deadline
        ]
        if not upcoming:
            return report
        wait = (min(upcoming) - now()).total_seconds()
        if wait > 0:
            sleep(wait)


def _group(
    conn: sqlite3.Connection,
    channels: Mapping[str, Channel],
    policy: Policy,
    moment: datetime,
    report: Report,
) -> None:
    with transaction(conn):
        disabled = outbox.disabled_channels(conn)
        for channel in outbox.unassigned_channels(conn):
            if channel not in channels:
                report.waiting.append(channel)
                log.info(
                    "alerts for channel %r wait: the config file has no [[channel]] of that name "
                    "(add it back, or see 'aztags alerts list --pending').",
                    channel,
                )
                continue
            events = outbox.unassigned_events(conn, channel)
            size = max(1, policy.events_per_message)
            for start in range(0, len(events), size):
                if channel in disabled:
                    since, reason = disabled[channel]
                    outbox.add_message(
                        conn,
                        new_id("msg"),
                        channel,
                        events[start : start + size],
                        moment,
                        state="dead",
                        error=_disabled_text(channel, since, reason),
                    )
                else:
                    outbox.add_message(
                        conn, new_id("msg"), channel, events[start : start + size], moment
                    )


def _disabled_text(channel: str, since: datetime, reason: str) -> str:
    return (
        f"channel {channel} is disabled since {since:%Y-%m-%d %H:%M} UTC ({reason}); "
        "'aztags alerts retry' enables it again"
    )


def _attempt(
    conn: sqlite3.Connection,
    row: outbox.MessageRow,
    channel: Channel,
    policy: Policy,
    send: Sender,
    now: Callable[[], datetime],
    rng: random.Random,
    report: Report,
) -> None:
    from resolver.alerts.channels import timeout_for

    timeout = timeout_for(channel, policy.timeout)
    started = now()
    with transaction(conn):
        number = outbox.claim_message(
            conn, row.id, started, started + timedelta(seconds=2 * timeout + 1)
        )
    if number is None:  # another process took it
        return
    events = tuple(outbox.events_of_message(conn, row.id))
    message = Message(row.id, row.channel, events, row.created, number)
    try:
        result = send(channel, message, timeout=timeout)
    except AztagsError as e:  # a secret that cannot be read...: fixable, so retried
        result = SendResult(SendStatus.RETRY, str(e))
    except Exception as e:  # noqa: BLE001 - one channel's surprise must not stop the round
        log.debug("Unexpected error sending %s", row.id, exc_info=True)
        result = SendResult(SendStatus.RETRY, f"unexpected error: {type(e).__name__}")
    moment = now()
    with transaction(conn):
        outcome = _record(conn, row, number, result, policy, moment, rng)
    report.attempts.append(
        Attempt(row.id, row.channel, number, len(events), result.status, result.detail, outcome)
    )
    log_line = "alert %s to %s (%d event(s), attempt %d): %s: %s"
    # INFO: `aztags run` logs every attempt; fetch and import say what failed once, on stderr
    # (render_delivery_lines of the round's report)
    log.info(log_line, row.id, row.channel, len(events), number, outcome, result.detail)


def _record(
    conn: sqlite3.Connection,
    row: outbox.MessageRow,
    number: int,
    result: SendResult,
    policy: Policy,
    moment: datetime,
    rng: random.Random,
) -> str:
    if result.status == SendStatus.SENT:
        outbox.finish_message(conn, row.id, "sent", moment, None)
        return "sent"
    if result.status == SendStatus.RETRY:
        if number >= policy.max_attempts:
            error = f"gave up after {number} attempts: {result.detail}"
            outbox.finish_message(conn, row.id, "dead", moment, error)
            return "dead"
        wait = policy.delay(number, result.retry_after, rng)
        outbox.postpone_message(conn, row.id, moment + timedelta(seconds=wait), result.detail)
        return "retrying"
    outbox.finish_message(conn, row.id, "dead", moment, result.detail)
    if result.status == SendStatus.PERMANENT:
        return "dead"
    outbox.disable_channel(conn, row.channel, moment, result.detail)
    text = _disabled_text(row.channel, moment, result.detail)
    for other in outbox.pending_messages_of(conn, row.channel):
        outbox.finish_message(conn, other, "dead", moment, text)
    return "disabled"


def retry(
    conn: sqlite3.Connection, ids: list[str] | None, now: datetime
) -> list[outbox.MessageRow]:
    """Dead letters back in the queue, due now (those named by message or event id, or all),
    and their channels enabled again. Unknown ids raise NotFoundError."""
    from resolver.errors import NotFoundError

    with transaction(conn):
        if ids:
            known = outbox.message_ids_and_events(conn)
            unknown = [i for i in ids if i not in known]
            if unknown:
                raise NotFoundError(
                    f"No alert event or message with id {', '.join(unknown)}; "
                    "'aztags alerts list --dead' shows the ids."
                )
        found = outbox.requeue_messages(conn, ids or None, now)
        channels = {m.channel for m in found}
        if not ids:  # everything: channels disabled with nothing dead come back too
            channels |= set(outbox.disabled_channels(conn))
        outbox.enable_channels(conn, channels)
    return found
