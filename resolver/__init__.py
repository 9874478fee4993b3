"""aztags' domain: Azure service tags parsed, stored with history, and queried.

The library API (imported lazily, so ``import resolver`` stays cheap for the CLI)::

    from resolver import TagStore
    store = TagStore.open("aztags.db", cloud="public")
    store.cidrs(["Storage"], region="westeurope").prefixes

See resolver/query.py for every query, resolver/refresh.py for the fetch-and-store pipeline.
"""

from __future__ import annotations

from typing import Any

# The release, read by pyproject.toml (dynamic version) and by `aztags export` headers without
# importing importlib.metadata (50 ms).
__version__ = "0.1.0"

_EXPORTS = {
    "TagStore": "resolver.query",
    "CidrAnswer": "resolver.query",
    "DiffAnswer": "resolver.diff",
    "LookupAnswer": "resolver.lookup",
    "aggregate_prefixes": "resolver.prefixes",
    "LookupIndex": "resolver.lookup",
    "LookupMatch": "resolver.lookup",
    "parse_snapshot": "resolver.parse",
    "diff_tags": "resolver.diff",
    "refresh_cloud": "resolver.refresh",
    "import_files": "resolver.refresh",
    "get_cloud": "resolver.clouds",
    "AztagsError": "resolver.errors",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'resolver' has no attribute {name!r}")
