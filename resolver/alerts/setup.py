"""The alert settings of a config file, checked, and what commands do with them.

:class:`Alerts` is what ``fetch``, ``import``, ``run`` and ``alerts`` read from the config file:
the watches, the channels by name and the delivery policy. It gives the ``after_save`` callback
that records a stored file's events (:meth:`Alerts.recorder`) and runs delivery rounds
(:meth:`Alerts.deliver`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from resolver.alerts.watches import SnapshotView, Watch, watches_from_config
from resolver.errors import AztagsError, ConfigError

if TYPE_CHECKING:  # imported where used: an ingest with watches and no channel needs neither
    from resolver.alerts.deliver import Policy, Report
    from resolver.alerts.record import Recorder
    from resolver.config import Config


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Alerts:
    """The alert settings of a config file, checked: watches, channels and the delivery policy."""

    watches: tuple[Watch, ...] = ()
    channels: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    settings: Mapping[str, Any] = field(default_factory=dict)  # the [alerts] table
    profile_dirs: tuple[Path, ...] = ()
    now: Callable[[], datetime] = _utcnow
    # The watches' profiles, read: (name, rules) by the name a watch gives (profile_rules).
    profiles: Mapping[str, Any] = field(default_factory=dict)

    @property
    def policy(self) -> Policy:
        """How deliveries are retried (the ``[alerts]`` table)."""
        from resolver.alerts.deliver import policy_from_config

        return policy_from_config(self.settings)

    def recorder(self) -> Recorder | None:
        """The ``after_save`` callback recording events, or None without watches."""
        if not self.watches:
            return None
        from resolver.alerts.record import Recorder

        return Recorder(self.watches, _details, self._profile_tags, self.now)

    def deliver(self, conn: sqlite3.Connection, **kwargs: Any) -> Report:
        from resolver.alerts.deliver import deliver

        return deliver(conn, self.channels, policy=self.policy, now=self.now, **kwargs)

    def _profile_tags(self, watch: Watch, view: SnapshotView) -> set[str]:
        from resolver.profiles import profile_rules
        from resolver.profiles.resolve import profile_tag_names

        assert watch.profile is not None
        found = self.profiles.get(watch.profile) or profile_rules(watch.profile, self.profile_dirs)
        return profile_tag_names(
            *found,
            cloud=watch.cloud,
            region_text=watch.regions[0] if watch.regions else None,
            tags=view.tags,
            regions=view.regions,
        )


def _details(conn: sqlite3.Connection, snapshot: Any) -> Mapping[str, Any]:
    """The tags of a snapshot by name, with region and service (no prefixes)."""
    from resolver.clouds import get_cloud
    from resolver.query import TagStore

    store = TagStore(conn, get_cloud(snapshot.cloud))
    return {t.name: t for t in store.summaries(snapshot)}


def alerts_from_config(
    config: Config, profile_dirs: Iterable[Path] = (), now: Callable[[], datetime] | None = None
) -> Alerts:
    """The checked alert settings of ``config``: watches that select tags in one way, channels
    with what their type needs, profiles that exist. A ConfigError lists every problem."""
    if not (config.watch or config.channel):
        return Alerts(now=now or _utcnow)
    from resolver.clouds import get_cloud

    where = str(config.path or "the config file")
    watches = watches_from_config(config.watch, where)
    problems = []
    if config.channel:
        from resolver.alerts.channels import check_channel

        problems += [p for entry in config.channel for p in check_channel(entry)]
    profiles: dict[str, Any] = {}  # (name, rules) by name as the watches write it: read once
    for watch in watches:
        if not watch.profile:
            continue
        from resolver.profiles import profile_rules  # only for a profile watch

        try:
            found = profiles.get(watch.profile) or profile_rules(watch.profile, profile_dirs)
            profiles[watch.profile] = found
        except AztagsError as e:
            problems.append(f'{where}, [[watch]] "{watch.name}": {e}')
            continue
        name, rules = found
        cloud_name = get_cloud(watch.cloud).name
        regional = [r for r in rules if r.is_regional and r.applies_to(cloud_name)]
        if regional and not watch.regions:
            problems.append(
                f'{where}, [[watch]] "{watch.name}": profile {name} has per-region rules '
                f"({', '.join(dict.fromkeys(r.tag for r in regional))}); add region = NAME."
            )
    if problems:
        raise ConfigError(
            problems[0]
            if len(problems) == 1
            else f"{len(problems)} problems in {where}:\n  " + "\n  ".join(problems)
        )
    return Alerts(
        watches=watches,
        channels={str(c["name"]): c for c in config.channel},
        settings=dict(config.alerts),
        profile_dirs=tuple(profile_dirs),
        now=now or _utcnow,
        profiles=profiles,
    )
