"""resolver.sources and resolver.download against real local HTTP servers."""

from __future__ import annotations

import gzip
import io
import json
import logging
import time
from datetime import date

import pytest
import requests

from resolver.clouds import get_cloud
from resolver.errors import FetchError
from resolver.sources import (
    HttpSettings,
    KnownFile,
    cloud_name_from_file_name,
    file_date_from_name,
    read_source,
)
from resolver.sources.discovery import discover_url, fetch_current
from resolver.sources.http import fetch_url, make_session

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
