"""Email over SMTP: one plain-text message listing the changes, sent with verified TLS.

``tls = "starttls"`` (the default; port 587) upgrades a submission connection, ``"implicit"``
(port 465) speaks TLS from the start. Either way the server's certificate and host name are
verified (``ssl.create_default_context``, with ``ca_file`` as the CA bundle when set): smtplib's
own default for ``starttls()`` verifies nothing. With ``username`` the client logs in with
``password`` (``env:NAME`` or ``file:PATH``).

Headers: Subject with the counts (mail filters can route on them), From, To, Date (when the
message was made), Message-ID ``<msg_...@domain-of-from>`` (the same on every attempt, so a
resent copy is recognisably the same mail), ``Auto-Submitted: auto-generated`` (RFC 3834: no
out-of-office replies) and ``X-Auto-Response-Suppress: All`` (the same for Exchange).

Status: SMTP 4xx, a dropped connection, timeouts and other network errors RETRY; SMTP 5xx
(including a refused login), all recipients refused, and a server without STARTTLS PERMANENT; a
certificate that does not verify PERMANENT with a sentence saying to set ca_file or fix the
certificate. When only some recipients are refused the mail went to the others, so the attempt
is SENT (sending again would double it for them) and the detail names the refused ones.
"""

from __future__ import annotations

import smtplib
import ssl
from datetime import UTC
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import Any

import resolver.alerts.channels.base as base
from resolver.alerts.message import Message, SendResult, SendStatus

MAX_PREFIXES = 5000
SUBJECT_CHARS = 200
PORTS = {"starttls": 587, "implicit": 465}


def _domain(sender: str) -> str:
    address = parseaddr(sender)[1]
    domain = address.rpartition("@")[2]
    return domain if domain and all(c.isalnum() or c in ".-" for c in domain) else "aztags.invalid"


def text_body(message: Message, *, max_prefixes: int = MAX_PREFIXES) -> str:
    """The plain-text body: a headline, then each event with its tags and prefixes."""
    document = base.message_document(message, max_prefixes=max_prefixes)
    lines = [f"aztags: {base.headline(message)}", ""]
    for event in document["data"]["events"]:
        lines += base.event_lines(event)
        lines.append("")
    counts = document["data"]["counts"]
    if counts["prefixes_omitted"]:
        lines.append(
            f"{base.plural(counts['prefixes_omitted'], 'prefix')} are not listed to keep this "
            "mail readable; run aztags diff for the full list."
        )
        lines.append("")
    lines += [
        "-- ",
        f'Sent by aztags for channel "{message.channel}" (message {message.id}, '
        f"{base.plural(len(message.events), 'alert')}).",
    ]
    return "\n".join(lines) + "\n"


def render(
    message: Message, *, sender: str, to: list[str], max_prefixes: int = MAX_PREFIXES
) -> EmailMessage:
    """The mail, ready for ``send_message``."""
    mail = EmailMessage()
    subject = " ".join(f"[aztags] {base.headline(message)}".split())
    mail["Subject"] = subject if len(subject) <= SUBJECT_CHARS else subject[:197] + "..."
    mail["From"] = sender
    mail["To"] = ", ".join(to)
    created = message.created
    created = created.replace(tzinfo=UTC) if created.tzinfo is None else created.astimezone(UTC)
    mail["Date"] = format_datetime(created, usegmt=True)
    mail["Message-ID"] = f"<{message.id}@{_domain(sender)}>"
    mail["Auto-Submitted"] = "auto-generated"
    mail["X-Auto-Response-Suppress"] = "All"
    mail["X-Aztags-Message-Id"] = message.id
    mail.set_content(text_body(message, max_prefixes=max_prefixes))
    return mail


def _recipients(channel: base.Channel) -> list[str]:
    to = channel.get("to") or []
    return [str(t) for t in (to if isinstance(to, list) else [to])]


def send(channel: base.Channel, message: Message, timeout: float) -> SendResult:
    """One SMTP session: connect, TLS, login, send."""
    label = base.label(channel)
    try:
        password = base.secret(channel, "password")
    except base.SecretProblem as e:
        return SendResult(SendStatus.PERMANENT, str(e))
    hide = base.Hider([password])
    host = str(channel.get("host") or "")
    tls = str(channel.get("tls") or "starttls")
    port = int(channel.get("port") or PORTS.get(tls, 587))  # type: ignore[call-overload]
    where = f"{label}: the SMTP server {host}:{port}"
    ca_file = str(channel["ca_file"]) if channel.get("ca_file") else None
    try:
        mail = render(message, sender=str(channel.get("from") or ""), to=_recipients(channel))
    except (ValueError, TypeError) as e:
        return SendResult(
            SendStatus.PERMANENT, f"{label}: cannot write the mail ({e}); check from and to."
        )
    try:
        context = ssl.create_default_context(cafile=ca_file)
    except OSError as e:
        return SendResult(
            SendStatus.PERMANENT,
            f"{label}: cannot read ca_file {ca_file} ({e.strerror or e}); check the path.",
        )
    except ssl.SSLError:
        return SendResult(
            SendStatus.PERMANENT,
            f"{label}: ca_file {ca_file} holds no usable certificate; name a PEM CA bundle.",
        )
    try:
        refused = _session(channel, mail, host, port, tls, context, password, timeout)
    except ssl.SSLCertVerificationError as e:
        return SendResult(
            SendStatus.PERMANENT,
            f"{where} presented a certificate that does not verify ({e.verify_message}); set "
            "ca_file to the CA that signed it or fix the server's certificate.",
        )
    except _NoStartTls:
        return SendResult(
            SendStatus.PERMANENT,
            f'{where} does not offer STARTTLS; set tls = "implicit" (port 465) if it speaks '
            "TLS from the start, or use a server that offers TLS.",
        )
    except smtplib.SMTPNotSupportedError:
        return SendResult(
            SendStatus.PERMANENT,
            f"{where} does not offer AUTH (login); remove username and password from the "
            "channel if it takes mail without a login, or check host and port.",
        )
    except smtplib.SMTPRecipientsRefused as e:
        codes = {code for code, _ in e.recipients.values()}
        status = SendStatus.RETRY if all(400 <= c < 500 for c in codes) else SendStatus.PERMANENT
        listed = _refused_text(e.recipients)
        hint = "will try again." if status is SendStatus.RETRY else "check the addresses in to."
        return hide.result(
            SendResult(status, f"{where} refused every recipient ({listed}); {hint}")
        )
    except smtplib.SMTPResponseException as e:
        said = _said(e.smtp_error)
        what = "refused the login" if isinstance(e, smtplib.SMTPAuthenticationError) else "answered"
        if 400 <= e.smtp_code < 500:
            return hide.result(
                SendResult(
                    SendStatus.RETRY, f"{where} {what} {e.smtp_code} {said}; will try again."
                )
            )
        hint = (
            "check username and password"
            if isinstance(e, smtplib.SMTPAuthenticationError)
            else "retrying cannot help; check the channel's settings"
        )
        return hide.result(
            SendResult(SendStatus.PERMANENT, f"{where} {what} {e.smtp_code} {said}; {hint}.")
        )
    except smtplib.SMTPServerDisconnected:
        return SendResult(SendStatus.RETRY, f"{where} closed the connection; will try again.")
    except ssl.SSLError as e:
        return hide.result(
            SendResult(
                SendStatus.RETRY,
                f"{where}: TLS failed ({e.reason or type(e).__name__}); will try again (check "
                'that tls matches the port: "starttls" for 587, "implicit" for 465).',
            )
        )
    except (smtplib.SMTPException, OSError) as e:
        return hide.result(
            SendResult(SendStatus.RETRY, f"{where}: {base.os_reason(e)}; will try again.")
        )
    if refused:
        return hide.result(
            SendResult(
                SendStatus.SENT,
                f"{where} took the mail, but refused some recipients ({_refused_text(refused)}).",
            )
        )
    return SendResult(SendStatus.SENT, f"{where} took the mail.")


class _NoStartTls(Exception):
    """The server does not offer STARTTLS (sending without TLS is never an option)."""


def _session(
    channel: base.Channel,
    mail: EmailMessage,
    host: str,
    port: int,
    tls: str,
    context: ssl.SSLContext,
    password: str | None,
    timeout: float,
) -> dict[str, Any]:
    smtp: smtplib.SMTP
    if tls == "implicit":
        smtp = smtplib.SMTP_SSL(host, port, timeout=timeout, context=context)
    else:
        smtp = smtplib.SMTP(host, port, timeout=timeout)
    with smtp:
        if tls != "implicit":
            smtp.ehlo()
            if not smtp.has_extn("starttls"):
                raise _NoStartTls
            smtp.starttls(context=context)
            smtp.ehlo()
        username = channel.get("username")
        if username:
            smtp.login(str(username), password or "")
        return dict(smtp.send_message(mail))


def _said(raw: bytes | str) -> str:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    return f"({base.excerpt(text)})" if text.strip() else ""


def _refused_text(recipients: dict[str, Any]) -> str:
    return ", ".join(
        f"{address}: {code} {base.excerpt(_said(said).strip('()'), 80)}".strip()
        for address, (code, said) in recipients.items()
    )
