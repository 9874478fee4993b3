"""Exports for Fortinet FortiOS (issue 11): address/address6 objects in addrgrp/addrgrp6 groups.

No FortiGate runs here: a small model of the FortiOS CLI runs each script, checking every line
against the documented grammar (subnet as address and contiguous mask,
ip6 as prefix, quoted names <= 63) and what the device checks when an ``edit`` block ends
(members exist in the right table, a group is neither empty nor over 600 members, nothing in
use is deleted). The result is parsed back to prefixes on real files, and each delta is run on
the base snapshot's configuration, checking after every block that no kept prefix is missing,
and must leave the current snapshot's configuration."""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Callable
from datetime import date

import pytest
from click.testing import CliRunner

from cli import main
from resolver.exports.formats import formats
from resolver.exports.model import ExportInput, ExportObject, Header, ObjectDelta
from tests.helpers import (
    WEEKLY_2023,
    cli_env,
    collapsed,
    expected_space,
    iso,
    simple_snapshot,
)

DAY = WEEKLY_2023[-1]
NAMES = ["AzureCloud.westeurope", "Sql.WestEurope"]
LIMIT = 600


NAME = r'"([A-Za-z0-9_.-]{1,63})"'
IPV4 = r"\d{1,3}(?:\.\d{1,3}){3}"
TABLES = ("address", "address6", "addrgrp", "addrgrp6")
SETTINGS = {
    "address": [
        re.compile(rf"set subnet (?P<address>{IPV4}) (?P<mask>{IPV4})"),
        re.compile(r"set type (?P<type>fqdn|wildcard-fqdn)"),
        re.compile(r'set (?P<kind>fqdn|wildcard-fqdn) "(?P<host>[A-Za-z0-9*.-]+)"'),
    ],
    "address6": [re.compile(r"set ip6 (?P<ip6>[0-9a-f:]+/\d{1,3})")],
    "addrgrp": [],
    "addrgrp6": [],
}
MEMBERS = re.compile(rf"(?P<verb>set|append|unselect) member (?P<names>{NAME}(?: {NAME})*)")
COMMENT = re.compile(r'set comment "[^"\\]{0,255}"')


class FortiGate:
    """The four tables as a device holds them; ``after`` runs after each edit block."""

    def __init__(self):
        self.tables: dict[str, dict[str, dict]] = {t: {} for t in TABLES}

    def run(self, text: str, after: Callable[[FortiGate], None] | None = None) -> FortiGate:
        table = editing = None
        for line in text.splitlines():
            if line.startswith("# "):
                continue
            if found := re.fullmatch(r"config firewall (\S+)", line):
                assert table is None and found[1] in TABLES, line
                table = found[1]
            elif line == "end":
                assert table is not None and editing is None, line
                table = None
            elif found := re.fullmatch(rf"    edit {NAME}", line):
                assert table is not None and editing is None, line
                editing = found[1]
                entry = self.tables[table].setdefault(editing, {})
            elif line == "    next":
                assert editing is not None, line
                self.check(table, editing)
                editing = None
                if after:
                    after(self)
            elif found := re.fullmatch(rf"    delete {NAME}", line):
                assert table is not None and editing is None, line
                assert found[1] in self.tables[table], f"{line}: no such entry"
                assert not self.used(found[1]), f"{line}: still a member of a group"
                del self.tables[table][found[1]]  # unused: what groups hold is unchanged
            elif line.startswith("        ") and editing is not None:
                self.setting(table, entry, line.strip())
            else:
                raise AssertionError(f"not FortiOS CLI: {line!r}")
        assert table is None and editing is None, "a block is left open"
        return self

    def setting(self, table: str, entry: dict, text: str) -> None:
        if COMMENT.fullmatch(text):
            return
        if table.startswith("addrgrp"):
            found = MEMBERS.fullmatch(text)
            assert found is not None, f"not a member line: {text!r}"
            names = re.findall(NAME, found["names"])
            members = entry.setdefault("member", [])
            if found["verb"] == "set":
                members.clear()
            for name in names:
                if found["verb"] == "unselect":
                    assert name in members, f"unselect {name}: not a member"
                    members.remove(name)
                else:
                    assert name not in members, f"{name} twice"
                    members.append(name)
            return
        for pattern in SETTINGS[table]:
            if found := pattern.fullmatch(text):
                entry.update({k: v for k, v in found.groupdict().items() if v is not None})
                return
        raise AssertionError(f"not a {table} setting: {text!r}")

    def check(self, table: str, name: str) -> None:
        entry = self.tables[table][name]
        if table == "address":
            assert "address" in entry or entry.get("type") == entry.get("kind"), entry
        elif table == "address6":
            assert "ip6" in entry, entry
        else:
            members = entry.get("member", [])
            assert 0 < len(members) <= LIMIT, f"group {name} has {len(members)} members"
            own = "address" if table == "addrgrp" else "address6"
            for m in members:
                assert m in self.tables[own] or m in self.tables[table], f"{name}: no {m}"

    def used(self, name: str) -> bool:
        return any(
            name in g.get("member", ())
            for t in ("addrgrp", "addrgrp6")
            for g in self.tables[t].values()
        )

    def prefix(self, table: str, entry: dict) -> str:
        if table == "address6":
            return ip6_prefix(entry["ip6"])
        return subnet_prefix(entry["address"], entry["mask"])

    def prefixes(self, group: str, table: str = "addrgrp") -> set[str]:
        own = "address" if table == "addrgrp" else "address6"
        out: set[str] = set()
        for m in self.tables[table][group]["member"]:
            if m in self.tables[table]:
                out |= self.prefixes(m, table)
            else:
                out.add(self.prefix(own, self.tables[own][m]))
        return out

    def hosts(self, group: str) -> set[str]:
        return {self.tables["address"][m]["host"] for m in self.tables["addrgrp"][group]["member"]}

    def state(self):
        return {
            t: {
                n: {k: sorted(v) if k == "member" else v for k, v in e.items()}
                for n, e in d.items()
            }
            for t, d in self.tables.items()
        }


@functools.cache
def ip6_prefix(text: str) -> str:
    assert str(ipaddress.IPv6Network(text)) == text  # strict: no host bits, canonical
    return text


@functools.cache
def subnet_prefix(address: str, mask_text: str) -> str:
    mask = int(ipaddress.IPv4Address(mask_text))
    length = bin(mask).count("1")
    assert mask == (0xFFFFFFFF << (32 - length)) & 0xFFFFFFFF, "mask not contiguous"
    return str(ipaddress.IPv4Network(f"{address}/{length}"))  # strict: no host bits


def covered(text: str, groups: list[tuple[str, str]]) -> set[str]:
    gate = FortiGate().run(text)
    return {
        p
        for name, table in groups
        if name in gate.tables[table]
        for p in gate.prefixes(name, table)
    }


# -- fidelity on real files ------------------------------------------------------------------------


@pytest.mark.realdata
@pytest.mark.parametrize("aggregate", [False, True])
def test_fortios_groups_cover_exactly_the_query(aztags, aggregate):
    result = aztags("export", *NAMES, "-f", "fortios", *(["--aggregate"] if aggregate else []))
    assert result.exit_code == 0, result.output
    gate = FortiGate().run(result.stdout)
    name = "aztags-AzureCloud.westeurope-Sql.WestEurope"
    v4, v6 = gate.prefixes(name), gate.prefixes(f"{name}_v6", "addrgrp6")
    assert all(":" not in p for p in v4) and all(":" in p for p in v6)  # never mixed
    assert collapsed(v4 | v6) == expected_space(NAMES)


@pytest.mark.realdata
def test_fortios_splits_a_big_list_into_groups_inside_the_group(aztags):
    result = aztags("export", "AzureCloud", "-f", "fortios", "--aggregate", "--ipv4")
    assert result.exit_code == 0
    gate = FortiGate().run(result.stdout)
    children = gate.tables["addrgrp"]["AzureCloud"]["member"]
    assert children == [f"AzureCloud_{n}" for n in range(1, len(children) + 1)]
    assert len(children) > 1
    assert f"split into {len(children)} groups of at most 600 inside AzureCloud" in result.stderr
    assert collapsed(gate.prefixes("AzureCloud")) == expected_space(["AzureCloud"], family=4)


@pytest.mark.realdata
def test_fortios_writes_the_profiles_host_names_as_fqdn_objects(aztags):
    result = aztags("export", "--profile", "azureml", "--region", "westus", "-f", "fortios")
    assert result.exit_code == 0, result.output
    gate = FortiGate().run(result.stdout)
    hosts = gate.hosts("azureml-westus_fqdn")
    assert {"pypi.org", "*.anaconda.com", "mcr.microsoft.com"} <= hosts
    for name in gate.tables["addrgrp"]["azureml-westus_fqdn"]["member"]:
        entry = gate.tables["address"][name]
        assert entry["type"] == ("wildcard-fqdn" if "*" in entry["host"] else "fqdn")


@pytest.mark.realdata
@pytest.mark.parametrize(("names", "flags"), [(NAMES, []), (["AzureCloud"], ["--aggregate"])])
def test_fortios_delta_applied_to_the_base_gives_the_current_config(aztags, names, flags):
    since = iso(WEEKLY_2023[0])
    base = aztags("export", *names, "-f", "fortios", "--at", since, *flags)
    full = aztags("export", *names, "-f", "fortios", *flags)
    delta = aztags("export", *names, "-f", "fortios", "--since", since, *flags)
    assert delta.exit_code == 0, delta.output
    assert "append member" in delta.stdout and "unselect member" in delta.stdout
    assert re.search(r'^    delete "', delta.stdout, re.M)  # stale address objects go
    top = "-".join(["aztags", *names]) if len(names) > 1 else names[0]
    groups = [(top, "addrgrp"), (f"{top}_v6", "addrgrp6")]
    kept = covered(base.stdout, groups) & covered(full.stdout, groups)

    def nothing_kept_is_missing(gate: FortiGate) -> None:
        now = {p for n, t in groups if n in gate.tables[t] for p in gate.prefixes(n, t)}
        assert kept <= now, f"missing for a moment: {sorted(kept - now)[:3]}"

    gate = FortiGate().run(base.stdout).run(delta.stdout, after=nothing_kept_is_missing)
    assert gate.state() == FortiGate().run(full.stdout).state()
    assert "missing for a moment" not in delta.stderr


# -- rules of the format, on small inputs ----------------------------------------------------------

HEADER = Header("Public", 7, date(2025, 1, 6), "tags Sql")


def one(prefixes, name="Sql.WestEurope", **kw) -> ExportInput:
    return ExportInput(HEADER, (ExportObject(name, tuple(prefixes), (name,)),), **kw)


def render(inp: ExportInput):
    f = formats()["fortios"]
    return f.delta(inp) if inp.delta is not None else f.render(inp)


def nets(n: int, start: int = 0) -> list[str]:
    base = int(ipaddress.IPv4Address("10.0.0.0"))
    return [str(ipaddress.IPv4Network((base + (start + i) * 256, 24))) for i in range(n)]


def test_fortios_writes_subnet_and_mask_and_ip6_in_separate_groups():
    text = render(one(["20.38.96.0/20", "2603:1020:200::/46"])).text
    assert text.splitlines()[2:] == [
        "config firewall address",
        '    edit "Sql.WestEurope_20.38.96.0_20"',
        "        set subnet 20.38.96.0 255.255.240.0",
        "    next",
        "end",
        "config firewall address6",
        '    edit "Sql.WestEurope_2603-1020-200--_46"',
        "        set ip6 2603:1020:200::/46",
        "    next",
        "end",
        "config firewall addrgrp",
        '    edit "Sql.WestEurope"',
        '        set member "Sql.WestEurope_20.38.96.0_20"',
        '        set comment "aztags Sql.WestEurope"',
        "    next",
        "end",
        "config firewall addrgrp6",
        '    edit "Sql.WestEurope_v6"',
        '        set member "Sql.WestEurope_2603-1020-200--_46"',
        '        set comment "aztags Sql.WestEurope"',
        "    next",
        "end",
    ]


def test_fortios_writes_long_member_lists_50_names_a_line():
    text = render(one(nets(120))).text
    lines = [line.strip() for line in text.splitlines() if "member" in line]
    assert [line.split()[0] for line in lines] == ["set", "append", "append"]
    assert len(FortiGate().run(text).tables["addrgrp"]["Sql.WestEurope"]["member"]) == 120


def test_fortios_names_are_cut_with_a_hash_and_stay_unique():
    name = "Very long name/with spaces " + "x" * 60
    gate = FortiGate().run(render(one(["20.0.0.0/16", "20.1.0.0/16"], name=name)).text)
    assert len(gate.tables["address"]) == 2 and len(gate.tables["addrgrp"]) == 1


@pytest.mark.slow
@pytest.mark.parametrize(
    ("before", "after"),
    [
        (nets(600), nets(601)),  # one group becomes two inside a parent
        (nets(601), nets(600)),  # and back
        (nets(1300), nets(1300, start=1)),  # every boundary moves by one
        (nets(1300, start=5), nets(1300)),  # inserts at the front
        (nets(1800), nets(700, start=1100)),  # most of it goes
    ],
)
def test_fortios_delta_keeps_groups_within_the_limit(before, after):
    delta = ObjectDelta(
        "Sql.WestEurope",
        tuple(sorted(set(after) - set(before))),
        tuple(sorted(set(before) - set(after))),
    )
    out = render(one(after, delta=(delta,)))
    kept = set(before) & set(after)
    missing: list[str] = []

    def check(gate: FortiGate) -> None:
        missing.extend(kept - gate.prefixes("Sql.WestEurope"))

    gate = FortiGate().run(render(one(before)).text).run(out.text, after=check)
    assert gate.state() == FortiGate().run(render(one(after)).text).state()
    if {len(before), len(after)} == {600, 601}:
        # a group of 600 takes its first child group (or its 600th address back from the
        # child groups) only after a member has left it: one entry is missing for a moment
        assert len(set(missing)) == 1 and any("missing for a moment" in w for w in out.warnings)
    else:
        assert not missing and not any("missing" in w for w in out.warnings)


def test_fortios_delta_of_an_object_no_longer_exported_deletes_it_and_warns():
    inp = ExportInput(
        HEADER,
        (ExportObject("New", ("20.0.0.0/16",)),),
        delta=(ObjectDelta("New", ("20.0.0.0/16",), ()), ObjectDelta("Old", (), ("20.1.0.0/16",))),
    )
    out = render(inp)
    gate = FortiGate().run(
        render(ExportInput(HEADER, (ExportObject("Old", ("20.1.0.0/16",)),))).text
    )
    gate.run(out.text)
    assert set(gate.tables["addrgrp"]) == {"New"} and list(gate.tables["address"]) == [
        "New_20.0.0.0_16"
    ]
    assert any("Old is no longer exported" in w for w in out.warnings)


def test_fortios_delta_without_changes_says_so():
    out = render(one(["20.0.0.0/16"], delta=(ObjectDelta("Sql.WestEurope", (), ()),)))
    assert out.text.endswith("# no changes\n")


def test_an_empty_list_is_refused(tmp_path):
    env = cli_env(tmp_path / "small.db", tmp_path)
    path = tmp_path / "ServiceTags_Public_20250106.json"
    path.write_bytes(simple_snapshot(1, {"Sql": ["20.0.0.0/16"]}))
    runner = CliRunner()
    assert runner.invoke(main, ["import", str(path)], env=env).exit_code == 0
    result = runner.invoke(main, ["export", "Sql", "-f", "fortios", "--ipv6"], env=env)
    assert result.exit_code == 3 and result.stdout == ""
    assert "no IPv6 prefixes" in result.stderr
