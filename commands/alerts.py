"""aztags alerts list/retry/test: change alerts and their delivery."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from cli_options import (
    db_option,
    json_option,
)
from commands.common import (
    ExitCode,
    alert_settings,
    connect,
    deliver_pending,
    handle_errors,
    print_json,
)
from resolver.errors import UsageError
from resolver.render import readable


@click.group()
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

    conn = connect(db, readonly=True)
    rows = list_deliveries(conn, state, limit) if has_outbox(conn) else []
    if as_json:
        print_json(render_alerts_json(rows))
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

    settings = alert_settings({})
    conn = connect(db)
    found = retry(conn, list(ids) or None, settings.now())
    click.echo(f"{len(found)} dead letter(s) queued again.")
    deliver_pending(conn, settings, {"no_deliver": no_deliver})


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
    from resolver.alerts.message import sample_message

    settings = alert_settings({})
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
