"""What a single query process imports: a command does not load the modules it never uses.

Every `aztags` call is a new process, and issue 9 measures single queries against `python -c
pass`: a `cidrs TAG` that imported the profile machinery, the diff or the HTTP stack would pay
for them at every call. Each case runs the real command in a fresh interpreter (so nothing an
earlier test imported hides a regression), checks its answer, and lists the modules it loaded.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cache.db import open_db
from cache.store import SaveOptions
from cli import COMMANDS
from resolver.ingest import RawFile
from resolver.refresh import store_file
from tests.helpers import cli_env, run_counting_modules, simple_snapshot

# Needed by no single query below: profiles (only --profile), the diff, difflib (suggestions),
# HTTP, the parser and the writer's digests; without a config file, its schema and TOML parser;
# the writer and what an ingest makes, the history and status answers; json (text answers).
NEVER = (
    *("resolver.profiles", "resolver.diff", "requests", "resolver.parse", "hashlib", "gzip"),
    *("resolver.config", "tomllib", "socket", "difflib"),
    *("cache.store", "resolver.ingest", "resolver.history", "resolver.status", "json"),
)


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("startup") / "aztags.db"
    conn = open_db(path)
    data = simple_snapshot(1, {"AzureCloud": ["20.0.0.0/8"], "Storage.WestEurope": ["20.1.0.0/16"]})
    store_file(conn, RawFile(data, "test.json"), SaveOptions())
    conn.close()
    return path


def run(db: Path, home: Path, *args: str) -> tuple[int, str, set[str]]:
    return run_counting_modules(list(args), cli_env(db, home), home)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "printed", "also_never"),
    [
        (("cidrs", "storage.westeurope"), "20.1.0.0/16", ("resolver.lookup",)),
        (("cidrs", "AzureCloud", "--ipv4", "--aggregate"), "20.0.0.0/8", ("resolver.lookup",)),
        (("lookup", "20.1.2.3"), "20.1.2.3\tStorage.WestEurope,20.1.0.0/16", ()),
    ],
)
def test_a_single_query_imports_only_what_it_uses(db, tmp_path, args, printed, also_never):
    code, out, modules = run(db, tmp_path, *args)
    assert (code, out.split("\n")[0][: len(printed)]) in {(0, printed), (None, printed)}
    loaded = sorted(m for m in (*NEVER, *also_never) if m in modules)
    assert loaded == [], f"aztags {' '.join(args)} imported {loaded}"
    # the command's own definition only (cli.py loads commands lazily), not fetch, serve...
    own = sorted(m for m in modules if m.startswith("commands."))
    assert own == sorted(["commands.common", f"commands.{args[0]}"])


def test_help_lists_every_command_without_importing_them(db, tmp_path):
    code, out, modules = run(db, tmp_path, "--help")
    assert code == 0
    listed = [line.split()[0] for line in out.split("Commands:\n")[1].splitlines()]
    assert listed == sorted(COMMANDS)
    assert sorted(m for m in modules if m.startswith("commands.")) == ["commands.common"]


@pytest.mark.slow
def test_a_config_file_is_still_read_and_applied(db, tmp_path):
    # the schema is imported only when there is a file; its settings still reach the command
    config = tmp_path / "aztags.toml"
    config.write_text('cloud = "china"\n')  # nothing is stored for China: exit 3
    code, out, modules = run(db, tmp_path, "--config", str(config), "cidrs", "AzureCloud")
    assert (code, out) == (3, "") and "resolver.config" in modules
    code, out, _ = run(db, tmp_path, "cidrs", "AzureCloud")
    assert (code, out) in {(0, "20.0.0.0/8"), (None, "20.0.0.0/8")}


def test_rule_filters_without_a_profile_are_refused_without_loading_profiles(db, tmp_path):
    # the check moved ahead of the lazy import: the same usage error (exit 2) as before
    code, _, modules = run(db, tmp_path, "cidrs", "AzureCloud", "--direction", "outbound")
    assert code == 2 and "resolver.profiles" not in modules
