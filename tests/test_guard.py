"""The realdata guard of conftest.py: a test reading ../shared/data without the mark fails.

Each case runs a small test file in a pytest of its own (pytester) with this suite's conftest
hooks, and helpers.DATA pointed at a folder made here: no real file is read.
"""

from __future__ import annotations

import textwrap

import pytest

CONFTEST = """
    import pytest

    import tests.helpers
    from tests.conftest import pytest_runtest_makereport, pytest_runtest_protocol  # noqa: F401


    @pytest.fixture(autouse=True)
    def _data(monkeypatch):
        monkeypatch.setattr(tests.helpers, "DATA", tests.helpers.Path({data!r}))


    @pytest.fixture(scope="session")
    def shared_store():
        return tests.helpers.require_data() / "store.db"


    @pytest.fixture
    def store(request):
        tests.helpers.require_data()
        return request.getfixturevalue("shared_store")
"""

TESTS = """
    import pytest

    from tests.helpers import manifest, real_path, require_data


    @pytest.mark.realdata
    def test_marked():
        require_data()


    def test_unmarked():
        require_data()


    def test_unmarked_real_path():
        real_path("Public", "20230306")


    def test_unmarked_manifest():
        manifest()


    def test_reads_nothing():
        pass


    @pytest.mark.realdata
    def test_marked_store(store):
        pass


    def test_unmarked_store_built_before(store):
        pass
"""


# no cache folder; no hypothesis plugin (pytester drops the modules an inner run imports, so it
# would import hypothesis anew for each run)
ARGS = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest")


def setup(pytester: pytest.Pytester, data) -> None:
    pytester.makeini("[pytest]\nmarkers =\n    realdata: reads ../shared/data\n")
    pytester.makeconftest(textwrap.dedent(CONFTEST.format(data=str(data))))


def run(pytester: pytest.Pytester, data) -> dict[str, str]:
    """{test name: outcome} of TESTS, run with data as the folder of real files."""
    setup(pytester, data)
    pytester.makepyfile(test_cases=textwrap.dedent(TESTS))
    result = pytester.runpytest_inprocess(*ARGS, "--strict-markers")
    outcomes: dict[str, str] = {}
    for report in result.reprec.getreports("pytest_runtest_logreport"):
        name = report.nodeid.split("::")[-1]
        if report.when == "call" or report.outcome != "passed":  # a failed or skipped setup
            outcomes.setdefault(name, report.outcome)
    return outcomes


@pytest.mark.slow
def test_unmarked_readers_fail_when_the_files_are_there(pytester, tmp_path):
    (tmp_path / "MANIFEST.tsv").write_text("cloud\tdate\n")
    (tmp_path / "Public").mkdir()
    (tmp_path / "Public" / "ServiceTags_Public_20230306.json.gz").write_bytes(b"")
    assert run(pytester, tmp_path) == {
        "test_marked": "passed",
        "test_unmarked": "failed",
        "test_unmarked_real_path": "failed",
        "test_unmarked_manifest": "failed",
        "test_reads_nothing": "passed",
        "test_marked_store": "passed",
        # the session fixture was built for the test before; its function-scoped wrapper still
        # tells the guard
        "test_unmarked_store_built_before": "failed",
    }


@pytest.mark.slow
def test_unmarked_readers_fail_rather_than_skip_when_the_files_are_absent(pytester, tmp_path):
    assert run(pytester, tmp_path / "absent") == {
        "test_marked": "skipped",
        "test_unmarked": "failed",
        "test_unmarked_real_path": "failed",
        "test_unmarked_manifest": "failed",
        "test_reads_nothing": "passed",
        "test_marked_store": "skipped",
        "test_unmarked_store_built_before": "failed",
    }


@pytest.mark.slow
def test_the_failure_says_what_to_do(pytester, tmp_path):
    setup(pytester, tmp_path)
    pytester.makepyfile(
        test_one="from tests.helpers import require_data\n\n\ndef test_x():\n    require_data()\n"
    )
    result = pytester.runpytest_inprocess(*ARGS)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*test_x reads the real files*not marked realdata*"])
