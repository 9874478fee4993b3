"""The config file as a user writes it: where it is read from, what reaches which command, and
the sentence a mistake gets (file, section, key, the type wanted, a close match)."""

from __future__ import annotations

import dataclasses
import json
import pathlib
import re

import click
import pytest
from click.testing import CliRunner

from cli import main, setting_types, settings_default_map
from cli_options import subcommands
from resolver.config import SECTIONS, Config, Integer, parse_config
from resolver.errors import ConfigError
from tests.helpers import ROOT, simple_snapshot

PROFILE = (
    'description = "{what}"\n\n[[rule]]\ndirection = "outbound"\nports = "443"\ntag = "Storage"\n'
)


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A clean slate: no AZTAGS_* variables, the working folder and the user config dir in tmp."""
    for name in ("AZTAGS_CONFIG", "AZTAGS_PROFILES_DIR", "AZTAGS_CLOUD", "AZTAGS_MAX_AGE_DAYS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AZTAGS_DB", str(tmp_path / "cli.db"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return tmp_path


def run(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def profiles_folder(parent: pathlib.Path, name: str) -> pathlib.Path:
    """A folder holding one user profile called ``name``."""
    folder = parent / f"profiles-{name}"
    folder.mkdir()
    (folder / f"{name}.toml").write_text(PROFILE.format(what=f"from {name}"), encoding="utf-8")
    return folder


def listed(result) -> list[str]:
    """The profiles listed: the user's, and of the built-in ones azureml (enough to see them)."""
    assert result.exit_code == 0, result.output
    return sorted(
        p["name"]
        for p in json.loads(result.stdout)
        if not p["origin"].startswith("<builtin>/") or p["name"] == "azureml"
    )


def settings() -> dict:
    return setting_types(main)


def problem(text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "aztags.toml", settings())
    return str(caught.value)


# -- settings reach every command, grouped subcommands too -----------------------------------------


def test_profiles_dir_in_config_reaches_profile_list(home):
    folder = profiles_folder(home, "backup")
    config = home / "my.toml"
    config.write_text(f"profiles_dir = {json.dumps(str(folder))}\n")
    assert listed(run("--config", str(config), "profile", "list", "--json")) == [
        "azureml",
        "backup",
    ]
    # the same file through AZTAGS_CONFIG, and as ./aztags.toml
    assert "backup" in listed(run("profile", "list", "--json", env={"AZTAGS_CONFIG": str(config)}))
    (home / "work" / "aztags.toml").write_text(config.read_text())
    assert "backup" in listed(run("profile", "list", "--json"))


def test_profiles_dir_as_a_list_of_folders(home):
    a, b = profiles_folder(home, "alpha"), profiles_folder(home, "beta")
    (home / "work" / "aztags.toml").write_text(
        f"profiles-dir = [{json.dumps(str(a))}, {json.dumps(str(b))}]\n"
    )
    assert listed(run("profile", "list", "--json")) == ["alpha", "azureml", "beta"]


def test_precedence_flag_then_environment_then_config_then_default(home):
    default = home / "xdg" / "aztags" / "profiles"
    default.mkdir(parents=True)
    (default / "fallback.toml").write_text(PROFILE.format(what="default"))
    in_config, in_env, in_flag = (profiles_folder(home, n) for n in ("conf", "env", "flag"))
    config = home / "aztags-test.toml"
    config.write_text(f"profiles_dir = {json.dumps(str(in_config))}\n")
    env = {"AZTAGS_CONFIG": str(config), "AZTAGS_PROFILES_DIR": str(in_env)}
    flag = ("--profiles-dir", str(in_flag))
    assert listed(run("profile", "list", "--json", *flag, env=env)) == ["azureml", "flag"]
    assert listed(run("profile", "list", "--json", env=env)) == ["azureml", "env"]
    assert listed(run("profile", "list", "--json", env={"AZTAGS_CONFIG": str(config)})) == [
        "azureml",
        "conf",
    ]
    assert listed(run("profile", "list", "--json")) == ["azureml", "fallback"]


def test_default_map_follows_the_command_tree():
    defaults = settings_default_map(main, {"profiles_dir": "p", "max_age_days": 3, "db": "x.db"})
    assert defaults["profile"] == {
        "list": {"profiles_dir": ["p"]},
        "show": {"max_age_days": 3, "profiles_dir": ["p"], "db": "x.db"},
        "check": {"db": "x.db"},
    }
    assert defaults["status"] == {"max_age_days": 3, "db": "x.db"}
    assert "fetch" in defaults and "max_age_days" not in defaults["fetch"]  # only its own options


def test_cloud_all_reaches_commands_that_take_it_and_leaves_the_others_at_their_default(home):
    source = home / "ServiceTags_Public_20250106.json"
    source.write_bytes(simple_snapshot(12, {"Storage": ["10.0.0.0/16"]}))
    assert run("import", str(source)).exit_code == 0
    (home / "work" / "aztags.toml").write_text('cloud = "all"\n')
    tags = run("tags", "--json")  # tags answers for one cloud: public, its default
    assert tags.exit_code == 0, tags.output
    assert "Storage" in tags.stdout
    defaults = settings_default_map(main, {"cloud": "all"})
    assert defaults["fetch"] == defaults["status"] == defaults["snapshots"] == {"cloud": "all"}
    assert "tags" not in defaults and "cidrs" not in defaults
    (home / "work" / "aztags.toml").write_text('cloud = "China"\n')  # any case, as the flag
    assert run("tags").exit_code == 3  # nothing stored for China: the setting was applied


# -- mistakes: file, section, key, wanted type, close matches --------------------------------------


def test_wrong_type_names_the_key_and_the_type_wanted(home):
    (home / "work" / "aztags.toml").write_text("db = 5\n")
    result = run("status")
    assert result.exit_code == 2
    assert result.stderr == (
        "aztags: Wrong value in aztags.toml: db must be a string (a path), found the integer 5.\n"
    )


@pytest.mark.parametrize(
    ("line", "wanted"),
    [
        ("retries = 11", "retries must be an integer from 0 to 10, found the integer 11"),
        ("retries = true", "retries must be an integer from 0 to 10, found the boolean true"),
        ("retries = 2.0", "retries must be an integer from 0 to 10, found the number 2.0"),
        (
            "quarantine_drop = nan",
            "quarantine_drop must be a number from 0 to 1, found the number nan",
        ),
        ("quarantine_drop = 1.5", "quarantine_drop must be a number from 0 to 1"),
        ("max_age_days = -1", "max_age_days must be an integer of at least 0"),
        (
            'max_age_days = "10"',
            'max_age_days must be an integer of at least 0, found the string "10"',
        ),
        ('keep_raw = "yes"', 'keep_raw must be true or false, found the string "yes"'),
        ('cloud = "mars"', 'cloud must be one of "public", "usgov", "china", "germany", "all"'),
        ("profiles_dir = [1]", "profiles_dir must be a string (a path), or a list of them"),
        ("db = 2025-01-01", "found the date/time 2025-01-01"),
        ("[db]\nx = 1", "db must be a string (a path), found a table"),
    ],
)
def test_wrong_types(line, wanted):
    assert wanted in problem(line + "\n")


@pytest.mark.parametrize(
    "text",
    [
        "timeout = 60",  # an integer where a float is wanted
        "quarantine-drop = 0.3",  # - for _
        'cloud = "Public"',
        'profiles_dir = "one"',
        'profiles_dir = ["one", "two"]',
        "keep_raw = false",
        "family = 6",
    ],
)
def test_right_types(text):
    key = text.split("=")[0].strip().replace("-", "_")
    assert key in parse_config(text + "\n", "aztags.toml", settings()).settings


def test_unknown_key_has_close_matches_and_keeps_the_sentence_users_know(home):
    (home / "work" / "aztags.toml").write_text("max_age_dayz = 1\n")
    result = run("status")
    assert result.exit_code == 2
    assert (
        "Unknown setting(s) in aztags.toml: max_age_dayz (did you mean max_age_days?)"
        in result.stderr
    )


def test_unknown_section_suggests_the_known_one():
    assert "[[chanel]] (did you mean [[channel]]?)" in problem('[[chanel]]\nname = "x"\n')
    assert "[server] (did you mean [serve]?)" in problem("[server]\nport = 1\n")


def test_unknown_key_in_a_section_names_the_entry():
    text = (
        '[[channel]]\nname = "ops"\ntype = "slack"\nurl = "https://x"\n\n'
        '[[channel]]\nname = "netops"\ntype = "webhook"\nsecrte = "env:S"\n'
    )
    message = problem(text)
    assert message.startswith(
        'Unknown setting(s) in aztags.toml, [[channel]] #2 ("netops"): '
        "secrte (did you mean secret?)."
    )
    assert "Known there: name, type, url, secret" in message
    assert "pord (did you mean port?)" in problem("[serve]\npord = 8080\n")
    assert "aztags.toml, [serve]" in problem("[serve]\npord = 8080\n")


def test_section_keys_are_type_checked_and_required_keys_named():
    assert (
        'Wrong value in aztags.toml, [[channel]] #1 ("n"): type must be one of "webhook", "slack",'
        in problem('[[channel]]\nname = "n"\ntype = "pager"\n')
    )
    assert "Missing setting in aztags.toml, [[channel]] #1: name (a string)." in problem(
        '[[channel]]\ntype = "slack"\n'
    )
    assert "[serve]: port must be an integer from 0 to 65535, found the integer 99999" in problem(
        "[serve]\nport = 99999\n"
    )
    every = '[[refresh]] #1: every must be a duration with its unit ("45s", "30m", "6h", "1d")'
    assert every in problem('[[refresh]]\ncloud = "public"\nevery = 6\n')
    assert "refresh must be an array of tables, written [[refresh]]" in problem(
        '[refresh]\ncloud = "public"\n'
    )
    assert "serve must be a table, written [serve]" in problem("[[serve]]\nport = 1\n")


def test_every_problem_is_reported_at_once():
    message = problem('db = 5\nretries = -1\n[[watch]]\nname = "w"\nfamily = "ip4"\n')
    assert message.startswith("3 problems in the config file aztags.toml:")
    assert "db must be" in message and "retries must be" in message and "family must be" in message


def test_watch_must_name_defined_channels_and_names_are_unique():
    text = (
        '[[channel]]\nname = "netops"\ntype = "slack"\n\n'
        '[[watch]]\nname = "w"\nchannels = ["netop"]\n'
    )
    assert (
        'Unknown channel in aztags.toml, [[watch]] #1 ("w"): "netop" is not the name of a '
        "[[channel]] (defined: netops). Did you mean netops?"
    ) in problem(text)
    twice = '[[watch]]\nname = "w"\nall = true\n[[watch]]\nname = "w"\nall = true\n'
    assert 'Two [[watch]] entries in aztags.toml are named "w"' in problem(twice)


def test_readme_examples_are_valid_configs():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    everyday, sections = (
        parse_config(example, "README.md", settings())
        for example in re.findall(r"```toml\n(.*?)```", section, re.S)
    )
    assert everyday.settings["profiles_dir"] == ["/etc/aztags/profiles", "/srv/network/profiles"]
    assert everyday.settings["timeout"] == 30 and not everyday.channel
    assert [c["name"] for c in sections.channel] == ["netops", "mail", "siem", "chat", "ticket"]
    from resolver.alerts.channels import check_channel

    assert [p for c in sections.channel for p in check_channel(c)] == []  # usable as written
    assert sections.alerts["max_attempts"] == 10
    assert [w["channels"] for w in sections.watch] == [["netops", "mail"]]
    assert sections.refresh[0]["cloud"] == "public" and sections.serve["port"] == 8080
    assert sections.auth["tokens"] == ["env:AZTAGS_API_TOKEN"]


def test_the_issue_10_example_is_a_valid_config():
    text = """
[[refresh]]
cloud = "public"
every = "6h"
source = "https://mirror.example.internal/ServiceTags_Public.json"
fail_alert_after = 3
stale_after_days = 10

[[channel]]
name = "netops"
type = "webhook"
url = "https://hooks.example.internal/aztags"
secret = "env:AZTAGS_WEBHOOK_SECRET"

[[channel]]
name = "mail"
type = "email"
host = "smtp.example.internal"
port = 587
tls = "starttls"
from = "aztags@example.internal"
to = "netops@example.internal"

[[watch]]
name = "azureml-westus"
profile = "azureml"
region = "westus"
cloud = "public"
family = "any"
channels = ["netops"]
min_change = 1
"""
    config = parse_config(text, "aztags.toml", settings())
    assert config.refresh == (
        {
            "cloud": "public",
            "every": "6h",
            "source": "https://mirror.example.internal/ServiceTags_Public.json",
            "fail_alert_after": 3,
            "stale_after_days": 10,
        },
    )
    assert [c["name"] for c in config.channel] == ["netops", "mail"]
    assert config.channel[1]["to"] == ["netops@example.internal"]  # one address: a list of one
    assert config.watch[0]["channels"] == ["netops"]
    assert config.settings == {} and config.serve == {} and config.auth == {}


# -- the schema never drifts from the CLI ----------------------------------------------------------


def _options(command: click.Command):
    for param in command.params:
        if isinstance(param, click.Option) and param.name:
            yield param
    if isinstance(command, click.Group):
        for sub in subcommands(command):
            yield from _options(sub)


def test_every_option_default_is_a_valid_setting():
    """Derived from the click types: what click accepts as a default, the config accepts."""
    types = settings()
    options = [o for command in subcommands(main) for o in _options(command)]
    assert {o.name for o in options} == set(types)
    for option in options:
        default = option.default
        if not isinstance(default, str | int | float | tuple) or default == ():
            continue  # no default (None, click's UNSET) or one computed at run time
        value = list(default) if option.multiple else default
        assert types[option.name].accepts(value), (option.name, default)
    assert types["retries"] == Integer(0, 10)


def test_sections_are_config_fields_and_never_option_names():
    fields = {f.name for f in dataclasses.fields(Config)} - {"path", "settings", "warnings"}
    assert fields == set(SECTIONS)
    assert not set(settings()) & set(SECTIONS)


# -- files that cannot be read ---------------------------------------------------------------------


def _deny(monkeypatch, target: pathlib.Path) -> None:
    """Reading ``target`` fails as it would for a user without permission (tests run as root)."""
    real = pathlib.Path.read_bytes

    def read_bytes(self):
        if self.absolute() == target.absolute():
            raise PermissionError(13, "Permission denied", str(self))
        return real(self)

    monkeypatch.setattr(pathlib.Path, "read_bytes", read_bytes)


def test_named_config_that_cannot_be_read_is_one_sentence(home, monkeypatch):
    config = home / "locked.toml"
    config.write_text("max_age_days = 1\n")
    _deny(monkeypatch, config)
    for result in (
        run("--config", str(config), "profile", "list"),
        run("profile", "list", env={"AZTAGS_CONFIG": str(config)}),
    ):
        assert result.exit_code == 2
        assert result.stderr == (
            f"aztags: Cannot read the config file {config}: Permission denied. "
            "Check its permissions (and those of its folders).\n"
        )
        assert result.stdout == ""


def test_named_config_missing_or_a_folder(home):
    missing = run("--config", str(home / "nope.toml"), "profile", "list")
    assert missing.exit_code == 2
    assert "Cannot read the config file" in missing.stderr and "nope.toml" in missing.stderr
    (home / "folder.toml").mkdir()
    folder = run("profile", "list", env={"AZTAGS_CONFIG": str(home / "folder.toml")})
    assert folder.exit_code == 2
    assert "folder.toml" in folder.stderr and "is a directory" in folder.stderr


def test_unreadable_default_location_is_skipped_with_a_warning(home, monkeypatch):
    (home / "work" / "aztags.toml").mkdir()  # a folder where ./aztags.toml would be
    user = home / "xdg" / "aztags" / "aztags.toml"
    user.parent.mkdir(parents=True)
    folder = profiles_folder(home, "mine")
    user.write_text(f"profiles_dir = {json.dumps(str(folder))}\n")
    result = run("profile", "list", "--json")
    assert result.stderr == (
        "aztags: warning: skipped the config file aztags.toml: it is a directory; "
        "going on without it.\n"
    )
    assert listed(result) == ["azureml", "mine"]  # the next location is read

    _deny(monkeypatch, user)
    result = run("profile", "list", "--json")
    assert f"warning: skipped the config file {user}: Permission denied" in result.stderr
    assert listed(result) == ["azureml"]


def test_unreadable_user_config_folder_is_skipped(home, monkeypatch):
    """HOME pointing at another user's home: stat() of the file itself is refused."""
    user = home / "xdg" / "aztags" / "aztags.toml"
    real = pathlib.Path.stat

    def stat(self, **kw):
        if self == user:
            raise PermissionError(13, "Permission denied", str(self))
        return real(self, **kw)

    monkeypatch.setattr(pathlib.Path, "stat", stat)
    result = run("profile", "list")
    assert result.exit_code == 0
    assert (
        "warning: skipped the config file" in result.stderr and "Permission denied" in result.stderr
    )


def test_config_that_is_not_utf8_or_not_toml_is_one_sentence(home):
    config = home / "work" / "aztags.toml"
    config.write_bytes(b'# settings\ndb = "caf\xe9.db"\n')
    result = run("profile", "list")
    assert result.exit_code == 2
    assert result.stderr == (
        "aztags: The config file aztags.toml is not UTF-8 text (byte 0xe9 on line 2); "
        "save it as UTF-8.\n"
    )
    config.write_text("db = \n")
    result = run("profile", "list")
    assert result.exit_code == 2
    assert result.stderr.startswith("aztags: The config file aztags.toml is not valid TOML:")


def test_utf8_with_a_byte_order_mark_is_read(home):
    folder = profiles_folder(home, "bom")
    (home / "work" / "aztags.toml").write_bytes(
        b"\xef\xbb\xbf" + f"profiles_dir = {json.dumps(str(folder))}\n".encode()
    )
    assert "bom" in listed(run("profile", "list", "--json"))
