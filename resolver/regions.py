"""Region names as users write them -> the ARM region code in the data's ``region`` field.

Users write a region as an ARM code (``westeurope``), a display name ("West Europe"), a tag
suffix (``WestEurope``), in any case, with spaces, hyphens or underscores, and sometimes with the
typos of Microsoft's own docs (``uswest``). A :class:`RegionIndex` is built from one file's tags, so
regions that appear in a new file work without code changes:

- every region code in the file is an alias of itself;
- the suffix of every regional tag (``Storage.FranceCentral`` -> ``FranceCentral``), normalised, is
  an alias of that tag's ``region`` field (``centralfrance``): this covers the 14 tags whose suffix
  and code disagree, and display names, which normalise to the code or to a suffix;
- a short static table of known typos (:data:`TYPO_ALIASES`), used only when its target is in the
  file.

Normalisation: lower-case, drop spaces, hyphens and underscores (``"West-Europe"`` ->
``westeurope``).

A region code always wins over a suffix alias, so ``EastUS2Stage`` (region ``eastus2``) adds the
alias ``eastus2stage`` but can never take ``eastus2`` from the code of the same name. A suffix that
would point at two different codes is ambiguous and is not used as an alias.

The region of a tag is always read from its ``region`` field, never from its name: global tags
such as ``AzureFrontDoor.Frontend`` contain a dot but have no region.
"""

from __future__ import annotations

import functools
import re
from collections import Counter, defaultdict
from collections.abc import Iterable

from resolver.errors import NotFoundError
from resolver.models import TagInfo

# Known typos and names the data cannot teach us (normalised alias -> ARM code). Short on purpose.
TYPO_ALIASES: dict[str, str] = {
    # The Azure ML firewall doc's own example is "BatchNodeManagement.uswest": US-first word order.
    "uswest": "westus",
    "uswest2": "westus2",
    "useast": "eastus",
    "useast2": "eastus2",
    # Display name "Brazil Northeast": only AzureCloud.brazilne exists, so no suffix spells it out.
    "brazilnortheast": "brazilne",
}

_SEPARATORS = re.compile(r"[\s\-_]+")


class UnknownRegionError(NotFoundError):
    """A region that one file does not have; ``text`` is as the user wrote it. A TagStore query
    that fails with it says which other stored cloud has the region (resolver.query)."""

    checked = False  # other clouds already looked at

    def __init__(self, message: str, text: str, suggestions: tuple[str, ...] = ()):
        super().__init__(message, suggestions)
        self.text = text


@functools.lru_cache(maxsize=4096)  # a file has ~60 regions, written a few ways each
def normalise(text: str) -> str:
    """Lower-case and drop spaces, hyphens and underscores: ``"West Europe"`` -> ``westeurope``."""
    return _SEPARATORS.sub("", text).lower()


def service_names(tag: TagInfo) -> set[str]:
    """What a user may call a tag's service (``--service``, a watch's ``service``), case-folded:
    the systemService, the name without its region suffix, the name, and the family before the
    first dot (AzureFrontDoor for AzureFrontDoor.Frontend)."""
    base = tag.name.rpartition(".")[0] if tag.region and "." in tag.name else tag.name
    names = {tag.system_service, base, tag.name, tag.name.partition(".")[0]}
    return {n.casefold() for n in names if n}


def _split_regional(tag: TagInfo) -> tuple[str, str] | None:
    """(base, suffix) of a regional tag, or None for a global tag or a name without a dot.

    Only tags with a ``region`` are split, and only at the last dot, so a dotted global name is
    never mistaken for ``<Base>.<Region>``.
    """
    if not tag.region or "." not in tag.name:
        return None
    base, _, suffix = tag.name.rpartition(".")
    return base, suffix


class RegionIndex:
    """Region aliases and regional tags of one Service Tags file (see the module docstring).

    Built in one pass that groups the regional tags by region code; what only some questions need
    is worked out on first use: the suffix aliases (a text that is not a region code), a region's
    tags sorted by name, its canonical suffix."""

    def __init__(self, by_region: dict[str, list[TagInfo]]):
        self._by_region = by_region  # region code -> its tags, in file order
        self._codes = tuple(sorted(by_region))
        self._aliases: dict[str, str] | None = None  # normalised alias -> code, codes included
        self._ambiguous: dict[str, tuple[str, ...]] = {}
        self._sorted: dict[str, tuple[TagInfo, ...]] = {}  # tags_in_region, once per code
        self._canonical_suffix: dict[str, str | None] = {}

    @classmethod
    def from_tags(cls, tags: Iterable[TagInfo]) -> RegionIndex:
        by_region: dict[str, list[TagInfo]] = {}
        for tag in tags:
            if tag.region:
                group = by_region.get(tag.region)
                if group is None:
                    by_region[tag.region] = [tag]
                else:
                    group.append(tag)
        return cls(by_region)

    def _suffix_aliases(self) -> dict[str, str]:
        """Every alias: the codes, the normalised suffixes of regional tags that name one code
        (a suffix naming two is ambiguous), and the known typos whose code is in the file."""
        if self._aliases is not None:
            return self._aliases
        suffix_codes: dict[str, set[str]] = defaultdict(set)  # normalised suffix -> codes
        for code, group in self._by_region.items():
            for tag in group:
                if "." in tag.name:
                    suffix_codes[normalise(tag.name.rpartition(".")[2])].add(code)
        aliases: dict[str, str] = {code: code for code in self._codes}
        for norm, targets in suffix_codes.items():
            if norm in aliases:  # a code is never taken over by a suffix
                continue
            if len(targets) == 1:
                aliases[norm] = next(iter(targets))
            else:
                self._ambiguous[norm] = tuple(sorted(targets))
        for typo, code in TYPO_ALIASES.items():
            if code in self._by_region and typo not in aliases and typo not in self._ambiguous:
                aliases[typo] = code
        self._aliases = aliases
        return aliases

    def codes(self) -> tuple[str, ...]:
        """Every region code in the file, sorted."""
        return self._codes

    def resolve(self, text: str) -> str:
        """The ARM region code for ``text`` (a code, display name, tag suffix or known typo).

        Raises NotFoundError with close matches when the region is unknown or ambiguous.
        """
        key = normalise(text)
        if key in self._by_region:  # a code: no suffix can take it over
            return key
        aliases = self._suffix_aliases()
        if key in aliases:
            return aliases[key]
        if not key:
            raise NotFoundError("The region is empty. Use a region code such as westeurope.")
        if key in self._ambiguous:
            raise NotFoundError(
                f"Region {text!r} is ambiguous in this file.", suggestions=self._ambiguous[key]
            )
        import difflib  # only for this error's suggestions: not on every query's start-up

        close = difflib.get_close_matches(key, list(aliases), n=6, cutoff=0.75)
        suggestions = tuple(dict.fromkeys(aliases[c] for c in close))[:3]
        message = f"Unknown region {text!r}."
        if not suggestions and self._codes:
            message += (
                f" Use one of the {len(self._codes)} region codes in this file,"
                f" such as {', '.join(self._codes[:3])}."
            )
        raise UnknownRegionError(message, text, suggestions)

    def _canonical(self, region_code: str) -> str | None:
        """The suffix most tags of a region use (FranceCentral for centralfrance, EastUS2 for
        eastus2), normalised; ties go to the alphabetically first, so the choice is stable."""
        if region_code not in self._canonical_suffix:
            counts = Counter(
                normalise(t.name.rpartition(".")[2])
                for t in self._by_region.get(region_code, ())
                if "." in t.name
            )
            self._canonical_suffix[region_code] = (
                min(counts, key=lambda s: (-counts[s], s)) if counts else None
            )
        return self._canonical_suffix[region_code]

    def regional_tag(
        self, base: str, region_code: str, as_written: str | None = None
    ) -> TagInfo | None:
        """The tag of service ``base`` (any case) in region ``region_code``, or None.

        A candidate is a tag whose ``region`` field is ``region_code`` and whose name is
        ``base + "." + suffix`` (base compared case-insensitively, suffix without dots).
        When several match (``Sql.EastUS2`` and ``Sql.EastUS2Stage`` are both ``eastus2``), the
        rule is:

        0. the suffix the user wrote (``as_written``, the region text given to :meth:`resolve`),
           so ``--region EastUS2Stage`` means ``Sql.EastUS2Stage``, then
        1. a suffix that normalises to the region code itself (``EastUS2`` for ``eastus2``), then
        2. the region's canonical suffix, the one most tags of that region use
           (``FranceCentral`` for ``centralfrance``), then
        3. any other suffix (``Stage``/``STG`` variants), by name.
        """
        folded = base.casefold()
        candidates = [
            t
            for t in self._by_region.get(region_code, ())
            if (parts := _split_regional(t)) is not None and parts[0].casefold() == folded
        ]
        if not candidates:
            return None
        canonical = self._canonical(region_code)
        written = normalise(as_written) if as_written else None

        def rank(tag: TagInfo) -> tuple[int, str]:
            suffix = normalise(tag.name.rpartition(".")[2])
            if suffix == written:
                return (-1, tag.name)
            if suffix == region_code:
                return (0, tag.name)
            if suffix == canonical:
                return (1, tag.name)
            return (2, tag.name)

        return min(candidates, key=rank)

    def tags_in_region(self, region_code: str) -> tuple[TagInfo, ...]:
        """Every tag whose ``region`` field is ``region_code``, sorted by name."""
        if region_code not in self._sorted:
            group = self._by_region.get(region_code, ())
            self._sorted[region_code] = tuple(sorted(group, key=lambda t: t.name))
        return self._sorted[region_code]
