"""Slack incoming webhook: one post per message, Block Kit sections with a plain-text fallback.

The webhook URL is a bearer secret: write it as ``url = "env:NAME"`` or ``"file:PATH"`` (a literal
URL works too); no sentence ever shows more of it than ``https://hooks.slack.com``.

Limits kept: at most 50 blocks (a header, one section per event, and a closing context line
"... and N more alerts" when there are more), at most 3,000 characters per section text (prefix
lines left out are counted: "... and 1,234 more prefixes"), text from events escaped (``&``,
``<``, ``>``), at most ``MAX_PREFIXES`` prefixes per message.

Status: 200 SENT (Slack answers ``ok``); 410, or a 4xx whose body is ``no_service``, ``no_team``,
``team_disabled``, ``channel_is_archived`` or ``invalid_token`` (the webhook was revoked or its
channel is gone) DISABLE; 429 and 5xx RETRY with Retry-After; other 4xx (``invalid_payload``,
``channel_not_found``, ``action_prohibited``) PERMANENT.
"""

from __future__ import annotations

import json
from typing import Any

import resolver.alerts.channels.base as base
from resolver.alerts.message import Message, SendResult, SendStatus

MAX_BLOCKS = 50
SECTION_CHARS = 3000
HEADER_CHARS = 150
FALLBACK_CHARS = 3000
MAX_PREFIXES = 2000
DISABLE_BODIES = frozenset(
    {"no_service", "no_team", "team_disabled", "channel_is_archived", "invalid_token"}
)


def escape(text: str) -> str:
    """Text for mrkdwn: ``&``, ``<`` and ``>`` escaped (Slack reads ``<...>`` as links)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def render(message: Message, *, max_prefixes: int = MAX_PREFIXES) -> dict[str, Any]:
    """The JSON payload: ``text`` (the notification) and ``blocks``."""
    document = base.message_document(message, max_prefixes=max_prefixes)
    events = document["data"]["events"]
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {
                "type": "plain_text",
                "text": _cut("aztags: " + base.headline(message), HEADER_CHARS),
            },
        }
    ]
    room = MAX_BLOCKS - 1 - (1 if len(events) > MAX_BLOCKS - 1 else 0)
    for event in events[:room]:
        lines = base.event_lines(
            event,
            limit=SECTION_CHARS,
            escape=escape,
            prefix_format=lambda p: f"`{p}`",
            title=lambda s: f"*{s}*",
        )
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)}})
    left = len(message.events) - min(len(events), room)
    if left > 0:
        blocks.append(
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": f"... and {base.plural(left, 'more alert')} "
                        "(see `aztags alerts list`)",
                    }
                ],
            }
        )
    return {"text": _cut(escape(base.headline(message)), FALLBACK_CHARS), "blocks": blocks}


def body(message: Message) -> bytes:
    return json.dumps(render(message), ensure_ascii=False).encode("utf-8")


def result(
    channel: base.Channel, address: str, response: base.Response, hide: base.Hider
) -> SendResult:
    """Slack's status classes on top of the webhook ones (see the module docstring)."""
    said = response.body.strip()
    if 400 <= response.status < 500 and said in DISABLE_BODIES:
        return SendResult(
            SendStatus.DISABLE,
            f"{base.label(channel)}: Slack answered HTTP {response.status} ({said}): the webhook "
            "was revoked or its channel is gone; the channel is disabled until its url is "
            "replaced.",
        )
    if response.status == 200:
        return SendResult(SendStatus.SENT, f"{base.label(channel)}: Slack took the message.")
    return base.http_result(channel, address, response, hide)


def send(channel: base.Channel, message: Message, timeout: float) -> SendResult:
    """One POST of the message to the Slack webhook."""
    return base.send_to_url(channel, body(message), timeout, result)
