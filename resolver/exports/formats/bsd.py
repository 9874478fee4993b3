"""BSD pf: a table file for ``pfctl -t NAME -T replace -f FILE``.

One address or prefix per line, IPv4 and IPv6 together (a pf table holds both). pfctl drops
everything from a ``#`` to the end of the line when it reads a table file (``pfr_next_token`` in
OpenBSD's sbin/pfctl/pfctl_radix.c), so the header goes in as ``#`` lines (decided from
that source). Table names are at most 31 characters
(``PF_TABLE_NAME_SIZE`` is 32 with the terminating NUL, net/pfvar.h). ``-T replace`` swaps the
table's content in one call, so there is no delta: the build says so and writes the full list.
Limits are the kernel's, not the file's: a warning when the list passes FreeBSD's default
``net.pf.request_maxcount`` (65,535 addresses per ioctl) or pf's default ``table-entries``
(200,000).
"""

from __future__ import annotations

from resolver.exports.model import ExportInput, Format, Output, object_names

PF_TABLE_NAME_MAX = 31
FREEBSD_REQUEST_MAXCOUNT = 65_535
PF_TABLE_ENTRIES = 200_000


def table_name(inp: ExportInput) -> str:
    """The table's name on the device (the object's, sanitised for pf)."""
    return object_names(
        [inp.objects[0].name if inp.objects else "aztags"],
        allowed=r"A-Za-z0-9_.-",
        max_length=PF_TABLE_NAME_MAX,
        first="A-Za-z0-9_",
    )[0]


def pf(inp: ExportInput) -> Output:
    prefixes = inp.all_prefixes
    name = table_name(inp)
    warnings = []
    if len(prefixes) > PF_TABLE_ENTRIES:
        warnings.append(
            f"pf: {len(prefixes):,} entries are more than pf's default table-entries limit "
            f"({PF_TABLE_ENTRIES:,}); raise it with 'set limit table-entries' in pf.conf."
        )
    elif len(prefixes) > FREEBSD_REQUEST_MAXCOUNT:
        warnings.append(
            f"pf: {len(prefixes):,} entries are more than FreeBSD loads in one call by default; "
            f"raise the sysctl net.pf.request_maxcount above {FREEBSD_REQUEST_MAXCOUNT:,} "
            "(OpenBSD has no such limit)."
        )
    usage = (
        f"# Load with: pfctl -t {name} -T replace -f THIS_FILE\n"
        f"# (replaces the table's content in one call). In pf.conf: table <{name}> persist\n"
    )
    return Output(
        inp.header.comment() + usage + "".join(f"{p}\n" for p in prefixes), tuple(warnings)
    )


FORMATS = (
    Format(
        "pf",
        "pf table file for pfctl -t NAME -T replace -f FILE (IPv4 and IPv6 together)",
        pf,
    ),
)
