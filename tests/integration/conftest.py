"""Integration fixtures: a real Celery worker (Redis broker) and clusters on the lab's hosts."""

import contextlib
import shlex
from collections.abc import Iterator

import pytest

from clusters.inventory import services as cluster_services
from clusters.models import Cluster, Credential, Node
from jobs import patroni_api
from jobs.host_keys import host_key_scan
from jobs.models import Job
from tests.conftest import wait_for
from tests.workers import start_worker


@pytest.fixture(scope="module")
def worker(django_db_setup, django_db_blocker):
    """A `celery worker` process for the module's tests, stopped at the module's end."""
    with django_db_blocker.unblock():
        process = start_worker(name="integration")
    yield process
    process.stop()


def lab_credential(lab, *, name: str = "lab-root", username: str = "root") -> Credential:
    return Credential.objects.create(name=name, username=username, private_key=lab.private_key_text)


def make_lab_cluster(
    lab, credential: Credential, name: str = "labc", hosts=None, **data
) -> Cluster:
    """Scan each lab host's key (as an admin would, then confirm it) and define the cluster
    (of `hosts`, the lab's hosts by default; `data` adds to the cluster's fields)."""
    nodes = []
    for host in lab.hosts if hosts is None else hosts:
        scan = host_key_scan(address=host.address, port=22)
        assert scan.get("fingerprint") == lab.host_key_fingerprint(host.name), scan
        nodes.append(
            {
                "name": host.name,
                "address": host.address,
                "ssh_port": 22,
                "credential": credential.pk,
                "host_key_fingerprint": scan["fingerprint"],
                "kind": "proxy" if host.name.startswith("proxy") else "database",
            }
        )
    return cluster_services.cluster_create(
        data={"name": name, "replication": "async", "nodes": nodes, **data}
    )


@pytest.fixture
def lab_cluster(fresh_lab, db):
    """A cluster defined (not set up) on wiped hosts: nothing of an earlier test runs there."""
    return make_lab_cluster(fresh_lab, lab_credential(fresh_lab))


def wait_for_job(job: Job, timeout: float = 120, statuses: tuple[str, ...] | None = None) -> Job:
    """Wait until the job is terminal (or in one of `statuses`) and return it fresh."""

    def reached() -> Job | None:
        job.refresh_from_db()
        done = job.status in statuses if statuses else job.is_terminal
        return job if done else None

    try:
        return wait_for(reached, timeout, f"job #{job.pk} to reach {statuses or 'an end'}")
    except pytest.fail.Exception as exc:
        raise pytest.fail.Exception(f"{exc}\n{job_story(job)}", pytrace=False) from None


def job_story(job: Job, lines: int = 60) -> str:
    """Where a job is stuck: each step's state and verdict, then the log's last lines."""
    steps = [
        f"  {s.position}. {s.title} [{s.node.name if s.node else '-'}] {s.status} "
        f"{s.elapsed_s or 0:.0f} s: {s.summary}"
        for s in job.steps.select_related("node")
    ]
    tail = reversed(job.log_lines.order_by("-seq")[:lines])
    log = [f"  {line.ts:%H:%M:%S} [{line.host or '-'}] {line.text[:300]}" for line in tail]
    return "\n".join(["steps:", *steps, f"last {lines} log lines:", *log, workers_busy()])


def workers_busy() -> str:
    """What every Celery worker runs and holds right now: a job whose steps all stay pending
    was never picked up (a worker busy with something else, or none consuming the queue)."""
    from hacenter.celery import app

    inspect = app.control.inspect(timeout=2)
    return f"workers' active tasks: {inspect.active()}\nreserved: {inspect.reserved()}"


@pytest.fixture(autouse=True)
def _workers_idle_before_flush(transactional_db):
    """After a test, let the workers finish what the test queued (alerts, monitor passes) before
    the database is flushed: a worker writing during the TRUNCATE deadlocked it once."""
    yield
    import time

    from hacenter.celery import app

    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            active = app.control.inspect(timeout=0.5).active() or {}
        except Exception:  # no worker, no broker: nothing can be writing through Celery
            return
        if not any(active.values()):
            return
        time.sleep(0.2)


def patroni_at(address: str) -> patroni_api.Member:
    """The node at `address` as the inventory knows it, so the test asks its Patroni as the
    workers do (https verified by the cluster's CA once setup made it speak TLS); the bare
    address (plain http) when no cluster has that node, or outside the test database."""
    try:
        found = (
            Node.objects.select_related("cluster").filter(address=address).order_by("-pk").first()
        )
    except RuntimeError:  # a thread of a test without database access
        return address
    return found or address


def any_member(addresses: tuple[str, ...], wanted, timeout: float = 1) -> bool:
    """Whether the member list of the first Patroni that answers has a member `wanted` likes."""
    for address in addresses:
        try:
            members = patroni_api.cluster(patroni_at(address), timeout=timeout)["members"]
        except patroni_api.PatroniUnavailable:
            continue
        return any(wanted(m) for m in members)
    return False


def streaming_standby(*addresses: str) -> bool:
    return any_member(addresses, lambda m: m.get("state") == "streaming")


def leader_name(*addresses: str) -> str | None:
    """The leader every answering member agrees on; None while they disagree. A member whose
    network just came back still shows its old view (itself as leader) until it reaches etcd."""
    seen = set()
    for address in addresses:
        try:
            members = patroni_api.cluster(patroni_at(address), timeout=1)["members"]
            found = patroni_api.leader(members)
        except patroni_api.PatroniUnavailable:
            continue
        seen.add(found["name"] if found else None)
    return seen.pop() if len(seen) == 1 else None


@contextlib.contextmanager
def port_squatted(lab, host: str, address: str, port: int) -> Iterator[None]:
    """Another program (perl) listens on `address:port` of lab host `host` while the block
    runs, as software of the customer's would."""
    squatter = (
        f"use IO::Socket::INET; my $s = IO::Socket::INET->new(LocalAddr => '{address}:{port}', "
        "Listen => 1, ReuseAddr => 1) or die; sleep 600"
    )
    background = f"cd /; setsid perl -e {shlex.quote(squatter)} </dev/null >/dev/null 2>&1 &"
    lab.exec(host, ["sh", "-c", background])
    wait_for(
        lambda: str(port) in lab.exec(host, ["ss", "-Hltn"]).stdout,
        10,
        f"the squatter to listen on {port}",
    )
    try:
        yield
    finally:
        lab.exec(host, ["pkill", "-f", f"{address}:{port}"], check=False)
