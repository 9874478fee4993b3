"""Real local receivers for the alert channels: an HTTP webhook receiver, an SMTP server, a
syslog receiver. Every one listens on 127.0.0.1, records what it gets and is a context manager.

    from tests.receivers import Reply, WebhookReceiver

    with WebhookReceiver(secret="whsec_...") as hook:
        hook.script(500, Reply(429, headers={"Retry-After": "7"}), Reply(200, delay=2.0))
        ...  # send to hook.url
        first = hook.wait_for(1, timeout=5)[0]
        assert first.verified and first.json()["type"] == "aztags.events"

API:

- ``WebhookReceiver(secret=None, *, strict=True, default=Reply(204))``: ``url``
  (``http://127.0.0.1:PORT/hook``; any path is accepted), ``requests`` (a copy of the list of
  ``Received``: method, path with query, target, lower-case headers, raw body, ``verified``
  (None without a secret; else whether ``standardwebhooks.Webhook(secret).verify`` accepted it),
  ``error``), ``script(*replies)`` (queue replies, ints or ``Reply``, used one per request in
  order; once used up, ``default`` answers), ``wait_for(n, timeout)`` (the first ``n`` requests,
  or AssertionError). With a secret and ``strict``, a request whose signature does not verify is
  answered 401 (and recorded) whatever the script says. ``Reply.delay`` waits before answering
  (longer than the client's timeout: a timeout); stopping the receiver cuts the wait short.
- ``SmtpReceiver(tmp_path, *, tls="starttls"|"implicit", users={"alerts": "s3cret"})``: a real
  aiosmtpd server with a certificate for 127.0.0.1 and localhost from a throwaway CA
  (``trustme``). ``host``, ``port``, ``ca_file`` (the CA, written to ``tmp_path``),
  ``other_ca_file`` (a CA that did not sign it), ``messages`` (``Mail``: mail_from, rcpt_tos,
  raw data, ``message`` parsed with the default policy, ``login`` used), ``refuse(address, code,
  text)`` (answer RCPT TO for that address with ``code``), ``fail_data(code, text)`` (answer the
  next DATA with ``code``), ``wait_for(n, timeout)``. With users, AUTH is required (after TLS).
  ``channel(**overrides)`` is a ready ``[[channel]]`` entry for it (the password in
  ``env:AZTAGS_TEST_SMTP_PASSWORD``; set that variable with monkeypatch).
- ``SyslogReceiver(protocol="udp"|"tcp")``: ``host``, ``port``, ``messages`` (each syslog message
  as bytes: one per datagram, or one per octet-counted TCP frame; a TCP stream that is not
  octet-counted is recorded in ``errors``), ``wait_for(n, timeout)``. ``parse_syslog(raw)``
  parses one RFC 5424 message strictly (AssertionError when it does not follow the grammar).
- ``sample_event(n, added=3, removed=1, kind=..., watch=..., tag=..., data=None)`` and
  ``sample_message(*events, channel="netops", attempt=1)``: events and messages like the ingest
  raises, with distinct prefixes per ``n``, for tests of channels and delivery.
"""

from __future__ import annotations

import email
import email.policy
import json
import logging
import re
import socket
import socketserver
import ssl
import threading
import time
import warnings
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Self

__all__ = [
    "Mail",
    "Received",
    "Reply",
    "SmtpReceiver",
    "SyslogMessage",
    "SyslogReceiver",
    "WebhookReceiver",
    "parse_syslog",
    "sample_event",
    "sample_message",
]


class _Recorder:
    """A thread-safe list with ``wait_for``."""

    def __init__(self) -> None:
        self._items: list[Any] = []
        self._changed = threading.Condition()

    def add(self, item: Any) -> None:
        with self._changed:
            self._items.append(item)
            self._changed.notify_all()

    def items(self) -> list[Any]:
        with self._changed:
            return list(self._items)

    def wait_for(self, n: int, timeout: float, what: str) -> list[Any]:
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self._items) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"expected {n} {what} within {timeout} s, got {len(self._items)}"
                    )
                self._changed.wait(left)
            return list(self._items[:n])


class _Running:
    def __enter__(self) -> Self:
        self.start()  # type: ignore[attr-defined]
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()  # type: ignore[attr-defined]


# -- webhook ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """One scripted answer: status, headers (e.g. ``{"Retry-After": "7"}``), body, delay (s)."""

    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | str = b""
    delay: float = 0.0


@dataclass(frozen=True)
class Received:
    """One request the webhook receiver got."""

    method: str
    path: str
    target: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    verified: bool | None  # None: the receiver has no secret
    error: str | None  # why the signature did not verify

    def json(self) -> Any:
        return json.loads(self.body)


class WebhookReceiver(_Running):
    def __init__(
        self, secret: str | None = None, *, strict: bool = True, default: Reply | int = 204
    ):
        self.secret = secret
        self.strict = strict
        self.default = default if isinstance(default, Reply) else Reply(default)
        self._script: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._recorded = _Recorder()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # public API

    @property
    def url(self) -> str:
        return f"{self.base_url}/hook"

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the receiver is not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def requests(self) -> list[Received]:
        return self._recorded.items()

    def script(self, *replies: Reply | int) -> None:
        with self._lock:
            self._script.extend(r if isinstance(r, Reply) else Reply(r) for r in replies)

    def wait_for(self, n: int, timeout: float = 5.0) -> list[Received]:
        return self._recorded.wait_for(n, timeout, "webhook requests")

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                receiver._handle(self)

            do_PUT = do_POST
            do_GET = do_POST

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    # internals

    def _verify(self, body: bytes, headers: dict[str, str]) -> tuple[bool | None, str | None]:
        if not self.secret:
            return None, None
        from standardwebhooks import Webhook

        try:
            Webhook(self.secret).verify(body, headers)
        except Exception as e:  # WebhookVerificationError, or a malformed header
            return False, f"{type(e).__name__}: {e}"
        return True, None

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in handler.headers.items()}
        verified, error = self._verify(body, headers)
        target = handler.path
        path = target.split("://", 1)[1].partition("/")[2] if "://" in target else target
        self._recorded.add(Received(handler.command, path, target, headers, body, verified, error))
        with self._lock:
            reply = self._script.popleft() if self._script else self.default
        if verified is False and self.strict:
            reply = Reply(401, body=b"signature does not verify")
        if reply.delay:
            self._stopping.wait(reply.delay)
        raw = reply.body.encode() if isinstance(reply.body, str) else reply.body
        try:
            handler.send_response(reply.status)
            for name, value in reply.headers.items():
                handler.send_header(name, value)
            handler.send_header("Content-Length", str(len(raw)))
            handler.end_headers()
            handler.wfile.write(raw)
        except OSError:  # the client gave up (a timeout test)
            pass


# -- SMTP ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mail:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    login: str | None
    tls: bool

    @property
    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SmtpReceiver(_Running):
    PASSWORD_VARIABLE = "AZTAGS_TEST_SMTP_PASSWORD"

    def __init__(
        self,
        tmp_path: Path,
        *,
        tls: str = "starttls",
        users: Mapping[str, str] | None = None,
    ):
        import trustme

        self.tls = tls
        self.users = dict({"alerts": "s3cret-pw"} if users is None else users)
        self.host = "127.0.0.1"
        self.port = 0
        self._ca = trustme.CA()
        self._cert = self._ca.issue_cert("127.0.0.1", "localhost")
        self.ca_file = tmp_path / "smtp-ca.pem"
        self._ca.cert_pem.write_to_path(str(self.ca_file))
        self.other_ca_file = tmp_path / "other-ca.pem"
        trustme.CA().cert_pem.write_to_path(str(self.other_ca_file))
        self._recorded = _Recorder()
        self._refused: dict[str, tuple[int, str]] = {}
        self._data_failures: deque[tuple[int, str]] = deque()
        self._controller: Any = None

    @property
    def messages(self) -> list[Mail]:
        return self._recorded.items()

    def wait_for(self, n: int, timeout: float = 5.0) -> list[Mail]:
        return self._recorded.wait_for(n, timeout, "mails")

    def refuse(self, address: str, code: int = 550, text: str = "5.1.1 no such user") -> None:
        self._refused[address.lower()] = (code, text)

    def fail_data(self, code: int, text: str = "4.3.0 try again later") -> None:
        self._data_failures.append((code, text))

    def channel(self, **overrides: object) -> dict[str, object]:
        entry: dict[str, object] = {
            "name": "mail",
            "type": "email",
            "host": self.host,
            "port": self.port,
            "tls": self.tls,
            "from": "aztags@example.test",
            "to": ["netops@example.test"],
            "ca_file": str(self.ca_file),
            "timeout": 5.0,
        }
        if self.users:
            user = next(iter(self.users))
            entry["username"] = user
            entry["password"] = f"env:{self.PASSWORD_VARIABLE}"
        entry.update(overrides)
        return entry

    def start(self) -> None:
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult, LoginPassword

        receiver = self
        server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._cert.configure_cert(server_context)

        class Handler:
            async def handle_RCPT(
                self, server: Any, session: Any, envelope: Any, address: str, options: Any
            ) -> str:
                refused = receiver._refused.get(address.lower())
                if refused:
                    return f"{refused[0]} {refused[1]}"
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                if receiver._data_failures:
                    code, text = receiver._data_failures.popleft()
                    return f"{code} {text}"
                login = session.auth_data.login.decode() if session.auth_data else None
                receiver._recorded.add(
                    Mail(
                        envelope.mail_from,
                        list(envelope.rcpt_tos),
                        bytes(envelope.original_content or envelope.content),
                        login,
                        session.ssl is not None or receiver.tls == "implicit",
                    )
                )
                return "250 Message accepted for delivery"

        def authenticator(
            server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
        ) -> AuthResult:
            if not isinstance(auth_data, LoginPassword):
                return AuthResult(success=False, handled=False)
            user = auth_data.login.decode()
            ok = receiver.users.get(user) == auth_data.password.decode()
            return AuthResult(success=ok, handled=False, auth_data=auth_data)

        options: dict[str, Any] = {
            "hostname": self.host,
            "server_hostname": "localhost",
            "authenticator": authenticator if self.users else None,
            "auth_required": bool(self.users),
            # aiosmtpd advertises AUTH only after STARTTLS, not on an implicit TLS connection
            # (which is encrypted from the start), so the rule is only needed for STARTTLS.
            "auth_require_tls": self.tls != "implicit",
        }
        logging.getLogger("mail.log").setLevel(logging.ERROR)  # deprecation chatter
        warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS", UserWarning)
        if self.tls == "implicit":
            options["ssl_context"] = server_context
        else:
            options["tls_context"] = server_context
            options["require_starttls"] = True
        for _ in range(5):
            self.port = _free_port()
            controller = Controller(Handler(), port=self.port, **options)
            try:
                controller.start()
            except (TimeoutError, OSError, RuntimeError):  # the port was taken meanwhile
                continue
            self._controller = controller
            return
        raise RuntimeError("could not start the SMTP server")

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()


# -- syslog ----------------------------------------------------------------------------------


class SyslogReceiver(_Running):
    def __init__(self, protocol: str = "udp"):
        self.protocol = protocol
        self.host = "127.0.0.1"
        self.port = 0
        self._recorded = _Recorder()
        self.errors: list[str] = []
        self._server: socketserver.BaseServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def messages(self) -> list[bytes]:
        return self._recorded.items()

    def wait_for(self, n: int, timeout: float = 5.0) -> list[bytes]:
        return self._recorded.wait_for(n, timeout, "syslog messages")

    def channel(self, **overrides: object) -> dict[str, object]:
        entry: dict[str, object] = {
            "name": "siem",
            "type": "syslog",
            "host": self.host,
            "port": self.port,
            "protocol": self.protocol,
            "timeout": 5.0,
        }
        entry.update(overrides)
        return entry

    def start(self) -> None:
        receiver = self

        class Datagram(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                receiver._recorded.add(bytes(self.request[0]))

        class Stream(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                while True:
                    length = b""
                    while (c := self.rfile.read(1)) and c != b" ":
                        length += c
                    if not length and not c:
                        return  # the sender closed the connection between frames
                    if not length.isdigit() or not c:
                        receiver.errors.append(f"not an octet-counted frame: {length[:40]!r}")
                        return
                    frame = self.rfile.read(int(length))
                    if len(frame) != int(length):
                        receiver.errors.append(f"frame cut short: {len(frame)} of {length!r}")
                        return
                    receiver._recorded.add(frame)

        server: socketserver.BaseServer
        if self.protocol == "udp":
            server = socketserver.ThreadingUDPServer((self.host, 0), Datagram)
            server.max_packet_size = 65535  # type: ignore[attr-defined]
        else:
            server = socketserver.ThreadingTCPServer((self.host, 0), Stream)
        server.daemon_threads = True  # type: ignore[attr-defined]
        self._server = server
        self.port = server.server_address[1]  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)


@dataclass(frozen=True)
class SyslogMessage:
    pri: int
    version: int
    timestamp: str
    hostname: str
    app_name: str
    procid: str
    msgid: str
    sd: dict[str, dict[str, str]]  # SD-ID -> params (unescaped)
    msg: str  # without the BOM
    bom: bool

    @property
    def facility(self) -> int:
        return self.pri // 8

    @property
    def severity(self) -> int:
        return self.pri % 8


_HEADER = re.compile(
    rb"<(?P<pri>[0-9]{1,3})>(?P<version>[1-9][0-9]{0,2}) "
    rb"(?P<timestamp>-|[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?"
    rb"(?:Z|[+-][0-9]{2}:[0-9]{2})) "
    rb"(?P<hostname>[\x21-\x7e]{1,255}) (?P<app>[\x21-\x7e]{1,48}) "
    rb"(?P<procid>[\x21-\x7e]{1,128}) (?P<msgid>[\x21-\x7e]{1,32}) "
)


def parse_syslog(raw: bytes) -> SyslogMessage:
    """One RFC 5424 message, checked against the grammar (AssertionError if it breaks it)."""
    match = _HEADER.match(raw)
    assert match, f"not an RFC 5424 header: {raw[:120]!r}"
    pri = int(match["pri"])
    assert 0 <= pri <= 191, f"PRI {pri} out of range"
    rest = raw[match.end() :]
    sd: dict[str, dict[str, str]] = {}
    if rest.startswith(b"-"):
        rest = rest[1:]
    else:
        assert rest.startswith(b"["), f"no STRUCTURED-DATA: {rest[:60]!r}"
        while rest.startswith(b"["):
            rest = rest[1:]
            name = re.match(rb'[^ =\]"]{1,32}', rest)
            assert name, f"bad SD-ID at {rest[:40]!r}"
            sd_id = name[0].decode("ascii")
            params: dict[str, str] = {}
            rest = rest[name.end() :]
            while rest.startswith(b" "):
                param = re.match(rb'([^ =\]"]{1,32})="', rest[1:])
                assert param, f"bad SD-PARAM at {rest[:40]!r}"
                rest = rest[1 + param.end() :]
                value = bytearray()
                i = 0
                while True:
                    assert i < len(rest), "unterminated PARAM-VALUE"
                    c = rest[i : i + 1]
                    if c == b"\\" and rest[i + 1 : i + 2] in (b'"', b"\\", b"]"):
                        value += rest[i + 1 : i + 2]
                        i += 2
                        continue
                    assert c != b"]", "unescaped ] in PARAM-VALUE"
                    if c == b'"':
                        break
                    value += c
                    i += 1
                params[param[1].decode("ascii")] = value.decode("utf-8")
                rest = rest[i + 1 :]
            assert rest.startswith(b"]"), f"SD-ELEMENT not closed at {rest[:40]!r}"
            rest = rest[1:]
            sd[sd_id] = params
    msg = b""
    bom = False
    if rest:
        assert rest.startswith(b" "), f"no SP before MSG: {rest[:40]!r}"
        msg = rest[1:]
        if msg.startswith(b"\xef\xbb\xbf"):
            bom = True
            msg = msg[3:]
    return SyslogMessage(
        pri=pri,
        version=int(match["version"]),
        timestamp=match["timestamp"].decode(),
        hostname=match["hostname"].decode(),
        app_name=match["app"].decode(),
        procid=match["procid"].decode(),
        msgid=match["msgid"].decode(),
        sd=sd,
        msg=msg.decode("utf-8"),
        bom=bom,
    )


# -- sample messages -------------------------------------------------------------------------


def sample_event(
    n: int = 1,
    *,
    added: int = 3,
    removed: int = 1,
    kind: str = "servicetag.prefixes.changed",
    watch: str = "azureml-westus",
    tag: str = "Storage.WestEurope",
    data: Mapping[str, Any] | None = None,
) -> Any:
    """An ``Event`` like the ingest raises: ``added`` IPv4 and ``removed`` IPv6 prefixes of one
    tag (distinct per ``n``), or the given ``data`` for other types."""
    from datetime import UTC, datetime

    from resolver.alerts.event import Event, EventType

    if data is None and kind == EventType.CHANGED:
        plus = [f"10.{n % 256}.{i // 256 % 256}.{i % 256}/32" for i in range(added)]
        minus = [f"2603:1020:{n:x}:{i:x}::/64" for i in range(removed)]
        data = {
            "from": {"change_number": 376, "file_date": "2025-11-03", "snapshot": 12},
            "to": {"change_number": 377, "file_date": "2025-11-10", "snapshot": 13},
            "azure_may_use_added_from": "2025-11-17",
            "counts": {"tags": 1, "added": added, "removed": removed},
            "tags": [{"name": tag, "change": "changed", "added": plus, "removed": minus}],
        }
    return Event(
        id=f"evt_{n:026d}",
        type=EventType(kind),
        created=datetime(2025, 11, 10, 6, 0, 0, 123456, tzinfo=UTC),
        cloud="public",
        watch=watch,
        summary=f"{tag}: +{added} -{removed} prefixes",
        data=data or {},
    )


def sample_message(*events: Any, channel: str = "netops", attempt: int = 1) -> Any:
    """A ``Message`` of ``events`` (one sample event when none are given)."""
    from datetime import UTC, datetime

    from resolver.alerts.message import Message

    return Message(
        id="msg_2KWPBgLlAfxdpx2AI54pPJ85f4",
        channel=channel,
        events=tuple(events) or (sample_event(),),
        created=datetime(2025, 11, 10, 6, 0, 5, tzinfo=UTC),
        attempt=attempt,
    )
