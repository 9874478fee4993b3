"""aztags diff: what changed between two snapshots."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from cli_options import (
    cloud_option,
    complete_profiles,
    complete_regions,
    complete_tags,
    db_option,
    json_option,
    profile_dirs_option,
    profile_folders,
)
from commands.common import (
    ExitCode,
    handle_errors,
    open_store,
    source_option,
)
from resolver.render import render_json


@click.command()
@click.argument("names", nargs=-1, shell_complete=complete_tags)
@click.option(
    "--from",
    "from_at",
    metavar="REF",
    help="Older snapshot (date or cn:N). [default: the one before --to]",
)
@click.option(
    "--to", "to_at", metavar="REF", help="Newer snapshot (date or cn:N). [default: current]"
)
@click.option(
    "--profile",
    shell_complete=complete_profiles,
    help="Only the tags of this requirement profile (needs --region if regional).",
)
@click.option(
    "--region",
    shell_complete=complete_regions,
    help="Narrow NAMEs or the profile to this region.",
)
@cloud_option()
@source_option
@profile_dirs_option
@db_option
@json_option
@click.option(
    "--exit-code",
    "exit_code",
    is_flag=True,
    help="Exit 6 when there are differences, 0 when there are none (as git diff --exit-code).",
)
@handle_errors
def diff(
    names: tuple[str, ...],
    from_at: str | None,
    to_at: str | None,
    profile: str | None,
    region: str | None,
    cloud: str,
    timeline: str,
    profiles_dir: tuple[Path, ...],
    db: Path | None,
    as_json: bool,
    exit_code: bool,
) -> None:
    """What changed between two snapshots: '+ prefix' and '- prefix' per tag, then a summary.

    A prefix re-cut into smaller ones (or merged) over the same addresses is shown as '~'.
    Added prefixes may be used by Azure from the file date + 7 days (Microsoft's note).

    \b
    Examples:
      aztags diff                                  # previous vs current
      aztags diff --from 2023-03-06 --to 2023-06-19 Storage.WestEurope
      aztags diff --profile azureml --region westus --json
      aztags diff --exit-code Storage.WestEurope >/dev/null || echo "changed (6) or failed"

    Exit codes: 0 ok (with --exit-code: no differences), 6 differences found (--exit-code only),
    1 error, 2 bad flags, 3 unknown tag, region, profile or snapshot.
    """
    from resolver.render import render_diff_json, render_diff_text

    answer = open_store(db, cloud, from_at, to_at, source=timeline).diff(
        from_at,
        to_at,
        names,
        profile=profile,
        region=region,
        profile_dirs=profile_folders(profiles_dir),
    )
    click.echo(render_json(render_diff_json(answer)) if as_json else render_diff_text(answer))
    if exit_code and answer.tags:
        sys.exit(ExitCode.DIFFERENCES)
