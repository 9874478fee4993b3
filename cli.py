"""aztags command line: parse flags, call one function, format the answer, map errors to exit codes.

No SQL and no JSON walking here: the work is in resolver/ and cache/.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
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
    SnapshotError,
    StaleDataError,
)

__version__ = "0.1.0"
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


# -- shared options, defined once -------------------------------------------------------------------


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
            help="Read timeout in seconds.",
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
    for option in reversed(options):
        func = option(func)
    return func


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
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _http_settings(kw: dict[str, Any]):
    from resolver.sources import HttpSettings

    return HttpSettings(
        download_base=kw.pop("download_base"),
        details_base=kw.pop("details_base"),
        read_timeout=kw.pop("timeout"),
        retries=kw.pop("retries"),
        max_bytes=kw.pop("max_size_mb") * 1024 * 1024,
    )


def _save_options(kw: dict[str, Any]):
    from cache.store import SaveOptions

    return SaveOptions(
        keep_raw=kw.pop("keep_raw"), quarantine_drop=kw.pop("quarantine_drop"), force=kw.pop("force")
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


# -- the group ---------------------------------------------------------------------------------------


def _known_setting_names(group: click.Group) -> set[str]:
    names = set()
    for command in group.commands.values():
        for param in command.params:
            if isinstance(param, click.Option) and param.name:
                names.add(param.name)
    return names


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "-V", "--version", prog_name="aztags")
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
    from resolver.config import config_path, load_config

    try:
        settings = load_config(config_path(config_file), _known_setting_names(main))
    except AztagsError as e:
        fail(e)
    if settings:
        ctx.default_map = {name: settings for name in main.commands}


# -- fetch / import ----------------------------------------------------------------------------------


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
            "aztags: inspect it with 'aztags snapshots'; accept it with --force if the drop is real.",
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
        length=len(files), label="Importing", file=sys.stderr if show_bar else _Null()
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


class _Null:
    def write(self, _text: str) -> None:
        pass

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


# -- status / snapshots --------------------------------------------------------------------------------


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
            [c.name, current.change_number, current.file_date or "-",
             current.fetched_at.strftime("%Y-%m-%d %H:%M"), f"{age}d",
             current.tag_count, current.prefix_count, state]
        )
        docs.append(
            {"cloud": c.name, "change_number": current.change_number,
             "file_date": current.file_date, "fetched_at": current.fetched_at.isoformat(),
             "age_days": age, "tags": current.tag_count, "prefixes": current.prefix_count,
             "stale": is_stale, "frozen": c.frozen}
        )
    if not rows:
        raise EmptyStoreError("No snapshot is stored yet. Run 'aztags fetch' first.")
    if as_json:
        _print_json({"max_age_days": max_age_days, "clouds": docs})
    else:
        _print_table(
            ["cloud", "changeNumber", "file date", "fetched (UTC)", "age", "tags", "prefixes",
             "state"],
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
                    "id": s.id, "cloud": s.cloud, "change_number": s.change_number,
                    "file_date": s.file_date, "fetched_at": s.fetched_at.isoformat(),
                    "tags": s.tag_count, "prefixes": s.prefix_count, "size": s.size,
                    "sha256": s.sha256, "source": s.source, "etag": s.etag,
                    "state": _state(s),
                }
                for s in infos
            ]
        )
        return
    _print_table(
        ["id", "cloud", "changeNumber", "file date", "fetched (UTC)", "tags", "prefixes", "state",
         "source"],
        [
            [s.id, s.cloud, s.change_number, s.file_date or "-",
             s.fetched_at.strftime("%Y-%m-%d %H:%M"), s.tag_count, s.prefix_count, _state(s),
             s.source]
            for s in infos
        ],
    )


def _state(info) -> str:
    if info.quarantined:
        return "QUARANTINED"
    return "current" if info.is_current else "history"


if __name__ == "__main__":
    main()
