"""``/metrics``: Prometheus text format from a registry of the app's own (never the process-wide
default one, so two apps in one process, as in the tests, count apart).

Two kinds of series:

- Requests, counted by :class:`RequestMetrics` (a plain ASGI middleware, the outermost one, so
  it sees the 401s and 413s of the guard too): ``aztags_http_requests_total`` by method, route
  TEMPLATE (``/feeds/{name}``, never the raw path: a firewall asking for a thousand tags makes
  one series, not a thousand) and status; ``aztags_http_request_duration_seconds`` by method
  and route. A path no route matches is counted as route ``<unmatched>``.
- The store, read at each scrape by :class:`StoreCollector` in one read view: each cloud's
  current snapshot (age, staleness, changeNumber), the scheduler's last fetch per cloud
  (``fetch_runs``), alert deliveries pending and dead per channel. A database that cannot be
  read gives ``aztags_database_up 0`` and no store series, never a failed scrape.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from datetime import time as day_start
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

log = logging.getLogger("aztags")

UNMATCHED = "<unmatched>"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Seconds: a 304 or a cached feed answers in about a millisecond, a cold profile feed of the
# full Public file in a few hundred.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Any]
Send = Callable[[Message], Any]
ASGIApp = Callable[[Scope, Receive, Send], Any]


class Metrics:
    """The app's registry and its request series."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "aztags_http_requests",
            "HTTP requests answered, by method, route template and status.",
            ("method", "route", "status"),
            registry=self.registry,
        )
        self.durations = Histogram(
            "aztags_http_request_duration_seconds",
            "Time to answer an HTTP request (to the last byte of the body), by route template.",
            ("method", "route"),
            buckets=BUCKETS,
            registry=self.registry,
        )
        # (method, route, status) -> its counter and histogram, as labels() returns them
        self._series: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        series = self._series.get((method, route, status))
        if series is None:  # labels() per request was a tenth of a 304's time in the app
            labelled = method if method in METHODS else "other"
            series = (
                self.requests.labels(labelled, route, str(status)),
                self.durations.labels(labelled, route),
            )
            if len(self._series) < 4096:  # methods, route templates and statuses: few
                self._series[(method, route, status)] = series
        series[0].inc()
        series[1].observe(seconds)


def route_template(scope: Scope, asked: Scope, routes: Iterable[Any]) -> str:
    """The template of the route that answered (set in ``scope`` by routing), else the first
    route matching the request as ``asked`` (a request the guard refused before routing, a
    mount such as /static), else UNMATCHED."""
    route = scope.get("route")
    if route is None:
        from starlette.routing import Match

        for candidate in routes:
            match, _ = candidate.matches(asked)
            if match == Match.FULL:
                route = candidate
                break
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    return str(path) if path else UNMATCHED


class RequestMetrics:
    """ASGI middleware: counts and times every HTTP request into ``metrics``."""

    def __init__(self, app: ASGIApp, metrics: Metrics, routes: Callable[[], Iterable[Any]]):
        self.app = app
        self.metrics = metrics
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        asked = dict(scope)  # routing rewrites the scope (path params, a mount's root path)
        status = 500  # what the client gets when the app fails before it answers

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            try:
                route = route_template(scope, asked, self.routes())
                self.metrics.observe(
                    scope.get("method", ""), route, status, time.perf_counter() - start
                )
            except Exception as e:  # noqa: BLE001 - counting never fails a request
                log.warning("metrics: could not count a request: %s", e)


class StoreCollector(Collector):
    """The store's series, read at each scrape (see the module docstring)."""

    def __init__(self, db: Any, now: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self.db = db
        self.now = now

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "aztags_database_up", "1 when the server could read its database at this scrape."
        )
        try:
            families = self._read()
        except Exception as e:  # noqa: BLE001 - a scrape reports it, the log says why
            log.warning("metrics: the database could not be read: %s", e)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _read(self) -> list[Metric]:
        from cache import outbox
        from cache.history import load_current
        from resolver.clouds import CLOUDS
        from resolver.refs import snapshot_day
        from resolver.staleness import staleness

        now = self.now()
        age = _gauge(
            "aztags_snapshot_age_seconds",
            "Age of each cloud's current snapshot: from its file date (else its fetch day), "
            "00:00 UTC, to now.",
        )
        stale = _gauge(
            "aztags_snapshot_stale",
            "1 when the cloud's current snapshot is older than the server's max-age-days.",
        )
        change = _gauge(
            "aztags_snapshot_change_number", "changeNumber of each cloud's current snapshot."
        )
        fetched = _gauge(
            "aztags_snapshot_fetched_timestamp_seconds",
            "When each cloud's current snapshot was fetched or imported (Unix time).",
        )
        fetch_ok = _gauge(
            "aztags_fetch_last_ok",
            "1 when the scheduler's last fetch of the cloud succeeded, 0 when it failed.",
        )
        failures = _gauge(
            "aztags_fetch_failures",
            "Scheduled fetches of the cloud that failed in a row (0 after a success).",
        )
        attempt = _gauge(
            "aztags_fetch_last_attempt_timestamp_seconds",
            "When the scheduler last tried to fetch the cloud (Unix time).",
        )
        success = _gauge(
            "aztags_fetch_last_success_timestamp_seconds",
            "When a scheduled fetch of the cloud last succeeded (Unix time).",
        )
        totals = _gauge(
            "aztags_alerts",
            "Alert deliveries (event x channel) pending or dead, all channels together.",
            "state",
        )
        alerts = _gauge(
            "aztags_alert_deliveries",
            "Alert deliveries (event x channel) not sent yet (pending) or given up (dead).",
            "channel",
            "state",
        )
        with self.db.view() as conn:
            for cloud in CLOUDS:
                snapshot = load_current(conn, cloud.name)
                if snapshot is None:
                    continue
                start = datetime.combine(snapshot_day(snapshot), day_start(), tzinfo=UTC)
                state = staleness(snapshot, cloud, self.db.max_age_days, now)
                age.add_metric([cloud.key], max(0.0, (now - start).total_seconds()))
                stale.add_metric([cloud.key], int(state.stale))
                change.add_metric([cloud.key], snapshot.change_number)
                fetched.add_metric([cloud.key], snapshot.fetched_at.timestamp())
            counts: dict[tuple[str, str], int] = {}
            if outbox.has_outbox(conn):  # a database of schema version 2 has no outbox yet
                counts = outbox.delivery_counts(conn)
                for runs in outbox.all_fetch_runs(conn):
                    failures.add_metric([runs.cloud], runs.failures)
                    if runs.last_attempt is not None:
                        fetch_ok.add_metric([runs.cloud], int(runs.failures == 0))
                        attempt.add_metric([runs.cloud], runs.last_attempt.timestamp())
                    if runs.last_success is not None:
                        success.add_metric([runs.cloud], runs.last_success.timestamp())
        for (channel, state_name), count in sorted(counts.items()):
            alerts.add_metric([channel, state_name], count)
        for state_name in ("pending", "dead"):
            total = sum(n for (_, s), n in counts.items() if s == state_name)
            totals.add_metric([state_name], total)
        return [age, stale, change, fetched, fetch_ok, failures, attempt, success, totals, alerts]

    def describe(self) -> Iterable[Metric]:
        return []  # read at scrape time only (registering must not read the database)


def _gauge(name: str, text: str, *labels: str) -> GaugeMetricFamily:
    """A gauge family of the store's series, labelled by cloud unless ``labels`` say otherwise."""
    return GaugeMetricFamily(name, text, labels=list(labels or ("cloud",)))


def install(app: Any, db: Any) -> Metrics:
    """The app's metrics: its registry with the store's series, and the request middleware
    (outermost: added last)."""
    metrics = Metrics()
    metrics.registry.register(StoreCollector(db))
    app.add_middleware(RequestMetrics, metrics=metrics, routes=lambda: app.router.routes)
    return metrics
