"""``POST /v1/lookup`` of many addresses: the JSON document written straight from the snapshot's
whole lookup index, without an object per address.

The answer is byte for byte what ``render.render_lookup_report_json`` of the query layer's
``lookup_report`` gives, encoded as every API document (``responses.dumps``; the tests compare
the two). What makes it cheaper:

- addresses are looked up by ``LookupIndex.lookup_many`` (address text -> integer -> one bisect),
  which returns the index's result tuple, shared by every address of one range: no
  ``QueryResult``/``LookupAnswer`` per address;
- the JSON of an answer after its query (``","tags":[...]}``) is rendered once per distinct tuple
  and kept with the snapshot's index, so a batch only joins texts. An address that inet_pton
  accepted is hex digits, ``.`` and ``:``: JSON as it is, between quotes;
- CIDRs and lines that are no address (rare in a batch) are answered and rendered one by one,
  exactly as the query layer does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from resolver import render
from resolver.errors import InvalidAddressError, UsageError
from resolver.lookup import LookupMatch, LookupReport, QueryResult
from resolver.server.responses import dumps

if TYPE_CHECKING:
    from resolver.lookup import LookupIndex
    from resolver.models import SnapshotInfo, TagSummary
    from resolver.staleness import Freshness

Details = Mapping[str, "TagSummary"]
_EMPTY_ANSWERS = '"answers":[]}'
_ONE_MATCH = '{"query":"","tags":['
_PLACEHOLDER = "0.0.0.0/0:aztags:prefix"  # JSON as it is, and no tag name or region holds it


class KeptIndex:
    """A snapshot's whole lookup index, kept between requests, with what batches rendered from
    it: the JSON of each tag as a match (one entry per tag at most), and the answer of each
    result tuple met so far, by the tuple's id (the index keeps its tuples alive, and this
    object lives exactly as long as the index; ``max_tails`` bounds them, about 300 bytes
    each). The dicts are shared by the worker threads: one key is set or read at a time, never
    iterated, which a dict allows."""

    __slots__ = ("index", "tags", "tails", "max_tails")

    def __init__(self, index: LookupIndex, max_tails: int = 20_000):
        self.index = index
        # tag -> its JSON as a match before and after the prefix
        self.tags: dict[str, tuple[str, str | None]] = {}
        self.tails: dict[int, str] = {}  # id of a result tuple -> '","tags":[...]}'
        self.max_tails = max_tails

    def tail(self, result: tuple[LookupMatch, ...], details: Details) -> str:
        """``","tags":[...]}``: the document of an address that ``result`` answers, after its
        query. A match is its tag's JSON around its prefix (canonical CIDR text, which the
        index has parsed: JSON as it is); each tag's is rendered once by the query layer's
        renderer, around a placeholder prefix."""
        tags = self.tags
        texts = []
        for match in result:
            around = tags.get(match.tag)
            if around is None:
                around = tags[match.tag] = _around(match.tag, details)
            if around[1] is None:  # a tag whose JSON holds the placeholder (never in Azure's)
                texts.append(_one(match, details))
            else:
                texts.append(around[0] + match.prefix + around[1])
        tail = '","tags":[' + ",".join(texts) + "]}"
        if len(self.tails) < self.max_tails:
            self.tails[id(result)] = tail
        return tail


def _one(match: LookupMatch, details: Details) -> str:
    """The JSON object of one match, as the query layer renders it."""
    doc = render.render_lookup_doc("", QueryResult("", False, (match,)), None, details)
    return dumps(doc)[len(_ONE_MATCH) : -2]


def _around(tag: str, details: Details) -> tuple[str, str | None]:
    """The JSON of ``tag`` as a match, before and after its prefix (None: use :func:`_one`)."""
    before, found, after = _one(LookupMatch(tag, _PLACEHOLDER), details).partition(_PLACEHOLDER)
    if not found or not before.endswith('"prefix":"') or _PLACEHOLDER in after:
        return "", None
    return before, after


def lookup_document(
    kept: KeptIndex,
    queries: Sequence[str],
    snapshot: SnapshotInfo,
    details: Details,
    freshness: Freshness | None,
) -> bytes:
    """The API's lookup document for ``queries`` answered from ``kept`` (the index of
    ``snapshot``; ``details``: its tags; ``freshness``: what to say about it), as
    ``ServedStore.lookup_document`` reads them in one view. A UsageError (400) when no line is
    an address or a CIDR, as ``api._answerable``."""
    index, tails = kept.index, kept.tails
    parts: list[str] = []
    append = parts.append
    errors: list[str] = []
    answered = False
    for text, result in index.lookup_many(queries):
        if result.__class__ is tuple:
            tail = tails.get(id(result))
            if tail is None:
                tail = kept.tail(result, details)
            append('{"query":"' + text + tail)
            answered = True
            continue
        try:  # a CIDR, or no address: as the query layer answers it
            found: QueryResult | None = index.query(text)
            error = None
            answered = True
        except InvalidAddressError as e:
            found, error = None, str(e)
            if len(errors) < 5:
                errors.append(error or text)
        append(dumps(render.render_lookup_doc(text, found, error, details)))
    if parts and not answered:
        more = len(parts) - 5
        raise UsageError(
            f"No address or CIDR to look up: {'; '.join(errors)}"
            f"{f' (and {more} more)' if more > 0 else ''}."
        )
    head = dumps(render.render_lookup_report_json(LookupReport(snapshot, (), {}, freshness)))
    if not head.endswith(_EMPTY_ANSWERS):  # render_lookup_report_json puts "answers" last
        raise RuntimeError("The lookup document does not end with its answers.")
    text = head[: -len(_EMPTY_ANSWERS)] + '"answers":[' + ",".join(parts) + "]}"
    return text.encode("utf-8")
