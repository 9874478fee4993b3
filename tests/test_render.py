"""What the commands print, byte for byte, against golden files (tests/golden/).

The golden files were written by the cli.py that built its documents and tables itself, before
rendering moved to resolver/render.py; they pin the output so that moving code does not change
it. The store is a small synthetic one with fixed fetch times, so every byte is stable. To
change an output on purpose, change the golden file in the same commit and say why.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from cache.db import open_db
from cache.store import SaveOptions
from cli import main
from resolver.ingest import RawFile
from resolver.refresh import store_file
from resolver.render import readable, render_table
from tests.helpers import snapshot_bytes, tag_json

GOLDEN = Path(__file__).parent / "golden"

# A re-cut (Storage), a tag that disappears (Gone) and one that appears (New, networkFeatures
# []), a networkFeatures change (Sql: null -> API,NSG), a regional tag that grows.
FIRST = [
    tag_json("AzureCloud", ["10.0.0.0/8", "2001:db8::/32"]),
    tag_json("Storage", ["10.0.0.0/16", "10.1.0.0/16"], service="AzureStorage"),
    tag_json(
        "Storage.WestUS", ["10.0.0.0/24"], region="westus", region_id=1, service="AzureStorage"
    ),
    tag_json("Gone", ["30.0.0.0/24", "2001:db8:1::/48"]),
    tag_json("Sql", ["10.2.0.0/16"], features=None),
]
SECOND = [
    tag_json("AzureCloud", ["10.0.0.0/8", "2001:db8::/32"], change_number=2),
    tag_json(
        "Storage",
        ["10.0.0.0/17", "10.0.128.0/17", "10.1.0.0/16"],
        service="AzureStorage",
        change_number=2,
    ),
    tag_json(
        "Storage.WestUS",
        ["10.0.0.0/24", "10.0.1.0/24"],
        region="westus",
        region_id=1,
        service="AzureStorage",
        change_number=2,
    ),
    tag_json("Sql", ["10.2.0.0/16"], features=["API", "NSG"]),
    tag_json("New", ["10.3.0.0/24"], features=[]),
]
LINES = "10.0.0.1\n\n10.0.0.0/16\n2001:db8:1::5\nnope\n10.9.9.9\n"
COMMANDS = [
    ("snapshots.txt", ["snapshots"], None),
    ("snapshots.json.txt", ["snapshots", "--json"], None),
    ("tags.txt", ["tags"], None),
    ("tags.json.txt", ["tags", "--json", "--at", "cn:1"], None),
    ("cidrs.csv.txt", ["cidrs", "Storage.WestUS", "Storage", "Sql", "--csv"], None),
    ("cidrs.json.txt", ["cidrs", "Storage", "--aggregate", "--json"], None),
    ("history.txt", ["history", "Gone"], None),
    ("history.json.txt", ["history", "storage", "--json"], None),
    ("diff.txt", ["diff"], None),
    ("diff.json.txt", ["diff", "--json"], None),
    ("lookup.txt", ["lookup", "10.0.0.0/16", "nope", "2001:db8::1"], None),
    ("lookup.json.txt", ["lookup", "10.0.0.0/16", "nope", "--json"], None),
    ("lookup-file.txt", ["lookup", "--file", "-"], LINES),
    ("lookup-file.json.txt", ["lookup", "--file", "-", "--json"], LINES),
]


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> Path:
    """The newer file first, then the older one (a backfill), at fixed fetch times."""
    path = tmp_path_factory.mktemp("golden") / "aztags.db"
    conn = open_db(path)
    for cn, tags, day, hour in (
        (2, SECOND, date(2025, 1, 13), 9),
        (1, FIRST, date(2025, 1, 6), 10),
    ):
        name = f"ServiceTags_Public_{day:%Y%m%d}.json"
        store_file(
            conn,
            RawFile(snapshot_bytes(cn, tags), name, day),
            SaveOptions(),
            now=datetime(2025, 1, 14, hour, 30, tzinfo=UTC),
        )
    conn.close()
    return path


@pytest.mark.parametrize(("golden", "args", "input"), COMMANDS, ids=[c[0] for c in COMMANDS])
def test_output_is_the_golden_file(db, tmp_path, monkeypatch, golden, args, input):
    monkeypatch.chdir(tmp_path)
    env = {
        "AZTAGS_DB": str(db),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "AZTAGS_CONFIG": None,
        "AZTAGS_CLOUD": None,
        "AZTAGS_PROFILES_DIR": None,
        "AZTAGS_MAX_AGE_DAYS": "36500",  # the files are from 2025: no warning whose age changes
    }
    result = CliRunner().invoke(main, args, input=input, env=env, catch_exceptions=False)
    got = f"exit {result.exit_code}\n--- stdout\n{result.stdout}--- stderr\n{result.stderr}"
    assert got == (GOLDEN / golden).read_text()


def test_render_table_pads_columns_and_trims_line_ends():
    assert render_table(["a", "long header", "c"], [[1, None, "x"], ["wide cell", 22, ""]]) == (
        "a          long header  c\n1                       x\nwide cell  22"
    )


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("10.0.0.1", "10.0.0.1"),
        ("\udcff\udcfe1.2.3.4", "\\xff\\xfe1.2.3.4"),  # bytes read with surrogateescape
        ("a\ud800b", "a\\ud800b"),  # a lone surrogate from elsewhere
        ("a\x00b\tc\x7f", "a\\x00b\\tc\\x7f"),
        ("é ü", "é ü"),
    ],
)
def test_readable_shows_what_cannot_be_printed(text, shown):
    assert readable(text) == shown
    assert readable(text).encode("utf-8")  # always printable as UTF-8
