"""Prefix lists and rule sets for network appliances: ``aztags export`` and its library API.

    from resolver.exports import ExportRequest, export
    from resolver.query import TagStore

    result = export(TagStore.open(), ExportRequest("nftables", names=("Storage.WestEurope",)))
    print(result.text)

- ``model.py``: objects, provenance header, delta, the Format type, name sanitising.
- ``build.py``: a request -> the objects, read from the store through TagStore (never the raw
  file), the delta from ``--since`` or a state file, the checks every format shares.
- ``state.py``: the ``--state FILE`` record of what a device was last given.
- ``formats/``: one module per family of targets; ``formats.formats()`` names them all.
"""

from resolver.exports.build import ExportRequest, ExportResult, export, get_format

__all__ = ["ExportRequest", "ExportResult", "export", "get_format"]
