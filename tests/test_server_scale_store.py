"""The server's store (resolver/server/database.py): what it keeps between requests never
changes an answer. ServedStore against TagStore on the real weekly store; a kept answer about a
profile is dropped when the profile file changes; a replaced database file starts afresh."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from resolver.query import TagStore
from resolver.server.database import WHOLE_INDEX_FROM, Database, ServedStore
from tests.helpers import ROOT, simple_snapshot


def _import(db: Path, *files: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AZTAGS_")}
    done = subprocess.run(
        [sys.executable, str(ROOT / "cli.py"), "import", "--db", str(db), *map(str, files)],
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.realdata
def test_served_store_answers_as_tag_store_on_the_real_store(db, tmp_path):
    copy = tmp_path / "aztags.db"
    shutil.copy(db, copy)
    database = Database(copy, max_age_days=100000)
    questions = [
        {"profile": "azureml", "region": "westus"},
        {"profile": "azureml", "region": "westus", "direction": "outbound", "aggregate": True},
        {"names": ["Storage"], "region": "West Europe"},
        {"names": ["AzureCloud"], "family": 4, "aggregate": True, "at": "cn:250"},
        {"names": ["AzureFrontDoor.Frontend"], "at": "2023-04-01"},
    ]
    addresses = [f"20.{a}.{b}.1" for a in range(30, 60) for b in (0, 96, 200)]
    addresses += ["not-an-address", "2603:1000::1", "13.64.0.0/16"]
    assert len(addresses) > WHOLE_INDEX_FROM
    for _ in range(2):  # the second time from what was kept
        with database.view() as conn:
            served = database.store(conn)
            assert isinstance(served, ServedStore)
            plain = TagStore(conn, served.cloud, max_age_days=100000)
            for question in questions:
                kw = dict(question)
                names = kw.pop("names", ())
                assert served.cidrs(names, **kw) == plain.cidrs(names, **kw), question
            assert served.lookup(addresses) == plain.lookup(addresses)
            assert served.lookup(addresses, at="cn:246") == plain.lookup(addresses, at="cn:246")
            assert served.lookup_report(addresses[:5]) == plain.lookup_report(addresses[:5])


@pytest.mark.slow
def test_a_kept_profile_answer_is_dropped_when_the_profile_file_changes(tmp_path):
    snapshot = tmp_path / "ServiceTags_Public_20250106.json"
    snapshot.write_bytes(simple_snapshot(1, {"Storage": ["10.0.0.0/16"], "Sql": ["20.0.0.0/16"]}))
    db = tmp_path / "aztags.db"
    _import(db, snapshot)
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    rule = '[[rule]]\ndirection = "outbound"\nports = "443"\ntag = "{}"\n'
    (profiles / "mine.toml").write_text('description = "x"\n' + rule.format("Storage"))
    database = Database(db)
    with database.view() as conn:
        store = database.store(conn)
        assert store.cidrs(profile="mine", profile_dirs=[profiles]).prefixes == ("10.0.0.0/16",)
    (profiles / "mine.toml").write_text('description = "x"\n' + rule.format("Sql"))
    later = (profiles / "mine.toml").stat().st_mtime + 5
    os.utime(profiles / "mine.toml", (later, later))
    with database.view() as conn:
        store = database.store(conn)
        assert store.cidrs(profile="mine", profile_dirs=[profiles]).prefixes == ("20.0.0.0/16",)


@pytest.mark.slow
def test_a_replaced_file_is_read_afresh_though_its_snapshot_ids_are_the_same(tmp_path):
    """Both files hold snapshot id 1, with other content: nothing kept for the first is used."""
    first = tmp_path / "a" / "ServiceTags_Public_20250106.json"
    first.parent.mkdir()
    first.write_bytes(simple_snapshot(1, {"Storage": ["10.0.0.0/16"]}))
    second = tmp_path / "b" / "ServiceTags_Public_20250106.json"
    second.parent.mkdir()
    second.write_bytes(simple_snapshot(1, {"Storage": ["10.9.0.0/16"]}))
    served, other = tmp_path / "served.db", tmp_path / "other.db"
    _import(served, first)
    _import(other, second)
    database = Database(served)
    addresses = [f"10.{n % 16}.0.1" for n in range(WHOLE_INDEX_FROM + 1)]

    def answers() -> tuple:
        with database.view() as conn:
            store = database.store(conn)
            found = store.lookup(addresses)
            return store.cidrs(["Storage"]).prefixes, found[9].result.tags  # type: ignore[union-attr]

    assert answers() == (("10.0.0.0/16",), ())  # 10.9.0.1: in no tag
    os.replace(other, served)
    assert answers() == (("10.9.0.0/16",), ("Storage",))


def test_profile_feeds_etag_follows_the_profiles_content_not_their_paths_or_times(tmp_path):
    """Two replicas with the same profile files (copied at other times, in other folders) give
    profile feeds the same ETag; an edit gives another."""
    import os

    from resolver.server.database import profiles_digest

    text = '[[rule]]\ndirection = "outbound"\nports = "443"\ntag = "Storage"\n'
    one, two = tmp_path / "one", tmp_path / "elsewhere" / "two"
    for folder, when in ((one, 1_000_000_000), (two, 1_700_000_000)):
        folder.mkdir(parents=True)
        (folder / "shop.toml").write_text(text)
        os.utime(folder / "shop.toml", (when, when))
    assert profiles_digest((one,)) == profiles_digest((two,))
    (two / "shop.toml").write_text(text.replace("443", "8443"))
    assert profiles_digest((one,)) != profiles_digest((two,))
