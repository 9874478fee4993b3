"""Generic webhook: the event document POSTed as JSON, signed per Standard Webhooks.

Headers of every attempt: ``webhook-id`` (the message id, the same on every attempt: receivers
dedupe on it), ``webhook-timestamp`` (this attempt, Unix seconds) and, when the channel has a
``secret`` (``whsec_`` + base64, read from ``env:``/``file:``), ``webhook-signature: v1,<base64
HMAC-SHA256 of "id.timestamp.body">``. With ``github_signature = true`` also
``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>``, keyed with the secret as written
(the whole ``whsec_...`` text), which is what a GitHub-style receiver configured with the same
text computes.

Status classes (``base.http_result``): 2xx SENT; 3xx PERMANENT (redirects are not followed, as
the spec says; the same URL would redirect again, so the url must change); 408, 425, 429 and 5xx,
timeouts and connection errors RETRY with ``Retry-After``; 410 DISABLE; other 4xx PERMANENT.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from typing import Any

import resolver.alerts.channels.base as base
from resolver.alerts.message import Message, SendResult, SendStatus

MAX_PREFIXES = 1000  # inline prefixes per message; the counts tell the rest
SECRET_PREFIX = "whsec_"


def dumps(document: Any) -> bytes:
    """Compact UTF-8 JSON: the bytes that are signed and sent."""
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def render(message: Message, *, max_prefixes: int = MAX_PREFIXES) -> bytes:
    """The body: the event document with at most ``max_prefixes`` prefixes inline."""
    return dumps(base.message_document(message, max_prefixes=max_prefixes))


def signing_key(secret: str) -> bytes:
    """The HMAC key of a Standard Webhooks secret: the bytes base64-encoded after ``whsec_``
    (decoded as the reference library does). ValueError when they are not base64 or empty."""
    encoded = secret[len(SECRET_PREFIX) :] if secret.startswith(SECRET_PREFIX) else secret
    try:
        key = base64.b64decode(encoded + "==")
    except (binascii.Error, ValueError):
        raise ValueError("not base64") from None
    if not key:
        raise ValueError("empty")
    return key


def standard_signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64>``: HMAC-SHA256 over ``"{msg_id}.{timestamp}.{body}"``."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(signing_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def github_signature(secret: str, body: bytes) -> str:
    """``sha256=<hex>``: GitHub's X-Hub-Signature-256, HMAC-SHA256 of the raw body."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def headers(
    message: Message,
    body: bytes,
    *,
    secret: str | None,
    github: bool = False,
    timestamp: int | None = None,
) -> dict[str, str]:
    """The headers of one attempt (``timestamp``: now, unless given)."""
    stamp = int(time.time()) if timestamp is None else timestamp
    result = {"webhook-id": message.id, "webhook-timestamp": str(stamp)}
    if secret:
        result["webhook-signature"] = standard_signature(secret, message.id, stamp, body)
        if github:
            result["X-Hub-Signature-256"] = github_signature(secret, body)
    return result


def send(channel: base.Channel, message: Message, timeout: float) -> SendResult:
    """One POST of the message to the channel's url."""
    try:
        secret = base.secret(channel, "secret")
        address = base.url(channel)
    except base.SecretProblem as e:
        return SendResult(SendStatus.PERMANENT, str(e))
    hide = base.Hider([address, secret])
    body = render(message)
    try:
        extra = headers(message, body, secret=secret, github=bool(channel.get("github_signature")))
    except ValueError:
        return SendResult(
            SendStatus.PERMANENT,
            f"{base.label(channel)}: the secret is not a Standard Webhooks secret (whsec_ "
            'followed by base64); generate one with: python3 -c "import base64, os; '
            "print('whsec_' + base64.b64encode(os.urandom(32)).decode())\".",
        )
    response = base.post(channel, address, body, extra, timeout, hide)
    if isinstance(response, SendResult):
        return hide.result(response)
    return hide.result(base.http_result(channel, address, response, hide))
