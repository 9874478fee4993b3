"""Cisco: ASA ``object-group network`` (with ``--rules``: access lists) and IOS / IOS-XE
``ip prefix-list`` / ``ipv6 prefix-list``.

ASA: one object-group per object, IPv4 and IPv6 mixed (the ASA allows it; such a group cannot
be used for NAT), IPv4 as address and dotted mask, IPv6 as prefix/length. There is no
documented member cap, so groups are not split. The delta edits the groups in place
(``network-object`` then ``no network-object``), since an ASA cannot empty a group in use.

IOS: one list per family (``NAME-v4``, ``NAME-v6``); entries are exact prefixes (no ``ge``/``le``),
as Cisco documents them. Sequence numbers are a function of the prefix alone, so the same
prefix has the same ``seq`` in every export, full or delta, whatever else the list holds:

- IPv4: the prefix's first address as an integer, plus 1 (``20.38.96.0/20`` -> 338124801).
  Prefixes that do not overlap have different first addresses, so a list of them never
  clashes, and the device shows the entries in address order.
- IPv6: 1 + the first 32 bits of SHA-1 of the prefix text, modulo 4294967294 (no 32-bit
  number keeps 128-bit addresses apart and in order; a clash is unlikely: none among the
  12,545 IPv6 prefixes of the January 2025 Public file).
- The rare clash (two prefixes of one list with the same start address, e.g. a /16 and a /24
  inside it, or two IPv6 hashes) is settled by taking the next free number, in sorted order.

Position in the sorted list is not used: one insertion would renumber every entry after it. A
delta compares the ``(seq, prefix)`` pairs of the device's list (rebuilt from the current list
and the delta) with the new list's: new pairs are added first, then stale ones are removed
with ``no ... seq N permit P``; if a new entry needs a number a stale entry still holds, that
entry is removed just before (IOS does not take two entries with one number).
"""

from __future__ import annotations

import hashlib

from resolver.exports.formats._vendor import (
    address_mask,
    describe,
    host_note,
    previous,
    rule_base,
    split,
    with_prefixes,
)
from resolver.exports.model import ExportInput, ExportObject, Format, Output, object_names
from resolver.prefixes import family, to_int

# -- ASA -----------------------------------------------------------------------------------------


# ASA object names: <= 64 characters of letters, digits and .!@#$%^&()-_{}; we keep to the
# safe subset.
def asa_names(names: list[str]) -> list[str]:
    return object_names(names, allowed=r"A-Za-z0-9_.-", max_length=64)


# The ASA takes `description` up to 200 characters and ACL remarks up to 100 [unverified: from
# the ASA command reference as remembered].
ASA_DESCRIPTION = 200
ASA_REMARK = 100


def _asa_entry(prefix: str) -> str:
    if family(prefix) == 4:
        address, mask = address_mask(prefix)
        return f"network-object {address} {mask}"
    return f"network-object {prefix}"


def _asa_comment(inp: ExportInput) -> str:
    # The ASA CLI has no inline comments; whole lines starting with "!" are skipped when a
    # configuration is pasted or copied in (show running-config prints them as separators).
    return inp.header.comment("!")


def _asa_group(name: str, description: str, prefixes: tuple[str, ...]) -> str:
    lines = [f"object-group network {name}", f" description {description[:ASA_DESCRIPTION]}"]
    lines += [f" {_asa_entry(p)}" for p in prefixes]
    return "".join(f"{line}\n" for line in lines)


def asa(inp: ExportInput) -> Output:
    names = asa_names([o.name for o in inp.objects])
    note, warnings = host_note(inp, "cisco-asa", "!")
    text = _asa_comment(inp) + note
    for name, obj in zip(names, inp.objects, strict=True):
        text += _asa_group(name, describe(inp, obj, ASA_DESCRIPTION), obj.prefixes)
    return Output(text, warnings)


def asa_delta(inp: ExportInput) -> Output:
    deltas = inp.delta or ()
    names = dict(
        zip(
            [d.name for d in deltas],
            asa_names([d.name for d in deltas]),
            strict=True,
        )
    )
    current = {o.name for o in inp.objects}
    text = _asa_comment(inp)
    warnings = []
    for d in deltas:  # adds first: no group ever loses an entry it still needs
        if d.added:
            text += f"object-group network {names[d.name]}\n"
            text += "".join(f" {_asa_entry(p)}\n" for p in d.added)
    for d in deltas:
        if d.removed:
            text += f"object-group network {names[d.name]}\n"
            text += "".join(f" no {_asa_entry(p)}\n" for p in d.removed)
        if d.name not in current and d.removed:
            warnings.append(
                f"Object-group {names[d.name]} is no longer exported: the delta removes its "
                "entries, which the ASA refuses for the last entry while an access list uses "
                f"the group; delete it with 'no object-group network {names[d.name]}' once "
                "nothing uses it."
            )
    if not any(d.added or d.removed for d in deltas):
        text += "! no changes\n"
    return Output(text, tuple(warnings))


def _asa_ports(ports: tuple[tuple[int, int], ...], any_port: bool) -> list[str]:
    if any_port:
        return [""]
    return [f" eq {lo}" if lo == hi else f" range {lo} {hi}" for lo, hi in ports]


def asa_rules(inp: ExportInput) -> Output:
    """Object-groups plus one access list per direction: inbound rules (Azure is the source,
    the workload the destination) in ``<base>-in``, outbound ones (the workload to Azure) in
    ``<base>-out``; each entry permits exactly the rule's protocol (tcp and udp for "any")
    and ports. The workload side is ``--local`` (an object-group) or ``any`` by default.
    ``--interface IF`` (the interface facing Azure) binds the lists with ``access-group``:
    ``-in`` on traffic entering IF, ``-out`` on traffic leaving it."""
    base = rule_base(inp)
    objects = [o for o in inp.objects if o.rule is not None]
    group_names = asa_names([o.name for o in objects])
    local_name, acl_in, acl_out = asa_names([f"{base}-local", f"{base}-in", f"{base}-out"])
    note, warnings = host_note(inp, "cisco-asa", "!")
    text = _asa_comment(inp) + note
    if inp.options.local:
        local = f"object-group {local_name}"
        text += "! the workload's side of every rule: --local\n"
        text += _asa_group(local_name, "aztags --local: the workload", inp.options.local)
    else:
        local = "any"
        text += "! the workload's side of every rule: any (pass --local CIDR to narrow it)\n"
    for name, obj in zip(group_names, objects, strict=True):
        text += _asa_group(name, describe(inp, obj, ASA_DESCRIPTION), obj.prefixes)
    used = {"inbound": False, "outbound": False}
    for name, obj in zip(group_names, objects, strict=True):
        rule = obj.rule
        assert rule is not None  # filtered above
        inbound = rule.direction == "inbound"
        acl = acl_in if inbound else acl_out
        used[rule.direction] = True
        remark = f"{obj.name}: {rule.purpose}" if rule.purpose else obj.name
        text += f"access-list {acl} remark {remark[:ASA_REMARK]}\n"
        azure = f"object-group {name}"
        source, destination = (azure, local) if inbound else (local, azure)
        for protocol in rule.protocols:
            for port in _asa_ports(rule.ports, rule.any_port):
                text += (
                    f"access-list {acl} extended permit {protocol} {source} {destination}{port}\n"
                )
    interface = inp.options.interface
    if interface:
        text += (
            f"! access-group replaces any access list bound to {interface} in that direction,"
            " and its implicit deny then drops all other traffic there\n"
        )
        if used["inbound"]:
            text += f"access-group {acl_in} in interface {interface}\n"
        if used["outbound"]:
            text += f"access-group {acl_out} out interface {interface}\n"
    else:
        text += "! bind the lists with: access-group <list> in|out interface <name> (--interface)\n"
    return Output(text, warnings)


# -- IOS -----------------------------------------------------------------------------------------


# Portable IOS name rule (<= 32, first alphabetic, then [A-Za-z0-9_-]); the base
# keeps 3 characters for the "-v4"/"-v6" suffix.
def ios_names(names: list[str]) -> list[str]:
    return object_names(names, allowed=r"A-Za-z0-9_-", max_length=29, first="A-Za-z")


IOS_DESCRIPTION = 80  # FASTPATH-family limit; the IOS maximum is unverified
SEQ_MAX = 4294967294  # IOS: seq <1-4294967294>


def _seq_start(prefix: str) -> int:
    if family(prefix) == 4:
        start = to_int(prefix.partition("/")[0])[1] + 1
    else:
        start = 1 + int(hashlib.sha1(prefix.encode()).hexdigest()[:8], 16) % SEQ_MAX
    return (start - 1) % SEQ_MAX + 1


def seqs(prefixes: tuple[str, ...]) -> dict[str, int]:
    """Each prefix of one list (sorted, one family) -> its sequence number (module doc)."""
    taken: set[int] = set()
    out = {}
    for prefix in prefixes:
        seq = _seq_start(prefix)
        while seq in taken:
            seq = seq % SEQ_MAX + 1
        taken.add(seq)
        out[prefix] = seq
    return out


IosList = tuple[ExportObject, str, str, tuple[str, ...]]


def _ios_lists(objects: tuple[ExportObject, ...]) -> list[IosList]:
    """(object, command, list name, prefixes) per object and family, IPv4 first."""
    bases = ios_names([o.name for o in objects])
    out: list[IosList] = []
    for base, obj in zip(bases, objects, strict=True):
        v4, v6 = split(obj.prefixes)
        out.append((obj, "ip", f"{base}-v4", v4))
        out.append((obj, "ipv6", f"{base}-v6", v6))
    return out


def _ios_description(inp: ExportInput, obj: ExportObject, command: str, name: str) -> str:
    return f"{command} prefix-list {name} description {describe(inp, obj, IOS_DESCRIPTION)}\n"


def ios(inp: ExportInput) -> Output:
    note, warnings = host_note(inp, "cisco-ios", "!")
    text = inp.header.comment("!") + note
    for obj, command, name, prefixes in _ios_lists(inp.objects):
        if not prefixes:
            continue
        text += _ios_description(inp, obj, command, name)
        for prefix, seq in seqs(prefixes).items():
            text += f"{command} prefix-list {name} seq {seq} permit {prefix}\n"
    return Output(text, warnings)


def ios_delta(inp: ExportInput) -> Output:
    base = previous(inp)
    current = {o.name: o.prefixes for o in inp.objects}
    before = with_prefixes(inp, base)
    now = with_prefixes(inp, {name: current.get(name, ()) for name in base})
    adds: list[str] = []
    swaps: list[str] = []
    removes: list[str] = []
    warnings = []
    text = inp.header.comment("!")
    old_lists = _ios_lists(before)
    new_lists = _ios_lists(now)
    for (_, _, _, old), (obj, command, name, new) in zip(old_lists, new_lists, strict=True):
        if new:
            text += _ios_description(inp, obj, command, name)
        old_pairs = set(seqs(old).items())
        new_pairs = set(seqs(new).items())
        stale = {seq: prefix for prefix, seq in old_pairs - new_pairs}
        for prefix, seq in sorted(new_pairs - old_pairs, key=lambda x: x[1]):
            line = f"{command} prefix-list {name} seq {seq} permit {prefix}"
            if seq in stale:  # the number is still held by an entry that goes
                swaps.append(f"no {command} prefix-list {name} seq {seq} permit {stale.pop(seq)}")
                swaps.append(line)
            else:
                adds.append(line)
        removes += [
            f"no {command} prefix-list {name} seq {seq} permit {prefix}"
            for seq, prefix in sorted(stale.items())
        ]
        if old and not new:
            warnings.append(
                f"{name} loses its last entry: on many platforms an empty or missing prefix "
                "list permits everything; remove its uses, or add an explicit deny entry."
            )
    lines = adds + swaps + removes
    text += "".join(f"{line}\n" for line in lines) or "! no changes\n"
    return Output(text, tuple(warnings))


FORMATS = (
    Format(
        "cisco-asa",
        "Cisco ASA object-group network (IPv4 address+mask, IPv6 prefix); --rules: access lists",
        asa,
        delta=asa_delta,
        rules=asa_rules,
    ),
    Format(
        "cisco-ios",
        "Cisco IOS/IOS-XE ip and ipv6 prefix-list, one per family, seq numbers stable per prefix",
        ios,
        delta=ios_delta,
    ),
)
