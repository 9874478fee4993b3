"""Issue 12's benchmarks: ``aztags serve`` under load on loopback, beside a floor.

    .venv/bin/python benchmarks/server.py                 # 3 rounds of 10 s per row, medians
    .venv/bin/python benchmarks/server.py --rounds 5 --duration 15 --connections 50

The floor is the same server stack (FastAPI + uvicorn, same uvicorn settings as ``aztags
serve``: one process, access log off) answering a constant 30 KB text body from memory. The
product is a real ``aztags serve`` process on a store holding the newest Public file of the
shared data. Rows:

1. **EDL feed of a profile**: ``GET /feeds/profile/azureml.txt?region=westus`` (1,646 prefixes,
   about 77 KB): target >= 70% of the floor's requests/s, and p99 <= 20 ms at 50 connections
   at 2,000 requests/s (``--rate``; see "Latency" below).
2. **The 304 path**: the same feed with ``If-None-Match`` set to its ETag: >= 90% of the floor.
3. **POST batch lookup of 10,000 addresses** (``/v1/lookup``, one request at a time, half of
   them Azure addresses of the file): <= 50 ms (median; p90 printed too). The server process's
   CPU time per request is printed beside it: unlike the wall clock, other work on a shared
   machine does not move it much.

Throughput: floor and product run interleaved, one of each per round, so other work on the
machine hits both alike; the medians of the rounds are reported. Load comes from ``wrk``
(Debian package ``wrk``; a fixed number of connections, ``--latency``), after a warm-up run of
each URL (``--warmup`` seconds: the first requests start worker threads and fill caches). When
``wrk`` is not on PATH the script says so and uses a small asyncio load generator instead
(``--loadgen python``; the same fixed number of connections over raw sockets, HTTP/1.1
keep-alive), which is itself slower than the servers: its figures are a lower bound.

CPU pinning: on a machine of 2 cores or more (Linux), the servers run on core 0 and the load
generator (this script, and wrk with one thread) on core 1, so that they do not take turns on
one core (``--no-pin``: as before, everything where the scheduler puts it; wrk then has two
threads). A server is one Python process answering on one event loop: one core is what it uses.

Server CPU: each throughput row also gives the server process's CPU time per request (from
/proc) and the share of a core it had. wrk itself needs about 15% of a core here, so a server
below about 90% of its core was waiting for it: other work on a shared machine had the core
(measured: the floor and the feed each had 39-99% of core 0 in runs a minute apart, with core
0 100% busy). The ratio "by CPU" (floor's CPU per request / product's) is then the fairer
figure: what the ratio of requests/s would be with a core each to themselves.

Latency: wrk keeps every connection busy (closed loop), so at saturation 50 connections are 50
requests always queued, and the mean latency is 50 / (requests/s) whatever the server does
(Little's law: 25 ms at 2,000 requests/s). The p99 printed with the throughput is that queue.
The p99 target is judged at a fixed offered load instead: ``--rate`` requests/s (2,000, the
rate the issue names) spread over the same 50 connections, each sending on a fixed schedule
(open loop, like wrk2), the latency counted from when each request was due, not when it went
out (a stalled server is not hidden by requests that were sent late). The floor is measured the
same way. Its generator is Python's asyncio, whose timers may add up to a millisecond.

Needs ../shared/data/servicetags (else it says so and exits 0). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import ipaddress
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "servicetags"
FEED = "/feeds/profile/azureml.txt?region=westus"
FLOOR_BYTES = 30 * 1024


# -- the floor server (run as a child: benchmarks/server.py --floor-server PORT) ------------------


def floor_server(port: int) -> None:
    import uvicorn
    from fastapi import FastAPI, Response

    body = (b"203.0.113.0/24\n" * (FLOOR_BYTES // 15 + 1))[:FLOOR_BYTES]
    app = FastAPI()

    @app.get("/floor")
    def floor() -> Response:  # a plain def, as the product's routes: run in the thread pool
        return Response(body, media_type="text/plain; charset=utf-8")

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


# -- load generators -------------------------------------------------------------------------------


def _wrk(
    url: str, connections: int, duration: float, headers: dict[str, str], threads: int = 2
) -> dict:
    argv = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{duration:g}s",
        "--latency",
        "--timeout",
        "5s",
    ]
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]
    out = subprocess.run([*argv, url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    done = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    p99 = _wrk_ms(re.search(r"\s99%\s+([\d.]+\w+)", out).group(1))  # type: ignore[union-attr]
    p50 = _wrk_ms(re.search(r"\s50%\s+([\d.]+\w+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors or "Socket errors" in out:
        raise RuntimeError(f"wrk saw errors against {url}:\n{out}")
    return {"rps": rps, "p50": p50, "p99": p99, "requests": done}


def _wrk_ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(\w+)", text).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


async def _python_load(url: str, connections: int, duration: float, headers: dict) -> dict:
    """A fixed number of keep-alive HTTP/1.1 connections over raw asyncio streams."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    request = (f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\n{extra}\r\n").encode()
    latencies: list[float] = []
    deadline = time.perf_counter() + duration

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            if status not in (200, 304):
                raise RuntimeError(f"{url} answered {status}")
            length = re.search(rb"(?i)content-length: (\d+)", head)
            if length:
                await reader.readexactly(int(length.group(1)))
            latencies.append(time.perf_counter() - start)
        writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    elapsed = time.perf_counter() - start
    latencies.sort()
    return {
        "rps": len(latencies) / elapsed,
        "p50": latencies[len(latencies) // 2] * 1000,
        "p99": latencies[int(len(latencies) * 0.99)] * 1000,
        "requests": len(latencies),
    }


async def _paced_load(url: str, connections: int, rate: float, duration: float) -> dict:
    """Open loop: ``rate`` requests/s over ``connections`` keep-alive connections, each on a
    fixed schedule; a request's latency runs from when it was due to its last byte."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    request = f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\n\r\n".encode()
    loop = asyncio.get_running_loop()
    period = connections / rate  # between two requests of one connection
    latencies: list[float] = []
    opened = [await asyncio.open_connection(parts.hostname, parts.port) for _ in range(connections)]
    start = loop.time() + 0.2
    end = start + duration

    async def worker(n: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        due = start + n / rate
        while due < end:
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            if status != 200:
                raise RuntimeError(f"{url} answered {status}")
            length = re.search(rb"(?i)content-length: (\d+)", head)
            if length:
                await reader.readexactly(int(length.group(1)))
            latencies.append(loop.time() - due)
            due += period
        writer.close()

    await asyncio.gather(*(worker(n, r, w) for n, (r, w) in enumerate(opened)))
    elapsed = max(loop.time(), end) - start
    latencies.sort()
    return {
        "rps": len(latencies) / elapsed,
        "p50": latencies[len(latencies) // 2] * 1000,
        "p99": latencies[int(len(latencies) * 0.99)] * 1000,
    }


def load(
    kind: str, url: str, connections: int, duration: float, headers: dict, threads: int = 2
) -> dict:
    if kind == "wrk":
        return _wrk(url, connections, duration, headers, threads)
    return asyncio.run(_python_load(url, connections, duration, headers))


def _pin(cores: set[int]) -> None:
    """Run the calling process (a child: from preexec_fn) on ``cores`` only."""
    os.sched_setaffinity(0, cores)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- processes -------------------------------------------------------------------------------------


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_http(url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}")
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer in {timeout} s")


def _stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


def _addresses(path: Path, count: int) -> list[str]:
    """Half Azure addresses (a random host in a random IPv4 prefix of the file), half not."""
    doc = json.loads(gzip.decompress(path.read_bytes()))
    prefixes = sorted(
        {
            p
            for value in doc["values"]
            for p in value["properties"]["addressPrefixes"]
            if ":" not in p
        }
    )
    rng = random.Random(12)
    out = []
    for n in range(count):
        if n % 2:
            net = ipaddress.ip_network(rng.choice(prefixes))
            out.append(str(net[rng.randrange(net.num_addresses)]))
        else:
            out.append(str(ipaddress.IPv4Address(rng.randrange(1 << 24, 224 << 24))))
    return out


# -- main ------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measurement")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--batches", type=int, default=30, help="POST lookups timed")
    parser.add_argument("--loadgen", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--rate", type=float, default=2000.0, help="requests/s of the p99 row")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of load per URL first")
    parser.add_argument(
        "--no-pin", action="store_true", help="no CPU pinning (servers core 0, load core 1)"
    )
    parser.add_argument("--floor-server", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.floor_server:
        floor_server(args.floor_server)
        return 0
    if not DATA.is_dir():
        print(f"skipped: {DATA} is absent")
        return 0
    kind = args.loadgen
    if kind == "auto":
        kind = "wrk" if shutil.which("wrk") else "python"
        if kind == "python":
            print(
                "wrk is not installed (Debian: apt-get install wrk): using the built-in asyncio "
                "load generator, slower than the servers, so figures are lower bounds",
                file=sys.stderr,
            )
    import httpx

    pin = not args.no_pin and hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) >= 2
    server_cores = {0} if pin else None
    if pin:
        _pin({1})  # this script and its load generators (wrk inherits it)
    threads = 1 if pin else 2
    newest = sorted((DATA / "Public").glob("ServiceTags_Public_*.json.gz"))[-1]
    script = Path(sys.executable).parent / "aztags"
    aztags = [str(script)] if script.exists() else [sys.executable, str(ROOT / "cli.py")]
    with tempfile.TemporaryDirectory(prefix="aztags-bench-") as name:
        tmp = Path(name)
        env = {k: v for k, v in os.environ.items() if not k.startswith("AZTAGS_")}
        env.update(
            AZTAGS_DB=str(tmp / "a.db"),
            HOME=str(tmp),
            XDG_CONFIG_HOME=str(tmp / "xdg"),
            PYTHONPYCACHEPREFIX=str(tmp / "pycache"),
        )
        subprocess.run([*aztags, "import", str(newest)], env=env, check=True, capture_output=True)
        port, floor_port = _free_port(), _free_port()
        on_server_cores = (lambda: _pin(server_cores)) if server_cores else None
        product = subprocess.Popen(
            [*aztags, "serve", "--port", str(port), "--max-age-days", "100000"],
            env=env,
            stderr=subprocess.DEVNULL,
            preexec_fn=on_server_cores,
        )
        floor = subprocess.Popen(
            [sys.executable, __file__, "--floor-server", str(floor_port)],
            env=env,
            stderr=subprocess.DEVNULL,
            preexec_fn=on_server_cores,
        )
        try:
            base, floor_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{floor_port}/floor"
            _wait_http(base + "/healthz", product)
            _wait_http(floor_url, floor)
            first = httpx.get(base + FEED)
            first.raise_for_status()
            etag = first.headers["etag"]
            if httpx.get(base + FEED, headers={"If-None-Match": etag}).status_code != 304:
                raise RuntimeError("the feed did not answer 304 to its own ETag")
            feed_bytes = len(first.content)
            print(
                f"load: {kind}, {args.connections} connections, {args.duration:g} s x "
                f"{args.rounds} rounds; feed {feed_bytes:,} bytes, floor {FLOOR_BYTES:,} bytes; "
                + ("servers on core 0, load on core 1" if pin else "no CPU pinning"),
                file=sys.stderr,
            )
            urls = (
                ("floor", floor_url, {}),
                ("feed", base + FEED, {}),
                ("304", base + FEED, {"If-None-Match": etag}),
            )
            if args.warmup > 0:
                for _, url, headers in urls:
                    load(kind, url, args.connections, args.warmup, headers, threads)
            rows: dict[str, list[dict]] = {
                "floor": [],
                "feed": [],
                "304": [],
                "floor@rate": [],
                "feed@rate": [],
            }
            for n in range(args.rounds):  # interleaved: floor, feed, 304, floor, ...
                for row, url, headers in urls:
                    server = floor if row == "floor" else product
                    cpu = _cpu_seconds(server.pid)
                    found = load(kind, url, args.connections, args.duration, headers, threads)
                    used = _cpu_seconds(server.pid) - cpu
                    found["cpu_us"] = used / found["requests"] * 1e6
                    rows[row].append(found)
                    print(
                        f"round {n + 1} {row}: {found['rps']:.0f} req/s, p99 {found['p99']:.1f} "
                        f"ms; server CPU {found['cpu_us']:.0f} us per request, "
                        f"{used / args.duration:.0%} of a core",
                        file=sys.stderr,
                    )
                for row, url in (("floor@rate", floor_url), ("feed@rate", base + FEED)):
                    found = asyncio.run(
                        _paced_load(url, args.connections, args.rate, args.duration)
                    )
                    rows[row].append(found)
                    print(
                        f"round {n + 1} {row} {args.rate:g} req/s offered: {found['rps']:.0f} "
                        f"req/s, p50 {found['p50']:.1f} ms, p99 {found['p99']:.1f} ms",
                        file=sys.stderr,
                    )
            addresses = _addresses(newest, 10_000)
            body = json.dumps({"addresses": addresses}).encode()
            timings = []
            with httpx.Client(base_url=base, timeout=30) as client:
                for n in range(args.batches + 2):
                    if n == 2:
                        cpu = _cpu_seconds(product.pid)
                    start = time.perf_counter()
                    answer = client.post(
                        "/v1/lookup", content=body, headers={"content-type": "application/json"}
                    )
                    elapsed = time.perf_counter() - start
                    answer.raise_for_status()
                    if n >= 2:  # two warm-up requests
                        timings.append(elapsed * 1000)
            cpu_ms = (_cpu_seconds(product.pid) - cpu) / args.batches * 1000
            answers = answer.json()["answers"]
            if len(answers) != len(addresses):
                raise RuntimeError("the batch lookup did not answer every address")
        finally:
            _stop(product)
            _stop(floor)
    _report(kind, args, rows, timings, feed_bytes, cpu_ms, pin)
    return 0


def _median(rows: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in rows)


def _report(
    kind: str,
    args: argparse.Namespace,
    rows: dict,
    timings: list,
    size: int,
    cpu_ms: float,
    pin: bool,
) -> None:
    floor = _median(rows["floor"], "rps")
    feed, feed_p99 = _median(rows["feed"], "rps"), _median(rows["feed"], "p99")
    paced_p99, floor_paced_p99 = (
        _median(rows["feed@rate"], "p99"),
        _median(rows["floor@rate"], "p99"),
    )
    rate = f"{args.rate:,.0f} req/s"
    cpu = {row: _median(rows[row], "cpu_us") for row in ("floor", "feed", "304")}
    not_modified = _median(rows["304"], "rps")
    timings.sort()
    batch, batch_p90 = statistics.median(timings), timings[int(len(timings) * 0.9)]

    def verdict(ok: bool) -> str:
        return "met" if ok else "**missed**"

    print(
        f"{args.connections} connections, load from {kind}, {args.rounds} rounds of "
        f"{args.duration:g} s, medians; {os.cpu_count()} cores, loopback, "
        + ("servers on core 0, load on core 1\n" if pin else "no CPU pinning\n")
    )
    print("| row | measured | floor | ratio | target | |")
    print("|---|---|---|---|---|---|")
    # server CPU per request under the same load: what the ratio would be on cores of its own
    # (other work on a shared machine moves requests/s much more than it moves this)
    print(
        f"| floor: constant {FLOOR_BYTES // 1024} KB body | {floor:,.0f} req/s (p99 "
        f"{_median(rows['floor'], 'p99'):.1f} ms saturated; {cpu['floor']:.0f} us CPU per "
        f"request); p99 {floor_paced_p99:.1f} ms at {rate} | | | | |"
    )
    print(
        f"| EDL feed, azureml westus ({size:,} B) | {feed:,.0f} req/s (p99 {feed_p99:.1f} ms "
        f"saturated; {cpu['feed']:.0f} us CPU per request) | {floor:,.0f} req/s | "
        f"{feed / floor:.0%} (by CPU {cpu['floor'] / cpu['feed']:.0%}) | >= 70% "
        f"| {verdict(feed / floor >= 0.7)} |"
    )
    print(
        f"| EDL feed, p99 at {rate} offered, {args.connections} connections | "
        f"{paced_p99:.1f} ms (p50 {_median(rows['feed@rate'], 'p50'):.1f} ms) | "
        f"{floor_paced_p99:.1f} ms | | <= 20 ms | {verdict(paced_p99 <= 20)} |"
    )
    print(
        f"| 304 (If-None-Match) | {not_modified:,.0f} req/s (p99 "
        f"{_median(rows['304'], 'p99'):.1f} ms saturated; {cpu['304']:.0f} us CPU per request) "
        f"| {floor:,.0f} req/s | {not_modified / floor:.0%} (by CPU "
        f"{cpu['floor'] / cpu['304']:.0%}) | >= 90% | {verdict(not_modified / floor >= 0.9)} |"
    )
    print(
        f"| POST /v1/lookup, 10,000 addresses | {batch:.1f} ms (p90 {batch_p90:.1f} ms; server "
        f"CPU {cpu_ms:.1f} ms per request) | | | <= 50 ms | {verdict(batch <= 50)} |"
    )


if __name__ == "__main__":
    sys.exit(main())
