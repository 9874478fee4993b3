"""`aztags fetch --api` against a local stand-in for Resource Manager (plain HTTP on 127.0.0.1):
pages, the token, 401/429/5xx, and the token never in logs, errors or the database."""

from __future__ import annotations

import json
import logging
import sys
import types

import pytest
from click.testing import CliRunner

from cli import main
from resolver.clouds import get_cloud
from resolver.errors import FetchError, UsageError
from resolver.sources import HttpSettings
from resolver.sources.api import ApiRequest, default_credential, fetch_api
from tests.apishapes import PATH, SUBSCRIPTION, TOKEN, api_answer, api_pages
from tests.helpers import real_json, tag_json
from tests.httpserver import LocalServer

PUBLIC = get_cloud("public")
FIRST = f"{PATH}?api-version=2024-07-01"
SMALL = {
    "changeNumber": 300,
    "cloud": "Public",
    "values": [
        tag_json("AzureCloud", ["10.0.0.0/8", "2603:1000::/40"]),
        tag_json("Storage", ["10.1.0.0/16", "10.2.0.0/16"]),
        tag_json("Storage.WestUS", ["10.1.0.0/16"], region="westus", region_id=37),
    ],
}


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("AZTAGS_DB", str(tmp_path / "api.db"))
    monkeypatch.setenv("AZURE_ACCESS_TOKEN", TOKEN)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("AZTAGS_MAX_AGE_DAYS", "36500")
    for name in ("AZTAGS_CONFIG", "AZTAGS_CLOUD", "AZTAGS_ARM_ENDPOINT", "AZTAGS_PROFILES_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def fetch_api_cli(srv: LocalServer, *args: str, cloud: str = "public"):
    return run(
        "fetch",
        "--cloud",
        cloud,
        "--api",
        "--subscription",
        SUBSCRIPTION,
        "--arm-endpoint",
        srv.url,
        "--timeout",
        "5",
        *args,
    )


def serve_pages(srv: LocalServer, pages: list[dict]) -> None:
    """Route each page at the URL the one before names (the first at FIRST)."""
    target = FIRST
    for page in pages:
        srv.route(target, json.dumps(page).encode(), content_type="application/json")
        target = page.get("nextLink", "").removeprefix(srv.url)


def db_bytes(env) -> bytes:
    data = b""
    for path in env.glob("api.db*"):
        data += path.read_bytes()
    return data


@pytest.mark.realdata
def test_paged_real_answer_is_stored_on_the_api_timeline(env):
    doc = real_json("Public", "20250113")
    answer = api_answer(doc, change_number="1042")
    with LocalServer() as srv:
        serve_pages(srv, api_pages(answer, 3, srv.url + PATH))
        result = fetch_api_cli(srv)
        seen = srv.requests
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("Public@api: changeNumber 1042: now current; 2647 tags")
    assert len(seen) == 3  # the three pages, each with the token, none to another path
    assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in seen)
    assert all(r.path.startswith(PATH + "?api-version=2024-07-01") for r in seen)
    # the API's prefixes answer queries with --source api; the file timeline stays empty
    storage = run("cidrs", "Storage.WestEurope", "--source", "api")
    assert storage.exit_code == 0
    want = next(t for t in doc["values"] if t["name"] == "Storage.WestEurope")
    assert storage.stdout.split() == want["properties"]["addressPrefixes"]
    assert "answered from the Public Discovery API (Public@api): changeNumber 1042" in (
        storage.stderr
    )
    assert run("cidrs", "Storage.WestEurope").exit_code == 3
    assert TOKEN.encode() not in db_bytes(env)


def test_fetch_again_is_a_duplicate_and_the_token_is_nowhere(env, caplog):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="urllib3")  # cli.py quiets it below -vv
    with LocalServer() as srv:
        serve_pages(srv, api_pages(api_answer(SMALL), 2, srv.url + PATH))
        first = CliRunner().invoke(
            main,
            ["-vv", "fetch", "--api", "--subscription", SUBSCRIPTION, "--arm-endpoint", srv.url],
        )
        again = fetch_api_cli(srv, "--json")
        url = srv.url
    assert first.exit_code == 0, first.stderr
    logged = "\n".join(f"{r.name}: {r.getMessage()}" for r in caplog.records)
    assert "Asking http://127.0.0.1" in logged  # each page is logged (-v)...
    assert "urllib3" in logged  # ...and the HTTP detail (-vv)...
    assert TOKEN not in logged + first.stderr + first.stdout  # ...never the token
    assert again.exit_code == 0
    doc = json.loads(again.stdout)
    assert doc["cloud"] == "Public@api" and doc["outcome"] == "duplicate"
    assert doc["snapshot"]["source"] == url + PATH
    assert TOKEN.encode() not in db_bytes(env)
    shown = run("snapshots", "--source", "api")
    assert "Public@api" in shown.stdout and "history" not in shown.stdout
    assert run("snapshots").exit_code == 3  # no file stored


def test_401_says_why_with_www_authenticate_and_stores_nothing(env):
    challenge = (
        'Bearer authorization_uri="https://login.microsoftonline.com/common", '
        'error="invalid_token", error_description="The access token has expired."'
    )
    with LocalServer() as srv:
        srv.route(
            FIRST,
            b'{"error": {"code": "ExpiredAuthenticationToken", "message": "expired"}}',
            status=401,
            headers={"WWW-Authenticate": challenge},
        )
        result = fetch_api_cli(srv)
    assert result.exit_code == 1
    assert "answered HTTP 401: invalid_token: The access token has expired." in result.stderr
    assert "az account get-access-token" in result.stderr
    assert TOKEN not in result.stderr + result.stdout
    assert run("snapshots", "--source", "api").exit_code == 3


def test_429_waits_for_retry_after_then_reads_the_answer(env):
    with LocalServer() as srv:
        srv.route(
            FIRST,
            json.dumps(api_answer(SMALL)).encode(),
            status=[429, 200],
            headers={"Retry-After": "0"},
        )
        result = fetch_api_cli(srv)
        assert len(srv.requests) == 2
    assert result.exit_code == 0, result.stderr


def test_429_that_never_ends_fails_naming_retry_after(env):
    with LocalServer() as srv:
        srv.route(FIRST, b"{}", status=429, headers={"Retry-After": "0"})
        result = fetch_api_cli(srv, "--retries", "2")
        assert len(srv.requests) == 3
    assert result.exit_code == 1
    assert "HTTP 429 Too Many Requests 3 times (Retry-After: 0)" in result.stderr


def test_5xx_is_retried_like_a_download(env):
    with LocalServer() as srv:
        srv.route(FIRST, json.dumps(api_answer(SMALL)).encode(), status=[503, 200])
        ok = fetch_api_cli(srv, "--retries", "2")
        assert ok.exit_code == 0, ok.stderr
        srv.route(
            FIRST,
            b'{"error": {"code": "InternalServerError", "message": "try later"}}',
            status=500,
        )
        failed = fetch_api_cli(srv, "--retries", "1")
    assert failed.exit_code == 1
    # the last 5xx is closed unread, as for downloads (a hostile body may never end)
    assert "answered HTTP 500: Internal Server Error" in failed.stderr
    assert "Resource Manager failed 2 times; try again later" in failed.stderr


def test_other_refusals_say_what_to_check(env):
    with LocalServer() as srv:
        srv.route(FIRST, b'{"error": {"code": "AuthorizationFailed"}}', status=403)
        forbidden = fetch_api_cli(srv)
        srv.route(FIRST, b"<html>moved</html>", status=302, headers={"Location": "http://x/"})
        moved = fetch_api_cli(srv)
        srv.route(FIRST, b"<html>not json</html>")
        html = fetch_api_cli(srv)
    assert forbidden.exit_code == 1 and "AuthorizationFailed" in forbidden.stderr
    assert "Reader is enough" in forbidden.stderr
    assert moved.exit_code == 1 and "Redirects are not followed" in moved.stderr
    assert html.exit_code == 1 and "the body is HTML, not JSON" in html.stderr


def test_a_next_link_to_another_host_is_not_followed_with_the_token(env):
    with LocalServer() as srv, LocalServer() as elsewhere:
        pages = api_pages(api_answer(SMALL), 2, elsewhere.url + PATH)
        srv.route(FIRST, json.dumps(pages[0]).encode())
        elsewhere.route(PATH, json.dumps(pages[1]).encode())
        result = fetch_api_cli(srv)
        assert elsewhere.requests == []
    assert result.exit_code == 1
    assert "sent a nextLink to another host" in result.stderr


def test_pages_of_different_change_numbers_are_not_mixed(env):
    with LocalServer() as srv:
        pages = api_pages(api_answer(SMALL), 2, srv.url + PATH)
        pages[1]["changeNumber"] = "64"
        serve_pages(srv, pages)
        result = fetch_api_cli(srv)
    assert result.exit_code == 1
    assert "the answer changed while it was read" in result.stderr


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--cloud", "germany"], "Microsoft Cloud Germany closed in October 2021"),
        (["--cloud", "all"], "a subscription belongs to one cloud"),
        (["--subscription", "my-sub"], "is not a subscription id"),
        (["--location", "West Europe"], "is not an Azure location code"),
        (["--arm-endpoint", "ftp://x/y"], "is not a base URL"),
        (["--source", "x.json"], "give one of them"),
    ],
)
def test_bad_api_flags_are_usage_errors(env, args, says):
    base = [
        "fetch",
        "--api",
        "--subscription",
        SUBSCRIPTION,
        "--arm-endpoint",
        "http://127.0.0.1:9",
    ]
    result = run(*base, *args)
    assert result.exit_code == 2, result.output
    assert says in result.stderr


def test_api_flags_without_api_and_api_without_subscription(env):
    result = run("fetch", "--subscription", SUBSCRIPTION)
    assert result.exit_code == 2 and "--subscription go with --api" in result.stderr
    result = run("fetch", "--api")
    assert result.exit_code == 2 and "--api needs --subscription ID" in result.stderr


# -- azure-identity: a stub credential, no network ------------------------------------------------


class StubCredential:
    def __init__(self, token: str = "stub-token-123456"):
        self.token = token
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str):
        self.scopes.append(scopes)
        return types.SimpleNamespace(token=self.token, expires_on=0)


def test_a_credential_gives_the_token_for_the_clouds_scope():
    credential = StubCredential()
    settings = HttpSettings(retries=0, read_timeout=5)
    with LocalServer() as srv:
        srv.route(
            f"/subscriptions/{SUBSCRIPTION}/providers/Microsoft.Network/locations/"
            "usgovvirginia/serviceTags?api-version=2024-07-01",
            json.dumps(api_answer({**SMALL, "cloud": "AzureGovernment"})).encode(),
        )
        raw = fetch_api(
            ApiRequest(get_cloud("usgov"), SUBSCRIPTION, arm_endpoint=srv.url),
            settings,
            credential=credential,
            environ={},  # no AZURE_ACCESS_TOKEN: the credential is asked
        )
        (request,) = srv.requests
    assert credential.scopes == [("https://management.usgovcloudapi.net/.default",)]
    assert request.headers["authorization"] == "Bearer stub-token-123456"
    assert json.loads(raw.data)["cloud"] == "AzureGovernment"


def test_a_credential_that_fails_is_one_sentence():
    class Failing:
        def get_token(self, *scopes: str):
            raise RuntimeError("DefaultAzureCredential failed to retrieve a token\nmore lines")

    with pytest.raises(FetchError) as err:
        fetch_api(
            ApiRequest(PUBLIC, SUBSCRIPTION, arm_endpoint="http://127.0.0.1:9"),
            HttpSettings(),
            credential=Failing(),
            environ={},
        )
    assert "Could not sign in to Public Resource Manager with azure-identity (RuntimeError: " in (
        str(err.value)
    )
    assert "more lines" not in str(err.value)


def test_without_azure_identity_the_sentence_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "azure.identity", None)  # import fails
    with pytest.raises(FetchError, match=r"pip install 'aztags\[azure\]'"):
        default_credential(PUBLIC)


def test_default_credential_uses_the_clouds_authority(monkeypatch):
    made = []

    class Fake:
        def __init__(self, **kwargs):
            made.append(kwargs)

    fake = types.ModuleType("azure.identity")
    fake.DefaultAzureCredential = Fake  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "azure", types.ModuleType("azure"))
    monkeypatch.setitem(sys.modules, "azure.identity", fake)
    default_credential(get_cloud("china"))
    assert made == [{"authority": "login.chinacloudapi.cn"}]


def test_germany_and_bad_requests_fail_before_any_token_is_asked():
    credential = StubCredential()
    with pytest.raises(UsageError, match="Germany"):
        fetch_api(
            ApiRequest(get_cloud("germany"), SUBSCRIPTION),
            HttpSettings(),
            credential=credential,
            environ={},
        )
    assert credential.scopes == []


# -- the scheduler: [[refresh]] with a subscription also stores the API's answer --------------


def _run_once(env, srv: LocalServer, monkeypatch, status: int = 200):
    from tests.helpers import snapshot_bytes

    file = env / "ServiceTags_Public_20250106.json"
    file.write_bytes(snapshot_bytes(12, SMALL["values"]))
    (env / "aztags.toml").write_text(
        f'[[refresh]]\ncloud = "public"\nsource = "{file}"\nsubscription = "{SUBSCRIPTION}"\n'
    )
    srv.route(FIRST, json.dumps(api_answer(SMALL, "77")).encode(), status=status)
    monkeypatch.setenv("AZTAGS_ARM_ENDPOINT", srv.url)
    return run("run", "--once", "--retries", "0")


def test_run_once_also_stores_the_api_answer(env, monkeypatch):
    with LocalServer() as srv:
        result = _run_once(env, srv, monkeypatch)
        (request,) = srv.requests
    assert result.exit_code == 0, result.stderr
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert "refresh public (Discovery API): current changeNumber 77" in result.stderr
    api = json.loads(run("snapshots", "--source", "api", "--json").stdout)
    assert [(s["cloud"], s["change_number"]) for s in api] == [("Public@api", 77)]
    assert [s["cloud"] for s in json.loads(run("snapshots", "--json").stdout)] == ["Public"]


def test_run_once_keeps_the_file_when_the_api_fails(env, monkeypatch):
    with LocalServer() as srv:
        result = _run_once(env, srv, monkeypatch, status=401)
    assert result.exit_code == 0  # the file's refresh stands; the API's failure is logged
    assert "refresh public (Discovery API) failed:" in result.stderr
    assert "HTTP 401" in result.stderr and TOKEN not in result.stderr
    assert run("snapshots", "--source", "api").exit_code == 3
    assert run("snapshots").exit_code == 0


def test_run_once_alerts_when_a_prefix_lags_between_file_and_api(env, monkeypatch):
    from tests.helpers import snapshot_bytes

    storage = {"service": "AzureStorage"}
    old_file = [
        tag_json("AzureCloud", ["10.0.0.0/8"]),
        tag_json("Storage", ["10.1.0.0/16", "10.3.0.0/16"], **storage),
    ]
    new_file = [
        tag_json("AzureCloud", ["10.0.0.0/8"]),
        tag_json("Storage", ["10.1.0.0/16", "10.2.0.0/16"], **storage),  # +10.2, -10.3
    ]
    (env / "ServiceTags_Public_20250106.json").write_bytes(snapshot_bytes(12, old_file))
    newest = env / "ServiceTags_Public_20250113.json"
    newest.write_bytes(snapshot_bytes(13, new_file))
    assert run("import", "ServiceTags_Public_20250106.json").exit_code == 0
    (env / "aztags.toml").write_text(
        f'[[refresh]]\ncloud = "public"\nsource = "{newest}"\nsubscription = "{SUBSCRIPTION}"\n'
        "api_lag_alert_days = 7\n\n"
        '[[watch]]\nname = "storage"\ntags = ["Storage"]\n\n'
        '[[watch]]\nname = "cloud"\ntags = ["AzureCloud"]\n'
    )
    # the API still applies the old file's Storage
    applied = api_answer({"cloud": "Public", "values": old_file}, "90")
    with LocalServer() as srv:
        srv.route(FIRST, json.dumps(applied).encode())
        monkeypatch.setenv("AZTAGS_ARM_ENDPOINT", srv.url)
        first = run("run", "--once")
        again = run("run", "--once")
    assert first.exit_code == 0 and again.exit_code == 0, first.stderr
    events = json.loads(run("alerts", "list", "--json").stdout)
    lag = [e for e in events if e["type"] == "source.api_lag"]
    assert len(lag) == 1  # the 'storage' watch only, and once for this file and answer
    (event,) = lag
    assert event["watch"] == "storage" and event["severity"] == "warning"
    assert event["data"]["tags"] == [
        {
            "name": "Storage",
            "announced": [{"prefix": "10.2.0.0/16", "since": "2025-01-13"}],
            "withdrawing": [{"prefix": "10.3.0.0/16", "since": "2025-01-13"}],
        }
    ]
    assert "1 prefix(es) in the file for more than 7 days" in event["summary"]
