"""aztags lookup: which tags hold an address or a CIDR."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import click

from cli_options import (
    at_option,
    cloud_option,
    db_option,
    max_age_option,
)
from commands.common import (
    ExitCode,
    handle_errors,
    open_store,
    say_freshness,
    say_timeline,
    source_option,
    warn,
)
from resolver.render import readable, render_json

if TYPE_CHECKING:
    from resolver.query import TagStore


@click.command()
@click.argument("queries", nargs=-1)
@click.option(
    "--file",
    "file",
    type=click.File("r", errors="surrogateescape"),
    help="Read addresses from a file, one per line ('-' for stdin): one output line per input.",
)
@cloud_option(allow_all=True)
@at_option
@source_option
@max_age_option
@db_option
@click.option(
    "--json", "as_json", is_flag=True, help="JSON: one document, or JSON lines with --file."
)
@handle_errors
def lookup(
    queries: tuple[str, ...],
    file: TextIO | None,
    cloud: str,
    at: str | None,
    timeline: str,
    max_age_days: int,
    db: Path | None,
    as_json: bool,
) -> None:
    """Which tags contain an IPv4/IPv6 address or CIDR: every one, most specific first.

    Output: one line per input, in input order, tab-separated: the input, then one field per
    matching tag as TAG,PREFIX,REGION,SERVICE (with --cloud all: TAG,PREFIX,REGION,SERVICE,CLOUD).
    For a CIDR, tags with prefixes inside it follow, marked 'inside:'. A bad line gets
    'error: ...' and the batch goes on. With --file, a line starting with '#' is a comment:
    printed as it is (text) or left out (JSON lines, whose first line names the snapshot).

    \b
    Examples:
      aztags lookup 20.38.96.1 2603:1020:200::1
      aztags lookup 20.38.96.0/20 --json
      aztags lookup 40.73.81.5 --cloud all
      cut -d' ' -f3 firewall.log | aztags lookup --file - > tags.tsv
      aztags lookup --file ips.txt --at 2023-03-20

    Exit codes: 0 ok, 3 a single lookup matched nothing, 1 an address did not parse.
    """
    if not queries and file is None:
        raise click.UsageError(
            "Give addresses, or --file F ('-' for stdin). Example: aztags lookup 20.38.96.1"
        )
    if queries and file is not None:
        raise click.UsageError("Give addresses or --file, not both.")
    every = cloud.lower() == "all"
    store = open_store(db, cloud.lower(), at, max_age_days=max_age_days, source=timeline)
    if file is not None:
        _lookup_file(store, file, at, every=every, as_json=as_json)
        return
    _lookup_queries(store, queries, at, every=every, as_json=as_json)


def _lookup_file(
    store: TagStore, file: TextIO, at: str | None, *, every: bool, as_json: bool
) -> None:
    """``lookup --file``: stream the answers, a header line first with --json."""
    from resolver.query import CloudsBatch, LookupBatch
    from resolver.render import (
        render_lookup_all_header,
        render_lookup_all_stream,
        render_lookup_header,
        render_lookup_stream,
    )

    batch: LookupBatch | CloudsBatch
    if every:
        batch = store.lookup_batch_all(at)
        freshness = [b.freshness for b in batch.batches]
    else:
        batch = store.lookup_batch(at)
        freshness = [batch.freshness]
    say_timeline(store, *(f.snapshot for f in freshness if f is not None))
    say_freshness(*freshness)
    lines = _counted(file, "Looked up") if sys.stderr.isatty() else file
    write = sys.stdout.write
    rendered: Iterator[str]
    if isinstance(batch, CloudsBatch):
        if as_json:
            write(render_lookup_all_header(batch))
        rendered = render_lookup_all_stream(batch.answers(lines), batch, as_json=as_json)
    else:
        if as_json:
            write(render_lookup_header(batch.snapshot, batch.freshness))
        rendered = render_lookup_stream(batch.answers(lines), batch.details, as_json=as_json)
    while chunk := "".join(islice(rendered, 4096)):  # joined in C: no Python loop per line
        write(chunk)
    if batch.errors:
        click.echo(
            f"aztags: {batch.errors} line(s) were not addresses; see 'error:' in the output.",
            err=True,
        )
        sys.exit(ExitCode.ERROR)


def _lookup_queries(
    store: TagStore, queries: tuple[str, ...], at: str | None, *, every: bool, as_json: bool
) -> None:
    """``lookup ADDR...``: one document or one line per query."""
    from resolver.render import (
        render_found_elsewhere,
        render_lookup_all_json,
        render_lookup_all_text,
        render_lookup_report_json,
        render_lookup_text,
    )

    if every:
        reports = store.lookup_report_all(queries, at)
    else:
        reports = [store.lookup_report(queries, at=at)]
    say_timeline(store, *(r.snapshot for r in reports))
    say_freshness(*(r.freshness for r in reports))
    if every:
        doc = render_lookup_all_json(reports) if as_json else render_lookup_all_text(reports)
    else:
        report = reports[0]
        doc = (
            render_lookup_report_json(report)
            if as_json
            else render_lookup_text(report.answers, report.details)
        )
    click.echo(render_json(doc) if as_json else doc)
    answers = reports[0].answers
    elsewhere = {}
    if not every:  # an address in no tag here may be another stored cloud's: say which
        missed = [a.query for a in answers if a.result is not None and not a.result.tags]
        elsewhere = store.found_elsewhere(missed)
        warn(render_found_elsewhere(store.cloud, elsewhere))
    bad = [readable(a.query, limit=80) for a in answers if a.error]
    if bad:
        click.echo(f"aztags: not an address or CIDR: {', '.join(bad)}", err=True)
        sys.exit(ExitCode.ERROR)
    if len(answers) == 1 and not any(
        r.answers[0].result.tags for r in reports if r.answers[0].result
    ):
        query = answers[0].query
        if every:
            names = ", ".join(r.snapshot.cloud for r in reports)
            click.echo(
                f"aztags: {query} is in no service tag of any stored cloud ({names}).", err=True
            )
        elif query not in elsewhere:  # else said just above
            click.echo(f"aztags: {query} is in no {store.cloud.name} service tag.", err=True)
        sys.exit(ExitCode.NOT_FOUND)


def _counted(lines: Iterable[str], label: str, every: int = 100_000) -> Iterator[str]:
    """Pass lines through, showing a running count on the terminal (stderr) for long batches."""
    count = 0
    for count, line in enumerate(lines, start=1):  # noqa: B007 - count is read after the loop
        if count % every == 0:
            click.echo(f"\r{label} {count:,} lines", err=True, nl=False)
        yield line
    if count >= every:
        click.echo(f"\r{label} {count:,} lines", err=True)
