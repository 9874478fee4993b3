"""The alert channels: per type, how a message is rendered and how ONE attempt sends it.

    from resolver.alerts.channels import send, check_channel
    result = send(channel, message)          # channel: a checked [[channel]] entry (a dict)

``send`` never retries: it reports what the attempt did (a ``SendResult``: SENT, RETRY with the
receiver's ``Retry-After``, PERMANENT, DISABLE) and the delivery worker decides what happens next.
No sentence it returns holds a secret (``secret``, ``password``, the URL of a Slack or Teams
webhook, the path or query of any URL).

Types (``CHANNELS``) and the keys each uses (``timeout`` and ``name``/``type`` for all):

- ``webhook``: url, secret (``whsec_``: Standard Webhooks signature), github_signature, ca_file
- ``slack``: url (a secret: ``env:``/``file:`` or the URL), ca_file
- ``teams``: url (a secret, as for Slack), ca_file
- ``email``: host, port, tls, username, password, from, to, ca_file
- ``syslog``: host, port, protocol (udp | tcp), facility
- ``command``: argv

``timeout`` (seconds) of the channel wins; otherwise a command may run 30 s and the others get
``send``'s ``timeout`` argument (15 s). The body of every JSON channel and the command's stdin is
``message_document(message)`` (see ``base``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from resolver.alerts.channels import base, command, email, slack, syslog, teams, webhook
from resolver.alerts.channels.base import message_document
from resolver.alerts.message import Message, SendResult, SendStatus
from resolver.alerts.secrets import is_reference, reference_problem

__all__ = ["CHANNELS", "ChannelType", "check_channel", "message_document", "send"]

COMMON_KEYS = frozenset({"name", "type", "timeout"})


@dataclass(frozen=True, slots=True)
class ChannelType:
    """One kind of channel: the keys it uses (``required`` among them), which are secrets, and
    the function making one attempt."""

    name: str
    send: Callable[[Mapping[str, object], Message, float], SendResult]
    keys: frozenset[str]
    required: tuple[str, ...]
    secrets: tuple[str, ...] = ()
    default_timeout: float | None = None

    def uses(self, key: str) -> bool:
        return key in self.keys or key in COMMON_KEYS


_EXAMPLES = {
    "url": '"https://hooks.example.internal/aztags" (or "env:NAME")',
    "host": '"relay.example.internal"',
    "from": '"aztags@example.internal"',
    "to": '["netops@example.internal"]',
    "argv": '["/usr/local/bin/on-alert", "--json"]',
}

CHANNELS: Mapping[str, ChannelType] = {
    t.name: t
    for t in (
        ChannelType(
            "webhook",
            webhook.send,
            frozenset({"url", "secret", "github_signature", "ca_file"}),
            ("url",),
            ("secret",),
        ),
        ChannelType(
            "slack",
            slack.send,
            frozenset({"url", "ca_file"}),
            ("url",),
        ),
        ChannelType(
            "teams",
            teams.send,
            frozenset({"url", "ca_file"}),
            ("url",),
        ),
        ChannelType(
            "email",
            email.send,
            frozenset({"host", "port", "tls", "username", "password", "from", "to", "ca_file"}),
            ("host", "from", "to"),
            ("password",),
        ),
        ChannelType(
            "syslog",
            syslog.send,
            frozenset({"host", "port", "protocol", "facility"}),
            ("host",),
        ),
        ChannelType(
            "command",
            command.send,
            frozenset({"argv"}),
            ("argv",),
            default_timeout=command.DEFAULT_TIMEOUT,
        ),
    )
}


def _named(channel: Mapping[str, object]) -> str:
    return f'Channel "{channel.get("name", "?")}" ({channel.get("type", "?")})'


def check_channel(channel: Mapping[str, object]) -> list[str]:
    """What is wrong with a ``[[channel]]`` entry beyond its keys' types (which the config
    loader checks): keys the type does not use, missing keys, secrets written into the file,
    URLs that are not http(s). One sentence per problem, each naming the channel."""
    named = _named(channel)
    kind = CHANNELS.get(str(channel.get("type")))
    if kind is None:
        return [f"{named} has an unknown type; use one of {', '.join(CHANNELS)}."]
    problems = []
    unused = sorted(k for k in channel if not kind.uses(k))
    if unused:
        problems.append(
            f"{named} has settings a {kind.name} channel does not use: {', '.join(unused)}; "
            "remove them."
        )
    for key in kind.required:
        value = channel.get(key)
        if value is None or value == "" or value == []:
            problems.append(f"{named} has no {key}; set {key} = {_EXAMPLES[key]}.")
    for key in kind.secrets:
        if channel.get(key) is not None:
            problem = reference_problem(channel[key], where=f"{base.label(channel)}, key {key}")
            if problem:
                problems.append(problem)
    address = channel.get("url")
    if kind.uses("url") and isinstance(address, str) and address:
        if is_reference(address):
            problem = reference_problem(address, where=f"{base.label(channel)}, key url")
            if problem:
                problems.append(problem)
        elif not address.lower().startswith(("https://", "http://")):
            problems.append(
                f"{named} has a url that is not an http(s) URL; write it as https://... "
                '(or "env:NAME" / "file:PATH").'
            )
    if kind.name == "webhook" and channel.get("github_signature") and not channel.get("secret"):
        problems.append(
            f"{named} asks for github_signature but has no secret to sign with; set secret."
        )
    if kind.name == "email":
        if channel.get("username") and not channel.get("password"):
            problems.append(f'{named} has a username but no password; set password = "env:NAME".')
        if channel.get("password") and not channel.get("username"):
            problems.append(f"{named} has a password but no username; set username.")
        recipients = channel.get("to")
        listed = recipients if isinstance(recipients, list) else [recipients] if recipients else []
        for address in [channel.get("from"), *listed]:
            if isinstance(address, str) and address and "@" not in address:
                problems.append(f"{named} has {address!r}, which is not an email address.")
    if kind.name == "command":
        argv = channel.get("argv")
        if isinstance(argv, list) and argv and not str(argv[0]).strip():
            problems.append(f"{named} has an empty program name in argv[0]; name the program.")
    return problems


def send(channel: Mapping[str, object], message: Message, *, timeout: float = 15.0) -> SendResult:
    """One attempt to send ``message`` on ``channel`` (a checked ``[[channel]]`` entry)."""
    kind = CHANNELS.get(str(channel.get("type")))
    problems = check_channel(channel)
    if kind is None or problems:
        return SendResult(SendStatus.PERMANENT, problems[0])
    return kind.send(channel, message, timeout_for(channel, timeout))


def timeout_for(channel: Mapping[str, object], default: float = 15.0) -> float:
    """Seconds one attempt on ``channel`` may take: its ``timeout``, else its type's default
    (a command: 30 s), else ``default``. The delivery worker's claim lease is built on it."""
    configured = channel.get("timeout")
    if configured is not None:
        return float(configured)  # type: ignore[arg-type]
    kind = CHANNELS.get(str(channel.get("type")))
    return (kind.default_timeout if kind else None) or default
