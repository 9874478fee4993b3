"""aztags export: prefix lists and rule sets in a device's format."""

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
    local_option,
    max_age_option,
    profile_dirs_option,
    profile_folders,
    rule_filter_options,
)
from commands.common import (
    handle_errors,
    open_store,
    say_freshness,
    say_timeline,
    source_option,
    warn,
)
from resolver.render import render_warnings


def _list_formats(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    from resolver.exports.formats import formats
    from resolver.render import render_table

    rows = []
    for name, fmt in formats().items():
        if name != fmt.name:
            continue
        extras = [x for x, on in (("delta", fmt.delta), ("rules", fmt.rules)) if on]
        rows.append((name, ", ".join(extras) or "-", fmt.summary))
    click.echo(render_table(("format", "also", "what"), rows))
    ctx.exit(0)


@click.command()
@click.argument("names", nargs=-1, shell_complete=complete_tags)
@click.option(
    "-f", "--format", "format_name", metavar="FORMAT", help="The target (see --list-formats)."
)
@click.option(
    "--list-formats",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_list_formats,
    help="Name every format with one line each, and exit.",
)
@click.option("--profile", shell_complete=complete_profiles, help="A requirement profile's tags.")
@click.option("--region", shell_complete=complete_regions, help="The workload's region.")
@rule_filter_options
@family_options
@click.option("--aggregate", is_flag=True, help="Merge adjacent and contained prefixes per family.")
@click.option(
    "--name",
    "object_name",
    help="The object's name on the device. [default: the tag or profile-region]",
)
@click.option(
    "--rules", is_flag=True, help="With --profile: firewall rules, not only address objects."
)
@local_option("--rules: the workload's own addresses (repeat). [default: any]")
@click.option("--chain", help="--rules: the chain (iptables, nftables). [default: AZTAGS]")
@click.option("--zone", help="--rules/objects: the zone (junos). [default: global address book]")
@click.option("--interface", help="--rules: the interface (nftables, iptables; asa: access-group).")
@click.option(
    "--priority-base",
    type=click.IntRange(100, 4096),
    default=1000,
    show_default=True,
    help="--rules azure-nsg: the first rule's priority.",
)
@click.option("--since", help="Only what changed since this snapshot (a --at reference): a delta.")
@at_option
@source_option
@cloud_option()
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write here, atomically (temporary file + rename). [default: stdout]",
)
@click.option(
    "--state",
    "state_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Record what was exported; the next run with this file writes the delta from it.",
)
@max_age_option
@profile_dirs_option
@db_option
@handle_errors
def export(
    names: tuple[str, ...],
    format_name: str | None,
    profile: str | None,
    region: str | None,
    direction: str | None,
    protocol: str | None,
    port: int | None,
    allow_missing: bool,
    family: tuple[int, ...],
    aggregate: bool,
    object_name: str | None,
    rules: bool,
    local: tuple[str, ...],
    chain: str | None,
    zone: str | None,
    interface: str | None,
    priority_base: int,
    since: str | None,
    at: str | None,
    timeline: str,
    cloud: str,
    output: Path | None,
    state_file: Path | None,
    max_age_days: int,
    profiles_dir: tuple[Path, ...],
    db: Path | None,
) -> None:
    """Write prefix lists (or, with --rules, rule sets) in a network appliance's format.

    \b
    Examples:
      aztags export Storage.WestEurope --format nftables -o /etc/nftables.d/azure.nft
      aztags export AzureCloud --region westeurope --format paloalto-edl --aggregate
      aztags export --profile azureml --region westus --format azure-nsg --rules --local 10.1.0.0/24
      aztags export Sql --format cisco-asa --since cn:246           # only what changed
      aztags export AzureCloud.westus --format ipset --state /var/lib/aztags/fw1.state -o fw1.ipset
      aztags export --list-formats

    Exit codes: 0 written, 2 bad flags, 3 unknown tag/region/profile, nothing to export, or a
    profile rule whose tag the file lacks (--allow-missing: exit 0).
    """
    from resolver import __version__
    from resolver.exports import ExportRequest, get_format
    from resolver.exports import export as run_export
    from resolver.exports.files import read_state, write_atomic, write_state
    from resolver.exports.model import ExportOptions

    if not format_name:
        raise click.UsageError("Name the target with --format F ('aztags export --list-formats').")
    if since and state_file:
        raise click.UsageError("--since and --state both say where a delta starts; give one.")
    state = read_state(state_file, get_format(format_name).name) if state_file else None
    request = ExportRequest(
        format=format_name,
        names=names,
        profile=profile,
        region=region,
        direction=direction.lower() if direction else None,
        protocol=protocol.lower() if protocol else None,
        port=port,
        family=families_wanted(family),
        aggregate=aggregate,
        at=at,
        since=since,
        base=state.objects if state else None,
        base_label=state.label if state else "",
        options=ExportOptions(object_name, rules, local, chain, zone, interface, priority_base),
        profile_dirs=profile_folders(profiles_dir),
        allow_missing=allow_missing,
        version=__version__,
    )
    store = open_store(db, cloud, at, max_age_days=max_age_days, source=timeline)
    result = run_export(store, request)
    say_timeline(store, result.snapshot)
    say_freshness(store.freshness(result.snapshot, at))
    warn(render_warnings(result.warnings))
    if output is None:
        click.echo(result.text, nl=False)
    else:
        write_atomic(output, result.text)
    if state_file:
        write_state(state_file, result.input, result.format.name)
