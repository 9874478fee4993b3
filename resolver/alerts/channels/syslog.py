"""Syslog: one RFC 5424 message per event, over UDP (RFC 5426) or TCP with octet counting.

    <133>1 2025-11-10T06:00:00.123Z fw-export-01 aztags 4242 PREFIX_CHANGE [aztags@32473
    id="evt_..." message="msg_..." type="servicetag.prefixes.changed" cloud="public"
    watch="azureml-westus" tags="1" added="3" removed="1" from="376" to="377"]
    \\ufeffStorage.WestEurope: +3 -1 prefixes | Storage.WestEurope +20.38.96.0/20 ... -...

(one line). Settings: ``host`` (required), ``port`` (514), ``protocol`` (``"udp"``, the default,
or ``"tcp"``: frames ``LEN SP MSG`` per RFC 6587 / 5425 octet counting on one connection per
attempt) and ``facility`` (``"local0"`` unless set; any of the RFC 5424 names).

PRI is facility * 8 + severity: notice (5) for a change or a test, warning (4) for a gap or a
quarantine, err (3) for fetching that fails or stale data. MSGID says what happened:
``PREFIX_CHANGE``, ``QUARANTINED``, ``GAP``, ``FETCH_FAIL``, ``STALE``, ``API_LAG``, ``TEST``. The
structured data uses the SD-ID ``aztags@32473`` (32473 is the example enterprise number of RFC
5612, as no number is registered for aztags); ``"``, ``\\`` and ``]`` in values are escaped.

Size: a UDP datagram is kept to at most 2,048 bytes (RFC 5426 says receivers should take
2,048) and a TCP message to at most 8,000 bytes (rsyslog's default maximum is 8 KiB), by listing
fewer prefixes in MSG ("... and 1,234 more prefixes"); the counts in the structured data are
always whole.

Status: sent datagrams are SENT (UDP has no answer); on TCP a connection that cannot be made or
breaks is a RETRY, as is a host name that does not resolve (DNS can fail for a while).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import resolver.alerts.channels.base as base
from resolver.alerts.event import EventType, Severity
from resolver.alerts.message import Message, SendResult, SendStatus

DEFAULT_PORT = 514
UDP_MAX = 2048
TCP_MAX = 8000
APP_NAME = "aztags"
SD_ID = "aztags@32473"
BOM = "\ufeff"
FACILITIES = {
    "kern": 0,
    "user": 1,
    "mail": 2,
    "daemon": 3,
    "auth": 4,
    "syslog": 5,
    "lpr": 6,
    "news": 7,
    "uucp": 8,
    "cron": 9,
    "authpriv": 10,
    "ftp": 11,
    "ntp": 12,
    "security": 13,
    "console": 14,
    "solaris-cron": 15,
    **{f"local{n}": 16 + n for n in range(8)},
}
DEFAULT_FACILITY = "local0"
SEVERITIES = {Severity.NOTICE: 5, Severity.WARNING: 4, Severity.ERROR: 3}
MSGIDS = {
    EventType.CHANGED: "PREFIX_CHANGE",
    EventType.QUARANTINED: "QUARANTINED",
    EventType.GAP: "GAP",
    EventType.FETCH_FAILING: "FETCH_FAIL",
    EventType.STALE: "STALE",
    EventType.API_LAG: "API_LAG",
    EventType.TEST: "TEST",
}


def sd_escape(value: str) -> str:
    """An SD-PARAM value: ``\\``, ``"`` and ``]`` escaped with a backslash (RFC 5424 6.3.3)."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def _header_field(value: str, limit: int) -> str:
    """A HEADER field: printable US-ASCII without spaces, at most ``limit`` long, else ``-``."""
    cleaned = "".join(c for c in value if 33 <= ord(c) <= 126)[:limit]
    return cleaned or "-"


def _timestamp(moment: datetime) -> str:
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _structured_data(event: Mapping[str, Any], message: Message) -> str:
    data = event.get("data") or {}
    params: list[tuple[str, object]] = [
        ("id", event["id"]),
        ("message", message.id),
        ("type", event["type"]),
        ("cloud", event.get("cloud", "")),
        ("watch", event.get("watch", "")),
    ]
    tags = [t for t in data.get("tags") or [] if isinstance(t, dict)]
    if tags:
        added = sum(len(t.get("added") or []) + int(t.get("added_omitted", 0)) for t in tags)
        removed = sum(len(t.get("removed") or []) + int(t.get("removed_omitted", 0)) for t in tags)
        params += [("tags", len(tags)), ("added", added), ("removed", removed)]
    for side in ("from", "to"):
        snapshot = data.get(side)
        if isinstance(snapshot, Mapping) and "change_number" in snapshot:
            params.append((side, snapshot["change_number"]))
    for key, value in base.event_facts(event):
        name = _header_field(key.replace("=", "_").replace("]", "_").replace('"', "_"), 32)
        if name not in {p for p, _ in params}:
            params.append((name, value))
    inner = " ".join(f'{name}="{sd_escape(str(value))}"' for name, value in params)
    return f"[{SD_ID} {inner}]"


def _prefix_tokens(event: Mapping[str, Any]) -> tuple[list[str], int]:
    """``Tag +p1 +p2 -p3`` tokens of an event, and how many prefixes it holds in all."""
    tokens: list[str] = []
    total = 0
    for tag in (event.get("data") or {}).get("tags") or []:
        if not isinstance(tag, dict):
            continue
        tokens.append(f"| {tag.get('name', '?')}")
        for key, sign in (("added", "+"), ("removed", "-")):
            items = [str(p) for p in tag.get(key) or []]
            tokens += [f"{sign}{p}" for p in items]
            total += len(items) + int(tag.get(f"{key}_omitted", 0) or 0)
    return tokens, total


def _fit(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` UTF-8 bytes (never inside a character)."""
    raw = text.encode("utf-8")
    if len(raw) <= limit:
        return text
    return raw[: max(limit, 0)].decode("utf-8", "ignore")


def render(
    message: Message,
    *,
    facility: str = DEFAULT_FACILITY,
    hostname: str | None = None,
    procid: int | None = None,
    max_bytes: int = UDP_MAX,
) -> list[bytes]:
    """One RFC 5424 message per event (no framing), each at most ``max_bytes`` long."""
    host = _header_field(hostname if hostname is not None else socket.gethostname(), 255)
    pid = str(os.getpid() if procid is None else procid)
    document = base.message_document(message)
    lines = []
    for source, event in zip(message.events, document["data"]["events"], strict=True):
        pri = FACILITIES[facility] * 8 + SEVERITIES.get(source.severity, 5)
        header = (
            f"<{pri}>1 {_timestamp(source.created)} {host} {APP_NAME} "
            f"{_header_field(pid, 128)} {MSGIDS.get(source.type, 'EVENT')}"
        )
        head = f"{header} {_structured_data(event, message)} ".encode()
        room = max_bytes - len(head)
        summary = BOM + " ".join(str(event.get("summary", "")).split())
        tokens, total = _prefix_tokens(event)
        text = summary
        shown = 0
        for token in tokens:
            closing = f" ... and {base.plural(total, 'more prefix')}"
            candidate = f"{text} {token}"
            if len((candidate + closing).encode()) > room:
                text += f" ... and {base.plural(total - shown, 'more prefix')}"
                break
            text = candidate
            shown += 0 if token.startswith("|") else 1
        else:
            if shown < total:
                text += f" ... and {base.plural(total - shown, 'more prefix')}"
        lines.append(head + _fit(text, room).encode("utf-8"))
    return lines


def frame(line: bytes) -> bytes:
    """Octet counting (RFC 6587 3.4.1, RFC 5425 4.3): ``MSG-LEN SP SYSLOG-MSG``."""
    return str(len(line)).encode() + b" " + line


def send(channel: base.Channel, message: Message, timeout: float) -> SendResult:
    """The events as syslog messages: datagrams over UDP, frames on one TCP connection."""
    label = base.label(channel)
    host = str(channel.get("host") or "")
    port = int(channel.get("port") or DEFAULT_PORT)  # type: ignore[call-overload]
    protocol = str(channel.get("protocol") or "udp")
    facility = str(channel.get("facility") or DEFAULT_FACILITY)
    where = f"{label}: the syslog receiver {host}:{port} ({protocol.upper()})"
    if facility not in FACILITIES:
        return SendResult(
            SendStatus.PERMANENT,
            f"{label}: unknown facility {facility!r}; use one of {', '.join(FACILITIES)}.",
        )
    lines = render(message, facility=facility, max_bytes=TCP_MAX if protocol == "tcp" else UDP_MAX)
    try:
        if protocol == "tcp":
            with socket.create_connection((host, port), timeout=timeout) as sock:
                sock.sendall(b"".join(frame(line) for line in lines))
                sock.shutdown(socket.SHUT_WR)
        else:
            family, kind, proto, _, address = socket.getaddrinfo(
                host, port, type=socket.SOCK_DGRAM
            )[0]
            with socket.socket(family, kind, proto) as sock:
                sock.settimeout(timeout)
                for line in lines:
                    sock.sendto(line, address)
    except (OSError, UnicodeError) as e:
        return SendResult(SendStatus.RETRY, f"{where}: {base.os_reason(e)}; will try again.")
    return SendResult(
        SendStatus.SENT, f"{where} was sent {base.plural(len(lines), 'syslog message')}."
    )
