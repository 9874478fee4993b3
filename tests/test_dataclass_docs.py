"""Every dataclass of the shipped code says what it is in a docstring.

A newcomer reads what a record means without tracing where it is built. And on Python 3.11, a
dataclass without a docstring gets one made from ``inspect.signature`` when its module is
imported (measured: about 0.2 ms a class, paid by every process that imports it)."""

from __future__ import annotations

import ast

from tests.helpers import ROOT

SHIPPED = ("resolver", "cache", "commands")


def test_every_dataclass_has_a_docstring():
    files = [p for folder in SHIPPED for p in (ROOT / folder).rglob("*.py")]
    files += [ROOT / "cli.py", ROOT / "cli_options.py"]
    seen, missing = 0, []
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ClassDef) and any(
                "dataclass" in ast.unparse(d) for d in node.decorator_list
            ):
                seen += 1
                if ast.get_docstring(node) is None:
                    missing.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}")
    assert seen > 50, seen  # the walk found the code
    assert missing == [], "dataclasses without a docstring:\n" + "\n".join(missing)
