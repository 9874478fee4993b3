"""Microsoft Teams Workflows webhook: an Adaptive Card 1.4 in a ``message`` envelope.

The Workflows template "Send webhook alerts to a channel" posts the card it receives; versions
above 1.4 render as "this card couldn't be displayed", and requests above 28,672 bytes are
refused (``MessageSizeExceeded``), so the card is rendered with fewer prefixes, then fewer
events, until the body is at most ``MAX_BYTES``; the card then says what it left out.

The URL carries a SAS signature (``sig=...``) in its query: it is a secret (write it as
``url = "env:NAME"`` or ``"file:PATH"``), it is sent exactly as written (never re-encoded, or
``sig`` breaks and Teams answers 401) and no sentence shows more than its scheme and host.

Status: 200 and 202 (Workflows answer asynchronously) SENT, and every other status as for the
generic webhook (3xx PERMANENT, 408/429/5xx RETRY, 410 DISABLE, other 4xx PERMANENT). The legacy
connector answered throttling with 200 and "Microsoft Teams endpoint returned HTTP error 429" in
the body: that is a RETRY too.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import resolver.alerts.channels.base as base
from resolver.alerts.message import Message, SendResult, SendStatus

MAX_BYTES = 27 * 1024  # Teams refuses more than 28,672 bytes; keep a margin
CARD_VERSION = "1.4"
PREFIX_STEPS = (1000, 300, 100, 30, 10, 0)
FACT_CHARS = 2000


def _tag_value(tag: Mapping[str, Any]) -> str:
    parts = []
    for key, sign in (("added", "+"), ("removed", "−")):
        shown = [str(p) for p in tag.get(key) or []]
        left = int(tag.get(f"{key}_omitted", 0) or 0)
        total = len(shown) + left
        if not total:
            continue
        text = f"{sign}{total:,}: " + ", ".join(shown)
        if left:
            text += (", " if shown else "") + f"... and {left:,} more"
        parts.append(text)
    value = "\n".join(parts) or "no prefix change"
    return value if len(value) <= FACT_CHARS else value[: FACT_CHARS - 3] + "..."


def card(document: Mapping[str, Any], title: str) -> dict[str, Any]:
    """The Adaptive Card of an event document (``base.message_document``)."""
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "size": "Medium", "weight": "Bolder", "text": title, "wrap": True}
    ]
    for event in document["data"]["events"]:
        items: list[dict[str, Any]] = [
            {"type": "TextBlock", "weight": "Bolder", "text": event["summary"], "wrap": True},
            {
                "type": "TextBlock",
                "isSubtle": True,
                "spacing": "None",
                "text": base.event_context(event),
                "wrap": True,
            },
        ]
        facts = [
            {"title": str(tag.get("name", "?")), "value": _tag_value(tag)}
            for tag in (event.get("data") or {}).get("tags") or []
            if isinstance(tag, dict)
        ]
        facts += [{"title": k, "value": v} for k, v in base.event_facts(event)]
        if facts:
            items.append({"type": "FactSet", "facts": facts})
        body.append({"type": "Container", "separator": True, "items": items})
    counts = document["data"]["counts"]
    notes = []
    if counts["prefixes_omitted"]:
        notes.append(
            f"{base.plural(counts['prefixes_omitted'], 'prefix')} left out to fit Teams' size limit"
        )
    more = base.omitted_events_line(document)
    if more:
        notes.append(more)
    if notes:
        body.append(
            {"type": "TextBlock", "isSubtle": True, "text": "; ".join(notes) + ".", "wrap": True}
        )
    return {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": CARD_VERSION,
        "msteams": {"width": "Full"},
        "body": body,
    }


def envelope(content: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": content,
            }
        ],
    }


def _encode(payload: Mapping[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def render(message: Message, *, max_bytes: int = MAX_BYTES) -> bytes:
    """The request body, at most ``max_bytes`` long: fewer prefixes first, then fewer events."""
    title = "aztags: " + base.headline(message)
    for max_prefixes in PREFIX_STEPS:
        payload = envelope(card(base.message_document(message, max_prefixes=max_prefixes), title))
        encoded = _encode(payload)
        if len(encoded) <= max_bytes:
            return encoded
    events = len(message.events)
    while events > 0:
        events //= 2
        document = base.message_document(message, max_prefixes=0, max_events=events)
        encoded = _encode(envelope(card(document, title[:200])))
        if len(encoded) <= max_bytes:
            return encoded
    return encoded  # one header line cannot be too big, but never loop forever


def send(channel: base.Channel, message: Message, timeout: float) -> SendResult:
    """One POST of the card to the Workflows URL, sent exactly as configured."""
    return base.send_to_url(channel, render(message), timeout, _answer)


def _answer(
    channel: base.Channel, address: str, response: base.Response, hide: base.Hider
) -> SendResult:
    """The webhook status classes, and the legacy connectors' 429 inside a 200."""
    if 200 <= response.status < 300 and "returned HTTP error 429" in response.body:
        return SendResult(
            SendStatus.RETRY,
            f"{base.label(channel)}: Teams is throttling this webhook (HTTP 429 in the answer); "
            "will try again.",
        )
    return base.http_result(channel, address, response, hide)
