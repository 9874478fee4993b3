"""A corpus of bad Service Tags files: each is refused with one sentence, nothing is stored.

Every case goes through the library (``read_source`` then ``parse_snapshot``, as ``aztags
import`` does) and through the real CLI (``aztags import FILE``) into a database that holds one
valid snapshot: a non-zero exit, an ``aztags:`` sentence naming the problem, no traceback, and the
database byte-for-byte unchanged. To add a case, add a ``Bad(name, bytes, phrase)`` to CASES.
"""

# ruff: noqa: E501 - the corpus is a table, one case per line

from __future__ import annotations

import gzip
import json
import os
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main
from resolver.errors import FetchError, SnapshotError
from resolver.parse import parse_snapshot
from resolver.sources import HttpSettings, cloud_name_from_file_name, read_source
from tests.helpers import simple_snapshot, tag_json

MAX_MB = 1  # the size cap for every case (--max-size-mb), so that bombs stay small
MAX = 2**63 - 1


@dataclass(frozen=True)
class Bad:
    name: str
    data: bytes
    says: str  # a phrase of the error sentence
    file_name: str = "bad.json"  # ServiceTags_<Cloud>_<date>.json names the expected cloud


def good_doc(**top: object) -> dict:
    doc: dict = {
        "changeNumber": 300,
        "cloud": "Public",
        "values": [
            tag_json("AzureCloud", ["10.0.0.0/8", "2603:1000::/40"]),
            tag_json("Storage.WestUS", ["10.1.0.0/16"], region="westus", region_id=37),
        ],
    }
    doc.update(top)
    return doc


def dumps(doc: object) -> bytes:
    return json.dumps(doc, indent=2).encode()


def with_top(**top: object) -> bytes:
    return dumps(good_doc(**top))


def without_top(key: str) -> bytes:
    doc = good_doc()
    del doc[key]
    return dumps(doc)


def with_prop(key: str, value: object) -> bytes:
    doc = good_doc()
    doc["values"][1]["properties"][key] = value
    return dumps(doc)


def without_prop(key: str) -> bytes:
    doc = good_doc()
    del doc["values"][1]["properties"][key]
    return dumps(doc)


def with_prefixes(*prefixes: object) -> bytes:
    return with_prop("addressPrefixes", list(prefixes))


def with_tag(**fields: object) -> bytes:
    doc = good_doc()
    doc["values"][1].update(fields)
    return dumps(doc)


def raw_text(placeholder_value: str, where: str = "region") -> bytes:
    """A file whose ``where`` property is written as raw JSON text (escapes kept as written)."""
    text = with_prop(where, "@@PLACEHOLDER@@").decode()
    return text.replace('"@@PLACEHOLDER@@"', placeholder_value).encode()


def renamed_tag(raw_name: str) -> bytes:
    text = with_tag(name="@@N@@", id="@@N@@").decode()
    return text.replace('"@@N@@"', raw_name).encode()


GOOD = dumps(good_doc())
GZ = gzip.compress(GOOD)
HTML = b"<!DOCTYPE html><html><head><title>Sign in</title></head><body>Proxy</body></html>"


CASES: list[Bad] = [
    # -- not a JSON document at all
    Bad("empty", b"", "the body is empty"),
    Bad("whitespace only", b" \r\n\t \n", "the body is empty"),
    Bad("HTML page", HTML, "the body is HTML, not JSON"),
    Bad("HTML after blank lines", b"\n\n   " + HTML, "the body is HTML, not JSON"),
    Bad("HTML after a UTF-8 BOM", b"\xef\xbb\xbf" + HTML, "the body is HTML, not JSON"),
    Bad("truncated in the middle", GOOD[: len(GOOD) // 2], "the file is truncated"),
    Bad("truncated after one byte", b"{", "the file is truncated"),
    Bad("truncated before the last brace", GOOD.rstrip()[:-1], "the file is truncated"),
    Bad("not JSON", b"{not json}", "not valid JSON"),
    Bad("trailing garbage", GOOD + b"\nxyz", "not valid JSON"),
    Bad("two documents", GOOD + GOOD, "not valid JSON"),
    Bad("single quotes", GOOD.replace(b'"', b"'"), "not valid JSON"),
    Bad("trailing comma", GOOD.replace(b"]\n}", b"],\n}", 1), "not valid JSON"),
    Bad("top level list", b"[1, 2, 3]", "the top level is a JSON list"),
    Bad("top level string", b'"ServiceTags"', "the top level is a JSON string"),
    Bad("top level number", b"341", "the top level is a JSON number"),
    Bad("top level null", b"null", "the top level is a JSON null"),
    Bad("top level true", b"true", "the top level is a JSON boolean"),
    # -- encodings
    Bad("invalid UTF-8 in a string", GOOD.replace(b"westus", b"west\xffus"), "not UTF-8 text"),
    Bad("Latin-1 text", raw_text('"S\xe3o Paulo"'.encode("latin-1").decode("latin-1")).replace(
        "ã".encode(), b"\xe3"), "not UTF-8 text"),  # fmt: skip
    Bad("overlong UTF-8", GOOD.replace(b"westus", b"west\xc0\xafus"), "not UTF-8 text"),
    Bad("raw surrogate bytes", GOOD.replace(b"westus", b"west\xed\xa0\x80us"), "not UTF-8 text"),
    Bad("UTF-16 LE with BOM", "\ufeff".encode("utf-16-le") + GOOD.decode().encode("utf-16-le"),
        "UTF-16 text"),  # fmt: skip
    Bad("UTF-16 BE with BOM", "\ufeff".encode("utf-16-be") + GOOD.decode().encode("utf-16-be"),
        "UTF-16 text"),  # fmt: skip
    Bad("UTF-32 with BOM", GOOD.decode().encode("utf-32"), "UTF-32 text"),
    Bad("UTF-16 without BOM", GOOD.decode().encode("utf-16-le"), "NUL bytes"),
    Bad("binary", bytes(range(256)) * 4, "NUL bytes"),
    Bad("binary without NUL", bytes(range(1, 256)) * 4, "not UTF-8 text"),
    # -- JSON that Python accepts and JSON does not
    Bad("NaN changeNumber", GOOD.replace(b'"changeNumber": 300', b'"changeNumber": NaN', 1),
        "holds NaN"),  # fmt: skip
    Bad("Infinity regionId", raw_text("Infinity", "regionId"), "holds Infinity"),
    Bad("-Infinity regionId", raw_text("-Infinity", "regionId"), "holds -Infinity"),
    Bad("a key twice at the top", GOOD.replace(b"{", b'{"cloud": "China", ', 1),
        "the key 'cloud' appears twice"),  # fmt: skip
    Bad("a key twice in properties", raw_text('"westus", "region": "eastus"'),
        "the key 'region' appears twice"),  # fmt: skip
    Bad("a number of 5000 digits", raw_text("9" * 5000, "regionId"), "too large to read"),
    Bad("nested 100000 deep", b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    Bad("objects nested 50000 deep", b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
        "nested too deeply"),  # fmt: skip
    Bad("nested inside a tag", raw_text("[" * 50_000 + "]" * 50_000, "platform"),
        "nested too deeply"),  # fmt: skip
    # -- the top level
    Bad("no changeNumber", without_top("changeNumber"), "changeNumber: expected an integer"),
    Bad("changeNumber as text", with_top(changeNumber="300"), "changeNumber: expected an integer"),
    Bad("changeNumber 300.0", with_top(changeNumber=300.0), "changeNumber: expected an integer"),
    Bad("changeNumber true", with_top(changeNumber=True), "changeNumber: expected an integer"),
    Bad("changeNumber a list", with_top(changeNumber=[300]), "changeNumber: expected an integer"),
    Bad("changeNumber 2**63", with_top(changeNumber=MAX + 1), "changeNumber: 9223372036854775808 is too large"),
    Bad("changeNumber 10**30", with_top(changeNumber=10**30), "changeNumber: 1000000000000000000000000000000 is too large"),
    Bad("changeNumber 1e400", raw_text("1", "regionId").replace(b'"changeNumber": 300', b'"changeNumber": 1e400', 1),
        "changeNumber: expected an integer"),  # fmt: skip
    Bad("changeNumber -1", with_top(changeNumber=-1), "changeNumber: -1 is negative"),
    Bad("no cloud", without_top("cloud"), "cloud: expected one of Public"),
    Bad("cloud a number", with_top(cloud=1), "cloud: expected one of Public"),
    Bad("cloud empty", with_top(cloud=""), "cloud: expected one of Public"),
    Bad("cloud Mars", with_top(cloud="Mars"), "'Mars' is not an Azure cloud"),
    Bad("cloud china in lower case", with_top(cloud="china"), "'china' is not an Azure cloud"),
    Bad("cloud PUBLIC", with_top(cloud="PUBLIC"), "'PUBLIC' is not an Azure cloud"),
    Bad("cloud of a megabyte", with_top(cloud="M" * 600_000), "is not an Azure cloud"),
    Bad("cloud other than the name's", with_top(cloud="China"),
        "the file is for cloud 'China', but 'Public' was requested",
        "ServiceTags_Public_20250113.json"),  # fmt: skip
    Bad("no values", without_top("values"), "values: expected a list of tags"),
    Bad("values an object", with_top(values={"a": 1}), "values: expected a list of tags"),
    Bad("values null", with_top(values=None), "values: expected a list of tags"),
    Bad("values empty", with_top(values=[]), "an empty file is never plausible"),
    Bad("unknown top-level field", with_top(extra=1), "unexpected top-level field(s): 'extra'"),
    # -- tags
    Bad("a tag that is a string", with_top(values=["AzureCloud"]), "values[0]: expected an object"),
    Bad("a tag that is null", with_top(values=[None]), "values[0]: expected an object"),
    Bad("a tag without a name", with_tag(name=None), "values[1]: name: expected a tag name"),
    Bad("a tag named by a number", with_tag(name=7), "values[1]: name: expected a tag name"),
    Bad("a tag with an empty name", with_tag(name=""), "values[1]: name: expected a tag name"),
    Bad("a lone high surrogate in a name", renamed_tag('"Storage\\ud800"'),
        "values[1]: name: 'Storage\\ud800' holds a control character or a lone UTF-16 surrogate"),  # fmt: skip
    Bad("a lone low surrogate in a name", renamed_tag('"\\udc00Storage"'), "values[1]: name:"),
    Bad("surrogates in the wrong order", renamed_tag('"\\udc00\\ud800"'), "values[1]: name:"),
    Bad("an escape sequence in a name", renamed_tag('"Storage\\u001b[2J"'), "values[1]: name:"),
    Bad("a newline in a name", renamed_tag('"Storage\\nAzureCloud"'), "values[1]: name:"),
    Bad("a lone surrogate in a region", raw_text('"westus\\ud83d"'), "tag 'Storage.WestUS': region:"),
    Bad("a lone surrogate in a feature", raw_text('["API", "\\udfff"]', "networkFeatures"),
        "networkFeatures"),  # fmt: skip
    Bad("a comma in a feature", with_prop("networkFeatures", ["API,NSG"]), "comma"),
    Bad("id other than the name", with_tag(id="Storage.EastUS"), "differs from name"),
    Bad("no properties", with_tag(properties=None), "properties: expected an object"),
    Bad("properties a list", with_tag(properties=[1]), "properties: expected an object"),
    Bad("tag changeNumber missing", without_prop("changeNumber"), "changeNumber: expected an integer"),
    Bad("tag changeNumber text", with_prop("changeNumber", "1"), "changeNumber: expected an integer"),
    Bad("tag changeNumber -5", with_prop("changeNumber", -5), "changeNumber: -5 is negative"),
    Bad("tag changeNumber 2**63", with_prop("changeNumber", MAX + 1), "changeNumber: 9223372036854775808 is too large"),
    Bad("regionId 2**64", with_prop("regionId", 2**64), "regionId: 18446744073709551616 is too large"),
    Bad("regionId -1", with_prop("regionId", -1), "regionId: -1 is negative"),
    Bad("regionId 37.5", with_prop("regionId", 37.5), "regionId: expected an integer"),
    Bad("regionId text", with_prop("regionId", "37"), "regionId: expected an integer"),
    Bad("regionId false", with_prop("regionId", False), "regionId: expected an integer"),
    Bad("region a number", with_prop("region", 5), "region: expected a string"),
    Bad("region missing", without_prop("region"), "region: expected a string"),
    Bad("platform null", with_prop("platform", None), "platform: expected a string"),
    Bad("systemService a list", with_prop("systemService", ["AzureStorage"]), "systemService: expected a string"),
    Bad("networkFeatures text", with_prop("networkFeatures", "NSG"), "networkFeatures: expected null or a list"),
    Bad("networkFeatures with a number", with_prop("networkFeatures", ["NSG", 1]), "networkFeatures: expected null or a list"),
    Bad("networkFeatures with ''", with_prop("networkFeatures", [""]), "networkFeatures: expected null or a list"),
    Bad("duplicate tag", with_top(values=[*good_doc()["values"], tag_json("AzureCloud", ["11.0.0.0/8"])]),
        "tag 'AzureCloud': appears more than once"),  # fmt: skip
    Bad("tags differing in case", with_top(values=[*good_doc()["values"], tag_json("azurecloud", [])]),
        "tag 'azurecloud': appears more than once (also as 'AzureCloud'"),  # fmt: skip
    # -- prefixes
    Bad("addressPrefixes missing", without_prop("addressPrefixes"), "addressPrefixes: expected a list"),
    Bad("addressPrefixes text", with_prop("addressPrefixes", "10.0.0.0/8"), "addressPrefixes: expected a list"),
    Bad("a prefix that is a number", with_prefixes(167772160), "167772160 is not a string"),
    Bad("a prefix that is null", with_prefixes(None), "null (or missing) is not a string"),
    Bad("host bits", with_prefixes("10.1.0.1/16"), "host bits are set (the network is 10.1.0.0/16)"),
    Bad("IPv6 host bits", with_prefixes("2603:1000::1/40"), "host bits are set"),
    Bad("no length", with_prefixes("10.1.0.0"), "not in address/length form"),
    Bad("length 33", with_prefixes("10.1.0.0/33"), "longer than 32 bits"),
    Bad("length 129", with_prefixes("2603::/129"), "longer than 128 bits"),
    Bad("length with a leading zero", with_prefixes("10.0.0.0/08"), "not in address/length form"),
    Bad("length in Arabic-Indic digits", with_prefixes("10.1.0.0/١٦"), "ASCII digits"),
    Bad("length in full-width digits", with_prefixes("10.1.0.0/１６"), "ASCII digits"),
    Bad("length of 5000 digits", with_prefixes("10.1.0.0/" + "1" * 5000), "ASCII digits"),
    Bad("length with a sign", with_prefixes("10.1.0.0/+16"), "ASCII digits"),
    Bad("length with a surrogate", raw_text('["10.1.0.0/1\\ud8006"]', "addressPrefixes"), "ASCII digits"),
    Bad("not an address", with_prefixes("not-an-ip/24"), "is not an IPv4 address"),
    Bad("octet 300", with_prefixes("300.1.0.0/16"), "is not an IPv4 address"),
    Bad("octal-looking octet", with_prefixes("010.0.0.0/8"), "is not an IPv4 address"),
    Bad("three octets", with_prefixes("10.1.0/24"), "is not an IPv4 address"),
    Bad("a space before", with_prefixes(" 10.1.0.0/16"), "is not an IPv4 address"),
    Bad("a zone id", with_prefixes("fe80::1%eth0/128"), "is not an IPv6 address"),
    Bad("IPv4-mapped IPv6", with_prefixes("::ffff:10.1.0.0/112"), "IPv4-mapped"),
    Bad("IPv4-mapped /96", with_prefixes("::ffff:0:0/96"), "IPv4-mapped"),
    Bad("IPv4 in IPv6 form, host bits", with_prefixes("::ffff:10.1.0.1/112"), "host bits are set"),
    Bad("a prefix twice", with_prefixes("10.1.0.0/16", "10.1.0.0/16"), "prefix '10.1.0.0/16' is listed twice"),
    Bad("a prefix twice, spelt two ways", with_prefixes("2603:1000::/40", "2603:1000:0::/40"),
        "prefix '2603:1000:0::/40' is listed twice"),  # fmt: skip
    Bad("10000 bad prefixes", with_prefixes(*[f"10.1.{i % 256}.{i // 256 + 1}/24" for i in range(10_000)]),
        "more"),  # fmt: skip
    # -- gzip
    Bad("gzip magic, then garbage", b"\x1f\x8b" + b"not deflate" * 20, "gzip stream", "x.json.gz"),
    Bad("gzip cut short", GZ[: len(GZ) // 2], "it ends before its end marker", "x.json.gz"),
    Bad("gzip without its trailer", GZ[:-8], "it ends before its end marker", "x.json.gz"),
    Bad("gzip with a damaged body", GZ[:20] + bytes(b ^ 0xFF for b in GZ[20:40]) + GZ[40:],
        "is damaged", "x.json.gz"),  # fmt: skip
    Bad("gzip with a wrong checksum", GZ[:-8] + b"\0\0\0\0" + GZ[-4:], "is damaged", "x.json.gz"),
    Bad("gzip, then garbage", GZ + b"trailing junk", "is damaged", "x.json.gz"),
    Bad("gzip bomb over the cap", gzip.compress(b" " * (2 * MAX_MB * 1024 * 1024)),
        f"more than the limit of {MAX_MB * 1024 * 1024} bytes", "x.json.gz"),  # fmt: skip
    Bad("many members over the cap", gzip.compress(b" " * 400_000) * 3,
        "more than the limit", "x.json.gz"),  # fmt: skip
    Bad("gzip of HTML", gzip.compress(HTML), "the body is HTML", "x.json.gz"),
    Bad("gzip of nothing", gzip.compress(b""), "the body is empty", "x.json.gz"),
    Bad("40000 empty gzip members", gzip.compress(b"") * 40_000, "the body is empty", "x.json.gz"),
    Bad("gzip inside gzip", gzip.compress(GZ), "NUL bytes", "x.json.gz"),
    Bad("gzip of a truncated file", gzip.compress(GOOD[:-10]), "the file is truncated", "x.json.gz"),
    Bad("a file over the cap", b" " * (MAX_MB * 1024 * 1024 + 1) + GOOD, "more than the limit"),
]  # fmt: skip


def test_the_corpus_is_large_and_unique():
    assert len(CASES) >= 80
    assert len({c.name for c in CASES}) == len(CASES)
    assert len({c.data for c in CASES}) == len(CASES)


def _write(folder: Path, case: Bad) -> Path:
    path = folder / case.file_name
    path.write_bytes(case.data)
    return path


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_the_library_refuses_each_with_a_sentence(tmp_path, case):
    path = _write(tmp_path, case)
    named = cloud_name_from_file_name(path.name)
    with pytest.raises((SnapshotError, FetchError)) as caught:
        raw = read_source(str(path), HttpSettings(max_bytes=MAX_MB * 1024 * 1024))
        parse_snapshot(raw.data, raw.source, named)
    message = str(caught.value)
    assert case.says in message
    assert str(path) in message
    message.encode("utf-8")  # printable whatever the file held
    assert len(message) < 10_000


# -- the CLI, into a database that holds one snapshot


@pytest.fixture(scope="module")
def template_db(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("template")
    db = folder / "aztags.db"
    good = folder / "ServiceTags_Public_20250106.json"
    good.write_bytes(
        simple_snapshot(100, {"AzureCloud": ["10.0.0.0/8"], "Storage": ["10.1.0.0/16"]})
    )
    result = CliRunner().invoke(main, ["import", str(good), "--db", str(db)])
    assert result.exit_code == 0, result.output
    _settle(db)
    return db


def _settle(db: Path) -> None:
    """Fold the WAL into the file (the command closed its connection when it ended), so that the
    file's bytes are the whole database."""
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def _import(*args: str) -> object:
    return CliRunner().invoke(main, ["import", *args, "--max-size-mb", str(MAX_MB)])


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_the_cli_refuses_each_and_leaves_the_database_as_it_was(tmp_path, template_db, case):
    db = tmp_path / "aztags.db"
    shutil.copyfile(template_db, db)
    before = db.read_bytes()
    path = _write(tmp_path, case)

    result = _import(str(path), "--db", str(db))

    # sys.exit with a code, not an exception that escaped (CliRunner keeps those aside)
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith(f"aztags: {path.name}: ")
    assert case.says in result.stderr
    assert "Traceback" not in result.output and "this is a bug" not in result.output
    _settle(db)
    assert db.read_bytes() == before


def test_a_bad_file_between_two_good_ones_stops_nothing(tmp_path, template_db):
    db = tmp_path / "aztags.db"
    shutil.copyfile(template_db, db)
    first = tmp_path / "ServiceTags_Public_20250113.json"
    first.write_bytes(
        simple_snapshot(101, {"AzureCloud": ["10.0.0.0/8"], "Storage": ["10.2.0.0/16"]})
    )
    bad = tmp_path / "ServiceTags_Public_20250120.json"
    bad.write_bytes(renamed_tag('"Storage\\ud800"'))  # a lone surrogate: a traceback before
    last = tmp_path / "ServiceTags_Public_20250127.json"
    last.write_bytes(
        simple_snapshot(102, {"AzureCloud": ["10.0.0.0/8"], "Storage": ["10.3.0.0/16"]})
    )

    result = _import(str(first), str(bad), str(last), "--db", str(db))

    assert result.exit_code == 1, result.output
    assert (
        "ServiceTags_Public_20250120.json: " in result.stderr
        and "values[1]: name:" in result.stderr
    )
    assert "changeNumber 101 (2025-01-13): now current" in result.stdout
    assert "changeNumber 102 (2025-01-27): now current" in result.stdout
    listed = CliRunner().invoke(main, ["snapshots", "--json", "--db", str(db)])
    assert [s["change_number"] for s in json.loads(listed.stdout)] == [100, 101, 102]


def test_a_file_name_that_is_not_utf8_is_stored_with_its_name_escaped(tmp_path, template_db):
    """Linux file names are bytes: the source text must still be storable (it was a traceback
    at the insert) and printable."""
    db = tmp_path / "aztags.db"
    shutil.copyfile(template_db, db)
    folder = Path(os.fsdecode(bytes(tmp_path) + b"/d\xff"))
    folder.mkdir()
    good = folder / "ServiceTags_Public_20250113.json"
    good.write_bytes(
        simple_snapshot(101, {"AzureCloud": ["10.0.0.0/8"], "Storage": ["10.2.0.0/16"]})
    )

    result = _import(str(good), "--db", str(db))

    assert result.exit_code == 0, result.output
    listed = CliRunner().invoke(main, ["snapshots", "--json", "--db", str(db)])
    assert json.loads(listed.stdout)[-1]["source"].endswith(
        "/d\\xff/ServiceTags_Public_20250113.json"
    )
