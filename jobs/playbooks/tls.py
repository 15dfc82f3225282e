"""The cluster's TLS files on the servers: the CA certificate, the node's certificate and key.

Which user reads which key (jobs/playbooks/daemons.py runs etcd as `etcd`, Patroni and
PostgreSQL as `postgres`): one key per reader, so neither daemon can read a file the other
owns and no key is ever group- or world-readable beyond its daemon:

- `node.key` (TLS_KEY_FILE), root:postgres 0640 on database nodes: Patroni's REST API and its
  etcd3 client, and PostgreSQL (which accepts a root-owned key with mode 0640). On the proxy,
  which has no postgres user, root:root 0600. The console's own `etcdctl` runs as root and
  uses it on every node.
- `etcd.key` (ETCD_KEY_FILE), etcd:etcd 0600 on etcd members only: etcd's client and peer TLS.

Certificates and the CA are public: 0644. Every file goes up atomically (temp file, checksum,
rename) and only when its SHA-256, owner or mode differ from what is there, so a re-run says
"already in place" and a changed certificate is the only reason to restart a daemon.
"""

import hashlib
import shlex
from dataclasses import dataclass

from clusters.models import Node
from jobs.configs import spec as paths
from jobs.configs.etcd import ETCD_KEY_FILE
from jobs.playbooks.base import StepContext, StepFailed, Verdict

ETCD_USER = "etcd"
POSTGRES_USER = "postgres"


@dataclass(frozen=True)
class TlsFile:
    """One file of the node's TLS set: where, what, and who may read it."""

    path: str
    content: str
    owner: str
    group: str
    mode: int
    # What the verdict calls it ("node.key for postgres").
    label: str


def tls_files(spec: paths.ClusterSpec, node: Node) -> list[TlsFile]:
    """The files `node` needs: CA and certificate everywhere, one key copy per daemon user."""
    if spec.tls is None:
        return []
    mine = spec.tls.node(node.name)
    files = [
        TlsFile(paths.TLS_CA_FILE, spec.tls.ca_certificate, "root", "root", 0o644, "ca.crt"),
        TlsFile(paths.TLS_CERT_FILE, mine.certificate, "root", "root", 0o644, "node.crt"),
    ]
    if node.kind == Node.Kind.DATABASE:
        files.append(
            TlsFile(paths.TLS_KEY_FILE, mine.key, "root", POSTGRES_USER, 0o640, "node.key")
        )
    else:
        files.append(TlsFile(paths.TLS_KEY_FILE, mine.key, "root", "root", 0o600, "node.key"))
    if node.name in {m.name for m in spec.etcd_members}:
        files.append(TlsFile(ETCD_KEY_FILE, mine.key, ETCD_USER, ETCD_USER, 0o600, "etcd.key"))
    return files


def _state_script(files: list[TlsFile]) -> str:
    """Shell printing `path sha256 owner:group mode` for each file ("-" when absent)."""
    lines = []
    for f in files:
        q = shlex.quote(f.path)
        lines.append(
            f"if [ -f {q} ]; then echo {q} $(sha256sum < {q} | cut -d' ' -f1) "
            f"$(stat -c '%U:%G %a' {q}); else echo {q} -; fi"
        )
    return "; ".join(lines)


def tls_files_put(ctx: StepContext, node: Node, spec: paths.ClusterSpec) -> list[str]:
    """Write `node`'s CA certificate, certificate and key copies (see the module docstring);
    returns the labels of the files it changed ([] when all were already in place).

    The one per-node entry point: setup's `tls_files` step and the rotate job call it. Callers
    restart or reload the daemons themselves when it returns something. Keys travel as the
    upload's stdin, never on a command line, and the job log is redacted of them anyway
    (Cluster.secret_values includes every node key).
    """
    files = tls_files(spec, node)
    if not files:
        return []
    ctx.run(
        f"install -d -m 0755 -o root -g root {shlex.quote(paths.TLS_DIR)}", node=node, check=True
    )
    seen: dict[str, list[str]] = {}
    for line in ctx.output(_state_script(files), node=node, sudo=True, echo=False):
        if line.strip():
            path, *rest = line.split()
            seen[path] = rest
    changed = []
    conn = ctx.connections.get(node)
    for f in files:
        data = f.content.encode()
        want = [hashlib.sha256(data).hexdigest(), f"{f.owner}:{f.group}", f"{f.mode:o}"]
        if seen.get(f.path) == want:
            continue
        conn.upload(f.path, data, mode=f.mode, owner=f.owner, group=f.group)
        ctx.log(f"wrote {f.path} ({f.owner}:{f.group} {f.mode:o})", host=node.name)
        changed.append(f.label)
    return changed


def tls_files_step(ctx: StepContext) -> Verdict | str:
    """Setup step: put the cluster's CA, this node's certificate and its key copies in place
    before etcd and Patroni are configured to read them."""
    spec = ctx.facts["spec"]
    if spec is None or spec.tls is None:
        return "TLS is not managed by HA Center for this cluster; nothing to write"
    if ctx.node.name not in dict(spec.tls.nodes):
        raise StepFailed(f"{ctx.node.name} has no certificate in the cluster's spec")
    changed = tls_files_put(ctx, ctx.node, spec)
    if not changed:
        return "CA, certificate and keys already in place"
    return f"wrote {', '.join(changed)} in {paths.TLS_DIR}"


def tls_mark_active(ctx: StepContext, node: Node) -> None:
    """Record that `node`'s etcd and Patroni REST API now speak TLS, so workers and the
    monitor ask it over https (jobs.patroni_api reads `Node.tls_active`)."""
    if not node.tls_active:
        Node.objects.filter(pk=node.pk).update(tls_active=True)
        ctx.log(f"{node.name}: etcd and Patroni's REST API speak TLS from now on", host=node.name)
    node.tls_active = True
    # Other loaded copies of the node (the cluster's node lists) are read afresh by the
    # playbooks' own queries; the step's node is this object.
