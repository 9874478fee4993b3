"""Linux exports (issue 11): ipset, nftables, iptables, checked by the real tools.

Every output is loaded by its own tool inside a network namespace the test creates
(``unshare -n``), read back from the kernel (``ipset save``, ``nft -j list``, ``iptables-save``)
and compared with the address space of the query computed from the raw published JSON
(tests/helpers.py). A delta is checked by applying it: the full list at an older snapshot is
loaded, the delta from it applied, and the set listed must equal the newer full list.
"""

from __future__ import annotations

import ipaddress
import json
import re
import shutil
import subprocess
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main
from resolver.exports.formats import linux
from resolver.exports.model import (
    ExportInput,
    ExportObject,
    ExportOptions,
    Header,
    ObjectDelta,
    RuleInfo,
)
from tests.helpers import (
    WEEKLY_2023,
    cli_env,
    collapsed,
    expected_space,
    simple_snapshot,
)

DAY = WEEKLY_2023[-1]  # the current snapshot of the weekly store (the `db` fixture): cn 259
OLD = "cn:244"  # its first snapshot (2023-03-06)
MID = "cn:251"
NAMES = ["Storage.WestEurope", "AzureCloud.westeurope"]  # overlapping, both families

PACKAGES = {
    "unshare": "util-linux",
    "nft": "nftables",
    "ipset": "ipset",
    "iptables-restore": "iptables",
    "ip6tables-restore": "iptables",
}


def needs(*tools: str) -> pytest.MarkDecorator:
    missing = [t for t in tools if shutil.which(t) is None]
    reason = ", ".join(f"{t} is not installed (apt-get install {PACKAGES[t]})" for t in missing)
    return pytest.mark.skipif(bool(missing), reason=reason or "-")


NFT = needs("unshare", "nft")
IPSET = needs("unshare", "ipset")
IPTABLES = needs("unshare", "iptables-restore", "ip6tables-restore", "ipset")


def export(aztags, *args: str) -> str:
    result = aztags("export", *args)
    assert result.exit_code == 0, result.output
    return result.stdout


def netns(tmp_path: Path, script: str, **files: str) -> subprocess.CompletedProcess:
    """Run ``script`` (sh -e) in a new network namespace, in ``tmp_path`` with ``files`` written
    there first; fail the test with the tool's own message when it fails."""
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    done = subprocess.run(
        ["unshare", "-n", "sh", "-ec", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done


def net(text: str) -> str:
    return str(ipaddress.ip_network(text))


# -- reading the kernel back -----------------------------------------------------------------------


def ipset_members(saved: str) -> dict[str, set[str]]:
    """``ipset save`` -> set name -> its entries (normalised)."""
    members: dict[str, set[str]] = {}
    for line in saved.splitlines():
        words = line.split()
        if words[:1] == ["create"]:
            members[words[1]] = set()
        elif words[:1] == ["add"]:
            members[words[1]].add(net(words[2]))
    return members


def nft_sets(listed: str) -> dict[str, list[str]]:
    """``nft -j list ...`` -> set name -> its elements as prefixes."""
    found: dict[str, list[str]] = {}
    for item in json.loads(listed)["nftables"]:
        s = item.get("set")
        if s is None:
            continue
        elements = []
        for e in s.get("elem", []):
            if isinstance(e, str):
                elements.append(net(e))
            elif "prefix" in e:
                elements.append(net(f"{e['prefix']['addr']}/{e['prefix']['len']}"))
            else:
                first, last = (ipaddress.ip_address(a) for a in e["range"])
                elements += [str(n) for n in ipaddress.summarize_address_range(first, last)]
        found[s["name"]] = elements
    return found


def iptables_rules(saved: str) -> list[str]:
    return [line for line in saved.splitlines() if line.startswith("-A ")]


def union(groups) -> list[str]:
    return [p for group in groups for p in group]


# -- fidelity: load with the tool, read back, compare with the raw JSON ----------------------------


@pytest.mark.realdata
@IPSET
@pytest.mark.parametrize("aggregate", [False, True])
def test_ipset_loads_exactly_the_query(aztags, tmp_path, aggregate):
    flags = ["--aggregate"] if aggregate else []
    text = export(aztags, *NAMES, "-f", "ipset", *flags)
    saved = netns(tmp_path, "ipset restore -file x.ipset; ipset save", **{"x.ipset": text}).stdout
    members = ipset_members(saved)
    assert sorted(members) == ["aztags-Storage.We_75bc27-v4", "aztags-Storage.We_75bc27-v6"]
    assert collapsed(union(members.values())) == expected_space(NAMES)
    # the sets hold the list as exported (overlaps included), not a merged version of it
    assert sum(map(len, members.values())) == len(text.split("\nadd ")) - 1


@pytest.mark.realdata
@NFT
@pytest.mark.parametrize("aggregate", [False, True])
def test_nftables_loads_exactly_the_query(aztags, tmp_path, aggregate):
    flags = ["--aggregate"] if aggregate else []
    text = export(aztags, *NAMES, "-f", "nftables", *flags)
    listed = netns(tmp_path, "nft -f x.nft; nft -j list table inet filter", **{"x.nft": text})
    sets = nft_sets(listed.stdout)
    base = "aztags-Storage.WestEurope-AzureCloud.westeurope"
    assert sorted(sets) == [f"{base}-v4", f"{base}-v6"]
    assert collapsed(sets[f"{base}-v4"]) == {4: expected_space(NAMES)[4], 6: []}
    assert collapsed(sets[f"{base}-v6"]) == {4: [], 6: expected_space(NAMES)[6]}


@pytest.mark.realdata
@IPTABLES
def test_iptables_ipv4_and_ipv6_files_load_exactly_the_query(aztags, tmp_path):
    v4 = aztags("export", *NAMES, "-f", "iptables")
    assert v4.exit_code == 0
    assert "IPv6 prefixes are left out; export again with --ipv6" in v4.stderr
    v6 = export(aztags, *NAMES, "-f", "iptables", "--ipv6")
    assert "# IPv4: load with iptables-restore" in v4.stdout
    assert "# IPv6: load with ip6tables-restore" in v6
    done = netns(
        tmp_path,
        "iptables-restore --test x.v4; ip6tables-restore --test x.v6;"
        "iptables-restore --noflush x.v4; iptables-restore --noflush x.v4;"
        "ip6tables-restore --noflush x.v6; iptables-save; echo '###'; ip6tables-save",
        **{"x.v4": v4.stdout, "x.v6": v6},
    )
    saved4, saved6 = done.stdout.split("###")
    chain = "aztags-Storage.WestEu_75bc27"
    for saved, fam in ((saved4, 4), (saved6, 6)):
        rules = iptables_rules(saved)
        # loading twice replaced the chain: each prefix once, all in the one chain, accepted
        assert {r.split()[1] for r in rules} == {chain}
        assert all(re.fullmatch(r"-A \S+ -d \S+ -j ACCEPT", r) for r in rules)
        assert collapsed(r.split()[3] for r in rules) == {
            4: [],
            6: [],
            fam: expected_space(NAMES)[fam],
        }


@pytest.mark.realdata
def test_ipv6_only_query_gives_ip6tables_and_one_family_sets(aztags):
    text = export(aztags, "Storage.WestEurope", "-f", "iptables", "--ipv6")
    assert "ip6tables-restore --noflush" in text and " -d 20." not in text
    ipset = export(aztags, "Storage.WestEurope", "-f", "ipset", "--ipv4")
    assert "family inet6" not in ipset and "Storage.WestEurope-v4" in ipset


# -- delta: load the older full list, apply the delta, compare with the newer full list ----------


@pytest.mark.realdata
@NFT
@pytest.mark.parametrize(("since", "at"), [(OLD, None), (OLD, MID), (MID, None)])
def test_nftables_delta_applied_to_the_old_list_gives_the_new_one(aztags, tmp_path, since, at):
    at_flags = ["--at", at] if at else []
    old = export(aztags, *NAMES, "-f", "nftables", "--at", since)
    delta = export(aztags, *NAMES, "-f", "nftables", "--since", since, *at_flags)
    new = export(aztags, *NAMES, "-f", "nftables", *at_flags)
    assert "delete element" in delta and "add element" in delta
    applied = netns(
        tmp_path,
        "nft -f old.nft; nft -c -f delta.nft; nft -f delta.nft; nft -j list table inet filter",
        **{"old.nft": old, "delta.nft": delta},
    )
    fresh = netns(tmp_path, "nft -f new.nft; nft -j list table inet filter", **{"new.nft": new})
    got, want = nft_sets(applied.stdout), nft_sets(fresh.stdout)
    assert got == want  # the same elements, not only the same space
    day = WEEKLY_2023[int(at[3:]) - 244] if at else DAY
    assert collapsed(union(got.values())) == expected_space(NAMES, day=day)


@pytest.mark.realdata
@IPSET
@pytest.mark.parametrize("aggregate", [False, True])
def test_ipset_delta_applied_to_the_old_list_gives_the_new_one(aztags, tmp_path, aggregate):
    flags = ["--aggregate"] if aggregate else []
    old = export(aztags, *NAMES, "-f", "ipset", "--at", OLD, *flags)
    delta = export(aztags, *NAMES, "-f", "ipset", "--since", OLD, *flags)
    new = export(aztags, *NAMES, "-f", "ipset", *flags)
    adds = [line for line in delta.splitlines() if line.startswith("add ")]
    dels = [line for line in delta.splitlines() if line.startswith("del ")]
    assert adds and dels
    assert delta.index(adds[-1]) < delta.index(dels[0])  # adds first, then removes
    # applied twice: the second time changes nothing (-exist)
    applied = netns(
        tmp_path,
        "ipset restore -file old; ipset restore -file delta; ipset restore -file delta; ipset save",
        old=old,
        delta=delta,
    )
    fresh = netns(tmp_path, "ipset restore -file new; ipset save", new=new)
    assert ipset_members(applied.stdout) == ipset_members(fresh.stdout)


@pytest.mark.realdata
@IPSET
def test_ipset_state_file_delta_moves_the_device_to_the_current_list(aztags, tmp_path):
    state = str(tmp_path / "fw.state")
    first = export(aztags, *NAMES, "-f", "ipset", "--state", state, "--at", OLD)
    assert "swap " in first  # nothing recorded yet: the full list
    delta = export(aztags, *NAMES, "-f", "ipset", "--state", state)
    assert "delta from state file" in delta and "swap " not in delta
    again = export(aztags, *NAMES, "-f", "ipset", "--state", state)
    assert "# Nothing changed." in again
    applied = netns(
        tmp_path,
        "ipset restore -file first; ipset restore -file delta; ipset restore -file again;"
        "ipset save",
        first=first,
        delta=delta,
        again=again,
    )
    assert collapsed(union(ipset_members(applied.stdout).values())) == expected_space(NAMES)


@IPSET
@NFT
def test_delta_creates_a_family_the_device_has_not_had(tmp_path):
    """The base list had no IPv6: the delta declares the IPv6 set before adding to it."""
    obj = ExportObject("Sql", ("20.0.0.0/16", "2001:db8::/48"), ("Sql",))
    full = ExportInput(HEADER, (ExportObject("Sql", ("20.0.0.0/16",), ("Sql",)),))
    delta = ExportInput(HEADER, (obj,), delta=(ObjectDelta("Sql", ("2001:db8::/48",), ()),))
    applied = netns(
        tmp_path,
        "ipset restore -file a; ipset restore -file b; ipset save;"
        "nft -f c; nft -f d; nft -j list table inet filter",
        a=linux.ipset(full).text,
        b=linux.ipset_delta(delta).text,
        c=linux.nftables(full).text,
        d=linux.nftables_delta(delta).text,
    )
    saved, listed = applied.stdout.split('{"nftables"', 1)
    assert ipset_members(saved) == {"Sql-v4": {"20.0.0.0/16"}, "Sql-v6": {"2001:db8::/48"}}
    assert nft_sets('{"nftables"' + listed) == {
        "Sql-v4": ["20.0.0.0/16"],
        "Sql-v6": ["2001:db8::/48"],
    }


def test_nftables_delta_deletes_before_it_adds_an_overlapping_element():
    """An interval set refuses an element overlapping one still in it: the /23 that replaces
    two /24s (one of them removed) can only go in after the old element is deleted."""
    obj = ExportObject("X", ("10.0.0.0/24", "10.0.1.0/24"))
    inp = ExportInput(HEADER, (obj,), delta=(ObjectDelta("X", ("10.0.1.0/24",), ("10.0.2.0/24",)),))
    text = linux.nftables_delta(inp).text
    # elements are aggregated: 10.0.0.0/24 + 10.0.2.0/24 before, 10.0.0.0/23 now
    assert "delete element inet filter X-v4 {\n\t10.0.0.0/24,\n\t10.0.2.0/24\n}" in text
    assert "add element inet filter X-v4 {\n\t10.0.0.0/23\n}" in text
    assert text.index("delete element") < text.index("add element")


# -- tools accept every output ---------------------------------------------------------------------


@pytest.mark.realdata
@NFT
def test_nft_checks_full_delta_and_rules_outputs(aztags, tmp_path):
    files = {
        "full.nft": export(aztags, *NAMES, "-f", "nftables"),
        "agg.nft": export(aztags, *NAMES, "-f", "nftables", "--aggregate", "--ipv6"),
        "delta.nft": export(aztags, *NAMES, "-f", "nftables", "--since", OLD),
        "same.nft": export(aztags, *NAMES, "-f", "nftables", "--since", "cn:259"),
        "rules.nft": export(aztags, *AZUREML, "-f", "nftables", "--rules"),
        "local.nft": export(
            aztags,
            *AZUREML,
            "-f",
            "nftables",
            "--rules",
            "--local",
            "10.1.0.0/24",
            "--local",
            "2001:db8::/64",
            "--interface",
            "eth0",
            "--chain",
            "AZURE",
        ),
    }
    assert "# Nothing changed." in files["same.nft"]
    files["old.nft"] = export(aztags, *NAMES, "-f", "nftables", "--at", OLD)
    # the delta deletes elements: checked over the list it starts from
    script = "; ".join(f"nft -c -f {name}" for name in files if name != "delta.nft")
    netns(tmp_path, script + "; nft -f old.nft; nft -c -f delta.nft", **files)


@pytest.mark.realdata
@IPSET
def test_ipset_refresh_twice_over_a_set_in_use(aztags, tmp_path):
    """The swap refresh runs again over live sets (and one an iptables rule references)."""
    old = export(aztags, *NAMES, "-f", "ipset", "--at", OLD)
    new = export(aztags, *NAMES, "-f", "ipset")
    done = netns(
        tmp_path,
        "ipset restore -file old;"
        "iptables -A OUTPUT -m set --match-set aztags-Storage.We_75bc27-v4 dst -j ACCEPT;"
        "ipset restore -file new; ipset restore -file new; ipset save",
        old=old,
        new=new,
    )
    members = ipset_members(done.stdout)
    assert not any(name.endswith("-tmp") for name in members)
    assert collapsed(union(members.values())) == expected_space(NAMES)


# -- rules -----------------------------------------------------------------------------------------

# The 2021 azureml profile, frozen in tests/profiles (the built-in one follows Microsoft's page).
AZUREML = [
    "--profile",
    "azureml",
    "--region",
    "westus",
    "--profiles-dir",
    str(Path(__file__).parent / "profiles"),
]


def nft_rule_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("add rule ")]


@pytest.mark.realdata
@NFT
def test_nftables_rules_one_set_per_rule_ports_and_direction(aztags, tmp_path):
    text = export(aztags, *AZUREML, "-f", "nftables", "--rules")
    rules = nft_rule_lines(text)
    csv = export(aztags, *AZUREML, "-f", "csv", "--rules").splitlines()[1:]
    names = sorted({row.split(",")[0] for row in csv})
    # every profile rule has rules referencing its own set(s)
    by_rule = {n: [r for r in rules if f"@{n}-v" in r] for n in names}
    assert all(by_rule.values()), by_rule
    bnm = by_rule["azureml-westus-01-BatchNodeManagement"]
    assert all(r.startswith("add rule inet filter AZTAGS-in ") for r in bnm)
    assert all(" saddr @" in r and "tcp dport 29876-29877 accept" in r for r in bnm)
    aad = by_rule["azureml-westus-03-AzureActiveDirectory"]  # outbound, any port
    assert all(r.startswith("add rule inet filter AZTAGS-out ") for r in aad)
    assert all(" daddr @" in r and "meta l4proto tcp accept" in r and "dport" not in r for r in aad)
    arm = by_rule["azureml-westus-05-AzureResourceManager"]
    assert all("tcp dport 443 accept" in r for r in arm)
    # no rule without its port match, except the any-port one; never a bare accept
    assert all(" dport " in r or "AzureActiveDirectory" in r for r in rules)
    # loaded: each set holds its rule's prefixes (the csv rows), the chains hold the rules
    listed = netns(tmp_path, "nft -f r.nft; nft -j list table inet filter", **{"r.nft": text})
    sets = nft_sets(listed.stdout)
    for name in names:
        rows = [row.split(",")[4] for row in csv if row.split(",")[0] == name]
        assert collapsed(sets.get(f"{name}-v4", []) + sets.get(f"{name}-v6", [])) == collapsed(rows)
    chains = [i["rule"]["chain"] for i in json.loads(listed.stdout)["nftables"] if "rule" in i]
    assert len(chains) == len(rules)


@pytest.mark.realdata
@NFT
def test_nftables_rules_local_interface_and_chain(aztags, tmp_path):
    result = aztags(
        "export",
        *AZUREML,
        "-f",
        "nftables",
        "--rules",
        "--local",
        "10.1.0.0/24",
        "--interface",
        "eth0",
        "--chain",
        "AZURE",
    )
    assert result.exit_code == 0
    rules = nft_rule_lines(result.stdout)
    assert rules and not any("ip6 " in r for r in rules)  # no IPv6 local: no IPv6 rule
    assert "rule(s) left out because --local gives no address of their family" in result.stderr
    for r in rules:
        if r.startswith("add rule inet filter AZURE-in "):
            assert "ip daddr { 10.1.0.0/24 }" in r and 'iifname "eth0"' in r and "ip saddr @" in r
        else:
            assert r.startswith("add rule inet filter AZURE-out ")
            assert "ip saddr { 10.1.0.0/24 }" in r and 'oifname "eth0"' in r and "ip daddr @" in r
    # loaded twice (a refresh): the chains are flushed, not doubled
    listed = netns(
        tmp_path,
        "nft -f r.nft; nft -f r.nft; nft -j list table inet filter",
        **{"r.nft": result.stdout},
    )
    kernel = [i["rule"] for i in json.loads(listed.stdout)["nftables"] if "rule" in i]
    assert len(kernel) == len(rules)
    assert {r["chain"] for r in kernel} == {"AZURE-in", "AZURE-out"}


@pytest.mark.realdata
@IPTABLES
def test_iptables_rules_script_loads_sets_and_chains(aztags, tmp_path):
    text = export(
        aztags,
        *AZUREML,
        "-f",
        "iptables",
        "--rules",
        "--local",
        "10.1.0.0/24",
        "--local",
        "2001:db8:1::/64",
    )
    csv = export(aztags, *AZUREML, "-f", "csv", "--rules").splitlines()[1:]
    # each part checked by its own tool, then the script run twice (a refresh)
    v4 = text.split("<<'AZTAGS_IPTABLES'\n")[1].split("AZTAGS_IPTABLES\n")[0]
    v6 = text.split("<<'AZTAGS_IP6TABLES'\n")[1].split("AZTAGS_IP6TABLES\n")[0]
    sets = text.split("<<'AZTAGS_IPSET'\n")[1].split("AZTAGS_IPSET\n")[0]
    done = netns(
        tmp_path,
        "ipset restore -file sets; iptables-restore --test v4; ip6tables-restore --test v6;"
        "sh rules.sh; sh rules.sh; iptables-save; echo '###'; ip6tables-save; echo '###';"
        "ipset save",
        **{"rules.sh": text, "v4": v4, "v6": v6, "sets": sets},
    )
    saved4, saved6, saved_sets = done.stdout.split("###")
    rules = iptables_rules(saved4) + iptables_rules(saved6)
    assert len(rules) == text.count("\n-A ")  # twice loaded, once present
    members = ipset_members(saved_sets)
    names = sorted({row.split(",")[0] for row in csv})
    for n, name in enumerate(names, 1):
        mine = [s for s in members if s.startswith(f"azureml-westus-{n:02d}")]
        rows = [row.split(",")[4] for row in csv if row.split(",")[0] == name]
        assert collapsed(union(members[s] for s in mine)) == collapsed(rows), name
    for r in rules:
        if r.startswith("-A AZTAGS-in "):
            assert " src " in r and (" -d 10.1.0.0/24 " in r or " -d 2001:db8:1::/64 " in r)
        else:
            assert r.startswith("-A AZTAGS-out ") and " dst " in r
            assert " -s 10.1.0.0/24 " in r or " -s 2001:db8:1::/64 " in r
        assert r.endswith("-j ACCEPT") and " -p tcp " in r
        assert "--dport" in r or "AzureActiveDirectory" in r
    bnm = [r for r in rules if "azureml-westus-01" in r]
    assert bnm and all("--dport 29876:29877" in r for r in bnm)


HEADER = Header("Public", 259, date(2023, 6, 19), "profile test")


def rule_input(protocol: str, ports, **options) -> ExportInput:
    rules = (
        ExportObject(
            "t-01-Sql",
            ("20.0.0.0/16", "2001:db8::/48"),
            ("Sql",),
            RuleInfo("inbound", protocol, ports, "Sql", True),
        ),
        ExportObject(
            "t-02-Storage",
            ("30.0.0.0/16",),
            ("Storage",),
            RuleInfo("outbound", protocol, ports, "Storage", True),
        ),
    )
    return ExportInput(HEADER, rules, ExportOptions(rules=True, **options))


MANY = tuple((p, p) for p in range(1000, 1017)) + ((2000, 2010),)  # 17 ports and a range


@pytest.mark.parametrize(
    ("protocol", "ports", "nft_l4", "ipt_l4"),
    [
        ("tcp", ((443, 443),), ["tcp dport 443"], ["-p tcp --dport 443"]),
        ("udp", ((1, 65535),), ["meta l4proto udp"], ["-p udp"]),
        ("any", ((1, 65535),), [""], [""]),
        (
            "any",
            ((80, 80), (443, 443)),
            ["meta l4proto { tcp, udp } th dport { 80, 443 }"],
            ["-p tcp -m multiport --dports 80,443", "-p udp -m multiport --dports 80,443"],
        ),
        (
            "tcp",
            MANY,
            ["tcp dport { " + ", ".join(str(p) for p in range(1000, 1017)) + ", 2000-2010 }"],
            [  # 15 ports per multiport match, a range counting as two
                "-p tcp -m multiport --dports " + ",".join(str(p) for p in range(1000, 1015)),
                "-p tcp -m multiport --dports 1015,1016,2000:2010",
            ],
        ),
    ],
)
def test_rules_follow_protocol_and_ports(protocol, ports, nft_l4, ipt_l4):
    inp = rule_input(protocol, ports)
    nft = nft_rule_lines(linux.nftables_rules(inp).text)
    inbound = [r for r in nft if "@t-01-Sql-v4" in r]
    assert [re.search(r"@t-01-Sql-v4 (.*?) ?accept", r)[1] for r in inbound] == nft_l4
    ipt = [r for r in linux.iptables_rules(inp).text.splitlines() if "--match-set t-01-Sql-v4" in r]
    got = [r.split(" src", 1)[1].split(" -m comment")[0].strip() for r in ipt]
    assert got == ipt_l4


@pytest.mark.slow
@NFT
@IPTABLES
@pytest.mark.parametrize("protocol", ["tcp", "udp", "any"])
@pytest.mark.parametrize("ports", [((443, 443),), ((1, 65535),), MANY])
def test_tools_accept_every_protocol_and_port_shape(tmp_path, protocol, ports):
    inp = rule_input(protocol, ports, local=("10.0.0.0/8", "2001:db8:9::/64"), interface="eth1")
    netns(
        tmp_path,
        "nft -c -f r.nft; nft -f r.nft; sh r.sh",
        **{"r.nft": linux.nftables_rules(inp).text, "r.sh": linux.iptables_rules(inp).text},
    )


def test_rules_keep_the_local_side_per_family():
    inp = rule_input("tcp", ((443, 443),), local=("10.1.0.7/24",))
    out = linux.nftables_rules(inp)
    rules = nft_rule_lines(out.text)
    # the host bits are cleared; the IPv6 half of rule 01 is left out, with a warning
    assert [r.split(" tcp ")[0] for r in rules] == [
        "add rule inet filter AZTAGS-in ip saddr @t-01-Sql-v4 ip daddr { 10.1.0.0/24 }",
        "add rule inet filter AZTAGS-out ip daddr @t-02-Storage-v4 ip saddr { 10.1.0.0/24 }",
    ]
    assert out.warnings == (
        "1 rule(s) left out because --local gives no address of their family (a rule without "
        "the local side would allow more): t-01-Sql (IPv6)",
    )
    ipt = linux.iptables_rules(inp)
    assert ipt.warnings == out.warnings and "--match-set t-01-Sql-v6" not in ipt.text
    assert "t-01-Sql-v6" not in ipt.text  # no set for a rule that is not written


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["--chain", "bad chain"], "--chain 'bad chain' cannot name a chain"),
        (["--chain", "A" * 25], "at most 24 characters"),
        (["--interface", "eth0; drop"], "is not an interface name"),
    ],
)
def test_bad_chain_or_interface_is_a_usage_error(small, args, problem):
    result = small("export", "--profile", "p", "-f", "iptables", "--rules", *args)
    assert result.exit_code == 2, result.output
    assert problem in result.stderr and result.stdout == ""


# -- names, empties, determinism -------------------------------------------------------------------


@pytest.fixture
def small(tmp_path):
    """A store with one Public file (AzureCloud has IPv4 only) and a one-rule profile p."""
    db = tmp_path / "small.db"
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    (profiles / "p.toml").write_text(
        'name = "p"\ndescription = "test"\n\n[[rule]]\ndirection = "outbound"\nports = "443"\n'
        'tag = "Sql"\n'
    )
    env = {**cli_env(db, tmp_path), "AZTAGS_PROFILES_DIR": str(profiles)}

    def invoke(*args: str):
        return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)

    tags = {
        "AzureCloud": [f"10.{i}.0.0/16" for i in range(10)],
        "Sql": ["20.0.0.0/16", "2001:db8::/48"],
    }
    path = tmp_path / "ServiceTags_Public_20250101.json"
    path.write_bytes(simple_snapshot(1, tags))
    assert invoke("import", str(path)).exit_code == 0
    return invoke


@pytest.mark.parametrize("fmt", ["ipset", "nftables", "iptables"])
def test_an_empty_list_is_an_error(small, fmt):
    result = small("export", "AzureCloud", "-f", fmt, "--ipv6")
    assert result.exit_code == 3 and "no IPv6 prefixes" in result.stderr
    assert result.stdout == ""


LONG = "Storage." + "VeryLongRegionName" * 20  # 368 characters


@IPSET
@NFT
@IPTABLES
def test_long_names_are_cut_to_each_tools_limit_and_load(small, tmp_path):
    texts = {
        fmt: small("export", "Sql", "-f", fmt, "--name", LONG).stdout
        for fmt in ("ipset", "nftables", "iptables")
    }
    ipsets = re.findall(r"^create (\S+)", texts["ipset"], re.M)
    assert ipsets and max(map(len, ipsets)) == 31  # NAME-v4-tmp, at ipset's limit
    nft = re.findall(r"^\tset (\S+)", texts["nftables"], re.M)
    assert max(map(len, nft)) == 255
    chain = re.findall(r"^:(\S+)", texts["iptables"], re.M)
    assert [len(c) for c in chain] == [28]
    assert all(n.startswith("Storage.VeryLong") for n in [*ipsets, *nft, *chain])
    netns(
        tmp_path,
        "ipset restore -file s; ipset list -n; nft -f n; iptables-restore --noflush i",
        s=texts["ipset"],
        n=texts["nftables"],
        i=texts["iptables"],
    )


def test_names_are_sanitised_for_the_tools():
    obj = ExportObject("9 bad name/with;chars", ("20.0.0.0/16",))
    inp = ExportInput(HEADER, (obj,))
    assert "create 9_bad_name_with_chars-v4 " in linux.ipset(inp).text
    assert "\tset az_9_bad_name_with_chars-v4 {" in linux.nftables(inp).text  # no digit first
    assert ":az_9_bad_name_with_chars - [0:0]" in linux.iptables(inp).text


@pytest.mark.realdata
@pytest.mark.parametrize("fmt", ["ipset", "nftables", "iptables"])
def test_same_input_same_bytes_with_the_header(aztags, fmt):
    first = export(aztags, *NAMES, "-f", fmt)
    assert first == export(aztags, *NAMES, "-f", fmt)
    assert first.startswith("# aztags") and "# cloud Public, changeNumber 259" in first


@pytest.mark.slow
def test_ipset_refuses_a_set_larger_than_its_maxelem():
    prefixes = tuple(f"{i >> 16}.{(i >> 8) & 255}.{i & 255}.0/24" for i in range(262_145))
    inp = ExportInput(HEADER, (ExportObject("big", prefixes),))
    with pytest.raises(linux.UsageError, match="more than the 262,144 an ipset"):
        linux.ipset(inp)


def test_iptables_points_at_ipset_for_long_lists():
    prefixes = tuple(f"10.{i >> 8}.{i & 255}.0/24" for i in range(1_001))
    out = linux.iptables(ExportInput(HEADER, (ExportObject("big", prefixes),)))
    assert any("ipset format" in w for w in out.warnings)
    short = linux.iptables(ExportInput(HEADER, (ExportObject("s", prefixes[:5]),)))
    assert short.warnings == ()
