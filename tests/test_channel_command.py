"""The command channel: a real subprocess gets the event document on stdin."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

from resolver.alerts import channels
from resolver.alerts.message import SendStatus
from tests.receivers import sample_event, sample_message


def command(script: str, tmp_path: Path, **overrides: object) -> dict[str, object]:
    path = tmp_path / "hook.py"
    path.write_text(script)
    entry: dict[str, object] = {
        "name": "local",
        "type": "command",
        "argv": [sys.executable, str(path)],
    }
    entry.update(overrides)
    return entry


SAVE_STDIN = """
import json, os, sys
out = sys.argv[0] + ".out"
with open(out, "w") as f:
    json.dump({"stdin": sys.stdin.read(), "id": os.environ["AZTAGS_MESSAGE_ID"],
               "channel": os.environ["AZTAGS_CHANNEL"], "attempt": os.environ["AZTAGS_ATTEMPT"]}, f)
"""


def test_the_command_reads_the_event_document_on_stdin(tmp_path):
    message = sample_message(sample_event(1), sample_event(2), attempt=3)
    result = channels.send(command(SAVE_STDIN, tmp_path), message)
    assert result.status is SendStatus.SENT, result.detail
    saved = json.loads((tmp_path / "hook.py.out").read_text())
    assert json.loads(saved["stdin"]) == channels.message_document(message, max_prefixes=1000)
    assert (saved["id"], saved["channel"], saved["attempt"]) == (message.id, "netops", "3")


def test_a_large_change_is_capped_on_stdin(tmp_path):
    message = sample_message(sample_event(1, added=1200))
    assert channels.send(command(SAVE_STDIN, tmp_path), message).status is SendStatus.SENT
    document = json.loads(json.loads((tmp_path / "hook.py.out").read_text())["stdin"])
    assert document["data"]["truncated"] is True
    assert document["data"]["counts"]["prefixes_omitted"] == 201


def test_non_zero_exit_is_retry_with_the_first_stderr_line(tmp_path):
    script = "import sys; sys.stdin.read(); print('\\nreceiver down: 503', file=sys.stderr)\n"
    script += "print('second line', file=sys.stderr); sys.exit(2)"
    result = channels.send(command(script, tmp_path), sample_message())
    assert result.status is SendStatus.RETRY
    assert "exited with 2: receiver down: 503;" in result.detail
    assert "second line" not in result.detail


def test_ex_tempfail_is_retry(tmp_path):
    result = channels.send(command("import sys; sys.exit(75)", tmp_path), sample_message())
    assert result.status is SendStatus.RETRY
    assert "75 (EX_TEMPFAIL)" in result.detail


def test_a_command_that_ignores_stdin_still_succeeds(tmp_path):
    message = sample_message(sample_event(1, added=1000))  # more than a pipe buffer
    assert channels.send(command("pass", tmp_path), message).status is SendStatus.SENT


@pytest.mark.slow
def test_timeout_kills_the_command_and_what_it_started(tmp_path):
    script = (
        "import subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "open(sys.argv[0] + '.pid', 'w').write(str(child.pid))\n"
        "time.sleep(60)\n"
    )
    result = channels.send(command(script, tmp_path, timeout=1.0), sample_message())
    assert result.status is SendStatus.RETRY
    assert "did not finish within 1 s" in result.detail
    pid = int((tmp_path / "hook.py.pid").read_text())
    assert not _alive(pid)


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for its reaper does not); waits up to 5 s."""
    for _ in range(100):
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return False
        if state in ("Z", "X"):
            return False
        time.sleep(0.05)
    return True


def test_a_missing_program_is_permanent(tmp_path):
    entry = {"name": "local", "type": "command", "argv": [str(tmp_path / "no-such-program")]}
    result = channels.send(entry, sample_message())
    assert result.status is SendStatus.PERMANENT
    assert "not found: check argv[0]" in result.detail


def test_a_program_that_cannot_be_run_is_permanent(tmp_path):
    path = tmp_path / "not-executable"
    path.write_text("#!/bin/sh\nexit 0\n")
    os.chmod(path, 0o644)
    result = channels.send({"name": "x", "type": "command", "argv": [str(path)]}, sample_message())
    assert result.status is SendStatus.PERMANENT
    assert "check argv[0]" in result.detail
