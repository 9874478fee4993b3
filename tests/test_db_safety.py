"""Opening the store safely: any path, only our own files, first runs at once, read-only stores.

The permission tests run the real CLI as an unprivileged user (``nobody`` through ``setpriv``)
when the tests run as root, because root ignores file modes; the same code paths are also covered
without privileges by forcing the failure the unprivileged run meets.
"""

from __future__ import annotations

import gzip
import logging
import os
import pwd
import shutil
import site
import sqlite3
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

import cache.db
from cache.db import open_db, transaction
from cache.history import load_tags
from cache.schema import APPLICATION_ID, SCHEMA_VERSION
from cache.store import SaveOptions
from cli import main
from resolver.errors import EmptyStoreError, StoreError
from resolver.ingest import RawFile
from resolver.refresh import store_file
from resolver.refs import resolve_at
from tests.helpers import ROOT, simple_snapshot

A = {"Storage": ["10.0.0.0/16", "10.1.0.0/16"], "Storage.WestUS": ["10.0.0.0/24"]}
B = {"Storage": ["10.0.0.0/16", "10.2.0.0/16"], "Sql": ["20.0.0.0/8"]}


def write_store(path: Path, *snapshots: bytes) -> None:
    """A closed store holding these files (so no -wal or -shm is left beside it)."""
    conn = open_db(path)
    for number, data in enumerate(snapshots, start=1):
        store_file(conn, RawFile(data, f"test-{number}", date(2025, 1, number)), SaveOptions())
    conn.close()


def tags_of(conn) -> dict[str, set[str]]:
    info = resolve_at(conn, "Public")
    return {t.name: set(t.prefixes) for t in load_tags(conn, "Public", info.seq)}


def files_in(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def foreign_sqlite(path: Path, *, user_version: int = 0, application_id: int = 0) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
    conn.execute("INSERT INTO notes (body) VALUES ('keep me')")
    conn.execute(f"PRAGMA user_version = {user_version}")
    conn.execute(f"PRAGMA application_id = {application_id}")
    conn.commit()
    conn.close()


@pytest.fixture
def run(tmp_path, monkeypatch):
    monkeypatch.delenv("AZTAGS_DB", raising=False)
    monkeypatch.delenv("AZTAGS_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(main, list(args), catch_exceptions=False)

    return invoke


# -- paths with characters that mean something in a URI --------------------------------------------


@pytest.mark.parametrize("name", ["a#b.db", "what?mode=rw.db", "100%25.db", "all #?%&= of it.db"])
def test_paths_with_uri_characters_open_that_file_and_no_other(tmp_path, name):
    folder = tmp_path / "store"
    folder.mkdir()
    path = folder / name
    write_store(path, simple_snapshot(1, A))
    reader = open_db(path, readonly=True)
    assert tags_of(reader) == {k: set(v) for k, v in A.items()}
    reader.close()
    # no stray file beside it (a read-only connection leaves the WAL files it found)
    assert {p.name for p in folder.iterdir()} <= {name, f"{name}-wal", f"{name}-shm"}
    assert not any(p.name != "store" for p in tmp_path.iterdir())


def test_cli_reads_a_store_whose_path_has_uri_characters(run, tmp_path):
    path = tmp_path / "x#y?z%41.db"
    write_store(path, simple_snapshot(1, A))
    result = run("cidrs", "Storage", "--db", str(path))
    assert result.exit_code == 0, result.output
    assert result.stdout.split() == ["10.0.0.0/16", "10.1.0.0/16"]
    assert {p.name for p in tmp_path.iterdir()} <= {f"x#y?z%41.db{s}" for s in ("", "-wal", "-shm")}


def test_reader_of_a_missing_path_with_uri_characters_creates_nothing(tmp_path):
    with pytest.raises(EmptyStoreError, match="No aztags database at"):
        open_db(tmp_path / "new#db?x", readonly=True)
    assert list(tmp_path.iterdir()) == []


# -- only our own files ----------------------------------------------------------------------------


def test_new_database_is_marked_as_ours(tmp_path):
    conn = open_db(tmp_path / "new.db")
    assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_an_empty_file_becomes_a_store(tmp_path):
    path = tmp_path / "empty.db"
    path.touch()
    write_store(path, simple_snapshot(1, A))
    assert tags_of(open_db(path, readonly=True)) == {k: set(v) for k, v in A.items()}


def test_reader_of_an_empty_file_says_it_is_empty(tmp_path):
    path = tmp_path / "empty.db"
    path.touch()
    with pytest.raises(EmptyStoreError, match="is empty"):
        open_db(path, readonly=True)
    assert path.read_bytes() == b""


def test_a_store_from_before_the_mark_is_accepted_and_marked_by_the_writer(tmp_path):
    path = tmp_path / "old.db"
    write_store(path, simple_snapshot(1, A))
    raw = sqlite3.connect(path)
    raw.execute("PRAGMA application_id = 0")
    raw.close()
    reader = open_db(path, readonly=True)
    assert tags_of(reader) == {k: set(v) for k, v in A.items()}
    assert reader.execute("PRAGMA application_id").fetchone()[0] == 0  # readers change nothing
    reader.close()
    writer = open_db(path)
    assert writer.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    assert tags_of(writer) == {k: set(v) for k, v in A.items()}


@pytest.mark.parametrize(
    ("make", "said"),
    [
        (
            lambda p: foreign_sqlite(p),
            "an SQLite database of another application (tables: notes; user_version 0)",
        ),
        (
            lambda p: foreign_sqlite(p, user_version=3),
            "an SQLite database of another application (tables: notes; user_version 3)",
        ),
        (
            lambda p: foreign_sqlite(p, application_id=0x4D504247),
            "an SQLite database of another application (application_id 0x4D504247",
        ),
        (lambda p: p.write_text("name,address\nweb,10.0.0.1\n"), "a text file, not SQLite"),
        (lambda p: p.write_bytes(b'  {"changeNumber": 1}'), "a JSON file, not SQLite"),
        (lambda p: p.write_bytes(gzip.compress(b"{}")), "a gzip file, not SQLite"),
        (lambda p: p.write_bytes(b"\x7fELF\x02\x01\x01\x00" + bytes(64)), "not SQLite"),
    ],
    ids=["sqlite", "sqlite-user-version", "sqlite-application-id", "text", "json", "gzip", "elf"],
)
@pytest.mark.parametrize("readonly", [False, True], ids=["writer", "reader"])
def test_a_file_that_is_not_ours_is_refused_and_left_unchanged(tmp_path, make, said, readonly):
    folder = tmp_path / "other"
    folder.mkdir()
    path = folder / "other.db"
    make(path)
    before = files_in(folder)
    with pytest.raises(StoreError) as error:
        open_db(path, readonly=readonly)
    message = str(error.value)
    assert message.startswith(f"{path} is not an aztags database: it is ")
    assert said in message
    assert "Nothing was changed" in message
    assert files_in(folder) == before  # same files, same bytes: no tables, no WAL switch
    if said.startswith("an SQLite"):
        check = sqlite3.connect(path)
        assert check.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        check.close()


def test_cli_import_into_another_applications_database_exits_1_and_changes_nothing(run, tmp_path):
    path = tmp_path / "contacts.db"
    foreign_sqlite(path)
    snapshot = tmp_path / "ServiceTags_Public_20250106.json"
    snapshot.write_bytes(simple_snapshot(1, A))
    before = files_in(tmp_path)
    result = run("import", str(snapshot), "--db", str(path))
    assert result.exit_code == 1
    assert f"aztags: {path} is not an aztags database: it is an SQLite database of another " in (
        result.stderr
    )
    assert "Traceback" not in result.output
    assert files_in(tmp_path) == before


def test_a_store_of_a_newer_aztags_is_refused(tmp_path):
    path = tmp_path / "newer.db"
    write_store(path)
    raw = sqlite3.connect(path)
    raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    raw.close()
    for readonly in (False, True):
        with pytest.raises(StoreError, match="written by a newer aztags"):
            open_db(path, readonly=readonly)


# -- two first runs at once ------------------------------------------------------------------------


@pytest.mark.slow
def test_two_first_imports_at_once_both_store_their_file(tmp_path):
    """Both processes find no database; one creates the schema, the other waits and uses it."""
    files = []
    for number, (day, content) in enumerate((("20250106", A), ("20250113", B)), start=1):
        path = tmp_path / f"ServiceTags_Public_{day}.json"
        path.write_bytes(simple_snapshot(number, content))
        files.append(path)
    env = {k: v for k, v in os.environ.items() if k not in ("AZTAGS_DB", "AZTAGS_CONFIG")}
    for attempt in range(5):
        db = tmp_path / f"same-{attempt}.db"
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "cli", "import", str(f), "--db", str(db)],
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for f in files
        ]
        outputs = [p.communicate(timeout=120) for p in procs]
        for proc, (_, err) in zip(procs, outputs, strict=True):
            assert proc.returncode == 0, err
        conn = open_db(db, readonly=True)
        stored = sorted(r[0] for r in conn.execute("SELECT change_number FROM snapshots"))
        assert stored == [1, 2]
        assert tags_of(conn) == {k: set(v) for k, v in B.items()}
        conn.close()


@pytest.mark.slow
def test_switching_a_new_database_to_wal_waits_for_another_writers_lock(tmp_path):
    """SQLite refuses the switch to WAL at once (SQLITE_BUSY, no waiting) while another process
    holds a lock on a database still in rollback mode: the writer waits for it instead."""
    path = tmp_path / "new.db"
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # as another first run does while it creates the schema
    release = threading.Timer(0.3, lambda: other.execute("ROLLBACK"))
    release.start()
    try:
        conn = open_db(path)
    finally:
        release.join()
        other.close()
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_schema_is_created_under_the_write_lock_and_rechecked(tmp_path):
    """The writer that waited for the lock finds the schema made and does not make it again."""
    path = tmp_path / "race.db"
    first = open_db(path)
    first.close()
    # a second writer that saw a blank database before the first one took the lock
    raw = sqlite3.connect(path, isolation_level=None, factory=cache.db.StoreConnection)
    cache.db._migrate(raw, path, seen=(0, 0))
    assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    raw.close()


# -- stores this user may read but not write -------------------------------------------------------


def _unprivileged() -> tuple[list[str], dict[str, str]] | str:
    """A command prefix that runs Python as a user file modes apply to, or why there is none."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("AZTAGS_DB", "AZTAGS_CONFIG", "PYTHONPATH")
    }
    if os.geteuid() != 0:
        return [sys.executable], env
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return "running as root and setpriv is not installed, so file modes cannot be tested"
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        return "running as root and there is no 'nobody' user to run as"
    drop = [
        setpriv,
        f"--reuid={nobody.pw_uid}",
        f"--regid={nobody.pw_gid}",
        "--clear-groups",
    ]
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *site.getsitepackages()])
    for python in dict.fromkeys([sys.executable, "/usr/bin/python3", shutil.which("python3")]):
        if not python:
            continue
        probe = [*drop, python, "-c", "import cli"]
        if subprocess.run(probe, env=env, capture_output=True, cwd="/").returncode == 0:
            return [*drop, python], env
    return "no Python interpreter that the 'nobody' user may run can import aztags"


@pytest.fixture
def as_other_user() -> Iterator[tuple[list[str], dict[str, str], Path]]:
    """(command prefix, environment, a folder that user can enter but not write)."""
    found = _unprivileged()
    if isinstance(found, str):
        pytest.skip(found)
    prefix, env = found
    folder = Path(tempfile.mkdtemp(prefix="aztags-perm-"))
    folder.chmod(0o755)
    env["HOME"] = str(folder)
    yield prefix, env, folder
    folder.chmod(0o755)
    shutil.rmtree(folder)


def run_as(prefix, env, folder, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*prefix, "-m", "cli", *args], cwd=folder, env=env, capture_output=True, text=True
    )


def read_only_store(folder: Path) -> Path:
    store = folder / "store"
    store.mkdir()
    path = store / "aztags.db"
    write_store(path, simple_snapshot(1, A))
    path.chmod(0o444)
    store.chmod(0o555)
    return path


@pytest.mark.slow
def test_other_user_reads_a_store_in_a_folder_it_cannot_write(as_other_user):
    prefix, env, folder = as_other_user
    path = read_only_store(folder)
    before = files_in(path.parent)
    done = run_as(prefix, env, folder, "cidrs", "Storage", "--db", str(path))
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["10.0.0.0/16", "10.1.0.0/16"]
    assert "writes made while this runs" in done.stderr and "are not visible" in done.stderr
    assert "Traceback" not in done.stderr
    assert files_in(path.parent) == before


@pytest.mark.slow
def test_other_user_cannot_write_a_store_and_is_told_so(as_other_user):
    prefix, env, folder = as_other_user
    path = read_only_store(folder)
    snapshot = folder / "ServiceTags_Public_20250113.json"
    snapshot.write_bytes(simple_snapshot(2, B))
    snapshot.chmod(0o644)
    before = files_in(path.parent)
    done = run_as(prefix, env, folder, "import", str(snapshot), "--db", str(path))
    assert done.returncode == 1
    assert f"aztags: Cannot write to the aztags database at {path}: permission denied" in (
        done.stderr
    )
    assert "not an aztags database" not in done.stderr and "Traceback" not in done.stderr
    assert files_in(path.parent) == before


@pytest.mark.slow
def test_other_user_without_read_permission_is_told_it_is_permission(as_other_user):
    # (the CLI's --db option refuses an unreadable file itself, exit 2: this is the library)
    prefix, env, folder = as_other_user
    path = folder / "private.db"
    write_store(path, simple_snapshot(1, A))
    path.chmod(0o600)
    code = (
        "import sys\n"
        "from cache.db import open_db\n"
        "from resolver.errors import StoreError\n"
        "try:\n"
        "    open_db(sys.argv[1], readonly=True)\n"
        "except StoreError as e:\n"
        "    print(e)\n"
    )
    done = subprocess.run(
        [*prefix, "-c", code, str(path)], cwd=folder, env=env, capture_output=True, text=True
    )
    assert done.stdout.startswith(
        f"Cannot read the aztags database at {path}: permission denied (the file is owned by "
    ), done.stderr
    assert "mode 0600" in done.stdout and "not an aztags database" not in done.stdout


def _fail_wal_index(monkeypatch) -> list[str]:
    """Make every connection that needs a WAL index fail as it does for a user who cannot create
    the -shm file (SQLITE_READONLY_DIRECTORY); returns the URIs opened."""
    opened: list[str] = []
    real = cache.db._connect

    def connect(uri: str, **kwargs):
        opened.append(uri)
        if "immutable=1" not in uri:
            error = sqlite3.OperationalError("attempt to write a readonly database")
            error.sqlite_errorname = "SQLITE_READONLY_DIRECTORY"  # type: ignore[attr-defined]
            raise error
        return real(uri, **kwargs)

    monkeypatch.setattr(cache.db, "_connect", connect)
    return opened


def test_reader_falls_back_to_immutable_when_the_wal_index_cannot_be_made(
    tmp_path, monkeypatch, caplog
):
    path = tmp_path / "aztags.db"
    write_store(path, simple_snapshot(1, A))
    opened = _fail_wal_index(monkeypatch)
    with caplog.at_level(logging.WARNING, logger="aztags"):
        conn = open_db(path, readonly=True)
    assert tags_of(conn) == {k: set(v) for k, v in A.items()}
    assert conn.immutable and conn.note is not None
    assert [r.getMessage() for r in caplog.records] == [conn.note]
    assert conn.note.startswith(f"reading {path} as an unchanging file: this user may not ")
    assert "writes made while this runs" in conn.note
    assert [u.rsplit("?", 1)[1] for u in opened] == ["mode=ro", "mode=ro&immutable=1"]


def test_a_server_can_refuse_the_immutable_fallback(tmp_path, monkeypatch):
    path = tmp_path / "aztags.db"
    write_store(path, simple_snapshot(1, A))
    _fail_wal_index(monkeypatch)
    with pytest.raises(StoreError) as error:
        open_db(path, readonly=True, allow_immutable=False)
    message = str(error.value)
    assert message.startswith(f"Cannot read the aztags database at {path} safely: permission")
    assert f"{path.name}-shm" in message
    assert "not an aztags database" not in message


def test_a_normal_reader_is_not_immutable(tmp_path):
    path = tmp_path / "aztags.db"
    write_store(path, simple_snapshot(1, A))
    conn = open_db(path, readonly=True)
    assert (conn.immutable, conn.note) == (False, None)


def test_writer_without_write_permission_gets_a_sentence(tmp_path, monkeypatch):
    path = tmp_path / "aztags.db"
    write_store(path, simple_snapshot(1, A))
    before = files_in(tmp_path)
    real = os.access
    monkeypatch.setattr(
        cache.db.os,
        "access",
        lambda p, mode, **kw: False if Path(p) == path and mode & os.W_OK else real(p, mode),
    )
    with pytest.raises(StoreError) as error:
        open_db(path)
    message = str(error.value)
    assert message.startswith(f"Cannot write to the aztags database at {path}: permission denied")
    assert "mode 0" in message and "owned by" in message
    assert "not an aztags database" not in message
    assert files_in(tmp_path) == before


def test_writer_in_a_folder_it_cannot_write_gets_a_sentence(tmp_path, monkeypatch):
    path = tmp_path / "aztags.db"
    real = os.access
    monkeypatch.setattr(
        cache.db.os,
        "access",
        lambda p, mode, **kw: False if Path(p) == tmp_path and mode & os.W_OK else real(p, mode),
    )
    with pytest.raises(StoreError) as error:
        open_db(path)
    message = str(error.value)
    assert message.startswith(f"Cannot write to the aztags database at {path}: permission denied")
    assert f"may not create files in {tmp_path}" in message
    assert list(tmp_path.iterdir()) == []


def test_a_write_refused_by_sqlite_inside_a_transaction_is_a_sentence(tmp_path):
    path = tmp_path / "aztags.db"
    write_store(path, simple_snapshot(1, A))
    conn = open_db(path)
    conn.execute("PRAGMA query_only = ON")  # every write now fails as on a read-only file
    refused = pytest.raises(StoreError, match=f"Cannot write to the aztags database at {path}")
    with refused, transaction(conn):
        conn.execute("DELETE FROM memberships")
    assert not conn.in_transaction


@pytest.mark.slow
def test_cli_reader_without_read_permission_gets_the_permission_sentence(as_other_user):
    prefix, env, folder = as_other_user
    path = folder / "private.db"
    write_store(path, simple_snapshot(1, A))
    path.chmod(0o600)
    done = subprocess.run(
        [*prefix, "-m", "cli", "tags", "--db", str(path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith(f"aztags: Cannot read the aztags database at {path}: permission")
    assert "Traceback" not in done.stderr
