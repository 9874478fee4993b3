"""Shared fixtures: the real published files (read in place) and synthetic snapshots."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "servicetags"
WEEKLY_2023 = [
    "20230306",
    "20230313",
    "20230320",
    "20230327",
    "20230403",
    "20230410",
    "20230417",
    "20230424",
    "20230501",
    "20230508",
    "20230515",
    "20230522",
    "20230529",
    "20230605",
    "20230612",
    "20230619",
]


def require_data() -> Path:
    """The folder of real files, or skip the test saying why."""
    if not (DATA / "MANIFEST.tsv").is_file():
        pytest.skip(f"real Service Tags files not found at {DATA} (../shared/data beside the repo)")
    return DATA


def real_path(cloud: str, day: str) -> Path:
    path = require_data() / cloud / f"ServiceTags_{cloud}_{day}.json.gz"
    if not path.is_file():
        pytest.skip(f"{path.name} is not in {DATA}")
    return path


def real_json(cloud: str, day: str) -> dict:
    return json.loads(gzip.decompress(real_path(cloud, day).read_bytes()))


def load_real_tags(path: Path) -> list:
    """The tags of a real file, parsed by resolver/parse.py (tested on its own in test_parse)."""
    from resolver.parse import parse_snapshot

    if not path.exists():
        pytest.skip(f"real data not found at {path} (../shared/data/servicetags beside the repo)")
    return list(parse_snapshot(gzip.decompress(path.read_bytes()), path.name).tags)


def manifest() -> list[dict[str, str]]:
    with open(require_data() / "MANIFEST.tsv", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def tag_json(
    name: str,
    prefixes: list[str],
    *,
    region: str = "",
    region_id: int = 0,
    service: str | None = None,
    features: list[str] | None = ["API", "NSG"],  # noqa: B006 - read only
    change_number: int = 1,
) -> dict:
    return {
        "name": name,
        "id": name,
        "properties": {
            "changeNumber": change_number,
            "region": region,
            "regionId": region_id,
            "platform": "Azure",
            "systemService": name.split(".")[0] if service is None else service,
            "addressPrefixes": prefixes,
            "networkFeatures": features,
        },
    }


def snapshot_bytes(change_number: int, tags: list[dict], cloud: str = "Public") -> bytes:
    """A file in Microsoft's exact layout (json.dumps indent=2)."""
    doc = {"changeNumber": change_number, "cloud": cloud, "values": tags}
    return json.dumps(doc, indent=2).encode()


def simple_snapshot(change_number: int, tags: dict[str, list[str]], cloud: str = "Public") -> bytes:
    """Tags given as {name: prefixes}; a name with a dot and a CamelCase suffix gets a region."""
    values = []
    for name, prefixes in sorted(tags.items()):
        region = name.split(".", 1)[1].lower() if "." in name else ""
        values.append(tag_json(name, prefixes, region=region, region_id=1 if region else 0))
    return snapshot_bytes(change_number, values, cloud)
