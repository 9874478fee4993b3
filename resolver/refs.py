"""Which stored snapshot a query reads: ``--at YYYY-MM-DD`` or ``--at cn:N``, parsed and resolved.

Parsing is pure and strict (ASCII digits, a real date, a changeNumber SQLite can hold); a text of
the wrong form is a :class:`~resolver.errors.UsageError` (exit 2) that shows the accepted forms.
Resolving picks from a cloud's stored timeline (``cache.history.timeline``): a form that is right
but names nothing stored is a :class:`~resolver.errors.NotFoundError` (exit 3).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from cache.db import read_view
from cache.history import timeline
from resolver.errors import EmptyStoreError, NotFoundError, UsageError
from resolver.models import SnapshotInfo

ACCEPTED_FORMS = (
    "a date YYYY-MM-DD (the snapshot in force that day) or a changeNumber cn:N "
    "(for example --at 2025-01-13 or --at cn:341)"
)
MAX_CHANGE_NUMBER = 2**63 - 1  # SQLite's largest integer
_AT_RE = re.compile(r"cn:(?P<cn>[0-9]+)|(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})", re.ASCII)


@dataclass(frozen=True, slots=True)
class AtRef:
    """A parsed ``--at``: exactly one of ``change_number`` and ``day`` is set."""

    text: str  # as written, stripped
    change_number: int | None = None
    day: date | None = None


def shown(text: str, limit: int = 40) -> str:
    """User text for a message: quoted with escapes (NUL, lone surrogates), long text cut."""
    cut = text if len(text) <= limit else text[:limit] + "..."
    return repr(cut)


def parse_at(at: str | AtRef, today: date | None = None) -> AtRef:
    """``YYYY-MM-DD`` or ``cn:N`` -> :class:`AtRef`. Raises UsageError naming the accepted forms,
    and, when ``today`` (UTC) is given, for a date after it: history cannot answer the future."""
    if isinstance(at, AtRef):
        return _not_future(at, today)
    text = at.strip()
    m = _AT_RE.fullmatch(text)
    if m is None:
        raise UsageError(
            f"--at {shown(at)} is neither a date (YYYY-MM-DD) nor a changeNumber (cn:N); "
            f"give {ACCEPTED_FORMS}."
        )
    if m["cn"] is not None:
        digits = m["cn"]
        if len(digits.lstrip("0")) > 19 or int(digits) > MAX_CHANGE_NUMBER:
            raise UsageError(
                f"--at {shown(at)} names a changeNumber larger than any file can have (at most "
                f"{MAX_CHANGE_NUMBER}); give {ACCEPTED_FORMS}."
            )
        return AtRef(text, change_number=int(digits))
    try:
        day = date.fromisoformat(m["date"])
    except ValueError:
        raise UsageError(f"--at {shown(at)} is not a real date; give {ACCEPTED_FORMS}.") from None
    return _not_future(AtRef(text, day=day), today)


def _not_future(ref: AtRef, today: date | None) -> AtRef:
    if today is not None and ref.day is not None and ref.day > today:
        raise UsageError(
            f"--at {ref.day} is after today ({today}, UTC): no file can say what will be in "
            "force then. Give a date up to today, or leave --at out for the current snapshot."
        )
    return ref


def pick_snapshot(
    timeline: Sequence[SnapshotInfo], at: str | AtRef | None, cloud: str
) -> SnapshotInfo:
    """The snapshot a query reads, from a cloud's accepted snapshots in timeline order: the
    newest (``at`` None), the one with that changeNumber, or the one in force on that day (the
    newest whose file date is on or before it)."""
    ref = None if at is None else parse_at(at)
    if not timeline:
        raise EmptyStoreError(f"No {cloud} snapshot is stored yet.")
    if ref is None:
        return timeline[-1]
    if ref.change_number is not None:
        wanted = ref.change_number
        hits = [s for s in timeline if s.change_number == wanted]
        if hits:
            return hits[-1]
        near = sorted(timeline, key=lambda s: abs(s.change_number - wanted))[:3]
        raise NotFoundError(
            f"No {cloud} snapshot with changeNumber {wanted} is stored.",
            tuple(f"cn:{s.change_number}" for s in near),
        )
    assert ref.day is not None  # parse_at sets one of the two
    on_or_before = [s for s in timeline if snapshot_day(s) <= ref.day]
    if not on_or_before:
        first = timeline[0]
        raise NotFoundError(
            f"--at {ref.day} is before the first stored {cloud} snapshot ({snapshot_day(first)}, "
            f"changeNumber {first.change_number}). Import older files with 'aztags import' "
            "or ask for a later date."
        )
    return max(on_or_before, key=lambda s: (snapshot_day(s), s.seq or 0))


def resolve_at(conn: sqlite3.Connection, cloud: str, at: str | AtRef | None = None) -> SnapshotInfo:
    """:func:`pick_snapshot` over the stored timeline of ``cloud``, read in one read view."""
    ref = None if at is None else parse_at(at)  # a usage error before any read
    with read_view(conn):
        return pick_snapshot(timeline(conn, cloud), ref, cloud)


# Microsoft: "New ranges appearing in the file will not be used in Azure for at least one week."
USABLE_AFTER = timedelta(days=7)


def snapshot_day(info: SnapshotInfo) -> date:
    """The day a snapshot is in force from: its file date, else the day it was fetched."""
    return info.file_date or info.fetched_at.date()
