"""What an ingest process imports for its watches: recording change events does not load the
delivery side (messages, delivery rows), and an import with no watch loads no alert machinery.

Every `aztags import` and `fetch` is a new process, and issue 10 measures an ingest with 50
watches against the same ingest with none: what is imported for nothing is paid at every call.
Each case runs the real command in a fresh interpreter and checks what it stored.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.helpers import cli_env, run_counting_modules, simple_snapshot

DELIVERY = ("cache.outbox_rows", "resolver.alerts.deliver", "resolver.alerts.channels")
ALERTS = ("resolver.alerts.record", "cache.outbox", "resolver.profiles", *DELIVERY)


def _import(tmp_path: Path, config: str, *files: Path) -> tuple[int, set[str], Path]:
    db = tmp_path / "a.db"
    path = tmp_path / "aztags.toml"
    path.write_text(config)
    env = {**cli_env(db, tmp_path), "AZTAGS_CONFIG": str(path)}
    code, _, modules = run_counting_modules(["import", *map(str, files)], env, tmp_path)
    return code, modules, db


def _files(tmp_path: Path) -> list[Path]:
    old = tmp_path / "ServiceTags_Public_20250106.json"
    new = tmp_path / "ServiceTags_Public_20250113.json"
    old.write_bytes(simple_snapshot(1, {"Sql": ["20.0.0.0/16"], "Storage": ["10.0.0.0/16"]}))
    new.write_bytes(simple_snapshot(2, {"Sql": ["20.0.0.0/16", "20.1.0.0/16"], "Storage": []}))
    return [old, new]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("watch", "events"),
    [('tags = ["Sql"]', 1), ("all = true", 1), ('tags = ["Nothing.Here"]', 0)],
)
def test_recording_events_loads_no_delivery_machinery(tmp_path, watch, events):
    code, modules, db = _import(tmp_path, f'[[watch]]\nname = "w"\n{watch}\n', *_files(tmp_path))
    assert code in (0, None)
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT count(*) FROM alert_events").fetchone() == (events,)
    conn.close()
    loaded = sorted(m for m in (*DELIVERY, "resolver.profiles") if m in modules)
    assert loaded == [], f"an import with a {watch} watch loaded {loaded}"


@pytest.mark.slow
def test_an_import_without_watches_loads_no_alert_machinery(tmp_path):
    code, modules, db = _import(tmp_path, "", *_files(tmp_path))
    assert code in (0, None)
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT count(*) FROM snapshots").fetchone() == (2,)
    conn.close()
    loaded = sorted(m for m in ALERTS if m in modules)
    assert loaded == [], f"an import without watches loaded {loaded}"


@pytest.mark.slow
def test_an_import_without_a_config_file_reads_no_config_schema(tmp_path):
    db = tmp_path / "a.db"
    code, _, modules = run_counting_modules(
        ["import", *map(str, _files(tmp_path))], cli_env(db, tmp_path), tmp_path
    )
    assert code in (0, None)
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT count(*) FROM snapshots").fetchone() == (2,)
    conn.close()
    loaded = sorted(m for m in ("resolver.config", "tomllib", *ALERTS) if m in modules)
    assert loaded == [], f"an import without a config file loaded {loaded}"


def test_the_delivery_rows_are_still_importable_from_the_outbox():
    """cache.outbox still gives the delivery side's rows, now defined in cache.outbox_rows."""
    from cache import outbox, outbox_rows
    from cache.outbox import DeliveryRow, FetchRuns, MessageRow

    assert (DeliveryRow, FetchRuns, MessageRow) == (
        outbox_rows.DeliveryRow,
        outbox_rows.FetchRuns,
        outbox_rows.MessageRow,
    )
    with pytest.raises(AttributeError):
        outbox.NoSuchRow  # noqa: B018
