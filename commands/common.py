"""What every command shares: exit codes, the error handler, the store and its notes on stderr."""

from __future__ import annotations

import functools
import logging
import sys
import traceback
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from enum import IntEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, ParamSpec, TypeVar, cast

import click

from cli_options import profile_folders
from resolver.clouds import CLOUDS, Cloud, get_cloud
from resolver.errors import (
    AztagsError,
    ConfigError,
    EmptyStoreError,
    NotFoundError,
    QuarantinedError,
    StaleDataError,
    UsageError,
)
from resolver.render import readable, render_json

if TYPE_CHECKING:
    import sqlite3

    from resolver.alerts.setup import Alerts
    from resolver.config import Config
    from resolver.models import SnapshotInfo
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


def exit_code_of(error: AztagsError) -> ExitCode:
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
    sys.exit(exit_code_of(error))


def unexpected(error: Exception) -> NoReturn:
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
            unexpected(e)

    return wrapper


# -- shared options, defined once ------------------------------------------------------------------


def connect(db: Path | None, *, readonly: bool = False) -> sqlite3.Connection:
    from cache.db import default_db_path, open_db

    conn = open_db(db or default_db_path(), readonly=readonly)
    ctx = click.get_current_context(silent=True)
    if ctx is not None:  # closed when the command ends, whichever way it ends
        ctx.call_on_close(conn.close)
    return conn


def clouds_named(name: str) -> tuple[Cloud, ...]:
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


def say_timeline(store: TagStore, *snapshots: SnapshotInfo) -> None:
    """On stderr, which timeline answered, when it is the Discovery API's (the file's is the
    default; --json answers say it in their snapshot's "cloud": "Public@api")."""
    from resolver.render import render_timeline_note

    if store.source == "api":
        warn(render_timeline_note(s) for s in snapshots)


def print_json(doc: Any) -> None:
    click.echo(render_json(doc))


def warn(lines: Iterable[str]) -> None:
    for line in lines:
        click.echo(line, err=True)


class Progress:
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


def service_logging() -> None:
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


def configured() -> Config:
    """The config file's settings and sections (cli.main checked them), or an empty Config when
    there is no file (then resolver.config is imported only by the commands that read it)."""
    config = click.get_current_context().find_root().obj
    if config is None:
        from resolver.config import Config

        config = Config()
    return cast("Config", config)


def alert_settings(kw: dict[str, Any]) -> Alerts:
    """The config file's watches, channels and delivery policy, checked. Profiles of watches
    come from --profiles-dir, else the config's ``profiles_dir`` (the `alerts` commands have no
    such flag), else the per-user folder. Without a config file there is nothing to check (and
    the config schema is not imported: 10-15 ms of every fetch and import)."""
    from resolver.alerts.setup import Alerts, alerts_from_config

    if click.get_current_context().find_root().obj is None:
        return Alerts()
    config = configured()
    given = kw.get("profiles_dir") or tuple(
        Path(p) for p in cast("list[str]", config.settings.get("profiles_dir", []))
    )
    return alerts_from_config(config, profile_folders(given))


def deliver_pending(conn: sqlite3.Connection, alerts: Alerts, kw: dict[str, Any]) -> None:
    """Send pending alerts when channels are configured, unless --no-deliver."""
    if not alerts.channels or kw.get("no_deliver"):
        return
    from resolver.render import render_delivery_lines

    warn(render_delivery_lines(alerts.deliver(conn)))


def profile_exit(answer: Any, allow_missing: bool) -> None:
    """After a profile's answer is printed: name its missing rules on stderr, and exit 3 when a
    required one is missing and --allow-missing was not given."""
    from resolver.render import render_profile_missing

    warn(render_profile_missing(answer, allow_missing))
    if answer.profile is not None and answer.profile.missing and not allow_missing:
        sys.exit(ExitCode.NOT_FOUND)


def open_store(
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
        connect(db, readonly=True), get_cloud(name), max_age_days=limit, source=source.lower()
    )


def say_freshness(*freshness: Freshness | None) -> None:
    """Print on stderr what the answer's snapshot(s) call for: one warning line when the data
    is stale, one note when --at named a day after the newest file (resolver.staleness)."""
    from resolver.render import render_freshness_lines

    warn(render_freshness_lines(f for f in freshness if f is not None))
