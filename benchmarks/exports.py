"""Issue 11's benchmarks: exports, measured as users run them.

    .venv/bin/python benchmarks/exports.py            # 5 runs each, medians
    .venv/bin/python benchmarks/exports.py --runs 3

1. **AzureCloud in every format** (target <= 0.3 s each, whole process): `aztags export
   AzureCloud --format F -o FILE` on a store holding the newest Public file of the shared data,
   for every format `aztags export --list-formats` names (host-name formats, which take a
   profile, export the azureml profile instead). Beside it, `python -c pass` as the floor.
2. **Aggregating every prefix of a Public snapshot** (target <= 0.5 s, in-process):
   resolver.prefixes.aggregate over every prefix entry of the newest Public file.

Children run with HOME and the .pyc cache in a temporary folder and PYTHONDONTWRITEBYTECODE
unset; nothing is written to the repository. Needs ../shared/data/servicetags.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "servicetags"


def _aztags() -> list[str]:
    script = Path(sys.executable).parent / "aztags"
    return [str(script)] if script.exists() else [sys.executable, str(ROOT / "cli.py")]


def _newest_public() -> Path:
    return sorted((DATA / "Public").glob("ServiceTags_Public_*.json.gz"))[-1]


def _time(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {done.stderr.strip()}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    if not DATA.is_dir():
        print(f"skipped: {DATA} is absent")
        return 0
    newest = _newest_public()
    with tempfile.TemporaryDirectory(prefix="aztags-bench-") as name:
        tmp = Path(name)
        env = {k: v for k, v in os.environ.items() if not k.startswith("AZTAGS_")}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env.update(
            AZTAGS_DB=str(tmp / "a.db"),
            AZTAGS_MAX_AGE_DAYS="100000",
            HOME=str(tmp),
            XDG_CONFIG_HOME=str(tmp / "xdg"),
            PYTHONPYCACHEPREFIX=str(tmp / "pycache"),
        )
        subprocess.run(
            [*_aztags(), "import", str(newest)], env=env, check=True, capture_output=True
        )
        listing = subprocess.run(
            [*_aztags(), "export", "--list-formats"],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.splitlines()[1:]
        formats = [line.split()[0] for line in listing]
        hosts = {line.split()[0] for line in listing if "host names" in line}
        floor = statistics.median(_time([sys.executable, "-c", "pass"], env) for _ in range(5))
        rows = []
        for fmt in formats:
            what = (
                ["--profile", "azureml", "--region", "westus"] if fmt in hosts else ["AzureCloud"]
            )
            argv = [*_aztags(), "export", *what, "--format", fmt, "-o", str(tmp / "out")]
            _time(argv, env)  # warm the .pyc cache
            times = [_time(argv, env) for _ in range(args.runs)]
            size = (tmp / "out").stat().st_size
            rows.append((fmt, statistics.median(times), min(times), size))
        sys.path.insert(0, str(ROOT))
        from resolver.prefixes import aggregate

        values = json.loads(gzip.decompress(newest.read_bytes()))["values"]
        every = [p for v in values for p in v["properties"]["addressPrefixes"]]
        agg_times = []
        for _ in range(args.runs):
            start = time.perf_counter()
            merged = aggregate(every)
            agg_times.append(time.perf_counter() - start)
    print(f"store: {newest.name}; python -c pass: {floor:.3f} s")
    print(f"{'export AzureCloud --format':28} {'median':>8} {'min':>7} {'bytes':>10}  <= 0.3 s")
    for fmt, med, low, size in rows:
        print(f"{fmt:28} {med:7.3f}s {low:6.3f}s {size:10,}  {'yes' if med <= 0.3 else 'NO'}")
    med = statistics.median(agg_times)
    print(
        f"aggregate every prefix entry of {newest.name} ({len(every):,} -> {len(merged):,}): "
        f"{med:.3f} s median, {min(agg_times):.3f} s min  <= 0.5 s  {'yes' if med <= 0.5 else 'NO'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
