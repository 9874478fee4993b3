"""The delivery worker (issue 10): one message per channel per round, retries with backoff and
Retry-After, dead letters, disabled channels, the same ids on every attempt, no double sends.

The sender here is a scripted function (the channels have their own tests against real
receivers); the clock and sleep are injected, so backoff is checked without waiting.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cache import outbox
from cache.db import open_db, transaction
from resolver.alerts.deliver import Policy, deliver, retry
from resolver.alerts.event import Event, EventType, new_id
from resolver.alerts.message import SendResult, SendStatus
from resolver.errors import NotFoundError

T0 = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)
CHANNELS = {"ops": {"name": "ops", "type": "webhook"}, "chat": {"name": "chat", "type": "slack"}}


class Clock:
    def __init__(self) -> None:
        self.now = T0
        self.slept: list[float] = []

    def __call__(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += timedelta(seconds=seconds)


class Script:
    """Answers attempts in order (the last answer repeats); records (channel, message)."""

    def __init__(self, *answers: SendResult) -> None:
        self.answers = list(answers) or [SendResult(SendStatus.SENT, "200")]
        self.calls: list[tuple[str, str, int, tuple[str, ...]]] = []

    def __call__(self, channel, message, *, timeout):
        self.calls.append(
            (channel["name"], message.id, message.attempt, tuple(e.id for e in message.events))
        )
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


def _event(conn, watch: str, channels: list[str], when: datetime = T0) -> str:
    event = Event(new_id("evt"), EventType.CHANGED, when, "public", watch, f"{watch} changed", {})
    with transaction(conn):
        outbox.add_event(conn, event, channels, from_snapshot=1, to_snapshot=2, queued=True)
    return event.id


@pytest.fixture
def conn(tmp_path: Path):
    return open_db(tmp_path / "a.db")


def _run(conn, script, clock, **policy):
    policy.setdefault("round_wait", 0)
    return deliver(
        conn,
        CHANNELS,
        policy=Policy(**policy),
        send=script,
        now=clock,
        sleep=clock.sleep,
        rng=random.Random(1),
    )


def _states(conn) -> dict[str, str]:
    return {
        d.channel: d.message.state if d.message else "unassigned"
        for d in outbox.list_deliveries(conn, None, 100)
        if d.channel
    }


def test_fifty_watches_make_one_message_per_channel(conn):
    ids = [_event(conn, f"w{i}", ["ops", "chat"]) for i in range(50)]
    script, clock = Script(), Clock()
    report = _run(conn, script, clock)
    assert sorted(c[0] for c in script.calls) == ["chat", "ops"]
    assert all(c[3] == tuple(ids) for c in script.calls)  # oldest first, all fifty
    assert report.sent == 2 and set(_states(conn).values()) == {"sent"}
    assert _run(conn, script, clock).attempts == []  # nothing sent twice


def test_a_transient_failure_is_retried_with_the_same_ids(conn):
    event = _event(conn, "w", ["ops"])
    script = Script(SendResult(SendStatus.RETRY, "HTTP 503"), SendResult(SendStatus.SENT, "200"))
    clock = Clock()
    report = _run(conn, script, clock, round_wait=60, delays=(5.0,), jitter=0.0)
    assert clock.slept == [5.0]  # the first delay, waited within the round
    assert [(c[1], c[2]) for c in script.calls] == [
        (script.calls[0][1], 1),
        (script.calls[0][1], 2),
    ]
    assert all(c[3] == (event,) for c in script.calls)
    assert [a.outcome for a in report.attempts] == ["retrying", "sent"]


def test_a_retry_due_after_the_round_is_left_for_the_next_round(conn):
    _event(conn, "w", ["ops"])
    script, clock = Script(SendResult(SendStatus.RETRY, "timeout")), Clock()
    _run(conn, script, clock, round_wait=10, delays=(300.0,), jitter=0.0)
    assert len(script.calls) == 1 and clock.slept == []
    [row] = outbox.pending_rows(conn)
    assert row.next_attempt == T0 + timedelta(seconds=300) and row.last_error == "timeout"
    assert _states(conn) == {"ops": "pending"}
    clock.now += timedelta(seconds=299)
    _run(conn, script, clock)
    assert len(script.calls) == 1  # not due yet
    clock.now += timedelta(seconds=1)
    _run(conn, script, clock)
    assert len(script.calls) == 2


def test_retry_after_longer_than_the_backoff_is_honoured(conn):
    _event(conn, "w", ["ops"])
    script = Script(SendResult(SendStatus.RETRY, "HTTP 429", retry_after=120.0))
    clock = Clock()
    _run(conn, script, clock, delays=(5.0,), jitter=0.0)
    [row] = outbox.pending_rows(conn)
    assert row.next_attempt == T0 + timedelta(seconds=120)


def test_backoff_grows_with_jitter_and_ends_in_dead_letters(conn):
    _event(conn, "w", ["ops"])
    script, clock = Script(SendResult(SendStatus.RETRY, "HTTP 500")), Clock()
    waits = []
    for _ in range(4):
        before = clock.now
        _run(conn, script, clock, max_attempts=4, delays=(10.0, 100.0, 1000.0), jitter=0.1)
        rows = outbox.pending_rows(conn)
        if not rows:
            break
        waits.append((rows[0].next_attempt - before).total_seconds())
        clock.now = rows[0].next_attempt
    assert 10 <= waits[0] <= 11 and 100 <= waits[1] <= 110 and 1000 <= waits[2] <= 1100
    assert len(script.calls) == 4 and _states(conn) == {"ops": "dead"}
    [dead] = outbox.list_deliveries(conn, "dead", 10)
    assert dead.message.last_error == "gave up after 4 attempts: HTTP 500"


def test_a_permanent_refusal_is_a_dead_letter_at_once_and_retry_requeues_it(conn):
    event = _event(conn, "w", ["ops"])
    script, clock = Script(SendResult(SendStatus.PERMANENT, "HTTP 400: bad payload")), Clock()
    _run(conn, script, clock)
    assert _states(conn) == {"ops": "dead"} and len(script.calls) == 1
    requeued = retry(conn, [event], clock())
    assert [m.channel for m in requeued] == ["ops"]
    script.answers = [SendResult(SendStatus.SENT, "200")]
    _run(conn, script, clock)
    assert _states(conn) == {"ops": "sent"}
    assert script.calls[0][1] == script.calls[1][1]  # the same message id after the retry
    assert script.calls[1][2] == 1  # a fresh count of attempts


def test_retry_of_an_unknown_id_names_it(conn):
    with pytest.raises(NotFoundError, match="No alert event or message with id evt_nope"):
        retry(conn, ["evt_nope"], T0)


def test_410_disables_the_channel_until_retry(conn):
    _event(conn, "w", ["ops", "chat"])
    script = Script(SendResult(SendStatus.DISABLE, "HTTP 410 Gone"))
    clock = Clock()
    _run(conn, script, clock)
    later = _event(conn, "w2", ["ops", "chat"], T0 + timedelta(minutes=1))
    script.answers = [SendResult(SendStatus.SENT, "200")]
    _run(conn, script, clock)
    calls = [c[0] for c in script.calls]
    assert calls.count("chat") == 1  # the disabled channel is not tried again
    dead = {
        (d.event.id, d.channel): d.message.last_error
        for d in outbox.list_deliveries(conn, "dead", 10)
    }
    assert "channel chat is disabled since" in dead[(later, "chat")]
    assert "'aztags alerts retry' enables it again" in dead[(later, "chat")]
    retry(conn, None, clock())
    _run(conn, script, clock)
    assert _states(conn) == {"ops": "sent", "chat": "sent"}


def test_a_channel_missing_from_the_config_keeps_its_alerts_waiting(conn):
    _event(conn, "w", ["pager"])
    script, clock = Script(), Clock()
    report = _run(conn, script, clock)
    assert report.waiting == ["pager"] and script.calls == []
    assert [d.channel for d in outbox.list_deliveries(conn, "pending", 10)] == ["pager"]


def test_a_claimed_message_is_not_sent_by_a_second_process(conn, tmp_path):
    _event(conn, "w", ["ops"])
    other = open_db(tmp_path / "a.db")
    seen = []

    def slow_send(channel, message, *, timeout):
        # while this attempt runs, another process's round finds nothing due
        seen.append(len(_run(other, Script(), Clock()).attempts))
        return SendResult(SendStatus.SENT, "200")

    _run(conn, slow_send, Clock())
    assert seen == [0] and _states(conn) == {"ops": "sent"}


def test_an_attempt_cut_short_is_sent_again_after_its_lease(conn):
    """A process killed mid-attempt leaves the message claimed; it is due again after the
    lease (twice the timeout plus 1 s), with the same id, and then sent."""
    _event(conn, "w", ["ops"])
    clock = Clock()

    def killed(channel, message, *, timeout):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _run(conn, killed, clock)
    script = Script()
    _run(conn, script, clock)
    assert script.calls == []
    clock.now += timedelta(seconds=2 * 15 + 1)
    _run(conn, script, clock)
    assert [c[2] for c in script.calls] == [2] and _states(conn) == {"ops": "sent"}


def test_an_exception_in_a_channel_is_a_retry_not_a_crash(conn):
    _event(conn, "w", ["ops"])

    def broken(channel, message, *, timeout):
        raise ValueError("bug")

    report = _run(conn, broken, Clock())
    assert report.attempts[0].outcome == "retrying"
    assert report.attempts[0].detail == "unexpected error: ValueError"
