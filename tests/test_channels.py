"""Alert channels: the event document, webhook, Slack and Teams against a real local receiver,
secrets, and the checks a config loader reports. Email, syslog and the command have their own
modules (test_channel_*.py)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from standardwebhooks import Webhook

from resolver.alerts import channels
from resolver.alerts.channels import base, slack, teams, webhook
from resolver.alerts.message import SendStatus
from resolver.alerts.secrets import resolve_secret
from resolver.config import parse_config
from resolver.errors import ConfigError
from tests.receivers import Reply, WebhookReceiver, sample_event, sample_message

# A Standard Webhooks test vector (also checked against the standardwebhooks 1.1.0 package).
VECTOR_SECRET = "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
VECTOR_ID = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"
VECTOR_TIMESTAMP = 1735689600
VECTOR_BODY = (
    b'{"type":"servicetag.prefixes.changed","timestamp":"2025-01-01T00:00:00Z","data":'
    b'{"tag":"AzureCloud.westeurope","added":["20.38.96.0/20"],"removed":[]}}'
)
VECTOR_SIGNATURE = "v1,dLHnMQPdWE53aYmWxTk0eTUIAEmJsKEYnPIfz1PjXoY="


@pytest.fixture
def hook(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("AZTAGS_TEST_WEBHOOK_SECRET", VECTOR_SECRET)
    with WebhookReceiver(secret=VECTOR_SECRET) as receiver:
        yield receiver


def webhook_channel(receiver: WebhookReceiver, **overrides: object) -> dict[str, object]:
    entry: dict[str, object] = {
        "name": "netops",
        "type": "webhook",
        "url": receiver.url,
        "secret": "env:AZTAGS_TEST_WEBHOOK_SECRET",
    }
    entry.update(overrides)
    return entry


# -- the document --------------------------------------------------------------------------------


def test_document_holds_every_event_as_json_with_the_message_id_and_counts():
    events = (sample_event(1, added=3, removed=1), sample_event(2, added=2, removed=0))
    message = sample_message(*events)
    document = channels.message_document(message)
    assert document["type"] == "aztags.events"
    assert document["timestamp"] == "2025-11-10T06:00:05Z"
    data = document["data"]
    assert data["message_id"] == message.id
    assert data["channel"] == "netops"
    assert data["events"] == [e.as_json() for e in events]
    assert data["truncated"] is False
    assert data["counts"] == {
        "events": 2,
        "events_sent": 2,
        "tags": 2,
        "added": 5,
        "removed": 1,
        "prefixes_omitted": 0,
    }


def test_document_cuts_prefixes_beyond_the_cap_and_counts_them():
    message = sample_message(sample_event(1, added=8, removed=4), sample_event(2, added=5))
    document = channels.message_document(message, max_prefixes=10)
    data = document["data"]
    first, second = (e["data"]["tags"][0] for e in data["events"])
    assert len(first["added"]) == 8 and "added_omitted" not in first
    assert first["removed"] == message.events[0].data["tags"][0]["removed"][:2]
    assert first["removed_omitted"] == 2
    assert second["added"] == [] and second["added_omitted"] == 5
    assert data["truncated"] is True
    assert second["removed_omitted"] == 1
    assert data["counts"]["prefixes_omitted"] == 8
    assert data["counts"]["added"] == 13  # the counts describe the whole message


# -- webhook ---------------------------------------------------------------------------------------


def test_signer_matches_the_standard_webhooks_test_vector():
    signature = webhook.standard_signature(VECTOR_SECRET, VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY)
    assert signature == VECTOR_SIGNATURE


def test_github_signature_matches_githubs_published_vector():
    signature = webhook.github_signature("It's a Secret to Everybody", b"Hello, World!")
    assert signature == "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"


def test_webhook_post_verifies_with_the_standardwebhooks_package(hook):
    message = sample_message(sample_event(1), sample_event(2))
    result = channels.send(webhook_channel(hook), message, timeout=5)
    assert result.status is SendStatus.SENT, result.detail
    (request,) = hook.wait_for(1)
    assert request.method == "POST"
    assert request.verified is True, request.error
    assert request.headers["webhook-id"] == message.id
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"].startswith("aztags/")
    assert request.json() == channels.message_document(message, max_prefixes=1000)
    # the package's own verify, independently of the receiver
    Webhook(VECTOR_SECRET).verify(request.body, request.headers)
    assert "x-hub-signature-256" not in request.headers


def test_every_attempt_carries_the_same_webhook_id_and_body(hook):
    hook.script(503)
    first = sample_message(attempt=1)
    second = sample_message(attempt=2)
    assert channels.send(webhook_channel(hook), first).status is SendStatus.RETRY
    assert channels.send(webhook_channel(hook), second).status is SendStatus.SENT
    a, b = hook.wait_for(2)
    assert a.headers["webhook-id"] == b.headers["webhook-id"] == first.id
    assert a.body == b.body
    assert a.verified and b.verified


def test_github_signature_header_is_the_hmac_of_the_raw_body(hook):
    result = channels.send(webhook_channel(hook, github_signature=True), sample_message())
    assert result.status is SendStatus.SENT
    (request,) = hook.wait_for(1)
    expected = hmac.new(VECTOR_SECRET.encode(), request.body, hashlib.sha256).hexdigest()
    assert request.headers["x-hub-signature-256"] == f"sha256={expected}"
    assert request.verified is True


def test_a_wrong_secret_fails_verification_at_the_receiver(hook, monkeypatch):
    other = "whsec_" + base64.b64encode(b"another secret of 32 bytes......").decode()
    monkeypatch.setenv("AZTAGS_TEST_WEBHOOK_SECRET", other)
    result = channels.send(webhook_channel(hook), sample_message())
    (request,) = hook.wait_for(1)
    assert request.verified is False
    assert result.status is SendStatus.PERMANENT  # the strict receiver answers 401
    assert "401" in result.detail


def test_webhook_without_secret_sends_unsigned():
    with WebhookReceiver() as receiver:
        entry = {"name": "plain", "type": "webhook", "url": receiver.url}
        assert channels.send(entry, sample_message()).status is SendStatus.SENT
        (request,) = receiver.wait_for(1)
    assert "webhook-signature" not in request.headers
    assert request.headers["webhook-id"] == sample_message().id


def test_webhook_truncates_a_large_change_and_says_so(hook):
    message = sample_message(sample_event(1, added=1500, removed=300))
    assert channels.send(webhook_channel(hook), message).status is SendStatus.SENT
    (request,) = hook.wait_for(1)
    data = request.json()["data"]
    tag = data["events"][0]["data"]["tags"][0]
    assert len(tag["added"]) == 1000 and tag["added_omitted"] == 500
    assert tag["removed"] == [] and tag["removed_omitted"] == 300
    assert data["truncated"] is True
    assert data["counts"]["prefixes_omitted"] == 800
    assert request.verified is True


RETRY_DATE = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("reply", "status"),
    [
        (Reply(200), SendStatus.SENT),
        (Reply(202), SendStatus.SENT),
        (Reply(500), SendStatus.RETRY),
        (Reply(502), SendStatus.RETRY),
        (Reply(503), SendStatus.RETRY),
        (Reply(408), SendStatus.RETRY),
        (Reply(429), SendStatus.RETRY),
        (Reply(410, body=b"gone"), SendStatus.DISABLE),
        (Reply(400, body=b"bad payload"), SendStatus.PERMANENT),
        (Reply(401), SendStatus.PERMANENT),
        (Reply(404), SendStatus.PERMANENT),
        (Reply(301, headers={"Location": "https://elsewhere.example/x"}), SendStatus.PERMANENT),
        (Reply(307, headers={"Location": "/other"}), SendStatus.PERMANENT),
    ],
    ids=lambda v: str(v.status) if isinstance(v, Reply) else str(v),
)
def test_webhook_status_classes(hook, reply, status):
    hook.script(reply)
    result = channels.send(webhook_channel(hook), sample_message())
    assert result.status is status, result.detail
    assert len(hook.requests) == 1  # one attempt, no redirect followed
    if status is not SendStatus.SENT:
        assert str(reply.status) in result.detail


def test_redirect_detail_tells_to_change_the_url(hook):
    hook.script(Reply(308, headers={"Location": "https://new.example/hooks/aztags?k=v"}))
    result = channels.send(webhook_channel(hook), sample_message())
    assert result.status is SendStatus.PERMANENT
    assert "https://new.example" in result.detail and "set url" in result.detail
    assert "k=v" not in result.detail


def test_429_with_retry_after_seconds(hook):
    hook.script(Reply(429, headers={"Retry-After": "7"}))
    result = channels.send(webhook_channel(hook), sample_message())
    assert (result.status, result.retry_after) == (SendStatus.RETRY, 7.0)


def test_503_with_retry_after_http_date(hook):
    hook.script(Reply(503, headers={"Retry-After": RETRY_DATE}))
    result = channels.send(webhook_channel(hook), sample_message())
    assert result.status is SendStatus.RETRY
    assert result.retry_after is not None and 0 < result.retry_after <= 120


def test_retry_after_parsing():
    now = datetime(2025, 1, 1, tzinfo=UTC)
    assert base.retry_after("120", now=now) == 120.0
    assert base.retry_after(" 0 ", now=now) == 0.0
    assert base.retry_after("Wed, 01 Jan 2025 00:01:30 GMT", now=now) == 90.0
    assert base.retry_after("Tue, 31 Dec 2024 00:00:00 GMT", now=now) == 0.0  # in the past
    assert base.retry_after("soon", now=now) is None
    assert base.retry_after(None) is None
    assert base.retry_after("-5", now=now) == 0.0


@pytest.mark.slow
def test_a_receiver_slower_than_the_timeout_is_a_retry(hook):
    hook.script(Reply(200, delay=3.0))
    result = channels.send(webhook_channel(hook, timeout=0.5), sample_message())
    assert result.status is SendStatus.RETRY
    assert "0.5 s" in result.detail


def test_connection_refused_is_a_retry():
    with WebhookReceiver() as receiver:
        address = receiver.url
    result = channels.send({"name": "x", "type": "webhook", "url": address}, sample_message())
    assert result.status is SendStatus.RETRY
    assert "connection refused" in result.detail


def test_https_receiver_with_an_untrusted_certificate_is_permanent(tmp_path):
    import ssl
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    import trustme

    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    server = HTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        address = f"https://127.0.0.1:{server.server_address[1]}/hook"
        entry = {"name": "tls", "type": "webhook", "url": address}
        result = channels.send(entry, sample_message(), timeout=5)
    finally:
        server.shutdown()
        server.server_close()
    assert result.status is SendStatus.PERMANENT
    assert "set ca_file" in result.detail


def test_a_secret_that_cannot_be_read_is_permanent_and_named(hook, monkeypatch):
    monkeypatch.delenv("AZTAGS_TEST_WEBHOOK_SECRET")
    result = channels.send(webhook_channel(hook), sample_message())
    assert result.status is SendStatus.PERMANENT
    assert "AZTAGS_TEST_WEBHOOK_SECRET" in result.detail and "netops" in result.detail
    assert hook.requests == []


@pytest.mark.slow
def test_no_secret_in_any_detail(hook, monkeypatch):
    """The secret, the URL's path and query, and user info never reach a SendResult."""
    path_secret = "T0000/B0000/XXXXsecretpathXXXX"
    address = hook.base_url.replace("http://", "http://user:pa55word@") + f"/{path_secret}?sig=Q1"
    entry = webhook_channel(hook, url=address, github_signature=True)
    replies = [Reply(500, body=f"no {path_secret} sig=Q1".encode()), Reply(400), Reply(410)]
    hook.script(*replies, Reply(200, delay=2), Reply(301, headers={"Location": address}))
    details = [channels.send(entry, sample_message(), timeout=0.5).detail for _ in range(5)]
    hook.stop()
    details.append(channels.send(entry, sample_message(), timeout=0.5).detail)
    for detail in details:
        for secret in (VECTOR_SECRET, path_secret, "XXXXsecretpath", "sig=Q1", "pa55word"):
            assert secret not in detail, detail


# -- Slack ---------------------------------------------------------------------------------------


@pytest.fixture
def slack_hook(monkeypatch):
    with WebhookReceiver(default=Reply(200, body=b"ok")) as receiver:
        monkeypatch.setenv("AZTAGS_TEST_SLACK_URL", receiver.base_url + "/services/T1/B2/sEcReT")
        yield receiver


SLACK = {"name": "chat", "type": "slack", "url": "env:AZTAGS_TEST_SLACK_URL"}


def test_slack_posts_block_kit_with_a_fallback_text(slack_hook):
    message = sample_message(sample_event(1, added=2, removed=1))
    result = channels.send(SLACK, message)
    assert result.status is SendStatus.SENT, result.detail
    (request,) = slack_hook.wait_for(1)
    assert request.path == "/services/T1/B2/sEcReT"
    payload = request.json()
    assert payload["text"] == "Storage.WestEurope: +2 -1 prefixes"
    header, section = payload["blocks"]
    assert header["type"] == "header"
    text = section["text"]["text"]
    assert section["text"]["type"] == "mrkdwn"
    assert "*Storage.WestEurope: +2 -1 prefixes*" in text
    assert "`10.1.0.0/32`" in text and "`2603:1020:1:0::/64`" in text


def test_slack_escapes_ampersand_and_angle_brackets():
    event = sample_event(1, watch="a<b>&c", tag="Tag<&>")
    payload = slack.render(sample_message(event))
    section = payload["blocks"][1]["text"]["text"]  # mrkdwn (the header is plain_text)
    assert "a&lt;b&gt;&amp;c" in section and "Tag&lt;&amp;&gt;" in section
    assert "a<b>" not in section and "Tag<&>" not in section
    assert payload["text"] == "Tag&lt;&amp;&gt;: +3 -1 prefixes"


def test_slack_keeps_50_blocks_and_3000_chars_per_section():
    events = [sample_event(n, added=400, removed=100) for n in range(1, 61)]
    payload = slack.render(sample_message(*events))
    blocks = payload["blocks"]
    assert len(blocks) == 50
    sections = [b for b in blocks if b["type"] == "section"]
    assert all(len(s["text"]["text"]) <= 3000 for s in sections)
    assert "... and 460 more prefixes" in sections[0]["text"]["text"] or any(
        "more prefixes" in s["text"]["text"] for s in sections
    )
    assert blocks[-1]["type"] == "context"
    assert "... and 12 more alerts" in blocks[-1]["elements"][0]["text"]
    assert len(sections) == 48


def test_slack_section_counts_what_it_leaves_out():
    payload = slack.render(sample_message(sample_event(1, added=500)))
    text = payload["blocks"][1]["text"]["text"]
    shown = text.count("`10.")
    assert 0 < shown < 500
    assert f"... and {501 - shown} more prefixes" in text  # 500 added + 1 removed


@pytest.mark.slow
@pytest.mark.parametrize(
    ("reply", "status"),
    [
        (Reply(404, body=b"no_service"), SendStatus.DISABLE),
        (Reply(410, body=b"channel_is_archived"), SendStatus.DISABLE),
        (Reply(403, body=b"invalid_token"), SendStatus.DISABLE),
        (Reply(404, body=b"channel_not_found"), SendStatus.PERMANENT),
        (Reply(400, body=b"invalid_payload"), SendStatus.PERMANENT),
        (Reply(403, body=b"action_prohibited"), SendStatus.PERMANENT),
        (Reply(500, body=b"rollup_error"), SendStatus.RETRY),
        (Reply(429, headers={"Retry-After": "30"}), SendStatus.RETRY),
    ],
    ids=lambda v: f"{v.status}-{v.body!r}" if isinstance(v, Reply) else str(v),
)
def test_slack_status_classes(slack_hook, reply, status):
    slack_hook.script(reply)
    result = channels.send(SLACK, sample_message())
    assert result.status is status, result.detail
    assert "sEcReT" not in result.detail and "/services/" not in result.detail
    if reply.status == 429:
        assert result.retry_after == 30.0


# -- Teams ---------------------------------------------------------------------------------------

TEAMS_QUERY = (
    "api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=aB-cD_eF%2Bg%3D1234567890"
)


@pytest.fixture
def teams_hook(monkeypatch):
    with WebhookReceiver(default=Reply(202)) as receiver:
        address = f"{receiver.base_url}/workflows/abc123/triggers/manual/paths/invoke?{TEAMS_QUERY}"
        monkeypatch.setenv("AZTAGS_TEST_TEAMS_URL", address)
        yield receiver


TEAMS = {"name": "teams", "type": "teams", "url": "env:AZTAGS_TEST_TEAMS_URL"}


def test_teams_posts_an_adaptive_card_1_4_in_a_message_envelope(teams_hook):
    result = channels.send(TEAMS, sample_message(sample_event(1), sample_event(2)))
    assert result.status is SendStatus.SENT, result.detail
    (request,) = teams_hook.wait_for(1)
    # the URL arrives as written: the SAS sig is not re-encoded
    assert request.target == f"/workflows/abc123/triggers/manual/paths/invoke?{TEAMS_QUERY}"
    payload = request.json()
    assert payload["type"] == "message"
    (attachment,) = payload["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    text = json.dumps(card)
    assert "10.1.0.0/32" in text and "10.2.0.2/32" in text
    assert "sig=" not in result.detail and "abc123" not in result.detail


def test_teams_card_stays_under_28_kb_and_says_what_it_left_out():
    big = sample_message(*(sample_event(n, added=2000, removed=500) for n in range(1, 4)))
    body = teams.render(big)
    assert len(body) <= 28672
    card = json.loads(body)["attachments"][0]["content"]
    assert "left out to fit Teams' size limit" in json.dumps(card)
    many = sample_message(*(sample_event(n, added=5) for n in range(1, 400)))
    body = teams.render(many)
    assert len(body) <= 28672
    assert "more alerts (see aztags alerts list)" in body.decode()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("reply", "status"),
    [
        (Reply(200), SendStatus.SENT),
        (Reply(200, body=b"Microsoft Teams endpoint returned HTTP error 429"), SendStatus.RETRY),
        (Reply(400), SendStatus.PERMANENT),
        (Reply(401), SendStatus.PERMANENT),
        (Reply(410), SendStatus.DISABLE),
        (Reply(429, headers={"Retry-After": "5"}), SendStatus.RETRY),
        (Reply(502), SendStatus.RETRY),
    ],
    ids=lambda v: f"{v.status}-{len(v.body)}" if isinstance(v, Reply) else str(v),
)
def test_teams_status_classes(teams_hook, reply, status):
    teams_hook.script(reply)
    result = channels.send(TEAMS, sample_message())
    assert result.status is status, result.detail
    assert "sig=" not in result.detail and "workflows" not in result.detail


# -- secrets ---------------------------------------------------------------------------------------

WHERE = 'channel "netops", key secret'


def test_env_secret(monkeypatch):
    monkeypatch.setenv("AZTAGS_TEST_S", "whsec_abc")
    assert resolve_secret("env:AZTAGS_TEST_S", where=WHERE) == "whsec_abc"


def test_missing_env_secret_names_where_and_the_variable(monkeypatch):
    monkeypatch.delenv("AZTAGS_TEST_S", raising=False)
    with pytest.raises(ConfigError) as caught:
        resolve_secret("env:AZTAGS_TEST_S", where=WHERE)
    assert WHERE in str(caught.value) and "AZTAGS_TEST_S" in str(caught.value)


def test_file_secret_strips_one_trailing_newline(tmp_path):
    path = tmp_path / "secret"
    path.write_text("hunter2\n")
    assert resolve_secret(f"file:{path}", where=WHERE) == "hunter2"
    path.write_text("hunter2\n\n")
    assert resolve_secret(f"file:{path}", where=WHERE) == "hunter2\n"


def test_missing_file_secret_names_the_path_but_not_a_value(tmp_path):
    path = tmp_path / "nope"
    with pytest.raises(ConfigError) as caught:
        resolve_secret(f"file:{path}", where=WHERE)
    assert str(path) in str(caught.value) and WHERE in str(caught.value)


def test_a_secret_written_into_the_config_is_refused_without_quoting_it():
    with pytest.raises(ConfigError) as caught:
        resolve_secret("whsec_supersecretvalue", where=WHERE)
    text = str(caught.value)
    assert "env:NAME" in text and "file:PATH" in text and WHERE in text
    assert "supersecretvalue" not in text


# -- check_channel and the config schema -------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ({"name": "a", "type": "webhook"}, 'Channel "a" (webhook) has no url'),
        ({"name": "b", "type": "slack"}, 'Channel "b" (slack) has no url'),
        ({"name": "c", "type": "email", "to": ["x@y.z"]}, 'Channel "c" (email) has no host'),
        ({"name": "c", "type": "email", "host": "h", "to": ["x@y.z"]}, "has no from"),
        ({"name": "c", "type": "email", "host": "h", "from": "a@b.c"}, "has no to"),
        ({"name": "d", "type": "command"}, 'Channel "d" (command) has no argv'),
        ({"name": "d", "type": "command", "argv": []}, "has no argv"),
        ({"name": "e", "type": "syslog"}, 'Channel "e" (syslog) has no host'),
        (
            {"name": "f", "type": "webhook", "url": "https://x", "secret": "whsec_plain"},
            "written into the config file",
        ),
        (
            {"name": "g", "type": "slack", "url": "https://x", "argv": ["x"]},
            "does not use: argv",
        ),
        ({"name": "h", "type": "webhook", "url": "ftp://x"}, "not an http(s) URL"),
        (
            {"name": "i", "type": "webhook", "url": "https://x", "github_signature": True},
            "no secret to sign with",
        ),
        (
            {
                "name": "j",
                "type": "email",
                "host": "h",
                "from": "a@b",
                "to": "t@u",
                "username": "u",
            },
            "no password",
        ),
    ],
)
def test_check_channel_reports_what_is_missing(entry, expected):
    problems = channels.check_channel(entry)
    assert any(expected in p for p in problems), problems
    assert all(f'"{entry["name"]}"' in p for p in problems)
    result = channels.send(entry, sample_message())
    assert result.status is SendStatus.PERMANENT


@pytest.mark.parametrize(
    "entry",
    [
        {"name": "a", "type": "webhook", "url": "https://x/h", "secret": "env:S"},
        {"name": "b", "type": "slack", "url": "env:SLACK_URL"},
        {"name": "b", "type": "teams", "url": "https://x/y?sig=1", "timeout": 3},
        {
            "name": "c",
            "type": "email",
            "host": "smtp",
            "from": "a@b.c",
            "to": ["d@e.f"],
            "username": "u",
            "password": "file:/run/secrets/smtp",
        },
        {"name": "d", "type": "command", "argv": ["/bin/true"]},
        {"name": "e", "type": "syslog", "host": "siem", "protocol": "tcp", "facility": "local3"},
    ],
)
def test_check_channel_accepts_complete_entries(entry):
    assert channels.check_channel(entry) == []


def test_registry_has_the_six_types():
    assert set(channels.CHANNELS) == {"webhook", "slack", "teams", "email", "syslog", "command"}


def test_config_accepts_syslog_protocol_and_facility_and_refuses_others():
    text = """
[[channel]]
name = "siem"
type = "syslog"
host = "siem.example.internal"
protocol = "tcp"
facility = "local4"
"""
    config = parse_config(text, "aztags.toml", {})
    assert config.channel[0]["protocol"] == "tcp"
    assert channels.check_channel(config.channel[0]) == []
    with pytest.raises(ConfigError) as caught:
        parse_config(text.replace('"tcp"', '"tls"'), "aztags.toml", {})
    assert "protocol must be one of" in str(caught.value)
    with pytest.raises(ConfigError):
        parse_config(text.replace('"local4"', '"local9"'), "aztags.toml", {})


def test_debug_logs_of_the_http_client_do_not_show_the_slack_url(slack_hook, caplog):
    caplog.set_level(logging.DEBUG, logger="urllib3")  # cli.py quiets it in earlier tests
    with caplog.at_level(logging.DEBUG):
        assert channels.send(SLACK, sample_message()).status is SendStatus.SENT
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "POST" in logged  # urllib3 logged the request line...
    assert "sEcReT" not in logged and "/services/T1" not in logged  # ...without the secret
