"""Whole-process benchmarks of the installed `aztags` script on the real Service Tags files.

Run from anywhere (paths are resolved from this file):

    .venv/bin/python benchmarks/run.py            # 5 runs per measurement, ~80 s on 2 cores
    .venv/bin/python benchmarks/run.py --quick    # 1 run per measurement, ~35 s

Every measurement runs the installed `aztags` script as a child process and times it with
time.perf_counter around the child's whole life (start, Python start-up, imports, work, exit).
Peak RSS is the child's own maximum resident set, from `/usr/bin/time -f %M` (which forks it from
a small process); where GNU time is absent, os.wait4's ru_maxrss, an upper bound (Linux carries
the parent's high-water mark across fork + exec). CPU time (user + system) is shown beside wall
time: on a shared 2-core machine it shows how much of a slow wall time is contention.
Each run gets a fresh database in a temporary folder (env AZTAGS_DB): an empty one for imports,
a fresh copy of a prepared, checkpointed one for queries. Figures are medians over the runs.
Children run with HOME in the temporary folder (no user config or profiles) and, unless
--no-bytecode-cache, with their .pyc files cached there (PYTHONPYCACHEPREFIX), warmed up before
anything is timed, as an installed package has them. The 1,000,000-address file is generated in
the temporary folder with a fixed seed. Nothing is written to the repository.

Exit codes: 0 measured (targets missed are reported in the table), 1 an aztags command failed,
2 the data folder or the aztags script is missing, 3 --strict and some target was missed.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import random
import resource
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "servicetags"
MB = 1_000_000  # targets are in decimal megabytes

LATEST = "20250113"
WEEKLY = [
    "20230306", "20230313", "20230320", "20230327", "20230403", "20230410", "20230417", "20230424",
    "20230501", "20230508", "20230515", "20230522", "20230529", "20230605", "20230612", "20230619",
]  # fmt: skip
NEXT_PAIR = ("20230605", "20230612")
AT_DATE = "2023-03-20"
PROBE = "20.38.96.1"
ADDRESSES = 1_000_000
SEED = 20250113

# Runs in a child Python: the Python API path the brief names, timed inside the process.
API_CHILD = r"""
import json, statistics, sys, time
from resolver.query import TagStore
db, path, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
with open(path) as f:
    addresses = f.read().split()
started = time.perf_counter()
idx = TagStore.open(db, "public").lookup_index()
build = time.perf_counter() - started
collected, streamed = [], []
for _ in range(runs):
    started = time.perf_counter()
    results = list(idx.lookup_many(addresses))
    collected.append(time.perf_counter() - started)
    del results
    started = time.perf_counter()
    for _ in idx.lookup_many(addresses):
        pass
    streamed.append(time.perf_counter() - started)
print(json.dumps({"count": len(addresses), "build": build,
                  "collected": statistics.median(collected),
                  "streamed": statistics.median(streamed)}))
"""


# -- running children ---------------------------------------------------------------------------


class CommandFailed(Exception):
    pass


@dataclass
class Result:
    wall: float  # seconds
    rss: int  # peak resident set of the child, bytes
    cpu: float  # user + system seconds of the child


class Runner:
    def __init__(self, aztags: Path, tmp: Path, *, bytecode_cache: bool = True):
        self.aztags = aztags
        self.tmp = tmp
        self.counter = 0
        home = tmp / "home"  # no user config or user profiles leak into the figures
        home.mkdir()
        self.base_env = {
            k: v for k, v in os.environ.items() if not k.startswith(("AZTAGS_", "XDG_"))
        }
        self.base_env["HOME"] = str(home)
        if bytecode_cache:
            # An installed package has its .pyc files; this checkout has none and the environment
            # may forbid writing them (PYTHONDONTWRITEBYTECODE). Cache them in the temp folder,
            # never in the repository, and warm them up before measuring.
            self.base_env.pop("PYTHONDONTWRITEBYTECODE", None)
            self.base_env["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
        # GNU time reports the peak RSS of exactly one child it forked from its own small process.
        # Without it, wait4's ru_maxrss is used: Linux carries the parent's RSS high-water mark
        # across fork/vfork + exec into it, so this runner is kept small (addresses are generated
        # in a child) but the figure is still an upper bound.
        self.gnu_time = Path("/usr/bin/time") if _gnu_time_works() else None

    def fresh_db(self, template: Path | None = None) -> Path:
        """A new database path: absent (empty store) or a copy of a prepared, checkpointed one."""
        self.counter += 1
        path = self.tmp / f"run{self.counter:04d}.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        if template is not None:
            shutil.copyfile(template, path)
        return path

    def run(
        self,
        args: Sequence[str],
        db: Path,
        *,
        stdout: Path | None = None,
        ok_codes: tuple[int, ...] = (0,),
        executable: Sequence[str] | None = None,
    ) -> Result:
        """Run one child; wall time around its whole life, its peak RSS, its CPU time."""
        argv = [*(executable or [str(self.aztags)]), *args]
        rss_path = self.tmp / "maxrss.txt"
        if self.gnu_time:
            argv = [str(self.gnu_time), "-f", "%M", "-o", str(rss_path), *argv]
        env = dict(self.base_env, AZTAGS_DB=str(db))
        err_path = self.tmp / "stderr.txt"
        with (
            open(stdout or os.devnull, "wb") as out,
            open(err_path, "wb") as err,
        ):
            started = time.perf_counter()
            child = subprocess.Popen(argv, env=env, cwd=self.tmp, stdout=out, stderr=err)
            _, status, usage = os.wait4(child.pid, 0)
            wall = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        if child.returncode not in ok_codes:
            raise CommandFailed(
                f"{' '.join(argv)} exited {child.returncode}:\n"
                f"{err_path.read_text(errors='replace')[-2000:]}"
            )
        # Linux reports KiB either way
        rss_kib = int(rss_path.read_text().split()[-1]) if self.gnu_time else usage.ru_maxrss
        return Result(wall, rss_kib * 1024, usage.ru_utime + usage.ru_stime)

    def import_files(self, files: Sequence[Path], db: Path, *extra: str) -> Result:
        return self.run(["import", *extra, *map(str, files)], db)


def _gnu_time_works() -> bool:
    try:
        done = subprocess.run(
            ["/usr/bin/time", "-f", "%M", "true"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0 and done.stderr.strip().isdigit()


def checkpoint(db: Path, vacuum: bool = False) -> int:
    """Fold the WAL into the main file (optionally VACUUM); return the main file's size."""
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        if vacuum:
            conn.execute("VACUUM")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)  # empty after TRUNCATE and close
    return db.stat().st_size


# -- the table ----------------------------------------------------------------------------------


@dataclass
class Row:
    measurement: str
    target: str
    measured: str
    passed: bool | None  # None: informational, no target


ROWS: list[Row] = []


def row(measurement: str, target: str, measured: str, passed: bool | None) -> None:
    ROWS.append(Row(measurement, target, measured, passed))
    mark = "" if passed is None else ("pass" if passed else "FAIL")
    print(f"  {measurement}: {measured} {mark}", file=sys.stderr, flush=True)


def table() -> str:
    lines = ["| measurement | target | measured | pass/fail |", "|---|---|---|---|"]
    for r in ROWS:
        mark = "-" if r.passed is None else ("pass" if r.passed else "**FAIL**")
        lines.append(f"| {r.measurement} | {r.target} | {r.measured} | {mark} |")
    return "\n".join(lines)


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def fmt_s(seconds: float) -> str:
    return f"{seconds:.3f} s"


def timing(results: Sequence[Result]) -> tuple[float, str]:
    """Median wall, and its text: 'median s (cpu median s; min .., max ..)'."""
    walls = [x.wall for x in results]
    text = f"{fmt_s(median(walls))} (cpu {median([x.cpu for x in results]):.3f} s"
    if len(walls) > 1:
        text += f"; min {min(walls):.3f}, max {max(walls):.3f}"
    return median(walls), text + ")"


def total(results: Sequence[Result]) -> Result:
    return Result(
        sum(x.wall for x in results), max(x.rss for x in results), sum(x.cpu for x in results)
    )


# -- the measurements ---------------------------------------------------------------------------


def generate_addresses(latest: Path, path: Path, count: int) -> None:
    """IPv4 text, fixed seed: odd lines inside a random Azure IPv4 prefix of the file (a random
    prefix, then a random address in it), even lines uniformly random over the IPv4 space."""
    document = json.loads(gzip.decompress(latest.read_bytes()))
    ranges = set()
    for value in document["values"]:
        for prefix in value["properties"]["addressPrefixes"]:
            if ":" in prefix:
                continue
            address, _, length = prefix.partition("/")
            first = int.from_bytes(socket.inet_aton(address), "big")
            ranges.add((first, first + (1 << (32 - int(length))) - 1))
    ordered = sorted(ranges)
    rng = random.Random(SEED)
    ntoa, out = socket.inet_ntoa, []
    for i in range(count):
        if i % 2:
            first, last = rng.choice(ordered)
            value = rng.randint(first, last)
        else:
            value = rng.getrandbits(32)
        out.append(ntoa(value.to_bytes(4, "big")))
    path.write_text("\n".join(out) + "\n")


def warm_up(r: Runner, latest_db: Path, latest: Path) -> None:
    """One run of each command, so the bytecode cache is written before anything is timed."""
    r.import_files([latest], latest_db)
    for args in (
        ["lookup", PROBE],
        ["cidrs", "--profile", "azureml", "--region", "westus", "--aggregate"],
        ["cidrs", "AzureCloud"],
        ["tags"],
    ):
        r.run(args, latest_db)
    r.import_files([latest], r.fresh_db(), "--no-keep-raw")


def bench_first_ingest(r: Runner, runs: int, latest: Path) -> None:
    results = [r.import_files([latest], r.fresh_db()) for _ in range(runs)]
    m, text = timing(results)
    row(
        f"first ingest, Public {LATEST} (86k entries) into an empty DB (`aztags import FILE`)",
        "<= 1.0 s",
        text,
        m <= 1.0,
    )
    rss = [x.rss / MB for x in results]
    row(
        f"first ingest, Public {LATEST}: peak RSS of the process",
        "<= 200 MB",
        f"{median(rss):.0f} MB (max {max(rss):.0f})",
        median(rss) <= 200,
    )


def bench_next_weekly(r: Runner, runs: int, files: dict[str, Path]) -> None:
    before, after = NEXT_PAIR
    results = []
    for _ in range(runs):
        db = r.fresh_db()
        r.import_files([files[before]], db)  # not timed
        results.append(r.import_files([files[after]], db))
    m, text = timing(results)
    row(
        f"next weekly file on top: DB holding Public {before}, import {after} "
        f"(the weekly 2023 pair: no weekly successor of {LATEST} in the data)",
        "<= 0.4 s",
        text,
        m <= 0.4,
    )


def bench_weekly_sequence(r: Runner, runs: int, files: dict[str, Path]) -> None:
    weekly = [files[d] for d in WEEKLY]
    totals, later = [], []
    for _ in range(runs):
        db = r.fresh_db()
        results = [r.import_files([f], db) for f in weekly]
        totals.append(total(results))
        later.extend(results[1:])
    m, text = timing(totals)
    row(
        f"16 weekly 2023 Public files ({WEEKLY[0]}..{WEEKLY[-1]}), one `aztags import` per file "
        "in sequence, total",
        "<= 8 s",
        text,
        m <= 8.0,
    )
    _, text = timing(later)
    row(
        "  same: one weekly import on top of the previous week (files 2..16, all runs)",
        "-",
        text,
        None,
    )
    _, text = timing([r.import_files(weekly, r.fresh_db()) for _ in range(runs)])
    row("  16 weekly 2023 files in one `aztags import` call", "-", text, None)


def bench_growth(r: Runner, files: dict[str, Path]) -> None:
    """Deterministic, so measured once: post-VACUUM sizes after file 1 and after file 16."""
    weekly = [files[d] for d in WEEKLY]
    sizes = {}
    for label, extra in (("no-keep-raw", ("--no-keep-raw",)), ("keep-raw", ())):
        db = r.fresh_db()
        r.import_files(weekly[:1], db, *extra)
        first = checkpoint(db, vacuum=True)
        for f in weekly[1:]:
            r.import_files([f], db, *extra)
        last = checkpoint(db, vacuum=True)
        sizes[label] = (first, last)
    first, last = sizes["no-keep-raw"]
    per_week = (last - first) / 15 / MB
    row(
        "DB growth per weekly snapshot, 16 weekly files with `--no-keep-raw`, VACUUM: "
        "(size@16 - size@1) / 15",
        "<= 1 MB",
        f"{per_week:.3f} MB (size@1 {first / MB:.2f} MB, size@16 {last / MB:.2f} MB)",
        per_week <= 1.0,
    )
    first, last = sizes["keep-raw"]
    row(
        "  same with the raw archive kept (default `--keep-raw`)",
        "-",
        f"{(last - first) / 15 / MB:.3f} MB/week (size@1 {first / MB:.2f} MB, "
        f"size@16 {last / MB:.2f} MB)",
        None,
    )


def bench_queries(r: Runner, runs: int, latest_db: Path, addresses: Path) -> None:
    check = r.tmp / "check.txt"

    def timed(args: list[str], stdout: Path | None = check) -> list[Result]:
        return [r.run(args, r.fresh_db(latest_db), stdout=stdout) for _ in range(runs)]

    m, text = timing(timed(["lookup", PROBE]))
    if "AzureCloud" not in check.read_text():  # the answer is right before its time means much
        raise CommandFailed(f"aztags lookup {PROBE} did not name AzureCloud: {check.read_text()}")
    row(
        f"reverse lookup `aztags lookup {PROBE}`, DB holding Public {LATEST}",
        "<= 0.3 s",
        text,
        m <= 0.3,
    )

    m, text = timing(timed(["cidrs", "--profile", "azureml", "--region", "westus", "--aggregate"]))
    lines = len(check.read_text().splitlines())
    if not lines:
        raise CommandFailed("aztags cidrs --profile azureml --region westus printed nothing")
    row(
        f"`aztags cidrs --profile azureml --region westus --aggregate` ({lines} prefixes)",
        "<= 0.5 s",
        text,
        m <= 0.5,
    )

    sample = r.tmp / "sample.txt"  # 1,000 lines: one output line per input, about half found
    with open(addresses) as f:
        sample.write_text("".join(next(f) for _ in range(1000)))
    r.run(["lookup", "--file", str(sample)], r.fresh_db(latest_db), stdout=check)
    out = check.read_text().splitlines()
    found = sum(1 for line in out if "\t" in line)
    if len(out) != 1000 or not 400 <= found <= 700:
        raise CommandFailed(f"lookup --file sample: {len(out)} lines, {found} with a tag")

    results = timed(["lookup", "--file", str(addresses)], stdout=None)
    m, text = timing(results)
    rss = median([x.rss / MB for x in results])
    row(
        f"`aztags lookup --file F`, {ADDRESSES:,} IPv4 (half in Azure), output to /dev/null",
        "<= 5 s",
        f"{text}; {ADDRESSES / m:,.0f} lookups/s; peak RSS {rss:.0f} MB",
        m <= 5.0,
    )


def bench_api(r: Runner, runs: int, latest_db: Path, addresses: Path) -> None:
    out = r.tmp / "api.json"
    python = str(Path(r.aztags).parent / "python")
    db = r.fresh_db(latest_db)
    res = r.run(
        ["-c", API_CHILD, str(db), str(addresses), str(runs)], db, stdout=out, executable=[python]
    )
    doc = json.loads(out.read_text())
    rate = doc["count"] / doc["collected"]
    row(
        "Python API: `list(TagStore.open(db, 'public').lookup_index().lookup_many(addrs))`, "
        "same 1M IPv4, in one process",
        ">= 500,000 /s",
        f"{rate:,.0f} lookups/s ({fmt_s(doc['collected'])} per 1M)",
        rate >= 500_000,
    )
    row(
        "  same, streamed (results not kept); index build from the DB; process peak RSS",
        "-",
        f"{doc['count'] / doc['streamed']:,.0f} lookups/s; build {doc['build'] * 1000:.0f} ms; "
        f"{res.rss / MB:.0f} MB",
        None,
    )


def bench_at(r: Runner, runs: int, at_db: Path) -> None:
    pairs = [
        ("`aztags cidrs AzureCloud`", ["cidrs", "AzureCloud"]),
        (f"`aztags lookup {PROBE}`", ["lookup", PROBE]),
        ("`aztags tags`", ["tags"]),
    ]
    check = r.tmp / "check.txt"
    for label, args in pairs:
        current, past = [], []
        for _ in range(runs):  # interleaved, so drift hits both sides alike
            current.append(r.run(args, r.fresh_db(at_db), stdout=check))
            past.append(r.run([*args, "--at", AT_DATE], r.fresh_db(at_db), stdout=check))
        if not check.read_text().strip():
            raise CommandFailed(f"aztags {' '.join(args)} --at {AT_DATE} printed nothing")
        now_m, now_text = timing(current)
        past_m, past_text = timing(past)
        ratio = past_m / now_m
        cpu_ratio = median([x.cpu for x in past]) / median([x.cpu for x in current])
        row(
            f"`--at {AT_DATE}` cost: {label} with `--at` vs without "
            f"(DB: 16 weekly 2023 + {LATEST})",
            "ratio <= 2.0",
            f"{ratio:.2f}x (cpu {cpu_ratio:.2f}x): {past_text} vs {now_text}",
            ratio <= 2.0,
        )


# -- main ---------------------------------------------------------------------------------------


def machine_busy_seconds() -> float:
    """CPU seconds all processes have used since boot (/proc/stat), NaN where unavailable."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return float("nan")
    user, nice, system, idle, iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


def machine() -> list[str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        memory = f"{pages / 2**30:.1f} GiB"
    except (ValueError, OSError):
        memory = "unknown"
    return [
        f"date: {datetime.now().astimezone().isoformat(timespec='seconds')}; {code_version()}",
        f"cpus (nproc): {os.cpu_count()}; memory: {memory}; cpu: {cpu}",
        f"python: {platform.python_implementation()} {platform.python_version()}; "
        f"sqlite: {sqlite3.sqlite_version}; {platform.platform()}",
    ]


def code_version() -> str:
    """The commit measured, and whether the checkout had uncommitted changes outside benchmarks/."""
    try:
        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        status = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        return "code: not a git checkout"
    changed = [line for line in status if not line[3:].startswith("benchmarks/")]
    return f"code: {head}" + (
        f" + uncommitted changes in {len(changed)} file(s)" if changed else ""
    )


def default_aztags() -> Path:
    beside = Path(sys.executable).parent / "aztags"
    return beside if beside.exists() else ROOT / ".venv" / "bin" / "aztags"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 run per measurement, not 5")
    parser.add_argument("--runs", type=int, help="runs per measurement (overrides --quick)")
    parser.add_argument(
        "--data",
        type=Path,
        default=DEFAULT_DATA,
        help=f"Service Tags folder [default: {DEFAULT_DATA}]",
    )
    parser.add_argument(
        "--aztags",
        type=Path,
        default=default_aztags(),
        help="the installed console script [default: next to this Python, else .venv/bin/aztags]",
    )
    parser.add_argument("--strict", action="store_true", help="exit 3 if a target is missed")
    parser.add_argument(
        "--no-bytecode-cache",
        action="store_true",
        help="run aztags with the environment as it is (by default children "
        "cache .pyc files in the temp folder, as an installed package has them)",
    )
    parser.add_argument(
        "--generate-addresses", nargs=2, metavar=("SNAPSHOT", "OUT"), help=argparse.SUPPRESS
    )  # internal: run in a child, keeps this one small
    args = parser.parse_args(argv)
    runs = args.runs or (1 if args.quick else 5)
    if args.generate_addresses:
        generate_addresses(
            Path(args.generate_addresses[0]), Path(args.generate_addresses[1]), ADDRESSES
        )
        return 0

    public = args.data / "Public"
    files = {d: public / f"ServiceTags_Public_{d}.json.gz" for d in [*WEEKLY, LATEST]}
    missing = [p for p in files.values() if not p.is_file()]
    if missing:
        where = (
            f"{args.data} does not exist"
            if not args.data.is_dir()
            else f"{len(missing)} file(s) missing, first {missing[0]}"
        )
        print(
            f"benchmarks/run.py: the real Service Tags data is not there: {where}.\n"
            f"Expected the folder {DEFAULT_DATA} (../shared/data/servicetags relative to the "
            "repository root) holding Public/ServiceTags_Public_YYYYMMDD.json.gz for "
            f"{', '.join([*WEEKLY[:1], '..', *WEEKLY[-1:], LATEST])}; pass --data DIR to point "
            "elsewhere. Nothing measured.",
            file=sys.stderr,
        )
        return 2
    if not os.access(args.aztags, os.X_OK):
        print(
            f"benchmarks/run.py: no aztags script at {args.aztags}; run with the project's venv "
            "Python (.venv/bin/python) or pass --aztags PATH.",
            file=sys.stderr,
        )
        return 2

    started = time.perf_counter()
    busy_before = machine_busy_seconds()
    print(f"aztags benchmarks, {runs} run(s) per measurement, medians", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="aztags-bench-") as tmpdir:
        r = Runner(args.aztags, Path(tmpdir), bytecode_cache=not args.no_bytecode_cache)
        try:
            addresses = r.tmp / "addresses.txt"
            subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--generate-addresses",
                    str(files[LATEST]),
                    str(addresses),
                ],
                check=True,
            )
            latest_db = r.tmp / "latest.db"  # prepared once, copied per run
            warm_up(r, latest_db, files[LATEST])
            checkpoint(latest_db)

            bench_first_ingest(r, runs, files[LATEST])
            bench_next_weekly(r, runs, files)
            bench_weekly_sequence(r, runs, files)
            bench_growth(r, files)

            bench_queries(r, runs, latest_db, addresses)
            bench_api(r, runs, latest_db, addresses)

            at_db = r.tmp / "history.db"
            r.import_files([*(files[d] for d in WEEKLY), files[LATEST]], at_db)
            checkpoint(at_db)
            bench_at(r, runs, at_db)
        except CommandFailed as e:
            print(f"benchmarks/run.py: a command failed, figures incomplete:\n{e}", file=sys.stderr)
            if ROWS:
                print(table())
            return 1

    elapsed = time.perf_counter() - started
    others = machine_busy_seconds() - busy_before - own_cpu_seconds()
    print("\n".join(f"- {line}" for line in machine()))
    print(
        f"- runs per measurement: {runs} (medians); benchmark wall time "
        f"{time.perf_counter() - started:.0f} s; peak RSS via "
        f"{'/usr/bin/time -f %M' if r.gnu_time else 'wait4 ru_maxrss (upper bound)'}; "
        f"bytecode cache: {'off (environment as is)' if args.no_bytecode_cache else 'on'}"
    )
    if others == others:  # not NaN: /proc/stat was readable
        print(
            f"- CPU used by other processes during the run: {others:.0f} s over {elapsed:.0f} s "
            f"({others / elapsed:.0%} of one core)"
            + (
                "; wall times may be inflated by it: compare them with the cpu times"
                if others / elapsed > 0.1
                else ""
            )
        )
    print()
    print(table())
    missed = [x for x in ROWS if x.passed is False]
    if missed:
        print(f"\n{len(missed)} target(s) missed.")
    return 3 if args.strict and missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
