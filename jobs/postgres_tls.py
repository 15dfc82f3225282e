"""libpq's TLS settings for the console's own connections to a cluster's PostgreSQL.

A node that serves the cluster's certificate (`Node.tls_active`: setup set it once the node's
daemons, PostgreSQL included, run with the cluster's TLS files) is checked with
`sslmode=verify-full` against the cluster's CA: the certificate must be the CA's and name the
address connected to. Before that (a cluster built before TLS, until setup converts it, or an
adopted Patroni cluster whose certificates are not ours) `sslmode=prefer`: TLS when the server
offers it, as libpq does by default, so those clusters keep working. The cluster's CA alone is
not the sign: setup makes it before any node has its files.

libpq reads `sslrootcert` from a file, so each CA is written once per worker process's user
into a private directory (0700, checked, never followed through a link): a CA file another
local user could replace would let them answer for the cluster.
"""

import contextlib
import hashlib
import os
import stat
import tempfile
import threading
from collections.abc import Iterable

from clusters.models import Cluster, Node

VERIFY_FULL = "verify-full"
PREFER = "prefer"

_LOCK = threading.Lock()
_FILES: dict[str, str] = {}  # sha256 of the CA's PEM -> its file


class UnsafeCaDirectory(RuntimeError):
    """The directory for CA files exists but is not this user's private directory."""


def ca_directory() -> str:
    """The private directory the CA files go in (made 0700 on first use)."""
    path = os.path.join(tempfile.gettempdir(), f"hacenter-ca-{os.getuid()}")
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, 0o700)
    found = os.lstat(path)
    if (
        not stat.S_ISDIR(found.st_mode)
        or found.st_uid != os.getuid()
        or stat.S_IMODE(found.st_mode) & 0o077
    ):
        raise UnsafeCaDirectory(
            f"{path} is not a directory only this user can write (mode 0700): remove it"
        )
    return path


def ca_file(ca_certificate: str) -> str:
    """The path of a file holding `ca_certificate` (PEM), for libpq's `sslrootcert`."""
    digest = hashlib.sha256(ca_certificate.encode()).hexdigest()
    with _LOCK:
        known = _FILES.get(digest)
        if known is not None and os.path.isfile(known):
            return known
        directory = ca_directory()
        path = os.path.join(directory, f"{digest[:40]}.crt")
        # Written beside and renamed: a reader (another worker process) never sees half a file.
        fd, partial = tempfile.mkstemp(dir=directory, suffix=".partial")
        try:
            with os.fdopen(fd, "w") as out:
                out.write(ca_certificate)
            os.replace(partial, path)
        except BaseException:
            if os.path.exists(partial):
                os.unlink(partial)
            raise
        _FILES[digest] = path
        return path


def _verify(cluster: Cluster) -> dict[str, str]:
    return {"sslmode": VERIFY_FULL, "sslrootcert": ca_file(cluster.ca_certificate)}


def node_tls(node: Node) -> dict[str, str]:
    """libpq parameters for a direct connection to `node`'s PostgreSQL."""
    cluster = node.cluster
    if cluster.ca_certificate and node.tls_active:
        return _verify(cluster)
    return {"sslmode": PREFER}


def proxy_tls(cluster: Cluster, database_nodes: Iterable[Node] | None = None) -> dict[str, str]:
    """libpq parameters for a connection through the cluster's proxy (or to several of its
    nodes at once): the proxy passes TLS through to whichever node is primary, whose
    certificate also names the proxy's address; verified only once every database node
    serves the cluster's certificate, since any of them may be the one answering."""
    nodes = list(database_nodes if database_nodes is not None else cluster.database_nodes)
    if cluster.ca_certificate and nodes and all(n.tls_active for n in nodes):
        return _verify(cluster)
    return {"sslmode": PREFER}
