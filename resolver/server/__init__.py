"""``aztags serve``: feeds for firewalls that poll, a JSON API, operations endpoints, a web page.

- ``app.py``: the application factory, settings, auth, errors, ETags.
- ``database.py``: the read-only store, reopened when its file is replaced.
- ``feeds.py``: ``/feeds/...`` (every export format over HTTP).
- ``api.py``: ``/v1/...``.
- ``ops.py``: ``/healthz``, ``/metrics``, ``/changes.atom``.
- ``web.py`` and ``web/``: the page at ``/``.
"""
