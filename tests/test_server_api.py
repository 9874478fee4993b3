"""The HTTP API and the feeds through FastAPI's TestClient (issue 12): every /v1 endpoint and
every feed answers, bad input is a problem details document (RFC 9457) and never a stack trace,
ETag/304 on the feeds and /v1/tags, auth on and off, the request size bound, and a feed never
answers 200 with an empty list when something is wrong.

A small store built here (``aztags import`` of three synthetic files); the real weekly store
is used by test_server_ops.py and the schema tests."""

from __future__ import annotations

import base64
import json
import sqlite3
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cache.db import open_db
from resolver.server.app import MAX_BODY, Auth, Settings, create_app
from tests.build_store import import_into
from tests.helpers import simple_snapshot

STORAGE_1 = ["10.0.0.0/16", "10.1.0.0/16"]
STORAGE_2 = ["10.0.0.0/16", "10.1.0.0/16", "10.2.0.0/16"]
FILES = [
    (
        "20250106",
        1,
        {
            "Storage": STORAGE_1,
            "Storage.WestUS": ["10.0.0.0/24"],
            "Sql": ["20.0.0.0/16", "2001:db8::/48"],
            "Gone": ["30.0.0.0/24"],
        },
    ),
    (
        "20250113",
        2,
        {
            "Storage": STORAGE_2,
            "Storage.WestUS": ["10.0.0.0/24", "10.0.1.0/24"],
            "Sql": ["20.0.0.0/16", "2001:db8::/48"],
            "New": ["40.0.0.0/24"],
        },
    ),
]
WEB_PROFILE = """\
description = "a web app: its storage and its database"

[[rule]]
direction = "outbound"
ports = "443"
tag = "Storage.{region}"

[[rule]]
direction = "outbound"
ports = "1433"
tag = "Sql"
"""
BROKEN_PROFILE = """\
description = "a rule whose tag no file has"

[[rule]]
direction = "outbound"
ports = "443"
tag = "Storage.{region}"

[[rule]]
direction = "outbound"
ports = "443"
tag = "NoSuchTagAnywhere"
"""


def write_files(folder: Path, files=FILES) -> list[Path]:
    paths = []
    for day, cn, tags in files:
        path = folder / f"ServiceTags_Public_{day}.json"
        path.write_bytes(simple_snapshot(cn, tags))
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("api-store")
    db = folder / "aztags.db"
    import_into(db, write_files(folder))
    return db


@pytest.fixture(scope="module")
def profiles(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("profiles")
    (folder / "web.toml").write_text(WEB_PROFILE)
    (folder / "broken.toml").write_text(BROKEN_PROFILE)
    return folder


def client_for(db: Path, profiles: Path | None = None, auth: Auth | None = None) -> TestClient:
    settings = Settings(
        db=db,
        auth=auth or Auth(),
        max_age_days=36500,
        profile_dirs=(profiles,) if profiles else (),
        version="test",
    )
    # a server error must come back as the client sees it, not as an exception in the test
    return TestClient(create_app(settings), raise_server_exceptions=False)


@pytest.fixture(scope="module")
def client(store: Path, profiles: Path) -> TestClient:
    return client_for(store, profiles)


def assert_problem(response, status: int) -> dict:
    """A problem details document with this status, and nothing of a stack trace."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    doc = response.json()
    assert doc["status"] == status
    assert doc["title"] and doc["detail"] and doc["type"] == "about:blank"
    assert "Traceback" not in response.text and 'File "' not in response.text
    return doc


# -- every endpoint answers ------------------------------------------------------------------------


def test_status_lists_the_stored_cloud(client):
    response = client.get("/v1/status")
    assert response.status_code == 200
    clouds = response.json()["clouds"]
    assert [(c["cloud"], c["change_number"]) for c in clouds] == [("Public", 2)]


def test_tags_with_counts_and_filters(client):
    doc = client.get("/v1/tags").json()
    assert doc["snapshot"]["change_number"] == 2
    assert sorted(t["name"] for t in doc["tags"]) == ["New", "Sql", "Storage", "Storage.WestUS"]
    by_region = client.get("/v1/tags", params={"region": "westus"}).json()
    assert [t["name"] for t in by_region["tags"]] == ["Storage.WestUS"]
    past = client.get("/v1/tags", params={"at": "cn:1"}).json()
    assert "Gone" in [t["name"] for t in past["tags"]]


def test_one_tag_now_and_in_the_past(client):
    assert client.get("/v1/tags/Storage").json()["prefixes"] == STORAGE_2
    assert client.get("/v1/tags/storage", params={"at": "2025-01-07"}).json()["prefixes"] == (
        STORAGE_1
    )
    aggregated = client.get("/v1/tags/Storage", params={"aggregate": "true"}).json()
    assert aggregated["prefixes"] == ["10.0.0.0/15", "10.2.0.0/16"]


def test_lookup_one_address_and_a_batch(client):
    doc = client.get("/v1/lookup", params={"ip": "10.0.1.7"}).json()
    tags = {t["tag"] for t in doc["answers"][0]["tags"]}
    assert tags == {"Storage", "Storage.WestUS"}
    batch = client.post("/v1/lookup", json={"addresses": ["40.0.0.1", "8.8.8.8", "not-an-ip"]})
    assert batch.status_code == 200
    answers = batch.json()["answers"]
    assert [t["tag"] for t in answers[0]["tags"]] == ["New"]
    assert answers[1]["tags"] == []
    # one bad line of a batch is an error in its answer, as with 'aztags lookup --file'
    assert "not-an-ip" in answers[2]["error"]


def test_lookup_batch_of_ten_thousand(client):
    addresses = [f"10.2.{i // 256}.{i % 256}" for i in range(10_000)]
    response = client.post("/v1/lookup", json={"addresses": addresses})
    assert response.status_code == 200
    answers = response.json()["answers"]
    assert len(answers) == 10_000
    assert all([t["tag"] for t in a["tags"]] == ["Storage"] for a in answers)


JSON = {"content-type": "application/json"}
# Every kind of line a batch may hold: IPv4 and IPv6 in and out of tags, CIDRs containing and
# holding prefixes, host bits set, blank and padded lines, near misses and hostile text.
ODD_LINES = [
    "10.0.1.7",
    " 10.2.3.4\t",
    "2001:db8::1",
    "2001:DB8:0:0::5",
    "8.8.8.8",
    "::ffff:10.0.0.1",
    "10.0.0.0/8",
    "10.0.0.0/24",
    "10.0.0.1/24",
    "2001:db8::/32",
    "0.0.0.0/0",
    "10.0.0.0/99",
    "",
    "   ",
    "not-an-ip",
    "10.1",
    "010.0.0.1",
    "10.0.0.1:443",
    "[2001:db8::1]:443",
    "fe80::1%eth0",
    'quote"back\\slash',
    "caf\u00e9 \u2603",
    "tab\there\x7f\x00",
]


def test_a_large_batch_answers_byte_for_byte_like_the_query_layer(client, store):
    """Over 64 lines the server answers from the snapshot's whole index and writes the document
    itself: the bytes are those of the library's lookup report rendered as the API renders every
    document, line by line (the same text the CLI's --json gives, compact)."""
    from cache.db import open_db
    from resolver import render
    from resolver.clouds import get_cloud
    from resolver.query import TagStore
    from resolver.server.responses import dumps

    addresses = ODD_LINES * 5 + [f"10.{i % 3}.{i // 256 % 256}.{i % 256}" for i in range(300)]
    body = json.dumps({"addresses": addresses}).encode()
    response = client.post("/v1/lookup", content=body, headers=JSON)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    conn = open_db(store, readonly=True)
    try:
        report = TagStore(conn, get_cloud("public"), max_age_days=36500).lookup_report(addresses)
    finally:
        conn.close()
    expected = dumps(render.render_lookup_report_json(report)).encode()
    assert response.content == expected
    # ... and the same as a batch of up to 64 lines, answered by the query layer line by line
    body = json.dumps({"addresses": ODD_LINES}).encode()
    small = client.post("/v1/lookup", content=body, headers=JSON).json()["answers"]
    assert response.json()["answers"][: len(ODD_LINES)] == small


def test_a_batch_answer_is_the_renderers_whatever_the_tag_names_hold():
    """The kept JSON of a tag is cut around a placeholder prefix; names with quotes, non-ASCII
    text or the placeholder itself still come out as the renderer writes them."""
    from resolver import render
    from resolver.lookup import LookupIndex, QueryResult
    from resolver.server.batch import _PLACEHOLDER, KeptIndex
    from resolver.server.responses import dumps

    names = ['Odd"Tag\\\u00e9', _PLACEHOLDER, f"x{_PLACEHOLDER}", "Plain"]
    index = LookupIndex.build([(name, "10.0.0.0/8") for name in names])
    kept = KeptIndex(index)
    for _ in range(2):  # rendered, then kept
        result = index.lookup("10.1.2.3")
        expected = dumps(render.render_lookup_doc("", QueryResult("", False, result), None, {}))
        assert '{"query":"' + kept.tail(result, {}) == expected


def test_a_large_batch_with_no_address_in_it_is_a_400_naming_the_first_lines(client):
    lines = [f"bad-{n}" for n in range(100)]
    response = client.post("/v1/lookup", json={"addresses": lines})
    doc = assert_problem(response, 400)
    assert doc["detail"].startswith("No address or CIDR to look up: 'bad-0' is not an IPv4")
    assert "'bad-4'" in doc["detail"] and "'bad-5'" not in doc["detail"]
    assert doc["detail"].endswith("(and 95 more).")


def test_diff_and_changes(client):
    diff = client.get("/v1/diff").json()
    assert (diff["from"]["change_number"], diff["to"]["change_number"]) == (1, 2)
    names = {t["name"]: t["status"] for t in diff["tags"]}
    assert names == {"Gone": "removed", "New": "added", "Storage": "changed",
                     "Storage.WestUS": "changed"}  # fmt: skip
    scoped = client.get("/v1/diff", params={"from": "cn:1", "to": "cn:2", "tag": "Storage"})
    assert [t["name"] for t in scoped.json()["tags"]] == ["Storage"]
    changes = client.get("/v1/changes", params={"since": "2025-01-06"}).json()
    assert [s["change_number"] for s in changes["snapshots"]] == [2]
    assert changes["diff"]["to"]["change_number"] == 2
    nothing = client.get("/v1/changes", params={"since": "cn:2"}).json()
    assert nothing["snapshots"] == [] and nothing["diff"] is None


def test_profiles_and_one_profile(client):
    names = [p["name"] for p in client.get("/v1/profiles").json()]
    assert {"azureml", "web", "broken"} <= set(names)
    doc = client.get("/v1/profiles/web", params={"region": "westus"}).json()
    assert doc["profile"] == "web"
    assert [r["tag"] for r in doc["rules"]] == ["Storage.WestUS", "Sql"]
    assert doc["rules"][0]["prefixes"] == ["10.0.0.0/24", "10.0.1.0/24"]
    assert doc["missing_rules"] == []


def test_openapi_and_docs(client):
    schema = client.get("/openapi.json").json()
    for path in ("/v1/tags", "/v1/lookup", "/feeds/{name}", "/changes.atom", "/metrics"):
        assert path in schema["paths"]
    assert client.get("/docs").status_code == 200


def test_the_openapi_document_lists_the_400_a_bad_request_gets_not_a_422(client):
    schema = client.get("/openapi.json").json()
    operations = [op for ops in schema["paths"].values() for op in ops.values()]
    assert [op["operationId"] for op in operations if "422" in op["responses"]] == []
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    lookup = schema["paths"]["/v1/lookup"]["post"]["responses"]
    assert "application/problem+json" in lookup["400"]["content"]
    answer = client.post("/v1/lookup", json={"queries": ["1.2.3.4"]})  # "addresses" is the field
    assert answer.status_code == 400 and str(answer.status_code) in lookup


# -- feeds -----------------------------------------------------------------------------------------


def test_tag_feed_in_plain_text_and_other_formats(client):
    response = client.get("/feeds/Storage.txt")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert [line for line in response.text.splitlines() if line and line[0] != "#"] == STORAGE_2
    # a tag name with a dot: the format is what follows the LAST dot
    regional = client.get("/feeds/Storage.WestUS.txt").text
    assert "10.0.1.0/24" in regional
    as_json = client.get("/feeds/Storage.WestUS.json")
    assert as_json.status_code == 200 and "10.0.1.0/24" in as_json.text


@pytest.mark.parametrize(("family", "expected"), [("4", ["20.0.0.0/16"]), ("6", ["2001:db8::/48"])])
def test_feed_family_filter(client, family, expected):
    # ?family=4 and ?family=6 were refused with 400 ("Input should be 4 or 6"): a query
    # parameter is text, and the Literal[4, 6] of integers matched no text
    response = client.get("/feeds/Sql.txt", params={"family": family})
    assert response.status_code == 200, response.text
    assert [line for line in response.text.splitlines() if line and line[0] != "#"] == expected


def test_profile_feed_for_a_region(client):
    response = client.get("/feeds/profile/web.txt", params={"region": "westus"})
    assert response.status_code == 200
    lines = [line for line in response.text.splitlines() if line and line[0] != "#"]
    assert set(lines) == {"10.0.0.0/24", "10.0.1.0/24", "20.0.0.0/16", "2001:db8::/48"}


@pytest.mark.parametrize(
    ("url", "status"),
    [
        ("/feeds/NoSuchTag.txt", 404),  # an unknown tag
        ("/feeds/Gone.txt", 404),  # a tag of an older snapshot only
        ("/feeds/profile/nosuchprofile.txt?region=westus", 404),
        ("/feeds/profile/broken.txt?region=westus", 404),  # a rule whose tag the file lacks
        ("/feeds/profile/web.txt?region=atlantis", 404),  # no such region
        ("/feeds/Storage.txt?cloud=china", 503),  # no snapshot of that cloud
    ],
)
def test_a_feed_never_answers_200_when_something_is_wrong(client, url, status):
    assert_problem(client.get(url), status)


def test_family_6_of_an_ipv4_only_tag_is_not_an_empty_200(client):
    # a firewall would apply an empty list; it keeps its last one on an error status
    response = client.get("/feeds/Storage.txt", params={"family": "6"})
    assert response.status_code != 200 or any(
        line and line[0] != "#" for line in response.text.splitlines()
    ), response.text
    assert response.status_code == 404
    assert "IPv6" in assert_problem(response, 404)["detail"]


def test_an_empty_store_is_503_for_feeds_and_api(tmp_path):
    db = tmp_path / "empty.db"
    open_db(db).close()
    client = client_for(db)
    for url in ("/feeds/Storage.txt", "/v1/tags", "/v1/tags/Storage", "/changes.atom"):
        assert_problem(client.get(url), 503)


# -- bad input -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "url", "body", "status"),
    [
        ("GET", "/v1/tags?at=garbage", None, 400),
        ("GET", "/v1/tags?at=2999-01-01", None, 400),  # a date after today
        ("GET", "/v1/tags?at=cn:999", None, 404),  # names nothing stored
        ("GET", "/v1/tags?cloud=mars", None, 404),
        ("GET", "/v1/tags?region=" + "x" * 65, None, 400),
        ("GET", "/v1/tags/NoSuchTag", None, 404),
        ("GET", "/v1/tags/" + "A" * 129, None, 400),
        ("GET", "/v1/tags/Storage?aggregate=maybe", None, 400),
        ("GET", "/v1/lookup", None, 400),  # no ?ip=
        ("GET", "/v1/lookup?ip=not-an-address", None, 400),
        ("GET", "/v1/lookup?ip=10.0.0.1/99", None, 400),
        ("POST", "/v1/lookup", b"{not json", 400),
        ("POST", "/v1/lookup", json.dumps({"addresses": "10.0.0.1"}).encode(), 400),
        ("POST", "/v1/lookup", json.dumps({"addresses": ["1.2.3.4"] * 10_001}).encode(), 400),
        ("POST", "/v1/lookup", json.dumps({"addresses": ["bad", "worse"]}).encode(), 400),
        ("GET", "/v1/diff?from=cn:2&to=cn:1", None, 400),  # from newer than to
        ("GET", "/v1/diff?from=yesterday", None, 400),
        ("GET", "/v1/changes", None, 400),  # ?since= is required
        ("GET", "/v1/changes?since=13/01/2025", None, 400),
        ("GET", "/v1/profiles/nosuchprofile", None, 404),
        ("GET", "/v1/profiles/web?region=atlantis", None, 404),
        ("GET", "/feeds/Storage", None, 404),  # no format
        ("GET", "/feeds/Storage.exe", None, 404),  # no such format
        ("GET", "/feeds/Storage.txt?family=5", None, 400),
        ("GET", "/feeds/profile/web.txt?direction=sideways", None, 400),
        ("GET", "/changes.atom?tag=NoSuchTag", None, 404),
        ("GET", "/changes.atom?cloud=mars", None, 404),
        ("GET", "/no/such/page", None, 404),
        ("DELETE", "/v1/tags", None, 405),
    ],
)
def test_bad_input_is_a_problem_document(client, method, url, body, status):
    headers = {"content-type": "application/json"} if body is not None else {}
    response = client.request(method, url, content=body, headers=headers)
    assert_problem(response, status)


def test_an_unexpected_error_is_a_500_problem_without_a_stack_trace(store, monkeypatch, caplog):
    from resolver.query import TagStore

    def broken(self, *args, **kwargs):
        raise RuntimeError("secret internals at /srv/aztags.db line 42")

    monkeypatch.setattr(TagStore, "tags", broken)
    client = client_for(store)
    doc = assert_problem(client.get("/v1/tags"), 500)
    assert "secret internals" not in json.dumps(doc)
    assert "secret internals" in caplog.text  # the log says what happened


# -- ETag and 304 ----------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    "url",
    ["/feeds/Storage.txt", "/feeds/profile/web.txt?region=westus", "/v1/tags", "/v1/tags/Sql",
     "/changes.atom", "/changes.atom?tag=Storage"],
)  # fmt: skip
def test_etag_and_304(client, url):
    first = client.get(url)
    assert first.status_code == 200
    etag = first.headers["etag"]
    assert etag.startswith('"') and first.headers["last-modified"].endswith("GMT")
    again = client.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == etag
    assert client.get(url, headers={"If-None-Match": '"other", ' + etag}).status_code == 304
    assert client.get(url, headers={"If-None-Match": '"other"'}).status_code == 200


def test_the_etag_follows_the_query_and_the_snapshot(tmp_path, profiles):
    db = tmp_path / "aztags.db"
    folder = tmp_path / "files"
    folder.mkdir()
    first, second = write_files(folder)
    import_into(db, [first])
    client = client_for(db, profiles)
    old = client.get("/feeds/Storage.txt")
    assert old.headers["etag"] != client.get("/feeds/Storage.txt?aggregate=1").headers["etag"]
    assert old.headers["etag"] != client.get("/feeds/Storage.WestUS.txt").headers["etag"]
    import_into(db, [second])  # a writer stores a new snapshot
    new = client.get("/feeds/Storage.txt", headers={"If-None-Match": old.headers["etag"]})
    assert new.status_code == 200
    assert "10.2.0.0/16" in new.text and new.headers["etag"] != old.headers["etag"]


# -- auth ------------------------------------------------------------------------------------------

BASIC = Auth(username="edl", password="s3cret", tokens=("tok-1", "tok-2"))


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


# A feed URL answered before is answered again without FastAPI's routing (feeds.FeedShortcut)
# when it is a 304 or a list already rendered: the same answer, the same checks.
ASKED_AGAIN = ["/feeds/Storage.txt", "/feeds/profile/web.txt?region=westus&family=4"]


@pytest.mark.parametrize("url", ASKED_AGAIN)
def test_a_feed_asked_again_is_the_same_answer(store, profiles, url):
    from prometheus_client.parser import text_string_to_metric_families

    client = client_for(store, profiles)
    first, again = client.get(url), client.get(url)
    assert first.status_code == again.status_code == 200
    assert again.content == first.content and again.headers == first.headers
    etag = first.headers["etag"]
    for _ in range(2):
        unchanged = client.get(url, headers={"If-None-Match": f'"other", {etag}'})
        assert unchanged.status_code == 304 and unchanged.content == b""
        assert unchanged.headers["etag"] == etag
        assert unchanged.headers["last-modified"] == first.headers["last-modified"]
    # counted under the route's template, as every request
    route = "/feeds/profile/{name}" if "profile" in url else "/feeds/{name}"
    counted = {
        s.labels["status"]: s.value
        for family in text_string_to_metric_families(client.get("/metrics").text)
        for s in family.samples
        if s.name == "aztags_http_requests_total" and s.labels["route"] == route
    }
    assert counted == {"200": 2, "304": 2}


@pytest.mark.parametrize("url", ASKED_AGAIN)
def test_a_feed_asked_again_without_credentials_is_refused(store, profiles, url):
    client = client_for(store, profiles, auth=BASIC)
    asked = client.get(url, headers=basic("edl", "s3cret"))
    assert asked.status_code == 200
    assert_problem(client.get(url), 401)
    assert_problem(client.get(url, headers={"If-None-Match": asked.headers["etag"]}), 401)


def test_a_feed_asked_again_when_the_database_is_gone_is_an_error(tmp_path):
    db = tmp_path / "aztags.db"
    folder = tmp_path / "files"
    folder.mkdir()
    import_into(db, write_files(folder))
    client = client_for(db)
    assert client.get("/feeds/Storage.txt").status_code == 200
    db.rename(tmp_path / "elsewhere.db")
    assert_problem(client.get("/feeds/Storage.txt"), 503)


def test_a_profile_feed_asked_again_follows_its_edited_profile(tmp_path, store):
    folder = tmp_path / "profiles"
    folder.mkdir()
    (folder / "web.toml").write_text(WEB_PROFILE)
    client = client_for(store, folder)
    url = "/feeds/profile/web.txt?region=westus"
    before = client.get(url)
    assert "20.0.0.0/16" in before.text
    (folder / "web.toml").write_text(
        WEB_PROFILE.split("[[rule]]")[0] + "[[rule]]" + (WEB_PROFILE.split("[[rule]]")[1])
    )  # the Sql rule removed
    after = client.get(url, headers={"If-None-Match": before.headers["etag"]})
    assert after.status_code == 200 and "20.0.0.0/16" not in after.text


@pytest.mark.slow
@pytest.mark.parametrize(
    "headers",
    [
        {},
        basic("edl", "wrong"),
        basic("someone", "s3cret"),
        {"Authorization": "Bearer tok-3"},
        {"Authorization": "Bearer "},
        {"Authorization": "Basic !!not-base64!!"},
        {"Authorization": "Digest username=edl"},
    ],
)
def test_auth_on_refuses_without_credentials(store, headers):
    client = client_for(store, auth=BASIC)
    for url in ("/feeds/Storage.txt", "/v1/tags", "/metrics", "/changes.atom", "/openapi.json"):
        response = client.get(url, headers=headers)
        assert_problem(response, 401)
        assert response.headers["www-authenticate"].startswith("Basic realm=")


@pytest.mark.parametrize(
    "headers",
    [basic("edl", "s3cret"), {"Authorization": "Bearer tok-1"}, {"Authorization": "bearer tok-2"}],
)
def test_auth_on_answers_with_credentials(store, headers):
    client = client_for(store, auth=BASIC)
    assert client.get("/feeds/Storage.txt", headers=headers).status_code == 200
    assert client.get("/v1/tags", headers=headers).status_code == 200


def test_bearer_only_auth_asks_for_a_bearer_token(store):
    client = client_for(store, auth=Auth(tokens=("tok-1",)))
    response = client.get("/v1/tags")
    assert_problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer realm=")
    # basic credentials cannot pass where only tokens are configured
    assert client.get("/v1/tags", headers=basic("edl", "tok-1")).status_code == 401
    assert client.get("/v1/tags", headers={"Authorization": "Bearer tok-1"}).status_code == 200


def test_healthz_is_open_with_auth_on(store):
    client = client_for(store, auth=BASIC)
    assert client.get("/healthz").status_code == 200


def test_auth_off_answers_everyone(client):
    assert client.get("/v1/tags").status_code == 200
    assert client.get("/v1/tags", headers={"Authorization": "Bearer anything"}).status_code == 200


# -- request size ----------------------------------------------------------------------------------


def test_a_body_over_the_limit_is_413(client):
    body = b'{"addresses": ["' + b"1" * MAX_BODY + b'"]}'
    response = client.post("/v1/lookup", content=body, headers={"content-type": "application/json"})
    assert_problem(response, 413)


def test_a_chunked_body_over_the_limit_is_413(client):
    # no Content-Length: the server must count what it reads, not trust a header
    def chunks():
        yield b'{"addresses": ["'
        for _ in range(MAX_BODY // 65536 + 2):
            yield b"1" * 65536
        yield b'"]}'

    response = client.post(
        "/v1/lookup", content=chunks(), headers={"content-type": "application/json"}
    )
    assert_problem(response, 413)


def test_a_bad_content_length_is_refused(client):
    response = client.post(
        "/v1/lookup",
        content=b"{}",
        headers={"content-type": "application/json", "content-length": "x"},
    )
    assert response.status_code in (400, 413)


def test_a_database_that_is_not_sqlite_is_503(tmp_path):
    db = tmp_path / "aztags.db"
    db.write_bytes(b"this is not a database" * 100)
    client = client_for(db)
    for url in ("/feeds/Storage.txt", "/v1/tags"):
        response = client.get(url)
        assert response.status_code == 503, response.text
        assert "Traceback" not in response.text
    with pytest.raises(sqlite3.DatabaseError):
        sqlite3.connect(db).execute("SELECT * FROM snapshots").fetchall()
