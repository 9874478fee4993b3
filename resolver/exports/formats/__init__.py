"""Every export format, by name: one module per family of targets, each listing its
``FORMATS`` (see resolver.exports.model.Format). Adding a target is adding a module here."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from importlib import import_module

from resolver.exports.model import Format

# The modules, in the order `aztags export --list-formats` shows their formats.
MODULES = (
    "text",
    "cisco",
    "juniper",
    "fortinet",
    "checkpoint",
    "mikrotik",
    "linux",
    "bsd",
    "bird",
    "azure",
    "aws",
    "windows",
    "proxies",
    "terraform",
)


@functools.cache
def formats() -> Mapping[str, Format]:
    """Every format by name (aliases included), in listing order (built once per process: the
    server looks a format up on every feed request). Do not modify the mapping returned."""
    found: dict[str, Format] = {}
    for module in MODULES:
        for fmt in import_module(f"resolver.exports.formats.{module}").FORMATS:
            for name in (fmt.name, *fmt.aliases):
                if name in found:
                    raise ValueError(f"two export formats are named {name!r}")
                found[name] = fmt
    return found
