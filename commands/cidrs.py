"""aztags cidrs: the prefixes of tags or of a requirement profile."""

from __future__ import annotations

from pathlib import Path

import click

from cli_options import (
    at_option,
    cloud_option,
    complete_profiles,
    complete_regions,
    complete_tags,
    db_option,
    families_wanted,
    family_options,
    max_age_option,
    profile_dirs_option,
    profile_folders,
    rule_filter_options,
)
from commands.common import (
    handle_errors,
    open_store,
    profile_exit,
    say_freshness,
    say_timeline,
    source_option,
    warn,
)
from resolver.render import render_json, render_warnings


@click.command()
@click.argument("names", nargs=-1, shell_complete=complete_tags)
@cloud_option()
@click.option(
    "--region",
    shell_complete=complete_regions,
    help="Narrow base services to this region: westeurope, 'West Europe'...",
)
@click.option(
    "--profile",
    shell_complete=complete_profiles,
    help="Union of a requirement profile's tags (see 'aztags profile list').",
)
@family_options
@click.option("--aggregate", is_flag=True, help="Merge adjacent and contained prefixes per family.")
@rule_filter_options
@at_option
@source_option
@max_age_option
@profile_dirs_option
@db_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV: prefix,family,tags.")
@handle_errors
def cidrs(
    names: tuple[str, ...],
    cloud: str,
    region: str | None,
    profile: str | None,
    family: tuple[int, ...],
    aggregate: bool,
    direction: str | None,
    protocol: str | None,
    port: int | None,
    allow_missing: bool,
    at: str | None,
    timeline: str,
    max_age_days: int,
    profiles_dir: tuple[Path, ...],
    db: Path | None,
    as_json: bool,
    as_csv: bool,
) -> None:
    """Print the prefixes a firewall must allow for tags or a requirement profile, one per line.

    NAME is a tag (any case; AzureFrontDoor.Frontend works) or a base service that --region
    narrows (Storage --region "West Europe" -> Storage.WestEurope).

    \b
    Examples:
      aztags cidrs Storage --region westeurope --ipv4
      aztags cidrs AzureCloud.westus --aggregate
      aztags cidrs --profile azureml --region westus --aggregate
      aztags cidrs --profile azureml --region westus --direction outbound --port 443
      aztags cidrs Sql.EastUS2 --at 2023-03-20 --csv

    --ipv4 and --ipv6 together mean both families (as neither does).

    Exit codes: 0 ok, 3 unknown tag, region or profile, an empty database, or a profile rule
    whose tag the file lacks (the prefixes found are printed; --allow-missing: exit 0).
    """
    from resolver.render import (
        render_cidrs_csv,
        render_cidrs_json,
        render_cidrs_text,
        render_freshness_json,
    )

    if not names and not profile:
        raise click.UsageError(
            "Name at least one tag, or --profile. Example: aztags cidrs Storage --region westus"
        )
    if as_json and as_csv:
        raise click.UsageError("--json and --csv exclude each other.")
    if not profile and (direction or protocol or port is not None or allow_missing):
        raise click.UsageError(
            "--direction, --protocol, --port and --allow-missing apply to --profile. Example: "
            "aztags cidrs --profile azureml --region westus --direction outbound"
        )
    store = open_store(db, cloud, at, max_age_days=max_age_days, source=timeline)
    answer = store.cidrs(
        names,
        region=region,
        profile=profile,
        family=families_wanted(family),
        aggregate=aggregate,
        at=at,
        profile_dirs=profile_folders(profiles_dir),
        direction=direction,
        protocol=protocol,
        port=port,
    )
    warn(render_warnings(answer.warnings))
    fresh = store.freshness(answer.snapshot, at)
    say_timeline(store, answer.snapshot)
    say_freshness(fresh)
    if as_json:
        click.echo(render_json(render_cidrs_json(answer, aggregate) | render_freshness_json(fresh)))
    else:
        click.echo(render_cidrs_csv(answer, aggregate) if as_csv else render_cidrs_text(answer))
    profile_exit(answer, allow_missing)
