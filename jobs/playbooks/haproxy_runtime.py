"""HAProxy's runtime API on the proxy host (fence, rebuild, switchover, the TLS conversion), in
a module that imports no playbook, so setup's steps can use it too (fence imports setup)."""

import shlex

from clusters.models import Node
from jobs.configs import spec as paths
from jobs.playbooks.base import StepContext

# The backends with a server line per database node (jobs.configs.haproxy).
BACKENDS = ("primary", "be_replicas", "be_replicas_fallback")

# Talks to HAProxy's admin socket with the node's own python3 (socat is often missing).
RUNTIME_API = (
    "import socket, sys\n"
    "def ask(command):\n"
    "    s = socket.socket(socket.AF_UNIX); s.settimeout(5); s.connect(sys.argv[1])\n"
    "    s.sendall(command.encode() + b'\\n'); out = s.makefile().read(); s.close()\n"
    "    return out\n"
    "for command in sys.argv[3:]:\n"
    "    print(ask(command).strip())\n"
    "open(sys.argv[2], 'w').write(ask('show servers state'))\n"
)


def haproxy_runtime(ctx: StepContext, proxy: Node, commands: list[str]) -> list[str]:
    """Run runtime-API commands, then save the server state so a reload keeps them."""
    argv = ["python3", "-c", RUNTIME_API, paths.HAPROXY_SOCKET, paths.HAPROXY_STATE_FILE, *commands]
    return ctx.output(shlex.join(argv), node=proxy, sudo=True)
