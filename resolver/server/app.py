"""The HTTP application: ``create_app(settings)`` builds it; routes live in ``feeds.py`` (firewall
feeds), ``api.py`` (the JSON API under /v1), ``ops.py`` (/healthz, /metrics, /changes.atom) and
``web.py`` (the page at /).

Here: settings, authentication (the config's ``[auth]``: HTTP basic and bearer tokens), errors
as RFC 9457 problem details (never a stack trace), request size limits. The response helpers the
routes share (problem details, JSON documents, ETag/304) are in ``responses.py``.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from resolver.errors import (
    AztagsError,
    ConfigError,
    EmptyStoreError,
    NotFoundError,
    StoreError,
    UsageError,
)
from resolver.server import api, feeds, history, ops, web
from resolver.server.database import Database
from resolver.server.responses import problem

log = logging.getLogger("aztags")
MAX_BODY = 1 << 20  # bytes: a POST of 10,000 addresses is about 200 KB


@dataclass(frozen=True, slots=True)
class Auth:
    """Who may use the server: one basic-auth user and/or bearer tokens (secrets resolved)."""

    username: str | None = None
    password: str | None = None
    tokens: tuple[str, ...] = ()

    @property
    def enabled(self) -> bool:
        return bool(self.username or self.tokens)

    @property
    def challenge(self) -> str:
        """The WWW-Authenticate header of a 401: the schemes this server takes."""
        schemes = ['Basic realm="aztags", charset="UTF-8"'] if self.username else []
        return ", ".join([*schemes, *(['Bearer realm="aztags"'] if self.tokens else [])])

    def allows(self, header: str | None) -> bool:
        if not self.enabled:
            return True
        scheme, _, value = (header or "").partition(" ")
        scheme = scheme.lower()
        if scheme == "bearer" and self.tokens:
            return any(hmac.compare_digest(value.encode(), t.encode()) for t in self.tokens)
        if scheme == "basic" and self.username and self.password is not None:
            try:
                user, _, password = base64.b64decode(value, validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return False
            return hmac.compare_digest(user.encode(), self.username.encode()) & hmac.compare_digest(
                password.encode(), self.password.encode()
            )
        return False


def auth_from_config(section: Mapping[str, Any]) -> Auth:
    """The ``[auth]`` table with its secrets read (``env:``/``file:``)."""
    from resolver.alerts.secrets import resolve_secret

    username = section.get("username")
    password = section.get("password")
    if bool(username) != bool(password):
        raise ConfigError("[auth] needs both username and password for basic auth, or neither.")
    return Auth(
        username=str(username) if username else None,
        password=resolve_secret(str(password), where="[auth] password") if password else None,
        tokens=tuple(
            resolve_secret(str(t), where=f"[auth] tokens #{n}")
            for n, t in enumerate(section.get("tokens") or [], 1)
        ),
    )


@dataclass(frozen=True, slots=True)
class Settings:
    """What ``aztags serve`` was given: the database, auth, staleness limit and profile folders."""

    db: Path
    auth: Auth = Auth()
    max_age_days: int = 14
    profile_dirs: tuple[Path, ...] = ()
    version: str = ""
    # called on startup/shutdown of the app (aztags serve --with-scheduler starts the scheduler)
    on_startup: Sequence[Callable[[], None]] = field(default=())
    on_shutdown: Sequence[Callable[[], None]] = field(default=())


# -- errors ----------------------------------------------------------------------------------------


_PROBLEM_SCHEMA = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
    },
}


def _problem_doc(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/problem+json": {"schema": _PROBLEM_SCHEMA}},
    }


# Every operation may answer these (the OpenAPI document lists them, so that clients and the
# schema tests know them): a problem details document, never a stack trace.
PROBLEMS: dict[int | str, dict[str, Any]] = {
    400: _problem_doc("Bad input: a name, address, format or date that is not valid"),
    401: _problem_doc("Credentials needed ([auth] is on): HTTP basic or a bearer token"),
    404: _problem_doc("No such tag, profile, region, cloud, snapshot or feed format"),
    413: _problem_doc(f"The request body is over {MAX_BODY} bytes"),
    503: _problem_doc("No snapshot stored yet, or the database cannot be read"),
}


def _status_of(error: AztagsError) -> tuple[int, str]:
    if isinstance(error, EmptyStoreError):
        return 503, "No snapshot"
    if isinstance(error, NotFoundError):
        return 404, "Not found"
    if isinstance(error, UsageError):
        return 400, "Bad request"
    if isinstance(error, StoreError):
        return 503, "Database unavailable"
    return 500, "Error"


def _install_errors(app: FastAPI) -> None:
    @app.exception_handler(AztagsError)
    async def domain_error(request: Request, error: AztagsError) -> JSONResponse:
        status, title = _status_of(error)
        if status >= 500:
            log.warning("%s %s: %s", request.method, request.url.path, error)
        return problem(status, title, str(error))

    @app.exception_handler(RequestValidationError)
    async def bad_input(request: Request, error: RequestValidationError) -> JSONResponse:
        details = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ())[1:]) or 'request'}: {e.get('msg')}"
            for e in error.errors()
        )
        return problem(400, "Bad request", details or "The request is not valid.")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        titles = {404: "Not found", 405: "Method not allowed", 413: "Request too large"}
        title = titles.get(error.status_code, "Error")
        return problem(error.status_code, title, str(error.detail))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        log.error(
            "%s %s: unexpected %s: %s",
            request.method,
            request.url.path,
            type(error).__name__,
            error,
        )
        return problem(500, "Internal error", "The server could not answer; see its log.")


class BodyLimit:
    """ASGI middleware: a request body is read up to ``limit`` bytes, Content-Length or not (a
    chunked body has none), then the request is refused with 413."""

    def __init__(self, app: Any, limit: int = MAX_BODY):
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        seen = 0

        async def counting() -> Any:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                # an HTTPException passes FastAPI's body parsing as it is (others become 400)
                from fastapi import HTTPException

                raise HTTPException(413, f"Bodies are limited to {self.limit} bytes.")
            return message

        await self.app(scope, counting, send)


class Guard:
    """ASGI middleware (plain, not Starlette's BaseHTTPMiddleware, which costs a task per
    request): refuses a declared body over the limit (413) and, when ``[auth]`` is set, a
    request without valid credentials (401 with a challenge); /healthz stays open."""

    def __init__(self, app: Any, auth: Auth):
        self.app = app
        self.auth = auth

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        length = headers.get(b"content-length")
        refusal: Response | None = None
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
            refusal = problem(413, "Request too large", f"Bodies are limited to {MAX_BODY} bytes.")
        elif scope["path"] != "/healthz" and not self.auth.allows(
            (headers.get(b"authorization") or b"").decode("latin-1") or None
        ):
            refusal = JSONResponse(
                {
                    "type": "about:blank",
                    "title": "Unauthorized",
                    "status": 401,
                    "detail": "This server needs HTTP basic auth or a bearer token.",
                },
                status_code=401,
                media_type="application/problem+json",
                headers={"WWW-Authenticate": self.auth.challenge},
            )
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        await self.app(scope, receive, send)


# -- the app ---------------------------------------------------------------------------------------


def create_app(settings: Settings) -> FastAPI:
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(app: FastAPI):  # type: ignore[no-untyped-def]
        for start in settings.on_startup:
            start()
        yield
        for stop in settings.on_shutdown:
            stop()

    app = FastAPI(
        title="aztags",
        version=settings.version or "0",
        description="Azure service tags for on-premises firewalls: feeds, lookups, changes.",
        responses=PROBLEMS,
        lifespan=lifespan,
        docs_url=None,  # /docs is served below, with Swagger UI's files from this server
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.db = Database(settings.db, max_age_days=settings.max_age_days)
    _install_errors(app)
    # the innermost of all: feeds asked before, answered without FastAPI's routing (feeds.py);
    # every middleware added after it (auth first) still applies
    app.state.feeds_asked = asked = feeds.Asked()
    app.add_middleware(feeds.FeedShortcut, db=app.state.db, asked=asked)
    # next (middleware added first is nearest the routes): its 413 reaches FastAPI's body
    # parsing as it is, not inside the task group of the guard's call_next
    app.add_middleware(BodyLimit, limit=MAX_BODY)

    app.add_middleware(Guard, auth=settings.auth)

    for module in (feeds, api, history, ops, web):
        module.install(app)
    _document_400_not_422(app)
    return app


def _document_400_not_422(app: FastAPI) -> None:
    """FastAPI lists a 422 validation error under every operation with parameters, but a bad
    request here is a 400 problem document (``_install_errors``), which PROBLEMS lists: the
    OpenAPI document drops the 422s and the schemas only they used, so clients generated from
    it expect what the server sends."""
    generate = app.openapi  # FastAPI's: builds the document once and keeps it

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        doc = generate()  # kept as app.openapi_schema: changed in place, once
        for operations in doc.get("paths", {}).values():
            for operation in operations.values():
                operation.get("responses", {}).pop("422", None)
        schemas = doc.get("components", {}).get("schemas", {})
        for name in ("HTTPValidationError", "ValidationError"):
            schemas.pop(name, None)
        return doc

    app.openapi = openapi  # type: ignore[method-assign]
