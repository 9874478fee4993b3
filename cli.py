"""aztags command line: the entry point (console script ``aztags = cli:main``) and its group.

Each command is in commands/, one module per command or group, and is imported only when it
runs: every ``aztags`` call is a new process, and a ``cidrs TAG`` that built the click definitions
of all the others (fetch, serve, export...) would pay for them each time (issue 9). ``COMMANDS``
below names each command's module and its one-line help, so that ``aztags --help`` lists every
command without importing any. To add a command: write it in commands/, add its line here.

The commands parse flags, call one library function, render the answer and map errors to exit
codes (commands/common.py: ``ExitCode``, ``handle_errors``). No SQL, no JSON documents and no text
tables in them: the work is in resolver/ and cache/, and what each command prints is built by
resolver/render.py. The flags several commands share, their validation, shell completion and the
config file's defaults are in cli_options.py.
"""

from __future__ import annotations

import atexit
import gc
import importlib
import logging
import sys
from collections.abc import Mapping
from typing import Any

import click

from cli_options import setting_types, settings_default_map
from commands.common import ExitCode, fail, unexpected
from resolver.configfile import find_config
from resolver.errors import AztagsError

__all__ = ["COMMANDS", "ExitCode", "LazyGroup", "main", "setting_types", "settings_default_map"]

# name -> ("module:attribute" of the click command, its one-line help in `aztags --help`: the
# first sentence of its docstring; tests/test_cli_help.py checks that the two agree)
COMMANDS: Mapping[str, tuple[str, str]] = {
    "alerts": (
        "commands.alerts:alerts",
        "Change alerts: list what was raised and sent, retry dead letters, test a channel.",
    ),
    "backup": (
        "commands.backup:backup",
        "Copy the database consistently while a writer runs (SQLite's online backup API).",
    ),
    "cidrs": (
        "commands.cidrs:cidrs",
        "Print the prefixes a firewall must allow for tags or a requirement profile, one per line.",
    ),
    "diff": (
        "commands.diff:diff",
        "What changed between two snapshots: '+ prefix' and '- prefix' per tag, then a summary.",
    ),
    "export": (
        "commands.export:export",
        "Write prefix lists (or, with --rules, rule sets) in a network appliance's format.",
    ),
    "fetch": (
        "commands.ingest:fetch",
        "Download the current Service Tags file of a cloud and store it with its history.",
    ),
    "history": (
        "commands.history:history",
        "Every stored snapshot where a tag changed; or which tags held an address or a CIDR.",
    ),
    "import": (
        "commands.ingest:import_",
        "Backfill many files: paths, folders or quoted globs, in any order.",
    ),
    "lookup": (
        "commands.lookup:lookup",
        "Which tags contain an IPv4/IPv6 address or CIDR: every one, most specific first.",
    ),
    "profile": (
        "commands.profile:profile",
        "Requirement profiles: the tags a workload needs, by direction and port.",
    ),
    "reconcile": (
        "commands.reconcile:reconcile",
        "Compare a cloud's newest file with its newest Discovery API answer.",
    ),
    "run": (
        "commands.run:run",
        "Run as a service: refresh clouds on a schedule and send change alerts.",
    ),
    "serve": (
        "commands.serve:serve",
        "Serve feeds for firewalls, a JSON API and a web page over HTTP.",
    ),
    "snapshots": (
        "commands.status:snapshots",
        "List the stored snapshots, oldest first; quarantined ones are marked.",
    ),
    "status": (
        "commands.status:status",
        "Show each cloud's current snapshot: changeNumber, file date, when fetched, age, counts.",
    ),
    "tags": (
        "commands.tags:tags",
        "List tags with region, systemService, networkFeatures and IPv4/IPv6 prefix counts.",
    ),
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use (click's documented LazyGroup
    pattern: ``list_commands`` and ``get_command``), with their one-line help from a table so
    that ``--help`` imports none of them."""

    def __init__(self, *args: Any, lazy: Mapping[str, tuple[str, str]], **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy:
            module, _, attribute = self.lazy[cmd_name][0].partition(":")
            command = getattr(importlib.import_module(module), attribute)
            if not isinstance(command, click.Command):  # a wrong line in the table
                raise TypeError(f"{module}:{attribute} is not a click command")
            self.add_command(command, cmd_name)
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """As click's, with the help of the commands not imported from the table."""
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = []
        for name in names:
            command = self.commands.get(name)
            if command is not None:
                if command.hidden:
                    continue
                rows.append((name, command.get_short_help_str(limit)))
            else:  # shortened as click shortens a docstring's first sentence
                summary = click.Command(name, help=self.lazy[name][1])
                rows.append((name, summary.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(
    cls=LazyGroup,
    lazy=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
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
    # At exit, the collector would walk every object the process made (every module's functions
    # and classes) before the OS takes the memory back anyway: ~9 ms of a ~90 ms `cidrs TAG`.
    # Frozen, they are left to the OS; what the commands open (the database, output files) they
    # close themselves. Registered once per process, however often main runs (tests run it often).
    atexit.unregister(gc.freeze)
    atexit.register(gc.freeze)
    level = logging.WARNING if not verbose else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="aztags: %(message)s", stream=sys.stderr)
    if verbose < 2:
        logging.getLogger("urllib3").setLevel(logging.ERROR)  # its retry lines: -vv
    try:
        found = find_config(config_file)
        if found.path is not None:  # the schema, and every command's options, only for a file
            from resolver.config import load_config

            config = load_config(found, setting_types(main))
            ctx.obj = config  # the sections, for the commands that read them (common.configured)
            ctx.default_map = {
                name: defaults
                for name in main.list_commands(ctx)
                if (command := main.get_command(ctx, name)) is not None
                and (defaults := settings_default_map(command, config.settings))
            }
    except AztagsError as e:
        fail(e)
    except Exception as e:  # the last resort here too: the group runs outside handle_errors
        unexpected(e)
    for warning in found.warnings:
        click.echo(f"aztags: warning: {warning}", err=True)


if __name__ == "__main__":
    main()
