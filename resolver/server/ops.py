"""Operations: ``/healthz`` for load balancers (200 while the server can answer from its
database; staleness is in the body, not a reason to take every replica out at once)."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from resolver.clouds import CLOUDS
from resolver.errors import AztagsError


def install(app: FastAPI) -> None:
    db = app.state.db

    @app.get("/healthz", tags=["operations"], summary="200 while the database can be read")
    def healthz(request: Request) -> JSONResponse:
        from resolver.staleness import cloud_status

        try:
            with db.view() as conn:
                statuses = cloud_status(conn, CLOUDS, db.max_age_days, datetime.now(UTC))
        except AztagsError as e:
            return JSONResponse({"status": "unavailable", "detail": str(e)}, status_code=503)
        clouds = [
            {
                "cloud": s.cloud.key,
                "change_number": s.snapshot.change_number if s.snapshot else None,
                "age_days": s.staleness.age_days if s.staleness else None,
                "stale": bool(s.staleness and s.staleness.stale),
            }
            for s in statuses
        ]
        return JSONResponse({"status": "ok", "clouds": clouds})
