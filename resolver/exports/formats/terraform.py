"""Terraform variable files: ``.tfvars`` (HCL) and ``.tfvars.json``.

One list variable per object and family, ``<name>_ipv4`` and ``<name>_ipv6``, because most
consumers (NSG rules, AWS prefix lists and security groups) take one family at a time. Both
variables are always written, an empty family as ``[]``, so the set of variables a module must
declare does not change from one refresh to the next. Names are HCL identifiers: lower case
letters, digits and ``_``, starting with a letter or ``_`` (``Storage.WestEurope`` ->
``storage_westeurope_ipv4``). The ``.tfvars.json`` form takes no comments (a ``//`` key would be
read as a variable), so it carries no header.
"""

from __future__ import annotations

import json

from resolver.exports.model import ExportInput, ExportObject, Format, Output, object_names


def _variables(inp: ExportInput) -> list[tuple[str, tuple[str, ...]]]:
    names = object_names(
        [o.name.lower() for o in inp.objects],  # lower first: `case` applies after `allowed`
        allowed="a-z0-9_",
        first="a-z_",
        max_length=59,
    )
    out: list[tuple[str, tuple[str, ...]]] = []
    for name, obj in zip(names, inp.objects, strict=True):
        out += [(f"{name}_ipv4", obj.ipv4), (f"{name}_ipv6", obj.ipv6)]
    return out


def _tags(obj: ExportObject) -> str:
    return ", ".join(obj.tags) if len(obj.tags) <= 4 else f"{', '.join(obj.tags[:4])}, ..."


def tfvars(inp: ExportInput) -> Output:
    out = [inp.header.comment("#")]
    out.append("# Terraform variables; declare each in the module that reads them, e.g.\n")
    variables = _variables(inp)
    out.append(f'#   variable "{variables[0][0]}" {{ type = list(string) }}\n')
    for (name, prefixes), obj in zip(
        variables, [o for o in inp.objects for _ in (4, 6)], strict=True
    ):
        if name.endswith("_ipv4"):
            out.append(f"\n# {obj.name}: {_tags(obj)}\n")
        if prefixes:
            out.append(f"{name} = [\n" + "".join(f'  "{p}",\n' for p in prefixes) + "]\n")
        else:
            out.append(f"{name} = []\n")
    return Output("".join(out))


def tfvars_json(inp: ExportInput) -> Output:
    doc = {name: list(prefixes) for name, prefixes in _variables(inp)}
    return Output(json.dumps(doc, indent=2) + "\n")


FORMATS = (
    Format(
        "terraform",
        "Terraform .tfvars: <name>_ipv4 and <name>_ipv6 list variables",
        tfvars,
    ),
    Format(
        "terraform-json",
        "Terraform .tfvars.json: the same variables as JSON",
        tfvars_json,
    ),
)
