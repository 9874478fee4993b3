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
from typing import Annotated, Literal

from fastapi import FastAPI, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from resolver.errors import NotFoundError
from resolver.exports import ExportRequest, ExportResult, export, get_format
from resolver.server.database import profiles_digest
from resolver.server.responses import cached, with_validators

log = logging.getLogger("aztags")

ALIASES = {"txt": "plain"}
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


async def _respond(
    request: Request,
    export_request: ExportRequest,
    cloud: str,
    key: tuple[object, ...],
) -> Response:
    """The feed. What firewalls mostly ask (a 304, or a list already rendered for this
    snapshot) is answered on the event loop: one short read of which snapshot is current
    (about 50 us) and no hop to a worker thread. Rendering a new list goes to a worker."""
    db = request.app.state.db
    if export_request.profile:  # an edited profile file is another answer
        key = (*key, profiles_digest(export_request.profile_dirs))
    with db.view() as conn:
        snapshot = db.store(conn, cloud).snapshot()
        etag, unchanged = cached(request, snapshot, *key)
        if unchanged is not None:
            return unchanged
        kept = _RENDERED.get(etag)
    if kept is not None:
        text, media, headers = kept
        response = Response(text, media_type=media, headers=dict(headers))
        return with_validators(response, snapshot, etag)
    return await run_in_threadpool(_respond_in_worker, request, export_request, cloud, key)


def _respond_in_worker(
    request: Request,
    export_request: ExportRequest,
    cloud: str,
    key: tuple[object, ...],
) -> Response:
    """The feed read and rendered in one read view (the snapshot may have moved on since the
    event loop looked: the ETag is computed again from the snapshot exported)."""
    db = request.app.state.db
    with db.view() as conn:
        store = db.store(conn, cloud)
        snapshot = store.snapshot()
        etag, unchanged = cached(request, snapshot, *key)
        if unchanged is not None:
            return unchanged
        kept = _RENDERED.get(etag)
        if kept is None:
            result = export(store, export_request)
    if kept is None:
        kept = _render(request, result)
        _RENDERED.put(etag, kept)
    text, media, headers = kept
    response = Response(text, media_type=media, headers=dict(headers))
    return with_validators(response, snapshot, etag)


class _Rendered:
    """Feeds already rendered, by ETag (the snapshot's content and the query): the same
    question about the same snapshot is answered from memory. Bounded by total size."""

    def __init__(self, max_bytes: int = 64 << 20):
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, tuple[str, str, tuple[tuple[str, str], ...]]] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get(self, etag: str) -> tuple[str, str, tuple[tuple[str, str], ...]] | None:
        with self._lock:
            found = self._items.get(etag)
            if found is not None:
                self._items.move_to_end(etag)
            return found

    def put(self, etag: str, item: tuple[str, str, tuple[tuple[str, str], ...]]) -> None:
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


def _render(request: Request, result: ExportResult) -> tuple[str, str, tuple[tuple[str, str], ...]]:
    """The body, media type and headers of a feed."""
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
    return result.text, media, tuple(headers.items())


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
        return await _respond(
            request, req, cloud, (fmt, profile, region, family, aggregate, direction)
        )

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
        return await _respond(request, req, cloud, (fmt, tag, family, aggregate))
