"""The command line's shared flags, defined once: the options several commands take, their
validation, shell completion, and how the config file's settings reach each command (click's
``default_map``). ``cli.py`` holds the commands themselves.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import click

from resolver.clouds import CLOUD_KEYS

if TYPE_CHECKING:
    from cache.store import SaveOptions
    from resolver.sources import HttpSettings


P = ParamSpec("P")
R = TypeVar("R")


def db_option(func: Callable[P, R]) -> Callable[P, R]:
    return click.option(
        "--db",
        "db",
        envvar="AZTAGS_DB",
        # readable=False: the store says itself, in a sentence, why it cannot read or write a file
        type=click.Path(dir_okay=False, readable=False, path_type=Path),
        help="SQLite store. [env AZTAGS_DB; default: aztags.db in the per-user data directory]",
    )(func)


def json_option(func: Callable[P, R]) -> Callable[P, R]:
    return click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")(func)


def cloud_option(
    *, allow_all: bool = False, default: str | None = "public"
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    choices = [*CLOUD_KEYS, "all"] if allow_all else list(CLOUD_KEYS)
    return click.option(
        "--cloud",
        type=click.Choice(choices, case_sensitive=False),
        default=default,
        show_default=default is not None,
        envvar="AZTAGS_CLOUD",
        help="Azure cloud." + (" 'all' for every cloud." if allow_all else ""),
    )


def http_options(func: Callable[P, R]) -> Callable[P, R]:
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


def save_options(func: Callable[P, R]) -> Callable[P, R]:
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


def _stack(options: list[Callable[[Any], Any]], func: Callable[P, R]) -> Callable[P, R]:
    """Apply option decorators in the order listed (first listed shows first in --help)."""
    for option in reversed(options):
        func = option(func)
    return func


def http_settings(kw: dict[str, Any]) -> HttpSettings:
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


def save_settings(kw: dict[str, Any]) -> SaveOptions:
    from cache.store import SaveOptions

    return SaveOptions(
        keep_raw=kw.pop("keep_raw"),
        quarantine_drop=kw.pop("quarantine_drop"),
        force=kw.pop("force"),
        allow_empty=kw.pop("allow_empty"),
    )


def option_type(param: click.Option) -> Any:
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


def command_settings(command: click.Command) -> dict[str, Any]:
    """The config-file type of each option of ``command`` (itself only), by option name."""
    from resolver.config import either

    types: dict[str, Any] = {}
    for param in command.params:
        if isinstance(param, click.Option) and param.name:
            kind = option_type(param)
            types[param.name] = either(types[param.name], kind) if param.name in types else kind
    return types


def subcommands(group: click.Group) -> list[click.Command]:
    """Every command of ``group``, in name order; a lazily loaded group (cli.LazyGroup) imports
    them all."""
    ctx = click.Context(group)
    found = (group.get_command(ctx, name) for name in group.list_commands(ctx))
    return [command for command in found if command is not None]


def setting_types(group: click.Group) -> dict[str, Any]:
    """The top-level config keys: every option of every command under ``group``, subcommands of
    groups included (not ``group``'s own, which are read before the file), each with the type
    that accepts what any of its options takes."""
    from resolver.config import either

    types: dict[str, Any] = {}

    def add(command: click.Command) -> None:
        for name, kind in command_settings(command).items():
            types[name] = either(types[name], kind) if name in types else kind
        if isinstance(command, click.Group):
            for sub in subcommands(command):
                add(sub)

    for command in subcommands(group):
        add(command)
    return types


def settings_default_map(command: click.Command, settings: dict[str, object]) -> dict[str, Any]:
    """click's ``default_map`` for ``command``: the settings it has options for (a value one of
    them cannot take, such as cloud = "all" for ``tags``, leaves that one at its default), and
    for a group, one nested map per subcommand."""
    from resolver.config import normalized

    defaults: dict[str, Any] = {
        name: normalized(kind, settings[name])
        for name, kind in command_settings(command).items()
        if name in settings and kind.accepts(settings[name])
    }
    if isinstance(command, click.Group):
        for sub in subcommands(command):
            if sub.name and (sub_defaults := settings_default_map(sub, settings)):
                defaults[sub.name] = sub_defaults
    return defaults


def at_option(func: Callable[P, R]) -> Callable[P, R]:
    return click.option(
        "--at",
        metavar="REF",
        help="Answer from history: a date YYYY-MM-DD (the snapshot in force that day) or cn:N.",
    )(func)


def profile_dirs_option(func: Callable[P, R]) -> Callable[P, R]:
    return click.option(
        "--profiles-dir",
        "profiles_dir",
        multiple=True,
        type=click.Path(file_okay=False, path_type=Path),
        envvar="AZTAGS_PROFILES_DIR",
        help="Folder of user profiles (*.toml). [default: ~/.config/aztags/profiles]",
    )(func)


def completion_store(ctx: click.Context) -> tuple[Path | None, str]:
    """The --db and --cloud typed so far (else $AZTAGS_DB or the default path, and public)."""
    cloud = ctx.params.get("cloud") or "public"
    return ctx.params.get("db"), "public" if cloud == "all" else str(cloud)


def complete_tags(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[click.shell_completion.CompletionItem]:
    from resolver.complete import tag_names

    db, cloud = completion_store(ctx)
    return [click.shell_completion.CompletionItem(n) for n in tag_names(db, cloud, incomplete)]


def complete_regions(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[click.shell_completion.CompletionItem]:
    from resolver.complete import region_codes

    db, cloud = completion_store(ctx)
    return [click.shell_completion.CompletionItem(c) for c in region_codes(db, cloud, incomplete)]


def complete_profiles(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[click.shell_completion.CompletionItem]:
    from resolver.complete import profile_names

    dirs = profile_folders(tuple(ctx.params.get("profiles_dir") or ()))
    return [click.shell_completion.CompletionItem(n) for n in profile_names(dirs, incomplete)]


def rule_filter_options(func: Callable[P, R]) -> Callable[P, R]:
    """--direction, --protocol, --port (which rules of a profile) and --allow-missing."""
    options = [
        click.option(
            "--direction",
            type=click.Choice(["inbound", "outbound"], case_sensitive=False),
            help="Only the profile's rules of this direction.",
        ),
        click.option(
            "--protocol",
            type=click.Choice(["tcp", "udp"], case_sensitive=False),
            help="Only the profile's rules for this protocol (rules for 'any' match both).",
        ),
        click.option(
            "--port",
            type=click.IntRange(1, 65535),
            help="Only the profile's rules covering this port ('*' covers every port).",
        ),
        click.option(
            "--allow-missing",
            is_flag=True,
            help="A profile rule whose tag the file lacks is a warning (exit 0), not exit 3.",
        ),
    ]
    return _stack(options, func)


class FamilyFlag(click.Option):
    """--ipv4 and --ipv6 both collect into ``family``: both flags mean both families (never only
    the last one); a config file's ``family = 4`` is one of them."""

    def type_cast_value(self, ctx: click.Context, value: Any) -> Any:
        return super().type_cast_value(ctx, (value,) if isinstance(value, int) else value)


def families_wanted(families: tuple[int, ...]) -> int | None:
    """One family when only one was asked for; None (both) for none or both."""
    return families[0] if len(set(families)) == 1 else None


def profile_folders(given: tuple[Path, ...]) -> tuple[Path, ...]:
    from resolver.configfile import user_profile_dirs

    return given or user_profile_dirs()


def max_age_option(func: Callable[P, R]) -> Callable[P, R]:
    """--max-age-days for a query: answers about now from an older current snapshot warn."""
    return click.option(
        "--max-age-days",
        type=click.IntRange(0),
        default=14,
        show_default=True,
        envvar="AZTAGS_MAX_AGE_DAYS",
        help="Warn on stderr when the answer comes from a current snapshot older than this "
        "(AzureGermany, frozen, excepted; not for --at).",
    )(func)


def family_options(func: Callable[P, R]) -> Callable[P, R]:
    """--ipv4 and --ipv6, collected into ``family`` (see FamilyFlag)."""
    options = [
        click.option(
            "--ipv4",
            "family",
            cls=FamilyFlag,
            flag_value=4,
            multiple=True,
            help="IPv4 prefixes (only these, unless --ipv6 is given too).",
        ),
        click.option(
            "--ipv6",
            "family",
            cls=FamilyFlag,
            flag_value=6,
            multiple=True,
            help="IPv6 prefixes (only these, unless --ipv4 is given too).",
        ),
    ]
    return _stack(options, func)


def local_option(help: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """--local CIDR (repeatable): the user's own addresses, as canonical prefixes
    (``10.9.0.5/24`` is ``10.9.0.0/24``, a bare address a /32 or /128)."""

    def canonical(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> Any:
        from resolver.prefixes import canonical_network

        found = []
        for text in values:
            network = canonical_network(text)
            if network is None:
                raise click.BadParameter(f"{text!r} is not an address or a CIDR prefix.")
            found.append(network)
        return tuple(dict.fromkeys(found))

    return click.option("--local", multiple=True, metavar="CIDR", callback=canonical, help=help)
