"""The syslog channel: RFC 5424 messages over UDP and octet-counted TCP, to a real receiver."""

from __future__ import annotations

import pytest

from resolver.alerts import channels
from resolver.alerts.channels import syslog
from resolver.alerts.message import SendStatus
from resolver.config import SECTIONS
from tests.receivers import SyslogReceiver, parse_syslog, sample_event, sample_message

GAP = {"from_change_number": 370, "to_change_number": 377, "missed": 6}
FAILING = {"failures": 3, "last_error": 'HTTP 503 "Service Unavailable"'}


@pytest.fixture(params=["udp", "tcp"])
def receiver(request):
    with SyslogReceiver(request.param) as server:
        yield server


def test_each_event_is_one_rfc5424_message(receiver):
    message = sample_message(
        sample_event(1, added=2, removed=1),
        sample_event(2, kind="snapshot.gap", data=GAP),
        sample_event(3, kind="source.fetch_failing", data=FAILING),
    )
    result = channels.send(receiver.channel(), message)
    assert result.status is SendStatus.SENT, result.detail
    parsed = sorted(
        (parse_syslog(raw) for raw in receiver.wait_for(3)),
        key=lambda m: m.sd["aztags@32473"]["id"],
    )
    assert receiver.errors == []
    change, gap, failing = parsed
    assert [m.version for m in parsed] == [1, 1, 1]
    assert [m.app_name for m in parsed] == ["aztags"] * 3
    assert [m.msgid for m in parsed] == ["PREFIX_CHANGE", "GAP", "FETCH_FAIL"]
    # local0 (16): notice 5, warning 4, err 3
    assert [m.pri for m in parsed] == [133, 132, 131]
    assert change.timestamp == "2025-11-10T06:00:00.123Z"
    sd = change.sd["aztags@32473"]
    assert sd["id"] == "evt_00000000000000000000000001"
    assert sd["message"] == message.id
    assert sd["type"] == "servicetag.prefixes.changed"
    assert (sd["cloud"], sd["watch"]) == ("public", "azureml-westus")
    assert (sd["tags"], sd["added"], sd["removed"], sd["from"], sd["to"]) == (
        "1",
        "2",
        "1",
        "376",
        "377",
    )
    assert change.bom
    assert change.msg.startswith("Storage.WestEurope: +2 -1 prefixes")
    assert "+10.1.0.0/32 +10.1.0.1/32 -2603:1020:1:0::/64" in change.msg
    assert gap.sd["aztags@32473"]["missed"] == "6"
    assert failing.sd["aztags@32473"]["last_error"] == 'HTTP 503 "Service Unavailable"'


def test_sd_param_values_are_escaped():
    event = sample_event(1, watch='we"ird]na\\me')
    (raw,) = syslog.render(sample_message(event), hostname="fw-01", procid=42)
    assert b'watch="we\\"ird\\]na\\\\me"' in raw
    assert parse_syslog(raw).sd["aztags@32473"]["watch"] == 'we"ird]na\\me'
    assert parse_syslog(raw).hostname == "fw-01" and parse_syslog(raw).procid == "42"


@pytest.mark.slow
def test_facility_setting_changes_pri(receiver):
    channels.send(receiver.channel(facility="local3"), sample_message())
    (raw,) = receiver.wait_for(1)
    assert parse_syslog(raw).pri == 19 * 8 + 5


def test_udp_datagrams_stay_under_2048_bytes_and_count_what_they_leave_out():
    message = sample_message(sample_event(1, added=500, removed=40))
    with SyslogReceiver("udp") as server:
        assert channels.send(server.channel(), message).status is SendStatus.SENT
        (raw,) = server.wait_for(1)
    assert len(raw) <= 2048
    parsed = parse_syslog(raw)
    shown = sum(token.startswith(("+10.", "-2603:")) for token in parsed.msg.split())
    assert 0 < shown < 540
    assert parsed.msg.endswith(f"... and {540 - shown} more prefixes")
    assert (parsed.sd["aztags@32473"]["added"], parsed.sd["aztags@32473"]["removed"]) == (
        "500",
        "40",
    )


def test_tcp_uses_octet_counting_and_larger_messages():
    message = sample_message(sample_event(1, added=300), sample_event(2, added=1))
    with SyslogReceiver("tcp") as server:
        assert channels.send(server.channel(), message).status is SendStatus.SENT
        first, second = server.wait_for(2)
        assert server.errors == []
    assert 2048 < len(first) <= 8000
    assert parse_syslog(second).msg.endswith("+10.2.0.0/32 -2603:1020:2:0::/64")


def test_octet_counting_frame():
    assert syslog.frame(b"<133>1 - - - - - -") == b"18 <133>1 - - - - - -"


def test_tcp_connection_refused_is_retry():
    with SyslogReceiver("tcp") as server:
        entry = server.channel()
    result = channels.send(entry, sample_message())
    assert result.status is SendStatus.RETRY
    assert "connection refused" in result.detail


def test_config_facilities_are_the_ones_the_channel_knows():
    assert SECTIONS["channel"].keys["facility"].type.choices == tuple(syslog.FACILITIES)
