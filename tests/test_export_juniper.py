"""Exports for Juniper (issue 11): Junos prefix-lists and the SRX address book, as set commands.

No Junos device runs here: each line is checked against the set-command grammar, the
configuration it leaves is checked as a commit would (members exist, no empty set, names <= 63,
no host bits), parsed back to prefixes on real files, and each delta is applied to the base
snapshot's configuration and must leave the current one's."""

from __future__ import annotations

import ipaddress
import re
from datetime import date

import pytest
from click.testing import CliRunner

from cli import main
from resolver.exports.formats import formats
from resolver.exports.model import ExportInput, ExportObject, ExportOptions, Header, ObjectDelta
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


NAME = r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}"
PREFIX = r"[0-9a-f.:]+/\d{1,3}"


def prefix_ok(prefix: str) -> str:
    return str(ipaddress.ip_network(prefix))  # strict: Junos rejects host bits


# -- prefix-list -----------------------------------------------------------------------------------

LIST_LINE = re.compile(
    rf"(?P<verb>set|delete) policy-options prefix-list (?P<name>{NAME})(?: (?P<prefix>{PREFIX}))?"
)


def junos_apply(text: str, lists: dict[str, set[str]] | None = None) -> dict[str, set[str]]:
    lists = {k: set(v) for k, v in (lists or {}).items()}
    for line in text.splitlines():
        if line.startswith("# "):
            continue
        found = LIST_LINE.fullmatch(line)
        assert found is not None, f"not a prefix-list command: {line!r}"
        name, prefix = found["name"], found["prefix"]
        if found["verb"] == "delete" and prefix is None:
            lists.pop(name, None)
            continue
        assert prefix is not None and prefix_ok(prefix) == prefix, line
        entries = lists.setdefault(name, set())
        if found["verb"] == "set":
            assert prefix not in entries, f"{line}: already there"
            entries.add(prefix)
        else:
            assert prefix in entries, f"{line}: not there"
            entries.discard(prefix)
    return lists


# -- SRX address book ------------------------------------------------------------------------------

BOOK = r"security (?:address-book global|zones security-zone (?P<zone>\S+) address-book)"
SRX_LINE = re.compile(
    rf"(?P<verb>set|delete) {BOOK} (?:"
    rf"address (?P<address>{NAME})(?: (?P<prefix>{PREFIX}))?"
    rf"|address-set (?P<set>{NAME})(?: address (?P<member>{NAME})| address-set (?P<child>{NAME}))?"
    r")"
)


class Book:
    """An SRX address book as a device holds it."""

    def __init__(self):
        self.addresses: dict[str, str] = {}
        self.sets: dict[str, set[tuple[str, str]]] = {}
        self.zones: set[str | None] = set()

    def run(self, text: str) -> Book:
        for line in text.splitlines():
            if line.startswith("# "):
                continue
            found = SRX_LINE.fullmatch(line)
            assert found is not None, f"not address-book syntax: {line!r}"
            self.zones.add(found["zone"])
            setting = found["verb"] == "set"
            if found["address"]:
                name = found["address"]
                if setting:
                    assert found["prefix"] and prefix_ok(found["prefix"]) == found["prefix"]
                    assert name not in self.addresses, f"{line}: already there"
                    self.addresses[name] = found["prefix"]
                else:
                    assert found["prefix"] is None and name in self.addresses, line
                    del self.addresses[name]
                continue
            name = found["set"]
            if found["member"] or found["child"]:
                member = (
                    ("address", found["member"]) if found["member"] else ("set", found["child"])
                )
                members = self.sets.setdefault(name, set())
                if setting:
                    assert member not in members, f"{line}: already there"
                    members.add(member)
                else:
                    assert member in members, f"{line}: not there"
                    members.discard(member)
            else:
                assert not setting, line
                self.sets.pop(name, None)  # a missing set is a warning in load set
        return self

    def commit(self) -> Book:
        """What commit checks: members exist, no empty set, sets within the limit."""
        assert len(self.zones) <= 1
        for name, members in self.sets.items():
            assert members, f"address-set {name} is empty"
            assert len(members) <= 1024, f"address-set {name} has {len(members)} members"
            for kind, member in members:
                assert member in (self.addresses if kind == "address" else self.sets), member
        return self

    def prefixes(self, name: str) -> set[str]:
        out: set[str] = set()
        for kind, member in self.sets[name]:
            out |= {self.addresses[member]} if kind == "address" else self.prefixes(member)
        return out

    def state(self):
        return self.addresses, self.sets


def srx_book(text: str) -> Book:
    return Book().run(text).commit()


# -- fidelity on real files ------------------------------------------------------------------------


@pytest.mark.realdata
@pytest.mark.parametrize("aggregate", [False, True])
def test_junos_prefix_list_covers_exactly_the_query(aztags, aggregate):
    result = aztags("export", *NAMES, "-f", "junos", *(["--aggregate"] if aggregate else []))
    assert result.exit_code == 0, result.output
    lists = junos_apply(result.stdout)
    assert list(lists) == ["aztags-AzureCloud-westeurope-Sql-WestEurope"]
    assert collapsed(lists.popitem()[1]) == expected_space(NAMES)


@pytest.mark.realdata
@pytest.mark.parametrize("aggregate", [False, True])
def test_srx_address_set_covers_exactly_the_query(aztags, aggregate):
    result = aztags("export", *NAMES, "-f", "junos-srx", *(["--aggregate"] if aggregate else []))
    assert result.exit_code == 0, result.output
    book = srx_book(result.stdout)
    assert book.zones == {None}  # the global address book
    assert collapsed(book.prefixes("aztags-AzureCloud-westeurope-Sql-WestEurope")) == (
        expected_space(NAMES)
    )


@pytest.mark.realdata
def test_srx_splits_a_big_list_into_sets_inside_the_set(aztags):
    result = aztags("export", "AzureCloud", "-f", "junos-srx", "--zone", "untrust", "--ipv4")
    assert result.exit_code == 0
    book = srx_book(result.stdout)
    assert book.zones == {"untrust"}
    children = book.sets["AzureCloud"]
    assert len(children) > 1 and all(kind == "set" for kind, _ in children)
    assert "address-sets of at most 1,024 inside AzureCloud" in result.stderr
    assert collapsed(book.prefixes("AzureCloud")) == expected_space(["AzureCloud"], family=4)


@pytest.mark.realdata
@pytest.mark.parametrize("fmt", ["junos", "junos-srx"])
@pytest.mark.parametrize(("names", "flags"), [(NAMES, []), (["AzureCloud"], ["--aggregate"])])
def test_delta_applied_to_the_base_gives_the_current_config(aztags, fmt, names, flags):
    since = iso(WEEKLY_2023[0])
    base = aztags("export", *names, "-f", fmt, "--at", since, *flags)
    full = aztags("export", *names, "-f", fmt, *flags)
    delta = aztags("export", *names, "-f", fmt, "--since", since, *flags)
    assert delta.exit_code == 0, delta.output
    lines = [line for line in delta.stdout.splitlines() if not line.startswith("#")]
    verbs = [line.split()[0] for line in lines]
    assert "set" in verbs and "delete" in verbs
    assert verbs == sorted(verbs, key=["set", "delete"].index)  # adds first, then removes
    if fmt == "junos":
        assert junos_apply(delta.stdout, junos_apply(base.stdout)) == junos_apply(full.stdout)
    else:
        after = Book().run(base.stdout).commit().run(delta.stdout).commit()
        assert after.state() == srx_book(full.stdout).state()  # no stale address left


# -- rules of the formats, on small inputs ---------------------------------------------------------

HEADER = Header("Public", 7, date(2025, 1, 6), "tags Sql")


def one(prefixes, name="Sql.WestEurope", **kw) -> ExportInput:
    return ExportInput(HEADER, (ExportObject(name, tuple(prefixes), (name,)),), **kw)


def render(fmt, inp):
    f = formats()[fmt]
    return f.delta(inp) if inp.delta is not None else f.render(inp)


def test_junos_full_export_replaces_the_list_in_one_commit():
    text = render("junos", one(["20.0.0.0/16", "2001:db8::/48"])).text
    assert text.splitlines()[2:] == [
        "delete policy-options prefix-list Sql-WestEurope",
        "set policy-options prefix-list Sql-WestEurope 20.0.0.0/16",
        "set policy-options prefix-list Sql-WestEurope 2001:db8::/48",
    ]
    assert text.startswith("# aztags export: tags Sql\n")


def test_srx_names_addresses_after_the_set_and_the_prefix():
    text = render("junos-srx", one(["20.38.96.0/20", "2603:1020:200::/46"])).text
    book = srx_book(text)
    assert book.addresses == {
        "Sql-WestEurope_20-38-96-0_20": "20.38.96.0/20",
        "Sql-WestEurope_2603-1020-200--_46": "2603:1020:200::/46",
    }


def test_srx_names_are_cut_with_a_hash_and_stay_unique():
    name = "-Very.Long name " + "x" * 70
    book = srx_book(render("junos-srx", one(["20.0.0.0/16", "20.1.0.0/16"], name=name)).text)
    assert len(book.addresses) == 2  # the grammar checked <= 63 and the first character


def test_srx_delta_deletes_a_child_set_that_empties():
    big = [str(n) for n in list(ipaddress.ip_network("10.0.0.0/13").subnets(new_prefix=24))[:1025]]
    base = Book().run(render("junos-srx", one(big)).text).commit()
    assert len(base.sets) == 3  # the set and two children
    inp = one(big[:1024], delta=(ObjectDelta("Sql.WestEurope", (), (big[1024],)),))
    out = render("junos-srx", inp).text
    assert "delete security address-book global address-set Sql-WestEurope-2\n" in out
    after = base.run(out).commit()
    assert after.state() == srx_book(render("junos-srx", one(big[:1024])).text).state()
    assert set(after.sets) == {"Sql-WestEurope"}


def test_srx_zone_book():
    inp = one(["20.0.0.0/16"], options=ExportOptions(zone="untrust"))
    assert srx_book(render("junos-srx", inp).text).zones == {"untrust"}


@pytest.mark.parametrize("fmt", ["junos", "junos-srx"])
def test_a_delta_without_changes_says_so(fmt):
    inp = one(["20.0.0.0/16"], delta=(ObjectDelta("Sql.WestEurope", (), ()),))
    assert render(fmt, inp).text.endswith("# no changes\n")


def test_junos_delta_of_an_object_no_longer_exported_warns():
    inp = ExportInput(
        HEADER,
        (ExportObject("New", ("20.0.0.0/16",)),),
        delta=(ObjectDelta("New", ("20.0.0.0/16",), ()), ObjectDelta("Old", (), ("20.1.0.0/16",))),
    )
    out = render("junos", inp)
    assert "delete policy-options prefix-list Old 20.1.0.0/16\n" in out.text
    assert any("delete policy-options prefix-list Old'" in w for w in out.warnings)


@pytest.mark.parametrize("fmt", ["junos", "junos-srx"])
def test_an_empty_list_is_refused(tmp_path, fmt):
    env = cli_env(tmp_path / "small.db", tmp_path)
    path = tmp_path / "ServiceTags_Public_20250106.json"
    path.write_bytes(simple_snapshot(1, {"Sql": ["20.0.0.0/16"]}))
    runner = CliRunner()
    assert runner.invoke(main, ["import", str(path)], env=env).exit_code == 0
    result = runner.invoke(main, ["export", "Sql", "-f", fmt, "--ipv6"], env=env)
    assert result.exit_code == 3 and result.stdout == ""
    assert "no IPv6 prefixes" in result.stderr


@pytest.mark.realdata
@pytest.mark.parametrize("fmt", ["junos", "junos-srx"])
def test_host_names_of_a_profile_are_listed_in_a_comment_and_said(aztags, fmt):
    result = aztags("export", "--profile", "azureml", "--region", "westus", "-f", fmt)
    assert result.exit_code == 0, result.output
    assert "#   *.anaconda.com\n" in result.stdout and "#   pypi.org\n" in result.stdout
    assert f"{fmt} takes no host names: the profile's 12 host names are listed" in result.stderr
    junos_apply(result.stdout) if fmt == "junos" else srx_book(result.stdout)
