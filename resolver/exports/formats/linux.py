"""Linux packet filters: ipset restore files, nftables sets and rules, iptables-restore files.

Decisions where the tools' documentation leaves a choice (checked here with ipset 7.17,
nftables 1.0.6 and iptables 1.8.9 on kernel 6.x, in a network namespace; the tests
repeat those checks):

- **Families.** ipset and nftables sets hold one family: each object becomes ``NAME-v4`` and/or
  ``NAME-v6``, only for the families it has. iptables-restore and ip6tables-restore are two
  programs, so a list export is ONE of them: the IPv4 file when the list has IPv4 prefixes (its
  IPv6 prefixes are left out with a warning saying to export again with ``--ipv6``), the
  ip6tables file when it has only IPv6. The header names the program.
- **ipset.** ``hash:net`` sets, refreshed by filling ``NAME-v4-tmp`` and ``swap``-ping it in (each
  swap is atomic; restore never removes other sets). ``maxelem`` is a constant: ``create -exist``
  fails when a set exists with other parameters, so a size that followed the list would break
  the next refresh; 262,144 is four times a whole Public file. Set names are at most 31
  characters (ipset's limit) with the ``-v4-tmp`` suffix, so the base name is cut at 24.
- **nftables table.** Sets are table-local and a rule can only jump to a chain of its own table, so
  a set or chain in a table of our own could not be used by the user's rules. Everything goes
  into ``table inet filter``, the table of Debian's stock ``/etc/nftables.conf`` and the
  nftables wiki: declaring it is a no-op when it exists, and a refresh only flushes the sets and
  chains it names. (A ``--table`` flag would make that a choice; not in this module.)
- **nftables sets hold address space.** An interval set refuses overlapping elements, and
  published lists overlap (``AzureCloud.westeurope`` contains ``Sql.WestEurope``), so elements
  are the aggregated prefixes of each family whatever ``--aggregate`` says. The delta is computed
  on those elements (base list = current - added + removed, aggregated), and deletes come before
  adds: ``nft -f`` applies the file as one transaction, so no packet sees a partial list, and an
  interval set refuses an added element that overlaps one still in it (tested: add-then-delete
  fails, delete-then-add passes).
- **Rules.** Accept rules only, in two regular chains ``CHAIN-in`` (inbound rules: Azure prefixes
  are the source, ``--local`` the destination) and ``CHAIN-out`` (the reverse), ``--chain``
  defaulting to AZTAGS; both chains always exist (empty when no rule has that direction) so a
  ``jump`` to them never breaks. The user jumps to them from their own chains before their drop
  policy: a chain of ours with a hook and ``policy accept`` would change nothing, one with
  ``policy drop`` would cut everything the profile does not list (SSH, DNS...). Ports and
  protocol follow the rule; "any" protocol with ports is tcp and udp. ``--local`` limits the
  local side; a family with no ``--local`` address gets no rule (not "any"), with a warning.
  iptables ``--rules`` is a shell script: ``ipset restore`` for the sets, then
  ``iptables-restore --noflush`` and ``ip6tables-restore --noflush`` (each chain flushed and
  refilled in one COMMIT), each part a here-document whose delimiter marks it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from resolver.errors import UsageError
from resolver.exports.model import (
    ExportInput,
    ExportObject,
    ExportOptions,
    Format,
    Output,
    RuleInfo,
    local_networks,
    object_names,
)
from resolver.prefixes import aggregate, family

DEFAULT_CHAIN = "AZTAGS"
NFT_TABLE = "inet filter"
NFT_NAME_MAX = 255  # "name too long, 256 characters maximum allowed" (nft 1.0.6)
IPSET_NAME_MAX = 31  # "setname '...' is longer than 31 characters"
IPSET_MAXELEM = 262_144
IPTABLES_CHAIN_MAX = 28  # "chain name ... too long (must be under 29 chars)"
MULTIPORT_MAX = 15  # xt_multiport: at most 15 ports, a range counting as two
LONG_CHAIN = 1_000  # rules matched one by one past this: point at ipset

FAMILIES = (4, 6)
IPSET_FAMILY = {4: "inet", 6: "inet6"}
NFT_TYPE = {4: "ipv4_addr", 6: "ipv6_addr"}
NFT_IP = {4: "ip", 6: "ip6"}
RESTORE = {4: "iptables-restore", 6: "ip6tables-restore"}
REMOTE = {"inbound": "src", "outbound": "dst"}  # where the Azure prefixes are

_CHAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_INTERFACE = re.compile(r"[A-Za-z0-9_.@+-]{1,15}")


# -- shared ----------------------------------------------------------------------------------------


def _split(prefixes: Iterable[str]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {4: [], 6: []}
    for p in prefixes:
        out[family(p)].append(p)
    return out


def _chains(options: ExportOptions, max_length: int) -> dict[str, str]:
    """Direction -> chain name: ``--chain`` (default AZTAGS) plus ``-in`` / ``-out``."""
    base = options.chain or DEFAULT_CHAIN
    room = max_length - len("-out")
    if not _CHAIN.fullmatch(base) or len(base) > room:
        raise UsageError(
            f"--chain {base!r} cannot name a chain: use letters, digits, '_', '.' and '-', "
            f"starting with a letter, at most {room} characters ('-in'/'-out' are added)."
        )
    return {"inbound": f"{base}-in", "outbound": f"{base}-out"}


def _interface(options: ExportOptions) -> str | None:
    name = options.interface
    if name is not None and not _INTERFACE.fullmatch(name):
        raise UsageError(
            f"--interface {name!r} is not an interface name: at most 15 letters, digits or "
            "'_ . @ + -'."
        )
    return name


def _locals(options: ExportOptions) -> dict[int, list[str]] | None:
    """``--local`` per family, canonical and merged; None when not given (any). (export()
    gives them canonical already; an ExportInput built by hand may not.)"""
    if not options.local:
        return None
    return _split(aggregate(local_networks(options.local)))


def _rule_families(
    obj: ExportObject, local: dict[int, list[str]] | None, skipped: list[str]
) -> list[tuple[int, list[str], list[str] | None]]:
    """(family, prefixes, local addresses or None for any) for each family the rule gets."""
    out = []
    for fam, prefixes in _split(obj.prefixes).items():
        if not prefixes:
            continue
        if local is not None and not local[fam]:
            skipped.append(f"{obj.name} (IPv{fam})")
            continue
        out.append((fam, prefixes, None if local is None else local[fam]))
    return out


def _skipped_warning(skipped: list[str]) -> list[str]:
    if not skipped:
        return []
    return [
        f"{len(skipped)} rule(s) left out because --local gives no address of their family "
        f"(a rule without the local side would allow more): {', '.join(skipped)}"
    ]


def _rule_comment(rule: RuleInfo) -> str:
    return f"{rule.tag} {rule.direction} {rule.protocol} {rule.port_text()}"[:120]


# -- ipset -----------------------------------------------------------------------------------------


def _ipset_bases(names: Sequence[str]) -> list[str]:
    return object_names(
        names,
        allowed=r"A-Za-z0-9_.-",
        max_length=IPSET_NAME_MAX - len("-v4-tmp"),
        first="A-Za-z0-9_",
    )


def _ipset_sets(objects: Sequence[ExportObject]) -> list[tuple[str, int, list[str]]]:
    """(set name, family, prefixes) of every non-empty family of every object."""
    sets = []
    for base, obj in zip(_ipset_bases([o.name for o in objects]), objects, strict=True):
        for fam, prefixes in _split(obj.prefixes).items():
            if not prefixes:
                continue
            if len(prefixes) > IPSET_MAXELEM:
                raise UsageError(
                    f"{obj.name} has {len(prefixes):,} IPv{fam} prefixes, more than the "
                    f"{IPSET_MAXELEM:,} an ipset of this export holds; add --aggregate or "
                    "export fewer tags."
                )
            sets.append((f"{base}-v{fam}", fam, prefixes))
    return sets


def _ipset_create(name: str, fam: int) -> str:
    return f"create {name} hash:net family {IPSET_FAMILY[fam]} maxelem {IPSET_MAXELEM} -exist\n"


def _ipset_restore(sets: Sequence[tuple[str, int, list[str]]]) -> str:
    """Each set filled as ``NAME-tmp`` and swapped in whole."""
    out = []
    for name, fam, _ in sets:
        out += [_ipset_create(name, fam), _ipset_create(f"{name}-tmp", fam), f"flush {name}-tmp\n"]
    for name, _, prefixes in sets:
        out += [f"add {name}-tmp {p}\n" for p in prefixes]
    out += [f"swap {name}-tmp {name}\n" for name, _, _ in sets]
    out += [f"destroy {name}-tmp\n" for name, _, _ in sets]
    return "".join(out)


def ipset(inp: ExportInput) -> Output:
    sets = _ipset_sets(inp.objects)
    usage = (
        "# Load with: ipset restore -file THIS_FILE (fills NAME-tmp, swaps it in, destroys it;\n"
        "# other sets are left alone). Sets: " + ", ".join(name for name, _, _ in sets) + "\n"
    )
    return Output(inp.header.comment() + usage + _ipset_restore(sets))


def ipset_delta(inp: ExportInput) -> Output:
    """``add``/``del`` against the live sets (``-exist``: applying twice is harmless)."""
    delta = inp.delta or ()
    creates, adds, dels = [], [], []
    for base, change in zip(_ipset_bases([d.name for d in delta]), delta, strict=True):
        for fam in FAMILIES:
            if any(family(p) == fam for p in (*change.added, *change.removed)):
                creates.append(_ipset_create(f"{base}-v{fam}", fam))
        adds += [f"add {base}-v{family(p)} {p} -exist\n" for p in change.added]
        dels += [f"del {base}-v{family(p)} {p} -exist\n" for p in change.removed]
    usage = "# Apply with: ipset restore -file THIS_FILE\n"
    if not adds and not dels:
        usage += "# Nothing changed.\n"
    return Output(inp.header.comment() + usage + "".join(creates + adds + dels))


# -- nftables --------------------------------------------------------------------------------------


def _nft_bases(names: Sequence[str]) -> list[str]:
    return object_names(
        names, allowed=r"A-Za-z0-9_.-", max_length=NFT_NAME_MAX - len("-v4"), first="A-Za-z_"
    )


def _nft_elements(prefixes: Iterable[str]) -> dict[int, list[str]]:
    return _split(aggregate(prefixes))


def _nft_declare(sets: Sequence[tuple[str, int]], chains: Sequence[str] = ()) -> str:
    """The table with its sets (and chains) declared: creates what is missing, else no-op."""
    out = [f"table {NFT_TABLE} {{\n"]
    for name, fam in sets:
        out.append(f"\tset {name} {{\n\t\ttype {NFT_TYPE[fam]}\n\t\tflags interval\n\t}}\n")
    for chain in chains:
        out.append(f"\tchain {chain} {{\n\t}}\n")
    out.append("}\n")
    return "".join(out)


def _nft_elements_cmd(verb: str, name: str, elements: Sequence[str]) -> str:
    body = ",\n".join(f"\t{e}" for e in elements)
    return f"{verb} element {NFT_TABLE} {name} {{\n{body}\n}}\n"


def _nft_sets(objects: Sequence[ExportObject]) -> list[tuple[str, int, list[str]]]:
    sets = []
    for base, obj in zip(_nft_bases([o.name for o in objects]), objects, strict=True):
        for fam, elements in _nft_elements(obj.prefixes).items():
            if elements:
                sets.append((f"{base}-v{fam}", fam, elements))
    return sets


def _nft_fill(sets: Sequence[tuple[str, int, list[str]]]) -> str:
    out = []
    for name, _, elements in sets:
        out.append(f"flush set {NFT_TABLE} {name}\n")
        out.append(_nft_elements_cmd("add", name, elements))
    return "".join(out)


def nftables(inp: ExportInput) -> Output:
    sets = _nft_sets(inp.objects)
    usage = (
        f"# Load with: nft -f THIS_FILE (one transaction: the sets are flushed and refilled\n"
        f"# together). Use them from rules of table {NFT_TABLE}, e.g.\n"
        f"#   ip daddr @{sets[0][0]} accept\n"
        if sets
        else ""
    )
    declare = _nft_declare([(name, fam) for name, fam, _ in sets])
    return Output(inp.header.comment() + usage + declare + _nft_fill(sets))


def nftables_delta(inp: ExportInput) -> Output:
    delta = inp.delta or ()
    current = {o.name: o.prefixes for o in inp.objects}
    declared: list[tuple[str, int]] = []
    deletes, adds = [], []
    for base, change in zip(_nft_bases([d.name for d in delta]), delta, strict=True):
        now = current.get(change.name, ())
        old, new = _nft_elements(change.before(now)), _nft_elements(now)
        for fam in FAMILIES:
            old_set, new_set = set(old[fam]), set(new[fam])
            gone = [e for e in old[fam] if e not in new_set]
            came = [e for e in new[fam] if e not in old_set]
            if not gone and not came:
                continue
            name = f"{base}-v{fam}"
            declared.append((name, fam))
            if gone:
                deletes.append(_nft_elements_cmd("delete", name, gone))
            if came:
                adds.append(_nft_elements_cmd("add", name, came))
    usage = (
        "# Apply with: nft -f THIS_FILE. It is one transaction, so no packet sees a partial\n"
        "# list; deletes are written first because an interval set refuses an element that\n"
        "# overlaps one still in it.\n"
    )
    if not declared:
        return Output(inp.header.comment() + usage + "# Nothing changed.\n")
    return Output(inp.header.comment() + usage + _nft_declare(declared) + "".join(deletes + adds))


def _nft_ports(rule: RuleInfo) -> list[str]:
    """The layer-4 part of a rule: nothing for any protocol and port."""
    if rule.any_port:
        if rule.protocol == "any":
            return []
        return [f"meta l4proto {rule.protocol}"]
    ports = rule.port_text(", ")
    spec = f"{{ {ports} }}" if len(rule.ports) > 1 else ports
    if rule.protocol == "any":
        return ["meta l4proto { tcp, udp }", f"th dport {spec}"]
    return [f"{rule.protocol} dport {spec}"]


def nftables_rules(inp: ExportInput) -> Output:
    chains = _chains(inp.options, NFT_NAME_MAX)
    interface = _interface(inp.options)
    local = _locals(inp.options)
    objects = [o for o in inp.objects if o.rule is not None]
    bases = _nft_bases([o.name for o in objects])
    skipped: list[str] = []
    sets: list[tuple[str, int, list[str]]] = []
    rules = []
    for base, obj in zip(bases, objects, strict=True):
        rule = obj.rule
        assert rule is not None  # filtered above
        inbound = REMOTE[rule.direction] == "src"
        remote_key, local_key = ("saddr", "daddr") if inbound else ("daddr", "saddr")
        for fam, prefixes, addresses in _rule_families(obj, local, skipped):
            name = f"{base}-v{fam}"
            sets.append((name, fam, _nft_elements(prefixes)[fam]))
            ip = NFT_IP[fam]
            parts = [f"{ip} {remote_key} @{name}"]
            if addresses is not None:
                parts.append(f"{ip} {local_key} {{ {', '.join(addresses)} }}")
            if interface is not None:
                parts.append(f'{"iifname" if inbound else "oifname"} "{interface}"')
            parts += _nft_ports(rule)
            parts += ["accept", f'comment "{_rule_comment(rule)}"']
            rules.append(f"add rule {NFT_TABLE} {chains[rule.direction]} {' '.join(parts)}\n")
    usage = (
        f"# Load with: nft -f THIS_FILE (one transaction). The chains only accept what the\n"
        f"# profile allows and return the rest: jump to them from base chains of table\n"
        f"# {NFT_TABLE}, before their drop: jump {chains['inbound']} from input (or forward),\n"
        f"# jump {chains['outbound']} from output (or forward).\n"
    )
    declare = _nft_declare([(n, f) for n, f, _ in sets], list(chains.values()))
    flush = "".join(f"flush chain {NFT_TABLE} {c}\n" for c in chains.values())
    return Output(
        inp.header.comment() + usage + declare + flush + _nft_fill(sets) + "".join(rules),
        tuple(_skipped_warning(skipped)),
    )


# -- iptables --------------------------------------------------------------------------------------


def iptables(inp: ExportInput) -> Output:
    """The IPv4 list for iptables-restore, or, for a list with only IPv6, the ip6tables one."""
    prefixes = _split(inp.all_prefixes)
    fam = 4 if prefixes[4] else 6
    warnings = []
    if fam == 4 and prefixes[6]:
        warnings.append(
            f"iptables-restore takes IPv4 only: {len(prefixes[6]):,} IPv6 prefixes are left "
            "out; export again with --ipv6 for ip6tables-restore."
        )
    names = object_names(
        [o.name for o in inp.objects],
        allowed=r"A-Za-z0-9_.-",
        max_length=IPTABLES_CHAIN_MAX,
        first="A-Za-z_",
    )
    lines = ["*filter\n"]
    lines += [f":{name} - [0:0]\n" for name in names]
    count = 0
    for name, obj in zip(names, inp.objects, strict=True):
        lines.append(f"-F {name}\n")
        mine = _split(obj.prefixes)[fam]
        count = max(count, len(mine))
        lines += [f"-A {name} -d {p} -j ACCEPT\n" for p in mine]
    lines.append("COMMIT\n")
    if count > LONG_CHAIN:
        warnings.append(
            f"iptables matches a chain's {count:,} rules one by one; for long lists the ipset "
            "format with '-m set --match-set NAME dst' is faster."
        )
    usage = (
        f"# IPv{fam}: load with {RESTORE[fam]} --noflush THIS_FILE (the chain is flushed and\n"
        f"# refilled in one commit; other chains are left alone). It accepts packets TO the\n"
        f"# prefixes: jump to {names[0]} from OUTPUT or FORWARD.\n"
    )
    return Output(inp.header.comment() + usage + "".join(lines), tuple(warnings))


def _multiport(ports: Sequence[tuple[int, int]]) -> list[str]:
    """Port ranges in ``--dports`` groups of at most 15 ports (a range counts as two)."""
    groups: list[list[str]] = [[]]
    used = 0
    for lo, hi in ports:
        cost = 1 if lo == hi else 2
        if used + cost > MULTIPORT_MAX:
            groups.append([])
            used = 0
        groups[-1].append(str(lo) if lo == hi else f"{lo}:{hi}")
        used += cost
    return [",".join(g) for g in groups]


def _iptables_ports(rule: RuleInfo) -> list[str]:
    """The layer-4 matches of a rule, one string per iptables rule to write."""
    protocols = ["tcp", "udp"] if rule.protocol == "any" else [rule.protocol]
    if rule.any_port:
        return [""] if rule.protocol == "any" else [f" -p {p}" for p in protocols]
    if len(rule.ports) == 1:
        lo, hi = rule.ports[0]
        port = str(lo) if lo == hi else f"{lo}:{hi}"
        return [f" -p {p} --dport {port}" for p in protocols]
    return [
        f" -p {p} -m multiport --dports {group}"
        for p in protocols
        for group in _multiport(rule.ports)
    ]


def iptables_rules(inp: ExportInput) -> Output:
    chains = _chains(inp.options, IPTABLES_CHAIN_MAX)
    interface = _interface(inp.options)
    local = _locals(inp.options)
    objects = [o for o in inp.objects if o.rule is not None]
    bases = _ipset_bases([o.name for o in objects])
    skipped: list[str] = []
    sets: list[tuple[str, int, list[str]]] = []
    rules: dict[int, list[str]] = {4: [], 6: []}
    for base, obj in zip(bases, objects, strict=True):
        rule = obj.rule
        assert rule is not None  # filtered above
        remote_side = REMOTE[rule.direction]
        local_flag = "-d" if remote_side == "src" else "-s"
        iface = ""
        if interface is not None:
            iface = f" {'-i' if remote_side == 'src' else '-o'} {interface}"
        for fam, prefixes, addresses in _rule_families(obj, local, skipped):
            name = f"{base}-v{fam}"
            sets.append((name, fam, prefixes))
            chain = chains[rule.direction]
            for address in addresses if addresses is not None else [None]:
                where = f" {local_flag} {address}" if address else ""
                for l4 in _iptables_ports(rule):
                    rules[fam].append(
                        f"-A {chain} -m set --match-set {name} {remote_side}{where}{iface}{l4}"
                        f' -m comment --comment "{_rule_comment(rule)}" -j ACCEPT\n'
                    )
    usage = (
        "# Run with: sh THIS_FILE (as root). It loads the ipsets (each filled aside and swapped\n"
        "# in), then replaces the chains in one commit per family with iptables-restore and\n"
        "# ip6tables-restore --noflush (other chains are left alone). The chains only accept\n"
        "# what the profile allows and return the rest: jump to them before your drop, e.g.\n"
        f"#   iptables -A INPUT -j {chains['inbound']}; "
        f"iptables -A OUTPUT -j {chains['outbound']}\n"
        "# (and the same with ip6tables; FORWARD for a router).\n"
    )
    parts = [
        "#!/bin/sh\n",
        inp.header.comment(),
        usage,
        "set -e\n",
        "ipset restore <<'AZTAGS_IPSET'\n",
        _ipset_restore(sets),
        "AZTAGS_IPSET\n",
    ]
    for fam, marker in ((4, "AZTAGS_IPTABLES"), (6, "AZTAGS_IP6TABLES")):
        parts += [f"{RESTORE[fam]} --noflush <<'{marker}'\n", "*filter\n"]
        parts += [f":{c} - [0:0]\n" for c in chains.values()]
        parts += [f"-F {c}\n" for c in chains.values()]
        parts += rules[fam]
        parts += ["COMMIT\n", f"{marker}\n"]
    return Output("".join(parts), tuple(_skipped_warning(skipped)))


FORMATS = (
    Format(
        "ipset",
        "ipset restore file: hash:net sets per family, each filled aside and swapped in",
        ipset,
        delta=ipset_delta,
    ),
    Format(
        "nftables",
        "nft -f file: interval sets per family (table inet filter), replaced in one transaction",
        nftables,
        delta=nftables_delta,
        rules=nftables_rules,
    ),
    Format(
        "iptables",
        "iptables-restore file (ip6tables-restore with --ipv6); --rules: ipsets + -m set script",
        iptables,
        rules=iptables_rules,
    ),
)
