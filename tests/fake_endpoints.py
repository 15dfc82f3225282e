"""Fake Patroni, HAProxy stats and PostgreSQL endpoints on loopback addresses, for the monitor.

One asyncio loop in a child process serves every simulated cluster: node1 (primary) and node2
(streaming standby) answer Patroni's REST API on :8008 and PostgreSQL's wire protocol on :5432,
the proxy answers HAProxy's stats CSV on :7000. A "hung" cluster accepts connections and never
answers, like a black-holed host, so its reads cost the monitor's full timeouts. Used by the
monitoring benchmark and by tests that need many clusters without the network-namespace lab.

The PostgreSQL side speaks just enough of protocol 3.0 for psycopg2: no SSL, trust auth, simple
queries; the WAL position advances with the clock, so every pass sees new figures (as on a
database that is written to) and the monitor's "something changed" path is exercised.
"""

import asyncio
import json
import multiprocessing
import struct
import time
from collections.abc import Callable, Iterable

PATRONI_PORT, STATS_PORT, POSTGRES_PORT = 8008, 7000, 5432
Address = Callable[[int, int], str]  # (cluster index, host number) -> address
HOSTS = {"proxy": 10, "node1": 11, "node2": 12}


def patroni_body(address: Address, c: int) -> bytes:
    members = [
        {"name": "node1", "role": "leader", "state": "running", "timeline": 1},
        {"name": "node2", "role": "replica", "state": "streaming", "timeline": 1, "lag": 0},
    ]
    for member in members:
        member.update(host=address(c, HOSTS[member["name"]]), port=POSTGRES_PORT)
    return json.dumps({"members": members}).encode()


STATS_BODY = (
    b"# pxname,svname,status\n"
    b"primary,node1,UP\nprimary,node2,DOWN\nbe_replicas,node1,DOWN\nbe_replicas,node2,UP\n"
)


def _http(body: bytes, content_type: str):
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()
            return
        payload = b"[]" if b"/history" in request.split(b"\r\n", 1)[0] else body
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %d\r\n"
            b"Connection: close\r\n\r\n%s" % (content_type.encode(), len(payload), payload)
        )
        await writer.drain()
        writer.close()

    return handle


def _msg(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack("!i", len(body) + 4) + body


def _rows(columns: list[tuple[str, int]], rows: list[list[str | None]], tag: bytes) -> bytes:
    """RowDescription, DataRows, CommandComplete and ReadyForQuery for a text-format result."""
    desc = struct.pack("!h", len(columns)) + b"".join(
        name.encode() + b"\0" + struct.pack("!ihihih", 0, 0, oid, -1, -1, 0)
        for name, oid in columns
    )
    out = _msg(b"T", desc)
    for row in rows:
        cells = b"".join(
            struct.pack("!i", -1) if v is None else struct.pack("!i", len(v)) + v.encode()
            for v in row
        )
        out += _msg(b"D", struct.pack("!h", len(row)) + cells)
    return out + _msg(b"C", tag + b"\0") + _msg(b"Z", b"I")


BOOL, INT8, TEXT, NUMERIC, TIMESTAMPTZ = 16, 20, 25, 1700, 1184
STARTED = time.strftime("%Y-%m-%d %H:%M:%S+00", time.gmtime())  # pg_postmaster_start_time()
STARTUP_REPLY = (
    _msg(b"R", struct.pack("!i", 0))  # AuthenticationOk: trust
    + b"".join(
        _msg(b"S", k.encode() + b"\0" + v.encode() + b"\0")
        for k, v in (
            ("server_version", "15.14"),
            ("server_encoding", "UTF8"),
            ("client_encoding", "UTF8"),
            ("DateStyle", "ISO, MDY"),
            ("integer_datetimes", "on"),
            ("standard_conforming_strings", "on"),
        )
    )
    + _msg(b"K", struct.pack("!ii", 4242, 4242))
    + _msg(b"Z", b"I")
)


def _answer(query: str, primary: bool) -> bytes:
    lsn = int(time.time() * 1_000_000)  # advances ~1 MB/s, as on a busy primary
    if "pg_is_in_recovery" in query:
        position = lsn if primary else lsn - 4096
        return _rows(
            [("in_recovery", BOOL), ("position", NUMERIC), ("started", TIMESTAMPTZ)],
            [["f" if primary else "t", str(position), STARTED]],
            b"SELECT 1",
        )
    if "pg_stat_replication" in query:
        columns = [("application_name", TEXT), ("state", TEXT), ("lag", INT8)]
        columns += [(n, NUMERIC) for n in ("write_lag", "flush_lag", "replay_lag")]
        return _rows(
            columns, [["node2", "streaming", "4096", "0.001", "0.002", "0.003"]], b"SELECT 1"
        )
    return _msg(b"C", b"SET\0") + _msg(b"Z", b"I")


def _postgres(primary: bool):
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:  # SSLRequest / GSSENCRequest are refused with "N", then the startup
                (length,) = struct.unpack("!i", await reader.readexactly(4))
                (code,) = struct.unpack("!i", (await reader.readexactly(length - 4))[:4])
                if code in (80877103, 80877104):
                    writer.write(b"N")
                    continue
                break
            writer.write(STARTUP_REPLY)
            while True:
                kind = await reader.readexactly(1)
                (length,) = struct.unpack("!i", await reader.readexactly(4))
                body = await reader.readexactly(length - 4)
                if kind == b"X":
                    break
                if kind == b"Q":
                    writer.write(_answer(body.rstrip(b"\0").decode(), primary))
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    return handle


async def _hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Accept and never answer: the monitor's timeouts are all that end the read."""
    await asyncio.sleep(3600)


async def _serve(address: Address, clusters: int, hung: set[int], ready) -> None:
    for c in range(clusters):
        body = patroni_body(address, c)
        for name in ("node1", "node2"):
            host = address(c, HOSTS[name])
            patroni = _hang if c in hung else _http(body, "application/json")
            postgres = _hang if c in hung else _postgres(primary=name == "node1")
            await asyncio.start_server(patroni, host, PATRONI_PORT)
            await asyncio.start_server(postgres, host, POSTGRES_PORT)
        stats = _hang if c in hung else _http(STATS_BODY, "text/csv")
        await asyncio.start_server(stats, address(c, HOSTS["proxy"]), STATS_PORT)
    ready.set()
    await asyncio.Event().wait()


def _run(address: Address, clusters: int, hung: set[int], ready) -> None:
    asyncio.run(_serve(address, clusters, hung, ready))


def start(address: Address, clusters: int, hung: Iterable[int] = ()) -> multiprocessing.Process:
    """Serve `clusters` fake clusters from a child process; returns once all listen."""
    ctx = multiprocessing.get_context("fork")
    ready = ctx.Event()
    process = ctx.Process(
        target=_run, args=(address, clusters, set(hung), ready), daemon=True, name="fake-endpoints"
    )
    process.start()
    if not ready.wait(60):
        process.kill()
        raise RuntimeError("the fake endpoints did not start within 60 s")
    return process


def make_clusters(address: Address, n: int, prefix: str) -> list:
    """`n` healthy clusters in the console's database whose nodes live at the fake endpoints
    (`address(c, host)`), with generated passwords; the Cluster rows, in order."""
    from clusters.inventory.services import cluster_secrets_ensure
    from clusters.models import Cluster, Credential, Node

    cred = Credential.objects.create(name=prefix, username="root", password=f"{prefix}-pw-1234")
    made = []
    for c in range(n):
        cluster = Cluster.objects.create(name=f"{prefix}{c:03}", state=Cluster.State.HEALTHY)
        for name, host in HOSTS.items():
            Node.objects.create(
                cluster=cluster,
                name=name,
                address=address(c, host),
                credential=cred,
                kind="proxy" if name == "proxy" else "database",
                host_key_type="ssh-ed25519",
                host_key_base64="AAAA",
                host_key_fingerprint=f"SHA256:{prefix}{c}",
            )
        cluster_secrets_ensure(cluster=cluster)
        made.append(cluster)
    return made
