"""Setup's fast-path step (issue 21, docs/fast-failover.md): the agent on the witness, its peer
on each database node, or neither.

With ``Cluster.fast_failover`` on, the witness (the first proxy) runs jobs/agents/fastpath.py as
the daemon ``fastpath-<scope>`` (root: it reads the fence devices' secrets and talks to HAProxy's
admin socket), and each database node runs it with ``--peer`` as ``fastpath-peer-<scope>``
(postgres, which may read the node's key). Each reads its JSON config file, written here with
mode 0600: the witness's holds the fence devices' options and secrets (only those of nodes
whose last "Test fence device" passed: a node without a working device keeps the lease path),
never a command line. A changed file or program restarts its daemon. Off, both are removed.
"""

import json
import shlex
from pathlib import Path

from clusters.inventory.fence_methods import METHODS, agent_input
from clusters.models import FenceDevice, Node
from jobs.configs import spec as paths
from jobs.configs.etcd import client_urls
from jobs.configs.patroni import MAXIMUM_LAG_ON_FAILOVER, NAMESPACE
from jobs.configs.spec import ClusterSpec
from jobs.playbooks import daemons
from jobs.playbooks.base import StepContext, Verdict
from jobs.playbooks.haproxy_runtime import BACKENDS

AGENT_SOURCE = Path(__file__).resolve().parent.parent / "agents" / "fastpath.py"
AGENT_PATH = "/usr/local/lib/hacenter/fastpath.py"
DECISIONS_DIR = "/var/lib/hacenter/fastpath"
# Detection: a probe every 200 ms with 300 ms timeouts; 4 misses in a row (about 1.2 s when
# every probe times out); an iteration 0.5 s late resets the count (a starved agent).
INTERVAL_S = 0.2
PROBE_TIMEOUT_S = 0.3
MISSES = 4
LATE_S = 0.5
# How long the candidate has to take the leader key before the failover key is withdrawn.
TAKEOVER_TIMEOUT_S = 5.0
FENCE_TIMEOUT_S = 30.0


def config_path(spec: ClusterSpec, *, peer: bool) -> str:
    return f"/etc/hacenter/fastpath-{'peer-' if peer else ''}{spec.name}.json"


def decisions_path(scope: str) -> str:
    """The contract's decisions file: one JSON object per line, appended only."""
    return f"{DECISIONS_DIR}/{scope}.jsonl"


def agent_daemon(spec: ClusterSpec) -> daemons.Daemon:
    return daemons.Daemon(
        name=f"fastpath-{spec.name}",
        argv=("/usr/bin/python3", AGENT_PATH, "--config", config_path(spec, peer=False)),
        user="root",
        description="Fast-path agent",
    )


def peer_daemon(spec: ClusterSpec) -> daemons.Daemon:
    return daemons.Daemon(
        name=f"fastpath-peer-{spec.name}",
        argv=("/usr/bin/python3", AGENT_PATH, "--peer", "--config", config_path(spec, peer=True)),
        user="postgres",
        description="Fast-path peer",
    )


def fence_entries(devices: list[FenceDevice]) -> dict[str, dict]:
    """Per node name, its fence agent and stdin (options and secret, no action line), for the
    devices whose last test passed; the others are left out (the lease path)."""
    entries = {}
    for device in devices:
        if device.untested_reason():
            continue
        stdin = agent_input(device.method, device.options, device.secret, action="status")
        entries[device.node.name] = {
            "fence_agent": METHODS[device.method].agent,
            "fence_input": stdin.decode().split("\n", 1)[1],
        }
    return entries


def agent_config(
    spec: ClusterSpec, *, window_s: int, fences: dict[str, dict], peer_listen: str = ""
) -> dict:
    """The agent's (or, with ``peer_listen``, a peer's) JSON config; a peer's has no fence
    entries: the secrets stay on the witness."""
    nodes = {
        n.name: {
            "address": n.address,
            "postgres_port": paths.POSTGRES_PORT,
            "patroni_port": paths.PATRONI_PORT,
            "peer_port": paths.FASTPATH_PEER_PORT,
            **({} if peer_listen else fences.get(n.name, {})),
        }
        for n in spec.database_nodes
    }
    tls = (
        {
            "tls_ca": paths.TLS_CA_FILE,
            "tls_cert": paths.TLS_CERT_FILE,
            "tls_key": paths.TLS_KEY_FILE,
        }
        if spec.tls is not None
        else {}
    )
    apps = tuple(f"app_{f.listen_port}" for f in spec.http_frontends)
    config = {
        "scope": spec.name,
        "namespace": NAMESPACE,
        "nodes": nodes,
        "witness": spec.proxy.name,
        **tls,
    }
    if peer_listen:
        return {**config, "peer_listen": peer_listen, "probe_timeout_s": PROBE_TIMEOUT_S}
    return {
        **config,
        "etcd_endpoints": client_urls(spec).split(","),
        "decisions": decisions_path(spec.name),
        "interval_s": INTERVAL_S,
        "probe_timeout_s": PROBE_TIMEOUT_S,
        "misses": MISSES,
        "late_s": LATE_S,
        "maximum_lag_on_failover": MAXIMUM_LAG_ON_FAILOVER,
        "window_s": window_s,
        "takeover_timeout_s": TAKEOVER_TIMEOUT_S,
        "fence_timeout_s": FENCE_TIMEOUT_S,
        "haproxy_socket": paths.HAPROXY_SOCKET,
        "haproxy_state_file": paths.HAPROXY_STATE_FILE,
        "backends": [*BACKENDS, *apps],
        # The backends that route to the primary (Patroni's /primary check).
        "primary_backends": ["primary", "be_replicas_fallback", *apps],
    }


def fastpath(ctx: StepContext) -> Verdict | str:
    """The agent on the witness, its peer on a database node: installed, configured and
    (re)started when the cluster's fast path is on; removed when it is off."""
    spec: ClusterSpec = ctx.facts["spec"]
    node = ctx.node
    peer = node.kind == Node.Kind.DATABASE
    daemon = peer_daemon(spec) if peer else agent_daemon(spec)
    path = config_path(spec, peer=peer)
    if not ctx.cluster.fast_failover:
        running = daemons.pid(ctx, node, daemon)
        if not running and not ctx.run(f"test -e {shlex.quote(path)}", echo=False).ok:
            return "fast failover is off"
        verdict = daemons.remove(ctx, node, daemon)
        ctx.run(f"rm -f {shlex.quote(path)}", check=True)
        return f"fast failover is off: {verdict}, its configuration removed"
    ctx.run(f"mkdir -p /usr/local/lib/hacenter {DECISIONS_DIR} && chmod 750 {DECISIONS_DIR}")
    program_changed = ctx.ensure_file(AGENT_PATH, AGENT_SOURCE.read_text(), mode=0o755)
    if peer:
        config = agent_config(
            spec, window_s=ctx.cluster.fast_failover_window_s, fences={}, peer_listen=node.address
        )
        fenced = ""
    else:
        devices = list(FenceDevice.objects.filter(node__cluster=ctx.cluster).select_related("node"))
        fences = fence_entries(devices)
        config = agent_config(spec, window_s=ctx.cluster.fast_failover_window_s, fences=fences)
        fenced = "; fence devices: " + (", ".join(sorted(fences)) or "none tested yet")
    changed = ctx.ensure_file(
        path,
        json.dumps(config, indent=2, sort_keys=True) + "\n",
        mode=0o600,
        owner=daemon.user,
        group=daemon.user,
    )
    if (changed or program_changed) and daemons.pid(ctx, node, daemon):
        return daemons.restart(ctx, node, daemon) + " with its new configuration" + fenced
    return daemons.start(ctx, node, daemon) + fenced
