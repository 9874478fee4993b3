"""Helpers shared by the test modules: the real published files and what they hold, synthetic
snapshots, and brute-force answers computed from the raw JSON with the standard library only.

Test modules import from here (``from tests.helpers import ...``), never from one another: a
module imported under two names (``test_query`` by pytest, ``tests.test_query`` by a neighbour)
is loaded twice, and every ``functools.cache`` below would then be filled twice.

Every function that reads ``../shared/data`` goes through :func:`require_data`, which tells the
guard in conftest.py that the running test reads real files: a test doing so without the
``realdata`` mark fails.
"""

from __future__ import annotations

import csv
import functools
import gzip
import ipaddress
import json
import random
from bisect import bisect_left, bisect_right
from datetime import date
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
CHINA_DAY = "20241118"
AZUREML_GLOBAL = [
    "AzureMachineLearning",
    "AzureActiveDirectory",
    "AzureResourceManager",
    "MicrosoftContainerRegistry",
    "AzureMonitor",
]


# -- the real files --------------------------------------------------------------------------------

# The test being run (set by conftest.py), and the note require_data() leaves on it: conftest.py
# fails a test that reads the real files, or sets up a fixture that does, without the realdata mark.
RUNNING: list[pytest.Item] = []
READS_REAL_DATA = pytest.StashKey[bool]()


def require_data() -> Path:
    """The folder of real files, or skip the test saying why."""
    if RUNNING:
        RUNNING[-1].stash[READS_REAL_DATA] = True
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


@functools.cache
def _parsed_tags(cloud: str, day: str) -> tuple:
    from resolver.parse import parse_snapshot

    path = real_path(cloud, day)
    return parse_snapshot(gzip.decompress(path.read_bytes()), path.name).tags


def load_real_tags(cloud: str, day: str) -> list:
    """The tags of a real file, parsed by resolver/parse.py (tested on its own in test_parse).

    Parsed once per run (the tags are frozen dataclasses); each call gets its own list."""
    require_data()  # the guard sees every caller, not only the first
    return list(_parsed_tags(cloud, day))


def manifest() -> list[dict[str, str]]:
    with open(require_data() / "MANIFEST.tsv", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


# -- synthetic files -------------------------------------------------------------------------------


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


# A small history built in code: a re-cut, a tag that disappears, a tag that appears, a
# networkFeatures change that does not bump the tag's changeNumber.
SYNTHETIC = [
    (
        1,
        "2025-01-06",
        [
            tag_json("Storage", ["10.0.0.0/16", "10.1.0.0/16"], service="AzureStorage"),
            tag_json(
                "Storage.WestUS",
                ["10.0.0.0/24"],
                region="westus",
                region_id=1,
                service="AzureStorage",
            ),
            tag_json("Gone", ["30.0.0.0/24", "2001:db8::/48"]),
            tag_json("Sql", ["20.0.0.0/16"], features=None),
        ],
    ),
    (
        2,
        "2025-01-13",
        [
            tag_json(
                "Storage",
                ["10.0.0.0/17", "10.0.128.0/17", "10.1.0.0/16"],
                service="AzureStorage",
                change_number=2,
            ),
            tag_json(
                "Storage.WestUS",
                ["10.0.0.0/24", "10.0.1.0/24"],
                region="westus",
                region_id=1,
                service="AzureStorage",
                change_number=2,
            ),
            tag_json("Sql", ["20.0.0.0/16"], features=["API", "NSG"]),
            tag_json("New", ["40.0.0.0/24"]),
        ],
    ),
]


def synthetic_files(folder: Path) -> list[Path]:
    paths = []
    for cn, day, tags in SYNTHETIC:
        path = folder / f"ServiceTags_Public_{day.replace('-', '')}.json"
        path.write_bytes(snapshot_bytes(cn, tags))
        paths.append(path)
    return paths


# -- the raw files, read with the standard library only --------------------------------------------
# Expected values for the query tests (test_query.py, test_cli_query.py): computed from the raw
# JSON with ipaddress and plain loops over every (tag, prefix) pair, never with the code under
# test. Cached per run: shared, do not modify what they return.


def iso(day: str) -> str:
    """20230320 -> 2023-03-20"""
    return f"{day[:4]}-{day[4:6]}-{day[6:]}"


def as_date(day: str) -> date:
    return date.fromisoformat(iso(day))


@functools.cache
def _raw_file(cloud: str, day: str) -> dict:
    return real_json(cloud, day)


def raw_file(cloud: str, day: str) -> dict:
    require_data()  # the guard sees every caller, not only the one that filled the cache
    return _raw_file(cloud, day)


@functools.cache
def _raw_tags(cloud: str, day: str) -> dict[str, dict]:
    return {v["name"]: v["properties"] for v in _raw_file(cloud, day)["values"]}


def raw_tags(cloud: str, day: str) -> dict[str, dict]:
    """{tag name: properties} of one published file (shared: do not modify)."""
    require_data()
    return _raw_tags(cloud, day)


def raw_cn(cloud: str, day: str) -> int:
    return raw_file(cloud, day)["changeNumber"]


@functools.cache
def parse_net(prefix: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """Prefixes repeat from week to week: parse each text once per session."""
    return ipaddress.ip_network(prefix)


@functools.cache
def net_key(prefix: str) -> tuple[int, int, int]:
    net = parse_net(prefix)
    return net.version, int(net.network_address), net.prefixlen


def sort_prefixes(prefixes) -> list[str]:
    """IPv4 first, then by address, then by length: the order every output promises."""
    return sorted(set(prefixes), key=net_key)


def azureml_tags(cloud: str, suffix: str) -> list[str]:
    """The real tag names behind the built-in azureml profile (the Azure ML page) for one region:
    Front Door's Frontend is not needed in China, FirstParty is in the Public file only."""
    regional = [f"{base}.{suffix}" for base in ("BatchNodeManagement", "Storage", "AzureKeyVault")]
    front_door = [] if cloud == "China" else ["AzureFrontDoor.Frontend"]
    first_party = ["AzureFrontDoor.FirstParty"] if cloud == "Public" else []
    return AZUREML_GLOBAL + regional + front_door + first_party


def union_of(tags: dict[str, dict], names) -> set[str]:
    return {p for name in names for p in tags[name]["addressPrefixes"]}


@functools.cache
def _raw_pairs(cloud: str, day: str) -> tuple[tuple[int, int, int, int, str, str], ...]:
    pairs = []
    for name, props in _raw_tags(cloud, day).items():
        for prefix in props["addressPrefixes"]:
            net = parse_net(prefix)
            first, last = int(net.network_address), int(net.broadcast_address)
            pairs.append((net.version, first, last, net.prefixlen, name, prefix))
    return tuple(pairs)


def raw_pairs(cloud: str, day: str) -> tuple[tuple[int, int, int, int, str, str], ...]:
    """Every (tag, prefix) pair of a file as (family, first, last, length, tag, prefix)."""
    require_data()
    return _raw_pairs(cloud, day)


def brute_lookup(pairs, addresses: list[str]) -> dict[str, list[tuple[str, str]]]:
    """Every (tag, prefix) whose range holds each address, longest prefix first, then tag name.

    One pass over all pairs; each pair's [first, last] range picks its addresses out of the sorted
    queries with bisect.
    """
    keyed = sorted(
        (ipaddress.ip_address(a).version, int(ipaddress.ip_address(a)), a) for a in set(addresses)
    )
    keys = [(family, value) for family, value, _ in keyed]
    hits: dict[str, list[tuple[int, str, str]]] = {a: [] for a in addresses}
    for family, first, last, length, tag, prefix in pairs:
        for _, _, address in keyed[
            bisect_left(keys, (family, first)) : bisect_right(keys, (family, last))
        ]:
            hits[address].append((-length, tag, prefix))
    return {a: [(tag, prefix) for _, tag, prefix in sorted(h)] for a, h in hits.items()}


@functools.cache
def pairs_by_start(pairs) -> tuple[list[tuple[int, int]], list[tuple]]:
    ordered = sorted(pairs)
    return [(p[0], p[1]) for p in ordered], ordered


def brute_cidrs(pairs, cidrs: list[str]) -> dict[str, tuple[list, list]]:
    """{cidr: (containing, inside)}: the pairs whose range holds all of the CIDR (longest first,
    then tag), and the pairs whose range lies strictly inside it (by address, then length, then
    tag). Containing pairs are those holding the CIDR's first address that also reach its last."""
    nets = {c: ipaddress.ip_network(c) for c in cidrs}
    holding = brute_lookup(pairs, [str(n.network_address) for n in nets.values()])
    starts, ordered = pairs_by_start(pairs)
    out = {}
    for cidr, q in nets.items():
        qf, ql, qlen = int(q.network_address), int(q.broadcast_address), q.prefixlen
        containing = [
            (t, p)
            for t, p in holding[str(q.network_address)]
            if int(parse_net(p).broadcast_address) >= ql
        ]
        window = ordered[
            bisect_left(starts, (q.version, qf)) : bisect_right(starts, (q.version, ql))
        ]
        inside = sorted(
            (first, length, tag, prefix)
            for _, first, last, length, tag, prefix in window
            if last <= ql and length > qlen
        )
        out[cidr] = containing, [(t, p) for _, _, t, p in inside]
    return out


def random_addresses(pairs, seed: int, n: int = 400) -> list[str]:
    """Half inside published prefixes (including their first and last address and the address just
    outside), half random (IPv4 anywhere, IPv6 in Azure's 2603::/16 and anywhere)."""
    rng = random.Random(seed)
    out: list[str] = []
    for _ in range(n // 2):
        family, first, last, *_ = rng.choice(pairs)
        kind = rng.random()
        value = first if kind < 0.1 else last if kind < 0.2 else rng.randint(first, last)
        if 0.2 <= kind < 0.3:
            value = first - 1 if first > 0 else last + 1  # just outside (may be inside another)
        out.append(
            str(ipaddress.ip_address(value) if family == 4 else ipaddress.IPv6Address(value))
        )
    for i in range(n // 2):
        if i % 2:
            out.append(str(ipaddress.IPv4Address(rng.getrandbits(32))))
        elif i % 4:
            out.append(str(ipaddress.IPv6Address((0x2603 << 112) | rng.getrandbits(112))))
        else:
            out.append(str(ipaddress.IPv6Address(rng.getrandbits(128))))
    return list(dict.fromkeys(out))


def random_cidrs(pairs, seed: int, n: int = 50) -> list[str]:
    """Published prefixes as they are, their supernets (tags inside), their subnets (containing
    tags only), and random blocks that may hit nothing."""
    rng = random.Random(seed)
    out: list[str] = []
    while len(out) < n:
        family, first, last, length, _, prefix = rng.choice(pairs)
        kind = len(out) % 4
        bits = 32 if family == 4 else 128
        if kind == 0:
            out.append(prefix)
        elif kind == 1:
            out.append(
                str(
                    ipaddress.ip_network(prefix).supernet(
                        prefixlen_diff=min(length, rng.randint(1, 8))
                    )
                )
            )
        elif kind == 2 and length < bits:
            subs = list(
                ipaddress.ip_network(prefix).subnets(
                    prefixlen_diff=min(bits - length, rng.randint(1, 3))
                )
            )
            out.append(str(rng.choice(subs)))
        elif family == 4:
            out.append(str(ipaddress.ip_network((rng.getrandbits(32) >> 8 << 8, 24))))
        else:
            out.append(
                str(ipaddress.ip_network(((0x2603 << 112 | rng.getrandbits(112)) >> 80 << 80, 48)))
            )
    return list(dict.fromkeys(out))


def collapsed(prefixes) -> dict[int, list]:
    """The address space of prefixes per IP version, merged by ipaddress.collapse_addresses."""
    nets = [parse_net(p) for p in prefixes]
    return {
        v: list(ipaddress.collapse_addresses(n for n in nets if n.version == v)) for v in (4, 6)
    }


def ranges_of(prefixes) -> dict[int, list[tuple[int, int]]]:
    """The [first, last] address range of each prefix (integers, by ipaddress), per IP version."""
    out: dict[int, list[tuple[int, int]]] = {4: [], 6: []}
    for p in prefixes:
        net = parse_net(p)
        out[net.version].append((int(net.network_address), int(net.broadcast_address)))
    return out


def union_size(ranges) -> int:
    """How many addresses a set of [first, last] ranges covers: sorted by first address, each
    range counts what it holds beyond the furthest address counted so far."""
    total, end = 0, -1
    for first, last in sorted(ranges):
        if last > end:
            total += last - max(first, end + 1) + 1
            end = last
    return total


@functools.cache
def _file_space(cloud: str, day: str) -> dict[int, list[tuple[int, int]]]:
    tags = _raw_tags(cloud, day)
    return ranges_of(union_of(tags, tags))


def file_space(cloud: str, day: str) -> dict[int, list[tuple[int, int]]]:
    """The address ranges of every prefix of a file, per IP version (for address_delta)."""
    require_data()
    return _file_space(cloud, day)


def address_delta(before, after) -> dict[str, int]:
    """Addresses added and removed per family between two address spaces (prefix sets, or
    file_space() results), with ipaddress and integer ranges: |union(before + after)| -
    |union(before)| is what was added, and the other way round.

    (An integer sweep over the ranges rather than ipaddress.collapse_addresses: the same count,
    without collapsing some 86,000 network objects per file.)"""
    before = before if isinstance(before, dict) else ranges_of(before)
    after = after if isinstance(after, dict) else ranges_of(after)
    out = {}
    for v in (4, 6):
        both = union_size(before[v] + after[v])
        out[f"ipv{v}_addresses_added"] = both - union_size(before[v])
        out[f"ipv{v}_addresses_removed"] = both - union_size(after[v])
    return out


def expected_tag_changes(old: dict[str, dict], new: dict[str, dict]) -> dict[str, tuple[set, set]]:
    """{tag: (prefixes added, prefixes removed)} for every tag whose prefixes or properties
    differ (or that exists on one side only)."""

    def props(p):
        features = None if p["networkFeatures"] is None else frozenset(p["networkFeatures"])
        return p["region"], p["regionId"], p["systemService"], features

    changes = {}
    for name in old.keys() | new.keys():
        a = set(old[name]["addressPrefixes"]) if name in old else set()
        b = set(new[name]["addressPrefixes"]) if name in new else set()
        if name not in old or name not in new or a != b or props(old[name]) != props(new[name]):
            changes[name] = (b - a, a - b)
    return changes


def expected_history(name: str) -> list[tuple]:
    """(file date, tag changeNumber, IPv4, IPv6, added, removed) at each weekly file where the
    tag's prefixes or properties changed, and (file date, 'removed') where it disappeared."""

    def props(p):
        features = None if p["networkFeatures"] is None else frozenset(p["networkFeatures"])
        return p["region"], p["systemService"], features, frozenset(p["addressPrefixes"])

    rows, previous = [], None
    for day in WEEKLY_2023:
        p = raw_tags("Public", day).get(name)
        if p is None:
            if previous is not None:
                rows.append((as_date(day), "removed"))
            previous = None
            continue
        if previous is None or props(p) != props(previous):
            now, before = (
                set(p["addressPrefixes"]),
                set(previous["addressPrefixes"]) if previous else set(),
            )
            rows.append(
                (
                    as_date(day),
                    p["changeNumber"],
                    sum(":" not in x for x in now),
                    sum(":" in x for x in now),
                    len(now - before),
                    len(before - now),
                )
            )
        previous = p
    return rows


# The 2021 azureml profile, frozen: tests of export formats and rule sets use it, so that their
# expectations do not move when the built-in profile follows Microsoft's page.
FROZEN_PROFILES = ROOT / "tests" / "profiles"


def cli_env(
    db: Path | str,
    home: Path,
    *,
    max_age_days: str | None = "36500",
    profiles: Path | None = None,
) -> dict[str, str | None]:
    """The variables a command reads, pinned for CliRunner: this store, no user config, no user
    profiles (unless ``profiles``: a folder, e.g. FROZEN_PROFILES), no cloud override. The test
    stores hold old files, so the stale-data warning is off unless ``max_age_days`` is given
    (None: the default limit, 14 days)."""
    return {
        "AZTAGS_DB": str(db),
        "XDG_CONFIG_HOME": str(home / "config"),
        "AZTAGS_CONFIG": None,
        "AZTAGS_CLOUD": None,
        "AZTAGS_PROFILES_DIR": str(profiles) if profiles else None,
        "AZTAGS_MAX_AGE_DAYS": max_age_days,
    }


# A child interpreter that runs one aztags command and prints, last, its exit code and every
# module it loaded (for the tests that check what a command imports)
_MODULES_CHILD = """
import sys
from cli import main
try:
    main(sys.argv[1:], prog_name="aztags")
except SystemExit as e:
    code = e.code
modules = sorted(sys.modules)  # before json, which this child imports for itself
import json
print(json.dumps({"code": code, "modules": modules}))
"""


def run_counting_modules(
    args: list[str], env: dict[str, str | None], home: Path
) -> tuple[int, str, set[str]]:
    """``aztags ARGS`` in a fresh interpreter (no PATH, HOME at ``home``): its exit code, what
    it printed before the last line, and the modules it loaded."""
    import subprocess
    import sys

    child_env = {k: v for k, v in env.items() if v is not None}
    child_env.update(PATH="", HOME=str(home))
    done = subprocess.run(
        [sys.executable, "-c", _MODULES_CHILD, *args],
        cwd=ROOT,
        env=child_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    *out, last = done.stdout.rstrip("\n").split("\n")
    result = json.loads(last)
    return result["code"], "\n".join(out), set(result["modules"])


def expected_space(
    names, *, family: int | None = None, day: str = WEEKLY_2023[-1], cloud: str = "Public"
) -> dict[int, list]:
    """What an export of tags must cover: the union of their prefixes in the raw file (one
    family when asked), merged, per IP version (compare with ``collapsed`` of the output)."""
    prefixes = union_of(raw_tags(cloud, day), names)
    return collapsed(p for p in prefixes if family is None or (":" in p) == (family == 6))


def cli_invoker(env: dict[str, str | None]):
    """``invoke(*args)``: the aztags command line run in-process with ``env`` (CliRunner)."""
    from click.testing import CliRunner

    from cli import main

    def invoke(*args: str):
        return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)

    return invoke
