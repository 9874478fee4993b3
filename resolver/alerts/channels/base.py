"""What every channel shares: the event document and its truncation, the text people read, the
HTTP attempt and its status classes, Retry-After, and keeping secrets out of every sentence.

The document (``message_document``) is the one body every JSON channel and the command receive::

    {"type": "aztags.events", "timestamp": "2025-11-10T06:00:00Z",
     "data": {"message_id": "msg_...", "channel": "netops",
              "events": [Event.as_json(), ...],
              "truncated": false,
              "counts": {"events": 2, "events_sent": 2, "tags": 3, "added": 12, "removed": 1,
                         "prefixes_omitted": 0}}}

``timestamp`` is when the message was made (the same on every attempt, so a retry sends the same
bytes). When a message holds more prefixes than a channel takes, the prefix lists of the changed
tags are cut (in order: events, then tags, added before removed), each cut list's tag gets
``added_omitted`` / ``removed_omitted`` (how many were left out), ``truncated`` is true and
``counts.prefixes_omitted`` says how many in all. The counts always describe the whole message.
"""

from __future__ import annotations

import logging
import socket
import ssl
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from resolver.alerts.event import EventType
from resolver.alerts.message import Message, SendResult, SendStatus
from resolver.alerts.secrets import is_reference, resolve_secret
from resolver.errors import ConfigError

DOCUMENT_TYPE = "aztags.events"
HIDDEN = "***"
Channel = Mapping[str, object]


# -- the document ------------------------------------------------------------------------------


def _iso(moment: datetime) -> str:
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.replace(tzinfo=None).isoformat() + "Z"


def _tags(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The changed tags of an event's data (``[]`` for types without them)."""
    tags = data.get("tags")
    if not isinstance(tags, list):
        return []
    return [t for t in tags if isinstance(t, dict)]


def _prefixes(tag: Mapping[str, Any], key: str) -> list[Any]:
    value = tag.get(key)
    return list(value) if isinstance(value, list | tuple) else []


def message_counts(message: Message) -> dict[str, int]:
    """How many events, changed tags, added and removed prefixes the whole message holds."""
    tags = added = removed = 0
    for event in message.events:
        for tag in _tags(event.data):
            tags += 1
            added += len(_prefixes(tag, "added"))
            removed += len(_prefixes(tag, "removed"))
    return {"events": len(message.events), "tags": tags, "added": added, "removed": removed}


def message_document(
    message: Message, *, max_prefixes: int | None = None, max_events: int | None = None
) -> dict[str, Any]:
    """The JSON document of ``message`` (see the module docstring), with at most
    ``max_prefixes`` prefixes inline and at most ``max_events`` events (None: no cap)."""
    counts = message_counts(message)
    budget = max_prefixes
    omitted = 0
    events: list[dict[str, Any]] = []
    shown_events = message.events if max_events is None else message.events[: max(max_events, 0)]
    for event in shown_events:
        doc = event.as_json()
        tags = _tags(event.data)
        if tags:
            data = dict(doc["data"])
            cut_tags = []
            for tag in tags:
                tag = dict(tag)
                for key in ("added", "removed"):
                    items = _prefixes(tag, key)
                    if key not in tag:
                        continue
                    keep = len(items) if budget is None else min(len(items), budget)
                    if budget is not None:
                        budget -= keep
                    if keep < len(items):
                        tag[key] = items[:keep]
                        tag[f"{key}_omitted"] = len(items) - keep
                        omitted += len(items) - keep
                    else:
                        tag[key] = items
                cut_tags.append(tag)
            data["tags"] = cut_tags
            doc["data"] = data
        events.append(doc)
    for event in message.events[len(shown_events) :]:
        for tag in _tags(event.data):
            omitted += len(_prefixes(tag, "added")) + len(_prefixes(tag, "removed"))
    counts["events_sent"] = len(events)
    counts["prefixes_omitted"] = omitted
    return {
        "type": DOCUMENT_TYPE,
        "timestamp": _iso(message.created),
        "data": {
            "message_id": message.id,
            "channel": message.channel,
            "events": events,
            "truncated": omitted > 0 or len(events) < len(message.events),
            "counts": counts,
        },
    }


# -- text for people ---------------------------------------------------------------------------


def plural(n: int, word: str) -> str:
    """``1 prefix``, ``3 prefixes``, ``1,234 alerts``."""
    if n == 1:
        return f"{n:,} {word}"
    return f"{n:,} {word}{'es' if word.endswith(('x', 's')) else 's'}"


def headline(message: Message) -> str:
    """One line for a subject, a chat notification or a log: what the message holds."""
    counts = message_counts(message)
    n = counts["events"]
    if n == 1:
        return message.events[0].summary
    text = f"{plural(n, 'alert')}"
    if counts["tags"]:
        text += (
            f": {plural(counts['tags'], 'tag')} changed, "
            f"+{counts['added']:,} -{counts['removed']:,} prefixes"
        )
    return text


def _total(tag: Mapping[str, Any], key: str) -> int:
    return len(_prefixes(tag, key)) + int(tag.get(f"{key}_omitted", 0) or 0)


def _snapshot(side: object) -> str:
    if not isinstance(side, Mapping):
        return "?"
    text = str(side.get("change_number", "?"))
    if side.get("file_date"):
        text += f" ({side['file_date']})"
    return text


def event_context(event: Mapping[str, Any]) -> str:
    """The line under an event's summary: cloud, watch, snapshots (from an ``as_json`` dict)."""
    parts = [f"cloud {event.get('cloud', '?')}"]
    if event.get("watch"):
        parts.append(f"watch {event['watch']}")
    data = event.get("data") or {}
    if "from" in data or "to" in data:
        parts.append(f"changeNumber {_snapshot(data.get('from'))} → {_snapshot(data.get('to'))}")
    if data.get("azure_may_use_added_from"):
        parts.append(f"Azure may use added prefixes from {data['azure_may_use_added_from']}")
    return ", ".join(parts)


def event_facts(event: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The plain values of an event other than a change (a gap's numbers, a failure's reason)."""
    data = event.get("data") or {}
    if str(event.get("type")) == str(EventType.CHANGED):
        return []
    return [
        (str(k), str(v))
        for k, v in data.items()
        if isinstance(v, str | int | float | bool) and k not in ("from", "to")
    ]


def event_lines(
    event: Mapping[str, Any],
    *,
    limit: int | None = None,
    escape: Callable[[str], str] = lambda s: s,
    prefix_format: Callable[[str], str] = lambda s: s,
    title: Callable[[str], str] = lambda s: s,
) -> list[str]:
    """The lines people read about one event (an ``as_json`` dict, possibly truncated by
    ``message_document``): summary, context, each tag with its added (``+``) and removed (``-``)
    prefixes, and "... and N more prefixes" for what is left out.

    With ``limit``, the lines joined by newlines stay within ``limit`` characters: prefix lines
    are dropped from the end and counted in the closing line. ``escape`` is applied to every text
    taken from the event (Slack's ``&<>``), ``prefix_format`` wraps a prefix, ``title`` the
    summary (bold in chat)."""
    head = [title(escape(str(event.get("summary", "")))), escape(event_context(event))]
    head += [escape(f"{k}: {v}") for k, v in event_facts(event)]
    body: list[tuple[str, int]] = []  # (line, prefixes it shows)
    for tag in _tags(event.get("data") or {}):
        added, removed = _total(tag, "added"), _total(tag, "removed")
        change = tag.get("change", "changed")
        body.append((escape(f"{tag.get('name', '?')} ({change}): +{added:,} -{removed:,}"), 0))
        for key, sign in (("added", "+"), ("removed", "-")):
            for prefix in _prefixes(tag, key):
                body.append((f"  {sign} {prefix_format(escape(str(prefix)))}", 1))
            left = int(tag.get(f"{key}_omitted", 0) or 0)
            if left:
                body.append((f"  ... and {plural(left, f'more {key} prefix')}", 0))
    lines = head + [line for line, _ in body]
    if limit is None or _length(lines) <= limit:
        return lines
    # Keep what fits, then one line counting every prefix not shown (the per-list remainders
    # are folded into it).
    total_prefixes = sum(_total(t, "added") + _total(t, "removed") for t in _tags(event["data"]))
    kept = list(head)
    shown = 0
    for line, count in body:
        if count == 0 and line.startswith("  ... and"):
            continue
        closing = f"... and {plural(total_prefixes - shown - count, 'more prefix')}"
        if _length([*kept, line, closing]) > limit:
            break
        kept.append(line)
        shown += count
    kept.append(f"... and {plural(total_prefixes - shown, 'more prefix')}")
    while _length(kept) > limit and len(kept) > 1:
        kept.pop(-2)
    return kept


def _length(lines: Iterable[str]) -> int:
    lines = list(lines)
    return sum(len(line) for line in lines) + max(len(lines) - 1, 0)


def omitted_events_line(document: Mapping[str, Any]) -> str | None:
    """ "... and 3 more alerts (aztags alerts list)" when events were left out, else None."""
    counts = document["data"]["counts"]
    left = counts["events"] - counts["events_sent"]
    if left <= 0:
        return None
    return f"... and {plural(left, 'more alert')} (see aztags alerts list)"


# -- channel settings and secrets ----------------------------------------------------------------


def label(channel: Channel) -> str:
    """``channel "netops"``: how sentences name a channel."""
    return f'channel "{channel.get("name", "?")}"'


class SecretProblem(Exception):
    """A secret of the channel cannot be read: the attempt fails permanently with this text."""


def secret(channel: Channel, key: str) -> str | None:
    """The resolved secret under ``key`` (``env:``/``file:``), or None when the key is unset.
    A value that cannot be resolved raises SecretProblem with a sentence without the secret."""
    value = channel.get(key)
    if value is None or value == "":
        return None
    try:
        return resolve_secret(str(value), where=f"{label(channel)}, key {key}")
    except ConfigError as e:
        raise SecretProblem(str(e)) from None


def url(channel: Channel) -> str:
    """The channel's URL: for Slack and Teams the URL is itself a secret, so it may be written
    as ``env:NAME`` or ``file:PATH``; a literal URL is used as written (never re-encoded)."""
    value = str(channel.get("url") or "")
    if is_reference(value):
        resolved = secret(channel, "url")
        return (resolved or "").strip()
    return value


def origin(address: str) -> str:
    """``https://host:port`` of a URL: what a sentence may show of it (no user, path or query)."""
    scheme, sep, rest = address.partition("://")
    if not sep:
        return "the configured URL"
    authority = rest
    for stop in "/?#":
        authority = authority.split(stop, 1)[0]
    authority = authority.rpartition("@")[2]
    return f"{scheme}://{authority}"


class _ScrubLogs(logging.Filter):
    """Keeps the secrets of channels out of the debug logs of urllib3 and requests (urllib3
    logs every request line, and a Slack or Teams URL's path and query are its secret)."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        try:
            text = record.getMessage()
        except Exception:  # a malformed record is the logging module's business
            return True
        scrubbed = text
        for value in sorted(self.secrets, key=len, reverse=True):
            scrubbed = scrubbed.replace(value, HIDDEN)
        if scrubbed != text:
            record.msg, record.args = scrubbed, None
        return True


_LOG_SCRUBBER = _ScrubLogs()
for _name in (
    "urllib3.connectionpool",
    "urllib3.connection",
    "urllib3.poolmanager",
    "urllib3.response",
    "urllib3.util.retry",
    "requests",
):
    logging.getLogger(_name).addFilter(_LOG_SCRUBBER)


class Hider:
    """Replaces every secret (and its parts: a URL's path, query, user info) by ``***``."""

    def __init__(self, secrets: Iterable[str | None]):
        found: set[str] = set()
        for value in secrets:
            if not value:
                continue
            found.add(value)
            scheme, sep, rest = value.partition("://")
            if sep:
                authority, slash, tail = rest.partition("/")
                if slash:
                    path = tail.split("?", 1)[0]
                    found.update({tail, "/" + tail, path, "/" + path})
                    found.add(tail.split("?", 1)[-1] if "?" in tail else "")
                if "@" in authority:
                    found.add(authority.rpartition("@")[0])
        keep = {s for s in found if len(s) >= 4}
        self._secrets = sorted(keep, key=len, reverse=True)
        _LOG_SCRUBBER.secrets.update(keep)

    def __call__(self, text: str) -> str:
        for value in self._secrets:
            text = text.replace(value, HIDDEN)
        return text

    def result(self, result: SendResult) -> SendResult:
        return SendResult(result.status, self(result.detail), result.retry_after)


# -- errors ------------------------------------------------------------------------------------


def _chain(error: BaseException) -> Iterator[BaseException]:
    """``error`` and every exception it wraps (cause, context, urllib3's ``reason``, arguments),
    each once."""
    seen: set[int] = set()
    stack: list[BaseException] = [error]
    while stack:
        e = stack.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        for inner in (e.__cause__, e.__context__, getattr(e, "reason", None), *e.args):
            if isinstance(inner, BaseException):
                stack.append(inner)


def os_reason(error: BaseException) -> str:
    """A short reason for a network failure, from the exception and the ones it wraps, that
    quotes no URL: "connection refused", "the host name does not resolve", ..."""
    for e in _chain(error):
        if isinstance(e, ConnectionRefusedError):
            return "connection refused"
        if isinstance(e, ConnectionResetError):
            return "connection reset by the peer"
        if isinstance(e, socket.gaierror):
            return "the host name does not resolve"
        if isinstance(e, TimeoutError | socket.timeout):
            return "timed out"
        if isinstance(e, ssl.SSLCertVerificationError):
            return f"certificate verification failed ({e.verify_message})"
        if isinstance(e, OSError) and e.strerror:
            return e.strerror[0].lower() + e.strerror[1:]
    return "the connection failed"


def is_certificate_error(error: BaseException) -> bool:
    return any(isinstance(e, ssl.SSLCertVerificationError) for e in _chain(error))


def retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds asked for by a ``Retry-After`` header: delta-seconds or an HTTP date (a date in
    the past gives 0). None when absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(seconds, 0.0) if seconds == seconds and seconds != float("inf") else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    delta = (when - (now or datetime.now(UTC))).total_seconds()
    return max(delta, 0.0)


# -- HTTP ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Response:
    """A receiver's HTTP answer, as much of it as a delivery report needs."""

    status: int
    headers: Mapping[str, str]
    body: str  # the start of the body, decoded leniently


RESPONSE_BODY_CAP = 4096


def user_agent() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"aztags/{version('aztags')}"
    except PackageNotFoundError:
        return "aztags/0+unknown"


def post(
    channel: Channel,
    address: str,
    body: bytes,
    headers: Mapping[str, str],
    timeout: float,
    hide: Hider,
) -> Response | SendResult:
    """POST ``body`` to ``address`` once (no redirects followed, no retries): the response, or
    the SendResult of a failure to get one (timeouts and connection errors: RETRY; a certificate
    the client does not trust or a URL it cannot use: PERMANENT). ``ca_file`` of the channel,
    when set, is the CA bundle that verifies the receiver's certificate."""
    import requests

    target = origin(address)
    verify: bool | str = str(channel["ca_file"]) if channel.get("ca_file") else True
    all_headers = {"User-Agent": user_agent(), "Content-Type": "application/json", **headers}
    try:
        with requests.Session() as session:
            response = session.post(
                address,
                data=body,
                headers=all_headers,
                timeout=timeout,
                allow_redirects=False,
                verify=verify,
                stream=True,
            )
            try:
                raw = response.raw.read(RESPONSE_BODY_CAP, decode_content=True) or b""
            except Exception:  # the status is what counts; a body cut short is no failure
                raw = b""
            finally:
                response.close()
    except requests.exceptions.Timeout:
        return SendResult(
            SendStatus.RETRY,
            f"{label(channel)}: {target} did not answer within {timeout:g} s; will try again.",
        )
    except requests.exceptions.SSLError as e:
        if is_certificate_error(e):
            return SendResult(
                SendStatus.PERMANENT,
                f"{label(channel)}: the certificate of {target} is not trusted "
                f"({hide(os_reason(e))}); set ca_file to the CA that signed it or fix the "
                "server's certificate.",
            )
        return SendResult(
            SendStatus.RETRY,
            f"{label(channel)}: TLS with {target} failed ({hide(os_reason(e))}); will try again.",
        )
    except (
        requests.exceptions.InvalidURL,
        requests.exceptions.MissingSchema,
        requests.exceptions.InvalidSchema,
        requests.exceptions.InvalidHeader,
        UnicodeError,
        ValueError,
    ):
        return SendResult(
            SendStatus.PERMANENT,
            f"{label(channel)}: the url is not a usable http(s) URL; check url in the config.",
        )
    except (requests.exceptions.RequestException, OSError) as e:
        return SendResult(
            SendStatus.RETRY,
            f"{label(channel)}: cannot reach {target} ({hide(os_reason(e))}); will try again.",
        )
    text = raw.decode("utf-8", errors="replace")
    return Response(response.status_code, dict(response.headers), text)


RETRY_STATUSES = frozenset({408, 425, 429})


def excerpt(text: str, limit: int = 200) -> str:
    one_line = " ".join(text.split())
    return one_line if len(one_line) <= limit else one_line[: limit - 3] + "..."


def http_result(channel: Channel, address: str, response: Response, hide: Hider) -> SendResult:
    """The Standard Webhooks status classes: 2xx SENT; 3xx PERMANENT (redirects are not
    followed: the URL must be changed to where the receiver points); 408, 425, 429, 5xx RETRY
    with Retry-After; 410 DISABLE; other 4xx PERMANENT; anything else RETRY."""
    status = response.status
    target = origin(address)
    said = excerpt(hide(response.body))
    answer = f"HTTP {status}" + (f" ({said})" if said else "")
    where = f"{label(channel)}: {target}"
    wait = retry_after(_header(response.headers, "retry-after"))
    if 200 <= status < 300:
        return SendResult(SendStatus.SENT, f"{where} took the message (HTTP {status}).")
    if 300 <= status < 400:
        location = _header(response.headers, "location")
        to = f" to {origin(location)}" if location and "://" in location else ""
        return SendResult(
            SendStatus.PERMANENT,
            f"{where} answered HTTP {status}, a redirect{to}, which is not followed; set url "
            "to the address the receiver points to.",
        )
    if status == 410:
        return SendResult(
            SendStatus.DISABLE,
            f"{where} answered {answer}: the endpoint is gone; the channel is disabled until "
            "its url is fixed.",
        )
    if status in RETRY_STATUSES or 500 <= status < 600:
        return SendResult(
            SendStatus.RETRY, f"{where} answered {answer}; will try again.", retry_after=wait
        )
    if 400 <= status < 500:
        return SendResult(
            SendStatus.PERMANENT,
            f"{where} refused the message with {answer}; retrying cannot help, check the "
            "receiver and the channel's settings.",
        )
    return SendResult(SendStatus.RETRY, f"{where} answered {answer}; will try again.", wait)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    return next((v for k, v in headers.items() if k.lower() == name), None)


def send_to_url(
    channel: Channel,
    body: bytes,
    timeout: float,
    answer: Callable[[Channel, str, Response, Hider], SendResult] | None = None,
) -> SendResult:
    """One POST of ``body`` to the channel's url (a secret itself for Slack and Teams: it is
    hidden from every sentence), the answer read by ``answer`` (default: :func:`http_result`)."""
    try:
        address = url(channel)
    except SecretProblem as e:
        return SendResult(SendStatus.PERMANENT, str(e))
    hide = Hider([address])
    response = post(channel, address, body, {}, timeout, hide)
    if isinstance(response, SendResult):
        return hide.result(response)
    return hide.result((answer or http_result)(channel, address, response, hide))
