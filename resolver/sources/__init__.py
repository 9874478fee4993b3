"""Where a Service Tags file's bytes come from, as a ``RawFile``; nothing here looks inside them.

- ``base.py``: download settings, progress callbacks, size caps, gzip (shared by all sources);
- ``names.py``: the cloud and date in a ``ServiceTags_<Cloud>_YYYYMMDD.json`` name;
- ``files.py``: ``--source`` as a path, standard input, or a URL (``read_source``);
- ``http.py``: one download with retries, caps, truncation checks and ETags (``fetch_url``);
- ``discovery.py``: the Download Center chain that finds the current file (``fetch_current``).

Only ``http.py`` and ``discovery.py`` import requests, so commands that read local files do not pay
for it.
"""

from __future__ import annotations

from resolver.sources.base import HttpSettings, KnownFile, Progress
from resolver.sources.files import read_source
from resolver.sources.names import cloud_name_from_file_name, file_date_from_name

__all__ = [
    "HttpSettings",
    "KnownFile",
    "Progress",
    "cloud_name_from_file_name",
    "file_date_from_name",
    "read_source",
]
