"""The email channel against a real SMTP server (aiosmtpd) with TLS from a throwaway CA."""

from __future__ import annotations

import pytest

from resolver.alerts import channels
from resolver.alerts.channels import email as email_channel
from resolver.alerts.message import SendStatus
from tests.receivers import SmtpReceiver, sample_event, sample_message

PASSWORD = "s3cret-pw"


@pytest.fixture(params=["starttls", "implicit"])
def smtp(request, tmp_path, monkeypatch):
    monkeypatch.setenv(SmtpReceiver.PASSWORD_VARIABLE, PASSWORD)
    with SmtpReceiver(tmp_path, tls=request.param, users={"alerts": PASSWORD}) as server:
        yield server


@pytest.fixture
def starttls(tmp_path, monkeypatch):
    monkeypatch.setenv(SmtpReceiver.PASSWORD_VARIABLE, PASSWORD)
    with SmtpReceiver(tmp_path, tls="starttls", users={"alerts": PASSWORD}) as server:
        yield server


@pytest.mark.slow
def test_mail_is_sent_over_verified_tls_with_auth(smtp):
    message = sample_message(sample_event(1, added=2, removed=1), sample_event(2, added=1))
    result = channels.send(smtp.channel(to=["netops@example.test", "soc@example.test"]), message)
    assert result.status is SendStatus.SENT, result.detail
    (mail,) = smtp.wait_for(1)
    assert mail.tls and mail.login == "alerts"
    assert mail.mail_from == "aztags@example.test"
    assert mail.rcpt_tos == ["netops@example.test", "soc@example.test"]
    parsed = mail.message
    assert parsed["Subject"] == "[aztags] 2 alerts: 2 tags changed, +3 -2 prefixes"
    assert parsed["Auto-Submitted"] == "auto-generated"
    assert parsed["Message-ID"] == f"<{message.id}@example.test>"
    assert parsed["Date"].datetime == message.created  # when the message was made
    assert parsed.get_content_type() == "text/plain"
    body = parsed.get_content()
    for prefix in ("10.1.0.0/32", "10.1.0.1/32", "2603:1020:1:0::/64", "10.2.0.0/32"):
        assert prefix in body
    assert "Storage.WestEurope (changed): +2 -1" in body
    assert "changeNumber 376 (2025-11-03) → 377 (2025-11-10)" in body


@pytest.mark.slow
def test_one_event_subject_is_its_summary(starttls):
    assert channels.send(starttls.channel(), sample_message()).status is SendStatus.SENT
    (mail,) = starttls.wait_for(1)
    assert mail.message["Subject"] == "[aztags] Storage.WestEurope: +3 -1 prefixes"


def test_a_certificate_from_another_ca_is_permanent_with_the_advice(smtp):
    result = channels.send(smtp.channel(ca_file=str(smtp.other_ca_file)), sample_message())
    assert result.status is SendStatus.PERMANENT
    assert "set ca_file to the CA that signed it or fix the server's certificate" in result.detail
    assert smtp.messages == []


def test_no_ca_file_means_the_system_store_which_does_not_know_the_test_ca(starttls):
    entry = starttls.channel()
    del entry["ca_file"]
    result = channels.send(entry, sample_message())
    assert result.status is SendStatus.PERMANENT
    assert "set ca_file" in result.detail


def test_wrong_password_is_permanent_and_not_shown(smtp, monkeypatch):
    monkeypatch.setenv(SmtpReceiver.PASSWORD_VARIABLE, "not-the-password")
    result = channels.send(smtp.channel(), sample_message())
    assert result.status is SendStatus.PERMANENT
    assert "535" in result.detail and "check username and password" in result.detail
    assert "not-the-password" not in result.detail and PASSWORD not in result.detail


def test_missing_password_variable_is_permanent_and_named(starttls, monkeypatch):
    monkeypatch.delenv(SmtpReceiver.PASSWORD_VARIABLE)
    result = channels.send(starttls.channel(), sample_message())
    assert result.status is SendStatus.PERMANENT
    assert SmtpReceiver.PASSWORD_VARIABLE in result.detail and '"mail"' in result.detail


def test_smtp_4xx_is_retry_and_5xx_permanent(starttls):
    starttls.fail_data(451, "4.3.0 mailbox busy")
    first = channels.send(starttls.channel(), sample_message())
    assert first.status is SendStatus.RETRY and "451" in first.detail
    starttls.fail_data(554, "5.6.0 message refused")
    second = channels.send(starttls.channel(), sample_message())
    assert second.status is SendStatus.PERMANENT and "554" in second.detail
    assert starttls.messages == []
    assert channels.send(starttls.channel(), sample_message()).status is SendStatus.SENT


def test_every_recipient_refused_is_permanent(starttls):
    starttls.refuse("netops@example.test", 550, "5.1.1 no such user")
    result = channels.send(starttls.channel(), sample_message())
    assert result.status is SendStatus.PERMANENT
    assert "netops@example.test" in result.detail and "550" in result.detail


def test_some_recipients_refused_is_sent_and_named(starttls):
    starttls.refuse("gone@example.test", 550, "5.1.1 no such user")
    entry = starttls.channel(to=["netops@example.test", "gone@example.test"])
    result = channels.send(entry, sample_message())
    assert result.status is SendStatus.SENT
    assert "gone@example.test" in result.detail
    (mail,) = starttls.wait_for(1)
    assert mail.rcpt_tos == ["netops@example.test"]


def test_no_server_listening_is_retry(tmp_path, monkeypatch):
    monkeypatch.setenv(SmtpReceiver.PASSWORD_VARIABLE, PASSWORD)
    with SmtpReceiver(tmp_path) as server:
        entry = server.channel()
    result = channels.send(entry, sample_message())
    assert result.status is SendStatus.RETRY
    assert "connection refused" in result.detail


def test_implicit_tls_against_a_starttls_port_is_a_retry_that_names_the_setting(starttls):
    result = channels.send(starttls.channel(tls="implicit", timeout=2.0), sample_message())
    assert result.status is SendStatus.RETRY
    assert "tls" in result.detail


def test_a_large_change_is_listed_up_to_the_cap_and_says_so():
    message = sample_message(sample_event(1, added=30, removed=5))
    mail = email_channel.render(message, sender="a@b.test", to=["c@d.test"], max_prefixes=10)
    body = mail.get_content()
    assert body.count("  + ") == 10
    assert "... and 20 more added prefixes" in body and "... and 5 more removed prefixes" in body
    assert "25 prefixes are not listed" in body
