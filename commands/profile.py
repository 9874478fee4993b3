"""aztags profile list/show/check: requirement profiles."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from cli_options import (
    at_option,
    cloud_option,
    complete_profiles,
    complete_regions,
    db_option,
    json_option,
    local_option,
    max_age_option,
    profile_dirs_option,
    profile_folders,
    rule_filter_options,
)
from commands.common import (
    ExitCode,
    handle_errors,
    open_store,
    profile_exit,
    say_freshness,
    say_timeline,
    source_option,
    warn,
)
from resolver.render import render_json, render_warnings


@click.group()
def profile() -> None:
    """Requirement profiles: the tags a workload needs, by direction and port.

    \b
    Examples:
      aztags profile list
      aztags profile show azureml --region westus
      aztags profile check ./my-profile.toml --region westeurope
    """


@profile.command("list")
@profile_dirs_option
@json_option
@handle_errors
def profile_list(profiles_dir: tuple[Path, ...], as_json: bool) -> None:
    """List built-in and user profiles: rule and host counts, the date of the page each was
    read from and its source (repository:path@commit; --json adds the section).

    \b
    Example:
      aztags profile list --profiles-dir ./profiles
    """
    from resolver.profiles import load_profiles
    from resolver.render import render_profiles_json, render_profiles_text

    profiles = load_profiles(profile_folders(profiles_dir)).values()
    if as_json:
        click.echo(render_json(render_profiles_json(profiles)))
    else:
        click.echo(render_profiles_text(profiles))


@profile.command("show")
@click.argument("name", shell_complete=complete_profiles)
@click.option(
    "--region",
    shell_complete=complete_regions,
    help="The workload's region (needed by {region} rules).",
)
@cloud_option()
@rule_filter_options
@click.option("--aggregate", is_flag=True, help="With --json: merge each rule's adjacent prefixes.")
@local_option("Your own address space: the addresses of VirtualNetwork rules (repeat).")
@at_option
@source_option
@max_age_option
@profile_dirs_option
@db_option
@json_option
@handle_errors
def profile_show(
    name: str,
    region: str | None,
    cloud: str,
    direction: str | None,
    protocol: str | None,
    port: int | None,
    allow_missing: bool,
    aggregate: bool,
    local: tuple[str, ...],
    at: str | None,
    timeline: str,
    max_age_days: int,
    profiles_dir: tuple[Path, ...],
    db: Path | None,
    as_json: bool,
) -> None:
    """Show a profile's rules resolved to real tag names, with prefix counts and warnings.

    With --json, each rule also carries its prefixes: one call builds a firewall object per
    rule. VirtualNetwork, AzureLoadBalancer and Internet are not tags of the file: they are
    shown as your --local addresses, the documented 168.63.129.16/32, and any address.

    \b
    Examples:
      aztags profile show azureml --region westus
      aztags profile show azureml --region westus --direction inbound --json --aggregate
      aztags profile show azureml --region chinanorth2 --cloud china --json
      aztags profile show sqlmi --region westeurope --local 10.20.0.0/27

    Exit codes: 0 ok, 3 unknown profile or region, or a rule whose tag the file lacks (shown
    as "(missing)"; --allow-missing or optional = true on the rule: exit 0).
    """
    from dataclasses import replace

    from resolver.render import render_freshness_json, render_profile_json, render_profile_text

    store = open_store(db, cloud, at, max_age_days=max_age_days, source=timeline)
    answer = store.cidrs(
        profile=name,
        region=region,
        at=at,
        aggregate=aggregate,
        profile_dirs=profile_folders(profiles_dir),
        direction=direction,
        protocol=protocol,
        port=port,
    )
    if local and answer.profile is not None:
        answer = replace(answer, profile=answer.profile.with_local(local))
    fresh = store.freshness(answer.snapshot, at)
    say_timeline(store, answer.snapshot)
    say_freshness(fresh)
    if as_json:
        click.echo(
            render_json(render_profile_json(answer, aggregate) | render_freshness_json(fresh))
        )
    else:
        click.echo(render_profile_text(answer))
        warn(render_warnings(answer.profile.warnings if answer.profile else ()))
    profile_exit(answer, allow_missing)


@profile.command("check")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--region",
    shell_complete=complete_regions,
    help="Check {region} rules for this region (and the region itself).",
)
@cloud_option()
@at_option
@db_option
@json_option
@handle_errors
def profile_check(
    file: Path, region: str | None, cloud: str, at: str | None, db: Path | None, as_json: bool
) -> None:
    """Check a profile file against the stored snapshot without installing it: its keys and
    values, its tags (with close matches for unknown ones), its regions.

    \b
    Examples:
      aztags profile check ./backup.toml
      aztags profile check ./backup.toml --region westeurope --cloud public --json

    Exit codes: 0 no error (warnings and notes may be printed), 2 the file does not parse
    (every problem with its line), 3 a tag or region the file does not have.
    """
    from resolver.profiles.check import check_profile_file
    from resolver.render import render_profile_check_json, render_profile_check_text

    store = open_store(db, cloud, at)
    result = check_profile_file(file, store, region=region, at=at)
    if as_json:
        click.echo(render_json(render_profile_check_json(result)))
    else:
        click.echo(render_profile_check_text(result))
    if result.errors:
        sys.exit(ExitCode.NOT_FOUND)
