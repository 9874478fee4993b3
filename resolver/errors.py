"""Errors a user may see. ``str(error)`` is shown as-is; each kind maps to one exit code."""

from __future__ import annotations


class AztagsError(Exception):
    """Base class: the message says what failed, where, and what to try."""


class ConfigError(AztagsError, ValueError):
    """A setting or a config file is wrong."""


class FetchError(AztagsError):
    """Downloading or discovering a file failed."""


class SnapshotError(AztagsError, ValueError):
    """A Service Tags file is not valid; the message lists every problem found."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = problems
        shown = problems[:50]
        more = f"\n  ... and {len(problems) - 50} more" if len(problems) > 50 else ""
        super().__init__(
            f"{source} is not a valid Service Tags file ({len(problems)} problem"
            f"{'s' if len(problems) != 1 else ''}):\n  " + "\n  ".join(shown) + more
        )


class QuarantinedError(AztagsError):
    """A new file lost too many prefixes; it was stored for inspection but not made current."""


class NotFoundError(AztagsError, LookupError):
    """A tag, region, profile, snapshot or address that the user named does not exist."""

    def __init__(self, message: str, suggestions: tuple[str, ...] = ()):
        self.suggestions = suggestions
        if suggestions:
            message += " Did you mean: " + ", ".join(suggestions) + "?"
        super().__init__(message)


class EmptyStoreError(AztagsError):
    """Nothing is stored yet for the cloud asked about."""


class StaleDataError(AztagsError):
    """The newest stored file is older than the configured threshold."""


class StoreError(AztagsError):
    """The database file cannot be opened, or is not an aztags store."""


class ProfileError(ConfigError):
    """A profile file (or several) is wrong; ``problems`` lists every problem with its line."""

    def __init__(self, origin: str, problems: list[str]):
        self.origin = origin
        self.problems = problems
        n = len(problems)
        super().__init__(
            f"{origin}: {n} problem{'s' if n != 1 else ''} in profile:\n  " + "\n  ".join(problems)
        )


class InvalidAddressError(AztagsError, ValueError):
    """Text that is not an IPv4/IPv6 address or CIDR; ``text`` is what was given (stripped)."""

    def __init__(self, text: str, message: str | None = None):
        self.text = text
        super().__init__(message or f"'{text}' is not an IPv4 or IPv6 address or CIDR")


class UsageError(AztagsError, ValueError):
    """A flag or argument has the wrong form (a malformed ``--at``...); exit code 2."""
