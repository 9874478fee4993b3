"""Where the config file is, and its text (resolver/config.py checks what it holds).

Every command's start-up asks whether there is a file; most of the time there is none, and then
neither the schema nor the TOML parser is imported (``aztags cidrs TAG`` is a new process each
time: issue 9 counts its milliseconds). So this module imports nothing beyond the standard
library's basics and resolver.errors.

The file is ``--config PATH``, else ``$AZTAGS_CONFIG``, else ``./aztags.toml``, else
``aztags.toml`` in the per-user config directory (``$XDG_CONFIG_HOME/aztags`` or
``~/.config/aztags``). A file named explicitly must be readable; a default location that cannot be
read is skipped with a warning.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from resolver.errors import ConfigError

CONFIG_NAME = "aztags.toml"


def user_config_dir() -> Path:
    """``$XDG_CONFIG_HOME/aztags``, else ``~/.config/aztags``."""
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "aztags"


def user_profile_dirs() -> tuple[Path, ...]:
    """Where user profiles live by default: ``profiles/`` in the user config directory."""
    return (user_config_dir() / "profiles",)


def default_locations() -> tuple[Path, ...]:
    """Where the config file is looked for when none is named, first found wins."""
    return (Path(CONFIG_NAME), user_config_dir() / CONFIG_NAME)


@dataclass(frozen=True, slots=True)
class FoundConfig:
    """The config file in force and its text; ``path`` None when there is none. ``warnings``:
    default locations skipped because they could not be read."""

    path: Path | None
    text: str | None
    warnings: tuple[str, ...] = ()


def find_config(explicit: str | Path | None) -> FoundConfig:
    """The config file in force (``explicit``, else ``$AZTAGS_CONFIG``, else the default
    locations) and its text. A file named explicitly that cannot be read, and a file that is not
    UTF-8, are a ConfigError."""
    explicit = explicit or os.environ.get("AZTAGS_CONFIG") or None
    warnings: list[str] = []
    if explicit:
        path = Path(explicit)
        try:
            data = _read(path)
        except _Unreadable as e:
            if e.missing:
                hint = "Check the path given with --config or AZTAGS_CONFIG."
            elif e.reason.startswith("it is"):
                hint = "Name a TOML file."
            else:
                hint = "Check its permissions (and those of its folders)."
            raise ConfigError(f"Cannot read the config file {path}: {e.reason}. {hint}") from None
    else:
        for candidate in default_locations():
            try:
                data = _read(candidate)
            except _Unreadable as e:
                if not e.missing:
                    warnings.append(
                        f"skipped the config file {candidate}: {e.reason}; going on without it."
                    )
                continue
            path = candidate
            break
        else:
            return FoundConfig(None, None, tuple(warnings))
    return FoundConfig(path, _decode(data, path), tuple(warnings))


class _Unreadable(Exception):
    def __init__(self, reason: str, *, missing: bool = False):
        self.reason = reason
        self.missing = missing


def _read(path: Path) -> bytes:
    """The file's bytes, or _Unreadable saying why not."""
    try:
        info = path.stat()
        if stat.S_ISDIR(info.st_mode):
            raise _Unreadable("it is a directory")
        if not stat.S_ISREG(info.st_mode):  # a FIFO would block, a device never end
            raise _Unreadable("it is not a regular file")
        return path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        raise _Unreadable("there is no such file", missing=True) from None
    except OSError as e:
        raise _Unreadable(e.strerror or str(e)) from None


def _decode(data: bytes, path: Path) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise ConfigError(
            f"The config file {path} is not UTF-8 text (byte 0x{data[e.start]:02x} on line "
            f"{line}); save it as UTF-8."
        ) from None
