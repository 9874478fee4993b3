"""The web page at ``/``: search a tag, paste addresses, show a profile, chart changes. Plain
HTML, CSS and JavaScript in ``web/``, served by the app itself (no build step, nothing loaded
from the internet); the page calls the /v1 API."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

ASSETS = Path(__file__).parent / "web"


def install(app: FastAPI) -> None:
    app.mount("/static", StaticFiles(directory=ASSETS), name="static")

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(ASSETS / "index.html", media_type="text/html; charset=utf-8")
