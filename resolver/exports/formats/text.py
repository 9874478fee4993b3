"""Lists that many targets read as they are: plain text, CSV, JSON, and the PAN-OS EDL.

plain serves PAN-OS EDLs, FortiGate threat feeds, pf table files, HAProxy and Squid ACL files and
most "one CIDR per line" readers; it carries no comments (a line a reader cannot parse is an
error or is logged as one). The PAN-OS EDL takes comments only on an entry's own line, so its
provenance goes there. With ``--rules`` (a profile), csv is the rules table.
"""

from __future__ import annotations

import csv
import io
import json

from resolver.exports.model import ExportInput, Format, Output
from resolver.prefixes import family


def plain(inp: ExportInput) -> Output:
    return Output("".join(f"{p}\n" for p in inp.all_prefixes))


def csv_list(inp: ExportInput) -> Output:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["object", "prefix", "family", "tags", "change_number"])
    for obj in inp.objects:
        for prefix in obj.prefixes:
            writer.writerow(
                [
                    obj.name,
                    prefix,
                    f"ipv{family(prefix)}",
                    " ".join(obj.tags),
                    inp.header.change_number,
                ]
            )
    return Output(out.getvalue())


def csv_rules(inp: ExportInput) -> Output:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["rule", "direction", "protocol", "ports", "prefix", "family", "tag", "local"])
    local = " ".join(inp.options.local) or "any"
    for obj in inp.objects:
        rule = obj.rule
        if rule is None:
            continue
        for prefix in obj.prefixes:
            writer.writerow(
                [
                    obj.name,
                    rule.direction,
                    rule.protocol,
                    rule.port_text(" "),
                    prefix,
                    f"ipv{family(prefix)}",
                    rule.tag,
                    local,
                ]
            )
    return Output(out.getvalue())


def json_doc(inp: ExportInput) -> Output:
    h = inp.header
    doc = {
        "cloud": h.cloud,
        "changeNumber": h.change_number,
        "fileDate": h.file_date.isoformat() if h.file_date else None,
        "query": h.query,
        "objects": [
            {
                "name": o.name,
                "tags": list(o.tags),
                "ipv4": list(o.ipv4),
                "ipv6": list(o.ipv6),
                **(
                    {
                        "rule": {
                            "direction": o.rule.direction,
                            "protocol": o.rule.protocol,
                            "ports": o.rule.port_text(),
                            "tag": o.rule.tag,
                        }
                    }
                    if o.rule
                    else {}
                ),
            }
            for o in inp.objects
        ],
        "fqdns": list(inp.fqdns),
    }
    return Output(json.dumps(doc, indent=2) + "\n")


def paloalto_edl(inp: ExportInput) -> Output:
    """One entry per line, the provenance as a same-line comment (the only kind PAN-OS takes)."""
    note = f"{_tags(inp)} cn={inp.header.change_number}"
    return Output("".join(f"{p} {note}\n" for p in inp.all_prefixes))


def paloalto_domain_edl(inp: ExportInput) -> Output:
    """A PAN-OS domain list: the profile's host names, one per line (``*.`` wildcards kept)."""
    return Output("".join(f"{h}\n" for h in inp.fqdns))


def _tags(inp: ExportInput) -> str:
    tags = sorted({t for o in inp.objects for t in o.tags})
    return ",".join(tags) if len(tags) <= 3 else f"{tags[0]},+{len(tags) - 1}"


FORMATS = (
    Format(
        "plain",
        "one prefix per line, no comments (EDL, threat feeds, pf, HAProxy, Squid files)",
        plain,
    ),
    Format(
        "csv",
        "CSV: object,prefix,family,tags,change_number; with --rules the rule table",
        csv_list,
        rules=csv_rules,
        empty_ok=True,
    ),
    Format(
        "json",
        "JSON: objects with their IPv4 and IPv6 lists, provenance, host names",
        json_doc,
        empty_ok=True,
    ),
    Format(
        "paloalto-edl",
        "PAN-OS external dynamic list (IP), provenance as a same-line comment",
        paloalto_edl,
    ),
    Format(
        "paloalto-domain-edl",
        "PAN-OS external dynamic list (domain): the profile's host names",
        paloalto_domain_edl,
        hosts=True,
    ),
)
