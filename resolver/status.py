"""``aztags status``: the current snapshot of each cloud's timeline and how fresh it is (the rule
itself is resolver/staleness.py), also read by the server's status and health endpoints."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from cache.db import read_view
from cache.history import load_current
from resolver.clouds import Cloud
from resolver.errors import EmptyStoreError
from resolver.models import SnapshotInfo
from resolver.staleness import Staleness, staleness
from resolver.timelines import API, FILE, check_source, nothing_stored, timeline_key


@dataclass(frozen=True, slots=True)
class CloudStatus:
    """One line of ``aztags status``: the current snapshot of a cloud's timeline (its file, or
    its Discovery API answers: ``source``) and how fresh it is. An API answer has no file date:
    its age counts from the day it was fetched."""

    cloud: Cloud
    snapshot: SnapshotInfo
    staleness: Staleness
    source: str = FILE

    @property
    def timeline(self) -> str:
        """The timeline's storage key: ``"Public"`` or ``"Public@api"``."""
        return timeline_key(self.cloud, self.source)


def cloud_status(
    conn: sqlite3.Connection,
    clouds: Iterable[Cloud],
    max_age_days: int,
    now: datetime,
    *,
    source: str = FILE,
) -> list[CloudStatus]:
    """The current snapshot of each cloud's ``source`` timeline that has one, with its
    staleness, read in one view. Raises EmptyStoreError when none of them has a snapshot."""
    source = check_source(source)
    with read_view(conn):
        current = [(c, load_current(conn, timeline_key(c, source))) for c in clouds]
    found = [
        CloudStatus(c, info, staleness(info, c, max_age_days, now), source)
        for c, info in current
        if info is not None
    ]
    if not found:
        raise nothing_stored(source)
    return found


@dataclass(frozen=True, slots=True)
class StatusReport:
    """``aztags status``: the timeline asked about (``judged``: its staleness decides the exit
    code), and per cloud the newest snapshot of the other timeline (``alongside``), so that the
    newest file and the newest API answer are shown together."""

    source: str
    judged: tuple[CloudStatus, ...]
    alongside: tuple[CloudStatus, ...]


def status_report(
    conn: sqlite3.Connection,
    clouds: Iterable[Cloud],
    max_age_days: int,
    now: datetime,
    *,
    source: str = FILE,
) -> StatusReport:
    """:func:`cloud_status` of ``source`` and of the other timeline, read in one view. Raises
    EmptyStoreError when ``source`` has nothing stored for any of the clouds (saying so when the
    other timeline has)."""
    source = check_source(source)
    other = API if source == FILE else FILE
    wanted = tuple(clouds)
    with read_view(conn):
        try:
            beside = cloud_status(conn, wanted, max_age_days, now, source=other)
        except EmptyStoreError:
            beside = []
        try:
            judged = cloud_status(conn, wanted, max_age_days, now, source=source)
        except EmptyStoreError as e:
            if not beside:
                raise
            raise EmptyStoreError(
                f"{e} Only {'Discovery API answers' if other == API else 'files'} are stored: "
                f"add --source {other}."
            ) from None
    return StatusReport(source, tuple(judged), tuple(beside))
