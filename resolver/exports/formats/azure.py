"""Azure NSG security rules and Azure Firewall IP Groups as ARM templates.

Both are ARM deployment templates (``az deployment group create --template-file F``). JSON
takes no comments: the header goes to the template's ``metadata``.

**azure-nsg** deploys security rules as child resources of an existing NSG
(``Microsoft.Network/networkSecurityGroups/securityRules``), named by the parameter
``networkSecurityGroupName``: a deployment adds or updates these rules and leaves the NSG's
other rules alone (a PUT of the whole NSG would delete them). Each rule depends on the one before
it, because ARM deploys resources in parallel and concurrent changes to one NSG fail. A rule
holds one family (``ResourceCannotContainAddressPrefixesFromDifferentAddressFamilies``), so each
object gives ``<name>-v4`` and ``<name>-v6`` rules.

Limits [doc: azure-docs includes/azure-virtual-network-limits.md]: 1,000 rules per NSG, and
4,000 IP addresses and ranges per NSG, counted separately for sources and destinations (older
versions of the page gave 4,000 per rule); the priority is 100..4096. Rules hold at most 4,000
prefixes (``-v4``, ``-v4-2``...); when the rules need more than one NSG on either side, they are
spread over ``networkSecurityGroupName``, ``networkSecurityGroupName2``... with a warning, since
one NSG cannot hold them (allow rules split over a subnet's and a NIC's NSG do not add up: both
must allow). Priorities start at ``--priority-base`` (1000) and go up in steps of 10 in each
NSG, leaving room for rules of one's own in between; a set that would pass 4096 is an error.

Without ``--rules`` a list says nothing about traffic, so the template asks at deployment:
``direction`` (Inbound or Outbound), ``protocol`` and ``destinationPortRange`` have no default
(``*`` has to be said out loud), ``access`` defaults to Allow. Each chunk is written as an
inbound rule (``<name>-v4-in``: the prefixes are the source) and an outbound one (``-out``: the
destination), each deployed only when ``direction`` says so; the prefixes are in
``variables``, once. The local side is ``--local`` (by family), ``*`` by default.

With ``--rules`` each profile rule becomes rules with its direction, protocol and ports: for an
inbound rule the Azure side is the source and the local side (``--local``, ``*`` by default)
the destination, for an outbound one the reverse. A rule whose tag has ``NSG`` in its
``networkFeatures`` names the service tag itself (``"sourceAddressPrefix": "Storage.WestUS"``):
Azure keeps it current, no refresh needed. Only a tag that NSGs cannot use is written as
prefixes, with a warning. A service tag covers both families: with ``--local`` addresses of
both families such a rule is written once per family. With ``--local`` given, a rule family
with no ``--local`` address of that family is left out (with a warning): ``*`` would allow
more than asked.

**azure-ipgroup** deploys ``Microsoft.Network/ipGroups`` resources, ``ipg-<name>`` (or
``--name`` as given), at most 5,000 addresses each (``-2``, ``-3``... with a warning). A PUT of
the resource replaces its addresses as a whole. Microsoft documents IP Groups with IPv4
addresses only, and whether IPv6 is rejected is not documented [unverified];
this export writes IPv4 only and says how many IPv6 prefixes it left out.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from resolver.errors import NotFoundError, UsageError
from resolver.exports.model import (
    ExportInput,
    ExportObject,
    Format,
    Output,
    RuleInfo,
    chunks,
    object_names,
)
from resolver.prefixes import family

SCHEMA = "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#"
API = "2023-09-01"
RULE_TYPE = "Microsoft.Network/networkSecurityGroups/securityRules"
PER_RULE = 4000  # prefixes in one rule (the per-NSG limit caps a rule too)
PER_NSG = 4000  # addresses and ranges per NSG, sources and destinations counted apart
RULES_PER_NSG = 1000
STEP = 10  # priority step between the rules written
PRIORITY_MAX = 4096
PER_IPGROUP = 5000
NSG_PARAM = "networkSecurityGroupName"

Side = str | tuple[str, ...]  # one value ("*", a service tag, a parameter) or a prefix list


@dataclass(frozen=True, slots=True)
class _Rule:
    """One NSG security rule before it is written as ARM JSON."""

    name: str
    direction: str  # Inbound | Outbound
    protocol: str  # Tcp | Udp | * | an ARM expression
    ports: tuple[str, ...]  # ("443",), ("29876-29877",), ("*",) or (expression,)
    source: Side
    destination: Side
    description: str
    condition: str | None = None  # deployed only when this ARM expression is true
    variable: str | None = None  # the remote side's prefixes are this variable
    access: str = "Allow"

    @property
    def remote_side(self) -> str:
        """The side the Azure prefixes are on: the source of inbound rules."""
        return "source" if self.direction == "Inbound" else "destination"

    def addresses(self, side: str) -> int:
        value = self.source if side == "source" else self.destination
        return 0 if isinstance(value, str) else len(value)


def _rule_name(base: str, suffix: str = "") -> str:
    """Up to 80 characters, from a word character to a word character or ``_``."""
    name = base + suffix
    return name if re.match(r"\w", name[-1]) else name + "_"


def _names(inp: ExportInput) -> list[str]:
    return object_names(
        [o.name for o in inp.objects], allowed="A-Za-z0-9_.-", first="A-Za-z0-9_", max_length=68
    )


def _by_family(prefixes: Sequence[str]) -> dict[int, tuple[str, ...]]:
    return {fam: tuple(p for p in prefixes if family(p) == fam) for fam in (4, 6)}


def _local(inp: ExportInput) -> dict[int, Side]:
    """The local side per family: ``--local`` addresses of that family, ``*`` without
    ``--local``, and no entry for a family ``--local`` has no address in. With ``--ipv4`` or
    ``--ipv6`` and no ``--local``, the whole space of that family (``0.0.0.0/0``), so that a
    rule naming a service tag (which holds both families) stays within the family asked."""
    if not inp.options.local:
        if inp.options.family == 4:
            return {4: ("0.0.0.0/0",)}
        if inp.options.family == 6:
            return {6: ("::/0",)}
        return {4: "*", 6: "*"}
    return {fam: p for fam, p in _by_family(inp.options.local).items() if p}


def _description(text: str) -> str:
    return re.sub(r"[^ -~]", "_", text)[:140]


def _tags(obj: ExportObject) -> str:
    return " ".join(obj.tags) if len(obj.tags) <= 3 else f"{' '.join(obj.tags[:3])} +more"


def _arm(text: str) -> str:
    """An ARM expression string literal."""
    return "'" + text.replace("'", "''") + "'"


# -- NSG: placing rules in NSGs, priorities, the template ------------------------------------------


def _place(rules: list[list[_Rule]]) -> list[list[list[_Rule]]]:
    """Groups of alternative rules (the -in/-out pair of a chunk, or one rule) spread over
    NSGs: a new NSG when one more group would pass a limit."""
    nsgs: list[list[list[_Rule]]] = [[]]
    used = {"source": 0, "destination": 0}
    for group in rules:
        need = {s: max(r.addresses(s) for r in group) for s in used}
        over = any(used[s] + need[s] > PER_NSG for s in used)
        if nsgs[-1] and (over or len(nsgs[-1]) >= RULES_PER_NSG):
            nsgs.append([])
            used = {"source": 0, "destination": 0}
        nsgs[-1].append(group)
        for s in used:
            used[s] += need[s]
    return nsgs


def _properties(rule: _Rule, priority: int) -> dict[str, object]:
    props: dict[str, object] = {
        "description": rule.description,
        "priority": priority,
        "direction": rule.direction,
        "access": rule.access,
        "protocol": rule.protocol,
        "sourcePortRange": "*",
    }
    if len(rule.ports) == 1:
        props["destinationPortRange"] = rule.ports[0]
    else:
        props["destinationPortRanges"] = list(rule.ports)
    for side, value in (("source", rule.source), ("destination", rule.destination)):
        if rule.variable and side == rule.remote_side:
            props[f"{side}AddressPrefixes"] = f"[variables({_arm(rule.variable)})]"
        elif isinstance(value, str):
            props[f"{side}AddressPrefix"] = value
        else:
            props[f"{side}AddressPrefixes"] = list(value)
    return props


def _template(
    inp: ExportInput,
    groups: list[list[_Rule]],
    parameters: dict[str, object],
    variables: dict[str, list[str]],
    what: str,
) -> Output:
    warnings: list[str] = []
    nsgs = _place(groups)
    base = inp.options.priority_base
    last = base + STEP * (max(len(n) for n in nsgs) - 1)
    if last > PRIORITY_MAX:
        raise UsageError(
            f"The {what} need {max(len(n) for n in nsgs)} priorities from {base} in steps of "
            f"{STEP}, up to {last}, past the NSG maximum {PRIORITY_MAX}; lower --priority-base "
            "(100 is the lowest) or export fewer tags."
        )
    if len(nsgs) > 1:
        total = sum(max(r.addresses(r.remote_side) for r in g) for g in groups)
        warnings.append(
            f"The {what} hold {total:,} prefixes in {len(groups)} rules, more than one NSG can "
            f"take ({PER_NSG:,} source and {PER_NSG:,} destination prefixes, {RULES_PER_NSG:,} "
            f"rules): they are spread over {len(nsgs)} NSGs ({NSG_PARAM}, {NSG_PARAM}2...). "
            "Allow rules split over NSGs do not add up; use the service tag itself, "
            "--aggregate, or a narrower tag."
        )
    params: dict[str, object] = {}
    resources = []
    for k, nsg in enumerate(nsgs, 1):
        param = NSG_PARAM if k == 1 else f"{NSG_PARAM}{k}"
        params[param] = {
            "type": "string",
            "metadata": {"description": f"The existing NSG that receives rule set {k}."},
        }
        previous: list[str] = []
        for i, group in enumerate(nsg):
            ids = []
            for rule in group:
                resource: dict[str, object] = {
                    "type": RULE_TYPE,
                    "apiVersion": API,
                    "name": f"[concat(parameters({_arm(param)}), {_arm('/' + rule.name)})]",
                }
                if rule.condition:
                    resource["condition"] = rule.condition
                if previous:
                    resource["dependsOn"] = previous
                resource["properties"] = _properties(rule, base + STEP * i)
                resources.append(resource)
                ids.append(
                    f"[resourceId({_arm(RULE_TYPE)}, parameters({_arm(param)}), {_arm(rule.name)})]"
                )
            previous = ids
    doc: dict[str, object] = {
        "$schema": SCHEMA,
        "contentVersion": "1.0.0.0",
        "metadata": {
            "_generator": {"name": "aztags", "version": inp.header.version or "unknown"},
            "description": "; ".join(inp.header.lines()),
        },
        "parameters": {**params, **parameters},
    }
    if variables:
        doc["variables"] = variables
    doc["resources"] = resources
    return Output(json.dumps(doc, indent=2) + "\n", tuple(warnings))


def _chunk_warning(obj: ExportObject, fam: int, count: int, pieces: int, unit: str) -> str:
    return (
        f"{obj.name} IPv{fam}: {count:,} prefixes split into {pieces} {unit} of at most "
        f"{PER_RULE if unit == 'rules' else PER_IPGROUP:,}."
    )


def nsg_list(inp: ExportInput) -> Output:
    """The objects as rules whose traffic is chosen at deployment (see the module doc)."""
    warnings: list[str] = []
    local = _local(inp)
    left_out: dict[int, list[str]] = {}
    groups: list[list[_Rule]] = []
    variables: dict[str, list[str]] = {}
    for name, obj in zip(_names(inp), inp.objects, strict=True):
        for fam, prefixes in _by_family(obj.prefixes).items():
            if not prefixes:
                continue
            if fam not in local:
                left_out.setdefault(fam, []).append(obj.name)
                continue
            pieces = chunks(prefixes, PER_RULE)
            if len(pieces) > 1:
                warnings.append(_chunk_warning(obj, fam, len(prefixes), len(pieces), "rules"))
            for i, piece in enumerate(pieces):
                base = f"{name}-v{fam}" + (f"-{i + 1}" if i else "")
                variables[base] = list(piece)
                groups.append([_either(d, base, piece, local[fam], obj, inp) for d in DIRECTIONS])
    warnings += _no_local(left_out)
    if not groups:
        raise NotFoundError(_nothing(inp))
    parameters = {
        "direction": {
            "type": "string",
            "allowedValues": ["Inbound", "Outbound"],
            "metadata": {
                "description": "Inbound: the listed prefixes are the source; "
                "Outbound: the destination."
            },
        },
        "protocol": {
            "type": "string",
            "allowedValues": ["Tcp", "Udp", "Icmp", "*"],
            "metadata": {"description": "The protocol the rules allow (* for any)."},
        },
        "destinationPortRange": {
            "type": "string",
            "metadata": {"description": "One port or range (443, 8000-8080), * for any."},
        },
        "access": {"type": "string", "allowedValues": ["Allow", "Deny"], "defaultValue": "Allow"},
    }
    out = _template(inp, groups, parameters, variables, "rules of this list")
    return Output(out.text, (*warnings, *out.warnings))


DIRECTIONS = ("Inbound", "Outbound")


def _either(
    direction: str,
    base: str,
    piece: Sequence[str],
    local: Side,
    obj: ExportObject,
    inp: ExportInput,
) -> _Rule:
    """One of a chunk's two rules, deployed when the ``direction`` parameter names it."""
    inbound = direction == "Inbound"
    return _Rule(
        name=_rule_name(base, "-in" if inbound else "-out"),
        direction=direction,
        protocol="[parameters('protocol')]",
        ports=("[parameters('destinationPortRange')]",),
        source=tuple(piece) if inbound else local,
        destination=local if inbound else tuple(piece),
        description=_description(f"aztags {_tags(obj)}; changeNumber {inp.header.change_number}"),
        condition=f"[equals(parameters('direction'), {_arm(direction)})]",
        variable=base,
        access="[parameters('access')]",
    )


def _no_local(left_out: dict[int, list[str]]) -> list[str]:
    """One warning per family: the objects whose rules of that family are left out."""
    return [
        f"No --local address is IPv{fam}, so the IPv{fam} rules of {', '.join(names)} are left "
        "out (any local address would allow more than asked)."
        for fam, names in sorted(left_out.items())
    ]


def _nothing(inp: ExportInput) -> str:
    return (
        f"No NSG rule can be written ({inp.header.query}): no --local address has the family "
        "of the prefixes; add one or drop --local."
    )


def nsg_rules(inp: ExportInput) -> Output:
    """A profile's rules as NSG security rules (see the module doc)."""
    warnings: list[str] = []
    local = _local(inp)
    left_out: dict[int, list[str]] = {}
    groups: list[list[_Rule]] = []
    for name, obj in zip(_names(inp), inp.objects, strict=True):
        rule = obj.rule
        if rule is None:
            continue
        for fam, remote, suffix in _remote_sides(obj, rule, local, warnings):
            if fam not in local:
                left_out.setdefault(fam, [])
                if obj.name not in left_out[fam]:
                    left_out[fam].append(obj.name)
                continue
            inbound = rule.direction == "inbound"
            groups.append(
                [
                    _Rule(
                        name=_rule_name(name, suffix),
                        direction="Inbound" if inbound else "Outbound",
                        protocol={"tcp": "Tcp", "udp": "Udp"}.get(rule.protocol, "*"),
                        ports=tuple(str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in rule.ports)
                        if not rule.any_port
                        else ("*",),
                        source=remote if inbound else local[fam],
                        destination=local[fam] if inbound else remote,
                        description=_description(
                            f"aztags {rule.tag}" + (f": {rule.purpose}" if rule.purpose else "")
                        ),
                    )
                ]
            )
    warnings += _no_local(left_out)
    if not groups:
        raise NotFoundError(_nothing(inp))
    out = _template(inp, groups, {}, {}, "profile's rules")
    return Output(out.text, (*warnings, *out.warnings))


def _remote_sides(
    obj: ExportObject, rule: RuleInfo, local: dict[int, Side], warnings: list[str]
) -> list[tuple[int, Side, str]]:
    """(family, the Azure side, name suffix) of each NSG rule a profile rule becomes."""
    if rule.nsg_tag:
        # The tag covers both families; only the local side needs one family per rule, for
        # the families the tag has (in this query).
        fams = sorted({family(p) for p in obj.prefixes})
        if all(v == "*" for v in local.values()):
            return [(fams[0], rule.tag, "")]
        usable = [f for f in fams if f in local]
        return [(f, rule.tag, f"-v{f}" if len(usable) > 1 else "") for f in fams]
    warnings.append(
        f"{obj.name}: tag {rule.tag} has no NSG in its networkFeatures, so NSGs cannot name it: "
        "its prefixes are written instead, and need a new export when the tag changes."
    )
    sides: list[tuple[int, Side, str]] = []
    for fam, prefixes in _by_family(obj.prefixes).items():
        pieces = chunks(prefixes, PER_RULE) if prefixes else []
        if len(pieces) > 1:
            warnings.append(_chunk_warning(obj, fam, len(prefixes), len(pieces), "rules"))
        sides += [
            (fam, tuple(p), f"-v{fam}" + (f"-{i + 1}" if i else "")) for i, p in enumerate(pieces)
        ]
    return sides


# -- IP Groups -------------------------------------------------------------------------------------


def ipgroups(inp: ExportInput) -> Output:
    h = inp.header
    warnings: list[str] = []
    raw = [o.name for o in inp.objects]
    bases = object_names(
        raw if inp.options.name else [f"ipg-{n}" for n in raw],
        allowed="A-Za-z0-9_.-",
        first="A-Za-z0-9",
        max_length=74,
    )
    resources = []
    for base, obj in zip(bases, inp.objects, strict=True):
        v4, v6 = obj.ipv4, obj.ipv6
        if v6:
            warnings.append(
                f"{obj.name}: {len(v6):,} IPv6 prefixes left out (IP Groups are documented "
                "with IPv4 addresses only)."
            )
        if not v4:
            continue
        pieces = chunks(v4, PER_IPGROUP)
        if len(pieces) > 1:
            warnings.append(_chunk_warning(obj, 4, len(v4), len(pieces), "IP Groups"))
        tags = {
            "serviceTags": re.sub(r"[^ -~]", "_", " ".join(obj.tags))[:256],
            "changeNumber": str(h.change_number),
            "generator": "aztags",
        }
        for i, piece in enumerate(pieces):
            resources.append(
                {
                    "type": "Microsoft.Network/ipGroups",
                    "apiVersion": API,
                    "name": _rule_name(base, f"-{i + 1}" if i else ""),
                    "location": "[parameters('location')]",
                    "tags": tags,
                    "properties": {"ipAddresses": list(piece)},
                }
            )
    if not resources:
        raise NotFoundError(
            f"The export has no IPv4 prefixes ({h.query}); IP Groups take IPv4 only and a "
            "rule that references an empty IP Group is skipped, so nothing was written."
        )
    doc = {
        "$schema": SCHEMA,
        "contentVersion": "1.0.0.0",
        "metadata": {
            "_generator": {"name": "aztags", "version": h.version or "unknown"},
            "description": "; ".join(h.lines()),
        },
        "parameters": {
            "location": {
                "type": "string",
                "defaultValue": "[resourceGroup().location]",
                "metadata": {"description": "Where the IP Groups are created."},
            }
        },
        "resources": resources,
        "outputs": {
            "ipGroupIds": {
                "type": "array",
                "value": [
                    f"[resourceId('Microsoft.Network/ipGroups', {_arm(str(r['name']))})]"
                    for r in resources
                ],
            }
        },
    }
    return Output(json.dumps(doc, indent=2) + "\n", tuple(warnings))


FORMATS = (
    Format(
        "azure-nsg",
        "Azure NSG security rules (ARM template), one family per rule; --rules: a profile's rules",
        nsg_list,
        rules=nsg_rules,
    ),
    Format(
        "azure-ipgroup",
        "Azure Firewall IP Groups (ARM template), IPv4, at most 5,000 per group",
        ipgroups,
    ),
)
