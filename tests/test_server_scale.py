"""`aztags serve` beside a writer, on copies, and as one process with the scheduler (issue 12:
"More than one machine", "Caching and safety").

Real processes where the issue asks for real behaviour: `aztags serve` subprocesses on
127.0.0.1 (``--port 0``: the port is read from the log line), a real writer (`aztags import` of
many files, one transaction each) ingesting while clients read, `aztags backup` into the path a
server reads, uvicorn's TLS with trustme certificates, SIGTERM. The stores are synthetic: each
snapshot k has a tag ``Moving`` whose 200 prefixes are its own (10.k.x.0/24), and 600 tags whose
prefix counts depend on k, so an answer that mixed two snapshots equals neither.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path

import httpx
import pytest

from tests.helpers import ROOT, simple_snapshot
from tests.httpserver import LocalServer

K = 16  # snapshots the writer stores
N_TAGS = 600


def _tags(k: int) -> dict[str, list[str]]:
    tags = {"Moving": [f"10.{k}.{x}.0/24" for x in range(200)]}
    for i in range(N_TAGS):
        count = (i + k) % 4 + 1
        tags[f"T{i:04d}"] = [f"{11 + i // 250}.{i % 250}.{j}.0/24" for j in range(count)]
    return tags


def _name(k: int) -> str:
    day = date(2025, 1, 6) + timedelta(days=7 * (k - 1))
    return f"ServiceTags_Public_{day:%Y%m%d}.json"


def _feed(k: int) -> bytes:
    return "".join(f"{p}\n" for p in _tags(k)["Moving"]).encode()


def _counts(k: int) -> dict[str, int]:
    return {name: len(prefixes) for name, prefixes in _tags(k).items()}


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> list[Path]:
    """Snapshot files 1..K (index k-1), changeNumber k, one week apart."""
    folder = tmp_path_factory.mktemp("files")
    paths = []
    for k in range(1, K + 1):
        path = folder / _name(k)
        path.write_bytes(simple_snapshot(k, _tags(k)))
        paths.append(path)
    return paths


def _env(folder: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AZTAGS_")}
    env.update(XDG_CONFIG_HOME=str(folder / "xdg"), HOME=str(folder), PYTHONUNBUFFERED="1")
    return env


def _aztags(*args: str | Path) -> list[str]:
    return [sys.executable, str(ROOT / "cli.py"), *map(str, args)]


def _run(folder: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _aztags(*args), env=_env(folder), capture_output=True, text=True, timeout=120
    )


def _store(folder: Path, db: Path, *paths: Path) -> None:
    done = _run(folder, "import", "--db", db, *paths)
    assert done.returncode == 0, done.stderr


class Served:
    """An `aztags serve` process: its URL once it listens, its stderr lines as they come."""

    def __init__(self, folder: Path, db: Path, *args: str | Path, config: Path | None = None):
        argv = _aztags(*(("--config", config) if config else ()), "serve", "--db", db)
        argv += ["--port", "0", "--max-age-days", "100000", *map(str, args)]
        self.proc = subprocess.Popen(
            argv, env=_env(folder), stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True
        )
        self.lines: list[str] = []
        self._listening = threading.Event()
        self.url = ""
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))
            if found := re.search(r" on (https?://[\d.]+:\d+)$", line.rstrip()):
                self.url = found.group(1)
                self._listening.set()
        self._listening.set()

    def wait(self) -> Served:
        self._listening.wait(timeout=60)
        assert self.url, f"aztags serve did not start:\n{self.log}"
        return self

    @property
    def log(self) -> str:
        return "\n".join(self.lines)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=60)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()


@contextmanager
def serving(folder: Path, db: Path, *args: str | Path, config: Path | None = None):
    served = Served(folder, db, *args, config=config)
    try:
        yield served.wait()
    finally:
        served.stop()


def _wait_until(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := check():
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


# -- reads during an ingest ------------------------------------------------------------------------

PATHS = ("/feeds/Moving.txt", "/v1/tags", "/v1/tags/Moving")


def _hammer(bases: list[str], writer: subprocess.Popen, threads: int) -> list[tuple]:
    """Clients reading every path from every server until the writer is done, then once more.
    Records (base, path, status, etag, body)."""
    records: list[tuple] = []
    stop = threading.Event()

    def client(n: int) -> None:
        with httpx.Client(timeout=60) as http:
            i = n
            while True:
                last = stop.is_set()
                base, path = bases[i % len(bases)], PATHS[(i // len(bases)) % len(PATHS)]
                i += 1
                answer = http.get(base + path)
                records.append(
                    (base, path, answer.status_code, answer.headers.get("etag"), answer.content)
                )
                if last and i - n > len(bases) * len(PATHS):
                    return

    with ThreadPoolExecutor(threads) as pool:
        futures = [pool.submit(client, n) for n in range(threads)]
        try:
            writer.wait(timeout=300)
        finally:
            stop.set()
        for future in futures:
            future.result()
    return records


def _snapshot_of(path: str, body: bytes) -> int:
    """The one snapshot whose full answer ``body`` is (AssertionError if none)."""
    if path == "/feeds/Moving.txt":
        matches = [k for k in range(1, K + 1) if _feed(k) == body]
        assert matches, f"a feed that is no snapshot's list: {body[:80]!r}..."
        return matches[0]
    doc = json.loads(body)
    k = doc["snapshot"]["change_number"]
    if path == "/v1/tags":
        got = {t["name"]: t["ipv4"] for t in doc["tags"]}
        assert got == _counts(k), f"/v1/tags names changeNumber {k} but has other counts"
    else:
        assert doc["prefixes"] == _tags(k)["Moving"], f"/v1/tags/Moving: not snapshot {k}'s"
    return k


def _check(records: list[tuple]) -> set[int]:
    """Every answer is one snapshot's whole answer; one ETag is one content and one snapshot,
    and one content has one ETag. Returns the snapshots seen."""
    by_etag: dict[tuple, bytes] = {}
    by_body: dict[tuple, str] = {}
    seen = set()
    for base, path, status, etag, body in records:
        assert status == 200, (base, path, status, body[:300])
        k = _snapshot_of(path, body)
        seen.add(k)
        assert by_etag.setdefault((path, etag), body) == body, f"{path}: ETag {etag} on 2 answers"
        assert by_body.setdefault((path, body), etag) == etag, f"{path}: one answer, two ETags"
    return seen


@pytest.mark.slow
def test_requests_during_an_ingest_see_one_snapshot_whole(tmp_path, files):
    db = tmp_path / "aztags.db"
    _store(tmp_path, db, files[0])
    with serving(tmp_path, db) as served:
        first = httpx.get(served.url + "/feeds/Moving.txt", timeout=60)
        assert first.content == _feed(1)  # what a whole answer looks like
        writer = subprocess.Popen(
            _aztags("import", "--db", db, *files[1:]),
            env=_env(tmp_path),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        records = _hammer([served.url], writer, threads=8)
        assert writer.returncode == 0, writer.stderr.read() if writer.stderr else ""
        seen = _check(records)
        # the readers overlapped the ingest: they saw snapshots between the first and the last
        assert len(seen) >= 3 and K in seen, sorted(seen)
        assert served.stop() == 0, served.log


@pytest.mark.slow
def test_several_servers_read_one_database_while_one_writer_ingests(tmp_path, files):
    db = tmp_path / "aztags.db"
    _store(tmp_path, db, files[0])
    servers = [Served(tmp_path, db) for _ in range(3)]
    try:
        bases = [s.wait().url for s in servers]
        writer = subprocess.Popen(
            _aztags("import", "--db", db, *files[1:]),
            env=_env(tmp_path),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        records = _hammer(bases, writer, threads=6)
        assert writer.returncode == 0
        _check(records)
        for base in bases:
            assert {k for b, p, *_, body in records if b == base for k in [_snapshot_of(p, body)]}
        # once the writer is done, every server answers the last snapshot, with one ETag
        finals = [httpx.get(base + "/feeds/Moving.txt", timeout=60) for base in bases]
        assert [f.content for f in finals] == [_feed(K)] * 3
        assert len({f.headers["etag"] for f in finals}) == 1
    finally:
        codes = [s.stop() for s in servers]
    assert codes == [0, 0, 0], "\n".join(s.log for s in servers)


# -- replaced files, backups, replicas -------------------------------------------------------------


def _get_all(url: str, n: int = 24, **kw) -> list[httpx.Response]:
    """n requests at once (they land on several worker threads, each with its connection)."""
    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(lambda _: httpx.get(url, timeout=60, **kw), range(n)))


@pytest.mark.slow
def test_server_reopens_its_database_when_a_backup_replaces_it(tmp_path, files):
    one, two = tmp_path / "one.db", tmp_path / "two.db"
    _store(tmp_path, one, files[0])
    _store(tmp_path, two, files[0], files[1])
    served_db = tmp_path / "replica" / "aztags.db"
    served_db.parent.mkdir()
    assert _run(tmp_path, "backup", "--db", one, served_db).returncode == 0
    with serving(tmp_path, served_db) as served:
        feed = served.url + "/feeds/Moving.txt"
        before = _get_all(feed)
        assert {r.content for r in before} == {_feed(1)}
        etag_one = before[0].headers["etag"]

        done = _run(tmp_path, "backup", "--db", two, served_db)
        assert done.returncode == 0, done.stderr
        assert (
            done.stdout.strip() == f"{served_db}: 2 snapshot(s), {served_db.stat().st_size:,} bytes"
        )
        after = _get_all(feed)
        assert {r.content for r in after} == {_feed(2)}  # every thread reopened
        assert httpx.get(feed, headers={"If-None-Match": etag_one}, timeout=60).status_code == 200

        assert _run(tmp_path, "backup", "--db", one, served_db).returncode == 0
        again = httpx.get(feed, headers={"If-None-Match": etag_one}, timeout=60)
        assert again.status_code == 304  # the ETag comes from the content: the same again
        assert not list(served_db.parent.glob(".*.tmp"))  # no temporary copy left behind
    assert served.proc.returncode == 0, served.log


@pytest.mark.slow
def test_backup_while_the_writer_runs_is_consistent_and_a_replica_answers_like_the_writer(
    tmp_path, files
):
    db = tmp_path / "aztags.db"
    _store(tmp_path, db, files[0])
    writer = subprocess.Popen(
        _aztags("import", "--db", db, *files[1:]),
        env=_env(tmp_path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    copies = []
    while writer.poll() is None or not copies:
        copy = tmp_path / f"copy{len(copies)}.db"
        done = _run(tmp_path, "backup", "--db", db, copy)
        assert done.returncode == 0, done.stderr
        copies.append(copy)
    assert writer.wait() == 0
    stored = set()
    for copy in copies:
        conn = sqlite3.connect(copy)
        try:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
            assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)
        finally:
            conn.close()
        assert not copy.with_name(copy.name + "-wal").exists()
        listed = _run(tmp_path, "snapshots", "--db", copy, "--json")
        numbers = [s["change_number"] for s in json.loads(listed.stdout)]
        assert numbers == list(range(1, len(numbers) + 1))  # a state the writer went through
        cidrs = _run(tmp_path, "cidrs", "Moving", "--db", copy, "--max-age-days", "100000")
        assert cidrs.stdout.encode() == _feed(len(numbers)), cidrs.stderr
        stored.add(len(numbers))
    assert len(stored) >= 2, stored  # copies were taken while the writer was storing

    replica = tmp_path / "replica.db"
    assert _run(tmp_path, "backup", "--db", db, replica).returncode == 0
    paths = [
        "/feeds/Moving.txt",
        "/feeds/T0007.json",
        "/v1/tags",
        "/v1/tags/Moving?at=cn:3",
        "/v1/tags?at=2025-02-01",
    ]
    with serving(tmp_path, db) as writer_side, serving(tmp_path, replica) as replica_side:
        for path in paths:
            a = httpx.get(writer_side.url + path, timeout=60)
            b = httpx.get(replica_side.url + path, timeout=60)
            assert a.status_code == b.status_code == 200, (path, a.text, b.text)
            assert a.headers["etag"] == b.headers["etag"], path
            assert a.headers["last-modified"] == b.headers["last-modified"], path
            assert a.content == b.content, path
            # a firewall that polled the writer gets 304 from the replica
            again = httpx.get(
                replica_side.url + path, headers={"If-None-Match": a.headers["etag"]}, timeout=60
            )
            assert again.status_code == 304, path


@pytest.mark.slow
def test_backup_onto_its_own_database_is_refused_and_changes_nothing(tmp_path, files):
    db = tmp_path / "aztags.db"
    _store(tmp_path, db, files[0])
    before = db.read_bytes()
    done = _run(tmp_path, "backup", "--db", db, db)
    assert done.returncode == 1
    assert done.stderr.startswith(f"aztags: Cannot back up {db} onto itself")
    assert db.read_bytes() == before


@pytest.mark.slow
def test_backup_into_a_missing_folder_says_where(tmp_path, files):
    db = tmp_path / "aztags.db"
    _store(tmp_path, db, files[0])
    done = _run(tmp_path, "backup", "--db", db, tmp_path / "nowhere" / "copy.db")
    assert done.returncode == 1
    assert done.stderr.startswith(f"aztags: Cannot write beside {tmp_path / 'nowhere' / 'copy.db'}")
    assert "Traceback" not in done.stderr


# -- one process: server and scheduler -------------------------------------------------------------


@pytest.mark.slow
def test_serve_with_scheduler_refreshes_serves_and_stops_on_sigterm(tmp_path):
    with LocalServer() as mirror:
        mirror.route(
            "/mirror/ServiceTags_Public.json", simple_snapshot(7, {"Sql": ["20.0.0.0/16"]})
        )
        config = tmp_path / "aztags.toml"
        config.write_text(
            f'[[refresh]]\ncloud = "public"\nevery = "1h"\n'
            f'source = "{mirror.url}/mirror/ServiceTags_Public.json"\n'
        )
        db = tmp_path / "new" / "aztags.db"  # the scheduler creates it
        served = Served(tmp_path, db, "--with-scheduler", config=config).wait()
        try:
            feed = served.url + "/feeds/Sql.txt"
            answer = _wait_until(
                lambda: (r := httpx.get(feed, timeout=60)).status_code == 200 and r,
                60,
                "the scheduler's first refresh",
            )
            assert answer.text == "20.0.0.0/16\n"
            assert len(mirror.requests_to("/mirror/ServiceTags_Public.json")) == 1
        finally:
            code = served.stop()
    assert code == 0, served.log
    log = served.log
    assert "scheduler started: public every 1h from the pinned source" in log
    assert "refresh public: current changeNumber 7" in log
    assert log.index("stopping: finishing the job in progress") < log.index(
        "server stopped (SIGTERM)"
    )
    status = _run(tmp_path, "status", "--db", db, "--json", "--max-age-days", "100000")
    assert json.loads(status.stdout)["clouds"][0]["change_number"] == 7, status.stdout


# -- [serve] settings, TLS -------------------------------------------------------------------------


@pytest.fixture
def tls(tmp_path) -> Iterator[tuple[Path, Path, Path]]:
    """(certificate chain, key, CA) PEM files for 127.0.0.1 from a trustme CA."""
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    chain, key, authority = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    cert.private_key_pem.write_to_path(str(key))
    chain.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    ca.cert_pem.write_to_path(str(authority))
    yield chain, key, authority


@pytest.mark.slow
def test_serve_takes_its_settings_and_tls_from_the_config(tmp_path, files, tls):
    import ssl

    chain, key, authority = tls
    db = tmp_path / "aztags.db"
    _store(tmp_path, db, files[0])
    config = tmp_path / "aztags.toml"
    config.write_text(
        f'[serve]\nhost = "127.0.0.1"\nport = 0\ntls_cert = "{chain}"\ntls_key = "{key}"\n'
    )
    with serving(tmp_path, db, config=config) as served:
        assert served.url.startswith("https://127.0.0.1:")
        trusted = ssl.create_default_context(cafile=str(authority))
        answer = httpx.get(served.url + "/feeds/Moving.txt", verify=trusted, timeout=60)
        assert answer.status_code == 200 and answer.content == _feed(1)
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(served.url + "/healthz", verify=ssl.create_default_context(), timeout=60)
        plain = served.url.replace("https://", "http://")
        with pytest.raises(httpx.HTTPError):
            httpx.get(plain + "/healthz", timeout=60)
    assert served.proc.returncode == 0, served.log


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_a_port_flag_beats_the_config(tmp_path, files):
    db = tmp_path / "aztags.db"
    _store(tmp_path, db, files[0])
    config = tmp_path / "aztags.toml"
    port = _free_port()
    with socket.socket() as busy:  # the config's port is taken: using it would fail
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        config.write_text(f"[serve]\nport = {busy.getsockname()[1]}\n")
        argv = _aztags("--config", config, "serve", "--db", db, "--port", str(port))
        proc = subprocess.Popen(argv, env=_env(tmp_path), stderr=subprocess.PIPE, text=True)
        try:
            answer = _wait_until(
                lambda: _try(f"http://127.0.0.1:{port}/feeds/Moving.txt"), 60, "the server"
            )
            assert answer.content == _feed(1)
        finally:
            proc.send_signal(signal.SIGTERM)
            _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    assert f"on http://127.0.0.1:{port}" in stderr


def _try(url: str) -> httpx.Response | None:
    try:
        return httpx.get(url, timeout=60)
    except httpx.TransportError:
        return None


@pytest.mark.slow
@pytest.mark.parametrize(
    ("serve_table", "flags", "message"),
    [
        (
            'tls_cert = "{missing}"\ntls_key = "{key}"',
            (),
            "aztags: Cannot read the TLS certificate {missing} (tls_cert of [serve] in {config}): "
            "No such file or directory.",
        ),
        ('tls_cert = "{chain}"', (), "HTTPS needs both --tls-cert and --tls-key"),
        (
            'tls_cert = "{config}"\ntls_key = "{config}"',
            (),
            "aztags: Cannot use the TLS certificate {config} with the key {config}:",
        ),
        ("", ("--port", "{busy}"), "aztags: Cannot listen on 127.0.0.1 port {busy}:"),
    ],
    ids=["missing-file", "cert-without-key", "not-pem", "port-in-use"],
)
def test_serve_settings_that_cannot_work_fail_with_one_sentence(
    tmp_path, files, tls, serve_table, flags, message
):
    chain, key, _ = tls
    db = tmp_path / "aztags.db"
    _store(tmp_path, db, files[0])
    config = tmp_path / "aztags.toml"
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        values = {
            "missing": tmp_path / "missing.pem",
            "key": key,
            "chain": chain,
            "config": config,
            "busy": busy.getsockname()[1],
        }
        config.write_text("[serve]\n" + serve_table.format(**values) + "\n")
        done = _run(
            tmp_path,
            "--config",
            config,
            "serve",
            "--db",
            db,
            *(f.format(**values) for f in flags),
        )
    expected = message.format(**values)
    assert done.returncode == (1 if "listen" in message else 2), done.stderr
    assert expected in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


# -- Nagle's algorithm off on every connection ----------------------------------------------------


def test_connections_to_the_listening_socket_send_without_nagles_delay():
    """`aztags serve` binds its socket itself (commands/serve.py) and hands it to uvicorn, which
    serves it through asyncio. asyncio sets TCP_NODELAY only on connections of a socket made
    with proto IPPROTO_TCP: with proto 0, a small body written after its headers waited for the
    client's delayed ACK (measured: a 6 KB feed at 1,100 req/s instead of 4,700, 50 connections)."""
    import asyncio

    from commands.serve import _listen

    async def accepted_nodelay() -> int:
        seen: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        class Note(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                sock = transport.get_extra_info("socket")
                seen.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                transport.close()

        sock = _listen("127.0.0.1", 0)
        server = await asyncio.get_running_loop().create_server(Note, sock=sock)
        async with server:
            _, writer = await asyncio.open_connection(*sock.getsockname()[:2])
            value = await asyncio.wait_for(seen, 10)
            writer.close()
        return value

    assert asyncio.run(accepted_nodelay()) != 0
