"""Settings from a TOML file. Precedence (applied by cli.py through click): flag > environment
variable (``AZTAGS_*``) > config file > built-in default.

The file is ``--config PATH``, else ``$AZTAGS_CONFIG``, else ``./aztags.toml``, else
``aztags.toml`` in the per-user config directory (``$XDG_CONFIG_HOME/aztags`` or
``~/.config/aztags``). Keys are option names with ``_`` or ``-``::

    db = "/var/lib/aztags/aztags.db"
    download_base = "http://mirror.example.internal"
    quarantine_drop = 0.3
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from resolver.errors import ConfigError


def user_config_dir() -> Path:
    """``$XDG_CONFIG_HOME/aztags``, else ``~/.config/aztags``."""
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "aztags"


def user_profile_dirs() -> tuple[Path, ...]:
    """Where user profiles live by default: ``profiles/`` in the user config directory."""
    return (user_config_dir() / "profiles",)


def config_path(explicit: str | None = None) -> Path | None:
    """The config file in force, or None when there is none."""
    if explicit:
        return Path(explicit)
    if env := os.environ.get("AZTAGS_CONFIG"):
        return Path(env)
    local = Path("aztags.toml")
    if local.is_file():
        return local
    user = user_config_dir() / "aztags.toml"
    return user if user.is_file() else None


def load_config(path: Path | None, known_keys: set[str]) -> dict[str, object]:
    """Read the config file into ``{option_name: value}``; unknown keys are an error."""
    if path is None:
        return {}
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ConfigError(f"Cannot read the config file {path}: {e.strerror}.") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"The config file {path} is not valid TOML: {e}.") from None
    settings = {key.replace("-", "_"): value for key, value in doc.items()}
    unknown = sorted(set(settings) - known_keys)
    if unknown:
        raise ConfigError(
            f"Unknown setting(s) in {path}: {', '.join(unknown)}. "
            f"Known settings: {', '.join(sorted(known_keys))}."
        )
    return settings
