"""The pf table file (issue 11). pfctl does not run on Linux, so the file is read back the way
pfctl reads it (``pfr_next_token`` in OpenBSD's sbin/pfctl/pfctl_radix.c: whitespace-separated
tokens, ``#`` to the end of the line dropped) and every token must be an address or a prefix."""

from __future__ import annotations

import ipaddress
import re
from datetime import date
from pathlib import Path

import pytest

from resolver.exports.formats import bsd
from resolver.exports.model import ExportInput, ExportObject, Header
from tests.helpers import (
    WEEKLY_2023,
    cli_env,
    cli_invoker,
    collapsed,
    raw_tags,
    simple_snapshot,
    union_of,
)

DAY = WEEKLY_2023[-1]
NAMES = ["Storage.WestEurope", "AzureCloud.westeurope"]
HEADER = Header("Public", 259, date(2023, 6, 19), "tags x")


def read_like_pfctl(text: str) -> list[str]:
    tokens = re.sub(r"#[^\n]*", "", text).split()
    return [str(ipaddress.ip_network(t)) for t in tokens]  # raises on anything else


@pytest.mark.realdata
@pytest.mark.parametrize("aggregate", [False, True])
def test_pf_table_file_covers_exactly_the_query(aztags, aggregate):
    result = aztags("export", *NAMES, "-f", "pf", *(["--aggregate"] if aggregate else []))
    assert result.exit_code == 0 and result.stderr == ""
    expected = collapsed(union_of(raw_tags("Public", DAY), NAMES))
    assert collapsed(read_like_pfctl(result.stdout)) == expected
    assert expected[4] and expected[6]  # both families, in the one table
    lines = result.stdout.splitlines()
    assert lines[0].startswith("# aztags") and lines[1].startswith("# cloud Public, changeNumber")
    assert "# Load with: pfctl -t aztags-Storage.WestEurop_75bc27 -T replace -f" in result.stdout


@pytest.fixture
def small(tmp_path: Path):
    db = tmp_path / "small.db"
    invoke = cli_invoker(cli_env(db, tmp_path))

    azure = [f"10.{i}.0.0/16" for i in range(10)]
    for cn, sql in enumerate((["20.0.0.0/16", "20.1.0.0/16"], ["20.1.0.0/16", "2001:db8::/48"]), 1):
        path = tmp_path / f"ServiceTags_Public_2025010{cn}.json"
        path.write_bytes(simple_snapshot(cn, {"AzureCloud": azure, "Sql": sql}))
        assert invoke("import", str(path)).exit_code == 0
    return invoke


def test_pf_has_no_delta_and_says_so(small):
    result = small("export", "Sql", "-f", "pf", "--since", "cn:1")
    assert result.exit_code == 0
    assert "pf has no incremental commands: writing the full list" in result.stderr
    assert read_like_pfctl(result.stdout) == ["20.1.0.0/16", "2001:db8::/48"]


def test_pf_empty_list_is_an_error(small):
    result = small("export", "AzureCloud", "-f", "pf", "--ipv6")
    assert result.exit_code == 3 and "no IPv6 prefixes" in result.stderr and result.stdout == ""


def test_pf_table_name_is_cut_to_31_characters(small):
    result = small("export", "Sql", "-f", "pf", "--name", "Storage.West Europe/" + "x" * 40)
    name = re.search(r"pfctl -t (\S+) -T replace", result.stdout)[1]
    assert len(name) == 31 and re.fullmatch(r"Storage\.West_Europe_x+_[0-9a-f]{6}", name)
    assert f"table <{name}> persist" in result.stdout


def prefixes(n: int) -> tuple[str, ...]:
    return tuple(f"{10 + (i >> 16)}.{(i >> 8) & 255}.{i & 255}.0/24" for i in range(n))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("count", "warning"),
    [
        (65_535, None),
        (65_536, "raise the sysctl net.pf.request_maxcount above 65,535"),
        (200_001, "more than pf's default table-entries limit (200,000)"),
    ],
)
def test_pf_warns_past_the_kernel_limits(count, warning):
    out = bsd.pf(ExportInput(HEADER, (ExportObject("big", prefixes(count)),)))
    assert len(read_like_pfctl(out.text)) == count
    if warning is None:
        assert out.warnings == ()
    else:
        assert len(out.warnings) == 1 and warning in out.warnings[0]
