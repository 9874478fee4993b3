"""BIRD 2 prefix sets (issue 11), checked with ``bird -p`` on a minimal configuration that
includes the export and uses every set in a filter."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

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
BIRD = pytest.mark.skipif(
    shutil.which("bird") is None, reason="bird is not installed (apt-get install bird2)"
)


def sets(text: str) -> dict[str, list[str]]:
    """``define NAME = [ p, ... ];`` blocks -> name -> prefixes."""
    return {
        name: [p.strip() for p in body.split(",")]
        for name, body in re.findall(r"^define (\w+) = \[\n(.*?)\n\];$", text, re.M | re.S)
    }


def bird_parse(tmp_path: Path, text: str) -> subprocess.CompletedProcess:
    """``bird -p`` on a configuration that includes ``text`` and matches routes against every
    set it defines."""
    (tmp_path / "azure.conf").write_text(text)
    tests = " ".join(f"if net ~ {name} then accept;" for name in sets(text))
    (tmp_path / "bird.conf").write_text(
        "router id 192.0.2.1;\n"
        f'include "{tmp_path / "azure.conf"}";\n'
        "protocol device {}\n"
        f"filter azure {{ {tests} reject; }}\n"
    )
    return subprocess.run(
        ["bird", "-p", "-c", str(tmp_path / "bird.conf")], capture_output=True, text=True
    )


@pytest.mark.realdata
@BIRD
@pytest.mark.parametrize("aggregate", [False, True])
def test_bird_sets_cover_exactly_the_query_and_parse(aztags, tmp_path, aggregate):
    result = aztags("export", *NAMES, "-f", "bird", *(["--aggregate"] if aggregate else []))
    assert result.exit_code == 0 and result.stderr == ""
    found = sets(result.stdout)
    base = "aztags_Storage_WestEurope_AzureCloud_westeurope"
    assert sorted(found) == [f"{base}_v4", f"{base}_v6"]  # one family per set
    expected = collapsed(union_of(raw_tags("Public", DAY), NAMES))
    assert collapsed(found[f"{base}_v4"]) == {4: expected[4], 6: []}
    assert collapsed(found[f"{base}_v6"]) == {4: [], 6: expected[6]}
    assert result.stdout.startswith("# aztags")
    done = bird_parse(tmp_path, result.stdout)
    assert done.returncode == 0, done.stderr


@pytest.fixture
def small(tmp_path):
    db = tmp_path / "small.db"
    invoke = cli_invoker(cli_env(db, tmp_path))

    tags = {"AzureCloud": ["10.0.0.0/16"], "Sql": ["20.0.0.0/16", "2001:db8::/48"]}
    path = tmp_path / "ServiceTags_Public_20250101.json"
    path.write_bytes(simple_snapshot(1, tags))
    assert invoke("import", str(path)).exit_code == 0
    return invoke


@BIRD
def test_bird_one_family_defines_one_set(small, tmp_path):
    result = small("export", "AzureCloud", "-f", "bird")
    assert sets(result.stdout) == {"AzureCloud_v4": ["10.0.0.0/16"]}
    assert bird_parse(tmp_path, result.stdout).returncode == 0


@BIRD
def test_bird_names_are_symbols_of_at_most_64_characters(small, tmp_path):
    result = small("export", "Sql", "-f", "bird", "--name", "9-" + "Storage.WestEurope" * 5)
    names = list(sets(result.stdout))
    assert [len(n) for n in names] == [64, 64]
    assert all(re.fullmatch(r"az_9_Storage_WestEurope\w+_[0-9a-f]{6}_v[46]", n) for n in names)
    done = bird_parse(tmp_path, result.stdout)
    assert done.returncode == 0, done.stderr


def test_bird_empty_list_is_an_error_and_no_delta(small):
    result = small("export", "AzureCloud", "-f", "bird", "--ipv6")
    assert result.exit_code == 3 and "no IPv6 prefixes" in result.stderr and result.stdout == ""
    delta = small("export", "Sql", "-f", "bird", "--since", "cn:1")
    assert "bird has no incremental commands" in delta.stderr
    assert sets(delta.stdout) == {"Sql_v4": ["20.0.0.0/16"], "Sql_v6": ["2001:db8::/48"]}
