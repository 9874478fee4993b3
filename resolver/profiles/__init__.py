"""Requirement profiles: what a workload needs through a firewall, as service tags and host names.

A profile is a named list of rules taken from a vendor's requirements page ("Azure Machine
Learning needs outbound 443 to Storage.region ..."). Resolving it for a cloud and a region turns
each rule's tag template into a real tag of that cloud's Service Tags file, whose prefixes the
exporters then write. A library of profiles is built in (``resolver/profiles/builtin/``: azureml,
azureml-china, aks, aks-monitoring, apim, ase, hdinsight, batch, arc-servers, avd, sqlmi,
databricks), each traced to the page it encodes; users add their own as TOML files.

Profile file format (TOML)
--------------------------

One file is one profile. The profile's name is the file name without ``.toml`` unless the file
sets ``name``; names are case-insensitive and stored in lower case. A user file whose name equals a
built-in profile's name replaces the built-in one.

Top-level keys:

- ``name`` (optional): the profile's name, letters, digits, ``.``, ``_`` and ``-``.
- ``description`` (optional): one line for listings.
- ``source`` (optional): where the requirements come from: a URL or a sentence, or a ``[source]``
  table with ``url``, ``repo`` (``"MicrosoftDocs/azure-docs"``), ``path`` (the page's file in the
  repository), ``commit`` (the commit read, hex), ``section``, ``page_date`` (the page's own date,
  YYYY-MM-DD) and ``note``; every key optional. ``profile list`` shows it.
- ``clouds`` (optional): the clouds the source covers (``["Public", "China"]``); resolving in
  another cloud warns.

Each ``[[rule]]`` (one table per rule) has:

- ``direction`` (required): ``"inbound"`` or ``"outbound"``.
- ``ports`` (required): ``"*"``, a port ``"443"``, a range ``"29876-29877"`` or a comma-separated
  list of those (``"80,443"``); ports are 1-65535. An integer (``443``) is accepted too.
- ``tag`` (required): ``VirtualNetwork``, ``AzureLoadBalancer`` or ``Internet`` (NSG keywords that
  pages use like tags; no file has them): resolved without the file, to the user's own addresses
  (``--local``), the documented 168.63.129.16/32, or any address (``ResolvedRule.special``);
  else a tag name as in the file (``"AzureMachineLearning"``,
  ``"AzureFrontDoor.Frontend"``; case does not matter), or ``"<Base>.{region}"`` for the regional
  tag of the region given with ``--region`` (``"Storage.{region}"`` becomes ``Storage.WestEurope``;
  ``"AzureCloud.{region}"`` becomes ``AzureCloud.westeurope``). The region is matched on the tag's
  ``region`` field, so ``"Storage.{region}"`` with ``--region francecentral`` finds
  ``Storage.FranceCentral`` although its code is ``centralfrance``.
- ``protocol`` (optional, default ``"tcp"``): ``"tcp"``, ``"udp"`` or ``"any"``.
- ``purpose`` (optional): why the rule exists; for listings and comments in exports.
- ``skip_clouds`` (optional): clouds where the rule is not needed, by name or key (``["China"]``,
  ``["usgov"]``); such a rule is listed as skipped there.
- ``clouds`` (optional): the only clouds where the rule is needed (an allow-list; the opposite of
  ``skip_clouds``); a rule for another cloud is listed as skipped there.
- ``optional`` (optional, default false): the rule is for a feature the workload may not use, so a
  tag missing from the file is a warning, not an error (exit 3) as it is for other rules.
- ``source_name`` (optional): the name as the source document wrote it (``"Storage.region"``).
- ``missing_reason`` (optional): why the tag may be missing from a cloud's file (a name only the
  page uses, a tag newer than the data); a missing tag is then a warning with this reason.

Each ``[[fqdn]]`` (host names for firewalls with FQDN objects; not resolved to prefixes) has:

- ``host`` (required): a host name or pattern (``"pypi.org"``, ``"*.anaconda.org"``), no scheme
  and no path; ``{region}`` is replaced by the region code (``"*.hcp.{region}.azmk8s.io"``), and
  kept as written, with a warning, when no region is given.
- ``purpose`` (optional), ``ports`` (optional, default ``"443"``), ``protocol`` (optional, default
  ``"tcp"``), ``clouds``, ``skip_clouds`` and ``optional`` as for rules.

Unknown keys are errors, so a typo is not silently ignored. Every problem of a file is reported at
once, each with the file, the line and the key.

Example, ``~/.config/aztags/profiles/backup.toml``::

    description = "Nightly backup to Azure Storage and Key Vault"
    source = "internal change request 4711"

    [[rule]]
    direction = "outbound"
    ports = "443"
    tag = "Storage.{region}"
    purpose = "blob uploads"
    source_name = "Storage.region"

    [[rule]]
    direction = "outbound"
    ports = "443"
    tag = "AzureKeyVault.{region}"
    purpose = "encryption keys"

    [[rule]]
    direction = "outbound"
    ports = "443"
    tag = "AzureFrontDoor.Frontend"
    purpose = "portal"
    skip_clouds = ["China"]

    [[fqdn]]
    host = "login.microsoftonline.com"
    purpose = "sign-in"
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

    from resolver.profiles.load import (
        builtin_profiles,
        find_profile,
        get_profile,
        load_profiles,
        parse_profile,
        render_profile,
    )
    from resolver.profiles.model import FqdnRule, Profile, SourceRef
    from resolver.profiles.resolve import (
        null_features_warning,
        profile_tag_names,
        resolve_profile,
    )
    from resolver.profiles.resolved import ResolvedProfile, ResolvedRule, RuleFilter, Special
    from resolver.profiles.rules import (
        DIRECTIONS,
        LOAD_BALANCER_ADDRESS,
        PROTOCOLS,
        REGION_PLACEHOLDER,
        SPECIAL_NAMES,
        Rule,
        check_ports,
    )

# Each name is loaded from its module on first use (PEP 562): a config file's profile watch
# reads only the rules of its profile (resolver.profiles.rules), not the host names, the source,
# the profile or what resolving it gives, whose classes cost ~0.5 ms each to build.
_MODULES = {
    "load": (
        "builtin_profiles",
        "find_profile",
        "get_profile",
        "load_profiles",
        "parse_profile",
        "render_profile",
    ),
    "model": ("FqdnRule", "Profile", "SourceRef"),
    "resolve": ("null_features_warning", "profile_tag_names", "resolve_profile"),
    "resolved": ("ResolvedProfile", "ResolvedRule", "RuleFilter", "Special"),
    "rules": (
        "DIRECTIONS",
        "LOAD_BALANCER_ADDRESS",
        "PROTOCOLS",
        "REGION_PLACEHOLDER",
        "SPECIAL_NAMES",
        "Rule",
        "check_ports",
    ),
}
_MODULE_OF = {name: module for module, names in _MODULES.items() for name in names}


def profile_rules(name: str, user_dirs: Iterable[Path]) -> tuple[str, tuple[Rule, ...]]:
    """The name and rules of the profile :func:`find_profile` gives (with the same errors):
    what a ``[[watch]]`` with ``profile = NAME`` follows. A built-in profile no user file
    replaces is read for its rules alone (resolver.profiles.rules.builtin_rules)."""
    from resolver.profiles.rules import builtin_rules

    user_dirs = list(user_dirs)  # read twice
    found = builtin_rules(name, user_dirs)
    if found is not None:
        return found
    from resolver.profiles.load import find_profile

    profile = find_profile(name, user_dirs)
    return profile.name, profile.rules


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # found directly next time
    return value


__all__ = [
    "DIRECTIONS",
    "LOAD_BALANCER_ADDRESS",
    "PROTOCOLS",
    "REGION_PLACEHOLDER",
    "SPECIAL_NAMES",
    "FqdnRule",
    "Profile",
    "ResolvedProfile",
    "ResolvedRule",
    "Rule",
    "RuleFilter",
    "SourceRef",
    "Special",
    "builtin_profiles",
    "check_ports",
    "get_profile",
    "find_profile",
    "load_profiles",
    "null_features_warning",
    "parse_profile",
    "profile_rules",
    "profile_tag_names",
    "render_profile",
    "resolve_profile",
]
