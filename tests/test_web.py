"""The web page at / (its files, headers and markup) and the history endpoints its chart draws
(/v1/tags/{name}/history, /v1/profiles/{name}/history), through FastAPI's TestClient on a small
synthetic store. The page itself is driven in a browser in test_web_browser.py."""

from __future__ import annotations

import base64
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from resolver.server.app import Auth, Settings, create_app
from tests.helpers import simple_snapshot

# Four weekly Public files: Storage.WestUS grows, shrinks and gains IPv6; Old.WestUS vanishes in
# the third week; New.WestUS appears in it; Sql.WestUS gains a prefix, then loses one.
WEEKS = [
    (
        101,
        "20250106",
        {
            "AzureCloud": ["10.0.0.0/8", "20.0.0.0/8"],
            "Storage": ["10.0.0.0/16"],
            "Storage.WestUS": ["10.0.0.0/24"],
            "Sql.WestUS": ["20.0.0.0/24"],
            "Old.WestUS": ["30.0.0.0/24", "30.0.1.0/24"],
        },
    ),
    (
        102,
        "20250113",
        {
            "AzureCloud": ["10.0.0.0/8", "20.0.0.0/8"],
            "Storage": ["10.0.0.0/16", "10.1.0.0/16"],
            "Storage.WestUS": ["10.0.0.0/24", "10.0.1.0/24"],
            "Sql.WestUS": ["20.0.0.0/24"],
            "Old.WestUS": ["30.0.0.0/24", "30.0.1.0/24"],
        },
    ),
    (
        103,
        "20250120",
        {
            "AzureCloud": ["10.0.0.0/8", "20.0.0.0/8"],
            "Storage": ["10.1.0.0/16"],
            "Storage.WestUS": ["10.0.1.0/24", "10.0.2.0/24", "2001:db8::/48"],
            "Sql.WestUS": ["20.0.0.0/24", "20.0.1.0/24"],
            "New.WestUS": ["40.0.0.0/24"],
        },
    ),
    (
        104,
        "20250127",
        {
            "AzureCloud": ["10.0.0.0/8", "20.0.0.0/8"],
            "Storage": ["10.1.0.0/16"],
            "Storage.WestUS": ["10.0.1.0/24", "10.0.2.0/24", "2001:db8::/48"],
            "Sql.WestUS": ["20.0.1.0/24"],
            "New.WestUS": ["40.0.0.0/24"],
        },
    ),
]
DATES = ["2025-01-06", "2025-01-13", "2025-01-20", "2025-01-27"]

PROFILE = """\
description = "Blob storage and SQL in one region"

[[rule]]
direction = "outbound"
ports = "443"
tag = "Storage.{region}"
purpose = "blob uploads"

[[rule]]
direction = "outbound"
ports = "1433"
tag = "Sql.{region}"
purpose = "the database"

[[rule]]
direction = "inbound"
ports = "443"
tag = "Nope.{region}"
optional = true
purpose = "a feature we may not use"

[[fqdn]]
host = "login.microsoftonline.com"
purpose = "sign-in"
"""


def write_files(folder: Path, weeks=WEEKS) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for cn, day, tags in weeks:
        path = folder / f"ServiceTags_Public_{day}.json"
        path.write_bytes(simple_snapshot(cn, tags))
        paths.append(path)
    return paths


def import_files(db: Path, files: list[Path]) -> list[str]:
    """``aztags import`` of files, in order, into db; the outcome of each."""
    from cache.db import open_db
    from cache.store import SaveOptions
    from resolver.refresh import import_files as ingest
    from resolver.sources import HttpSettings

    conn = open_db(db)
    try:
        return [
            str(getattr(r, "outcome", r))
            for _, r in ingest(conn, files, HttpSettings(), SaveOptions())
        ]
    finally:
        conn.close()


def build_store(folder: Path) -> tuple[Path, Path]:
    """The four weeks in a new store, and a profile folder with ``storagesql``."""
    db = folder / "aztags.db"
    assert import_files(db, write_files(folder / "files")) == ["current"] * len(WEEKS)
    profiles = folder / "profiles"
    profiles.mkdir()
    (profiles / "storagesql.toml").write_text(PROFILE)
    return db, profiles


@pytest.fixture
def store(tmp_path) -> tuple[Path, Path]:
    return build_store(tmp_path)


def client(db: Path, profiles: Path, auth: Auth | None = None) -> TestClient:
    settings = Settings(db=db, profile_dirs=(profiles,), auth=auth or Auth())
    return TestClient(create_app(settings))


def points(doc: dict) -> list[tuple]:
    return [
        (
            p["change_number"],
            p["file_date"],
            p["prefixes"],
            p["prefixes_added"],
            p["prefixes_removed"],
            p["baseline"],
        )
        for p in doc["series"]
    ]


# -- the chart's data: one point per stored snapshot -----------------------------------------------


def test_a_tags_history_has_one_point_per_snapshot_with_prefixes_added_and_removed(store):
    answer = client(*store).get("/v1/tags/storage.westus/history")
    assert answer.status_code == 200, answer.text
    doc = answer.json()
    assert points(doc) == [
        (101, DATES[0], 1, 1, 0, True),  # where the store begins: not a change
        (102, DATES[1], 2, 1, 0, False),
        (103, DATES[2], 3, 2, 1, False),
        (104, DATES[3], 3, 0, 0, False),  # unchanged: still a point, at zero
    ]
    # the rest is `aztags history NAME --json`: the versions, and the snapshot it runs up to
    assert doc["snapshot"]["change_number"] == 104
    assert [v["snapshot"]["change_number"] for v in doc["versions"]] == [101, 102, 103]
    assert answer.headers["content-type"].startswith("application/json")


def test_a_tag_that_vanished_shows_its_prefixes_removed_and_none_after(store):
    doc = client(*store).get("/v1/tags/Old.WestUS/history").json()
    assert points(doc) == [
        (101, DATES[0], 2, 2, 0, True),
        (102, DATES[1], 2, 0, 0, False),
        (103, DATES[2], None, 0, 2, False),
        (104, DATES[3], None, 0, 0, False),
    ]


def test_a_tag_that_appeared_later_has_no_prefixes_before_it(store):
    doc = client(*store).get("/v1/tags/New.WestUS/history").json()
    assert points(doc) == [
        (101, DATES[0], None, 0, 0, True),
        (102, DATES[1], None, 0, 0, False),
        (103, DATES[2], 1, 1, 0, False),
        (104, DATES[3], 1, 0, 0, False),
    ]


def test_a_profiles_history_sums_its_tags_for_the_region(store):
    answer = client(*store).get("/v1/profiles/storagesql/history", params={"region": "West US"})
    assert answer.status_code == 200, answer.text
    doc = answer.json()
    assert doc["profile"] == "storagesql" and doc["region"] == "westus"
    assert doc["tags"] == ["Storage.WestUS", "Sql.WestUS"]
    assert doc["missing_rules"] == []  # the missing rule is optional
    assert points(doc) == [
        (101, DATES[0], 2, 2, 0, True),
        (102, DATES[1], 3, 1, 0, False),
        (103, DATES[2], 5, 3, 1, False),  # Storage.WestUS +2 -1, Sql.WestUS +1
        (104, DATES[3], 4, 0, 1, False),  # Sql.WestUS -1
    ]


def test_unknown_tags_and_profiles_are_404_problems_naming_them(store):
    c = client(*store)
    for url, named in [
        ("/v1/tags/Nosuch.WestUS/history", "Nosuch.WestUS"),
        ("/v1/profiles/nosuch/history?region=westus", "nosuch"),
    ]:
        answer = c.get(url)
        assert answer.status_code == 404, url
        assert answer.headers["content-type"] == "application/problem+json"
        assert named in answer.json()["detail"]
        assert "Traceback" not in answer.text


def test_a_profile_that_needs_a_region_says_so(store):
    answer = client(*store).get("/v1/profiles/storagesql/history")
    assert answer.status_code in (400, 404)
    assert "region" in answer.json()["detail"]


def test_bad_input_is_a_400_problem(store):
    c = client(*store)
    assert c.get("/v1/tags/" + "x" * 200 + "/history").status_code == 400
    assert c.get("/v1/tags/Storage.WestUS/history?cloud=mars").status_code in (400, 404)
    assert c.get("/v1/profiles/storagesql/history", params={"region": "r" * 65}).status_code == 400


def test_history_answers_304_to_its_etag(store):
    c = client(*store)
    first = c.get("/v1/tags/Storage.WestUS/history")
    etag = first.headers["etag"]
    assert first.headers["last-modified"]
    again = c.get("/v1/tags/Storage.WestUS/history", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    other = c.get("/v1/tags/Sql.WestUS/history", headers={"If-None-Match": etag})
    assert other.status_code == 200  # another tag: another answer
    profile = c.get("/v1/profiles/storagesql/history?region=westus")
    assert profile.headers["etag"] != etag
    same = c.get(
        "/v1/profiles/storagesql/history?region=westus",
        headers={"If-None-Match": profile.headers["etag"]},
    )
    assert same.status_code == 304


def test_an_older_file_imported_later_changes_the_history_and_its_etag(store, tmp_path):
    """The current snapshot stays the same, but the history gains a week: a client holding the
    old ETag must get the new answer, not a 304."""
    db, profiles = store
    c = client(db, profiles)
    before = c.get("/v1/tags/Storage.WestUS/history")
    older = write_files(
        tmp_path / "older", [(100, "20241230", {"Storage.WestUS": ["10.9.0.0/24"]})]
    )
    assert import_files(db, older) == ["backfill"]
    after = c.get(
        "/v1/tags/Storage.WestUS/history", headers={"If-None-Match": before.headers["etag"]}
    )
    assert after.status_code == 200
    assert after.json()["snapshot"]["change_number"] == 104
    assert points(after.json())[:3] == [
        (100, "2024-12-30", 1, 1, 0, True),
        (101, DATES[0], 1, 1, 1, False),  # no longer the baseline: a real change now
        (102, DATES[1], 2, 1, 0, False),
    ]


# -- the page --------------------------------------------------------------------------------------


class Page(HTMLParser):
    """What the checks below need from index.html."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))

    def all(self, tag: str) -> list[dict[str, str | None]]:
        return [a for t, a in self.elements if t == tag]


def page_of(c: TestClient) -> Page:
    answer = c.get("/")
    assert answer.status_code == 200
    parsed = Page()
    parsed.feed(answer.text)
    return parsed


def test_the_page_and_its_assets_come_from_this_server_only(store):
    c = client(*store)
    answer = c.get("/")
    assert answer.headers["content-type"] == "text/html; charset=utf-8"
    policy = answer.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy
    assert "connect-src 'self'" in policy
    page = page_of(c)
    assets = [a["src"] for a in page.all("script")] + [
        a["href"] for a in page.all("link") if a.get("rel") in ("stylesheet", "icon")
    ]
    assert len(assets) >= 3
    types = {".js": "javascript", ".css": "text/css", ".svg": "image/svg+xml"}
    for url in assets:
        assert url and url.startswith("/static/"), url  # same origin, no CDN
        served = c.get(url)
        assert served.status_code == 200, url
        assert types[Path(url).suffix] in served.headers["content-type"]
        assert served.headers["x-content-type-options"] == "nosniff"
        # the chart and everything else are drawn here: no URL to fetch from elsewhere
        for found in re.findall(r"https?://[^\s\"')]+", served.text):
            assert found == "http://www.w3.org/2000/svg", (url, found)
    assert c.head("/").status_code == 200


def test_every_control_has_a_label_and_every_table_a_caption(store):
    c = client(*store)
    page = page_of(c)
    html_tag = page.all("html")[0]
    assert html_tag["lang"] == "en"
    labelled = {a["for"] for a in page.all("label") if a.get("for")}
    controls = page.all("input") + page.all("select") + page.all("textarea")
    assert len(controls) >= 6
    for control in controls:
        if control.get("type") == "checkbox":
            continue  # wrapped in its label
        assert control.get("id") in labelled, control
    text = c.get("/").text
    assert text.count("<table") == text.count("<caption>") >= 4
    ids = {a.get("id") for _, a in page.elements}
    for section in page.all("section"):
        assert section["aria-labelledby"] in ids
    # errors are announced; results are live regions
    assert len([a for a in page.all("p") if a.get("role") == "alert"]) == 4


def test_with_basic_auth_the_page_its_assets_and_the_history_need_credentials(store):
    c = client(*store, auth=Auth(username="ops", password="s3cret"))
    good = {"Authorization": "Basic " + base64.b64encode(b"ops:s3cret").decode()}
    for url in ["/", "/static/app.js", "/v1/tags/Storage.WestUS/history"]:
        refused = c.get(url)
        assert refused.status_code == 401, url
        assert refused.headers["www-authenticate"].startswith("Basic")
        assert c.get(url, headers=good).status_code == 200, url


def test_the_history_endpoints_are_in_the_openapi_document(store):
    paths = client(*store).get("/openapi.json").json()["paths"]
    assert "/v1/tags/{name}/history" in paths
    assert "/v1/profiles/{name}/history" in paths


# -- on the real weekly files ----------------------------------------------------------------------


@pytest.mark.realdata
@pytest.mark.parametrize(
    "tag", ["AzureCloud", "AzureCloud.westeurope", "Storage.WestEurope", "AzureFrontDoor.Frontend"]
)
def test_the_series_of_a_real_tag_matches_the_published_files_week_by_week(db, tag):
    """Each week's added and removed are what set differences of the two published files give
    (computed from the raw JSON, not by the code under test)."""
    from tests.helpers import WEEKLY_2023, iso, raw_tags

    c = TestClient(create_app(Settings(db=db)))
    answer = c.get(f"/v1/tags/{tag}/history")
    assert answer.status_code == 200, answer.text
    expected = []
    before: set[str] = set()
    for n, day in enumerate(WEEKLY_2023):
        now = set(raw_tags("Public", day)[tag]["addressPrefixes"])
        expected.append((iso(day), len(now), len(now - before), len(before - now), n == 0))
        before = now
    assert [
        (p["file_date"], p["prefixes"], p["prefixes_added"], p["prefixes_removed"], p["baseline"])
        for p in answer.json()["series"]
    ] == expected
    assert any(added or removed for _, _, added, removed, first in expected if not first)


def test_the_api_docs_page_loads_nothing_from_the_internet(store):
    import re

    c = client(*store)
    page = c.get("/docs")
    assert page.status_code == 200
    urls = re.findall(r"""(?:src|href)=["']([^"']+)["']|url: ?["']([^"']+)["']""", page.text)
    found = [u for pair in urls for u in pair if u]
    assert found and all(u.startswith("/") for u in found), found  # same server only
    for url in found:
        assert c.get(url).status_code == 200, url
