"""aztags reconcile: the published file against the Discovery API."""

from __future__ import annotations

import sys
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
)


@click.command()
@cloud_option(allow_all=True, default="all")
@db_option
@json_option
@handle_errors
def reconcile(cloud: str, db: Path | None, as_json: bool) -> None:
    """Compare a cloud's newest file with its newest Discovery API answer.

    Lists the tags in one and not the other, and per tag the prefixes that differ: '+' in the
    file, not yet in the API (announced, not yet applied: the API lags the file by up to four
    weeks), '-' in the API, no longer in the file (being withdrawn). Tags whose networkFeatures
    in the file lack API are not expected in the API and are only counted.

    \b
    Examples:
      aztags reconcile --cloud public
      aztags reconcile --json | jq '.clouds[].summary'

    Exit codes: 0 the same, 6 differences found, 3 no file or no API answer stored.
    """
    from resolver.reconcile import reconcile_all
    from resolver.render import render_reconcile_json, render_reconcile_text

    found = reconcile_all(connect(db, readonly=True), clouds_named(cloud.lower()))
    if as_json:
        print_json(render_reconcile_json(found))
    else:
        click.echo(render_reconcile_text(found))
    if any(r.differs for r in found):
        sys.exit(ExitCode.DIFFERENCES)
