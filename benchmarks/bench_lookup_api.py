"""Benchmark resolver.lookup on a real Public snapshot: build time, peak RSS, batch lookups/s.

Run from the repository root:  .venv/bin/python benchmarks/bench_lookup_api.py [N]
N addresses (default 1,000,000), IPv4, fixed seed, half inside Azure prefixes, half anywhere.
Reads ../shared/data/servicetags/ in place; exits with a message if that folder is absent.
"""

from __future__ import annotations

import gzip
import json
import platform
import random
import resource
import socket
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from resolver.lookup import LookupIndex  # noqa: E402  (after the path set-up above)

DATA = ROOT.parent / "shared" / "data" / "servicetags"
FILE = DATA / "Public" / "ServiceTags_Public_20250113.json.gz"
SEED = 20250113


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def make_addresses(pairs: list[tuple[str, str]], count: int) -> list[str]:
    """IPv4 text, half drawn uniformly from inside a random Azure prefix, half from anywhere."""
    ranges = []
    for prefix in {p for _, p in pairs if ":" not in p}:
        address, _, length = prefix.partition("/")
        first = int.from_bytes(socket.inet_aton(address), "big")
        ranges.append((first, first + (1 << (32 - int(length))) - 1))
    ranges.sort()
    rng = random.Random(SEED)
    out = []
    for i in range(count):
        if i % 2:
            first, last = rng.choice(ranges)
            value = rng.randint(first, last)
        else:
            value = rng.getrandbits(32)
        out.append(socket.inet_ntoa(value.to_bytes(4, "big")))
    return out


def main() -> int:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    if not FILE.exists():
        print(
            f"bench_lookup_api: {FILE} not found. The real Service Tags data lives in "
            f"{DATA} (../shared/data/servicetags relative to the repository root); "
            "nothing to measure without it.",
            file=sys.stderr,
        )
        return 1

    rss_before = peak_rss_mib()
    started = time.perf_counter()
    document = json.loads(gzip.decompress(FILE.read_bytes()))
    pairs = [
        (value["name"], prefix)
        for value in document["values"]
        for prefix in value["properties"]["addressPrefixes"]
    ]
    load_s = time.perf_counter() - started
    rss_loaded = peak_rss_mib()

    build_times = []
    for attempt in range(3):
        started = time.perf_counter()
        index = LookupIndex.build(pairs)
        build_times.append(time.perf_counter() - started)
        if attempt == 0:
            rss_built = peak_rss_mib()  # later builds overlap the previous index in memory

    addresses = make_addresses(pairs, count)

    def stream() -> None:  # how a CLI uses it: answer each line, keep nothing
        for _ in index.lookup_many(addresses):
            pass

    def collect() -> None:  # keeping all 1M results alive also makes the cyclic GC work
        list(index.lookup_many(addresses))

    medians = {}
    for name, run in (("stream", stream), ("collect", collect)):
        times = []
        for _ in range(3):
            started = time.perf_counter()
            run()
            times.append(time.perf_counter() - started)
        medians[name] = statistics.median(times)

    results = list(index.lookup_many(addresses))
    found = [r for _, r in results if isinstance(r, tuple) and r]
    errors = sum(1 for _, r in results if isinstance(r, Exception))
    tags_per_found = sum(len({m.tag for m in r}) for r in found) / len(found) if found else 0.0

    rows = [
        ("python", f"{platform.python_implementation()} {platform.python_version()}"),
        ("snapshot", FILE.name),
        ("(tag, prefix) pairs", f"{index.prefix_count:,}"),
        ("distinct prefixes", f"{index.distinct_prefix_count:,}"),
        ("disjoint segments", f"{index.segment_count:,}"),
        ("read + parse file", f"{load_s * 1000:.0f} ms"),
        ("build, first run", f"{build_times[0] * 1000:.0f} ms"),
        ("build, median of 3", f"{statistics.median(build_times) * 1000:.0f} ms"),
        (
            "peak RSS: start / parsed / first build",
            f"{rss_before:.0f} / {rss_loaded:.0f} / {rss_built:.0f} MiB",
        ),
        ("addresses (IPv4, half in Azure)", f"{count:,}"),
        ("lookup_many streamed, median of 3", f"{medians['stream']:.3f} s"),
        ("lookups/s, streamed", f"{count / medians['stream']:,.0f}"),
        ("lookups/s, collected into a list", f"{count / medians['collect']:,.0f}"),
        ("addresses with >= 1 match", f"{len(found) / count:.1%}"),
        ("avg distinct tags per matched address", f"{tags_per_found:.2f}"),
        ("invalid lines", f"{errors}"),
    ]
    width = max(len(name) for name, _ in rows)
    print(f"| {'measure':<{width}} | value")
    print(f"|{'-' * (width + 2)}|{'-' * 30}")
    for name, value in rows:
        print(f"| {name:<{width}} | {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
