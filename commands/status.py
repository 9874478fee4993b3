"""aztags status and aztags snapshots: what is stored."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from cli_options import (
    cloud_option,
    db_option,
    json_option,
)
from commands.common import (
    ExitCode,
    clouds_named,
    connect,
    handle_errors,
    print_json,
    source_option,
    warn,
)


@click.command()
@cloud_option(allow_all=True, default="all")
@click.option(
    "--max-age-days",
    type=click.IntRange(0),
    default=14,
    show_default=True,
    envvar="AZTAGS_MAX_AGE_DAYS",
    help="Exit 4 when a cloud's newest file is older than this (AzureGermany, frozen, excepted).",
)
@source_option
@db_option
@json_option
@handle_errors
def status(cloud: str, max_age_days: int, timeline: str, db: Path | None, as_json: bool) -> None:
    """Show each cloud's current snapshot: changeNumber, file date, when fetched, age, counts.

    Each cloud's newest Discovery API answer, when one is stored, is shown too (Public@api,
    dated by when it was fetched). --source says which of the two the staleness check (exit 4)
    is about.

    \b
    Example:
      aztags status --max-age-days 10 || alert "Azure tags are stale"
      aztags status --source api --max-age-days 7

    Exit codes: 0 fresh, 3 nothing stored yet, 4 a cloud's newest file (or API answer, with
    --source api) is too old.
    """
    from resolver.render import render_stale_note, render_status_json, render_status_text
    from resolver.status import status_report

    report = status_report(
        connect(db, readonly=True),
        clouds_named(cloud.lower()),
        max_age_days,
        datetime.now(UTC),
        source=timeline,
    )
    statuses = report.judged
    if as_json:
        print_json(render_status_json(statuses, max_age_days, report.alongside))
    else:
        click.echo(render_status_text(statuses, report.alongside))
    stale = render_stale_note(statuses, max_age_days)
    if stale:
        click.echo(stale, err=True)
        sys.exit(ExitCode.STALE)


@click.command()
@cloud_option(allow_all=True, default="all")
@source_option
@db_option
@json_option
@handle_errors
def snapshots(cloud: str, timeline: str, db: Path | None, as_json: bool) -> None:
    """List the stored snapshots, oldest first; quarantined ones are marked.

    --source api lists the Discovery API's answers (cloud Public@api, no file date).

    \b
    Example:
      aztags snapshots --cloud public
      aztags snapshots --source api
    """
    from resolver.query import list_snapshots
    from resolver.render import (
        render_quarantined_notes,
        render_snapshots_json,
        render_snapshots_text,
    )

    infos = list_snapshots(
        connect(db, readonly=True), clouds_named(cloud.lower()), timeline.lower()
    )
    if as_json:
        print_json(render_snapshots_json(infos))
        return
    click.echo(render_snapshots_text(infos))
    warn(render_quarantined_notes(infos))
