"""aztags history: a tag's versions, or which tags held an address."""

from __future__ import annotations

from pathlib import Path

import click

from cli_options import (
    cloud_option,
    complete_tags,
    db_option,
    json_option,
)
from commands.common import (
    handle_errors,
    open_store,
    say_timeline,
    source_option,
)
from resolver.render import render_json


@click.command()
@click.argument("name", shell_complete=complete_tags)
@cloud_option()
@source_option
@db_option
@json_option
@handle_errors
def history(name: str, cloud: str, timeline: str, db: Path | None, as_json: bool) -> None:
    """Every stored snapshot where a tag changed; or which tags held an address or a CIDR.

    For a tag: each version with its changeNumber, prefix counts, prefixes added and removed.
    For an address or CIDR: each tag and prefix that held it (an address: the prefixes that
    contained it; a CIDR: the prefix itself, prefixes containing it, and 'inside:' prefixes
    within it), from which snapshot to which, and the snapshot it was removed in.

    \b
    Examples:
      aztags history Storage.WestEurope
      aztags history 20.33.2.0/24
      aztags history 20.38.96.1 --json

    Exit codes: 0 ok, 3 unknown tag, or an address no stored snapshot had in any tag.
    """
    from resolver.prefixes import parse_network
    from resolver.render import (
        render_history_text,
        render_prefix_history_json,
        render_prefix_history_text,
        render_tag_history_json,
    )

    store = open_store(db, cloud, source=timeline)
    if parse_network(name) is not None:
        spans = store.prefix_history(name)
        say_timeline(store, spans.snapshot)
        if as_json:
            click.echo(render_json(render_prefix_history_json(spans)))
        else:
            click.echo(render_prefix_history_text(spans))
        return
    answer = store.history_report(name)
    say_timeline(store, answer.snapshot)
    if as_json:
        click.echo(render_json(render_tag_history_json(answer)))
    else:
        click.echo(render_history_text(answer.versions))
