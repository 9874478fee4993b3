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

    _install_docs(app)


def _install_docs(app: FastAPI) -> None:
    """``/docs``: Swagger UI for /openapi.json, its files served from the swagger-ui-bundle
    package (FastAPI's default page loads them from a CDN: nothing here comes from the
    internet)."""
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.responses import HTMLResponse
    from swagger_ui_bundle import swagger_ui_path

    app.mount("/swagger-ui", StaticFiles(directory=swagger_ui_path), name="swagger")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="aztags API",
            swagger_js_url="/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url="/swagger-ui/swagger-ui.css",
            swagger_favicon_url="/swagger-ui/favicon-32x32.png",
        )
