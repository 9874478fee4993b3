"""aztags command line: parse flags, call one function, render the answer, map errors to exit codes.

No SQL, no JSON documents and no text tables here: the work is in resolver/ and cache/, and what
each command prints is built by resolver/render.py. The flags several commands share, their
validation, shell completion and the config file's defaults are in cli_options.py.
"""

from __future__ import annotations

import functools
import logging
import sys
import traceback
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from enum import IntEnum
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, ParamSpec, TextIO, TypeVar

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
    http_options,
    http_settings,
    json_option,
    local_option,
    max_age_option,
    profile_dirs_option,
    profile_folders,
    rule_filter_options,
    save_options,
    save_settings,
    setting_types,
    settings_default_map,
)
from resolver.clouds import CLOUDS, Cloud, get_cloud
from resolver.errors import (
    AztagsError,
    ConfigError,
    EmptyStoreError,
    FetchError,
    NotFoundError,
    QuarantinedError,
    StaleDataError,
    UsageError,
)
from resolver.render import readable, render_json, render_warnings

if TYPE_CHECKING:
    import sqlite3

    from resolver.alerts.setup import Alerts
    from resolver.models import IngestResult, SnapshotInfo
    from resolver.query import TagStore
    from resolver.staleness import Freshness

log = logging.getLogger("aztags")
P = ParamSpec("P")
R = TypeVar("R")


class ExitCode(IntEnum):
    OK = 0
    ERROR = 1  # a download, a file or the database failed
    USAGE = 2  # bad flags or arguments (click's own code)
    NOT_FOUND = 3  # nothing matched: unknown tag/region/profile, empty store, no lookup match
    STALE = 4  # the newest stored file is older than --max-age-days
    QUARANTINED = 5  # a new file lost too many prefixes and was not made current
    DIFFERENCES = 6  # --exit-code: differences were found (as git diff --exit-code)


def _exit_code(error: AztagsError) -> ExitCode:
    if isinstance(error, NotFoundError | EmptyStoreError):
        return ExitCode.NOT_FOUND
    if isinstance(error, StaleDataError):
        return ExitCode.STALE
    if isinstance(error, QuarantinedError):
        return ExitCode.QUARANTINED
    if isinstance(error, ConfigError | UsageError):
        return ExitCode.USAGE
    return ExitCode.ERROR


def fail(error: AztagsError) -> NoReturn:
    click.echo(f"aztags: {readable(str(error), controls=False)}", err=True)
    sys.exit(_exit_code(error))


def _unexpected(error: Exception) -> NoReturn:
    """The last resort: one sentence instead of a traceback (the traceback with -v)."""
    ctx = click.get_current_context(silent=True)
    if ctx is not None and ctx.find_root().params.get("verbose"):
        click.echo("".join(traceback.format_exception(error)).rstrip(), err=True)
    click.echo(
        f"aztags: unexpected error: {type(error).__name__}: {readable(str(error), 500)}; "
        "this is a bug, please report it with -v output",
        err=True,
    )
    sys.exit(ExitCode.ERROR)


def handle_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn the domain's errors into one stderr line and an exit code: never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except AztagsError as e:
            fail(e)
        except KeyboardInterrupt:
            click.echo("aztags: interrupted; nothing half-written was kept.", err=True)
            sys.exit(130)
        except BrokenPipeError:
            sys.stderr.close()  # the reader went away (| head): not an error
            sys.exit(ExitCode.OK)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise  # click's own: usage errors and exits, printed by click
        except Exception as e:  # the last resort, so that no traceback ever escapes
            _unexpected(e)

    return wrapper


# -- shared options, defined once ------------------------------------------------------------------


def _open(db: Path | None, *, readonly: bool = False) -> sqlite3.Connection:
    from cache.db import default_db_path, open_db

    conn = open_db(db or default_db_path(), readonly=readonly)
    ctx = click.get_current_context(silent=True)
    if ctx is not None:  # closed when the command ends, whichever way it ends
        ctx.call_on_close(conn.close)
    return conn


def _clouds(name: str) -> tuple[Cloud, ...]:
    return CLOUDS if name == "all" else (get_cloud(name),)


def source_option(func: Callable[P, R]) -> Callable[P, R]:
    """--source file|api of the commands that read one timeline. (fetch and import read a
    path with --source: there the Discovery API is fetch --api.)"""
    return click.option(
        "--source",
        "timeline",
        type=click.Choice(["file", "api"], case_sensitive=False),
        default="file",
        show_default=True,
        help="Which timeline answers: the published file, or the Discovery API's answers.",
    )(func)


def _say_timeline(store: TagStore, *snapshots: SnapshotInfo) -> None:
    """On stderr, which timeline answered, when it is the Discovery API's (the file's is the
    default; --json answers say it in their snapshot's "cloud": "Public@api")."""
    from resolver.render import render_timeline_note

    if store.source == "api":
        _warn(render_timeline_note(s) for s in snapshots)


def _print_json(doc: Any) -> None:
    click.echo(render_json(doc))


def _warn(lines: Iterable[str]) -> None:
    for line in lines:
        click.echo(line, err=True)


class _Progress:
    """A one-line byte counter on a terminal; silent when stderr is piped or logged."""

    def __init__(self, label: str):
        self.label = label
        self.enabled = sys.stderr.isatty()
        self.shown = False

    def __call__(self, done: int, total: int | None) -> None:
        if not self.enabled:
            return
        of = f" of {total / 1e6:.1f} MB" if total else " MB"
        amount = f"{done / 1e6:.1f}" + of
        click.echo(f"\r{self.label}: {amount}", err=True, nl=False)
        self.shown = True

    def close(self) -> None:
        if self.shown:
            click.echo("", err=True)


# -- the group -------------------------------------------------------------------------------------


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(None, "-V", "--version", package_name="aztags", prog_name="aztags")
@click.option("-v", "--verbose", count=True, help="Log each step on stderr (-vv for HTTP detail).")
@click.option(
    "--config",
    "config_file",
    envvar="AZTAGS_CONFIG",
    type=click.Path(dir_okay=False),
    help="TOML settings file. [default: ./aztags.toml, then ~/.config/aztags/aztags.toml]",
)
@click.pass_context
def main(ctx: click.Context, verbose: int, config_file: str | None) -> None:
    """Azure service tags for on-premises firewalls: fetch, store with history, query.

    \b
    Example:
      aztags fetch --cloud public
      aztags status
    """
    level = logging.WARNING if not verbose else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="aztags: %(message)s", stream=sys.stderr)
    if verbose < 2:
        logging.getLogger("urllib3").setLevel(logging.ERROR)  # its retry lines: -vv
    from resolver.config import read_config

    try:
        config = read_config(config_file, setting_types(main))
    except AztagsError as e:
        fail(e)
    except Exception as e:  # the last resort here too: the group runs outside handle_errors
        _unexpected(e)
    for warning in config.warnings:
        click.echo(f"aztags: warning: {warning}", err=True)
    ctx.obj = config  # the sections, for the commands that read them
    ctx.default_map = {
        name: defaults
        for name, command in main.commands.items()
        if (defaults := settings_default_map(command, config.settings))
    }


# -- fetch / import --------------------------------------------------------------------------------


def deliver_options(func: Callable[P, R]) -> Callable[P, R]:
    """--no-deliver and --profiles-dir (for [[watch]] profile = ...) of the ingesting commands."""
    func = click.option(
        "--no-deliver",
        is_flag=True,
        help="Record change alerts, but do not send pending ones now.",
    )(func)
    return profile_dirs_option(func)


def _alerts(kw: dict[str, Any]) -> Alerts:
    """The config file's watches, channels and delivery policy, checked. Profiles of watches
    come from --profiles-dir, else the config's ``profiles_dir`` (the `alerts` commands have no
    such flag), else the per-user folder."""
    from resolver.alerts.setup import alerts_from_config

    config = click.get_current_context().find_root().obj
    given = kw.get("profiles_dir") or tuple(
        Path(p) for p in config.settings.get("profiles_dir", ())
    )
    return alerts_from_config(config, profile_folders(given))


def _deliver(conn: sqlite3.Connection, alerts: Alerts, kw: dict[str, Any]) -> None:
    """Send pending alerts when channels are configured, unless --no-deliver."""
    if not alerts.channels or kw.get("no_deliver"):
        return
    from resolver.render import render_delivery_lines

    _warn(render_delivery_lines(alerts.deliver(conn)))


def _report(name: str, result: IngestResult, as_json: bool) -> ExitCode:
    """The line for one stored file (unless --json) and the exit code its outcome calls for."""
    from resolver.render import render_ingest_notes, render_ingest_text

    if not as_json:
        click.echo(render_ingest_text(name, result))
        _warn(render_ingest_notes(result))
    return ExitCode.QUARANTINED if result.outcome == "quarantined" else ExitCode.OK


@main.command()
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
    alerts = _alerts(kw)
    clouds: tuple[Cloud | None, ...]
    if source is not None:  # the file says which cloud; 'all' (a config default) too
        clouds = (None,) if cloud is None or cloud.lower() == "all" else (get_cloud(cloud),)
    else:
        clouds = _clouds((cloud or "public").lower())
    verbose = bool(click.get_current_context().find_root().params.get("verbose"))
    conn = _open(db)
    worst = ExitCode.OK
    docs = []
    unreachable = False
    for c in clouds:
        progress = _Progress(f"Downloading {c.name}" if c else "Reading")
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
            worst = max(worst, _exit_code(outcome))
        elif outcome.ingest is None:
            if not as_json:
                click.echo(render_unchanged_text(name, outcome.source))
        else:
            worst = max(worst, _report(name, outcome.ingest, as_json))
    if unreachable:
        click.echo(render_fetch_hint(), err=True)
    _deliver(conn, alerts, kw)
    if as_json:
        _print_json(docs if len(clouds) > 1 else docs[0])
    sys.exit(worst)


@main.command("import")
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
    alerts = _alerts(kw)
    found = find_import_files(paths)
    files = found.files
    for path in found.skipped:
        log.info("Skipped %s: not named ServiceTags_*.json or ServiceTags_*.json.gz", path)
    conn = _open(db)
    worst = ExitCode.OK
    docs = []
    outcomes: list[str] = []
    show_bar = sys.stderr.isatty() and not as_json and len(files) > 1
    with click.progressbar(
        length=len(files), label="Importing", file=sys.stderr, hidden=not show_bar
    ) as bar:
        imported = import_files(conn, files, http, options, after_save=alerts.recorder())
        for path, result in imported:
            bar.update(1)
            if as_json:  # the documents only when they are printed
                docs.append(render_import_json(path, result))
            if isinstance(result, AztagsError):
                if show_bar:
                    click.echo("", err=True)
                click.echo(f"aztags: {path.name}: {result}", err=True)
                worst = max(worst, _exit_code(result))
                outcomes.append("failed")
            else:
                name = path.name  # and for an API answer (az, PowerShell), its timeline
                if result.snapshot.cloud.endswith("@api"):
                    name = f"{name}: {result.snapshot.cloud}"
                worst = max(worst, _report(name, result, as_json))
                outcomes.append(str(result.outcome))
    _deliver(conn, alerts, kw)
    if as_json:
        _print_json(docs + [render_import_skipped(p) for p in found.skipped])
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
    alerts = _alerts(kw)
    request = ApiRequest(get_cloud(name), subscription, location, arm_endpoint)
    conn = _open(db)
    outcome = refresh_api(conn, request, http, options, log=log)
    assert outcome.ingest is not None  # an API answer is always stored or matched
    key = outcome.ingest.snapshot.cloud
    if as_json:
        _print_json(render_fetch_json(key, outcome))
    code = _report(key, outcome.ingest, as_json)
    _deliver(conn, alerts, kw)
    sys.exit(code)


# -- status / snapshots ----------------------------------------------------------------------------


@main.command()
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
    from resolver.staleness import status_report

    report = status_report(
        _open(db, readonly=True),
        _clouds(cloud.lower()),
        max_age_days,
        datetime.now(UTC),
        source=timeline,
    )
    statuses = report.judged
    if as_json:
        _print_json(render_status_json(statuses, max_age_days, report.alongside))
    else:
        click.echo(render_status_text(statuses, report.alongside))
    stale = render_stale_note(statuses, max_age_days)
    if stale:
        click.echo(stale, err=True)
        sys.exit(ExitCode.STALE)


@main.command()
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

    infos = list_snapshots(_open(db, readonly=True), _clouds(cloud.lower()), timeline.lower())
    if as_json:
        _print_json(render_snapshots_json(infos))
        return
    click.echo(render_snapshots_text(infos))
    _warn(render_quarantined_notes(infos))


# -- queries ---------------------------------------------------------------------------------------


# -- shell completion: candidates from the store and the profiles (resolver/complete.py) ---------


def _profile_exit(answer: Any, allow_missing: bool) -> None:
    """After a profile's answer is printed: name its missing rules on stderr, and exit 3 when a
    required one is missing and --allow-missing was not given."""
    from resolver.render import render_profile_missing

    _warn(render_profile_missing(answer, allow_missing))
    if answer.profile is not None and answer.profile.missing and not allow_missing:
        sys.exit(ExitCode.NOT_FOUND)


def _store(
    db: Path | None,
    cloud: str,
    *refs: str | None,
    max_age_days: int | None = None,
    source: str = "file",
) -> TagStore:
    """The read-only store of a cloud, once every --at/--from/--to has the right form and is not
    after today (a usage error comes before any database is opened)."""
    from resolver.query import TagStore
    from resolver.refs import parse_at
    from resolver.staleness import DEFAULT_MAX_AGE_DAYS

    today = datetime.now(UTC).date()
    for ref in refs:
        if ref is not None:
            parse_at(ref, today)
    name = "public" if cloud == "all" else cloud  # 'all': a starting point for every cloud
    limit = DEFAULT_MAX_AGE_DAYS if max_age_days is None else max_age_days
    return TagStore(
        _open(db, readonly=True), get_cloud(name), max_age_days=limit, source=source.lower()
    )


def _say_freshness(*freshness: Freshness | None) -> None:
    """Print on stderr what the answer's snapshot(s) call for: one warning line when the data
    is stale, one note when --at named a day after the newest file (resolver.staleness)."""
    from resolver.render import render_freshness_lines

    _warn(render_freshness_lines(f for f in freshness if f is not None))


@main.command()
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

    store = _store(db, cloud, at, max_age_days=max_age_days, source=timeline)
    snapshot, found = store.tags(at=at, region=region, service=service, feature=feature)
    if not found:
        raise NotFoundError("No tag matches these filters.")
    fresh = store.freshness(snapshot, at)
    _say_timeline(store, snapshot)
    _say_freshness(fresh)
    if as_json:
        click.echo(render_json(render_tags_json(snapshot, found) | render_freshness_json(fresh)))
    else:
        click.echo(render_tags_text(found))


@main.command()
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
    store = _store(db, cloud, at, max_age_days=max_age_days, source=timeline)
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
    _warn(render_warnings(answer.warnings))
    fresh = store.freshness(answer.snapshot, at)
    _say_timeline(store, answer.snapshot)
    _say_freshness(fresh)
    if as_json:
        click.echo(render_json(render_cidrs_json(answer, aggregate) | render_freshness_json(fresh)))
    else:
        click.echo(render_cidrs_csv(answer, aggregate) if as_csv else render_cidrs_text(answer))
    _profile_exit(answer, allow_missing)


@main.command()
@click.argument("queries", nargs=-1)
@click.option(
    "--file",
    "file",
    type=click.File("r", errors="surrogateescape"),
    help="Read addresses from a file, one per line ('-' for stdin): one output line per input.",
)
@cloud_option(allow_all=True)
@at_option
@source_option
@max_age_option
@db_option
@click.option(
    "--json", "as_json", is_flag=True, help="JSON: one document, or JSON lines with --file."
)
@handle_errors
def lookup(
    queries: tuple[str, ...],
    file: TextIO | None,
    cloud: str,
    at: str | None,
    timeline: str,
    max_age_days: int,
    db: Path | None,
    as_json: bool,
) -> None:
    """Which tags contain an IPv4/IPv6 address or CIDR: every one, most specific first.

    Output: one line per input, in input order, tab-separated: the input, then one field per
    matching tag as TAG,PREFIX,REGION,SERVICE (with --cloud all: TAG,PREFIX,REGION,SERVICE,CLOUD).
    For a CIDR, tags with prefixes inside it follow, marked 'inside:'. A bad line gets
    'error: ...' and the batch goes on. With --file, a line starting with '#' is a comment:
    printed as it is (text) or left out (JSON lines, whose first line names the snapshot).

    \b
    Examples:
      aztags lookup 20.38.96.1 2603:1020:200::1
      aztags lookup 20.38.96.0/20 --json
      aztags lookup 40.73.81.5 --cloud all
      cut -d' ' -f3 firewall.log | aztags lookup --file - > tags.tsv
      aztags lookup --file ips.txt --at 2023-03-20

    Exit codes: 0 ok, 3 a single lookup matched nothing, 1 an address did not parse.
    """
    if not queries and file is None:
        raise click.UsageError(
            "Give addresses, or --file F ('-' for stdin). Example: aztags lookup 20.38.96.1"
        )
    if queries and file is not None:
        raise click.UsageError("Give addresses or --file, not both.")
    every = cloud.lower() == "all"
    store = _store(db, cloud.lower(), at, max_age_days=max_age_days, source=timeline)
    if file is not None:
        _lookup_file(store, file, at, every=every, as_json=as_json)
        return
    _lookup_queries(store, queries, at, every=every, as_json=as_json)


def _lookup_file(
    store: TagStore, file: TextIO, at: str | None, *, every: bool, as_json: bool
) -> None:
    """``lookup --file``: stream the answers, a header line first with --json."""
    from resolver.query import CloudsBatch, LookupBatch
    from resolver.render import (
        render_lookup_all_header,
        render_lookup_all_stream,
        render_lookup_header,
        render_lookup_stream,
    )

    batch: LookupBatch | CloudsBatch
    if every:
        batch = store.lookup_batch_all(at)
        freshness = [b.freshness for b in batch.batches]
    else:
        batch = store.lookup_batch(at)
        freshness = [batch.freshness]
    _say_timeline(store, *(f.snapshot for f in freshness if f is not None))
    _say_freshness(*freshness)
    lines = _counted(file, "Looked up") if sys.stderr.isatty() else file
    write = sys.stdout.write
    rendered: Iterator[str]
    if isinstance(batch, CloudsBatch):
        if as_json:
            write(render_lookup_all_header(batch))
        rendered = render_lookup_all_stream(batch.answers(lines), batch, as_json=as_json)
    else:
        if as_json:
            write(render_lookup_header(batch.snapshot, batch.freshness))
        rendered = render_lookup_stream(batch.answers(lines), batch.details, as_json=as_json)
    while chunk := "".join(islice(rendered, 4096)):  # joined in C: no Python loop per line
        write(chunk)
    if batch.errors:
        click.echo(
            f"aztags: {batch.errors} line(s) were not addresses; see 'error:' in the output.",
            err=True,
        )
        sys.exit(ExitCode.ERROR)


def _lookup_queries(
    store: TagStore, queries: tuple[str, ...], at: str | None, *, every: bool, as_json: bool
) -> None:
    """``lookup ADDR...``: one document or one line per query."""
    from resolver.render import (
        render_found_elsewhere,
        render_lookup_all_json,
        render_lookup_all_text,
        render_lookup_report_json,
        render_lookup_text,
    )

    if every:
        reports = store.lookup_report_all(queries, at)
    else:
        reports = [store.lookup_report(queries, at=at)]
    _say_timeline(store, *(r.snapshot for r in reports))
    _say_freshness(*(r.freshness for r in reports))
    if every:
        doc = render_lookup_all_json(reports) if as_json else render_lookup_all_text(reports)
    else:
        report = reports[0]
        doc = (
            render_lookup_report_json(report)
            if as_json
            else render_lookup_text(report.answers, report.details)
        )
    click.echo(render_json(doc) if as_json else doc)
    answers = reports[0].answers
    elsewhere = {}
    if not every:  # an address in no tag here may be another stored cloud's: say which
        missed = [a.query for a in answers if a.result is not None and not a.result.tags]
        elsewhere = store.found_elsewhere(missed)
        _warn(render_found_elsewhere(store.cloud, elsewhere))
    bad = [readable(a.query, limit=80) for a in answers if a.error]
    if bad:
        click.echo(f"aztags: not an address or CIDR: {', '.join(bad)}", err=True)
        sys.exit(ExitCode.ERROR)
    if len(answers) == 1 and not any(
        r.answers[0].result.tags for r in reports if r.answers[0].result
    ):
        query = answers[0].query
        if every:
            names = ", ".join(r.snapshot.cloud for r in reports)
            click.echo(
                f"aztags: {query} is in no service tag of any stored cloud ({names}).", err=True
            )
        elif query not in elsewhere:  # else said just above
            click.echo(f"aztags: {query} is in no {store.cloud.name} service tag.", err=True)
        sys.exit(ExitCode.NOT_FOUND)


def _counted(lines: Iterable[str], label: str, every: int = 100_000) -> Iterator[str]:
    """Pass lines through, showing a running count on the terminal (stderr) for long batches."""
    count = 0
    for count, line in enumerate(lines, start=1):  # noqa: B007 - count is read after the loop
        if count % every == 0:
            click.echo(f"\r{label} {count:,} lines", err=True, nl=False)
        yield line
    if count >= every:
        click.echo(f"\r{label} {count:,} lines", err=True)


@main.command()
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

    answer = _store(db, cloud, from_at, to_at, source=timeline).diff(
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


@main.command()
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

    store = _store(db, cloud, source=timeline)
    if parse_network(name) is not None:
        spans = store.prefix_history(name)
        _say_timeline(store, spans.snapshot)
        if as_json:
            click.echo(render_json(render_prefix_history_json(spans)))
        else:
            click.echo(render_prefix_history_text(spans))
        return
    answer = store.history_report(name)
    _say_timeline(store, answer.snapshot)
    if as_json:
        click.echo(render_json(render_tag_history_json(answer)))
    else:
        click.echo(render_history_text(answer.versions))


@main.group()
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

    store = _store(db, cloud, at, max_age_days=max_age_days, source=timeline)
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
    _say_timeline(store, answer.snapshot)
    _say_freshness(fresh)
    if as_json:
        click.echo(
            render_json(render_profile_json(answer, aggregate) | render_freshness_json(fresh))
        )
    else:
        click.echo(render_profile_text(answer))
        _warn(render_warnings(answer.profile.warnings if answer.profile else ()))
    _profile_exit(answer, allow_missing)


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

    store = _store(db, cloud, at)
    result = check_profile_file(file, store, region=region, at=at)
    if as_json:
        click.echo(render_json(render_profile_check_json(result)))
    else:
        click.echo(render_profile_check_text(result))
    if result.errors:
        sys.exit(ExitCode.NOT_FOUND)


# -- run / alerts ----------------------------------------------------------------------------------


def _service_logging() -> None:
    """`run` logs one line per event on stderr, with a UTC timestamp, at INFO (-v: DEBUG)."""
    import time

    verbose = click.get_current_context().find_root().params.get("verbose") or 0
    handler = logging.StreamHandler(sys.stderr)
    formatter = logging.Formatter("%(asctime)s aztags: %(message)s", "%Y-%m-%dT%H:%M:%SZ")
    formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    logger = logging.getLogger("aztags")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.DEBUG if verbose >= 2 else logging.INFO)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)


@main.command()
@click.option(
    "--once",
    is_flag=True,
    help="One round (refresh every configured cloud, check for failing and stale sources, "
    "send pending alerts), then exit: for cron and systemd timers.",
)
@http_options
@save_options
@profile_dirs_option
@db_option
@handle_errors
def run(once: bool, db: Path | None, profiles_dir: tuple[Path, ...], **kw: Any) -> None:
    """Run as a service: refresh clouds on a schedule and send change alerts.

    Refreshes each [[refresh]] cloud of the config file (none: public, every 6 hours) once at
    start, then on its schedule (every = "6h" with up to 10% jitter, or cron = "0 */6 * * *"),
    never two runs at once. Raises the alerts of the [[watch]] entries and sends them to their
    [[channel]]s, retrying until delivered. Logs one line per event on stderr. SIGTERM or
    SIGINT: the run in progress finishes, then exit 0.

    \b
    Examples:
      aztags --config /etc/aztags/aztags.toml run
      aztags run --once                 # from cron or a systemd timer

    Exit codes (--once): 0 every cloud refreshed, 1 some refresh failed, 5 some file
    quarantined. An alert still pending after this round's attempts does not fail it
    ('aztags alerts list --pending' shows it).
    """
    from cache.db import default_db_path
    from resolver.alerts.setup import alerts_from_config
    from resolver.scheduler import jobs_from_config, run_forever, run_once

    config = click.get_current_context().find_root().obj
    alerts = alerts_from_config(config, profile_folders(profiles_dir))
    jobs = jobs_from_config(config.refresh, str(config.path or "the config file"))
    http, options = http_settings(kw), save_settings(kw)
    path = db or default_db_path()
    _open(path).close()  # a database that cannot be opened fails here, with its sentence
    _service_logging()
    if not once:
        run_forever(path, jobs, alerts, http, options)
        sys.exit(ExitCode.OK)
    worst = ExitCode.OK
    for cloud_round in run_once(path, jobs, alerts, http, options):
        if cloud_round.error is not None:
            worst = max(worst, _exit_code(cloud_round.error))
        elif cloud_round.quarantined:
            worst = max(worst, ExitCode.QUARANTINED)
    sys.exit(worst)


@main.group()
def alerts() -> None:
    """Change alerts: list what was raised and sent, retry dead letters, test a channel.

    \b
    Examples:
      aztags alerts list --pending
      aztags alerts retry
      aztags alerts test netops
    """


@alerts.command("list")
@click.option("--pending", "state", flag_value="pending", help="Only alerts not delivered yet.")
@click.option("--dead", "state", flag_value="dead", help="Only dead letters (given up).")
@click.option("--limit", type=click.IntRange(1), default=50, show_default=True)
@db_option
@json_option
@handle_errors
def alerts_list(state: str | None, limit: int, db: Path | None, as_json: bool) -> None:
    """List alert events and their delivery per channel, newest first.

    \b
    Examples:
      aztags alerts list
      aztags alerts list --dead --json
    """
    from cache.outbox import has_outbox, list_deliveries
    from resolver.render import render_alerts_json, render_alerts_text

    conn = _open(db, readonly=True)
    rows = list_deliveries(conn, state, limit) if has_outbox(conn) else []
    if as_json:
        _print_json(render_alerts_json(rows))
    else:
        click.echo(render_alerts_text(rows))


@alerts.command("retry")
@click.argument("ids", nargs=-1)
@click.option("--no-deliver", is_flag=True, help="Queue them again without sending now.")
@db_option
@handle_errors
def alerts_retry(ids: tuple[str, ...], no_deliver: bool, db: Path | None) -> None:
    """Queue dead letters again (those named by event or message id, else all) and send them.

    Channels disabled by their receiver (410 Gone) are enabled again.

    \b
    Examples:
      aztags alerts retry
      aztags alerts retry evt_01KBX8Y5D3M2V1Q9R7T6W4Z0AB

    Exit codes: 0 queued (and sent, or still pending), 2 bad config, 3 unknown id.
    """
    from resolver.alerts.deliver import retry

    settings = _alerts({})
    conn = _open(db)
    found = retry(conn, list(ids) or None, settings.now())
    click.echo(f"{len(found)} dead letter(s) queued again.")
    _deliver(conn, settings, {"no_deliver": no_deliver})


@alerts.command("test")
@click.argument("channel")
@handle_errors
def alerts_test(channel: str) -> None:
    """Send a sample event to one [[channel]] of the config file, now, and say what happened.

    \b
    Example:
      aztags alerts test netops

    Exit codes: 0 delivered, 1 not delivered, 2 no such channel in the config file.
    """
    from resolver.alerts.channels import send
    from resolver.alerts.model import sample_message

    settings = _alerts({})
    if channel not in settings.channels:
        import difflib

        close = difflib.get_close_matches(channel, list(settings.channels), n=1)
        hint = f" Did you mean {close[0]}?" if close else ""
        known = ", ".join(settings.channels) or "none"
        raise UsageError(
            f"No [[channel]] named {channel!r} in the config file (defined: {known}).{hint}"
        )
    config = settings.channels[channel]
    result = send(
        config,
        sample_message(channel, settings.now()),
        timeout=settings.policy.timeout,
    )
    click.echo(f"{channel}: {result.status}: {readable(result.detail, 300)}")
    sys.exit(ExitCode.OK if result.status == "sent" else ExitCode.ERROR)


# -- export ----------------------------------------------------------------------------------------


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


@main.command()
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
    store = _store(db, cloud, at, max_age_days=max_age_days, source=timeline)
    result = run_export(store, request)
    _say_timeline(store, result.snapshot)
    _say_freshness(store.freshness(result.snapshot, at))
    _warn(render_warnings(result.warnings))
    if output is None:
        click.echo(result.text, nl=False)
    else:
        write_atomic(output, result.text)
    if state_file:
        write_state(state_file, result.input, result.format.name)


# -- serve / backup --------------------------------------------------------------------------------


def _tls_file(value: object, name: str, where: str) -> str | None:
    """A TLS file setting checked: readable, or a ConfigError naming where it was set."""
    if not value:
        return None
    path = Path(str(value)).expanduser()
    try:
        with path.open("rb"):
            pass
    except OSError as e:
        raise ConfigError(
            f"Cannot read the TLS {name} {path} ({where}): {e.strerror or e}. Give the path "
            "of a PEM file this user may read."
        ) from None
    return str(path)


def _listen(host: str, port: int) -> Any:
    """The listening socket, bound here so that a port in use is one sentence (and --port 0
    gets a free port, logged with its number)."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as e:
        sock.close()
        raise AztagsError(
            f"Cannot listen on {host} port {port}: {e.strerror or e}. Pick another --port (or "
            "[serve] port), or stop what listens there."
        ) from None
    return sock


def _stop_on_signals() -> list[str]:
    """SIGTERM and SIGINT end the server normally (exit 0). uvicorn handles them while it runs
    and raises them again once it has shut down; these handlers receive that second one (the
    default SIGTERM handler would kill the process, SIGINT's would raise KeyboardInterrupt)."""
    import signal

    received: list[str] = []

    def note(number: int, frame: object) -> None:
        received.append(signal.Signals(number).name)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, note)
    return received


@main.command()
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Address to listen on ([serve] host)."
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8080,
    show_default=True,
    help="Port to listen on ([serve] port); 0: any free port, logged at start.",
)
@click.option(
    "--with-scheduler",
    is_flag=True,
    help="Also run the scheduler of 'aztags run' in this process (one process for everything).",
)
@click.option(
    "--tls-cert",
    type=click.Path(dir_okay=False, exists=True),
    help="PEM certificate chain, server certificate first (HTTPS; [serve] tls_cert).",
)
@click.option(
    "--tls-key",
    type=click.Path(dir_okay=False, exists=True),
    help="PEM private key of the certificate ([serve] tls_key).",
)
@max_age_option
@http_options
@save_options
@profile_dirs_option
@db_option
@handle_errors
def serve(
    host: str,
    port: int,
    with_scheduler: bool,
    tls_cert: str | None,
    tls_key: str | None,
    max_age_days: int,
    profiles_dir: tuple[Path, ...],
    db: Path | None,
    **kw: Any,
) -> None:
    """Serve feeds for firewalls, a JSON API and a web page over HTTP.

    Reads the database read-only and sees what 'aztags run' stores meanwhile; when the file is
    replaced (a new copy from 'aztags backup' renamed into place) it reads the new one. Settings
    also come from the config file's [serve] table (a flag wins); [auth] turns on basic auth /
    bearer tokens. With --with-scheduler, the [[refresh]] clouds are refreshed in this process
    too (the download options apply to them). SIGTERM or SIGINT: requests and the refresh in
    progress finish, then exit 0.

    \b
    Examples:
      aztags serve --port 8080
      curl http://127.0.0.1:8080/feeds/Storage.WestEurope.txt
      curl 'http://127.0.0.1:8080/feeds/profile/azureml.txt?region=westus'
      aztags serve --with-scheduler --host 0.0.0.0 --tls-cert cert.pem --tls-key key.pem
    """
    import threading

    import uvicorn

    from cache.db import default_db_path
    from resolver import __version__
    from resolver.server.app import Settings, auth_from_config, create_app

    ctx = click.get_current_context()
    config = ctx.find_root().obj
    section = config.serve
    where = f"[serve] in {config.path}" if config.path else "[serve]"

    def given(name: str) -> bool:  # a flag on the command line beats the [serve] table
        source = ctx.get_parameter_source(name)
        return source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP")

    host = host if given("host") else str(section.get("host", host))
    port = port if given("port") else int(section.get("port", port))
    with_scheduler = with_scheduler or bool(section.get("with_scheduler", False))
    tls_cert = tls_cert or _tls_file(section.get("tls_cert"), "certificate", f"tls_cert of {where}")
    tls_key = tls_key or _tls_file(section.get("tls_key"), "key", f"tls_key of {where}")
    if bool(tls_cert) != bool(tls_key):
        raise click.UsageError("HTTPS needs both --tls-cert and --tls-key (or tls_cert/tls_key).")
    path = db or default_db_path()
    starts, stops = [], []
    if with_scheduler:
        from resolver.alerts.setup import alerts_from_config
        from resolver.scheduler import jobs_from_config, run_forever

        alerts = alerts_from_config(config, profile_folders(profiles_dir))
        jobs = jobs_from_config(config.refresh, str(config.path or "the config file"))
        _open(path).close()  # creates the database, so the server can open it read-only
        stop = threading.Event()
        thread = threading.Thread(
            target=run_forever,
            args=(path, jobs, alerts, http_settings(kw), save_settings(kw)),
            kwargs={"stop": stop, "install_signals": False},
            name="aztags-scheduler",
            daemon=True,
        )
        starts.append(thread.start)
        stops += [stop.set, lambda: thread.join(timeout=300)]
    settings = Settings(
        db=path,
        auth=auth_from_config(config.auth),
        max_age_days=max_age_days,
        profile_dirs=profile_folders(profiles_dir),
        version=__version__,
        on_startup=tuple(starts),
        on_shutdown=tuple(stops),
    )
    _service_logging()
    server_config = uvicorn.Config(
        create_app(settings),
        ssl_certfile=tls_cert,
        ssl_keyfile=tls_key,
        log_level="warning",
        access_log=False,
    )
    try:
        server_config.load()  # the TLS context: a certificate that does not load fails here
    except (OSError, ValueError) as e:  # ssl.SSLError is an OSError
        raise ConfigError(
            f"Cannot use the TLS certificate {tls_cert} with the key {tls_key}: {e}. Both must "
            "be PEM files, the key the certificate's own, unencrypted."
        ) from None
    sock = _listen(host, port)
    bound = sock.getsockname()[1]
    received = _stop_on_signals()
    log.info("serving %s on %s://%s:%d", path, "https" if tls_cert else "http", host, bound)
    server = uvicorn.Server(server_config)
    server.run(sockets=[sock])
    if not server.started:
        raise AztagsError(f"The server on {host} port {bound} did not start; see the log above.")
    log.info("server stopped%s", f" ({received[0]})" if received else "")


@main.command()
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


# -- reconcile -------------------------------------------------------------------------------------


@main.command()
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

    found = reconcile_all(_open(db, readonly=True), _clouds(cloud.lower()))
    if as_json:
        _print_json(render_reconcile_json(found))
    else:
        click.echo(render_reconcile_text(found))
    if any(r.differs for r in found):
        sys.exit(ExitCode.DIFFERENCES)


if __name__ == "__main__":
    main()
