"""Exports for MikroTik RouterOS (issue 11): /ip and /ipv6 firewall address-list scripts.

No router runs here: a small model of RouterOS runs each script line by line, checking it
against the grammar of the commands written, the family of each entry
against its menu, and that ``add`` fails on an entry the list already has (as RouterOS does);
the lists it leaves are parsed back to prefixes on real files, a full export run over an
existing list must never take out an entry it keeps, and a delta run on the base snapshot's
lists must leave the current snapshot's."""

from __future__ import annotations

import ipaddress
import re
from datetime import date

import pytest
from click.testing import CliRunner

from cli import main
from resolver.exports.formats import formats
from resolver.exports.model import ExportInput, ExportObject, Header, ObjectDelta
from tests.helpers import (
    FROZEN_PROFILES,
    WEEKLY_2023,
    cli_env,
    collapsed,
    expected_space,
    iso,
    simple_snapshot,
)

DAY = WEEKLY_2023[-1]
NAMES = ["AzureCloud.westeurope", "Sql.WestEurope"]


CLI_PROFILES = FROZEN_PROFILES  # the conftest's aztags fixture reads them


LIST = r'"(?P<list>[A-Za-z0-9_.-]{1,63})"'
ADDR = r"(?P<address>[0-9a-f.:]+(?:/\d{1,3})?)"
COMMENT = r'"(?P<comment>[^"\\]*)"'
LINES = {
    "mark": re.compile(rf'set \[find list={LIST} dynamic=no\] comment="aztags-stale"'),
    "add or renew": re.compile(
        rf":do {{ add list={LIST} address={ADDR} comment={COMMENT} }} on-error={{ "
        r'set \[find list="(?P=list)" address=(?P=address) dynamic=no\] '
        r'comment="(?P=comment)" }'
    ),
    "add": re.compile(rf":do {{ add list={LIST} address={ADDR} comment={COMMENT} }} on-error={{}}"),
    "sweep": re.compile(rf'remove \[find list={LIST} comment="aztags-stale"\]'),
    "remove": re.compile(rf"remove \[find list={LIST} address={ADDR}\]"),
}


class Router:
    """Address lists: (menu, list) -> {address: comment}; ``removed`` records every entry
    taken out (what a firewall rule would miss until it is added back)."""

    def __init__(self):
        self.lists: dict[tuple[str, str], dict[str, str]] = {}
        self.removed: list[str] = []

    def run(self, text: str) -> Router:
        menu = None
        for line in text.splitlines():
            if line.startswith("# "):
                continue
            if line in ("/ip firewall address-list", "/ipv6 firewall address-list"):
                menu = line.split()[0]
                continue
            kind, found = next(
                ((k, m) for k, p in LINES.items() if (m := p.fullmatch(line))), (None, None)
            )
            assert found is not None and menu is not None, f"not RouterOS: {line!r}"
            entries = self.lists.setdefault((menu, found["list"]), {})
            if "address" in found.re.groupindex:
                address = found["address"]
                net = ipaddress.ip_network(address)  # strict: no host bits
                assert net.version == (6 if menu == "/ipv6" else 4), line
                assert not address.endswith("/32"), "RouterOS prints /32 as a bare address"
            if kind == "mark":
                for a in entries:
                    entries[a] = "aztags-stale"
            elif kind in ("add", "add or renew"):
                if address in entries:  # add fails: "already have such entry"
                    if kind == "add or renew":
                        entries[address] = found["comment"]
                else:
                    entries[address] = found["comment"]
            elif kind == "sweep":
                for a in [a for a, c in entries.items() if c == "aztags-stale"]:
                    del entries[a]
                    self.removed.append(a)
            else:
                if entries.pop(address, None) is not None:
                    self.removed.append(address)
        return self

    def prefixes(self) -> list[str]:
        return [str(ipaddress.ip_network(a)) for e in self.lists.values() for a in e]


@pytest.mark.realdata
@pytest.mark.parametrize("aggregate", [False, True])
def test_mikrotik_covers_exactly_the_query(aztags, aggregate):
    result = aztags("export", *NAMES, "-f", "mikrotik", *(["--aggregate"] if aggregate else []))
    assert result.exit_code == 0, result.output
    router = Router().run(result.stdout)
    name = "aztags-AzureCloud.westeurope-Sql.WestEurope"
    assert set(router.lists) == {("/ip", name), ("/ipv6", name)}  # one name, both menus
    assert collapsed(router.prefixes()) == expected_space(NAMES)


@pytest.mark.realdata
def test_mikrotik_one_family_touches_one_menu(aztags):
    result = aztags("export", "Storage.WestEurope", "-f", "mikrotik", "--ipv4")
    assert "/ipv6" not in result.stdout
    assert collapsed(Router().run(result.stdout).prefixes()) == expected_space(
        ["Storage.WestEurope"], family=4
    )


@pytest.mark.realdata
@pytest.mark.parametrize("aggregate", [False, True])
def test_mikrotik_refresh_and_delta_reach_the_current_lists(aztags, aggregate):
    flags = ["--aggregate"] if aggregate else []
    since = iso(WEEKLY_2023[0])
    base = aztags("export", *NAMES, "-f", "mikrotik", "--at", since, *flags).stdout
    full = aztags("export", *NAMES, "-f", "mikrotik", *flags).stdout
    delta = aztags("export", *NAMES, "-f", "mikrotik", "--since", since, *flags)
    assert delta.exit_code == 0, delta.output
    assert ":do { add" in delta.stdout and "remove [find" in delta.stdout
    lines = delta.stdout.splitlines()
    first_remove = next(n for n, line in enumerate(lines) if line.startswith("remove"))
    assert not any(line.startswith(":do") for line in lines[first_remove:])  # adds first
    want = Router().run(full).lists
    # the delta, run on the base lists
    assert Router().run(base).run(delta.stdout).lists == want
    # the full export, run on the base lists: same lists, and no kept entry ever left them
    refreshed = Router().run(base)
    before = {a for e in refreshed.lists.values() for a in e}
    refreshed.removed.clear()
    refreshed.run(full)
    assert refreshed.lists == want
    now = {a for e in want.values() for a in e}
    assert refreshed.removed and not set(refreshed.removed) & (before & now)


HEADER = Header("Public", 7, date(2025, 1, 6), "tags Sql")


def test_mikrotik_full_export_removes_entries_added_by_hand_and_keeps_others():
    inp = ExportInput(HEADER, (ExportObject("Sql", ("20.0.0.0/16", "20.1.0.5/32")),))
    router = Router()
    router.lists[("/ip", "Sql")] = {"20.0.0.0/16": "aztags Sql", "192.0.2.1": "by hand"}
    router.lists[("/ip", "Other")] = {"198.51.100.0/24": "not ours"}
    router.run(formats()["mikrotik"].render(inp).text)
    assert router.lists[("/ip", "Sql")] == {"20.0.0.0/16": "aztags Sql", "20.1.0.5": "aztags Sql"}
    assert router.lists[("/ip", "Other")] == {"198.51.100.0/24": "not ours"}
    assert router.removed == ["192.0.2.1"]


def test_mikrotik_delta_without_changes_says_so():
    inp = ExportInput(
        HEADER, (ExportObject("Sql", ("20.0.0.0/16",)),), delta=(ObjectDelta("Sql", (), ()),)
    )
    assert formats()["mikrotik"].delta(inp).text.endswith("# no changes\n")


def test_an_empty_list_is_refused(tmp_path):
    env = cli_env(tmp_path / "small.db", tmp_path)
    path = tmp_path / "ServiceTags_Public_20250106.json"
    path.write_bytes(simple_snapshot(1, {"Sql": ["20.0.0.0/16"]}))
    runner = CliRunner()
    assert runner.invoke(main, ["import", str(path)], env=env).exit_code == 0
    result = runner.invoke(main, ["export", "Sql", "-f", "mikrotik", "--ipv6"], env=env)
    assert result.exit_code == 3 and result.stdout == ""
    assert "no IPv6 prefixes" in result.stderr


@pytest.mark.realdata
def test_host_names_of_a_profile_are_listed_in_a_comment_and_said(aztags):
    result = aztags("export", "--profile", "azureml", "--region", "westus", "-f", "mikrotik")
    assert result.exit_code == 0, result.output
    assert "#   *.anaconda.com\n" in result.stdout and "#   pypi.org\n" in result.stdout
    assert "mikrotik takes no host names: the profile's 12 host names are listed" in result.stderr
    Router().run(result.stdout)
