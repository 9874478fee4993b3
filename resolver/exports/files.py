"""Files an export writes: the output (atomically) and the ``--state`` record.

The output goes to a temporary file in the same folder, flushed and fsynced, then renamed over
the target, so a firewall or a web server reading the file sees the old list or the new one,
never half of one. The state file records what the device was last given (format, snapshot,
prefixes per object); the next export with the same state file writes the delta from it.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from resolver.errors import AztagsError, UsageError
from resolver.exports.model import ExportInput

STATE_VERSION = 1


class ExportFileError(AztagsError):
    """An output or state file that cannot be written or read."""


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in one rename (see the module doc)."""
    folder = path.parent if str(path.parent) else Path(".")
    try:
        fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as e:
        raise ExportFileError(
            f"Cannot write {path}: {e.strerror or e} (in its folder {folder}); check that the "
            "folder exists and is writable."
        ) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        if path.exists():
            os.chmod(temp, path.stat().st_mode & 0o7777)
        else:
            os.chmod(temp, 0o644)
        os.replace(temp, path)
    except OSError as e:
        Path(temp).unlink(missing_ok=True)
        raise ExportFileError(f"Cannot write {path}: {e.strerror or e}.") from None


@dataclass(frozen=True, slots=True)
class State:
    """What an export state file says the device was given last, per object."""

    format: str
    objects: Mapping[str, Sequence[str]]
    label: str  # "state file x.json (changeNumber 246, 2023-03-20)"


def read_state(path: Path, format_name: str) -> State | None:
    """The state recorded in ``path``; None when the file does not exist yet (a first run
    exports the full list). A file for another format, or not a state file, is an error."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise ExportFileError(
            f"Cannot read the state file {path}: {getattr(e, 'strerror', None) or e}. Remove it "
            "to export the full list again."
        ) from None
    if not isinstance(doc, dict) or doc.get("aztags_export_state") != STATE_VERSION:
        raise ExportFileError(
            f"{path} is not an aztags export state file; name another --state file."
        )
    objects = doc.get("objects")
    if not isinstance(objects, dict) or not all(
        isinstance(v, list) and all(isinstance(p, str) for p in v) for v in objects.values()
    ):
        raise ExportFileError(f"The state file {path} is damaged (objects); remove it.")
    if doc.get("format") != format_name:
        raise UsageError(
            f"The state file {path} records a {doc.get('format')} export; this is {format_name}. "
            "Use one state file per device and format."
        )
    snap = doc.get("snapshot") or {}
    label = f"state file {path.name} (changeNumber {snap.get('change_number')}" + (
        f", {snap['file_date']})" if snap.get("file_date") else ")"
    )
    return State(str(doc["format"]), {str(k): list(v) for k, v in objects.items()}, label)


def state_doc(inp: ExportInput, format_name: str) -> dict[str, Any]:
    h = inp.header
    return {
        "aztags_export_state": STATE_VERSION,
        "format": format_name,
        "query": h.query,
        "snapshot": {
            "cloud": h.cloud,
            "change_number": h.change_number,
            "file_date": h.file_date.isoformat() if h.file_date else None,
        },
        "objects": {o.name: list(o.prefixes) for o in inp.objects},
    }


def write_state(path: Path, inp: ExportInput, format_name: str) -> None:
    write_atomic(path, json.dumps(state_doc(inp, format_name), indent=1) + "\n")
