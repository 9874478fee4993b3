"""Exports for Cisco (issue 11): ASA object-groups and access lists, IOS prefix lists.

No Cisco tool runs here, so each output is checked against the documented grammar line by line
(ASA masks valid and contiguous, IOS names and seq ranges), parsed
back to prefixes and compared with the address space of the query computed from the raw
published JSON, and each delta is applied in Python to the full output of the base snapshot and
must give the full output of the current one, byte for byte in what the device would hold."""

from __future__ import annotations

import ipaddress
import re
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main
from resolver.exports.formats import formats
from resolver.exports.formats.cisco import SEQ_MAX, seqs
from resolver.exports.model import (
    ExportInput,
    ExportObject,
    ExportOptions,
    Header,
    ObjectDelta,
    RuleInfo,
)
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
NAMES = ["AzureCloud.westeurope", "Sql.WestEurope"]  # both families, Sql inside AzureCloud


CLI_PROFILES = FROZEN_PROFILES  # the conftest's aztags fixture reads them


# -- the grammars ----------------------------------------------------------------------------------

ASA_NAME = r"[A-Za-z0-9_.-]{1,64}"
IPV4 = r"\d{1,3}(?:\.\d{1,3}){3}"
ASA_LINE = [
    re.compile(r"! .*"),
    re.compile(rf"object-group network (?P<group>{ASA_NAME})"),
    re.compile(r" description .{1,200}"),
    re.compile(rf" (?P<no>no )?network-object (?P<v4>{IPV4}) (?P<mask>{IPV4})"),
    re.compile(r" (?P<no>no )?network-object (?P<v6>[0-9a-f:]+/\d{1,3})"),
    re.compile(rf"access-list {ASA_NAME} remark .{{1,100}}"),
    re.compile(
        rf"access-list (?P<acl>{ASA_NAME}) extended permit (?P<proto>tcp|udp) "
        rf"(?P<src>object-group {ASA_NAME}|any) (?P<dst>object-group {ASA_NAME}|any)"
        r"(?P<port> eq \d{1,5}| range \d{1,5} \d{1,5})?"
    ),
    re.compile(rf"access-group {ASA_NAME} (in|out) interface \S+"),
]


def asa_match(line: str) -> re.Match:
    for pattern in ASA_LINE:
        found = pattern.fullmatch(line)
        if found:
            return found
    raise AssertionError(f"not ASA syntax: {line!r}")


def asa_prefix(found: re.Match) -> str:
    if "v6" in found.re.groupindex:
        net6 = ipaddress.IPv6Network(found["v6"])  # strict: host bits must be zero
        assert str(net6) == found["v6"], "IPv6 not in canonical form"
        return found["v6"]
    mask = int(ipaddress.IPv4Address(found["mask"]))
    length = bin(mask).count("1")
    contiguous = (0xFFFFFFFF << (32 - length)) & 0xFFFFFFFF
    assert mask == contiguous, f"mask {found['mask']} is not contiguous"
    net = ipaddress.IPv4Network(f"{found['v4']}/{length}")  # strict: host bits must be zero
    return str(net)


def asa_apply(text: str, groups: dict[str, set[str]] | None = None) -> dict[str, set[str]]:
    """The object-groups a device holds after running text (full or delta) on ``groups``."""
    groups = {k: set(v) for k, v in (groups or {}).items()}
    current = None
    for line in text.splitlines():
        found = asa_match(line)
        if found.re is ASA_LINE[1]:
            current = groups.setdefault(found["group"], set())
        elif found.re in (ASA_LINE[3], ASA_LINE[4]):
            assert current is not None, "network-object outside a group"
            prefix = asa_prefix(found)
            if found["no"]:
                assert prefix in current, f"no network-object {prefix}: not in the group"
                current.discard(prefix)
            else:
                assert prefix not in current, f"{prefix} is already in the group"
                current.add(prefix)
        elif not line.startswith(("!", " description")):
            current = None
    return groups


IOS_NAME = r"[A-Za-z][A-Za-z0-9_-]{0,31}"
IOS_LINE = [
    re.compile(r"! .*"),
    re.compile(rf"(?P<cmd>ip|ipv6) prefix-list {IOS_NAME} description .{{1,80}}"),
    re.compile(
        rf"(?P<no>no )?(?P<cmd>ip|ipv6) prefix-list (?P<name>{IOS_NAME}) seq (?P<seq>\d+) "
        r"permit (?P<prefix>[0-9a-f.:]+/\d{1,3})"
    ),
]


def ios_apply(text: str, lists: dict | None = None) -> dict[tuple[str, str], dict[int, str]]:
    """The prefix lists ((command, name) -> {seq: prefix}) after running text on ``lists``;
    IOS refuses an entry whose number is taken, so that is an error here too."""
    lists = {k: dict(v) for k, v in (lists or {}).items()}
    for line in text.splitlines():
        found = next((m for p in IOS_LINE if (m := p.fullmatch(line))), None)
        assert found is not None, f"not IOS syntax: {line!r}"
        if found.re is not IOS_LINE[2]:
            continue
        seq, prefix = int(found["seq"]), found["prefix"]
        assert 1 <= seq <= SEQ_MAX
        net = ipaddress.ip_network(prefix)  # strict: host bits must be zero
        assert net.version == (4 if found["cmd"] == "ip" else 6), line
        entries = lists.setdefault((found["cmd"], found["name"]), {})
        if found["no"]:
            assert entries.get(seq) == prefix, f"{line}: no such entry"
            del entries[seq]
        else:
            assert seq not in entries, f"{line}: seq {seq} is taken by {entries.get(seq)}"
            entries[seq] = prefix
    return lists


def asa_prefixes(text: str) -> list[str]:
    return [p for group in asa_apply(text).values() for p in group]


def ios_prefixes(text: str) -> list[str]:
    return [p for entries in ios_apply(text).values() for p in entries.values()]


PARSERS = {"cisco-asa": asa_prefixes, "cisco-ios": ios_prefixes}


# -- fidelity on real files ------------------------------------------------------------------------


@pytest.mark.realdata
@pytest.mark.parametrize("fmt", sorted(PARSERS))
@pytest.mark.parametrize("aggregate", [False, True])
def test_cisco_formats_cover_exactly_the_query(aztags, fmt, aggregate):
    result = aztags("export", *NAMES, "--format", fmt, *(["--aggregate"] if aggregate else []))
    assert result.exit_code == 0, result.output
    assert collapsed(PARSERS[fmt](result.stdout)) == expected_space(NAMES)


@pytest.mark.realdata
def test_ios_one_family_writes_one_list(aztags):
    result = aztags("export", "Storage.WestEurope", "-f", "cisco-ios", "--ipv6")
    assert result.exit_code == 0
    assert not re.search(r"^ip prefix-list", result.stdout, re.M)
    assert collapsed(ios_prefixes(result.stdout)) == expected_space(
        ["Storage.WestEurope"], family=6
    )


@pytest.mark.realdata
@pytest.mark.parametrize("aggregate", [False, True])
def test_asa_delta_applied_to_the_base_gives_the_current_list(aztags, aggregate):
    flags = ["--aggregate"] if aggregate else []
    since = iso(WEEKLY_2023[0])
    base = aztags("export", *NAMES, "-f", "cisco-asa", "--at", since, *flags)
    full = aztags("export", *NAMES, "-f", "cisco-asa", *flags)
    delta = aztags("export", *NAMES, "-f", "cisco-asa", "--since", since, *flags)
    assert delta.exit_code == 0, delta.output
    added = [line for line in delta.stdout.splitlines() if line.startswith(" network-object")]
    removed = [line for line in delta.stdout.splitlines() if line.startswith(" no ")]
    assert added and removed  # the weeks between do change the list
    # adds first, then removes
    lines = delta.stdout.splitlines()
    assert lines.index(added[-1]) < lines.index(removed[0])
    assert asa_apply(delta.stdout, asa_apply(base.stdout)) == asa_apply(full.stdout)


@pytest.mark.realdata
@pytest.mark.parametrize("aggregate", [False, True])
def test_ios_delta_applied_to_the_base_gives_the_current_lists_and_seqs(aztags, aggregate):
    flags = ["--aggregate"] if aggregate else []
    since = iso(WEEKLY_2023[0])
    base = aztags("export", *NAMES, "-f", "cisco-ios", "--at", since, *flags)
    full = aztags("export", *NAMES, "-f", "cisco-ios", *flags)
    delta = aztags("export", *NAMES, "-f", "cisco-ios", "--since", since, *flags)
    assert delta.exit_code == 0, delta.output
    assert re.search(r"^no ip prefix-list .* seq \d+ permit", delta.stdout, re.M)
    # seqs as well as prefixes: the device ends where a fresh full export would put it
    assert ios_apply(delta.stdout, ios_apply(base.stdout)) == ios_apply(full.stdout)


@pytest.mark.realdata
def test_asa_rules_allow_only_what_the_profile_says(aztags):
    result = aztags(
        "export",
        *("--profile", "azureml", "--region", "westus", "-f", "cisco-asa", "--rules"),
        *("--local", "10.1.0.0/24", "--interface", "outside"),
    )
    assert result.exit_code == 0, result.output
    groups = asa_apply(result.stdout)
    assert groups["azureml-westus-local"] == {"10.1.0.0/24"}
    aces = [asa_match(line) for line in result.stdout.splitlines() if " extended " in line]
    local = "object-group azureml-westus-local"
    inbound = [a for a in aces if a["acl"] == "azureml-westus-in"]
    outbound = [a for a in aces if a["acl"] == "azureml-westus-out"]
    # inbound: Azure is the source, the workload the destination; the profile's ports only
    assert [(a["src"], a["dst"], a["port"]) for a in inbound] == [
        ("object-group azureml-westus-01-BatchNodeManagement", local, " range 29876 29877"),
        ("object-group azureml-westus-02-AzureMachineLearning", local, " eq 44224"),
    ]
    assert all(a["src"] == local and a["dst"] != "any" for a in outbound)
    assert {a["port"] for a in outbound} == {None, " eq 443"}  # AzureActiveDirectory: "*"
    assert {a["proto"] for a in aces} == {"tcp"}  # every azureml rule is TCP
    assert "access-group azureml-westus-in in interface outside" in result.stdout
    assert "access-group azureml-westus-out out interface outside" in result.stdout
    # every Azure group holds exactly its tag's prefixes (Storage.WestUS for rule 06)
    assert collapsed(groups["azureml-westus-06-Storage.WestUS"]) == expected_space(
        ["Storage.WestUS"]
    )


@pytest.mark.realdata
def test_asa_rules_without_local_use_any_and_bind_nothing(aztags):
    result = aztags(
        "export", "--profile", "azureml", "--region", "westus", "-f", "cisco-asa", "--rules"
    )
    assert result.exit_code == 0
    aces = [asa_match(line) for line in result.stdout.splitlines() if " extended " in line]
    assert all("any" in (a["src"], a["dst"]) for a in aces)
    assert not any(a["src"] == a["dst"] for a in aces)  # never any to any
    assert "access-group" not in result.stdout.replace("! bind the lists with: access-group", "")


# -- rules of the formats, on small inputs ---------------------------------------------------------

HEADER = Header("Public", 7, date(2025, 1, 6), "tags Sql")


def one(prefixes, name="Sql.WestEurope", **kw) -> ExportInput:
    return ExportInput(HEADER, (ExportObject(name, tuple(prefixes), (name,)),), **kw)


def render(fmt: str, inp: ExportInput):
    f = formats()[fmt]
    if inp.options.rules:
        return f.rules(inp)
    return f.delta(inp) if inp.delta is not None else f.render(inp)


def test_asa_writes_ipv4_as_address_and_mask_and_ipv6_as_prefix():
    text = render("cisco-asa", one(["20.38.96.0/20", "2603:1020:200::/46"])).text
    assert text.splitlines()[2:] == [
        "object-group network Sql.WestEurope",
        " description aztags Sql.WestEurope changeNumber 7",
        " network-object 20.38.96.0 255.255.240.0",
        " network-object 2603:1020:200::/46",
    ]
    assert text.startswith("! aztags export: tags Sql\n! cloud Public, changeNumber 7")


@pytest.mark.parametrize("fmt", ["cisco-asa", "cisco-ios"])
def test_names_are_made_valid_for_the_device(fmt):
    name = "1 Very.Long/name " + "x" * 80
    text = render(fmt, one(["20.0.0.0/16", "2001:db8::/48"], name=name)).text
    if fmt == "cisco-asa":
        asa_apply(text)  # every line, names included, fits the grammar
    else:
        lists = ios_apply(text)
        assert {cmd for cmd, _ in lists} == {"ip", "ipv6"}
        assert all(len(n) <= 32 and n[0].isalpha() for _, n in lists)
        assert len({n for _, n in lists}) == 2


def test_ios_seq_numbers_do_not_move_when_the_list_changes():
    before = ("20.1.0.0/16", "20.3.0.0/16", "2001:db8:1::/48", "2001:db8:3::/48")
    after = ("20.0.0.0/16", "20.1.0.0/16", "20.2.0.0/16", "20.3.0.0/16", "2001:db8:2::/48")
    old = {**seqs(before[:2]), **seqs(before[2:])}
    new = {**seqs(after[:4]), **seqs(after[4:])}
    assert all(new[p] == old[p] for p in set(before) & set(after))
    assert new["20.1.0.0/16"] == int(ipaddress.IPv4Address("20.1.0.0")) + 1
    assert [new[p] for p in after[:4]] == sorted(new[p] for p in after[:4])  # address order


def test_ios_prefixes_starting_at_one_address_get_different_numbers():
    assert len(set(seqs(("20.0.0.0/16", "20.0.0.0/24")).values())) == 2


def test_ios_delta_frees_a_number_before_reusing_it():
    # the /24 held the /16's number; once the /16 arrives, the /24 moves to the next one
    inp = one(
        ["20.0.0.0/16", "20.0.0.0/24"],
        delta=(ObjectDelta("Sql.WestEurope", ("20.0.0.0/16",), ()),),
    )
    base = ios_apply(render("cisco-ios", one(["20.0.0.0/24"])).text)
    after = ios_apply(render("cisco-ios", inp).text, base)
    assert after == ios_apply(render("cisco-ios", one(["20.0.0.0/16", "20.0.0.0/24"])).text)


def test_ios_delta_warns_when_a_list_loses_its_last_entry():
    inp = one(["20.0.0.0/16"], delta=(ObjectDelta("Sql.WestEurope", (), ("2001:db8::/48",)),))
    out = render("cisco-ios", inp)
    assert "no ipv6 prefix-list Sql_WestEurope-v6 seq" in out.text
    assert any("Sql_WestEurope-v6 loses its last entry" in w for w in out.warnings)


def test_asa_delta_of_an_object_no_longer_exported_says_how_to_delete_it():
    inp = ExportInput(
        HEADER,
        (ExportObject("New", ("20.0.0.0/16",)),),
        delta=(ObjectDelta("New", ("20.0.0.0/16",), ()), ObjectDelta("Old", (), ("20.1.0.0/16",))),
    )
    out = render("cisco-asa", inp)
    assert out.text.splitlines()[2:] == [
        "object-group network New",
        " network-object 20.0.0.0 255.255.0.0",
        "object-group network Old",
        " no network-object 20.1.0.0 255.255.0.0",
    ]
    assert any("no object-group network Old" in w for w in out.warnings)


def test_a_delta_without_changes_says_so():
    inp = one(["20.0.0.0/16"], delta=(ObjectDelta("Sql.WestEurope", (), ()),))
    for fmt in ("cisco-asa", "cisco-ios"):
        assert render(fmt, inp).text.endswith("! no changes\n")


def rule_input(local=(), interface=None) -> ExportInput:
    def obj(n, direction, protocol, ports, tag):
        info = RuleInfo(direction, protocol, ports, tag, True)
        return ExportObject(f"app-eu-{n:02d}-{tag}", ("20.0.0.0/16", "2001:db8::/48"), (tag,), info)

    return ExportInput(
        HEADER,
        (
            obj(1, "inbound", "tcp", ((29876, 29877),), "Batch"),
            obj(2, "outbound", "any", ((53, 53), (5353, 5353)), "Dns"),
            obj(3, "outbound", "udp", ((1, 65535),), "Ntp"),
        ),
        ExportOptions(rules=True, local=local, interface=interface),
    )


def test_asa_rules_give_each_protocol_and_port_its_own_entry():
    text = render("cisco-asa", rule_input(local=("10.1.0.0/24", "fd00::/64"))).text
    aces = [line for line in text.splitlines() if " extended " in line]
    g, local = "object-group app-eu", "object-group app-eu-local"
    assert aces == [
        f"access-list app-eu-in extended permit tcp {g}-01-Batch {local} range 29876 29877",
        f"access-list app-eu-out extended permit tcp {local} {g}-02-Dns eq 53",
        f"access-list app-eu-out extended permit tcp {local} {g}-02-Dns eq 5353",
        f"access-list app-eu-out extended permit udp {local} {g}-02-Dns eq 53",
        f"access-list app-eu-out extended permit udp {local} {g}-02-Dns eq 5353",
        f"access-list app-eu-out extended permit udp {local} {g}-03-Ntp",
    ]
    assert asa_apply(text)["app-eu-local"] == {"10.1.0.0/24", "fd00::/64"}


def test_asa_rules_bind_only_the_directions_they_have():
    inp = rule_input(interface="outside")
    inbound_only = ExportInput(inp.header, inp.objects[:1], inp.options)
    text = render("cisco-asa", inbound_only).text
    assert "access-group app-eu-in in interface outside\n" in text
    assert "access-group app-eu-out" not in text


# -- empty results ---------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["cisco-asa", "cisco-ios"])
def test_an_empty_list_is_refused(tmp_path: Path, fmt):
    db = tmp_path / "small.db"
    env = cli_env(db, tmp_path, profiles=FROZEN_PROFILES)
    path = tmp_path / "ServiceTags_Public_20250106.json"
    path.write_bytes(simple_snapshot(1, {"Sql": ["20.0.0.0/16"]}))
    runner = CliRunner()
    assert runner.invoke(main, ["import", str(path)], env=env).exit_code == 0
    result = runner.invoke(main, ["export", "Sql", "-f", fmt, "--ipv6"], env=env)
    assert result.exit_code == 3 and result.stdout == ""
    assert "no IPv6 prefixes" in result.stderr


@pytest.mark.realdata
@pytest.mark.parametrize(
    ("fmt", "flags"), [("cisco-asa", []), ("cisco-ios", []), ("cisco-asa", ["--rules"])]
)
def test_host_names_of_a_profile_are_listed_in_a_comment_and_said(aztags, fmt, flags):
    result = aztags("export", "--profile", "azureml", "--region", "westus", "-f", fmt, *flags)
    assert result.exit_code == 0, result.output
    assert "!   *.anaconda.com\n" in result.stdout and "!   pypi.org\n" in result.stdout
    assert f"{fmt} takes no host names: the profile's 12 host names are listed" in result.stderr
    PARSERS[fmt](result.stdout)  # the comment lines fit the grammar
