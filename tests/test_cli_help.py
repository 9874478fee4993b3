"""`aztags --help` lists every command with its one-line help from cli.COMMANDS (so that it
imports no command module): that line must be what click makes of the command's own docstring,
and the table must name every command, in the module it names."""

from __future__ import annotations

import copy

import click
import pytest
from click.testing import CliRunner

from cli import COMMANDS, main
from cli_options import subcommands


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_the_table_says_what_the_docstring_says(name):
    command = main.get_command(click.Context(main), name)
    assert command is not None and command.name == name
    summary = click.Command(name, help=COMMANDS[name][1])
    for limit in (30, 60, 83, 200):  # the widths a terminal gives, and none at all
        assert summary.get_short_help_str(limit) == command.get_short_help_str(limit)


def test_help_is_the_same_before_and_after_the_commands_are_loaded():
    def help_text(group: click.Group) -> str:
        result = CliRunner().invoke(group, ["--help"], terminal_width=80)
        assert result.exit_code == 0
        return result.output

    fresh = copy.copy(main)  # as in a new process: no command loaded, the help from the table
    fresh.commands = {}
    table = help_text(fresh)
    loaded = subcommands(main)  # every command loaded: the help from their docstrings
    assert [c.name for c in loaded] == sorted(COMMANDS)
    assert help_text(main) == table
    assert "  cidrs      Print the prefixes a firewall must allow for tags or a..." in table


def test_a_wrong_line_in_the_table_is_a_clear_error():
    group = type(main)(name="t", lazy={"x": ("commands.common:warn", "Not a command.")})
    with pytest.raises(TypeError, match="commands.common:warn is not a click command"):
        group.get_command(click.Context(group), "x")
