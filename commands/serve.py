"""aztags serve: feeds, a JSON API and a web page over HTTP."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import click

from cli_options import (
    db_option,
    http_options,
    http_settings,
    max_age_option,
    profile_dirs_option,
    profile_folders,
    save_options,
    save_settings,
)
from commands.common import (
    configured,
    connect,
    handle_errors,
    log,
    service_logging,
)
from resolver.errors import (
    AztagsError,
    ConfigError,
)


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
    # IPPROTO_TCP spelt out: asyncio turns Nagle's algorithm off (TCP_NODELAY) only on
    # connections whose socket says so, and accepted ones inherit proto 0 otherwise. With Nagle
    # on, a small body written after its headers waited for the client's delayed ACK: ~40 ms per
    # request (1,100 req/s at 50 connections for a 6 KB feed) and a 26 ms p99 for a 77 KB one.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
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


@click.command()
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
    config = configured()
    section = config.serve
    where = f"[serve] in {config.path}" if config.path else "[serve]"

    def given(name: str) -> bool:  # a flag on the command line beats the [serve] table
        source = ctx.get_parameter_source(name)
        return source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP")

    host = host if given("host") else str(section.get("host", host))
    port = port if given("port") else cast(int, section.get("port", port))  # checked: PORT
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
        connect(path).close()  # creates the database, so the server can open it read-only
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
    service_logging()
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
