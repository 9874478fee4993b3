"""resolver.sources and resolver.download against real local HTTP servers."""

from __future__ import annotations

import dataclasses
import gzip
import io
import json
import logging
import os
import re
import threading
import time
import zlib
from datetime import date

import pytest
import requests
from hypothesis import given
from hypothesis import settings as settings_
from hypothesis import strategies as st

from resolver.clouds import get_cloud
from resolver.errors import FetchError
from resolver.sources import (
    HttpSettings,
    KnownFile,
    base,
    cloud_name_from_file_name,
    discovery,
    file_date_from_name,
    read_source,
)
from resolver.sources.discovery import discover_url, fetch_current
from resolver.sources.http import fetch_url, make_session
from resolver.sources.names import redact_url, same_url, scrub

try:  # pytest puts tests/ itself on sys.path while tests/ has no __init__.py ...
    from httpserver import LocalServer
except ModuleNotFoundError:  # ... and the repository root once it becomes a package
    from tests.httpserver import LocalServer

PUBLIC = get_cloud("public")
CHINA = get_cloud("china")
TODAY = date(2025, 1, 15)  # a Wednesday: Mondays back are 0113, 0106, 1230, 1223, 1216
MONDAYS = ["20250113", "20250106", "20241230", "20241223", "20241216"]
BODY = b'{"changeNumber": 1, "cloud": "Public", "values": []}'
DETAILS = f"/en-us/download/details.aspx?id={PUBLIC.download_id}"
CONFIRM = f"/en-us/download/confirmation.aspx?id={PUBLIC.download_id}"
HTML = "text/html; charset=utf-8"
LOG = logging.getLogger("test_sources")


@pytest.fixture(autouse=True)
def _no_proxy_from_the_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    """Requests to 127.0.0.1 must not leave through a proxy set on the test machine."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


@pytest.fixture
def srv():
    with LocalServer() as server:
        yield server


@pytest.fixture
def settings(srv: LocalServer) -> HttpSettings:
    return _settings(srv.url)


def _settings(base: str, **overrides: object) -> HttpSettings:
    values: dict[str, object] = dict(
        download_base=base,
        details_base=base + "/en-us/download",
        connect_timeout=2.0,
        read_timeout=2.0,
        retries=2,
        backoff=0.0,
    )
    values.update(overrides)
    return HttpSettings(**values)  # type: ignore[arg-type]


def file_path(stamp: str, cloud=PUBLIC, folder: str | None = None) -> str:
    return f"{folder or cloud.folder}{cloud.file_name(stamp)}"


def page(*parts: str) -> bytes:
    return (
        "<!DOCTYPE html><html><head><title>Download Azure IP Ranges and Service Tags</title>"
        "</head><body>" + "".join(parts) + "</body></html>"
    ).encode()


def discover(srv_settings: HttpSettings, today: date = TODAY, cloud=PUBLIC) -> str:
    with make_session(srv_settings) as session:
        return discover_url(cloud, srv_settings, session, today, LOG)


def probe_paths(srv: LocalServer) -> list[str]:
    return [r.path for r in srv.requests if "/ServiceTags_" in r.path]


# --------------------------------------------------------------------------------------------
# Step 1: probing the stable folder


def test_probe_takes_the_newest_monday_and_stops(srv, settings):
    srv.route(file_path("20250113"), BODY)
    srv.route(file_path("20250106"), BODY)

    raw = fetch_current(PUBLIC, settings, today=TODAY)

    assert raw is not None
    assert raw.source == srv.url + file_path("20250113")
    assert raw.file_date == date(2025, 1, 13)
    assert raw.data == BODY
    assert file_path("20250106") not in probe_paths(srv)  # older Mondays were not needed
    assert not srv.requests_to(DETAILS)


@pytest.mark.parametrize("today", [date(2025, 1, 13), date(2025, 1, 19)])  # Monday, Sunday
def test_probe_starts_on_this_weeks_monday(srv, settings, today):
    srv.route(file_path("20250113"), BODY)
    assert discover(settings, today=today) == srv.url + file_path("20250113")
    assert probe_paths(srv) == [file_path("20250113")]


def test_probe_goes_back_week_by_week_newest_first(srv, settings):
    srv.route(file_path("20241223"), BODY)
    assert discover(settings) == srv.url + file_path("20241223")
    assert probe_paths(srv) == [file_path(s) for s in MONDAYS[:4]]


def test_probe_misses_then_details_page(srv, settings, caplog):
    url = srv.url + file_path("20250113")
    srv.route(
        DETAILS, page(f'<script>var AcOEt_DownloadUrl = "{url}";</script>'), content_type=HTML
    )
    caplog.set_level(logging.INFO, logger="test_sources")

    assert discover(settings) == url

    assert probe_paths(srv) == [file_path(s) for s in MONDAYS]  # all five probed, then the page
    step1 = [r.getMessage() for r in caplog.records if "step 1" in r.getMessage()]
    assert len(step1) == 1 and "404" in step1[0]


def test_probe_ignores_an_html_page_answered_with_200(srv, settings):
    srv.route(
        file_path("20250113"), page("This download is no longer available"), content_type=HTML
    )
    srv.route(file_path("20250106"), BODY)
    assert discover(settings) == srv.url + file_path("20250106")


def test_probe_stops_at_once_when_the_host_is_unreachable(srv):
    # Port 1 on 127.0.0.1 refuses connections: one probe fails, the other Mondays are skipped.
    settings = _settings(srv.url, download_base="http://127.0.0.1:1", retries=0)
    url = srv.url + file_path("20250113")
    srv.route(
        DETAILS,
        page(f'<a class="dlcdetail__download-btn" href="{url}">Download</a>'),
        content_type=HTML,
    )
    started = time.monotonic()
    assert discover(settings) == url
    assert time.monotonic() - started < 3


# --------------------------------------------------------------------------------------------
# Steps 2-4: every page shape


def _dlc_details(url: str) -> str:
    details = {
        "title": "Azure IP Ranges and Service Tags – Public Cloud",
        "note": 'braces } { and quotes " inside strings must not confuse the parser',
        "details": {"version": "2025.01.13", "nested": [{"a": {"b": "}"}}]},
        "downloadFile": [
            {"name": "readme.pdf", "url": "https://download.microsoft.com/x/readme.pdf"},
            {"name": "ServiceTags_Public_20250113.json", "url": url},
        ],
    }
    return f"<script>window.__DLCDetails__={json.dumps(details)};var other = {{}};</script>"


SHAPES = {
    "details: AcOEt_DownloadUrl": (
        DETAILS,
        lambda u: f'<script>var x = 1; AcOEt_DownloadUrl = "{u}";</script>',
    ),
    "details: AcOEt_DownloadUrl with escaped slashes": (
        DETAILS,
        lambda u: '<script>AcOEt_DownloadUrl = "' + u.replace("/", "\\/") + '";</script>',
    ),
    "details: download button only": (
        DETAILS,
        lambda u: (
            f'<a href="{u}" class="mscom-link dlcdetail__download-btn" '
            'aria-label="Download">Download</a>'
        ),
    ),
    "details: __DLCDetails__ only": (DETAILS, _dlc_details),
    "confirmation: failoverLink": (
        CONFIRM,
        lambda u: (
            f'<p>If your download does not start, <a class="mscom-link failoverLink" '
            f'href="{u}">click here</a>.</p>'
        ),
    ),
    "confirmation: meta refresh only": (
        CONFIRM,
        lambda u: f'<meta http-equiv="refresh" content="0;url={u}">',
    ),
}


def found_by(caplog: pytest.LogCaptureFixture) -> int:
    """The discovery step that found the URL, from the log."""
    found = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Found ")]
    assert len(found) == 1
    return int(found[0].split("discovery step ")[1][0])


@pytest.mark.slow
@pytest.mark.parametrize("shape", list(SHAPES))
def test_every_page_shape_is_understood(srv, settings, shape, caplog):
    where, build = SHAPES[shape]
    url = srv.url + file_path("20250113")
    srv.route(where, page(build(url)), content_type=HTML)
    if where == CONFIRM:  # the details page exists but has no link
        srv.route(DETAILS, page("<p>Version: 2025.01.13</p>"), content_type=HTML)
    caplog.set_level(logging.INFO, logger="test_sources")

    assert discover(settings) == url
    assert found_by(caplog) == (2 if where == DETAILS else 3)  # not the step 4 fallback


def test_a_relative_link_is_resolved_against_the_page(srv, settings):
    srv.route(
        DETAILS,
        page(f'<a class="dlcdetail__download-btn" href="{file_path("20250113")}">Download</a>'),
        content_type=HTML,
    )
    assert discover(settings) == srv.url + file_path("20250113")


def test_folder_in_lower_case_is_accepted(srv, settings):
    lower = srv.url + file_path("20250113", folder=PUBLIC.folder.lower())
    srv.route(DETAILS, page(f'<script>AcOEt_DownloadUrl = "{lower}";</script>'), content_type=HTML)
    srv.route(file_path("20250113", folder=PUBLIC.folder.lower()), BODY)

    raw = fetch_current(PUBLIC, settings, today=TODAY)

    assert raw is not None and raw.source == lower and raw.data == BODY


def test_bare_urls_in_page_text_newest_date_wins(srv, settings, caplog):
    text = (
        f"<p>Older: {srv.url}{file_path('20241223')} and {srv.url}{file_path('20250106')}</p>"
        f"<p>China: {srv.url}{file_path('20250120', cloud=CHINA)}</p>"
    )
    srv.route(DETAILS, page(text), content_type=HTML)
    srv.route(CONFIRM, page(f"<p>Also {srv.url}{file_path('20241230')}.</p>"), content_type=HTML)
    caplog.set_level(logging.INFO, logger="test_sources")

    assert discover(settings) == srv.url + file_path("20250106")
    assert found_by(caplog) == 4
    assert any("step 4" in r.getMessage() and "China" in r.getMessage() for r in caplog.records)


def test_a_link_for_another_cloud_is_rejected_and_the_chain_goes_on(srv, settings, caplog):
    china = srv.url + file_path("20250113", cloud=CHINA)
    public = srv.url + file_path("20250106")
    srv.route(DETAILS, page(f'<script>AcOEt_DownloadUrl = "{china}";</script>'), content_type=HTML)
    srv.route(
        CONFIRM,
        page(f'<a class="mscom-link failoverLink" href="{public}">here</a>'),
        content_type=HTML,
    )
    caplog.set_level(logging.INFO, logger="test_sources")

    assert discover(settings) == public
    assert found_by(caplog) == 3
    messages = [r.getMessage() for r in caplog.records]
    assert any("rejected" in m and china in m and "China" in m for m in messages)


def test_only_other_clouds_everywhere_fails(srv, settings):
    china = srv.url + file_path("20250113", cloud=CHINA)
    srv.route(DETAILS, page(f'<script>AcOEt_DownloadUrl = "{china}";</script>'), content_type=HTML)
    with pytest.raises(FetchError, match="China"):
        discover(settings)


def test_all_steps_failing_names_every_step_and_what_to_try(srv, settings, caplog):
    srv.route(DETAILS, b"oops", status=500)
    srv.route(CONFIRM, page("<p>Nothing to see</p>"), content_type=HTML)
    caplog.set_level(logging.INFO, logger="test_sources")

    with pytest.raises(FetchError) as caught:
        fetch_current(PUBLIC, settings, today=TODAY, log=LOG)

    message = str(caught.value)
    assert "Public" in message and "56519" in message
    assert "1. probe " in message and "404 for all 5 Mondays" in message
    assert "2. details page" in message and "details.aspx?id=56519: HTTP 500" in message
    assert "3. confirmation page" in message and "no link found in page" in message
    assert "4. " in message
    assert "--source FILE" in message and "proxy" in message
    failed = [r for r in caplog.records if "failed:" in r.getMessage()]
    assert len(failed) == 4 and all(r.levelno == logging.INFO for r in failed)
    assert len(srv.requests_to(DETAILS)) == 3  # 5xx retried: 1 + retries


@pytest.mark.slow
def test_details_page_timeout_is_named(srv):
    settings = _settings(srv.url, read_timeout=0.2, retries=0, probe_weeks=1)
    srv.route(DETAILS, page("slow"), content_type=HTML, delay=1.0)
    with pytest.raises(FetchError, match=r"2\. details page .*timed out"):
        discover(settings)


# --------------------------------------------------------------------------------------------
# Downloading


def test_user_agent_and_progress(srv, settings):
    srv.route("/f/ServiceTags_Public_20250113.json", BODY * 1000)
    seen: list[tuple[int, int | None]] = []

    raw = fetch_url(
        srv.url + "/f/ServiceTags_Public_20250113.json",
        settings,
        progress=lambda n, total: seen.append((n, total)),
    )

    assert raw is not None and raw.data == BODY * 1000
    assert srv.requests[0].headers["user-agent"].startswith("aztags/")
    assert seen[-1] == (len(BODY) * 1000, len(BODY) * 1000)
    assert [n for n, _ in seen] == sorted(n for n, _ in seen)


def test_404_is_a_fetch_error_naming_the_url(srv, settings):
    url = srv.url + "/gone/ServiceTags_Public_20250113.json"
    with pytest.raises(FetchError) as caught:
        fetch_url(url, settings)
    assert url in str(caught.value) and "404" in str(caught.value)
    assert len(srv.requests) == 1  # a 404 is not retried


def test_500_then_success_is_retried(srv, settings):
    srv.route("/f.json", BODY, status=[500, 500, 200])
    raw = fetch_url(srv.url + "/f.json", settings)
    assert raw is not None and raw.data == BODY
    assert len(srv.requests_to("/f.json")) == 3


def test_500_forever_gives_up_after_bounded_retries(srv, settings):
    srv.route("/f.json", b"Internal error", status=500)
    with pytest.raises(FetchError) as caught:
        fetch_url(srv.url + "/f.json", settings)
    assert "500" in str(caught.value) and "try again later" in str(caught.value)
    assert len(srv.requests_to("/f.json")) == 1 + settings.retries


@pytest.mark.slow
def test_read_timeout_is_a_fetch_error_mentioning_timeout(srv):
    settings = _settings(srv.url, read_timeout=0.2, retries=1)
    srv.route("/f.json", BODY, delay=1.5)
    started = time.monotonic()
    with pytest.raises(FetchError, match="timed out|timeout") as caught:
        fetch_url(srv.url + "/f.json", settings)
    assert time.monotonic() - started < 1.4
    assert "/f.json" in str(caught.value)
    assert len(srv.requests_to("/f.json")) == 2  # timeouts are retried too


def test_truncated_body(srv, settings):
    srv.route("/f.json", BODY, truncate_at=10)
    with pytest.raises(FetchError) as caught:
        fetch_url(srv.url + "/f.json", settings)
    assert f"truncated: got 10 of {len(BODY)} bytes from {srv.url}/f.json, try again" in str(
        caught.value
    )


def test_body_over_max_bytes_is_refused_from_content_length(srv):
    settings = _settings(srv.url, max_bytes=100)
    srv.route("/big.json", b"x" * 1000)
    seen: list[int] = []
    with pytest.raises(FetchError, match="more than the limit of 100 bytes"):
        fetch_url(srv.url + "/big.json", settings, progress=lambda n, t: seen.append(n))
    assert seen == []  # refused before reading the body


def test_body_over_max_bytes_without_content_length(srv):
    settings = _settings(srv.url, max_bytes=100)
    srv.route("/big.json", b"x" * 1000, send_length=False)
    with pytest.raises(FetchError, match="limit of 100 bytes"):
        fetch_url(srv.url + "/big.json", settings)


def test_gzip_bombs_are_refused_too(srv):
    settings = _settings(srv.url, max_bytes=10_000)
    srv.route("/f.json", gzip.compress(b" " * 1_000_000))
    with pytest.raises(FetchError, match="limit of 10000 bytes"):
        fetch_url(srv.url + "/f.json", settings)


def test_gzip_body_is_decompressed_and_kept(srv, settings):
    packed = gzip.compress(BODY)
    srv.route("/ServiceTags_Public_20250113.json.gz", packed)
    raw = fetch_url(srv.url + "/ServiceTags_Public_20250113.json.gz", settings)
    assert raw is not None
    assert raw.data == BODY and raw.compressed == packed
    assert raw.file_date == date(2025, 1, 13)


def test_content_encoding_gzip_is_decoded(srv, settings):
    packed = gzip.compress(BODY)
    srv.route("/f.json", packed, headers={"Content-Encoding": "gzip"})
    raw = fetch_url(srv.url + "/f.json", settings)
    assert raw is not None and raw.data == BODY and raw.compressed == packed


def test_conditional_get_returns_none_on_304(srv, settings):
    path = file_path("20250113")
    modified = "Tue, 14 Jan 2025 10:00:00 GMT"
    srv.route(path, BODY, headers={"ETag": '"0x8DD3"', "Last-Modified": modified})

    first = fetch_current(PUBLIC, settings, today=TODAY)
    assert first is not None and first.etag == '"0x8DD3"'
    assert first.last_modified == "Tue, 14 Jan 2025 10:00:00 GMT"

    # Stored with the folder in another case: still the same file.
    known = KnownFile(
        first.source.replace(PUBLIC.folder, PUBLIC.folder.lower()), first.etag, first.last_modified
    )
    again = fetch_current(PUBLIC, settings, today=TODAY, known=known)

    assert again is None
    download = srv.requests_to(path)[-1]
    assert download.headers["if-none-match"] == '"0x8DD3"'
    assert download.headers["if-modified-since"] == "Tue, 14 Jan 2025 10:00:00 GMT"


def test_no_conditional_get_for_a_different_file(srv, settings):
    srv.route(file_path("20250113"), BODY, headers={"ETag": '"new"'})
    known = KnownFile(srv.url + file_path("20250106"), '"new"', None)
    raw = fetch_current(PUBLIC, settings, today=TODAY, known=known)
    assert raw is not None and raw.data == BODY
    assert all("if-none-match" not in r.headers for r in srv.requests)


def test_proxy_from_http_proxy_is_honoured(srv, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", srv.url)
    settings = _settings("http://azure.invalid", retries=0)
    srv.route(file_path("20250113"), BODY)

    raw = fetch_current(PUBLIC, settings, today=TODAY)

    assert raw is not None and raw.data == BODY
    assert raw.source == "http://azure.invalid" + file_path("20250113")
    through = srv.requests_to(file_path("20250113"))
    assert through and all(r.proxied for r in through)
    assert through[0].target == "http://azure.invalid" + file_path("20250113")


def test_unresolvable_host_without_proxy_says_what_to_try():
    settings = _settings("http://azure.invalid", retries=0, probe_weeks=1)
    with pytest.raises(FetchError) as caught:
        fetch_url("http://azure.invalid/ServiceTags_Public_20250113.json", settings)
    message = str(caught.value)
    assert "azure.invalid" in message and "proxy" in message and "--source" in message


# --------------------------------------------------------------------------------------------
# read_source: --source FILE, URL or -


def test_read_source_json_file(tmp_path):
    path = tmp_path / "ServiceTags_Public_20250113.json"
    path.write_bytes(BODY)
    raw = read_source(str(path), HttpSettings())
    assert raw.data == BODY and raw.compressed is None
    assert raw.file_date == date(2025, 1, 13) and raw.source == str(path)


def test_read_source_gzip_file(tmp_path):
    path = tmp_path / "ServiceTags_Public_20250106.json.gz"
    path.write_bytes(gzip.compress(BODY))
    raw = read_source(str(path), HttpSettings())
    assert raw.data == BODY and raw.compressed == path.read_bytes()
    assert raw.file_date == date(2025, 1, 6)


def test_read_source_decides_gzip_by_content_not_name(tmp_path):
    zipped_json = tmp_path / "latest.json"
    zipped_json.write_bytes(gzip.compress(BODY))
    plain_gz = tmp_path / "latest.json.gz"
    plain_gz.write_bytes(BODY)
    assert read_source(str(zipped_json), HttpSettings()).data == BODY
    assert read_source(str(plain_gz), HttpSettings()).data == BODY
    assert read_source(str(plain_gz), HttpSettings()).file_date is None


def test_read_source_stdin_plain_and_gzip():
    assert read_source("-", HttpSettings(), stdin=io.BytesIO(BODY)).data == BODY
    raw = read_source("-", HttpSettings(), stdin=io.BytesIO(gzip.compress(BODY)))
    assert raw.data == BODY and raw.source == "-" and raw.compressed is not None


def test_read_source_missing_path(tmp_path):
    missing = tmp_path / "nope.json"
    with pytest.raises(FetchError, match="No such file") as caught:
        read_source(str(missing), HttpSettings())
    assert str(missing) in str(caught.value)


def test_read_source_directory(tmp_path):
    with pytest.raises(FetchError, match="directory") as caught:
        read_source(str(tmp_path), HttpSettings())
    assert str(tmp_path) in str(caught.value)


@pytest.mark.parametrize("damage", ["cut", "flipped"])
def test_read_source_corrupt_gzip(tmp_path, damage):
    packed = gzip.compress(BODY * 50)
    if damage == "cut":
        packed = packed[: len(packed) // 2]
    else:
        packed = packed[:20] + bytes(b ^ 0xFF for b in packed[20:40]) + packed[40:]
    path = tmp_path / "ServiceTags_Public_20250113.json.gz"
    path.write_bytes(packed)
    with pytest.raises(FetchError, match="gzip stream .* is damaged") as caught:
        read_source(str(path), HttpSettings())
    assert str(path) in str(caught.value)
    with pytest.raises(FetchError, match="gzip stream from standard input is damaged"):
        read_source("-", HttpSettings(), stdin=io.BytesIO(packed))


def test_read_source_url_has_no_conditional_get(srv, settings):
    srv.route("/ServiceTags_Public_20250113.json", BODY, headers={"ETag": '"a"'})
    raw = read_source(srv.url + "/ServiceTags_Public_20250113.json", settings)
    assert raw.data == BODY and raw.etag == '"a"' and raw.file_date == date(2025, 1, 13)
    assert "if-none-match" not in srv.requests[0].headers


# --------------------------------------------------------------------------------------------
# Names


@pytest.mark.parametrize(
    ("name", "cloud", "day"),
    [
        ("ServiceTags_Public_20250113.json", "Public", date(2025, 1, 13)),
        ("ServiceTags_AzureGovernment_20240101.json.gz", "AzureGovernment", date(2024, 1, 1)),
        ("/data/China/ServiceTags_China_20231225.json", "China", date(2023, 12, 25)),
        ("ServiceTags_Public_20251399.json", None, None),  # not a date
        ("ServiceTags_Public_20250229.json", None, None),  # 2025 is no leap year
        ("ServiceTags_Public_20240229.json", "Public", date(2024, 2, 29)),
        ("ServiceTags_Public_2025011.json", None, None),
        ("servicetags.json", None, None),
        ("ServiceTags_Public_20250113.json.bak", None, None),
    ],
)
def test_file_names(name, cloud, day):
    assert cloud_name_from_file_name(name) == cloud
    assert file_date_from_name(name) == day


def test_make_session_keeps_the_environment():
    session = make_session(HttpSettings())
    assert session.trust_env is True
    assert isinstance(session, requests.Session)


def test_local_server_answers_head_without_a_body(srv):
    srv.route("/f.json", BODY, headers={"ETag": '"a"'})
    resp = requests.head(srv.url + "/f.json", timeout=2)
    assert resp.status_code == 200 and resp.content == b""
    assert resp.headers["Content-Length"] == str(len(BODY)) and resp.headers["ETag"] == '"a"'
    assert [(r.method, r.path) for r in srv.requests] == [("HEAD", "/f.json")]


# --------------------------------------------------------------------------------------------
# Secrets: user info and query strings are never shown, logged or returned as the source


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "https://user:pw@host.example:8443/a/ServiceTags_Public_20250113.json?sig=abc&se=1",
            "https://***@host.example:8443/a/ServiceTags_Public_20250113.json?***",
        ),
        ("http://host/f.json", "http://host/f.json"),
        ("http://token@host/f.json#frag", "http://***@host/f.json#***"),
        ("http://host?x=1", "http://host?***"),
        ("http://u:p@[::1]:80/f", "http://***@[::1]:80/f"),
        ("http://u:p@[::1/f?q", "http://***@[::1/f?***"),  # urlsplit refuses this one
        ("/relative/f.json?sig=1", "/relative/f.json?***"),
        ("http://host/f.json?", "http://host/f.json?"),
    ],
)
def test_redact_url(url, shown):
    assert redact_url(url) == shown


def test_scrub_redacts_urls_and_known_secrets_anywhere():
    text = (
        "HTTPSConnectionPool(host='h', port=443): Max retries exceeded with url: "
        "/f.json?sig=S3CRET (Caused by ProxyError('x http://bob:hunter22@proxy:3128 y'))"
    )
    out = scrub(text, ["https://h/f.json?sig=S3CRET", "http://bob:hunter22@proxy:3128"])
    assert "S3CRET" not in out and "hunter22" not in out and "bob" not in out
    assert "http://***@proxy:3128" in out


def test_same_url_compares_what_is_shown():
    stored = redact_url("https://u:p@host/A/ServiceTags_Public_20250113.json?sig=old")
    assert same_url(stored, "https://u:p@host/a/ServiceTags_Public_20250113.json?sig=new")
    assert not same_url(stored, "https://host/a/ServiceTags_Public_20250106.json")


def test_a_url_with_credentials_and_a_signature_is_never_shown(srv, settings, caplog):
    path = "/f/ServiceTags_Public_20250113.json"
    srv.route(path, BODY)
    host = srv.url.removeprefix("http://")
    url = f"http://reader:pa55word@{host}{path}?sv=2024&sig=S1GNATURE"
    caplog.set_level(logging.DEBUG)

    raw = fetch_url(url, settings, log=LOG)

    assert raw is not None and raw.data == BODY
    assert raw.source == f"http://***@{host}{path}?***"
    assert raw.file_date == date(2025, 1, 13)
    assert srv.requests[0].headers["authorization"].startswith("Basic ")  # still sent
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "Downloaded" in logged
    assert "pa55word" not in logged and "S1GNATURE" not in logged and "reader" not in logged

    with pytest.raises(FetchError) as caught:  # a 404: the message names the URL, redacted
        fetch_url(url.replace(path, "/gone.json"), settings)
    message = str(caught.value)
    assert f"http://***@{host}/gone.json?***" in message and "404" in message
    assert "pa55word" not in message and "S1GNATURE" not in message


def test_a_proxy_password_never_reaches_an_error_message(monkeypatch):
    # Port 1 refuses connections: the request fails at the proxy.
    monkeypatch.setenv("HTTP_PROXY", "http://bob:hunter2%21x@127.0.0.1:1")
    settings = _settings("http://azure.invalid", retries=0)
    with pytest.raises(FetchError) as caught:
        fetch_url("http://azure.invalid/ServiceTags_Public_20250113.json?sig=SIG", settings)
    message = str(caught.value)
    assert "proxy" in message
    assert "hunter2" not in message and "bob" not in message and "SIG" not in message


def test_urllib3_debug_lines_carry_no_query(srv, settings, caplog):
    srv.route("/f.json", BODY)
    caplog.set_level(logging.DEBUG, logger="urllib3")
    fetch_url(srv.url + "/f.json?sig=S1GNATURE", settings)
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("urllib3")]
    assert any("/f.json?***" in line for line in lines)
    assert not any("S1GNATURE" in line for line in lines)


# --------------------------------------------------------------------------------------------
# Redirects: logged, and the file date comes from where the file was finally served from


def test_a_redirect_is_logged_and_the_date_comes_from_the_final_name(srv, settings, caplog):
    first = "/latest/ServiceTags_Public_20250106.json"
    final = "/files/ServiceTags_Public_20250113.json"
    srv.route(first + "?sig=one", status=302, headers={"Location": srv.url + final + "?sig=two"})
    srv.route(final, BODY)
    caplog.set_level(logging.INFO, logger="test_sources")

    raw = fetch_url(srv.url + first + "?sig=one", settings, log=LOG)

    assert raw is not None and raw.data == BODY
    assert raw.file_date == date(2025, 1, 13)
    assert raw.source == srv.url + first + "?***"  # what was asked for, redacted
    assert [r.getMessage() for r in caplog.records if "Redirected" in r.getMessage()] == [
        f"Redirected from {srv.url}{first}?*** to {srv.url}{final}?***"
    ]


def test_a_redirect_to_a_name_without_a_date_keeps_the_first_date(srv, settings):
    first = "/ServiceTags_Public_20250113.json"
    srv.route(first, status=301, headers={"Location": "/blobs/3f9a0c"})
    srv.route("/blobs/3f9a0c", BODY)
    raw = fetch_url(srv.url + first, settings)
    assert raw is not None and raw.file_date == date(2025, 1, 13)


# --------------------------------------------------------------------------------------------
# Unreachable hosts: bounded, and not asked twice


@pytest.fixture
def connections(monkeypatch):
    """Every connection attempt urllib3 makes, by (host, port)."""
    import urllib3.util.connection

    made: list[tuple[str, int]] = []
    real = urllib3.util.connection.create_connection

    def counting(address, *args, **kwargs):
        made.append(address)
        return real(address, *args, **kwargs)

    monkeypatch.setattr(urllib3.util.connection, "create_connection", counting)
    return made


def test_a_name_that_does_not_resolve_is_not_retried(monkeypatch):
    import socket

    asked: list[str] = []

    def no_dns(host, *args, **kwargs):
        asked.append(host)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    settings = _settings("http://azure.invalid", retries=3, backoff=0.0)
    with pytest.raises(FetchError, match="could not resolve azure.invalid"):
        fetch_url("http://azure.invalid/ServiceTags_Public_20250113.json", settings)
    assert asked == ["azure.invalid"]


def test_a_refused_connection_is_tried_twice_at_most(connections):
    settings = _settings("http://127.0.0.1:1", retries=3, backoff=0.0)
    with pytest.raises(FetchError, match="could not connect"):
        fetch_url("http://127.0.0.1:1/ServiceTags_Public_20250113.json", settings)
    assert connections == [("127.0.0.1", 1)] * 2


def test_discovery_does_not_ask_an_unreachable_host_again(connections, caplog):
    settings = _settings("http://127.0.0.1:1", retries=3, backoff=0.0)
    caplog.set_level(logging.INFO, logger="test_sources")
    with pytest.raises(FetchError) as caught:
        discover(dataclasses.replace(settings, details_base="http://127.0.0.1:1/en-us/download"))
    message = str(caught.value)
    assert "2. details page" in message and "3. confirmation page" in message
    assert message.count("could not be reached in step 1") == 2  # steps 2 and 3
    assert connections == [("127.0.0.1", 1)] * 2  # step 1: one try and one retry


# --------------------------------------------------------------------------------------------
# Bounded work on hostile input: linear in the size of the input


class _CountingZlib:
    """zlib for resolver.sources.base, counting every byte handed to or back from an inflater."""

    error = zlib.error
    MAX_WBITS = zlib.MAX_WBITS

    def __init__(self) -> None:
        self.work = 0

    def decompressobj(self, **kwargs):
        outer, inner = self, zlib.decompressobj(**kwargs)

        class Inflater:
            def decompress(self, data, max_length=0):
                outer.work += len(data)
                return inner.decompress(data, max_length)

            @property
            def unused_data(self):
                outer.work += len(inner.unused_data)
                return inner.unused_data

            @property
            def eof(self):
                return inner.eof

        return Inflater()


@pytest.mark.slow
def test_gunzip_of_many_empty_members_is_linear(monkeypatch):
    """150,000 empty gzip members (3 MB): the old loop copied the rest of the input once per
    member (about 225 GB of copying, minutes of CPU)."""
    counting = _CountingZlib()
    monkeypatch.setattr(base, "zlib", counting)
    blob = gzip.compress(b"") * 150_000
    assert base.gunzip(blob, "x", HttpSettings()) == b""
    assert counting.work <= 8 * len(blob)


@pytest.mark.slow
def test_gunzip_of_one_large_member_is_linear(monkeypatch):
    counting = _CountingZlib()
    monkeypatch.setattr(base, "zlib", counting)
    data = json.dumps({"values": list(range(300_000))}).encode()
    blob = gzip.compress(data)
    assert base.gunzip(blob, "x", HttpSettings()) == data
    assert counting.work <= 3 * len(blob) + 1024


def test_gunzip_members_padding_and_damage():
    settings = HttpSettings()
    assert base.gunzip(gzip.compress(b"ab") + gzip.compress(b"cd"), "x", settings) == b"abcd"
    assert base.gunzip(gzip.compress(b"ab") + b"\0" * 1000, "x", settings) == b"ab"
    with pytest.raises(FetchError, match="damaged"):
        base.gunzip(gzip.compress(b"ab") + b"\0\0junk", "x", settings)
    with pytest.raises(FetchError, match="cut short"):
        base.gunzip(gzip.compress(b"ab" * 1000)[:-5], "x", settings)
    with pytest.raises(FetchError, match="limit of 1000 bytes"):
        base.gunzip(gzip.compress(b"ab") * 600, "x", HttpSettings(max_bytes=1000))


# The step 4 pattern as it was: right, but quadratic on a long run of URL characters.
_OLD_FILE_URL = re.compile(
    r"https?://[^\s\"'<>()\\]+?/ServiceTags_[A-Za-z]+_[0-9]{8}\.json(?!\w|\.\w)", re.IGNORECASE
)


@pytest.mark.parametrize(
    "text",
    [
        "see https://download.microsoft.com/download/7/1/D/x/ServiceTags_Public_20250113.json.",
        "a http://h/ServiceTags_Public_20250113.jsonx b https://h/p/ServiceTags_China_20250106.json",
        "https://h/ServiceTags_Public_20250113.json/ServiceTags_Public_20250120.json",
        "HTTPS://H//ServiceTags_public_20250113.JSON https:///ServiceTags_Public_20250113.json",
        "https://a https://b/c/ServiceTags_Public_20250113.json.gz?x https://d/ServiceTags_X_1.json",
        "(http://h/ServiceTags_Public_20250113.json)'http://h/ServiceTags_Public_20250113.json'",
        "",
    ],
)
def test_file_urls_finds_what_the_old_pattern_found(text):
    assert discovery._file_urls(text) == _OLD_FILE_URL.findall(text)


@pytest.mark.slow
@settings_(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "http",
                "https",
                "://",
                "/",
                "ServiceTags_",
                "Public",
                "_20250113",
                ".json",
                ".",
                "x",
                " ",
                '"',
                "H",
                "S",
                "_",
            ]  # fmt: skip
        ),
        max_size=40,
    )
)
def test_file_urls_matches_the_old_pattern_on_any_mix(parts):
    text = "".join(parts)
    assert discovery._file_urls(text) == _OLD_FILE_URL.findall(text)


class _CountingPattern:
    """A compiled pattern whose searches add the characters they cover to a shared count."""

    def __init__(self, pattern: re.Pattern[str], count: list[int]):
        self.pattern, self.count = pattern, count

    def search(self, text, pos=0, endpos=None):
        end = len(text) if endpos is None else endpos
        match = self.pattern.search(text, pos, end)
        self.count[0] += (match.end() if match else end) - pos
        return match

    def finditer(self, text, *args):
        self.count[0] += len(text)
        return self.pattern.finditer(text, *args)


@pytest.mark.parametrize(
    ("page", "urls"),
    [
        ("https://" * 40_000, 0),  # 320 KB: the old pattern took minutes on this
        ("https://a" + "b/" * 150_000, 0),
        ("/ServiceTags_Public_20250113.json" * 10_000, 0),
        ("https://h/ServiceTags_Public_20250113.json " * 8_000, 8_000),
        ("https://h/ServiceTags_Public_20250113.json" * 8_000, 1),  # ".jsonh" is no end
        (("x " * 1000 + "https://" * 100) * 100, 0),
    ],
)
def test_file_urls_does_linear_work_on_hostile_pages(monkeypatch, page, urls):
    count = [0]
    for name in ("_URL_RUN", "_SCHEME", "_FILE_NAME_IN_URL"):
        monkeypatch.setattr(discovery, name, _CountingPattern(getattr(discovery, name), count))
    assert len(discovery._file_urls(page)) == urls
    assert count[0] <= 4 * len(page)


@pytest.mark.slow
@pytest.mark.parametrize(
    "page",
    [
        "https://" * 40_000,
        "<a " * 100_000,  # html.parser took 50 s on a fifth of this
        "<!--" * 100_000,
        "<![CDATA[" * 30_000,
        "<?" * 150_000,
        "window.__DLCDetails__=" * 20_000,  # each JSON error counted the lines before it
        "window.__DLCDetails__=[" * 20_000,
        'AcOEt_DownloadUrl = "' * 20_000,
        "<a " + "x=1 " * 75_000 + ">",
    ],
)
def test_hostile_pages_are_read_in_bounded_time(page):
    """Every extractor over a 300 KB+ hostile page, in a thread: it must be done within 10 s
    (each takes well under a second; the quadratic ones took minutes)."""
    results: list[object] = []

    def work():
        results.append(discovery._file_urls(page))
        results.append(discovery._details_links(page, "http://h/"))
        results.append(discovery._confirmation_links(page, "http://h/"))

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    worker.join(timeout=10)
    assert len(results) == 3


@pytest.mark.parametrize(
    ("page", "tags"),
    [
        ('<a class="x" href="/f?a=1&amp;b=2">', [("a", {"class": "x", "href": "/f?a=1&b=2"})]),
        ("<A HREF='/f' Class=failoverLink />", [("a", {"href": "/f", "class": "failoverLink"})]),
        (
            '<meta http-equiv="refresh" content="0;url=/x">',
            [("meta", {"http-equiv": "refresh", "content": "0;url=/x"})],
        ),  # fmt: skip
        ('<!-- <a href="/old"> --><a href="/new">', [("a", {"href": "/new"})]),
        ('<script>var s = "<a href=/in-script>";</script><a href=/out>', [("a", {"href": "/out"})]),
        ('<abbr href="/no"><a\nhref="/yes"\n>', [("a", {"href": "/yes"})]),
        ('<a href="/first" href="/second">', [("a", {"href": "/first"})]),
        ('<a href="/ok"><a href="/open', [("a", {"href": "/ok"})]),
        ("<a href=/ok><!-- never closed <a href=/no>", [("a", {"href": "/ok"})]),
    ],
)
def test_tag_scanner(page, tags):
    assert discovery._tags(page) == tags


def test_a_deep_dlc_details_object_is_walked_without_recursion():
    deep: object = {"downloadFile": [{"url": "https://h/ServiceTags_Public_20250113.json"}]}
    for _ in range(5000):
        deep = {"x": [deep]}
    urls = list(discovery._download_file_urls(deep))
    assert urls == ["https://h/ServiceTags_Public_20250113.json"]


def test_a_link_that_is_not_a_url_is_skipped(srv, settings):
    url = srv.url + file_path("20250113")
    srv.route(
        DETAILS,
        page(
            f'<a class="dlcdetail__download-btn" href="http://[::1">x</a>'
            f'<script>AcOEt_DownloadUrl = "{url}";</script>'
        ),  # fmt: skip
        content_type=HTML,
    )
    assert discover(settings) == url


# --------------------------------------------------------------------------------------------
# Special files: never opened in a way that could block


def _read_in_thread(spec: str) -> BaseException | object:
    """read_source(spec) in a thread joined for 10 s, so a regression fails instead of hanging."""
    outcome: list[object] = []

    def work():
        try:
            outcome.append(read_source(spec, HttpSettings()))
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            outcome.append(exc)

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    worker.join(timeout=10)
    assert outcome, f"read_source({spec!r}) blocked"
    return outcome[0]


def test_a_fifo_with_no_writer_is_refused_not_waited_on(tmp_path):
    fifo = tmp_path / "ServiceTags_Public_20250113.json"
    os.mkfifo(fifo)
    error = _read_in_thread(str(fifo))
    assert isinstance(error, FetchError)
    assert "named pipe (FIFO)" in str(error) and "'-'" in str(error)


def test_devices_and_sockets_are_refused(tmp_path):
    error = _read_in_thread("/dev/zero")  # would never end
    assert isinstance(error, FetchError) and "character device" in str(error)
    import socket

    path = tmp_path / "s.sock"
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(path))
        error = _read_in_thread(str(path))
    assert isinstance(error, FetchError) and "a socket" in str(error)


def test_odd_paths_are_fetch_errors(tmp_path):
    for spec in ("bad\0name.json", "~no_such_user_aztags/x.json", str(tmp_path / ("x" * 5000))):
        error = _read_in_thread(spec)
        assert isinstance(error, FetchError), (spec, error)


def test_a_redacted_stored_source_still_makes_the_request_conditional(srv, settings):
    """The stored source is redacted; the next download goes to the URL as configured (with
    its signature) and is still conditional."""
    path = "/f/ServiceTags_Public_20250113.json"
    srv.route(path, BODY, headers={"ETag": '"v1"'})
    url = srv.url + path + "?sig=NEW"
    first = fetch_url(srv.url + path + "?sig=OLD", settings)
    assert first is not None and first.source == srv.url + path + "?***"

    again = fetch_url(url, settings, known=KnownFile(first.source, first.etag, None))

    assert again is None  # 304
    assert srv.requests[-1].path == path + "?sig=NEW"
    assert srv.requests[-1].headers["if-none-match"] == '"v1"'


@pytest.mark.parametrize(
    "spec",
    [
        "http://127.0.0.1:1/a\x00b",
        "http://[::1",
        "http://" + "a" * 300 + "/x",  # a DNS label over 63 characters
        "http://a..b/x",
        "http://127.0.0.1:99999/x",
        "http://127.0.0.1:abc/x",
        "https://user@/x",
        "http:///x",
        "http://\u2603.invalid/x",
        "http://h\udcff.invalid/x",
        "http://u:p\ud800@127.0.0.1:1/x",
        "\ud800",
        "/no/such/dir/\udcff.json",
    ],
)
def test_any_source_text_is_a_fetch_error_that_can_be_printed(spec):
    settings = HttpSettings(connect_timeout=1, read_timeout=1, retries=0, deadline=5)
    with pytest.raises(FetchError) as caught:
        read_source(spec, settings)
    str(caught.value).encode("utf-8")  # no lone surrogate left in the sentence


def test_a_redirect_to_a_location_that_is_not_a_url_is_a_fetch_error(srv, settings):
    srv.route("/a.json", status=302, headers={"Location": "http://[::1/x"})
    with pytest.raises(FetchError, match="the URL is not valid"):
        fetch_url(srv.url + "/a.json", settings)
