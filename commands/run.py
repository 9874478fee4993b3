"""aztags run: the scheduler, as a service or one round."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from cli_options import (
    db_option,
    http_options,
    http_settings,
    profile_dirs_option,
    profile_folders,
    save_options,
    save_settings,
)
from commands.common import (
    ExitCode,
    configured,
    connect,
    exit_code_of,
    handle_errors,
    service_logging,
)


@click.command()
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

    config = configured()
    alerts = alerts_from_config(config, profile_folders(profiles_dir))
    jobs = jobs_from_config(config.refresh, str(config.path or "the config file"))
    http, options = http_settings(kw), save_settings(kw)
    path = db or default_db_path()
    connect(path).close()  # a database that cannot be opened fails here, with its sentence
    service_logging()
    if not once:
        run_forever(path, jobs, alerts, http, options)
        sys.exit(ExitCode.OK)
    worst = ExitCode.OK
    for cloud_round in run_once(path, jobs, alerts, http, options):
        if cloud_round.error is not None:
            worst = max(worst, exit_code_of(cloud_round.error))
        elif cloud_round.quarantined:
            worst = max(worst, ExitCode.QUARANTINED)
    sys.exit(worst)
