"""Reverse lookup: every service tag whose prefixes contain an address or a CIDR.

Pure and in memory (no I/O, stdlib only). Build once from (tag, prefix) pairs, then ask many times.

How it works. CIDR blocks never partly overlap: two blocks are either disjoint or one lies inside
the other. So at build time one sweep over the distinct prefixes, sorted by (start, length), with a
stack of the blocks currently open, cuts each address family into sorted *disjoint* segments and
gives each segment the tuple of every (tag, prefix) containing it, most specific first. Nesting
(``AzureCloud`` ⊃ ``AzureCloud.westus``, ``Storage`` ⊃ ``Storage.WestUS``) is thereby flattened
once; a lookup is ``inet_pton`` + ``int.from_bytes`` + one ``bisect`` and returns a tuple shared by
every address of the segment, so nothing is allocated per lookup. Why this design: the measurements
in docs/performance.md ("Reverse lookup"): ~2.8x faster than a dict per prefix length, and
complete, unlike a longest-match trie.

Address text is parsed with ``socket.inet_pton`` (strict: no leading zeros, no shorthand such as
``10.1``). IPv6 zone ids (``fe80::1%eth0``) are rejected; IPv4-mapped IPv6 (``::ffff:1.2.3.4``) is
an IPv6 address and matches IPv6 prefixes only.
"""

from __future__ import annotations

import _socket as socket  # the C module socket wraps: same functions, cheaper to import
import gc
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import repeat
from operator import itemgetter
from typing import TYPE_CHECKING

from resolver.errors import InvalidAddressError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from resolver.models import SnapshotInfo, TagSummary
    from resolver.staleness import Freshness

__all__ = [
    "InvalidAddressError",
    "LookupIndex",
    "LookupMatch",
    "QueryResult",
]

_AF_INET = socket.AF_INET
_AF_INET6 = socket.AF_INET6
_BITS = {_AF_INET: 32, _AF_INET6: 128}


@dataclass(frozen=True, slots=True)
class LookupMatch:
    """One tag that answers a query, and its prefix that contains (or lies inside) the query."""

    tag: str
    prefix: str  # canonical CIDR text, exactly as given to LookupIndex.build


@dataclass(frozen=True, slots=True)
class QueryResult:
    """What :meth:`LookupIndex.query` returns, the same shape for an address and for a CIDR.

    ``containing``: every (tag, prefix) whose prefix contains the whole query, most specific first
    (longest prefix first, then tag name). For an address this is exactly ``lookup(address)``.
    ``overlapping``: (tag, prefix) whose prefix lies inside the query CIDR without containing it,
    sorted by address, then prefix length, then tag; always empty for an address.
    """

    query: str  # the text asked about, stripped
    is_cidr: bool
    containing: tuple[LookupMatch, ...]
    overlapping: tuple[LookupMatch, ...] = ()

    @property
    def tags(self) -> tuple[str, ...]:
        """Distinct tag names of ``containing`` then ``overlapping``, first occurrence kept."""
        return tuple(dict.fromkeys(m.tag for m in self.containing + self.overlapping))


@dataclass(frozen=True, slots=True)
class LookupAnswer:
    """One looked-up line: the tags holding the address or CIDR, or why it is not one."""

    query: str
    result: QueryResult | None  # None when the query is not an address or CIDR
    error: str | None = None


@dataclass(frozen=True, slots=True)
class LookupReport:
    """Lookups with what a renderer needs, all read from one snapshot in one view."""

    snapshot: SnapshotInfo
    answers: tuple[LookupAnswer, ...]
    details: Mapping[str, TagSummary]  # the tags in the answers: name -> region, systemService...
    freshness: Freshness | None = None  # what to say about the snapshot (stale, --at past it)


@dataclass(frozen=True, slots=True)
class CommentLine:
    """A batch line starting with ``#``: not a query, passed through (text) or skipped (JSON)."""

    text: str


_EMPTY: tuple[LookupMatch, ...] = ()
_first_and_length = itemgetter(0, 1)


def _address_error(text: str) -> InvalidAddressError:
    """The error for ``text`` that inet_pton refused, with a hint for the usual near misses."""
    base = f"'{text}' is not an IPv4 or IPv6 address or CIDR"
    if not text:
        return InvalidAddressError(text, "'' is not an IPv4 or IPv6 address or CIDR (empty line)")
    if "%" in text:
        address, _, rest = text.partition("%")
        zone, slash, length = rest.partition("/")
        return InvalidAddressError(
            text,
            f"{base}: '%{zone}' is an IPv6 zone id, which is local to one host and never part of a "
            f"service tag; drop it and ask for '{address}{slash}{length}'",
        )
    if "/" in text:
        return InvalidAddressError(
            text, f"{base}: it is not an address; use lookup_cidr() or query() for a CIDR"
        )
    if text.count(":") == 1 and "." in text:
        address = text.partition(":")[0]
        return InvalidAddressError(
            text, f"{base}: it looks like address:port; drop the port and ask for '{address}'"
        )
    if text.startswith("[") and "]" in text:
        address = text[1 : text.index("]")]
        return InvalidAddressError(
            text, f"{base}: it looks like [address]:port; ask for '{address}'"
        )
    return InvalidAddressError(text, base)


def _parse_address(text: str) -> tuple[int, int]:
    """``text`` (already stripped) -> (family, integer). Raises InvalidAddressError."""
    family = _AF_INET6 if ":" in text else _AF_INET
    try:
        return family, int.from_bytes(socket.inet_pton(family, text), "big")
    except (OSError, ValueError):
        raise _address_error(text) from None


def _parse_cidr(text: str) -> tuple[int, int, int]:
    """Canonical CIDR text (a bare address counts as /32 or /128) -> (family, first, length).

    Raises InvalidAddressError for anything else, including host bits set.
    """
    address, slash, length_text = text.partition("/")
    family = _AF_INET6 if ":" in address else _AF_INET
    try:
        value = int.from_bytes(socket.inet_pton(family, address), "big")
    except (OSError, ValueError):
        if "%" in text:
            raise _address_error(text) from None
        raise InvalidAddressError(text) from None
    bits = _BITS[family]
    if not slash:
        return family, value, bits
    if (
        not (length_text.isascii() and length_text.isdigit() and len(length_text.lstrip("0")) <= 3)
        or int(length_text) > bits
    ):
        raise InvalidAddressError(
            text,
            f"'{text}' is not an IPv4 or IPv6 address or CIDR: the prefix length must be a whole "
            f"number from 0 to {bits}",
        )
    length = int(length_text)
    host_bits = (1 << (bits - length)) - 1
    if value & host_bits:
        network = socket.inet_ntop(family, (value & ~host_bits).to_bytes(bits // 8, "big"))
        raise InvalidAddressError(
            text,
            f"'{text}' has host bits set; the network it belongs to is {network}/{length}",
        )
    return family, value, length


class _Family:
    """The index of one address family: disjoint segments, plus the distinct prefixes for CIDRs."""

    __slots__ = ("bits", "starts", "values", "firsts", "lengths", "owns")

    def __init__(self, bits: int, prefixes: list[tuple[int, int, tuple[LookupMatch, ...]]]):
        # prefixes: (first, length, own matches sorted by tag), sorted by (first, length)
        self.bits = bits
        self.firsts = [p[0] for p in prefixes]
        self.lengths = [p[1] for p in prefixes]
        self.owns = [p[2] for p in prefixes]
        self.starts, self.values = self._flatten(bits, prefixes)

    @staticmethod
    def _flatten(
        bits: int, prefixes: list[tuple[int, int, tuple[LookupMatch, ...]]]
    ) -> tuple[list[int], list[tuple[LookupMatch, ...]]]:
        """Sweep the nested prefixes into disjoint segments.

        ``starts[i]`` is the first address of segment i, which runs to ``starts[i + 1] - 1``;
        ``values[i]`` holds every match containing it, innermost prefix first. ``starts[0] == 0``,
        so ``values[bisect_right(starts, x) - 1]`` answers any address x of the family.
        """
        size = 1 << bits
        starts: list[int] = [0]
        values: list[tuple[LookupMatch, ...]] = [_EMPTY]
        stack: list[tuple[int, tuple[LookupMatch, ...]]] = []  # (end, everything inside it)

        def emit(position: int, value: tuple[LookupMatch, ...]) -> None:
            if starts[-1] == position:  # several events at one address: the last one wins
                values[-1] = value
            else:
                starts.append(position)
                values.append(value)

        for first, length, own in prefixes:
            while stack and stack[-1][0] <= first:
                end = stack.pop()[0]
                emit(end, stack[-1][1] if stack else _EMPTY)
            nested = own + stack[-1][1] if stack else own
            stack.append((first + (1 << (bits - length)), nested))
            emit(first, nested)
        while stack:
            end = stack.pop()[0]
            if end < size:
                emit(end, stack[-1][1] if stack else _EMPTY)

        # Merge neighbours that ended up with the same tuple (identity: tuples are shared).
        merged_starts = [starts[0]]
        merged_values = [values[0]]
        for position, value in zip(starts, values, strict=True):
            if value is not merged_values[-1]:
                merged_starts.append(position)
                merged_values.append(value)
        return merged_starts, merged_values


class LookupIndex:
    """Every service tag containing an address or a CIDR, from (tag, prefix) pairs.

    >>> pairs = [("AzureCloud", "13.64.0.0/11"), ("Storage.WestUS", "13.64.0.0/16")]
    >>> index = LookupIndex.build(pairs)
    >>> [m.tag for m in index.lookup("13.64.1.1")]
    ['Storage.WestUS', 'AzureCloud']
    """

    __slots__ = ("_v4", "_v6", "_pair_count")

    def __init__(self, v4: _Family, v6: _Family, pair_count: int):
        self._v4 = v4
        self._v6 = v6
        self._pair_count = pair_count

    @classmethod
    def build(cls, pairs: Iterable[tuple[str, str]]) -> LookupIndex:
        """Index (tag, prefix) pairs; prefixes are canonical CIDR text, IPv4 and IPv6 mixed.

        Duplicate pairs count once. Raises InvalidAddressError for a prefix that is not canonical
        CIDR (bad text, bad length, host bits set).
        """
        # The build allocates ~100k objects and no reference cycles; left on, the cyclic GC would
        # rescan everything alive (e.g. the caller's parsed JSON) many times over: measured
        # 0.27-0.45 s with it, 0.16 s without, on a Public snapshot.
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            return cls._build(pairs)
        finally:
            if gc_was_enabled:
                gc.enable()

    @classmethod
    def _build(cls, pairs: Iterable[tuple[str, str]]) -> LookupIndex:
        by_prefix: dict[str, set[str]] = {}
        for tag, prefix in pairs:
            tags = by_prefix.get(prefix)
            if tags is None:
                by_prefix[prefix] = {tag}
            else:
                tags.add(tag)

        # The same network could be spelt two ways (e.g. IPv6 case): group by value, not by text.
        spellings: dict[tuple[int, int, int], list[str]] = {}
        for prefix in by_prefix:
            key = _parse_cidr(prefix)
            texts = spellings.get(key)
            if texts is None:
                spellings[key] = [prefix]
            else:
                texts.append(prefix)

        per_family: dict[int, list[tuple[int, int, tuple[LookupMatch, ...]]]] = {
            _AF_INET: [],
            _AF_INET6: [],
        }
        pair_count = 0
        for (family, first, length), texts in spellings.items():
            if len(texts) == 1:
                names = sorted(by_prefix[texts[0]])
                own = tuple(map(LookupMatch, names, repeat(texts[0])))
            else:
                both = sorted((tag, text) for text in texts for tag in by_prefix[text])
                own = tuple(LookupMatch(tag, text) for tag, text in both)
            pair_count += len(own)
            per_family[family].append((first, length, own))
        for prefixes in per_family.values():
            prefixes.sort(key=_first_and_length)
        return cls(
            _Family(32, per_family[_AF_INET]),
            _Family(128, per_family[_AF_INET6]),
            pair_count,
        )

    @property
    def prefix_count(self) -> int:
        """Number of distinct (tag, prefix) pairs indexed, as ``Snapshot.prefix_count`` counts."""
        return self._pair_count

    @property
    def distinct_prefix_count(self) -> int:
        """Number of distinct prefixes (a prefix in several tags counts once)."""
        return len(self._v4.firsts) + len(self._v6.firsts)

    @property
    def segment_count(self) -> int:
        """Number of disjoint address ranges the nesting was flattened into (both families)."""
        return len(self._v4.starts) + len(self._v6.starts)

    def lookup(self, address: str) -> tuple[LookupMatch, ...]:
        """Every (tag, prefix) whose prefix contains ``address``, most specific first.

        Most specific first = longest prefix first, then tag name. Empty when nothing matches.
        Surrounding whitespace is ignored. Raises InvalidAddressError for anything but one IPv4 or
        IPv6 address (a CIDR included: use :meth:`lookup_cidr` or :meth:`query`).
        """
        text = address.strip()
        family, value = _parse_address(text)
        index = self._v6 if family == _AF_INET6 else self._v4
        return index.values[bisect_right(index.starts, value) - 1]

    def lookup_cidr(self, cidr: str) -> tuple[tuple[LookupMatch, ...], tuple[LookupMatch, ...]]:
        """(containing, overlapping) for a canonical CIDR such as ``13.64.0.0/16``.

        containing: every (tag, prefix) whose prefix contains the whole CIDR (an equal prefix
        included), most specific first. overlapping: every (tag, prefix) whose prefix lies inside
        the CIDR but does not contain it, sorted by address, then prefix length, then tag. (CIDR
        blocks never overlap partly, so these two are every prefix that shares an address with
        the query.) A bare address counts as /32 or /128. Raises InvalidAddressError for host bits
        set (naming the network) and for anything that is not a CIDR.
        """
        text = cidr.strip()
        family, first, length = _parse_cidr(text)
        index = self._v6 if family == _AF_INET6 else self._v4
        around = index.values[bisect_right(index.starts, first) - 1]
        containing = tuple(m for m in around if int(m.prefix.rpartition("/")[2]) <= length)
        if length == index.bits:  # a single address: nothing can lie strictly inside it
            return containing, _EMPTY
        last = first + (1 << (index.bits - length)) - 1
        lengths, owns = index.lengths, index.owns
        overlapping: list[LookupMatch] = []
        for i in range(bisect_left(index.firsts, first), bisect_right(index.firsts, last)):
            if lengths[i] > length:
                overlapping.extend(owns[i])
        return containing, tuple(overlapping)

    def query(self, text: str) -> QueryResult:
        """Answer an address or a CIDR (told apart by "/") in one shape, :class:`QueryResult`.

        For an address, ``containing`` is ``lookup(text)`` and ``overlapping`` is empty; for a
        CIDR both come from :meth:`lookup_cidr`. Raises InvalidAddressError.
        """
        stripped = text.strip()
        if "/" in stripped:
            containing, overlapping = self.lookup_cidr(stripped)
            return QueryResult(stripped, True, containing, overlapping)
        return QueryResult(stripped, False, self.lookup(stripped))

    def answers(self, queries: Iterable[str]) -> list[LookupAnswer]:
        """One :class:`LookupAnswer` per query, in order: its result, or why it is not an
        address or a CIDR (a bad query does not stop the others)."""
        answers = []
        for query in queries:
            try:
                answers.append(LookupAnswer(query.strip(), self.query(query)))
            except InvalidAddressError as e:
                answers.append(LookupAnswer(query.strip(), None, str(e)))
        return answers

    def lookup_many(
        self, lines: Iterable[str]
    ) -> Iterator[tuple[str, tuple[LookupMatch, ...] | InvalidAddressError]]:
        """Look up one address per line, lazily: yields (stripped line, matches or error).

        One result per input line, in input order. A line that is not a single address (blank
        lines and CIDRs included) yields an InvalidAddressError instead of raising, so one bad
        line does not stop a batch. Results are the same shared tuples :meth:`lookup` returns.
        """
        pton = socket.inet_pton
        from_bytes = int.from_bytes
        find = bisect_right
        af4, af6 = _AF_INET, _AF_INET6
        starts4, values4 = self._v4.starts, self._v4.values
        starts6, values6 = self._v6.starts, self._v6.values
        result: tuple[LookupMatch, ...] | InvalidAddressError
        for line in lines:
            text = line.strip()
            try:
                if ":" in text:
                    result = values6[find(starts6, from_bytes(pton(af6, text), "big")) - 1]
                else:
                    result = values4[find(starts4, from_bytes(pton(af4, text), "big")) - 1]
            except (OSError, ValueError):
                result = _address_error(text)
            yield text, result
