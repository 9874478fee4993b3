"""Fixtures shared by the test modules, and the guard that keeps the ``realdata`` mark honest.

The real-data stores are built once per test run (session scope) into pytest's temporary folder
and shared read-only: every query opens them read-only, so no test can change what the next one
sees. A test that must write to one copies it first (``shutil.copy``). The slowest work from the
real files (the weekly store, ``aztags import`` of every file) starts when the session starts, in
processes of its own, so that a second core does it while the first runs the tests
(``Background``).

The guard: :func:`tests.helpers.require_data` (behind ``real_path``, ``raw_tags``, ``manifest``,
``load_real_tags`` ...) notes on the running test that it reads ``../shared/data``. A test that
does so, itself or through a fixture it sets up, without the ``realdata`` mark fails, whether
the files are there or not. Fixtures over a session-wide real-data store call ``require_data()``
at function scope (see ``db``) so that every test using them is seen, not only the first.
"""

from __future__ import annotations

import gc
import os
import pickle
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from subprocess import PIPE
from typing import NamedTuple

import pytest
from hypothesis import settings as hypothesis_settings

from tests.build_store import import_into
from tests.helpers import (
    CHINA_DAY,
    DATA,
    READS_REAL_DATA,
    ROOT,
    RUNNING,
    WEEKLY_2023,
    cli_env,
    cli_invoker,
    real_path,
    require_data,
)

pytest_plugins = ["pytester"]  # test_guard.py runs the guard on small test files

# Property-based tests draw the same examples on every run, so that CI is never red by chance
# (a CI run once failed on an example drawn at random). To explore new examples locally:
# pytest --hypothesis-profile=explore
hypothesis_settings.register_profile("repeatable", derandomize=True, database=None)
hypothesis_settings.register_profile("explore")
hypothesis_settings.load_profile("repeatable")


def pytest_configure(config: pytest.Config) -> None:
    # The run keeps millions of small objects alive (the parsed real files and the brute-force
    # caches of tests/helpers.py), and CPython's default thresholds (700, 10, 10) had its cyclic
    # garbage collector walk them over and over: 5-6 s of a run. Collect less often; garbage
    # without cycles is freed at once as ever, and this changes nothing a test checks.
    gc.set_threshold(50_000, 20, 20)


# -- the realdata guard ----------------------------------------------------------------------------


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):
    RUNNING.append(item)
    try:
        return (yield)
    finally:
        RUNNING.remove(item)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    if (
        call.when in ("setup", "call")
        and item.stash.get(READS_REAL_DATA, False)
        and item.get_closest_marker("realdata") is None
        and not report.failed
    ):
        report.outcome = "failed"
        report.longrepr = (
            f"{item.nodeid} reads the real files in ../shared/data (require_data) but is not "
            "marked realdata: add @pytest.mark.realdata (or a module pytestmark), and "
            "@pytest.mark.slow too if it takes more than a few seconds."
        )
    return report


# -- work started when the session starts ----------------------------------------------------------


class Background:
    """Commands run one after another in a thread of the test process, each in a process of its
    own, while the tests run: on a machine with two cores or more they cost no wall time.

    Started by the autouse session fixture ``_background`` for what the selected tests need (it
    reads no file itself, so the realdata guard does not count it against the first test); a
    fixture that needs a command's outcome waits for it with :meth:`result`, and does the work
    itself when the command was not started. Whatever is still running when the session ends is
    killed."""

    def __init__(self) -> None:
        self._queue: list[tuple[str, list[str], dict[str, str]]] = []
        self.outputs: dict[str, tuple[Path, ...]] = {}  # the files each command writes
        self._done: dict[str, threading.Event] = {}
        self._results: dict[str, subprocess.CompletedProcess] = {}
        self._process: subprocess.Popen | None = None
        self._stopping = False
        self._lock = threading.Lock()  # between starting a process and stop()
        self._thread = threading.Thread(target=self._run, name="background", daemon=True)

    def add(
        self, name: str, argv: list[str], env: dict[str, str] | None = None, outputs=()
    ) -> None:
        self._queue.append((name, argv, {**os.environ, **(env or {})}))
        self.outputs[name] = tuple(outputs)
        self._done[name] = threading.Event()

    def start(self) -> None:
        if self._queue:
            self._thread.start()

    def _run(self) -> None:
        for name, argv, env in self._queue:
            try:
                with self._lock:
                    if self._stopping:
                        raise RuntimeError("the session ended first")
                    self._process = subprocess.Popen(
                        argv, cwd=ROOT, env=env, stdout=PIPE, stderr=PIPE, text=True
                    )
                out, err = self._process.communicate()
                self._results[name] = subprocess.CompletedProcess(
                    argv, self._process.returncode, out, err
                )
            except Exception as e:  # reported to the fixture that waits for it
                self._results[name] = subprocess.CompletedProcess(argv, -1, "", repr(e))
            finally:
                self._done[name].set()

    def result(self, name: str) -> subprocess.CompletedProcess | None:
        """The outcome of the command (waiting for it), or None when it was not started."""
        if name not in self._done:
            return None
        self._done[name].wait()
        return self._results[name]

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
            if self._process is not None and self._process.poll() is None:
                self._process.kill()
        if self._thread.is_alive():
            self._thread.join(timeout=30)


def every_file_import_argv(data: Path) -> list[str]:
    """``aztags import --json`` of every file in the shared folder (test_cli_ingest.py)."""
    clouds = ("Public", "AzureGovernment", "China", "AzureGermany")
    return [
        sys.executable,
        str(ROOT / "cli.py"),
        "import",
        "--json",
        *(str(data / c) for c in clouds),
    ]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # A test waiting for a command of Background runs last, when the command is done.
    waiting = [item for item in items if "every_file_import" in getattr(item, "fixturenames", ())]
    items[:] = [item for item in items if item not in waiting] + waiting


# The fixtures through which tests reach the weekly store. They request it lazily, so pytest's
# fixture closure does not show it; a test reaching it some other way still gets it, built in the
# test process when first needed.
WEEKLY_STORE_FIXTURES = {
    "weekly_public",
    "weekly_db",
    "db",
    "store",
    "china",
    "weekly",
    "run",
    "aztags",
}


def _cores() -> int:
    """The cores this process may use for Background: those it may run on (taskset and container
    limits included), and none under pytest-xdist, whose workers use them already."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return 1
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _uses_weekly_store(item: pytest.Item) -> bool:
    names = set(getattr(item, "fixturenames", ()))
    return bool(item.get_closest_marker("realdata")) and bool(names & WEEKLY_STORE_FIXTURES)


@pytest.fixture(scope="session", autouse=True)
def _background(request: pytest.FixtureRequest, tmp_path_factory) -> Iterator[Background]:
    """Start, on another core, the slow work from the real files that the selected tests need:
    the weekly store, then the import of every file. (Nothing on a one-core machine, or without
    the files: the fixtures then do the work themselves, or skip.)"""
    background = Background()
    items = request.session.items
    if (DATA / "MANIFEST.tsv").is_file() and _cores() > 1:
        if any(_uses_weekly_store(item) for item in items):
            folder = tmp_path_factory.mktemp("weekly-public")
            db, results = folder / "aztags.db", folder / "results.pickle"
            files = [DATA / "Public" / f"ServiceTags_Public_{day}.json.gz" for day in WEEKLY_2023]
            background.add(
                "weekly-public",
                [
                    sys.executable,
                    "-m",
                    "tests.build_store",
                    str(db),
                    str(results),
                    *map(str, files),
                ],
                outputs=(db, results),
            )
        if any("every_file_import" in getattr(item, "fixturenames", ()) for item in items):
            db = tmp_path_factory.mktemp("every-file") / "every.db"
            background.add("every-file", every_file_import_argv(DATA), {"AZTAGS_DB": str(db)})
    background.start()
    yield background
    background.stop()


# -- the real-data stores, built once per run ------------------------------------------------------


class WeeklyPublic(NamedTuple):
    """A store of the 16 weekly Public files of 2023, and what importing each one reported."""

    path: Path
    results: list  # IngestResult per file, in WEEKLY_2023 order


@pytest.fixture(scope="session")
def weekly_public(tmp_path_factory, _background: Background) -> WeeklyPublic:
    """The 16 weekly Public files of 2023, imported in date order into a new store (by
    tests/build_store.py, in the background when the session started). Shared by test_store.py
    (history against the raw JSON) and, copied, by the query store below: open it read-only."""
    files = [real_path("Public", day) for day in WEEKLY_2023]
    built = _background.result("weekly-public")
    if built is None:
        path = tmp_path_factory.mktemp("weekly-public") / "aztags.db"
        return WeeklyPublic(path, import_into(path, files))
    assert built.returncode == 0, f"building the weekly store failed:\n{built.stderr}"
    path, results = _background.outputs["weekly-public"]
    return WeeklyPublic(path, pickle.loads(results.read_bytes()))


@pytest.fixture(scope="session")
def weekly_db(tmp_path_factory, weekly_public: WeeklyPublic) -> Path:
    """The query store: the 16 weekly Public files of 2023 and the China file of 2024-11-18
    (a copy of weekly_public with China imported). test_query.py and test_cli_query.py open it
    read-only."""
    china = real_path("China", CHINA_DAY)
    path = tmp_path_factory.mktemp("query-weekly") / "aztags.db"
    shutil.copy(weekly_public.path, path)
    import_into(path, [china])
    return path


@pytest.fixture
def db(request) -> Path:
    """The query store (weekly_db), for one test: read-only."""
    require_data()  # first: the realdata guard sees every user, files or no files
    return request.getfixturevalue("weekly_db")


@pytest.fixture
def aztags(request, db, tmp_path):
    """``aztags(*args)``: the command line in-process (tests.helpers.cli_invoker) against the
    query store, without user config. A module that sets ``CLI_PROFILES`` (a folder, such as
    tests.helpers.FROZEN_PROFILES) reads its profiles from there instead of the built-in ones."""
    profiles = getattr(request.module, "CLI_PROFILES", None)
    return cli_invoker(cli_env(db, tmp_path, profiles=profiles))


@pytest.fixture
def every_file_import(tmp_path, _background: Background) -> subprocess.CompletedProcess:
    """``aztags import --json`` of every shared file into a new store, as a process: started in
    the background when the session started (the test using it runs last), or run here."""
    data = require_data()  # first: the realdata guard sees the test, files or no files
    done = _background.result("every-file")
    if done is None:
        done = subprocess.run(
            every_file_import_argv(data),
            env={**os.environ, "AZTAGS_DB": str(tmp_path / "every.db")},
            capture_output=True,
            text=True,
        )
    return done
