"""The web page at ``/``: search a tag, paste addresses, show a profile, chart changes. Plain
HTML, CSS and JavaScript in ``web/``, served by the app itself (no build step, nothing loaded
from the internet); the page calls the /v1 API, and the chart's data comes from the history
endpoints (``history.py``).

A Content-Security-Policy allows only this server's own scripts, styles and API, so the page
cannot load anything from elsewhere, even by mistake, and injected markup could not run."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response
from starlette.types import Scope

ASSETS = Path(__file__).parent / "web"
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    # revalidate (ETag, Last-Modified) so a new version of the page shows after an upgrade
    "Cache-Control": "no-cache",
}


class Assets(StaticFiles):
    """The page's files, with the same security headers as the page."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response: Response = await super().get_response(path, scope)
        response.headers.update(HEADERS)
        return response


def install(app: FastAPI) -> None:
    app.mount("/static", Assets(directory=ASSETS), name="static")

    @app.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(
            ASSETS / "index.html", media_type="text/html; charset=utf-8", headers=HEADERS
        )
