"""aztags command line: parse flags, call one function, format the answer, map errors to exit codes.

No SQL and no JSON walking here: the work is in resolver/ and cache/.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from enum import IntEnum
from pathlib import Path
from typing import Any

import click

from resolver.clouds import CLOUD_KEYS, CLOUDS, Cloud, get_cloud
from resolver.errors import (
    AztagsError,
    ConfigError,
    EmptyStoreError,
    NotFoundError,
    QuarantinedError,
    StaleDataError,
)
from resolver.prefixes import count
from resolver.prefixes import family as prefix_family

log = logging.getLogger("aztags")


class ExitCode(IntEnum):
    OK = 0
    ERROR = 1  # a download, a file or the database failed
    USAGE = 2  # bad flags or arguments (click's own code)
    NOT_FOUND = 3  # nothing matched: unknown tag/region/profile, empty store, no lookup match
    STALE = 4  # the newest stored file is older than --max-age-days
    QUARANTINED = 5  # a new file lost too many prefixes and was not made current


def _exit_code(error: AztagsError) -> ExitCode:
    if isinstance(error, NotFoundError | EmptyStoreError):
        return ExitCode.NOT_FOUND
    if isinstance(error, StaleDataError):
        return ExitCode.STALE
    if isinstance(error, QuarantinedError):
        return ExitCode.QUARANTINED
    if isinstance(error, ConfigError):
        return ExitCode.USAGE
    return ExitCode.ERROR


def fail(error: AztagsError) -> None:
    click.echo(f"aztags: {error}", err=True)
    sys.exit(_exit_code(error))


def handle_errors(func: Callable) -> Callable:
    """Turn the domain's errors into one stderr line and an exit code: never a traceback."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
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

    return wrapper


# -- shared options, defined once ------------------------------------------------------------------


def db_option(func: Callable) -> Callable:
    return click.option(
        "--db",
        "db",
        envvar="AZTAGS_DB",
        type=click.Path(dir_okay=False, path_type=Path),
        help="SQLite store. [env AZTAGS_DB; default: aztags.db in the per-user data directory]",
    )(func)


def json_option(func: Callable) -> Callable:
    return click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")(func)


def cloud_option(*, allow_all: bool = False, default: str | None = "public") -> Callable:
    choices = [*CLOUD_KEYS, "all"] if allow_all else list(CLOUD_KEYS)
    return click.option(
        "--cloud",
        type=click.Choice(choices, case_sensitive=False),
        default=default,
        show_default=default is not None,
        envvar="AZTAGS_CLOUD",
        help="Azure cloud." + (" 'all' for every cloud." if allow_all else ""),
    )


def http_options(func: Callable) -> Callable:
    def seconds(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
        # A float flag takes nan, inf, 0 and -1; none of them is a timeout. Here, not at the
        # socket: a usage error (exit 2) that names the flag.
        import math

        if value is not None and not (math.isfinite(value) and 0 < value <= 86400):
            raise click.BadParameter(
                f"{value:g} is not a number of seconds: give one above 0, at most 86400 (a day)."
            )
        return value

    options = [
        click.option(
            "--download-base",
            envvar="AZTAGS_DOWNLOAD_BASE",
            default="https://download.microsoft.com",
            show_default=True,
            help="Where the stable download folders live (a mirror or 127.0.0.1 in tests).",
        ),
        click.option(
            "--details-base",
            envvar="AZTAGS_DETAILS_BASE",
            default="https://www.microsoft.com/en-us/download",
            show_default=True,
            help="Where the Download Center details and confirmation pages live.",
        ),
        click.option(
            "--timeout",
            type=float,
            default=60.0,
            show_default=True,
            envvar="AZTAGS_TIMEOUT",
            callback=seconds,
            metavar="SECONDS",
            help="Read timeout: the longest wait for the next bytes from a server.",
        ),
        click.option(
            "--connect-timeout",
            type=float,
            default=10.0,
            show_default=True,
            envvar="AZTAGS_CONNECT_TIMEOUT",
            callback=seconds,
            metavar="SECONDS",
            help="The longest wait for a server to accept a connection.",
        ),
        click.option(
            "--deadline",
            type=float,
            default=180.0,
            show_default=True,
            envvar="AZTAGS_DEADLINE",
            callback=seconds,
            metavar="SECONDS",
            help="Give up on a cloud (discovery and download, retries included) after this long.",
        ),
        click.option(
            "--retries",
            type=click.IntRange(0, 10),
            default=3,
            show_default=True,
            envvar="AZTAGS_RETRIES",
            help="Retries on timeouts and 5xx answers.",
        ),
        click.option(
            "--max-size-mb",
            type=click.IntRange(1, 4096),
            default=64,
            show_default=True,
            help="Refuse a download larger than this.",
        ),
    ]
    return _stack(options, func)


def save_options(func: Callable) -> Callable:
    options = [
        click.option(
            "--force",
            is_flag=True,
            help="Accept a file that would be quarantined (lost too many prefixes).",
        ),
        click.option(
            "--quarantine-drop",
            type=click.FloatRange(0.0, 1.0),
            default=0.20,
            show_default=True,
            envvar="AZTAGS_QUARANTINE_DROP",
            help="Quarantine a new latest file that loses more than this share of prefix entries.",
        ),
        click.option(
            "--keep-raw/--no-keep-raw",
            default=True,
            show_default=True,
            help="Keep each file, gzip-compressed, in the database so history can be rebuilt.",
        ),
        click.option(
            "--allow-empty",
            is_flag=True,
            help="Store a file that lists no tags (refused otherwise, even with --force).",
        ),
    ]
    return _stack(options, func)


def _stack(options: list[Callable], func: Callable) -> Callable:
    """Apply option decorators in the order listed (first listed shows first in --help)."""
    for option in reversed(options):
        func = option(func)
    return func


def _http_settings(kw: dict[str, Any]):
    from resolver.sources import HttpSettings

    return HttpSettings(
        download_base=kw.pop("download_base"),
        details_base=kw.pop("details_base"),
        read_timeout=kw.pop("timeout"),
        connect_timeout=kw.pop("connect_timeout"),
        deadline=kw.pop("deadline"),
        retries=kw.pop("retries"),
        max_bytes=kw.pop("max_size_mb") * 1024 * 1024,
    )


def _save_options(kw: dict[str, Any]):
    from cache.store import SaveOptions

    return SaveOptions(
        keep_raw=kw.pop("keep_raw"),
        quarantine_drop=kw.pop("quarantine_drop"),
        force=kw.pop("force"),
        allow_empty=kw.pop("allow_empty"),
    )


def _open(db: Path | None, *, readonly: bool = False):
    from cache.db import default_db_path, open_db

    return open_db(db or default_db_path(), readonly=readonly)


def _clouds(name: str) -> tuple[Cloud, ...]:
    return CLOUDS if name == "all" else (get_cloud(name),)


def _print_json(doc: Any) -> None:
    click.echo(json.dumps(doc, indent=2, default=str))


def _print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    text = [[("" if v is None else str(v)) for v in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in text)]) for i, h in enumerate(headers)]
    click.echo("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    for row in text:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


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


def _option_type(param: click.Option) -> Any:
    """The config-file type of one option, from its click type (so the two never drift)."""
    from resolver import config as c

    if param.is_flag and not param.is_bool_flag:  # --ipv4/--ipv6 share one name: the value is 4/6
        return c.OneOf((param.flag_value,))
    kind = param.type
    item: c.ValueType
    if isinstance(kind, click.Choice):
        item = c.OneOf(tuple(str(x) for x in kind.choices), case_sensitive=kind.case_sensitive)
    elif isinstance(kind, click.IntRange):
        low = None if kind.min is None else int(kind.min) + (1 if kind.min_open else 0)
        high = None if kind.max is None else int(kind.max) - (1 if kind.max_open else 0)
        item = c.Integer(low, high)
    elif isinstance(kind, click.FloatRange):
        item = c.Number(kind.min, kind.max, kind.min_open, kind.max_open)
    elif isinstance(kind, click.types.IntParamType):
        item = c.Integer()
    elif isinstance(kind, click.types.FloatParamType):
        item = c.Number()
    elif isinstance(kind, click.types.BoolParamType):
        item = c.Boolean()
    elif isinstance(kind, click.Path | click.File):
        item = c.Text("a path")
    else:  # STRING, and the types click converts from text
        item = c.Text()
    return c.ListOf(item, single_ok=True) if param.multiple else item


def _command_settings(command: click.Command) -> dict[str, Any]:
    """The config-file type of each option of ``command`` (itself only), by option name."""
    from resolver.config import either

    types: dict[str, Any] = {}
    for param in command.params:
        if isinstance(param, click.Option) and param.name:
            kind = _option_type(param)
            types[param.name] = either(types[param.name], kind) if param.name in types else kind
    return types


def _setting_types(group: click.Group) -> dict[str, Any]:
    """The top-level config keys: every option of every command under ``group``, subcommands of
    groups included (not ``group``'s own, which are read before the file), each with the type
    that accepts what any of its options takes."""
    from resolver.config import either

    types: dict[str, Any] = {}

    def add(command: click.Command) -> None:
        for name, kind in _command_settings(command).items():
            types[name] = either(types[name], kind) if name in types else kind
        if isinstance(command, click.Group):
            for sub in command.commands.values():
                add(sub)

    for command in group.commands.values():
        add(command)
    return types


def _default_map(command: click.Command, settings: dict[str, object]) -> dict[str, Any]:
    """click's ``default_map`` for ``command``: the settings it has options for (a value one of
    them cannot take, such as cloud = "all" for ``tags``, leaves that one at its default), and
    for a group, one nested map per subcommand."""
    from resolver.config import normalized

    defaults: dict[str, Any] = {
        name: normalized(kind, settings[name])
        for name, kind in _command_settings(command).items()
        if name in settings and kind.accepts(settings[name])
    }
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            if sub_defaults := _default_map(sub, settings):
                defaults[name] = sub_defaults
    return defaults


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
        config = read_config(config_file, _setting_types(main))
    except AztagsError as e:
        fail(e)
    for warning in config.warnings:
        click.echo(f"aztags: warning: {warning}", err=True)
    ctx.obj = config  # the sections, for the commands that read them
    ctx.default_map = {
        name: defaults
        for name, command in main.commands.items()
        if (defaults := _default_map(command, config.settings))
    }


# -- fetch / import --------------------------------------------------------------------------------


def _report(cloud_name: str, result) -> ExitCode:
    """One line per stored file; returns the exit code its outcome calls for."""
    info = result.snapshot
    what = f"{cloud_name}: changeNumber {info.change_number}"
    if info.file_date:
        what += f" ({info.file_date})"
    if result.outcome == "duplicate":
        click.echo(f"{what}: already stored, nothing to do")
        return ExitCode.OK
    if result.outcome == "quarantined":
        click.echo(f"{what}: QUARANTINED, not made current", err=False)
        for note in result.notes:
            click.echo(f"aztags: quarantined because {note}.", err=True)
        click.echo(
            "aztags: inspect it with 'aztags snapshots'; "
            "accept it with --force if the drop is real.",
            err=True,
        )
        return ExitCode.QUARANTINED
    role = "now current" if result.outcome == "current" else "stored as history (backfill)"
    click.echo(
        f"{what}: {role}; {info.tag_count} tags, {info.prefix_count} prefix entries; "
        f"+{result.tags_added} tags, -{result.tags_removed} tags, {result.tags_changed} changed, "
        f"+{result.prefixes_added}/-{result.prefixes_removed} prefix entries"
    )
    return ExitCode.OK


def _ingest_json(result) -> dict[str, Any]:
    from dataclasses import asdict

    doc = asdict(result)
    del doc["changes"]  # per-tag detail is for the library (alerts); the document keeps its counts
    doc["snapshot"]["fetched_at"] = result.snapshot.fetched_at.isoformat()
    return doc


@main.command()
@cloud_option(allow_all=True)
@click.option(
    "--source",
    help="Skip discovery: read this .json/.json.gz path or URL, or '-' for stdin.",
)
@http_options
@save_options
@db_option
@json_option
@handle_errors
def fetch(cloud: str, source: str | None, db: Path | None, as_json: bool, **kw: Any) -> None:
    """Download the current Service Tags file of a cloud and store it with its history.

    Finds the file through Microsoft's Download Center (stable folder, details page,
    confirmation page, then any link), downloads it only when it changed (ETag), validates it
    and stores it in one transaction.

    \b
    Examples:
      aztags fetch                      # Public cloud
      aztags fetch --cloud all
      aztags fetch --source ServiceTags_Public_20250113.json.gz   # air-gapped
      curl -s "$URL" | aztags fetch --source -

    Exit codes: 0 stored or unchanged, 1 failed, 5 quarantined.
    """
    from resolver.refresh import refresh_cloud

    http, options = _http_settings(kw), _save_options(kw)
    clouds = _clouds(cloud.lower())
    if source is not None and len(clouds) > 1:
        raise click.UsageError("--source reads one file: name its cloud with --cloud, not 'all'.")
    conn = _open(db)
    worst = ExitCode.OK
    docs = []
    for c in clouds:
        progress = _Progress(f"Downloading {c.name}")
        try:
            result = refresh_cloud(
                conn, c, http, options, source=source, stdin=sys.stdin.buffer, progress=progress
            )
        except AztagsError as e:
            progress.close()
            if len(clouds) == 1:
                raise
            click.echo(f"aztags: {c.name}: {e}", err=True)
            docs.append({"cloud": c.name, "error": str(e)})
            worst = max(worst, _exit_code(e))
            continue
        progress.close()
        if result.ingest is None:
            docs.append({"cloud": c.name, "outcome": "unchanged", "source": result.source})
            if not as_json:
                click.echo(f"{c.name}: unchanged since the last fetch ({result.source})")
            continue
        docs.append({"cloud": c.name, **_ingest_json(result.ingest)})
        if as_json:
            code = ExitCode.QUARANTINED if result.ingest.outcome == "quarantined" else ExitCode.OK
        else:
            code = _report(c.name, result.ingest)
        worst = max(worst, code)
    if as_json:
        _print_json(docs if len(clouds) > 1 else docs[0])
    sys.exit(worst)


@main.command("import")
@click.argument("paths", nargs=-1, required=True)
@http_options
@save_options
@db_option
@json_option
@handle_errors
def import_(paths: tuple[str, ...], db: Path | None, as_json: bool, **kw: Any) -> None:
    """Backfill many files: paths, folders or quoted globs, in any order.

    Each file is one transaction; a bad file is reported and the others are still stored.
    The cloud comes from each file.

    \b
    Examples:
      aztags import archive/ServiceTags_Public_*.json.gz
      aztags import 'archive/**/*.json.gz' ../mirror/

    Exit codes: 0 all stored, 1 some file failed, 5 some file quarantined.
    """
    from resolver.refresh import expand_paths, import_files

    http, options = _http_settings(kw), _save_options(kw)
    files = expand_paths(paths)
    conn = _open(db)
    worst = ExitCode.OK
    docs = []
    show_bar = sys.stderr.isatty() and not as_json and len(files) > 1
    with click.progressbar(
        length=len(files), label="Importing", file=sys.stderr, hidden=not show_bar
    ) as bar:
        for path, result in import_files(conn, files, http, options):
            bar.update(1)
            if isinstance(result, AztagsError):
                if show_bar:
                    click.echo("", err=True)
                click.echo(f"aztags: {path.name}: {result}", err=True)
                docs.append({"file": str(path), "error": str(result)})
                worst = max(worst, _exit_code(result))
                continue
            docs.append({"file": str(path), **_ingest_json(result)})
            if not as_json:
                code = _report(path.name, result)
            else:
                code = ExitCode.QUARANTINED if result.outcome == "quarantined" else ExitCode.OK
            worst = max(worst, code)
    if as_json:
        _print_json(docs)
    sys.exit(worst)


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
@db_option
@json_option
@handle_errors
def status(cloud: str, max_age_days: int, db: Path | None, as_json: bool) -> None:
    """Show each cloud's current snapshot: changeNumber, file date, when fetched, age, counts.

    \b
    Example:
      aztags status --max-age-days 10 || alert "Azure tags are stale"

    Exit codes: 0 fresh, 3 nothing stored yet, 4 a cloud's newest file is too old.
    """
    from cache.store import load_current

    conn = _open(db, readonly=True)
    today = datetime.now(UTC).date()
    rows, docs, stale = [], [], []
    for c in _clouds(cloud.lower()):
        current = load_current(conn, c.name)
        if current is None:
            continue
        day = current.file_date or current.fetched_at.date()
        age = (today - day).days
        is_stale = age > max_age_days and not c.frozen
        if is_stale:
            stale.append(f"{c.name} ({age} days)")
        state = "STALE" if is_stale else ("frozen" if c.frozen else "ok")
        rows.append(
            [
                c.name,
                current.change_number,
                current.file_date or "-",
                current.fetched_at.strftime("%Y-%m-%d %H:%M"),
                f"{age}d",
                current.tag_count,
                current.prefix_count,
                state,
            ]
        )
        docs.append(
            {
                "cloud": c.name,
                "change_number": current.change_number,
                "file_date": current.file_date,
                "fetched_at": current.fetched_at.isoformat(),
                "age_days": age,
                "tags": current.tag_count,
                "prefixes": current.prefix_count,
                "stale": is_stale,
                "frozen": c.frozen,
            }
        )
    if not rows:
        raise EmptyStoreError("No snapshot is stored yet. Run 'aztags fetch' first.")
    if as_json:
        _print_json({"max_age_days": max_age_days, "clouds": docs})
    else:
        _print_table(
            [
                "cloud",
                "changeNumber",
                "file date",
                "fetched (UTC)",
                "age",
                "tags",
                "prefixes",
                "state",
            ],
            rows,
        )
    if stale:
        click.echo(
            f"aztags: stale: {', '.join(stale)} older than {max_age_days} days; "
            "is 'aztags fetch' running?",
            err=True,
        )
        sys.exit(ExitCode.STALE)


@main.command()
@cloud_option(allow_all=True, default="all")
@db_option
@json_option
@handle_errors
def snapshots(cloud: str, db: Path | None, as_json: bool) -> None:
    """List the stored snapshots, oldest first; quarantined ones are marked.

    \b
    Example:
      aztags snapshots --cloud public
    """
    from cache.store import load_snapshots

    conn = _open(db, readonly=True)
    infos = []
    for c in _clouds(cloud.lower()):
        infos.extend(load_snapshots(conn, c.name))
    if not infos:
        raise EmptyStoreError("No snapshot is stored yet. Run 'aztags fetch' first.")
    if as_json:
        _print_json(
            [
                {
                    "id": s.id,
                    "cloud": s.cloud,
                    "change_number": s.change_number,
                    "file_date": s.file_date,
                    "fetched_at": s.fetched_at.isoformat(),
                    "tags": s.tag_count,
                    "prefixes": s.prefix_count,
                    "size": s.size,
                    "sha256": s.sha256,
                    "source": s.source,
                    "etag": s.etag,
                    "state": _state(s),
                    "quarantine_reason": s.quarantine_reason,
                }
                for s in infos
            ]
        )
        return
    _print_table(
        [
            "id",
            "cloud",
            "changeNumber",
            "file date",
            "fetched (UTC)",
            "tags",
            "prefixes",
            "state",
            "source",
        ],
        [
            [
                s.id,
                s.cloud,
                s.change_number,
                s.file_date or "-",
                s.fetched_at.strftime("%Y-%m-%d %H:%M"),
                s.tag_count,
                s.prefix_count,
                _state(s),
                s.source,
            ]
            for s in infos
        ],
    )
    for s in infos:
        if s.quarantined:
            click.echo(f"aztags: snapshot {s.id} is quarantined: {s.quarantine_reason}", err=True)


def _state(info) -> str:
    if info.quarantined:
        return "QUARANTINED"
    return "current" if info.is_current else "history"


# -- queries ---------------------------------------------------------------------------------------


def at_option(func: Callable) -> Callable:
    return click.option(
        "--at",
        metavar="REF",
        help="Answer from history: a date YYYY-MM-DD (the snapshot in force that day) or cn:N.",
    )(func)


def profile_dirs_option(func: Callable) -> Callable:
    return click.option(
        "--profiles-dir",
        "profiles_dir",
        multiple=True,
        type=click.Path(file_okay=False, path_type=Path),
        envvar="AZTAGS_PROFILES_DIR",
        help="Folder of user profiles (*.toml). [default: ~/.config/aztags/profiles]",
    )(func)


def _profile_dirs(given: tuple[Path, ...]) -> tuple[Path, ...]:
    from resolver.config import user_profile_dirs

    return given or user_profile_dirs()


def _store(db: Path | None, cloud: str):
    from resolver.query import TagStore

    return TagStore(_open(db, readonly=True), get_cloud(cloud))


def _warn(warnings) -> None:
    for warning in warnings:
        click.echo(f"aztags: warning: {warning}", err=True)


def _snapshot_doc(info) -> dict[str, Any]:
    return {
        "cloud": info.cloud,
        "change_number": info.change_number,
        "file_date": info.file_date,
        "fetched_at": info.fetched_at.isoformat(),
    }


def _features(features) -> str | None:
    return None if features is None else ",".join(sorted(features))


@main.command()
@cloud_option()
@click.option("--region", help="Only tags of this region (code, display name or tag suffix).")
@click.option("--service", help="Only tags of this service (base name or systemService).")
@click.option(
    "--feature",
    type=click.Choice(["NSG", "FW", "UDR", "API", "VSE"], case_sensitive=False),
    help="Only tags usable there (networkFeatures).",
)
@at_option
@db_option
@json_option
@handle_errors
def tags(cloud, region, service, feature, at, db, as_json) -> None:
    """List tags with region, systemService, networkFeatures and IPv4/IPv6 prefix counts.

    \b
    Examples:
      aztags tags --region westeurope --feature NSG
      aztags tags --service Storage --json
      aztags tags --at 2023-03-20
    """
    store = _store(db, cloud)
    snapshot, found = store.tags(at=at, region=region, service=service, feature=feature)
    if not found:
        raise NotFoundError("No tag matches these filters.")
    if as_json:
        _print_json(
            {
                "snapshot": _snapshot_doc(snapshot),
                "tags": [
                    {
                        "name": t.name,
                        "region": t.region,
                        "system_service": t.system_service,
                        "network_features": sorted(t.network_features)
                        if t.network_features is not None
                        else None,
                        "change_number": t.change_number,
                        "ipv4": t.ipv4_count,
                        "ipv6": t.ipv6_count,
                    }
                    for t in found
                ],
            }
        )
        return
    _print_table(
        ["name", "region", "systemService", "networkFeatures", "IPv4", "IPv6"],
        [
            [
                t.name,
                t.region or "-",
                t.system_service or "-",
                "null" if t.network_features is None else _features(t.network_features) or "[]",
                t.ipv4_count,
                t.ipv6_count,
            ]
            for t in found
        ],
    )


@main.command()
@click.argument("names", nargs=-1)
@cloud_option()
@click.option("--region", help="Narrow base services to this region: westeurope, 'West Europe'...")
@click.option(
    "--profile", help="Union of a requirement profile's tags (see 'aztags profile list')."
)
@click.option("--ipv4", "family", flag_value=4, help="IPv4 prefixes only.")
@click.option("--ipv6", "family", flag_value=6, help="IPv6 prefixes only.")
@click.option("--aggregate", is_flag=True, help="Merge adjacent and contained prefixes per family.")
@at_option
@profile_dirs_option
@db_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV: prefix,family,tags.")
@handle_errors
def cidrs(names, cloud, region, profile, family, aggregate, at, profiles_dir, db, as_json, as_csv):
    """Print the prefixes a firewall must allow for tags or a requirement profile, one per line.

    NAME is a tag (any case; AzureFrontDoor.Frontend works) or a base service that --region
    narrows (Storage --region "West Europe" -> Storage.WestEurope).

    \b
    Examples:
      aztags cidrs Storage --region westeurope --ipv4
      aztags cidrs AzureCloud.westus --aggregate
      aztags cidrs --profile azureml --region westus --aggregate
      aztags cidrs Sql.EastUS2 --at 2023-03-20 --csv

    Exit codes: 0 ok, 3 unknown tag, region or profile, or an empty database.
    """
    if not names and not profile:
        raise click.UsageError(
            "Name at least one tag, or --profile. Example: aztags cidrs Storage --region westus"
        )
    if as_json and as_csv:
        raise click.UsageError("--json and --csv exclude each other.")
    store = _store(db, cloud)
    answer = store.cidrs(
        names,
        region=region,
        profile=profile,
        family=family,
        aggregate=aggregate,
        at=at,
        profile_dirs=_profile_dirs(profiles_dir),
    )
    _warn(answer.warnings)
    if as_json:
        _print_json(
            {
                "snapshot": _snapshot_doc(answer.snapshot),
                "tags": [t.name for t in answer.tags],
                "aggregated": aggregate,
                "prefixes": list(answer.prefixes),
            }
        )
        return
    if as_csv:
        owners: dict[str, list[str]] = {}
        if not aggregate:
            for t in answer.tags:
                for p in t.prefixes:
                    owners.setdefault(p, []).append(t.name)
        click.echo("prefix,family,tags")
        for p in answer.prefixes:
            click.echo(f"{p},ipv{prefix_family(p)},{';'.join(owners.get(p, []))}")
        return
    click.echo("\n".join(answer.prefixes))


@main.command()
@click.argument("queries", nargs=-1)
@click.option(
    "--file",
    "file",
    type=click.File("r"),
    help="Read addresses from a file, one per line ('-' for stdin): one output line per input.",
)
@cloud_option()
@at_option
@db_option
@click.option(
    "--json", "as_json", is_flag=True, help="JSON: one document, or JSON lines with --file."
)
@handle_errors
def lookup(queries, file, cloud, at, db, as_json) -> None:
    """Which tags contain an IPv4/IPv6 address or CIDR: every one, most specific first.

    Output: one line per input, in input order, tab-separated: the input, then one field per
    matching tag as TAG,PREFIX,REGION,SERVICE. For a CIDR, tags with prefixes inside it follow,
    marked 'inside:'. A bad line gets 'error: ...' and the batch goes on.

    \b
    Examples:
      aztags lookup 20.38.96.1 2603:1020:200::1
      aztags lookup 20.38.96.0/20 --json
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
    store = _store(db, cloud)
    if file is not None:
        _lookup_batch(store, file, at, as_json)
        return
    answers = store.lookup(queries, at=at)
    details = store.tag_details(store.snapshot(at))
    if as_json:
        _print_json([_lookup_doc(a.query, a.result, a.error, details) for a in answers])
    else:
        for a in answers:
            click.echo(_lookup_line(a.query, a.result, a.error, details))
    bad = [a.query for a in answers if a.error]
    if bad:
        click.echo(f"aztags: not an address or CIDR: {', '.join(bad)}", err=True)
        sys.exit(ExitCode.ERROR)
    if len(answers) == 1 and answers[0].result is not None and not answers[0].result.tags:
        click.echo(f"aztags: {answers[0].query} is in no {store.cloud.name} service tag.", err=True)
        sys.exit(ExitCode.NOT_FOUND)


def _match_fields(matches, details, prefix: str = "") -> list[str]:
    fields = []
    for m in matches:
        t = details.get(m.tag)
        fields.append(
            f"{prefix}{m.tag},{m.prefix},{t.region if t else ''},{t.system_service if t else ''}"
        )
    return fields


def _lookup_line(query, result, error, details) -> str:
    if result is None:
        return f"{query}\terror: {error}"
    fields = [query, *_match_fields(result.containing, details)]
    fields += _match_fields(result.overlapping, details, "inside:")
    return "\t".join(fields)


def _match_doc(match, details) -> dict[str, Any]:
    t = details.get(match.tag)
    return {
        "tag": match.tag,
        "prefix": match.prefix,
        "region": t.region if t else None,
        "system_service": t.system_service if t else None,
    }


def _lookup_doc(query, result, error, details) -> dict[str, Any]:
    if result is None:
        return {"query": query, "error": error}

    doc: dict[str, Any] = {
        "query": query,
        "tags": [_match_doc(m, details) for m in result.containing],
    }
    if result.is_cidr:
        doc["inside"] = [_match_doc(m, details) for m in result.overlapping]
    return doc


def _counted(lines, label: str, every: int = 100_000):
    """Pass lines through, showing a running count on the terminal (stderr) for long batches."""
    count = 0
    for count, line in enumerate(lines, start=1):  # noqa: B007 - count is read after the loop
        if count % every == 0:
            click.echo(f"\r{label} {count:,} lines", err=True, nl=False)
        yield line
    if count >= every:
        click.echo(f"\r{label} {count:,} lines", err=True)


def _lookup_batch(store, file, at, as_json: bool) -> None:
    """One output line per input line. Addresses take the index's fast path and share one
    rendered text per address range; blank lines, CIDRs and errors go through answer_line."""
    from resolver.lookup import InvalidAddressError
    from resolver.query import answer_line

    snapshot = store.snapshot(at)
    details = store.tag_details(snapshot)
    index = store.lookup_index(at)
    cache: dict[int, str] = {}  # results are tuples shared per address range: format each once
    write = sys.stdout.write
    errors = 0
    lines = _counted(file, "Looked up") if sys.stderr.isatty() else file
    for text, result in index.lookup_many(lines):
        if result.__class__ is tuple:
            body = cache.get(id(result))
            if body is None:
                if as_json:
                    body = json.dumps([_match_doc(m, details) for m in result])
                else:
                    body = "".join("\t" + f for f in _match_fields(result, details))
                cache[id(result)] = body
            if as_json:
                write(f'{{"query": {json.dumps(text)}, "tags": {body}}}\n')
            else:
                write(f"{text}{body}\n")
            continue
        answer = answer_line(index, text, result)
        if answer is None:  # a blank line stays a blank line
            write("\n")
            continue
        if isinstance(answer, InvalidAddressError):
            errors += 1
            error = str(answer)
            write(
                json.dumps({"query": text, "error": error}) + "\n"
                if as_json
                else f"{text}\terror: {error}\n"
            )
            continue
        rendered = (
            json.dumps(_lookup_doc(text, answer, None, details))
            if as_json
            else _lookup_line(text, answer, None, details)
        )
        write(rendered + "\n")
    if errors:
        click.echo(
            f"aztags: {errors} line(s) were not addresses; see 'error:' in the output.", err=True
        )
        sys.exit(ExitCode.ERROR)


@main.command()
@click.argument("names", nargs=-1)
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
    "--profile", help="Only the tags of this requirement profile (needs --region if regional)."
)
@click.option("--region", help="Narrow NAMEs or the profile to this region.")
@cloud_option()
@profile_dirs_option
@db_option
@json_option
@handle_errors
def diff(names, from_at, to_at, profile, region, cloud, profiles_dir, db, as_json) -> None:
    """What changed between two snapshots: '+ prefix' and '- prefix' per tag, then a summary.

    A prefix re-cut into smaller ones (or merged) over the same addresses is shown as '~'.
    Added prefixes may be used by Azure from the file date + 7 days (Microsoft's note).

    \b
    Examples:
      aztags diff                                  # previous vs current
      aztags diff --from 2023-03-06 --to 2023-06-19 Storage.WestEurope
      aztags diff --profile azureml --region westus --json
    """
    store = _store(db, cloud)
    answer = store.diff(
        from_at,
        to_at,
        names,
        profile=profile,
        region=region,
        profile_dirs=_profile_dirs(profiles_dir),
    )
    s = answer.summary
    if as_json:
        _print_json(
            {
                "from": _snapshot_doc(answer.before),
                "to": _snapshot_doc(answer.after),
                "usable_from": answer.usable_from,
                "summary": {
                    "tags_added": s.tags_added,
                    "tags_removed": s.tags_removed,
                    "tags_changed": s.tags_changed,
                    "ipv4_addresses_added": s.ipv4_addresses_added,
                    "ipv4_addresses_removed": s.ipv4_addresses_removed,
                    "ipv6_addresses_added": s.ipv6_addresses_added,
                    "ipv6_addresses_removed": s.ipv6_addresses_removed,
                },
                "tags": [
                    {
                        "name": d.name,
                        "status": d.status,
                        "added": list(d.added),
                        "usable_from": {
                            p: answer.usable_by_prefix.get((d.name, p), answer.usable_from)
                            for p in d.added
                        },
                        "removed": list(d.removed),
                        "recut": [
                            {"removed": list(r.removed), "added": list(r.added)} for r in d.recut
                        ],
                        "properties": [
                            {"field": f, "before": _jsonable(b), "after": _jsonable(a)}
                            for f, b, a in d.properties
                        ],
                    }
                    for d in answer.tags
                ],
            }
        )
        return
    b, a = answer.before, answer.after
    click.echo(
        f"{store.cloud.name}: changeNumber {b.change_number} ({b.file_date or '-'}) -> "
        f"{a.change_number} ({a.file_date or '-'})"
    )
    for d in answer.tags:
        click.echo(f"\n{d.name} ({d.status})")
        for field_name, old, new in d.properties:
            click.echo(f"  * {field_name}: {_shown(old)} -> {_shown(new)}")
        for r in d.recut:
            click.echo(f"  ~ {' '.join(r.removed)} re-cut as {' '.join(r.added)}")
        for p in d.added:
            usable = answer.usable_by_prefix.get((d.name, p), answer.usable_from)
            click.echo(f"  + {p}" + (f"  (usable from {usable})" if usable else ""))
        for p in d.removed:
            click.echo(f"  - {p}")
    click.echo(
        f"\n{s.tags_added} tags added, {s.tags_removed} removed, {s.tags_changed} changed; "
        f"IPv4 addresses +{s.ipv4_addresses_added} -{s.ipv4_addresses_removed}; "
        f"IPv6 addresses +{s.ipv6_addresses_added} -{s.ipv6_addresses_removed}"
    )


def _jsonable(value):
    return sorted(value) if isinstance(value, frozenset) else value


def _shown(value) -> str:
    if value is None:
        return "null"
    return ",".join(sorted(value)) or "[]" if isinstance(value, frozenset) else str(value)


@main.command()
@click.argument("name")
@cloud_option()
@db_option
@json_option
@handle_errors
def history(name, cloud, db, as_json) -> None:
    """Every stored snapshot where a tag changed, with its prefix counts.

    \b
    Example:
      aztags history Storage.WestEurope
    """
    store = _store(db, cloud)
    versions = store.history(name)
    if as_json:
        _print_json(
            [
                {
                    "snapshot": _snapshot_doc(v.snapshot),
                    "tag_change_number": v.change_number,
                    "region": v.region,
                    "system_service": v.system_service,
                    "network_features": _jsonable(v.network_features),
                    "ipv4": v.ipv4_count,
                    "ipv6": v.ipv6_count,
                    "prefixes_added": v.prefixes_added,
                    "prefixes_removed": v.prefixes_removed,
                    "removed_in": _snapshot_doc(v.ended) if v.ended else None,
                }
                for v in versions
            ]
        )
        return
    rows = []
    for v in versions:
        rows.append(
            [
                v.snapshot.change_number,
                v.snapshot.file_date or "-",
                v.change_number,
                v.ipv4_count,
                v.ipv6_count,
                f"+{v.prefixes_added}",
                f"-{v.prefixes_removed}",
                _shown(v.network_features),
            ]
        )
        if v.ended:
            rows.append(
                [v.ended.change_number, v.ended.file_date or "-", "removed", 0, 0, "", "", ""]
            )
    _print_table(
        [
            "changeNumber",
            "file date",
            "tag cn",
            "IPv4",
            "IPv6",
            "added",
            "removed",
            "networkFeatures",
        ],
        rows,
    )


@main.group()
def profile() -> None:
    """Requirement profiles: the tags a workload needs, by direction and port.

    \b
    Examples:
      aztags profile list
      aztags profile show azureml --region westus
    """


@profile.command("list")
@profile_dirs_option
@json_option
@handle_errors
def profile_list(profiles_dir, as_json) -> None:
    """List built-in and user profiles.

    \b
    Example:
      aztags profile list --profiles-dir ./profiles
    """
    from resolver.profiles import load_profiles

    profiles = load_profiles(_profile_dirs(profiles_dir))
    if as_json:
        _print_json(
            [
                {
                    "name": p.name,
                    "description": p.description,
                    "origin": p.origin,
                    "rules": len(p.rules),
                    "fqdns": len(p.fqdns),
                }
                for p in profiles.values()
            ]
        )
        return
    _print_table(
        ["name", "rules", "fqdns", "description"],
        [[p.name, len(p.rules), len(p.fqdns), p.description] for p in profiles.values()],
    )


@profile.command("show")
@click.argument("name")
@click.option("--region", help="The workload's region (needed by {region} rules).")
@cloud_option()
@at_option
@profile_dirs_option
@db_option
@json_option
@handle_errors
def profile_show(name, region, cloud, at, profiles_dir, db, as_json) -> None:
    """Show a profile's rules resolved to real tag names, with prefix counts and warnings.

    \b
    Examples:
      aztags profile show azureml --region westus
      aztags profile show azureml --region chinanorth2 --cloud china --json
    """
    store = _store(db, cloud)
    answer = store.cidrs(
        profile=name, region=region, at=at, profile_dirs=_profile_dirs(profiles_dir)
    )
    resolved = answer.profile
    if as_json:
        _print_json(
            {
                "profile": resolved.profile.name,
                "cloud": resolved.cloud,
                "region": resolved.region,
                "snapshot": _snapshot_doc(answer.snapshot),
                "rules": [
                    {
                        "direction": r.rule.direction,
                        "ports": r.rule.ports,
                        "protocol": r.rule.protocol,
                        "template": r.rule.tag,
                        "source_name": r.rule.source_name,
                        "purpose": r.rule.purpose,
                        "tag": r.tag.name if r.tag else None,
                        "ipv4": r.tag.ipv4_count if r.tag else 0,
                        "ipv6": r.tag.ipv6_count if r.tag else 0,
                        "skipped": r.skipped_reason,
                        "warnings": list(r.warnings),
                    }
                    for r in resolved.rules
                ],
                "fqdns": [
                    {"host": f.host, "ports": f.ports, "protocol": f.protocol, "purpose": f.purpose}
                    for f in resolved.fqdns
                ],
                "warnings": list(resolved.warnings),
                "union": dict(zip(("ipv4", "ipv6"), count(answer.prefixes), strict=True)),
            }
        )
        return
    click.echo(
        f"{resolved.profile.name} for {resolved.cloud}"
        + (f", region {resolved.region}" if resolved.region else "")
        + f" (changeNumber {answer.snapshot.change_number})"
    )
    rows = []
    for r in resolved.rules:
        tag = (
            r.tag.name
            if r.tag
            else ("skipped: " + r.skipped_reason if r.skipped_reason else "(missing)")
        )
        rows.append(
            [
                r.rule.direction,
                r.rule.protocol,
                r.rule.ports,
                tag,
                r.tag.ipv4_count if r.tag else "",
                r.tag.ipv6_count if r.tag else "",
                r.rule.purpose.split(". ")[0].rstrip("."),
            ]
        )  # --json has the whole text
    _print_table(["direction", "proto", "ports", "tag", "IPv4", "IPv6", "purpose"], rows)
    if resolved.fqdns:
        click.echo("\nHost names (FQDN rules):")
        _print_table(
            ["host", "proto", "ports", "purpose"],
            [[f.host, f.protocol, f.ports, f.purpose] for f in resolved.fqdns],
        )
    _warn(resolved.warnings)


if __name__ == "__main__":
    main()
