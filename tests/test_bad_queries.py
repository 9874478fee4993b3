"""Hostile and mistaken queries: every one ends with a sentence and an exit code, never a traceback.

The corpus grows: add a case when a new bad input is found. Each case runs the command through
CliRunner (exceptions not caught by the runner, so a traceback would fail the test) against a
small synthetic store of two Public snapshots, and is checked for: a non-zero exit code of the
expected family (2 usage, 3 nothing found, 1 error), one ``aztags:`` sentence on stderr (click's
own usage errors print click's ``Error:`` line instead), and never the last-resort sentence.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

from cache.db import open_db
from cache.store import SaveOptions
from cli import main
from resolver.ingest import RawFile
from resolver.refresh import store_file
from tests.helpers import snapshot_bytes, tag_json

LAST_RESORT = "this is a bug, please report it"
HUGE = "9" * 5000


def _tags(cn: int, westus: list[str]) -> list[dict]:
    return [
        tag_json("AzureCloud", ["10.0.0.0/8", "2001:db8::/32"], change_number=cn),
        tag_json("Storage", ["10.1.0.0/16"], service="AzureStorage", change_number=cn),
        tag_json(
            "Storage.WestUS",
            westus,
            region="westus",
            region_id=1,
            service="AzureStorage",
            change_number=cn,
        ),
        tag_json("Sql", ["10.2.0.0/16"], features=None, change_number=cn),
    ]


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    """cn 1 (2025-01-06) and cn 2 (2025-01-13) of a four-tag Public cloud; nothing else."""
    path = tmp_path_factory.mktemp("bad-queries") / "aztags.db"
    conn = open_db(path)
    for cn, day, westus in ((1, "2025-01-06", ["10.1.0.0/24"]), (2, "2025-01-13", ["10.1.1.0/24"])):
        data = snapshot_bytes(cn, _tags(cn, westus))
        store_file(conn, RawFile(data, f"test-{day}", date.fromisoformat(day)), SaveOptions())
    conn.close()
    return path


@pytest.fixture
def run(store, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no ./aztags.toml
    env = {
        "AZTAGS_DB": str(store),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "AZTAGS_CONFIG": None,
        "AZTAGS_CLOUD": None,
        "AZTAGS_PROFILES_DIR": None,
        "AZTAGS_MAX_AGE_DAYS": "36500",  # its files are from 2025: no stale-data warning here
    }

    def invoke(*args: str, input: str | bytes | None = None):
        return CliRunner().invoke(main, list(args), input=input, env=env, catch_exceptions=False)

    return invoke


@dataclass(frozen=True)
class Case:
    args: tuple[str, ...]
    code: int  # 2 usage, 3 nothing found, 1 error
    says: str = ""  # a phrase of the sentence on stderr
    input: str | bytes | None = None
    click: bool = False  # a usage error found by click's own parser: its "Error:" line

    @property
    def id(self) -> str:
        text = " ".join(self.args)
        text = text if len(text) < 60 else text[:57] + "..."
        return text.encode("ascii", "backslashreplace").decode().replace("\x00", "\\x00")


def at(cmd: tuple[str, ...], ref: str, says: str, code: int = 2) -> Case:
    return Case((*cmd, "--at", ref), code, says)


NOT_A_REF = "neither a date (YYYY-MM-DD) nor a changeNumber (cn:N)"
FORMS = "give a date YYYY-MM-DD"
TAGS = ("tags",)
CIDRS = ("cidrs", "Storage")
LOOKUP = ("lookup", "10.0.0.1")

CASES = [
    # --at: wrong forms are usage errors that show the accepted forms
    at(TAGS, "yesterday", NOT_A_REF),
    at(TAGS, "cn:" + HUGE, "larger than any file can have"),
    at(TAGS, "cn:99999999999999999999", "larger than any file can have"),
    at(TAGS, "2025-02-30", "is not a real date"),
    at(TAGS, "2025-13-01", "is not a real date"),
    at(TAGS, "0000-01-01", "is not a real date"),
    at(TAGS, "cn:", NOT_A_REF),
    at(TAGS, "cn:-1", NOT_A_REF),
    at(TAGS, "cn:1.5", NOT_A_REF),
    at(TAGS, "CN 1", NOT_A_REF),
    at(TAGS, "", NOT_A_REF),
    at(TAGS, "2025-1-6", NOT_A_REF),
    at(TAGS, "20250106", NOT_A_REF),
    at(TAGS, "cn:\uff11\uff12", NOT_A_REF),  # full-width digits
    at(TAGS, "\u0662\u0660\u0662\u0665-\u0660\u0661-\u0660\u0666", NOT_A_REF),  # Arabic-Indic
    at(TAGS, "2025-01-06\x00", NOT_A_REF),
    at(TAGS, "\udcff", NOT_A_REF),
    at(TAGS, "\ud800", NOT_A_REF),
    at(CIDRS, "x" * 100_000, NOT_A_REF),
    at(LOOKUP, "tomorrow", NOT_A_REF),
    at(("profile", "show", "azureml", "--region", "westus"), "soon", NOT_A_REF),
    Case(("diff", "--from", "yesterday"), 2, NOT_A_REF),
    Case(("diff", "--to", "2025-02-29"), 2, "is not a real date"),
    Case(("diff", "--from", "cn:2", "--to", "cn:1"), 2, "swap them"),
    Case(("diff", "--from", "2025-01-13", "--to", "2025-01-06"), 2, "swap them"),
    # --at: right forms naming nothing stored
    at(TAGS, "cn:999", "No Public snapshot with changeNumber 999", 3),
    at(TAGS, "cn:9223372036854775807", "No Public snapshot with changeNumber", 3),
    at(TAGS, "cn:9223372036854775808", "larger than any file can have"),
    at(TAGS, "1999-01-01", "before the first stored Public snapshot", 3),
    at(LOOKUP, "cn:0", "No Public snapshot with changeNumber 0", 3),
    Case(("diff", "--from", "cn:7"), 3, "No Public snapshot with changeNumber 7"),
    # unknown names, regions, services, profiles; empty, NUL, surrogates, very long
    Case(("cidrs", "NoSuchTag"), 3, "Unknown service tag 'NoSuchTag'"),
    Case(("cidrs", ""), 3, "Unknown service tag ''"),
    Case(("cidrs", "\x00"), 3, "Unknown service tag"),
    Case(("cidrs", "Storage\x00"), 3, "Unknown service tag"),
    Case(("cidrs", "\udcff"), 3, "Unknown service tag"),
    Case(("cidrs", "Stor\ud800age"), 3, "Unknown service tag"),
    Case(("cidrs", "A" * 100_000), 3, "Unknown service tag"),
    Case(("cidrs", "Storage", "--region", "Atlantis"), 3, "Atlantis"),
    Case(("cidrs", "Storage", "--region", "\x00"), 3, ""),
    Case(("cidrs", "Storage", "--region", "\udcff"), 3, ""),
    Case(("cidrs", "Storage.WestUS", "--region", "eastus"), 3, ""),
    Case(("cidrs", "--profile", "nosuch"), 3, "nosuch"),
    Case(("cidrs", "--profile", "\udcff"), 3, ""),
    Case(("cidrs", "Storage", "--cloud", "china"), 3, "No China snapshot is stored yet"),
    Case(("tags", "--region", "Atlantis"), 3, "Atlantis"),
    Case(("tags", "--service", "Nope"), 3, "No tag of service 'Nope'"),
    Case(("tags", "--service", "\x00" * 10), 3, "No tag of service"),
    Case(("tags", "--service", "Storage", "--region", "eastus"), 3, ""),
    Case(("tags", "--cloud", "usgov"), 3, "No AzureGovernment snapshot"),
    Case(("history", "NoSuchTag"), 3, "Unknown service tag"),
    Case(("history", ""), 3, "Unknown service tag"),
    Case(("history", "\udcff" * 3), 3, "Unknown service tag"),
    Case(("diff", "NoSuchTag"), 3, "Unknown service tag"),
    Case(("profile", "show", "nosuch"), 3, "nosuch"),
    Case(("profile", "show", "azureml", "--region", "Atlantis"), 3, "Atlantis"),
    # lookups that match nothing
    Case(("lookup", "99.99.99.99"), 3, "is in no Public service tag"),
    Case(("lookup", "2a01::1"), 3, "is in no Public service tag"),
    Case(("lookup", "0.0.0.0/32"), 3, "is in no Public service tag"),
    # addresses that do not parse: an error (1), each named in the output
    Case(("lookup", "999.1.1.1"), 1, "not an address or CIDR"),
    Case(("lookup", ""), 1, "not an address or CIDR"),
    Case(("lookup", " "), 1, "not an address or CIDR"),
    Case(("lookup", "10.0.0.0/" + HUGE), 1, "not an address or CIDR"),
    Case(("lookup", "10.0.0.0/99999999999999999999"), 1, "not an address or CIDR"),
    Case(("lookup", "10.0.0.0/33"), 1, "not an address or CIDR"),
    Case(("lookup", "10.0.0.0/-1"), 1, "not an address or CIDR"),
    Case(("lookup", "10.0.0.0/\uff13\uff12"), 1, "not an address or CIDR"),
    Case(("lookup", "2001:db8::/129"), 1, "not an address or CIDR"),
    Case(("lookup", "::ffff:1.2.3.4/200"), 1, "not an address or CIDR"),
    Case(("lookup", "10.0.0.1/8"), 1, "not an address or CIDR"),
    Case(("lookup", "\x00"), 1, "not an address or CIDR"),
    Case(("lookup", "10.0.0.1\x00"), 1, "not an address or CIDR"),
    Case(("lookup", "\udcff"), 1, "not an address or CIDR"),
    Case(("lookup", "10.0.0.\ud800"), 1, "not an address or CIDR"),
    Case(("lookup", "1.2.3.\u0664"), 1, "not an address or CIDR"),
    Case(("lookup", "fe80::1%eth0"), 1, "not an address or CIDR"),
    Case(("lookup", "1.2.3.4:80"), 1, "not an address or CIDR"),
    Case(("lookup", "[::1]:443"), 1, "not an address or CIDR"),
    Case(("lookup", "a" * 100_000), 1, "not an address or CIDR"),
    Case(("lookup", "10.0.0.1", "garbage"), 1, "not an address or CIDR: garbage"),
    Case(("lookup", "--file", "-"), 1, "1 line(s) were not addresses", "10.0.0.1\nnope\n"),
    Case(("lookup", "--file", "-"), 1, "1 line(s) were not addresses", b"10.0.0.1\n\xff\xfe\n"),
    Case(("lookup", "--file", "-"), 1, "2 line(s)", b"\x00\n10.0.0.0/" + HUGE.encode() + b"\n"),
    Case(("lookup", "--file", "-", "--json"), 1, "1 line(s)", b"1.2.3.4\n\xc3\x28\n"),
    Case(("lookup", "--file", "-", "--at", "cn:1"), 1, "1 line(s)", "10.0.0.1/8\n"),
    # the database is missing or not a database
    Case(("tags", "--db", "missing.db"), 3, "No aztags database at missing.db"),
    Case(("lookup", "10.0.0.1", "--db", "garbage.db"), 1, "is not an aztags database"),
    # usage errors click finds itself
    Case(("cidrs",), 2, "Name at least one tag", click=True),
    Case(("cidrs", "--profile", ""), 2, "Name at least one tag", click=True),
    Case(("cidrs", "Storage", "--json", "--csv"), 2, "exclude each other", click=True),
    Case(("lookup",), 2, "Give addresses", click=True),
    Case(("lookup", "10.0.0.1", "--file", "-"), 2, "not both", click=True),
    Case(("lookup", "--file", "no-such-file.txt"), 2, "no-such-file.txt", click=True),
    Case(("tags", "--feature", "XYZ"), 2, "XYZ", click=True),
    Case(("tags", "--cloud", "mars"), 2, "mars", click=True),
    Case(("tags", "--at"), 2, "requires an argument", click=True),
    Case(("status", "--max-age-days", "-1"), 2, "-1", click=True),
    Case(("status", "--max-age-days", HUGE), 2, "", click=True),
    Case(("history",), 2, "Missing argument", click=True),
]


def test_the_corpus_is_large_and_has_every_family():
    assert len(CASES) >= 60
    assert {c.code for c in CASES} == {1, 2, 3}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_query_ends_with_a_sentence_and_an_exit_code(run, tmp_path, case: Case):
    (tmp_path / "garbage.db").write_bytes(b"this is not a database" * 100)
    result = run(*case.args, input=case.input)
    assert result.exit_code == case.code, (result.exit_code, result.stdout, result.stderr)
    stderr = result.stderr
    assert "Traceback" not in stderr and LAST_RESORT not in stderr, stderr
    if case.click:
        assert "Error: " in stderr
    else:
        sentences = [
            line
            for line in stderr.splitlines()
            if line.startswith("aztags: ") and not line.startswith("aztags: warning: ")
        ]
        assert len(sentences) == 1, stderr
        assert len(sentences[0]) < 2000, "the sentence shows long input cut short"
    assert case.says in stderr, stderr
    assert not (tmp_path / "missing.db").exists()  # a reader never creates a database


def test_a_malformed_at_shows_the_accepted_forms(run):
    result = run("tags", "--at", "yesterday")
    assert result.exit_code == 2
    assert result.stderr == (
        "aztags: --at 'yesterday' is neither a date (YYYY-MM-DD) nor a changeNumber (cn:N); give "
        "a date YYYY-MM-DD (the snapshot in force that day) or a changeNumber cn:N (for example "
        "--at 2025-01-13 or --at cn:341).\n"
    )
    assert result.stdout == ""


def test_a_malformed_at_is_reported_before_the_database_is_opened(run, tmp_path):
    result = run("tags", "--at", "yesterday", "--db", str(tmp_path / "none.db"))
    assert result.exit_code == 2 and "neither a date" in result.stderr
    assert not (tmp_path / "none.db").exists()


def test_non_utf8_lines_are_reported_and_the_others_answered(run):
    data = b"10.1.1.7\n\xff\xfe10.0.0.1\n\n10.0.0.0/8\nbad\x00line\n2001:db8::1\n"
    result = run("lookup", "--file", "-", input=data)
    assert result.exit_code == 1
    lines = result.stdout.split("\n")
    assert lines[0].startswith("10.1.1.7\tStorage.WestUS,10.1.1.0/24,westus,AzureStorage\t")
    assert lines[1] == (
        "\\xff\\xfe10.0.0.1\terror: '\\xff\\xfe10.0.0.1' is not an IPv4 or IPv6 address or CIDR"
    )
    assert lines[2] == ""
    assert lines[3].startswith("10.0.0.0/8\tAzureCloud,10.0.0.0/8,,AzureCloud\tinside:")
    assert lines[4] == "bad\\x00line\terror: 'bad\\x00line' is not an IPv4 or IPv6 address or CIDR"
    assert lines[5].startswith("2001:db8::1\tAzureCloud,2001:db8::/32")
    assert lines[6:] == [""]
    assert result.stderr == "aztags: 2 line(s) were not addresses; see 'error:' in the output.\n"


def test_non_utf8_lines_in_json_lines_are_readable_json(run):
    import json

    result = run("lookup", "--file", "-", "--json", input=b"\xe9t\xe9\n10.0.0.1\n")
    assert result.exit_code == 1
    header, first, second = (json.loads(line) for line in result.stdout.splitlines())
    assert "snapshot" in header  # the first line names the snapshot (issue 8)
    assert first == {
        "query": "\\xe9t\\xe9",
        "error": "'\\xe9t\\xe9' is not an IPv4 or IPv6 address or CIDR",
    }
    assert second["tags"][0]["tag"] == "AzureCloud"


def test_an_unexpected_exception_is_one_sentence_and_exit_1(run, monkeypatch):
    from resolver.query import TagStore

    def broken(*args, **kwargs):
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(TagStore, "tags", broken)
    result = run("tags")
    assert result.exit_code == 1
    assert result.stderr == (
        "aztags: unexpected error: OperationalError: disk I/O error; this is a bug, please "
        "report it with -v output\n"
    )
    assert result.stdout == ""


def test_an_unexpected_exception_with_v_shows_the_traceback_too(run, monkeypatch):
    from resolver.query import TagStore

    def broken(*args, **kwargs):
        raise RecursionError("maximum recursion depth exceeded \udcff")

    monkeypatch.setattr(TagStore, "cidrs", broken)
    result = run("-v", "cidrs", "Storage")
    assert result.exit_code == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert 'in broken\n    raise RecursionError("maximum' in result.stderr
    assert result.stderr.endswith(
        "aztags: unexpected error: RecursionError: maximum recursion depth exceeded \\xff; "
        "this is a bug, please report it with -v output\n"
    )
