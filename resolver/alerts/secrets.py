"""Secrets of the config file: ``env:NAME`` (an environment variable) or ``file:PATH`` (a file).

    resolve_secret("env:AZTAGS_WEBHOOK_SECRET", where='channel "netops", key secret')

A secret is never written into the config file itself (the file is often in version control and
readable by more people than the secret should be), so a value without one of the two prefixes is
refused. Error messages name where the secret was asked for and the variable or the path, never
the value.
"""

from __future__ import annotations

import os
from pathlib import Path

from resolver.errors import ConfigError

PREFIXES = ("env:", "file:")


def is_reference(value: object) -> bool:
    """Whether ``value`` is written as a secret reference (``env:NAME`` or ``file:PATH``)."""
    return isinstance(value, str) and value.startswith(PREFIXES)


def reference_problem(value: object, *, where: str) -> str | None:
    """Why ``value`` is not a usable secret reference (a sentence), or None when it is one.

    Only the form is checked (nothing is read), so a config file can be checked on a machine
    that does not hold the secrets."""
    if not isinstance(value, str) or not value.startswith(PREFIXES):
        return (
            f"The secret of {where} is written into the config file; put it in an environment "
            'variable or a file and write "env:NAME" or "file:PATH" instead.'
        )
    kind, _, rest = value.partition(":")
    if not rest.strip():
        what = "an environment variable name" if kind == "env" else "a path"
        return f'The secret of {where} is "{kind}:" without {what}; write "{kind}:{what.upper()}".'
    return None


def resolve_secret(value: str, *, where: str) -> str:
    """The secret ``value`` refers to: the variable's value for ``env:NAME``, the file's text
    for ``file:PATH`` (one trailing newline stripped, as ``echo`` and editors leave one).

    A ConfigError names ``where`` and the variable or the path (never the secret) when the
    variable is unset or empty, the file cannot be read, or ``value`` has neither prefix."""
    problem = reference_problem(value, where=where)
    if problem:
        raise ConfigError(problem)
    kind, _, rest = value.partition(":")
    if kind == "env":
        name = rest.strip()
        secret = os.environ.get(name)
        if secret is None:
            raise ConfigError(
                f"The secret of {where} comes from the environment variable {name}, which is "
                "not set; set it in the environment aztags runs in."
            )
        if not secret:
            raise ConfigError(
                f"The secret of {where} comes from the environment variable {name}, which is "
                "empty; set it to the secret."
            )
        return secret
    path = Path(os.path.expanduser(rest.strip()))
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"The secret of {where} comes from the file {path}, which does not exist; "
            "check the path."
        ) from None
    except UnicodeDecodeError:
        raise ConfigError(
            f"The secret of {where} comes from the file {path}, which is not UTF-8 text; "
            "write the secret as text."
        ) from None
    except OSError as e:
        raise ConfigError(
            f"The secret of {where} comes from the file {path}, which cannot be read "
            f"({e.strerror or type(e).__name__}); check its permissions."
        ) from None
    if text.endswith("\r\n"):
        text = text[:-2]
    elif text.endswith("\n"):
        text = text[:-1]
    if not text:
        raise ConfigError(
            f"The secret of {where} comes from the file {path}, which is empty; "
            "write the secret into it."
        )
    return text
