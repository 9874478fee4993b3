"""Shell completion: tag names, region codes and profile names, from the store and profiles.

The candidate functions are tested directly; the click wiring through click's completion API
in-process (so ``--db`` and ``--cloud`` typed on the line are honoured); and one completion the
way a shell asks for it, through ``_AZTAGS_COMPLETE`` in a real process.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.shell_completion import ShellComplete
from click.testing import CliRunner

from cli import main
from resolver.complete import matching, profile_names, region_codes, tag_names
from resolver.profiles import builtin_profiles
from tests.helpers import ROOT, simple_snapshot


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("completion")
    path = folder / "aztags.db"
    public = folder / "ServiceTags_Public_20250113.json"
    public.write_bytes(
        simple_snapshot(
            5,
            {
                "Storage": ["10.0.0.0/16"],
                "Storage.WestUS": ["10.0.0.0/24"],
                "Storage.WestEurope": ["10.0.1.0/24"],
                "Sql.WestUS": ["10.0.2.0/24"],
                "AzureCloud": ["10.0.0.0/8"],
            },
        )
    )
    china = folder / "ServiceTags_China_20250113.json"
    china.write_bytes(simple_snapshot(9, {"Storage.ChinaNorth2": ["40.0.0.0/24"]}, "China"))
    env = {"AZTAGS_DB": str(path), "XDG_CONFIG_HOME": str(folder / "config")}
    result = CliRunner().invoke(
        main, ["import", str(public), str(china)], env=env, catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    return path


def test_matching_is_a_prefix_match_in_any_case():
    assert matching(["Storage", "Storage.WestUS", "Sql", "storage"], "stor") == [
        "Storage",
        "Storage.WestUS",
        "storage",
    ]
    assert matching(["a", "a", "b"], "") == ["a", "b"]


def test_tag_names_and_region_codes_come_from_the_current_snapshot(store):
    assert tag_names(store, "public", "storage.w") == ["Storage.WestEurope", "Storage.WestUS"]
    assert tag_names(store, "public", "") == [
        "AzureCloud",
        "Sql.WestUS",
        "Storage",
        "Storage.WestEurope",
        "Storage.WestUS",
    ]
    assert region_codes(store, "public", "WEST") == ["westeurope", "westus"]
    assert tag_names(store, "china", "st") == ["Storage.ChinaNorth2"]
    assert region_codes(store, "china") == ["chinanorth2"]


def test_completion_fails_silently_without_a_store(tmp_path):
    assert tag_names(tmp_path / "none.db", "public", "S") == []
    assert region_codes(tmp_path / "none.db", "public") == []
    assert not (tmp_path / "none.db").exists()  # completion creates nothing
    not_a_db = tmp_path / "notes.txt"
    not_a_db.write_text("hello")
    assert tag_names(not_a_db, "public") == []
    assert not_a_db.read_text() == "hello"


def test_profile_names_builtin_user_and_a_broken_folder(tmp_path):
    folder = tmp_path / "profiles"
    folder.mkdir()
    (folder / "backup.toml").write_text(
        '[[rule]]\ndirection = "outbound"\nports = "443"\ntag = "Storage"\n'
    )
    builtins = sorted(builtin_profiles())
    assert profile_names([folder]) == sorted([*builtins, "backup"])
    assert profile_names([folder], "ba") == ["backup", "batch"]
    (folder / "broken.toml").write_text("this is not toml = = =")
    assert profile_names([folder]) == builtins  # the built-ins, no error


def complete(args: list[str], incomplete: str, env: dict[str, str]) -> list[str]:
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        shell = ShellComplete(main, {}, "aztags", "_AZTAGS_COMPLETE")
        return [item.value for item in shell.get_completions(args, incomplete)]
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.mark.parametrize(
    ("args", "incomplete", "expected"),
    [
        (["cidrs"], "Storage.", ["Storage.WestEurope", "Storage.WestUS"]),
        (["cidrs", "Storage", "--region"], "west", ["westeurope", "westus"]),
        (["cidrs", "--cloud", "china"], "s", ["Storage.ChinaNorth2"]),
        (["cidrs", "--profile"], "az", ["azureml", "azureml-china"]),
        (["history"], "sq", ["Sql.WestUS"]),
        (["diff"], "Storage.WestE", ["Storage.WestEurope"]),
        (["diff", "--profile"], "azureml-", ["azureml-china"]),
        (["diff", "--region"], "westu", ["westus"]),
        (["tags", "--region"], "westu", ["westus"]),
        (["profile", "show"], "", sorted(builtin_profiles())),
        (["profile", "show", "azureml", "--cloud", "china", "--region"], "", ["chinanorth2"]),
    ],
)
def test_click_completes_tags_regions_and_profiles(store, tmp_path, args, incomplete, expected):
    env = {"AZTAGS_DB": str(store), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    assert complete(args, incomplete, env) == expected


def test_db_typed_on_the_line_wins_over_the_environment(store, tmp_path):
    env = {"AZTAGS_DB": str(tmp_path / "none.db"), "XDG_CONFIG_HOME": str(tmp_path)}
    assert complete(["cidrs"], "Stor", env) == []
    assert complete(["cidrs", "--db", str(store)], "Stor", env) == [
        "Storage",
        "Storage.WestEurope",
        "Storage.WestUS",
    ]


def aztags_command() -> list[str]:
    """The installed console script beside this Python, else the same entry point by hand."""
    script = shutil.which("aztags", path=str(Path(sys.executable).parent))
    if script:
        return [script]
    return [sys.executable, "-c", "import cli; cli.main(prog_name='aztags')"]


@pytest.mark.slow
def test_a_real_bash_completion_through_the_environment_protocol(store, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZTAGS_", "_AZTAGS"))}
    env.update(
        AZTAGS_DB=str(store),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        _AZTAGS_COMPLETE="bash_complete",
        COMP_WORDS="aztags cidrs Storage.W",
        COMP_CWORD="2",
        PYTHONPATH=str(ROOT),
    )
    done = subprocess.run(
        aztags_command(), env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["plain,Storage.WestEurope", "plain,Storage.WestUS"]
    assert done.stderr == ""
    # and the script a user puts in ~/.bashrc (README) names the same protocol
    env.pop("COMP_WORDS"), env.pop("COMP_CWORD")
    env["_AZTAGS_COMPLETE"] = "bash_source"
    source = subprocess.run(
        aztags_command(), env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert "_AZTAGS_COMPLETE=bash_complete" in source.stdout
