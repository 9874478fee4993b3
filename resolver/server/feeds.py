"""Feeds that firewalls poll: ``/feeds/{tag}.{format}`` and ``/feeds/profile/{name}.{format}``.

The format is what follows the LAST dot (tag names contain dots: ``AzureFrontDoor.Frontend.txt``);
``txt`` is the ``plain`` export format (EDL-compatible), every ``aztags export`` format works.
A feed never answers 200 with an empty or partial list when something is wrong: an unknown tag
or profile is 404, no snapshot 503, a profile rule whose tag the file lacks 404 (firewalls keep
their last list on an error status but apply an empty 200). A list longer than a device's
documented limit says so in the ``X-Aztags-Warning`` header and in the log.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from resolver.errors import NotFoundError
from resolver.exports import ExportRequest, ExportResult, export, get_format
from resolver.server.database import Database, profiles_digest
from resolver.server.responses import (
    cached,
    conditional,
    etag_for,
    last_modified,
    matches,
    validators,
    with_validators,
)

log = logging.getLogger("aztags")

ALIASES = {"txt": "plain"}
Rendered = tuple[bytes, str, tuple[tuple[str, str], ...]]  # body, media type, headers
MEDIA = {"json": "application/json", "csv": "text/csv; charset=utf-8"}
# Entries a device takes from one feed (vendor documentation): PAN-OS 7.1 capacity, FortiGate threat
# feeds before 7.4.4. Longer feeds are still served, with a warning.
# A query parameter is text: Literal[4, 6] of integers matches none of it (?family=6 was a 400).
Family = Annotated[Literal["4", "6"] | None, Query(description="4 or 6: one address family")]
LIMITS = {
    "paloalto-edl": (50_000, "PAN-OS EDL capacity on many models (50,000 entries)"),
    "plain": (131_072, "FortiGate threat feed limit before 7.4.4 (131,072 lines)"),
}


def _split(name: str) -> tuple[str, str]:
    base, dot, ext = name.rpartition(".")
    if not dot or not base:
        raise NotFoundError(
            f"Feed {name!r} names no format: add one after a dot, e.g. /feeds/{name}.txt "
            f"(plain, EDL-compatible) or /feeds/{name}.nftables."
        )
    fmt = ALIASES.get(ext.lower(), ext.lower())
    try:
        get_format(fmt)
    except Exception:  # noqa: BLE001 - an unknown format in a URL is a 404, not a 400
        raise NotFoundError(
            f"Unknown feed format {ext!r} in {name!r}: use .txt or an export format "
            "('aztags export --list-formats')."
        ) from None
    return base, fmt


@dataclass(frozen=True, slots=True)
class FeedAsk:
    """A feed question whose parameters FastAPI has validated: what to export, from which
    cloud, and what of it goes into the ETag."""

    export_request: ExportRequest
    cloud: str
    key: tuple[object, ...]

    def etag_parts(self) -> tuple[object, ...]:
        if self.export_request.profile:  # an edited profile file is another answer
            return (*self.key, profiles_digest(self.export_request.profile_dirs))
        return self.key


async def _respond(request: Request, ask: FeedAsk) -> Response:
    """The feed. What firewalls mostly ask (a 304, or a list already rendered for this
    snapshot) is answered on the event loop: one short read of which snapshot is current
    (about 50 us) and no hop to a worker thread. Rendering a new list goes to a worker.
    The question is remembered for :class:`FeedShortcut` once it has been answered."""
    response = _kept_answer(
        request.app.state.db, ask, request.url.path, request.headers.get("if-none-match")
    )
    if response is None:
        response = await run_in_threadpool(_respond_in_worker, request, ask)
    scope = request.scope
    request.app.state.feeds_asked.put(
        (scope["path"], scope["query_string"]), (ask, request.url.path, scope.get("route"))
    )
    return response


def _kept_answer(db: Database, ask: FeedAsk, path: str, wanted: str | None) -> Response | None:
    """A 304, or the feed as rendered before for the current snapshot; None: render it."""
    parts = ask.etag_parts()
    with db.view() as conn:
        snapshot = db.store(conn, ask.cloud).snapshot()
        etag, unchanged = conditional(path, wanted, snapshot, *parts)
        if unchanged is not None:
            return unchanged
        kept = _RENDERED.get(etag)
    if kept is None:
        return None
    body, media, headers = kept
    response = Response(body, media_type=media, headers=dict(headers))
    return with_validators(response, snapshot, etag)


def _respond_in_worker(request: Request, ask: FeedAsk) -> Response:
    """The feed read and rendered in one read view (the snapshot may have moved on since the
    event loop looked: the ETag is computed again from the snapshot exported)."""
    db = request.app.state.db
    parts = ask.etag_parts()
    with db.view() as conn:
        store = db.store(conn, ask.cloud)
        snapshot = store.snapshot()
        etag, unchanged = cached(request, snapshot, *parts)
        if unchanged is not None:
            return unchanged
        kept = _RENDERED.get(etag)
        if kept is None:
            result = export(store, ask.export_request)
    if kept is None:
        kept = _render(request, result)
        _RENDERED.put(etag, kept)
    body, media, headers = kept
    response = Response(body, media_type=media, headers=dict(headers))
    return with_validators(response, snapshot, etag)


class Asked:
    """``app.state.feeds_asked``: feed questions answered before, by raw path and query string
    (what a firewall polls is one URL, asked again and again). Bounded: emptied when full."""

    def __init__(self, size: int = 4096):
        self.size = size
        self._items: dict[tuple[str, bytes], tuple[FeedAsk, str, Any]] = {}

    def get(self, key: tuple[str, bytes]) -> tuple[FeedAsk, str, Any] | None:
        return self._items.get(key)

    def put(self, key: tuple[str, bytes], value: tuple[FeedAsk, str, Any]) -> None:
        if key not in self._items and len(self._items) >= self.size:
            self._items.clear()
        self._items[key] = value


class FeedShortcut:
    """ASGI middleware, the innermost (create_app adds it first: inside the guard's auth and
    body limit, and the metrics): a GET of a feed URL answered before (same path and query
    string, whose parameters FastAPI validated then) is answered here when the answer is a 304
    or a feed already rendered for the current snapshot, without FastAPI's routing and
    parameter parsing (measured: 3/4 of the time of such a request in-process), from answers
    kept ready to send (:class:`_Ready`). The current snapshot is still read per request.
    Anything else, an error included, goes through the app."""

    def __init__(self, app: Any, db: Database, asked: Asked):
        self.app = app
        self.db = db
        self.asked = asked

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            found = self.asked.get((scope["path"], scope["query_string"]))
            if found is not None:
                ask, path, route = found
                wanted = None
                for name, value in scope["headers"]:
                    if name == b"if-none-match":
                        wanted = value.decode("latin-1")
                        break
                try:
                    answer = _ready_answer(self.db, ask, path, wanted)
                except Exception:  # noqa: BLE001 - the app answers it, with its error handling
                    answer = None
                if answer is not None:
                    scope["route"] = route  # the route template in the metrics
                    status, headers, body = answer
                    await send(
                        {"type": "http.response.start", "status": status, "headers": headers}
                    )
                    await send({"type": "http.response.body", "body": body})
                    return
        await self.app(scope, receive, send)


RawHeaders = list[tuple[bytes, bytes]]


class _Ready:
    """Headers ready to send, by ETag, Last-Modified (a copy of the database may hold the same
    file fetched at another time) and status: those of a 304, and those of the 200 (its body
    stays in ``_RENDERED`` only, which bounds what is kept), each built once by a Starlette
    Response as the routes build theirs. Bounded: emptied when full."""

    def __init__(self, size: int = 1024):
        self.size = size
        self._items: dict[tuple[str, str, int], RawHeaders] = {}

    def get(self, key: tuple[str, str, int]) -> RawHeaders | None:
        return self._items.get(key)

    def put(self, key: tuple[str, str, int], value: RawHeaders) -> None:
        if len(self._items) >= self.size:
            self._items.clear()
        self._items[key] = value


_READY = _Ready()


def _ready_answer(
    db: Database, ask: FeedAsk, path: str, wanted: str | None
) -> tuple[int, RawHeaders, bytes] | None:
    """(status, headers, body) of a 304 or of a feed rendered before; None: ask the app."""
    snapshot = db.current(ask.cloud)
    if snapshot is None:
        return None  # the app's answer: 503, no snapshot
    etag = etag_for(snapshot, path, *ask.etag_parts())
    stamp = last_modified(snapshot)
    if matches(wanted, etag):
        headers = _READY.get((etag, stamp, 304))
        if headers is None:
            headers = Response(status_code=304, headers=validators(snapshot, etag)).raw_headers
            _READY.put((etag, stamp, 304), headers)
        return 304, headers, b""
    kept = _RENDERED.get(etag)
    if kept is None:
        return None  # to render: the app does it in a worker thread
    body, media, extra = kept
    headers = _READY.get((etag, stamp, 200))
    if headers is None:
        response = Response(body, media_type=media, headers=dict(extra))
        headers = with_validators(response, snapshot, etag).raw_headers
        _READY.put((etag, stamp, 200), headers)
    return 200, headers, body


class _Rendered:
    """Feeds already rendered, by ETag (the snapshot's content and the query): the same
    question about the same snapshot is answered from memory. Bounded by total size."""

    def __init__(self, max_bytes: int = 64 << 20):
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, Rendered] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get(self, etag: str) -> Rendered | None:
        with self._lock:
            found = self._items.get(etag)
            if found is not None:
                self._items.move_to_end(etag)
            return found

    def put(self, etag: str, item: Rendered) -> None:
        size = len(item[0])
        if size > self.max_bytes // 4:
            return
        with self._lock:
            if etag in self._items:
                return
            self._items[etag] = item
            self._size += size
            while self._size > self.max_bytes:
                _, old = self._items.popitem(last=False)
                self._size -= len(old[0])


_RENDERED = _Rendered()


def _render(request: Request, result: ExportResult) -> Rendered:
    """The body (encoded once: a Response of text encodes it per request), media type and
    headers of a feed."""
    headers = {}
    limit = LIMITS.get(result.format.name)
    if limit is not None:
        entries = sum(1 for line in result.text.splitlines() if line and line[0] != "#")
        if entries > limit[0]:
            note = f"{entries} entries: more than the {limit[1]}"
            headers["X-Aztags-Warning"] = note
            log.warning("feed %s: %s", request.url.path, note)
    if result.warnings:
        headers["X-Aztags-Notes"] = " | ".join(result.warnings)[:1000]
    media = MEDIA.get(result.format.name, "text/plain; charset=utf-8")
    return result.text.encode("utf-8"), media, tuple(headers.items())


def install(app: FastAPI) -> None:
    @app.get("/feeds/profile/{name}", tags=["feeds"], summary="A profile's prefixes as a feed")
    async def profile_feed(
        request: Request,
        name: str,
        region: str | None = Query(None, max_length=64),
        cloud: str = Query("public", max_length=16),
        family: Family = None,
        aggregate: bool = False,
        direction: Literal["inbound", "outbound"] | None = None,
    ) -> Response:
        profile, fmt = _split(name)
        req = ExportRequest(
            format=fmt,
            profile=profile,
            region=region,
            direction=direction,
            family=int(family) if family else None,
            aggregate=aggregate,
            profile_dirs=request.app.state.settings.profile_dirs,
        )
        key = (fmt, profile, region, family, aggregate, direction)
        return await _respond(request, FeedAsk(req, cloud, key))

    @app.get("/feeds/{name}", tags=["feeds"], summary="A tag's prefixes as a feed")
    async def tag_feed(
        request: Request,
        name: str,
        cloud: str = Query("public", max_length=16),
        family: Family = None,
        aggregate: bool = False,
    ) -> Response:
        tag, fmt = _split(name)
        req = ExportRequest(
            format=fmt, names=(tag,), family=int(family) if family else None, aggregate=aggregate
        )
        return await _respond(request, FeedAsk(req, cloud, (fmt, tag, family, aggregate)))
