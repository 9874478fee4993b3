"""``aztags run``: refresh each configured cloud on a schedule, raise the time-based events,
deliver alerts; ``aztags run --once``: one such round for cron and systemd timers.

A round for one cloud (:func:`refresh_round`): fetch (discovery, or the ``source`` the config
pins) and store with the alert recorder in the same transaction; count failed runs in a row
and raise ``source.fetch_failing`` once ``fail_alert_after`` is reached (once per streak); raise
``source.stale`` when the newest file is older than ``stale_after_days`` (once per snapshot);
then deliver what is pending. Nothing that goes wrong in a round ends the loop: it is logged,
recorded, and the next run tries again.

The long-running service (:func:`run_forever`) is APScheduler 3 with one worker thread, so runs
never overlap; each cloud's job runs once at start, then every ``every`` (default 6 h, with up to
10% jitter) or on its ``cron``; missed runs are coalesced into one. A delivery job retries
pending alerts as they fall due. SIGTERM and SIGINT let the job in progress finish, then the
process exits 0.
"""

from __future__ import annotations

import logging
import signal
import sqlite3
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from resolver.alerts.setup import Alerts
from resolver.clouds import Cloud, get_cloud
from resolver.errors import AztagsError, ConfigError, FetchError

if TYPE_CHECKING:
    from cache.outbox import FetchRuns
    from cache.store import SaveOptions
    from resolver.refresh import RefreshResult
    from resolver.sources import HttpSettings

log = logging.getLogger("aztags")

DEFAULT_EVERY = 6 * 3600.0
JITTER = 0.10  # of the interval
DEFAULT_FAIL_ALERT_AFTER = 3
DEFAULT_STALE_AFTER_DAYS = 10
DELIVERY_EVERY = 30.0  # seconds between delivery rounds of the service


@dataclass(frozen=True, slots=True)
class RefreshJob:
    """One ``[[refresh]]`` entry, checked."""

    cloud: Cloud
    every: float | None = DEFAULT_EVERY  # seconds; None when ``cron`` is set
    cron: str | None = None
    source: str | None = None  # a pinned URL or path; None: discovery, as `fetch`
    fail_alert_after: int = DEFAULT_FAIL_ALERT_AFTER
    stale_after_days: int = DEFAULT_STALE_AFTER_DAYS
    # When set, each round also stores the cloud's Discovery API answer (fetch --api), asked
    # through this subscription (AZURE_ACCESS_TOKEN or azure-identity; AZTAGS_ARM_ENDPOINT).
    subscription: str | None = None
    location: str | None = None
    # When set, a prefix in the file this many days without reaching the Discovery API (or in
    # the API this long after leaving the file) raises a source.api_lag event.
    api_lag_alert_days: int | None = None

    def describe(self) -> str:
        when = f"cron {self.cron!r}" if self.cron else f"every {_duration(self.every or 0)}"
        return f"{self.cloud.key} {when}" + (" from the pinned source" if self.source else "")


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def jobs_from_config(entries: Sequence[Mapping[str, Any]], where: str) -> tuple[RefreshJob, ...]:
    """The ``[[refresh]]`` entries as jobs; none configured: the Public cloud every 6 hours.
    A cloud listed twice, both ``every`` and ``cron``, or a cron expression APScheduler cannot
    read is a ConfigError."""
    from resolver.config import parse_duration

    if not entries:
        return (RefreshJob(get_cloud("public")),)
    problems = []
    jobs = []
    seen: set[str] = set()
    for n, entry in enumerate(entries, 1):
        cloud = get_cloud(str(entry["cloud"]))
        label = f"{where}, [[refresh]] #{n} ({cloud.key})"
        if cloud.key in seen:
            problems.append(f"{label}: cloud {cloud.key} is listed twice; keep one entry.")
            continue
        seen.add(cloud.key)
        cron = entry.get("cron")
        if cron is not None and "every" in entry:
            problems.append(f"{label}: give every or cron, not both.")
            continue
        if cron is not None:
            try:
                _cron_trigger(str(cron))
            except ValueError as e:
                problems.append(
                    f"{label}: cron {cron!r} is not a crontab expression ({e}); for example "
                    '"0 */6 * * *" (minute hour day month weekday).'
                )
                continue
        jobs.append(
            RefreshJob(
                cloud=cloud,
                every=None if cron is not None else parse_duration(entry.get("every", "6h")),
                cron=None if cron is None else str(cron),
                source=_text(entry.get("source")),
                fail_alert_after=int(entry.get("fail_alert_after", DEFAULT_FAIL_ALERT_AFTER)),
                stale_after_days=int(entry.get("stale_after_days", DEFAULT_STALE_AFTER_DAYS)),
                subscription=_text(entry.get("subscription")),
                location=_text(entry.get("location")),
                api_lag_alert_days=(
                    int(entry["api_lag_alert_days"]) if "api_lag_alert_days" in entry else None
                ),
            )
        )
    if problems:
        raise ConfigError(problems[0] if len(problems) == 1 else "\n  ".join(problems))
    return tuple(jobs)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _cron_trigger(expression: str) -> Any:
    from apscheduler.triggers.cron import CronTrigger

    return CronTrigger.from_crontab(expression, timezone=UTC)


# -- one round -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CloudRound:
    """What one cloud's refresh did: ``result`` (None: failed, see ``error``) and how many alert
    events it raised."""

    job: RefreshJob
    result: RefreshResult | None
    error: AztagsError | None
    events: int
    # the Discovery API answer stored (or why not), when the job names a subscription
    api_result: RefreshResult | None = None
    api_error: AztagsError | None = None

    @property
    def quarantined(self) -> bool:
        ingest = self.result.ingest if self.result else None
        return ingest is not None and ingest.outcome == "quarantined"


def refresh_round(
    conn: sqlite3.Connection,
    job: RefreshJob,
    alerts: Alerts,
    http: HttpSettings,
    options: SaveOptions,
) -> CloudRound:
    """Refresh one cloud, record the outcome, raise its time-based events. Never raises for a
    failed fetch (the error is in the result); store errors (a read-only database) do raise."""
    from cache import outbox
    from resolver.refresh import refresh_cloud

    now = alerts.now()
    before = outbox.count_events(conn)
    result: RefreshResult | None = None
    error: AztagsError | None = None
    try:
        result = refresh_cloud(
            conn,
            job.cloud,
            http,
            options,
            source=job.source,
            now=now,
            after_save=alerts.recorder(),
        )
    except AztagsError as e:
        error = e
    except Exception as e:  # noqa: BLE001 - a surprise must not end the service
        log.debug("Unexpected error refreshing %s", job.cloud.key, exc_info=True)
        error = FetchError(
            f"unexpected error: {type(e).__name__}: {e}. This is a bug, please report it "
            "with -v output."
        )
    from cache.db import transaction

    with transaction(conn):
        runs = _after_fetch(conn, job, alerts, error, now)
        _stale_check(conn, job, alerts, runs, now)
    _log_round(job, result, error, runs.failures, outbox.count_events(conn) - before)
    api_result, api_error = _api_round(conn, job, http, options, now)
    with transaction(conn):
        _api_lag_check(conn, job, alerts, now)
    events = outbox.count_events(conn) - before
    return CloudRound(job, result, error, events, api_result, api_error)


def _api_round(
    conn: sqlite3.Connection,
    job: RefreshJob,
    http: HttpSettings,
    options: SaveOptions,
    now: datetime,
) -> tuple[RefreshResult | None, AztagsError | None]:
    """The cloud's Discovery API answer, stored on its API timeline, when the job names a
    subscription. A failure is logged and returned, never raised: the file's refresh stands."""
    if job.subscription is None:
        return None, None
    import os

    from resolver.sources.api import ENDPOINT_VARIABLE, ApiRequest, refresh_api

    request = ApiRequest(
        job.cloud, job.subscription, job.location, os.environ.get(ENDPOINT_VARIABLE) or None
    )
    try:
        result = refresh_api(conn, request, http, options, now=now, log=log)
    except AztagsError as e:
        log.warning("refresh %s (Discovery API) failed: %s", job.cloud.key, e)
        return None, e
    ingest = result.ingest
    assert ingest is not None
    log.info(
        "refresh %s (Discovery API): %s changeNumber %d",
        job.cloud.key,
        ingest.outcome,
        ingest.snapshot.change_number,
    )
    return result, None


def _after_fetch(
    conn: sqlite3.Connection,
    job: RefreshJob,
    alerts: Alerts,
    error: AztagsError | None,
    now: datetime,
) -> FetchRuns:
    """The cloud's run record after this fetch (read under the write lock), with the "fetch
    failing" events it calls for."""
    from dataclasses import replace

    from cache import outbox
    from resolver.alerts.record import fetch_failing_event

    runs = outbox.load_fetch_runs(conn, job.cloud.key)
    if error is None:
        runs = replace(
            runs,
            failures=0,
            last_error=None,
            last_attempt=now,
            last_success=now,
            failing_alerted=False,
        )
    else:
        runs = replace(runs, failures=runs.failures + 1, last_error=str(error), last_attempt=now)
        if runs.failures >= job.fail_alert_after and not runs.failing_alerted:
            for watch in _watches_of(alerts, job.cloud):
                event = fetch_failing_event(
                    watch, job.cloud.key, runs.failures, str(error), runs.last_success, now
                )
                outbox.add_event(conn, event, watch.channels)
            runs = replace(runs, failing_alerted=True)
    outbox.save_fetch_runs(conn, runs)
    return runs


def _stale_check(
    conn: sqlite3.Connection, job: RefreshJob, alerts: Alerts, runs: FetchRuns, now: datetime
) -> None:
    from dataclasses import replace

    from cache import outbox
    from cache.history import load_current
    from resolver.alerts.record import stale_event
    from resolver.staleness import staleness

    current = load_current(conn, job.cloud.name)
    if current is None or runs.stale_alerted_snapshot == current.id:
        return
    state = staleness(current, job.cloud, job.stale_after_days, now)
    if state.fresh:
        return
    for watch in _watches_of(alerts, job.cloud):
        event = stale_event(watch, current, state.age_days, job.stale_after_days, now)
        outbox.add_event(conn, event, watch.channels, to_snapshot=current.id)
    outbox.save_fetch_runs(conn, replace(runs, stale_alerted_snapshot=current.id))


def _api_lag_check(
    conn: sqlite3.Connection, job: RefreshJob, alerts: Alerts, now: datetime
) -> None:
    """A ``source.api_lag`` event per watch whose tags hold a prefix in the newest file for
    more than ``api_lag_alert_days`` without reaching the newest API answer (or in the API that
    long after leaving the file); once per (file, API answer) pair."""
    limit = job.api_lag_alert_days
    watches = _watches_of(alerts, job.cloud)
    record = alerts.recorder()
    if limit is None or not watches or record is None:
        return
    from datetime import timedelta

    from cache import outbox
    from resolver.alerts.event import EventType
    from resolver.alerts.record import api_lag_event
    from resolver.alerts.watches import SnapshotView, watched_names
    from resolver.errors import EmptyStoreError
    from resolver.reconcile import lags, reconcile

    try:
        found = reconcile(conn, job.cloud)
    except EmptyStoreError:
        return  # no file or no API answer yet: nothing to compare
    cutoff = (now.astimezone(UTC) if now.tzinfo else now).date() - timedelta(days=limit)
    old = [g for g in lags(conn, found) if g.since < cutoff]
    if not old:
        return
    raised = {
        (s.event.watch, s.from_snapshot, s.to_snapshot)
        for s, _ in outbox.load_events(conn)
        if s.event.type == EventType.API_LAG
    }
    view = SnapshotView(lambda: record.details(conn, found.file), record.profile_tags)
    for watch in watches:
        if (watch.name, found.file.id, found.api.id) in raised:
            continue
        try:
            chosen = watched_names(watch, {g.tag for g in old}, view)
        except AztagsError as e:
            log.warning("watch %s: %s; no api_lag event for it this time.", watch.name, e)
            continue
        mine = [g for g in old if g.tag in chosen and watch.keeps(g.prefix)]
        if not mine:
            continue
        event = api_lag_event(watch, found.file, found.api, mine, limit, now)
        outbox.add_event(
            conn, event, watch.channels, from_snapshot=found.file.id, to_snapshot=found.api.id
        )
        log.info("refresh %s: %s", job.cloud.key, event.summary)


def _watches_of(alerts: Alerts, cloud: Cloud) -> list[Any]:
    return [w for w in alerts.watches if w.cloud == cloud.key]


def _log_round(
    job: RefreshJob,
    result: RefreshResult | None,
    error: AztagsError | None,
    failures: int,
    events: int,
) -> None:
    raised = f"; {events} alert event(s)" if events else ""
    if error is not None:
        log.warning("refresh %s failed (%d in a row): %s%s", job.cloud.key, failures, error, raised)
        return
    assert result is not None
    ingest = result.ingest
    if ingest is None:
        log.info("refresh %s: unchanged on the server%s", job.cloud.key, raised)
        return
    snap = ingest.snapshot
    log.info(
        "refresh %s: %s changeNumber %d (file %s): %d tags changed, +%d -%d prefixes%s",
        job.cloud.key,
        ingest.outcome,
        snap.change_number,
        snap.file_date or "undated",
        ingest.tags_changed + ingest.tags_added + ingest.tags_removed,
        ingest.prefixes_added,
        ingest.prefixes_removed,
        raised,
    )


def run_once(
    db: Path,
    jobs: Sequence[RefreshJob],
    alerts: Alerts,
    http: HttpSettings,
    options: SaveOptions,
    *,
    deliver: bool = True,
) -> list[CloudRound]:
    """One round: every job in turn, then one delivery round."""
    conn = _open(db)
    try:
        rounds = [refresh_round(conn, job, alerts, http, options) for job in jobs]
        if deliver:
            alerts.deliver(conn)
        return rounds
    finally:
        conn.close()


def _open(db: Path) -> sqlite3.Connection:
    from cache.db import open_db

    return open_db(db)


# -- the service -----------------------------------------------------------------------------------


def run_forever(
    db: Path,
    jobs: Sequence[RefreshJob],
    alerts: Alerts,
    http: HttpSettings,
    options: SaveOptions,
    *,
    stop: threading.Event | None = None,
    install_signals: bool = True,
) -> None:
    """Run the schedule until SIGTERM/SIGINT (or ``stop`` is set); the job in progress is
    finished before returning."""
    from apscheduler.executors.pool import ThreadPoolExecutor
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.triggers.interval import IntervalTrigger

    stop = stop or threading.Event()
    if install_signals:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda number, frame: _stop(stop, number))
    scheduler = BackgroundScheduler(
        executors={"default": ThreadPoolExecutor(1)},  # one job at a time: runs never overlap
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        timezone=UTC,
    )
    started = datetime.now(UTC)
    for job in jobs:
        trigger = (
            _cron_trigger(job.cron)
            if job.cron
            else IntervalTrigger(
                seconds=job.every or DEFAULT_EVERY, jitter=(job.every or 0) * JITTER, timezone=UTC
            )
        )
        scheduler.add_job(
            _guarded(_refresh_job(db, job, alerts, http, options), f"refresh {job.cloud.key}"),
            trigger,
            id=f"refresh-{job.cloud.key}",
            next_run_time=started,  # once at start
        )
    if alerts.channels:
        scheduler.add_job(
            _guarded(_delivery_job(db, alerts), "delivery"),
            IntervalTrigger(seconds=DELIVERY_EVERY, timezone=UTC),
            id="deliver",
        )
    log.info(
        "scheduler started: %s; %d watch(es), %d channel(s)",
        ", ".join(j.describe() for j in jobs),
        len(alerts.watches),
        len(alerts.channels),
    )
    scheduler.start()
    try:
        while not stop.wait(1.0):
            pass
    finally:
        log.info("stopping: finishing the job in progress")
        scheduler.shutdown(wait=True)
        log.info("stopped")


def _stop(stop: threading.Event, number: int) -> None:
    log.info("received %s", signal.Signals(number).name)
    stop.set()


def _guarded(job: Callable[[], None], name: str) -> Callable[[], None]:
    """A job that logs its failure instead of raising (APScheduler would only log a traceback)."""

    def run() -> None:
        try:
            job()
        except AztagsError as e:
            log.error("%s failed: %s", name, e)
        except Exception as e:  # noqa: BLE001 - the loop survives everything
            log.error("%s failed: unexpected error: %s: %s", name, type(e).__name__, e)
            log.debug("traceback", exc_info=True)

    return run


def _refresh_job(
    db: Path, job: RefreshJob, alerts: Alerts, http: HttpSettings, options: SaveOptions
) -> Callable[[], None]:
    def run() -> None:
        conn = _open(db)  # per run: the worker thread's own connection
        try:
            refresh_round(conn, job, alerts, http, options)
            if alerts.channels:
                alerts.deliver(conn)
        finally:
            conn.close()

    return run


def _delivery_job(db: Path, alerts: Alerts) -> Callable[[], None]:
    def run() -> None:
        conn = _open(db)
        try:
            from cache import outbox

            if outbox.pending_rows(conn) or outbox.unassigned_channels(conn):
                alerts.deliver(conn)
        finally:
            conn.close()

    return run
