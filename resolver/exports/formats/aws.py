"""AWS EC2 customer-managed prefix lists.

Two outputs, one per way of changing a list:

- The full list (``render``) is a CloudFormation template of ``AWS::EC2::PrefixList``
  resources. A stack create makes the lists; a stack update with the next export moves each list
  to the new entries in one versioned change, and CloudFormation works out which entries to add
  and remove (it also changes ``MaxEntries`` in a call of its own when the count changes: the
  resource's documented update behaviour, not tried here [unverified]). A template (not a
  ``create-managed-prefix-list`` command line) because a big tag
  does not fit on one command line, the create call takes at most 100 entries, and a template is
  run again as it is, where a create command fails the second time.
- The delta (``--since``/``--state``) is a bash script of ``aws ec2 modify-managed-prefix-list``
  calls for lists made by that template (found by name): for each list its additions, then its
  removals, at most 100 entries per call (the API's limit for ``AddEntries`` and
  ``RemoveEntries``), each call with ``--current-version`` read just before it and waiting for
  the list to leave ``modify-in-progress``. ``MaxEntries`` cannot change in the same call as
  entries, so the script raises it first when the additions need room and lowers it after the
  removals, back to the entry count. Do not mix the two on one list: a CloudFormation stack
  whose lists were changed by the script sees drift, and its next update puts its own entries
  back.

A list holds one family (the family cannot change), so each object gives ``<name>-ipv4`` and
``<name>-ipv6`` (none for a family it does not have). A list takes at most 1,000 entries (the
VPC quota "entries per prefix list", from memory: [unverified]); larger
ones are split into ``<name>-ipv4``, ``<name>-ipv4-2``..., with a warning. ``MaxEntries`` is
the entry count, because every security group that references a list counts its
``MaxEntries`` against its rules quota (60 per group by default), not the entries it holds.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from resolver.exports.model import (
    ExportInput,
    ExportObject,
    Format,
    ObjectDelta,
    Output,
    chunks,
    object_names,
)
from resolver.prefixes import family, sort_prefixes

PER_LIST = 1000  # entries per prefix list [unverified]
PER_CALL = 100  # AddEntries / RemoveEntries per call (botocore's model of the EC2 API: max 100)
SG_RULES = 60  # default rules per security group (inbound and outbound each)


def _base_names(names: Sequence[str]) -> list[str]:
    """Prefix list names: up to 255 characters, not starting with ``com.amazonaws`` (the
    AWS-managed lists); the family and chunk suffixes leave room."""
    clean = object_names(names, allowed="A-Za-z0-9_.-", max_length=240)
    return ["az-" + n if n.lower().startswith("com.amazonaws") else n for n in clean]


def _list_name(base: str, fam: int, index: int) -> str:
    return f"{base}-ipv{fam}" + (f"-{index + 1}" if index else "")


def _description(obj: ExportObject | None, fallback: str) -> str:
    """An entry's description (up to 255 characters): the tags behind the object. Without the
    changeNumber, so entries that stay do not change at each refresh."""
    tags = " ".join(obj.tags) if obj and obj.tags else fallback
    return re.sub(r"[^A-Za-z0-9 ._:/+=@-]", "_", tags)[:255]


def _family_chunks(prefixes: Sequence[str], fam: int) -> list[Sequence[str]]:
    items = [p for p in prefixes if family(p) == fam]
    return chunks(items, PER_LIST) if items else []


def _warnings(obj_name: str, fam: int, count: int, lists: int) -> list[str]:
    out = []
    if lists > 1:
        out.append(
            f"{obj_name} IPv{fam}: {count:,} prefixes split into {lists} prefix lists of at most "
            f"{PER_LIST:,} entries."
        )
    if count > SG_RULES:
        out.append(
            f"{obj_name} IPv{fam}: a security group that references the list counts its "
            f"{min(count, PER_LIST):,} max entries against its rules quota ({SG_RULES} by "
            "default); --aggregate or a narrower tag makes it smaller."
        )
    return out


# -- full list: CloudFormation ---------------------------------------------------------------------


def cloudformation(inp: ExportInput) -> Output:
    h = inp.header
    resources: dict[str, object] = {}
    outputs: dict[str, object] = {}
    warnings: list[str] = []
    lists: list[tuple[str, int, ExportObject, Sequence[str]]] = []
    for base, obj in zip(_base_names([o.name for o in inp.objects]), inp.objects, strict=True):
        for fam in (4, 6):
            pieces = _family_chunks(obj.prefixes, fam)
            if pieces:
                warnings += _warnings(obj.name, fam, sum(map(len, pieces)), len(pieces))
            lists += [(_list_name(base, fam, i), fam, obj, p) for i, p in enumerate(pieces)]
    logical = object_names(
        [name for name, *_ in lists], allowed="A-Za-z0-9", replacement="", first="A-Za-z"
    )
    entries: list[str] = []
    tags_value = re.sub(r"[^A-Za-z0-9 ._:/+=@-]", "_", " ".join(sorted(_all_tags(inp))))[:256]
    for resource, (name, fam, obj, piece) in zip(logical, lists, strict=True):
        description = _description(obj, name)
        entries.append(_entry_lines(piece, description))
        resources[resource] = {
            "Type": "AWS::EC2::PrefixList",
            "Properties": {
                "PrefixListName": name,
                "AddressFamily": f"IPv{fam}",
                "MaxEntries": len(piece),
                "Entries": f"@entries{len(entries) - 1}@",
                "Tags": [
                    {"Key": "aztags:serviceTags", "Value": tags_value or name},
                    {"Key": "aztags:changeNumber", "Value": str(h.change_number)},
                ],
            },
        }
        outputs[f"{resource}Id"] = {"Description": name, "Value": {"Ref": resource}}
    doc = {
        "AWSTemplateFormatVersion": "2010-09-09",
        # JSON takes no comments: the header is the template's description (max 1,024).
        "Description": "; ".join(h.lines())[:1024],
        "Resources": resources,
        "Outputs": outputs,
    }
    text = json.dumps(doc, indent=2)
    for n, lines in enumerate(entries):  # placeholders, so json writes each entry on one line
        text = text.replace(f'"@entries{n}@"', lines, 1)
    return Output(text + "\n", tuple(warnings))


def _entry_lines(prefixes: Sequence[str], description: str) -> str:
    """An entry list, one entry per line (json.dumps with an indent is slow on thousands of
    small objects, and one line per entry diffs well)."""
    desc = json.dumps(description)
    pad = " " * 10
    body = ",\n".join(f'{pad}{{"Cidr": "{p}", "Description": {desc}}}' for p in prefixes)
    return f"[\n{body}\n{pad[:-2]}]"


def _all_tags(inp: ExportInput) -> set[str]:
    return {t for o in inp.objects for t in o.tags}


# -- delta: modify-managed-prefix-list -------------------------------------------------------------

FUNCTIONS = r"""set -euo pipefail
shopt -s inherit_errexit
declare -A VERSION MAXENTRIES  # per list ID, as of its last settle

# plid NAME: the ID of the prefix list named NAME ("" when there is none)
plid() {
    local ids
    ids=$(aws ec2 describe-managed-prefix-lists --filters "Name=prefix-list-name,Values=$1" \
        --query 'PrefixLists[].PrefixListId' --output text)
    [ "$ids" = None ] && ids=
    case $ids in
        *[[:space:]]*) echo "more than one prefix list is named $1: $ids" >&2; return 1 ;;
    esac
    printf '%s' "$ids"
}

# settle ID: wait until the list is not being created or changed; note its version and size
settle() {
    local out state version max
    while :; do
        out=$(aws ec2 describe-managed-prefix-lists --prefix-list-ids "$1" \
            --query 'PrefixLists[0].[State,Version,MaxEntries]' --output text)
        read -r state version max <<<"$out"
        case $state in
            *-in-progress) sleep 2 ;;
            *-failed) echo "prefix list $1 is $state; see its StateMessage" >&2; return 1 ;;
            *) VERSION[$1]=$version; MAXENTRIES[$1]=$max; return 0 ;;
        esac
    done
}

# modify ID ARGS...: one modify-managed-prefix-list call at the version this script last saw
# (another change in between makes it fail), then wait for it
modify() {
    local id=$1
    shift
    aws ec2 modify-managed-prefix-list --prefix-list-id "$id" \
        --current-version "${VERSION[$id]}" "$@" --output text >/dev/null
    settle "$id"
}

# existing VAR NAME: VAR=the ID of list NAME, which the base export made; stop if it is missing
existing() {
    local id
    id=$(plid "$2")
    if [ -z "$id" ]; then
        echo "prefix list $2 not found: it was not made from the base export;" \
            "write the full list (a CloudFormation template: no --since/--state)" >&2
        return 1
    fi
    settle "$id"
    printf -v "$1" '%s' "$id"
}

# created VAR NAME FAMILY MAX: VAR=the ID of list NAME, made empty with MAX entries if missing
created() {
    local id
    id=$(plid "$2")
    if [ -z "$id" ]; then
        id=$(aws ec2 create-managed-prefix-list --prefix-list-name "$2" --address-family "$3" \
            --max-entries "$4" --query 'PrefixList.PrefixListId' --output text)
    fi
    settle "$id"
    printf -v "$1" '%s' "$id"
}

# resize ID N: set MaxEntries to N when it differs (not in the same call as entries)
resize() {
    if [ "${MAXENTRIES[$1]}" != "$2" ]; then
        modify "$1" --max-entries "$2"
    fi
}
"""


def _entries(prefixes: Sequence[str], description: str | None) -> str:
    """A JSON entry list for the CLI, single-quoted for the shell (no ``'`` can occur: the
    prefixes are CIDRs and the description is sanitised)."""
    if description is None:
        doc = [{"Cidr": p} for p in prefixes]
    else:
        doc = [{"Cidr": p, "Description": description} for p in prefixes]
    return "'" + json.dumps(doc, separators=(",", ":")) + "'"


def modify_script(inp: ExportInput) -> Output:
    """Adds first, then removes, per list (see the module doc). The base a list had is the
    current one with the delta undone, cut into lists the way the full export cut it, so a
    prefix that moves from one list to the next (a list before it grew) is added to its new
    list before it leaves the old one."""
    current = {o.name: o for o in inp.objects}
    deltas = {d.name: d for d in inp.delta or ()}
    names = [*current, *(n for n in deltas if n not in current)]
    bases = _base_names(names)
    h = inp.header
    setup: list[str] = []
    adds: list[str] = []
    removes: list[str] = []
    warnings: list[str] = []
    total_add = total_remove = 0
    n = 0
    for base, name in zip(bases, names, strict=True):
        obj = current.get(name)
        now = obj.prefixes if obj else ()
        change = deltas.get(name, ObjectDelta(name, (), ()))
        before = change.before(now)
        description = _description(obj, name)
        for fam in (4, 6):
            new = _family_chunks(now, fam)
            old = _family_chunks(before, fam)
            if len(new) > 1:
                warnings += _warnings(name, fam, sum(map(len, new)), len(new))
            for i in range(max(len(new), len(old))):
                target = list(new[i]) if i < len(new) else []
                had = list(old[i]) if i < len(old) else None
                plus = sort_prefixes(set(target) - set(had or ()))
                minus = sort_prefixes(set(had or ()) - set(target))
                if had is not None and not plus and not minus:
                    continue
                n += 1
                var = f"pl{n}"
                list_name = _list_name(base, fam, i)
                total_add += len(plus)
                total_remove += len(minus)
                setup.append(f"# {list_name}: +{len(plus)} -{len(minus)}\n")
                if had is None:
                    setup.append(f"created {var} '{list_name}' IPv{fam} {len(target)}\n")
                else:
                    setup.append(f"existing {var} '{list_name}'\n")
                    if plus:
                        adds.append(f'resize "${var}" {len(had) + len(plus)}\n')
                for piece in chunks(plus, PER_CALL) if plus else []:
                    adds.append(f'modify "${var}" --add-entries {_entries(piece, description)}\n')
                for piece in chunks(minus, PER_CALL) if minus else []:
                    removes.append(f'modify "${var}" --remove-entries {_entries(piece, None)}\n')
                if target and minus:
                    removes.append(f'resize "${var}" {len(target)}\n')
                elif not target:
                    removes.append(
                        f"echo 'prefix list {list_name} is now empty; delete it when nothing "
                        "references it' >&2\n"
                    )
    out = ["#!/usr/bin/env bash\n", h.comment("#")]
    out.append(
        "# AWS managed prefix lists: run with AWS CLI credentials for the lists' account and\n"
        "# region. Additions first, then removals, at most 100 entries per call.\n"
        f"# {total_add} addition(s), {total_remove} removal(s).\n"
    )
    out.append(FUNCTIONS)
    if not setup:
        out.append("\necho 'nothing to change: the lists already hold these prefixes' >&2\n")
    else:
        out += ["\n", *setup, "\n# additions\n", *adds, "\n# removals\n", *removes]
    return Output("".join(out), tuple(dict.fromkeys(warnings)))


FORMATS = (
    Format(
        "aws-prefix-list",
        "AWS managed prefix lists: CloudFormation template; delta as modify-managed-prefix-list",
        cloudformation,
        delta=modify_script,
    ),
)
