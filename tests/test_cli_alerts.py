"""Change alerts from the command line (issue 10): fetch and import raise and deliver them,
`alerts list/retry/test`, config problems as sentences, secrets nowhere but in the request."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main
from tests.helpers import cli_env, simple_snapshot
from tests.receivers import Reply, WebhookReceiver

SECRET = "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
V1 = {"Sql": ["20.0.0.0/16"], "AzureCloud": [f"10.{i}.0.0/16" for i in range(20)]}


def _version(cn: int, extra: list[str]) -> dict[str, list[str]]:
    return {**V1, "Sql": ["20.0.0.0/16", *extra]}


@pytest.fixture
def hook():
    with WebhookReceiver(SECRET) as receiver:
        yield receiver


@pytest.fixture
def aztags(tmp_path, hook, monkeypatch):
    """Runs aztags with a config whose watch `sql` sends to the webhook channel `netops`."""
    config = tmp_path / "aztags.toml"
    config.write_text(
        f"""
[[channel]]
name = "netops"
type = "webhook"
url = "{hook.url}"
secret = "env:AZTAGS_TEST_WEBHOOK_SECRET"
timeout = 2

[[watch]]
name = "sql"
tags = ["Sql"]
channels = ["netops"]

[alerts]
retry_delays = ["1h"]
round_wait = 0
"""
    )
    env = {**cli_env(tmp_path / "a.db", tmp_path), "AZTAGS_CONFIG": str(config)}
    env["AZTAGS_TEST_WEBHOOK_SECRET"] = SECRET
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(main, list(args), env=env, catch_exceptions=False)

    return invoke


def _file(tmp_path: Path, cn: int, extra: list[str] = ()) -> str:
    path = tmp_path / f"ServiceTags_Public_2025{cn:02d}01.json"
    path.write_bytes(simple_snapshot(cn, _version(cn, list(extra))))
    return str(path)


def _events(request) -> list[dict]:
    return json.loads(request.body)["data"]["events"]


def test_fetch_raises_and_delivers_one_signed_alert(aztags, hook, tmp_path):
    assert aztags("fetch", "--source", _file(tmp_path, 1)).exit_code == 0
    assert hook.requests == []  # the baseline
    result = aztags("fetch", "--source", _file(tmp_path, 2, ["20.1.0.0/16"]))
    assert result.exit_code == 0, result.output
    [request] = hook.requests
    assert request.verified
    [event] = _events(request)
    assert event["summary"] == "public/sql: Sql changed, +1 -0 prefixes (changeNumber 1 -> 2)"


def test_no_deliver_records_and_a_later_command_sends(aztags, hook, tmp_path):
    aztags("fetch", "--source", _file(tmp_path, 1))
    assert (
        aztags("fetch", "--no-deliver", "--source", _file(tmp_path, 2, ["20.1.0.0/16"])).exit_code
        == 0
    )
    assert hook.requests == []
    listed = aztags("alerts", "list", "--pending")
    assert listed.exit_code == 0
    assert "netops" in listed.stdout and "pending (not tried yet)" in listed.stdout
    assert "public/sql: Sql changed, +1 -0 prefixes" in listed.stdout
    aztags("fetch", "--source", _file(tmp_path, 2, ["20.1.0.0/16"]))  # a duplicate: delivers
    assert len(hook.requests) == 1
    assert "No alert events." not in aztags("alerts", "list").stdout
    assert aztags("alerts", "list", "--pending").stdout.strip() == "No alert events."


def test_import_of_several_newer_files_sends_one_event(aztags, hook, tmp_path):
    aztags("import", _file(tmp_path, 1))
    files = [
        _file(tmp_path, 2, ["20.1.0.0/16", "20.2.0.0/16"]),
        _file(tmp_path, 3, ["20.2.0.0/16"]),
        _file(tmp_path, 4, ["20.2.0.0/16", "20.3.0.0/16"]),
    ]
    assert aztags("import", *files).exit_code == 0
    [request] = hook.requests
    [event] = _events(request)
    assert event["data"]["tags"][0]["added"] == ["20.2.0.0/16", "20.3.0.0/16"]
    assert (event["data"]["from"]["change_number"], event["data"]["to"]["change_number"]) == (1, 4)


def test_a_refused_alert_is_a_dead_letter_until_retried(aztags, hook, tmp_path):
    aztags("fetch", "--source", _file(tmp_path, 1))
    hook.script(Reply(400, body="bad"))
    result = aztags("fetch", "--source", _file(tmp_path, 2, ["20.1.0.0/16"]))
    assert result.exit_code == 0  # the snapshot is stored; the alert is a dead letter
    assert "alert to netops" in result.stderr and "dead" in result.stderr
    dead = json.loads(aztags("alerts", "list", "--dead", "--json").stdout)
    assert [d["state"] for d in dead[0]["deliveries"]] == ["dead"]
    retried = aztags("alerts", "retry", dead[0]["id"])
    assert retried.exit_code == 0 and "1 dead letter(s) queued again." in retried.stdout
    assert len(hook.requests) == 2 and hook.requests[1].verified
    assert aztags("alerts", "list", "--dead").stdout.strip() == "No alert events."


def test_retry_of_an_unknown_id_exits_3(aztags):
    result = aztags("alerts", "retry", "evt_nope")
    assert result.exit_code == 3
    assert "No alert event or message with id evt_nope" in result.stderr


def test_alerts_test_sends_a_sample_event(aztags, hook):
    result = aztags("alerts", "test", "netops")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("netops: sent")
    [event] = _events(hook.requests[0])
    assert event["type"] == "aztags.test" and hook.requests[0].verified


def test_alerts_test_of_an_unknown_channel_names_the_defined_ones(aztags):
    result = aztags("alerts", "test", "netop")
    assert result.exit_code == 2
    assert (
        "No [[channel]] named 'netop'" in result.stderr and "Did you mean netops?" in result.stderr
    )


def test_alerts_test_reports_a_failure_with_exit_1(aztags, hook):
    hook.script(Reply(500))
    result = aztags("alerts", "test", "netops")
    assert result.exit_code == 1 and result.stdout.startswith("netops: retry")


def test_alerts_list_on_an_empty_store(aztags):
    assert aztags("fetch", "--source", "/nonexistent").exit_code == 1
    result = aztags("alerts", "list", "--json")
    assert result.exit_code == 0 and json.loads(result.stdout) == []


def test_the_secret_is_nowhere_but_in_the_signature(aztags, hook, tmp_path):
    aztags("fetch", "--source", _file(tmp_path, 1))
    hook.script(Reply(500, body=b"oops"))
    out = aztags("fetch", "-v", "--source", _file(tmp_path, 2, ["20.1.0.0/16"]))
    listed = aztags("alerts", "list", "--json").stdout
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("a.db*"))
    for text in (out.stdout, out.stderr, listed):
        assert SECRET not in text and "MDEyMzQ1Njc4" not in text
    assert SECRET.encode() not in raw and b"MDEyMzQ1Njc4" not in raw


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        (
            '[[watch]]\nname = "w"\ntags = ["Sql"]\nchannels = ["netop"]\n'
            '[[channel]]\nname = "netops"\ntype = "webhook"\nurl = "http://127.0.0.1:9/"\n',
            "Did you mean netops?",
        ),
        ('[[watch]]\nname = "w"\n', "must select tags in exactly one way"),
        ('[[watch]]\nname = "w"\nprofile = "azureml"\n', "add region = NAME"),
        ('[[watch]]\nname = "w"\nprofile = "azurml"\nregion = "westus"\n', "Unknown profile"),
        ('[[refresh]]\ncloud = "public"\ncron = "every day"\n', "is not a crontab expression"),
        ('[[refresh]]\ncloud = "public"\nevery = "6"\n', "every must be a duration"),
        ('[alerts]\nretry_delays = ["5x"]\n', "retry_delays must be a list"),
    ],
)
def test_config_problems_are_sentences_with_exit_2(tmp_path, config, problem):
    path = tmp_path / "aztags.toml"
    path.write_text(config)
    env = {**cli_env(tmp_path / "a.db", tmp_path), "AZTAGS_CONFIG": str(path)}
    result = CliRunner().invoke(main, ["run", "--once"], env=env)
    assert result.exit_code == 2, result.output
    assert problem in result.stderr and "Traceback" not in result.output


def test_alerts_commands_find_watch_profiles_in_the_configs_profiles_dir(tmp_path, hook):
    """`alerts test` and `retry` have no --profiles-dir: a watch's profile comes from the
    config file's profiles_dir, as for fetch."""
    folder = tmp_path / "profiles"
    folder.mkdir()
    (folder / "mine.toml").write_text(
        '[[rule]]\ndirection = "outbound"\nports = "443"\ntag = "Sql"\n'
    )
    config = tmp_path / "aztags.toml"
    config.write_text(
        f'profiles_dir = "{folder}"\n'
        f'[[channel]]\nname = "netops"\ntype = "webhook"\nurl = "{hook.url}"\n'
        'secret = "env:AZTAGS_TEST_WEBHOOK_SECRET"\n'
        '[[watch]]\nname = "w"\nprofile = "mine"\nchannels = ["netops"]\n'
    )
    env = {**cli_env(tmp_path / "a.db", tmp_path), "AZTAGS_CONFIG": str(config)}
    env["AZTAGS_TEST_WEBHOOK_SECRET"] = SECRET
    runner = CliRunner()
    sent = runner.invoke(main, ["alerts", "test", "netops"], env=env)
    assert sent.exit_code == 0, sent.output
    assert runner.invoke(main, ["alerts", "retry"], env=env).exit_code == 0
