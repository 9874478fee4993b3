"""Is a cloud's stored data fresh? The one rule behind ``aztags status`` (exit 4), the warning
of every query answered from stale data (:class:`Freshness`), the scheduler's "data stale" alert
and the server's health check: stale when the newest file is older than the limit, unless the
cloud is frozen (AzureGermany, closed in 2021, is never stale).

``now`` is always given by the caller, so the rule is the same in tests and in production.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

from resolver.clouds import Cloud
from resolver.models import SnapshotInfo
from resolver.refs import AtRef, snapshot_day

DEFAULT_MAX_AGE_DAYS = 14


@dataclass(frozen=True, slots=True)
class Staleness:
    """How old a cloud's newest file is, against the limit."""

    stale: bool  # age_days > max_age_days and not frozen
    age_days: int  # days from the file date (else the fetch day) to today (UTC)
    max_age_days: int
    frozen: bool  # the cloud is no longer published: never stale

    @property
    def fresh(self) -> bool:
        return not self.stale

    @property
    def state(self) -> str:
        """``STALE``, ``frozen`` or ``ok``: the state column of ``aztags status``."""
        return "STALE" if self.stale else ("frozen" if self.frozen else "ok")


def staleness(snapshot: SnapshotInfo, cloud: Cloud, max_age_days: int, now: datetime) -> Staleness:
    """The rule: ``age > max_age_days and not frozen``; the age counts whole days from the
    snapshot's file date (else the day it was fetched) to ``now``'s day in UTC."""
    today = (now.astimezone(UTC) if now.tzinfo else now).date()
    age = (today - snapshot_day(snapshot)).days
    return Staleness(age > max_age_days and not cloud.frozen, age, max_age_days, cloud.frozen)


@dataclass(frozen=True, slots=True)
class Freshness:
    """What an answer must tell about the snapshot it was read from (one mechanism for every
    query: :meth:`resolver.query.TagStore.freshness` makes it, the answers carry it, the command
    line prints :func:`resolver.render.render_freshness_lines` on stderr).

    ``stale``: the question was about now (no ``--at``) and the current snapshot is older than
    the limit. ``after_newest``: ``--at`` named a day after the newest stored file, which
    answered. Neither is set for a question about the past.
    """

    cloud: Cloud
    snapshot: SnapshotInfo
    stale: Staleness | None = None
    after_newest: date | None = None

    @property
    def quiet(self) -> bool:
        return self.stale is None and self.after_newest is None


def answer_freshness(
    cloud: Cloud,
    snapshot: SnapshotInfo,
    newest: SnapshotInfo,
    at: AtRef | None,
    max_age_days: int,
    now: datetime,
) -> Freshness:
    """The rule: no ``at``, the current snapshot (``newest``) is judged by :func:`staleness`; an
    ``at`` day after the newest file's day that was answered from it is said; any other ``at``
    asks about the past and is answered as it is."""
    if at is None:
        judged = staleness(snapshot, cloud, max_age_days, now)
        return Freshness(cloud, snapshot, stale=judged if judged.stale else None)
    if at.day is not None and snapshot.id == newest.id and at.day > snapshot_day(newest):
        return Freshness(cloud, snapshot, after_newest=at.day)
    return Freshness(cloud, snapshot)
