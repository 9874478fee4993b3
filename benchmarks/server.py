"""Issue 12's benchmarks: ``aztags serve`` under load on loopback, beside a floor.

    .venv/bin/python benchmarks/server.py                 # 3 rounds of 10 s per row, medians
    .venv/bin/python benchmarks/server.py --rounds 5 --duration 15 --connections 50

The floor is the same server stack (FastAPI + uvicorn, same uvicorn settings as ``aztags
serve``: one process, access log off) answering a constant 30 KB text body from memory. The
product is a real ``aztags serve`` process on a store holding the newest Public file of the
shared data. Rows:

1. **EDL feed of a profile**: ``GET /feeds/profile/azureml.txt?region=westus`` (1,646 prefixes,
   about 25 KB): target >= 70% of the floor's requests/s and p99 <= 20 ms at 50 connections.
2. **The 304 path**: the same feed with ``If-None-Match`` set to its ETag: >= 90% of the floor.
3. **POST batch lookup of 10,000 addresses** (``/v1/lookup``, one request at a time, half of
   them Azure addresses of the file): <= 50 ms (median; p90 printed too).

Floor and product run interleaved, one of each per round, so other work on the machine hits
both alike; the medians of the rounds are reported. Load comes from ``wrk`` (Debian package
``wrk``; two threads, a fixed number of connections, ``--latency`` for the percentiles). When
``wrk`` is not on PATH the script says so and uses a small asyncio load generator instead
(``--loadgen python``; the same fixed number of connections over raw sockets, HTTP/1.1
keep-alive), which is itself slower than the servers: its figures are a lower bound. The load
generator shares the 2 cores with the server, as does the floor's.

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


def _wrk(url: str, connections: int, duration: float, headers: dict[str, str]) -> dict:
    argv = ["wrk", "-t2", f"-c{connections}", f"-d{duration:g}s", "--latency", "--timeout", "5s"]
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]
    out = subprocess.run([*argv, url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99 = _wrk_ms(re.search(r"\s99%\s+([\d.]+\w+)", out).group(1))  # type: ignore[union-attr]
    p50 = _wrk_ms(re.search(r"\s50%\s+([\d.]+\w+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors or "Socket errors" in out:
        raise RuntimeError(f"wrk saw errors against {url}:\n{out}")
    return {"rps": rps, "p50": p50, "p99": p99}


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
    }


def load(kind: str, url: str, connections: int, duration: float, headers: dict) -> dict:
    if kind == "wrk":
        return _wrk(url, connections, duration, headers)
    return asyncio.run(_python_load(url, connections, duration, headers))


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
        product = subprocess.Popen(
            [*aztags, "serve", "--port", str(port), "--max-age-days", "100000"],
            env=env,
            stderr=subprocess.DEVNULL,
        )
        floor = subprocess.Popen(
            [sys.executable, __file__, "--floor-server", str(floor_port)],
            env=env,
            stderr=subprocess.DEVNULL,
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
                f"{args.rounds} rounds; feed {feed_bytes:,} bytes, floor {FLOOR_BYTES:,} bytes",
                file=sys.stderr,
            )
            rows: dict[str, list[dict]] = {"floor": [], "feed": [], "304": []}
            for n in range(args.rounds):  # interleaved: floor, feed, 304, floor, ...
                for row, url, headers in (
                    ("floor", floor_url, {}),
                    ("feed", base + FEED, {}),
                    ("304", base + FEED, {"If-None-Match": etag}),
                ):
                    found = load(kind, url, args.connections, args.duration, headers)
                    rows[row].append(found)
                    print(
                        f"round {n + 1} {row}: {found['rps']:.0f} req/s, p99 {found['p99']:.1f} ms",
                        file=sys.stderr,
                    )
            addresses = _addresses(newest, 10_000)
            body = json.dumps({"addresses": addresses}).encode()
            timings = []
            with httpx.Client(base_url=base, timeout=30) as client:
                for n in range(args.batches + 2):
                    start = time.perf_counter()
                    answer = client.post(
                        "/v1/lookup", content=body, headers={"content-type": "application/json"}
                    )
                    elapsed = time.perf_counter() - start
                    answer.raise_for_status()
                    if n >= 2:  # two warm-up requests
                        timings.append(elapsed * 1000)
            answers = answer.json()["answers"]
            if len(answers) != len(addresses):
                raise RuntimeError("the batch lookup did not answer every address")
        finally:
            _stop(product)
            _stop(floor)
    _report(kind, args, rows, timings, feed_bytes)
    return 0


def _median(rows: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in rows)


def _report(kind: str, args: argparse.Namespace, rows: dict, timings: list, size: int) -> None:
    floor = _median(rows["floor"], "rps")
    feed, feed_p99 = _median(rows["feed"], "rps"), _median(rows["feed"], "p99")
    not_modified = _median(rows["304"], "rps")
    timings.sort()
    batch, batch_p90 = statistics.median(timings), timings[int(len(timings) * 0.9)]

    def verdict(ok: bool) -> str:
        return "met" if ok else "**missed**"

    print(
        f"{args.connections} connections, load from {kind}, {args.rounds} rounds of "
        f"{args.duration:g} s, medians; {os.cpu_count()} cores, loopback\n"
    )
    print("| row | measured | floor | ratio | target | |")
    print("|---|---|---|---|---|---|")
    print(
        f"| floor: constant {FLOOR_BYTES // 1024} KB body | {floor:,.0f} req/s, p99 "
        f"{_median(rows['floor'], 'p99'):.1f} ms | | | | |"
    )
    print(
        f"| EDL feed, azureml westus ({size:,} B) | {feed:,.0f} req/s, p99 {feed_p99:.1f} ms "
        f"| {floor:,.0f} req/s | {feed / floor:.0%} | >= 70%, p99 <= 20 ms "
        f"| {verdict(feed / floor >= 0.7 and feed_p99 <= 20)} |"
    )
    print(
        f"| 304 (If-None-Match) | {not_modified:,.0f} req/s, p99 "
        f"{_median(rows['304'], 'p99'):.1f} ms | {floor:,.0f} req/s | "
        f"{not_modified / floor:.0%} | >= 90% | {verdict(not_modified / floor >= 0.9)} |"
    )
    print(
        f"| POST /v1/lookup, 10,000 addresses | {batch:.1f} ms (p90 {batch_p90:.1f} ms) | | | "
        f"<= 50 ms | {verdict(batch <= 50)} |"
    )


if __name__ == "__main__":
    sys.exit(main())
