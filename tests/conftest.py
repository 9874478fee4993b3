"""Fixtures shared by the test modules, and the guard that keeps the ``realdata`` mark honest.

The real-data stores are built once per test run (session scope) into pytest's temporary folder
and shared read-only: every query opens them read-only, so no test can change what the next one
sees. A test that must write to one copies it first (``shutil.copy``).

The guard: :func:`tests.helpers.require_data` (behind ``real_path``, ``raw_tags``, ``manifest``,
``load_real_tags`` ...) notes on the running test that it reads ``../shared/data``. A test that
does so, itself or through a fixture it sets up, without the ``realdata`` mark fails, whether
the files are there or not. Fixtures over a session-wide real-data store call ``require_data()``
at function scope (see ``db``) so that every test using them is seen, not only the first.
"""

from __future__ import annotations

import gc
import shutil
from pathlib import Path
from typing import NamedTuple

import pytest

from tests.helpers import (
    CHINA_DAY,
    READS_REAL_DATA,
    RUNNING,
    WEEKLY_2023,
    real_path,
    require_data,
)

pytest_plugins = ["pytester"]  # test_guard.py runs the guard on small test files


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


# -- the real-data stores, built once per run ------------------------------------------------------


class WeeklyPublic(NamedTuple):
    """A store of the 16 weekly Public files of 2023, and what importing each one reported."""

    path: Path
    results: list  # IngestResult per file, in WEEKLY_2023 order


def _import(path: Path, files: list[Path]) -> list:
    from cache.db import open_db
    from cache.store import SaveOptions
    from resolver.refresh import import_files
    from resolver.sources import HttpSettings

    conn = open_db(path)
    try:
        imported = list(import_files(conn, files, HttpSettings(), SaveOptions()))
    finally:
        conn.close()  # the only connection: SQLite checkpoints the WAL into the file
    outcomes = [(p.name, getattr(r, "outcome", r)) for p, r in imported]
    assert [o for _, o in outcomes] == ["current"] * len(files), outcomes
    return [r for _, r in imported]


@pytest.fixture(scope="session")
def weekly_public(tmp_path_factory) -> WeeklyPublic:
    """The 16 weekly Public files of 2023, imported in date order into a new store. Shared by
    test_store.py (history against the raw JSON) and, copied, by the query store below: open it
    read-only."""
    files = [real_path("Public", day) for day in WEEKLY_2023]
    path = tmp_path_factory.mktemp("weekly-public") / "aztags.db"
    return WeeklyPublic(path, _import(path, files))


@pytest.fixture(scope="session")
def weekly_db(tmp_path_factory, weekly_public: WeeklyPublic) -> Path:
    """The query store: the 16 weekly Public files of 2023 and the China file of 2024-11-18
    (a copy of weekly_public with China imported). test_query.py and test_cli_query.py open it
    read-only."""
    china = real_path("China", CHINA_DAY)
    path = tmp_path_factory.mktemp("query-weekly") / "aztags.db"
    shutil.copy(weekly_public.path, path)
    _import(path, [china])
    return path


@pytest.fixture
def db(request) -> Path:
    """The query store (weekly_db), for one test: read-only."""
    require_data()  # first: the realdata guard sees every user, files or no files
    return request.getfixturevalue("weekly_db")
