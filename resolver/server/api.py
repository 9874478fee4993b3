"""The JSON API under ``/v1``: the same answers as the CLI's ``--json``, built by the same
renderers (resolver/render.py). Every endpoint takes ``?cloud=`` (default public); each request
reads one consistent state of the database."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Body, FastAPI, Path, Query, Request, Response
from pydantic import BaseModel, Field

from resolver import render
from resolver.errors import UsageError
from resolver.server.database import WHOLE_INDEX_FROM, ServedStore
from resolver.server.responses import Document, cached, with_validators

MAX_BATCH = 10_000
Cloud = Annotated[str, Query(max_length=16, description="public, usgov, china or germany")]
At = Annotated[
    str | None,
    Query(max_length=32, description="a date (YYYY-MM-DD) or cn:N; default: the current snapshot"),
]


class LookupBatch(BaseModel):
    addresses: list[Annotated[str, Field(max_length=64)]] = Field(
        ..., max_length=MAX_BATCH, description=f"up to {MAX_BATCH:,} addresses or CIDRs"
    )
    cloud: str = Field("public", max_length=16)
    at: str | None = Field(None, max_length=32)


def _answerable(report: Any) -> Any:
    """The report, unless no query in it is an address or a CIDR: then a 400 naming each (one
    bad line of a batch is an error in its answer, as with 'aztags lookup --file')."""
    if report.answers and all(a.result is None for a in report.answers):
        errors = "; ".join(str(a.error or a.query) for a in report.answers[:5])
        more = len(report.answers) - 5
        raise UsageError(
            f"No address or CIDR to look up: {errors}{f' (and {more} more)' if more > 0 else ''}."
        )
    return report


def install(app: FastAPI) -> None:
    db = app.state.db
    settings = app.state.settings

    @app.get("/v1/status", tags=["api"], summary="Each cloud's current snapshot and its age")
    def status(cloud: Annotated[str, Query(max_length=16)] = "all") -> Response:
        from resolver.clouds import CLOUDS, get_cloud
        from resolver.status import cloud_status

        clouds = CLOUDS if cloud.lower() == "all" else (get_cloud(cloud),)
        with db.view() as conn:
            statuses = cloud_status(conn, clouds, db.max_age_days, datetime.now(UTC))
        return Document(render.render_status_json(statuses, db.max_age_days))

    @app.get("/v1/tags", tags=["api"], summary="Tags with counts, by region or service")
    def tags(
        request: Request,
        cloud: Cloud = "public",
        region: Annotated[str | None, Query(max_length=64)] = None,
        service: Annotated[str | None, Query(max_length=128)] = None,
        at: At = None,
    ) -> Response:
        with db.view() as conn:
            store = db.store(conn, cloud)
            snapshot = store.snapshot(at)
            etag, unchanged = cached(request, snapshot, region, service, at)
            if unchanged:
                return unchanged
            snapshot, found = store.tags(at=at, region=region, service=service)
        return with_validators(Document(render.render_tags_json(snapshot, found)), snapshot, etag)

    @app.get("/v1/tags/{name}", tags=["api"], summary="One tag's prefixes")
    def tag(
        request: Request,
        name: Annotated[str, Path(max_length=128)],
        cloud: Cloud = "public",
        at: At = None,
        aggregate: bool = False,
    ) -> Response:
        with db.view() as conn:
            store = db.store(conn, cloud)
            snapshot = store.snapshot(at)
            etag, unchanged = cached(request, snapshot, at, aggregate)
            if unchanged:
                return unchanged
            answer = store.cidrs([name], at=at, aggregate=aggregate)
        return with_validators(
            Document(render.render_cidrs_json(answer, aggregate)), snapshot, etag
        )

    @app.get("/v1/lookup", tags=["api"], summary="Which tags contain these addresses")
    def lookup(
        ip: Annotated[list[str], Query(max_length=100)],
        cloud: Cloud = "public",
        at: At = None,
    ) -> Response:
        if not ip:
            raise UsageError("Give at least one ?ip=ADDRESS.")
        with db.view() as conn:
            report = db.store(conn, cloud).lookup_report(ip, at=at)
        return Document(render.render_lookup_report_json(_answerable(report)))

    @app.post("/v1/lookup", tags=["api"], summary=f"Look up to {MAX_BATCH:,} addresses at once")
    def lookup_batch(batch: Annotated[LookupBatch, Body()]) -> Response:
        with db.view() as conn:
            store = db.store(conn, batch.cloud)
            if isinstance(store, ServedStore) and len(batch.addresses) > WHOLE_INDEX_FROM:
                # the same document, written from the snapshot's kept index (batch.py)
                body = store.lookup_document(batch.addresses, at=batch.at)
                return Response(body, media_type="application/json")
            report = store.lookup_report(batch.addresses, at=batch.at)
        return Document(render.render_lookup_report_json(_answerable(report)))

    @app.get("/v1/diff", tags=["api"], summary="What changed between two snapshots")
    def diff(
        request: Request,
        cloud: Cloud = "public",
        from_: Annotated[str | None, Query(alias="from", max_length=32)] = None,
        to: At = None,
        tag: Annotated[list[str] | None, Query(max_length=50)] = None,
    ) -> Response:
        with db.view() as conn:
            store = db.store(conn, cloud)
            answer = store.diff(from_, to, tag or ())
        return Document(render.render_diff_json(answer))

    @app.get("/v1/changes", tags=["api"], summary="Snapshots stored since a reference")
    def changes(
        since: Annotated[str, Query(max_length=32, description="a date or cn:N")],
        cloud: Cloud = "public",
    ) -> Response:
        with db.view() as conn:
            store = db.store(conn, cloud)
            start = store.snapshot(since)
            later = [
                s
                for s in store.snapshots()
                if s.seq is not None and start.seq is not None and s.seq > start.seq
            ]
            answer = store.diff(since, None) if later else None
        return Document(
            {
                "since": render.render_snapshot_json(start),
                "snapshots": render.render_snapshots_json(later),
                "diff": render.render_diff_json(answer) if answer else None,
            }
        )

    @app.get("/v1/profiles", tags=["api"], summary="The requirement profiles")
    def profiles() -> Response:
        from resolver.profiles import load_profiles

        found = load_profiles(settings.profile_dirs).values()
        return Document(render.render_profiles_json(found))

    @app.get("/v1/profiles/{name}", tags=["api"], summary="A profile resolved for a region")
    def profile(
        request: Request,
        name: Annotated[str, Path(max_length=64)],
        cloud: Cloud = "public",
        region: Annotated[str | None, Query(max_length=64)] = None,
        at: At = None,
        aggregate: bool = False,
    ) -> Response:
        with db.view() as conn:
            store = db.store(conn, cloud)
            answer = store.cidrs(
                profile=name,
                region=region,
                at=at,
                aggregate=aggregate,
                profile_dirs=settings.profile_dirs,
            )
        return Document(render.render_profile_json(answer, aggregate))
