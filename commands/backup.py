"""aztags backup: a consistent copy of the database."""

from __future__ import annotations

from pathlib import Path

import click

from cli_options import db_option
from commands.common import handle_errors


@click.command()
@click.argument("dest", type=click.Path(dir_okay=False, path_type=Path))
@db_option
@handle_errors
def backup(dest: Path, db: Path | None) -> None:
    """Copy the database consistently while a writer runs (SQLite's online backup API).

    The copy is written beside DEST and renamed into place, so a server reading DEST switches
    to the new copy whole. Feed a read-only replica with it (cron, rsync, Litestream); a
    replica answers with the same ETags as the writer.

    \b
    Example:
      aztags backup /srv/replica/aztags.db
    """
    from cache.backup import backup_to
    from cache.db import default_db_path

    info = backup_to(db or default_db_path(), dest)
    click.echo(f"{dest}: {info}")
