"""aztags tags: list tags with their properties."""

from __future__ import annotations

from pathlib import Path

import click

from cli_options import (
    at_option,
    cloud_option,
    complete_regions,
    db_option,
    json_option,
    max_age_option,
)
from commands.common import (
    handle_errors,
    open_store,
    say_freshness,
    say_timeline,
    source_option,
)
from resolver.errors import NotFoundError
from resolver.render import render_json


@click.command()
@cloud_option()
@click.option(
    "--region",
    shell_complete=complete_regions,
    help="Only tags of this region (code, display name or tag suffix).",
)
@click.option("--service", help="Only tags of this service (base name or systemService).")
@click.option(
    "--feature",
    type=click.Choice(["NSG", "FW", "UDR", "API", "VSE"], case_sensitive=False),
    help="Only tags usable there (networkFeatures).",
)
@at_option
@source_option
@max_age_option
@db_option
@json_option
@handle_errors
def tags(
    cloud: str,
    region: str | None,
    service: str | None,
    feature: str | None,
    at: str | None,
    timeline: str,
    max_age_days: int,
    db: Path | None,
    as_json: bool,
) -> None:
    """List tags with region, systemService, networkFeatures and IPv4/IPv6 prefix counts.

    \b
    Examples:
      aztags tags --region westeurope --feature NSG
      aztags tags --service Storage --json
      aztags tags --at 2023-03-20
    """
    from resolver.render import render_freshness_json, render_tags_json, render_tags_text

    store = open_store(db, cloud, at, max_age_days=max_age_days, source=timeline)
    snapshot, found = store.tags(at=at, region=region, service=service, feature=feature)
    if not found:
        raise NotFoundError("No tag matches these filters.")
    fresh = store.freshness(snapshot, at)
    say_timeline(store, snapshot)
    say_freshness(fresh)
    if as_json:
        click.echo(render_json(render_tags_json(snapshot, found) | render_freshness_json(fresh)))
    else:
        click.echo(render_tags_text(found))
