"""aztags fetch and aztags import: store files with their history."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import click

from cli_options import (
    cloud_option,
    db_option,
    http_options,
    http_settings,
    json_option,
    profile_dirs_option,
    save_options,
    save_settings,
)
from commands.common import (
    ExitCode,
    Progress,
    alert_settings,
    clouds_named,
    connect,
    deliver_pending,
    exit_code_of,
    handle_errors,
    log,
    print_json,
    warn,
)
from resolver.clouds import Cloud, get_cloud
from resolver.errors import (
    AztagsError,
    FetchError,
)

if TYPE_CHECKING:
    from resolver.ingest import IngestResult


P = ParamSpec("P")
R = TypeVar("R")


def deliver_options(func: Callable[P, R]) -> Callable[P, R]:
    """--no-deliver and --profiles-dir (for [[watch]] profile = ...) of the ingesting commands."""
    func = click.option(
        "--no-deliver",
        is_flag=True,
        help="Record change alerts, but do not send pending ones now.",
    )(func)
    return profile_dirs_option(func)


def _report(name: str, result: IngestResult, as_json: bool) -> ExitCode:
    """The line for one stored file (unless --json) and the exit code its outcome calls for."""
    from resolver.render import render_ingest_notes, render_ingest_text

    if not as_json:
        click.echo(render_ingest_text(name, result))
        warn(render_ingest_notes(result))
    return ExitCode.QUARANTINED if result.outcome == "quarantined" else ExitCode.OK


@click.command()
@cloud_option(allow_all=True, default=None)
@click.option(
    "--source",
    help="Skip discovery: read this .json/.json.gz path or URL, or '-' for stdin.",
)
@click.option(
    "--api",
    "api",
    is_flag=True,
    help="Ask the cloud's Service Tag Discovery API (Resource Manager) instead of the file.",
)
@click.option("--subscription", metavar="ID", help="--api: a subscription of the cloud to ask.")
@click.option(
    "--location",
    metavar="LOC",
    help="--api: a location of the cloud, only a reference for the version. "
    "[default: westus, usgovvirginia, chinaeast2]",
)
@click.option(
    "--arm-endpoint",
    metavar="URL",
    envvar="AZTAGS_ARM_ENDPOINT",
    help="--api: another Resource Manager base URL (a private endpoint). "
    "[default: the cloud's; env AZTAGS_ARM_ENDPOINT]",
)
@http_options
@save_options
@deliver_options
@db_option
@json_option
@handle_errors
def fetch(
    cloud: str | None,
    source: str | None,
    api: bool,
    subscription: str | None,
    location: str | None,
    arm_endpoint: str | None,
    db: Path | None,
    as_json: bool,
    **kw: Any,
) -> None:
    """Download the current Service Tags file of a cloud and store it with its history.

    Finds the file through Microsoft's Download Center (stable folder, details page,
    confirmation page, then any link), downloads it only when it changed (ETag), validates it
    and stores it in one transaction. --cloud defaults to public; with --source, the cloud is
    read from the file (a --cloud given must be the file's). --source also takes what
    'az network list-service-tags' and 'Get-AzNetworkServiceTag | ConvertTo-Json -Depth 10'
    print: stored as Discovery API answers.

    With --api, asks the cloud's Service Tag Discovery API through a subscription instead,
    with the token in AZURE_ACCESS_TOKEN, else one from azure-identity (pip install
    'aztags[azure]': managed identity, az login, environment credentials). Its answers have
    their own timeline (Public@api: query them with --source api).

    \b
    Examples:
      aztags fetch                      # Public cloud
      aztags fetch --cloud all
      aztags fetch --source ServiceTags_China_20241118.json.gz   # air-gapped, any cloud
      curl -s "$URL" | aztags fetch --source -
      aztags fetch --cloud public --api --subscription 00000000-0000-0000-0000-000000000000

    With [[watch]] entries in the config file, a new file raises change alerts (stored with
    it), and pending alerts are sent to the [[channel]]s unless --no-deliver.

    Exit codes: 0 stored or unchanged, 1 failed, 2 bad flags, 5 quarantined.
    """
    if api:
        _fetch_api(cloud, source, subscription, location, arm_endpoint, db, as_json, kw)
        return
    typed = [
        flag
        for flag, name in (
            ("--subscription", "subscription"),
            ("--location", "location"),
            ("--arm-endpoint", "arm_endpoint"),
        )
        if _given_on_command_line(name)
    ]
    if typed:
        raise click.UsageError(f"{', '.join(typed)} go with --api (the Discovery API).")
    from resolver.refresh import RefreshResult, refresh_cloud
    from resolver.render import (
        render_fetch_failure,
        render_fetch_hint,
        render_fetch_json,
        render_unchanged_text,
    )

    http, options = http_settings(kw), save_settings(kw)
    alerts = alert_settings(kw)
    clouds: tuple[Cloud | None, ...]
    if source is not None:  # the file says which cloud; 'all' (a config default) too
        clouds = (None,) if cloud is None or cloud.lower() == "all" else (get_cloud(cloud),)
    else:
        clouds = clouds_named((cloud or "public").lower())
    verbose = bool(click.get_current_context().find_root().params.get("verbose"))
    conn = connect(db)
    worst = ExitCode.OK
    docs = []
    unreachable = False
    for c in clouds:
        progress = Progress(f"Downloading {c.name}" if c else "Reading")
        outcome: RefreshResult | AztagsError
        try:
            outcome = refresh_cloud(
                conn,
                c,
                http,
                options,
                source=source,
                stdin=sys.stdin.buffer,
                progress=progress,
                after_save=alerts.recorder(),
            )
        except AztagsError as e:
            if len(clouds) == 1:
                raise
            outcome = e
        finally:
            progress.close()
        if isinstance(outcome, RefreshResult):  # an API answer's is its timeline: Public@api
            name = outcome.ingest.snapshot.cloud if outcome.ingest else outcome.cloud.name
        else:
            name = c.name if c else ""
        if as_json:  # the documents only when they are printed
            docs.append(render_fetch_json(name, outcome))
        if isinstance(outcome, AztagsError):
            click.echo(render_fetch_failure(name, outcome, verbose=verbose), err=True)
            unreachable |= isinstance(outcome, FetchError)
            worst = max(worst, exit_code_of(outcome))
        elif outcome.ingest is None:
            if not as_json:
                click.echo(render_unchanged_text(name, outcome.source))
        else:
            worst = max(worst, _report(name, outcome.ingest, as_json))
    if unreachable:
        click.echo(render_fetch_hint(), err=True)
    deliver_pending(conn, alerts, kw)
    if as_json:
        print_json(docs if len(clouds) > 1 else docs[0])
    sys.exit(worst)


@click.command("import")
@click.argument("paths", nargs=-1, required=True)
@http_options
@save_options
@deliver_options
@db_option
@json_option
@handle_errors
def import_(paths: tuple[str, ...], db: Path | None, as_json: bool, **kw: Any) -> None:
    """Backfill many files: paths, folders or quoted globs, in any order.

    Each file is one transaction; a bad file is reported and the others are still stored.
    The cloud comes from each file. A folder's files not named ServiceTags_*.json[.gz] are
    skipped and counted in the summary line (-v names each one).

    \b
    Examples:
      aztags import archive/ServiceTags_Public_*.json.gz
      aztags import 'archive/**/*.json.gz' ../mirror/

    Newer files raise change alerts as fetch does: one event per watch for the whole import
    (older files, backfilled, raise none).

    Exit codes: 0 all stored, 1 some file failed, 5 some file quarantined.
    """
    from resolver.refresh import find_import_files, import_files
    from resolver.render import render_import_json, render_import_skipped, render_import_summary

    http, options = http_settings(kw), save_settings(kw)
    alerts = alert_settings(kw)
    found = find_import_files(paths)
    files = found.files
    for path in found.skipped:
        log.info("Skipped %s: not named ServiceTags_*.json or ServiceTags_*.json.gz", path)
    conn = connect(db)
    worst = ExitCode.OK
    docs = []
    outcomes: list[str] = []
    show_bar = sys.stderr.isatty() and not as_json and len(files) > 1
    # click's bar only when shown: building even a hidden one imports its terminal code (~2 ms)
    progress = (
        click.progressbar(length=len(files), label="Importing", file=sys.stderr)
        if show_bar
        else contextlib.nullcontext(None)
    )
    with progress as bar:
        imported = import_files(conn, files, http, options, after_save=alerts.recorder())
        for path, result in imported:
            if bar is not None:
                bar.update(1)
            if as_json:  # the documents only when they are printed
                docs.append(render_import_json(path, result))
            if isinstance(result, AztagsError):
                if show_bar:
                    click.echo("", err=True)
                click.echo(f"aztags: {path.name}: {result}", err=True)
                worst = max(worst, exit_code_of(result))
                outcomes.append("failed")
            else:
                name = path.name  # and for an API answer (az, PowerShell), its timeline
                if result.snapshot.cloud.endswith("@api"):
                    name = f"{name}: {result.snapshot.cloud}"
                worst = max(worst, _report(name, result, as_json))
                outcomes.append(str(result.outcome))
    deliver_pending(conn, alerts, kw)
    if as_json:
        print_json(docs + [render_import_skipped(p) for p in found.skipped])
    elif len(files) > 1 or found.skipped:
        click.echo(render_import_summary(outcomes, len(found.skipped)))
    sys.exit(worst)


def _given_on_command_line(name: str) -> bool:
    """Whether a parameter was typed, not a default, an environment variable or a setting of
    the config file (which may hold subscription = ... for the --api runs)."""
    source = click.get_current_context().get_parameter_source(name)
    return source is not None and source.name == "COMMANDLINE"


def _fetch_api(
    cloud: str | None,
    source: str | None,
    subscription: str | None,
    location: str | None,
    arm_endpoint: str | None,
    db: Path | None,
    as_json: bool,
    kw: dict[str, Any],
) -> None:
    """``fetch --api``: one cloud's Discovery API answer, stored on its API timeline."""
    from resolver.render import render_fetch_json
    from resolver.sources.api import ApiRequest, refresh_api

    if source is not None and _given_on_command_line("source"):
        raise click.UsageError(
            "--api asks Resource Manager and --source reads a file: give one of them (a saved "
            "az or PowerShell answer goes with --source alone)."
        )
    name = (cloud or "public").lower()
    if name == "all":
        raise click.UsageError(
            "--api asks through one subscription, and a subscription belongs to one cloud: name "
            "it with --cloud public, usgov or china."
        )
    if not subscription:
        raise click.UsageError(
            "--api needs --subscription ID: a subscription of the cloud to ask through "
            "(az account show --query id -o tsv)."
        )
    http, options = http_settings(kw), save_settings(kw)
    alerts = alert_settings(kw)
    request = ApiRequest(get_cloud(name), subscription, location, arm_endpoint)
    conn = connect(db)
    outcome = refresh_api(conn, request, http, options, log=log)
    assert outcome.ingest is not None  # an API answer is always stored or matched
    key = outcome.ingest.snapshot.cloud
    if as_json:
        print_json(render_fetch_json(key, outcome))
    code = _report(key, outcome.ingest, as_json)
    deliver_pending(conn, alerts, kw)
    sys.exit(code)
