"""Shell completion candidates: tag names, region codes and profile names.

Called by the shell (through click's completion protocol) while the user types, so every
function here fails silently: no store, a store without the cloud, a broken profile folder or
anything else gives no candidates, never an error or a traceback on the user's prompt. Tags and
regions come from the current snapshot of the store (``--db``, ``$AZTAGS_DB`` or the default
path), opened read-only.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path


def matching(candidates: Iterable[str], incomplete: str) -> list[str]:
    """The candidates that start with what was typed, in any case, in their order, once each."""
    typed = incomplete.casefold()
    return [c for c in dict.fromkeys(candidates) if c.casefold().startswith(typed)]


def _current(db: Path | str | None, cloud: str) -> tuple[list[str], tuple[str, ...]]:
    """(tag names, region codes) of the cloud's current snapshot; empty when unreadable."""
    try:
        from resolver.query import TagStore

        store = TagStore.open(db, cloud)
    except Exception:  # completion never fails: no candidates instead
        return [], ()
    try:
        snapshot = store.snapshot()
        return [t.name for t in store.summaries(snapshot)], store.regions(snapshot).codes()
    except Exception:
        return [], ()
    finally:
        store.conn.close()


def tag_names(db: Path | str | None, cloud: str, incomplete: str = "") -> list[str]:
    """Tag names of the current snapshot starting with ``incomplete`` (any case)."""
    return matching(_current(db, cloud)[0], incomplete)


def region_codes(db: Path | str | None, cloud: str, incomplete: str = "") -> list[str]:
    """Region codes of the current snapshot starting with ``incomplete`` (any case)."""
    return matching(_current(db, cloud)[1], incomplete)


def profile_names(dirs: Iterable[Path], incomplete: str = "") -> list[str]:
    """Built-in and user profile names starting with ``incomplete``; the built-in ones alone
    when a user folder cannot be read."""
    from resolver.profiles import builtin_profiles, load_profiles

    try:
        names = sorted(load_profiles(dirs))
    except Exception:
        try:
            names = sorted(builtin_profiles())
        except Exception:
            return []
    return matching(names, incomplete)
