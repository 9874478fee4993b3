"""A local command: ``argv`` run without a shell, the event document (JSON) on its stdin.

The document is the one the webhook sends (``base.message_document``, at most ``MAX_PREFIXES``
prefixes inline, counted when cut). The command also finds ``AZTAGS_MESSAGE_ID`` (the same on
every attempt: its idempotency key), ``AZTAGS_CHANNEL`` and ``AZTAGS_ATTEMPT`` in its
environment. Its stdout is ignored; the first line of its stderr explains a failure.

Status: exit 0 SENT. Any other exit status is a RETRY: 75 (EX_TEMPFAIL) says so explicitly, and
a script's other failures (a receiver it calls is down, a file is locked) are most often
transient too; the delivery worker's attempt limit ends a command that always fails, and
``aztags alerts retry`` sends it again once fixed. Killed by a signal: RETRY. Running longer than
``timeout`` (30 s unless set): the command and every process it started are killed, RETRY. A
program that does not exist or cannot be run: PERMANENT ("not found: check argv[0]").
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
from typing import IO, cast

import resolver.alerts.channels.base as base
from resolver.alerts.message import Message, SendResult, SendStatus

MAX_PREFIXES = 1000
DEFAULT_TIMEOUT = 30.0
EX_TEMPFAIL = 75
STDERR_CAP = 64 * 1024
DETAIL_CHARS = 200


def render(message: Message, *, max_prefixes: int = MAX_PREFIXES) -> bytes:
    """What the command reads on stdin: the event document as UTF-8 JSON and a newline."""
    document = base.message_document(message, max_prefixes=max_prefixes)
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def _argv(channel: base.Channel) -> list[str]:
    argv = channel.get("argv") or []
    return [str(a) for a in argv] if isinstance(argv, list) else [str(argv)]


def _read_capped(stream: IO[bytes], sink: bytearray) -> None:
    """Read ``stream`` to its end, keeping the first STDERR_CAP bytes (so the pipe never fills
    and blocks the command)."""
    while chunk := stream.read(8192):
        if len(sink) < STDERR_CAP:
            sink.extend(chunk[: STDERR_CAP - len(sink)])


def _first_line(raw: bytes) -> str:
    for line in raw.decode("utf-8", "replace").splitlines():
        if line.strip():
            return base.excerpt(line.strip(), DETAIL_CHARS)
    return ""


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(OSError):
        process.kill()


def send(channel: base.Channel, message: Message, timeout: float) -> SendResult:
    """Run the command once with the document on stdin."""
    label = base.label(channel)
    argv = _argv(channel)
    if not argv:
        return SendResult(SendStatus.PERMANENT, f"{label}: argv is empty; name the program.")
    program = argv[0]
    env = {
        **os.environ,
        "AZTAGS_MESSAGE_ID": message.id,
        "AZTAGS_CHANNEL": message.channel,
        "AZTAGS_ATTEMPT": str(message.attempt),
    }
    try:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=env,
            start_new_session=True,  # its own process group: a timeout kills all it started
        )
    except FileNotFoundError:
        return SendResult(
            SendStatus.PERMANENT, f"{label}: the program {program} was not found: check argv[0]."
        )
    except PermissionError:
        return SendResult(
            SendStatus.PERMANENT,
            f"{label}: the program {program} cannot be run (permission denied): check argv[0] "
            "and that the file is executable.",
        )
    except OSError as e:
        return SendResult(
            SendStatus.PERMANENT,
            f"{label}: the program {program} cannot be run ({base.os_reason(e)}): check argv[0].",
        )
    stdin, stderr_pipe = cast(IO[bytes], process.stdin), cast(IO[bytes], process.stderr)
    stderr = bytearray()
    reader = threading.Thread(target=_read_capped, args=(stderr_pipe, stderr), daemon=True)
    reader.start()
    feeder = threading.Thread(target=_feed, args=(stdin, render(message)), daemon=True)
    feeder.start()
    try:
        code = process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(process)
        process.wait()
        reader.join(timeout=1.0)
        return SendResult(
            SendStatus.RETRY,
            f"{label}: {program} did not finish within {timeout:g} s and was killed; "
            "will try again.",
        )
    # The command is done (a process it left behind may still hold stderr open: do not wait
    # for that one long).
    reader.join(timeout=1.0)
    feeder.join(timeout=1.0)
    said = _first_line(bytes(stderr))
    tail = f": {said}" if said else ""
    if code == 0:
        return SendResult(SendStatus.SENT, f"{label}: {program} took the message (exit 0).")
    if code < 0:
        name = _signal_name(-code)
        return SendResult(
            SendStatus.RETRY, f"{label}: {program} was killed by {name}{tail}; will try again."
        )
    kind = " (EX_TEMPFAIL)" if code == EX_TEMPFAIL else ""
    return SendResult(
        SendStatus.RETRY, f"{label}: {program} exited with {code}{kind}{tail}; will try again."
    )


def _feed(stdin: IO[bytes], data: bytes) -> None:
    """Write the document; a command that exits without reading it all is no failure here."""
    try:
        stdin.write(data)
    except (BrokenPipeError, OSError, ValueError):
        pass
    finally:
        with contextlib.suppress(OSError, ValueError):
            stdin.close()


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"
