"""What the routes of ``aztags serve`` share to answer: JSON documents, RFC 9457 problem
details, and conditional responses (a strong ETag from the snapshot's content and the question,
Last-Modified, 304 for ``If-None-Match``)."""

from __future__ import annotations

import functools
import hashlib
import json
from datetime import datetime
from typing import Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse

from resolver.models import SnapshotInfo


def dumps(content: Any) -> str:
    """The text of every JSON document the API answers: compact, dates as ISO text (``str``).
    Compact is the C encoder (render_json's indent=2 forces the pure-Python one, 2-3x slower on a
    10,000-address lookup); and the compact text of a list is its items' texts joined by ``,``
    between ``[`` and ``]``, which the batch lookup (resolver/server/batch.py) builds on."""
    return json.dumps(content, separators=(",", ":"), default=str)


class Document(JSONResponse):
    """A JSON document built by resolver/render.py (dates as ISO text, like the CLI), compact."""

    def render(self, content: Any) -> bytes:
        return dumps(content).encode("utf-8")


def problem(status: int, title: str, detail: str, **extra: Any) -> JSONResponse:
    """An RFC 9457 problem details response."""
    return JSONResponse(
        {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra},
        status_code=status,
        media_type="application/problem+json",
    )


def etag_for(snapshot: SnapshotInfo, *parts: object) -> str:
    """A strong ETag from the snapshot's content (its file's sha256, the same in every copy of
    the database) and what was asked (route, parameters)."""
    text = "\x1f".join([snapshot.sha256, *map(str, parts)])
    return '"' + hashlib.sha256(text.encode()).hexdigest()[:32] + '"'


def last_modified(snapshot: SnapshotInfo) -> str:
    return _http_date(snapshot.fetched_at)


@functools.lru_cache(maxsize=64)
def _http_date(moment: datetime) -> str:  # every answer of one snapshot has the same one
    from email.utils import format_datetime

    return format_datetime(moment, usegmt=True)


def not_modified(request: Request, etag: str) -> bool:
    return matches(request.headers.get("if-none-match"), etag)


def matches(wanted: str | None, etag: str) -> bool:
    """Whether an ``If-None-Match`` header (None: absent) names ``etag`` (or is ``*``)."""
    if not wanted:
        return False
    return wanted.strip() == "*" or etag in [t.strip() for t in wanted.split(",")]


def cached(request: Request, snapshot: SnapshotInfo, *parts: object) -> tuple[str, Response | None]:
    """The ETag for this answer, and a 304 response when the client has it already."""
    return conditional(request.url.path, request.headers.get("if-none-match"), snapshot, *parts)


def conditional(
    path: str, wanted: str | None, snapshot: SnapshotInfo, *parts: object
) -> tuple[str, Response | None]:
    """:func:`cached` from the request's path and ``If-None-Match`` header (None: absent)."""
    etag = etag_for(snapshot, path, *parts)
    if matches(wanted, etag):
        return etag, Response(status_code=304, headers=validators(snapshot, etag))
    return etag, None


def validators(snapshot: SnapshotInfo, etag: str) -> dict[str, str]:
    """The headers every conditional answer carries, a 304 included."""
    return {"ETag": etag, "Last-Modified": last_modified(snapshot), "Cache-Control": "no-cache"}


def with_validators(response: Response, snapshot: SnapshotInfo, etag: str) -> Response:
    response.headers.update(validators(snapshot, etag))
    return response
