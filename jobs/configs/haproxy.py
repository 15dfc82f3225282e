"""The HAProxy config of the proxy host: Debian 12's HAProxy 2.6 and Debian 13's 3.0 both take it
as it is (`haproxy -c`, and the systemd lab's test of a customer's day on each release).

Writes go to whichever node Patroni's REST API calls primary (`OPTIONS /primary` answers 200
only on the leader-key holder), reads to the replicas, with the primary as the fallback when no
replica is up. IPv6 addresses are written as `[addr]:port`, which HAProxy 2.6 reads as an
address and port (`haproxy -c` accepts it; a test checks both families).

With the cluster's TLS (`spec.tls`), Patroni's REST API speaks https: every check to it is
TLS (`check-ssl`, or `ssl` on an `http-check connect` rule), verifies the chain against the
cluster's CA (`verify required ca-file`) and the node's name against the certificate's DNS SAN
(`verifyhost`). The database and application traffic itself stays plain TCP passthrough.
"""

import re

from jobs.configs.spec import (
    HAPROXY_SOCKET,
    HAPROXY_STATE_FILE,
    HEALTH_PORT,
    PATRONI_PORT,
    POSTGRES_PORT,
    REPLICA_PORT,
    STATS_PORT,
    STATS_USER,
    TLS_CA_FILE,
    ClusterSpec,
    HttpFrontend,
    NodeSpec,
    header,
    host_port,
)

# What `secrets.token_urlsafe` produces (the console's passwords); anything else could end the
# `stats auth` word early (space), start a comment (#) or need quoting.
_STATS_PASSWORD_RE = re.compile(r"^[A-Za-z0-9_-]+$")
# Paths go into the config unquoted.
_PATH_RE = re.compile(r"^/[A-Za-z0-9._/-]+$")

# Checks every second; two failures take a server out, two successes bring it back. With
# shutdown-sessions, clients of a demoted primary are cut at once instead of writing into a
# read-only or fenced node until their own timeout.
# The stats answers' header naming the proxy that answered (with a floating address).
NODE_HEADER = "X-Hacenter-Node"
DEFAULT_SERVER = "default-server inter 1s fall 2 rise 2 on-marked-down shutdown-sessions"
SERVER_MAXCONN = 500


def _patroni_check(endpoint: str) -> list[str]:
    """Ask Patroni's REST API, not PostgreSQL: only Patroni knows who holds the leader key."""
    return [
        "option httpchk",
        f"http-check send meth OPTIONS uri {endpoint}",
        "http-check expect status 200",
        DEFAULT_SERVER,
    ]


def _servers(
    spec: ClusterSpec,
    port: int,
    ca_file: str,
    maxconn: bool = True,
    check_port: int | None = PATRONI_PORT,
) -> list[str]:
    """One server line per database node; `check_port` None leaves the port (and TLS) to the
    `http-check connect` rules, which still verify with the server line's CA and name."""
    limit = f" maxconn {SERVER_MAXCONN}" if maxconn else ""
    check = f" check port {check_port}" if check_port else " check"
    lines = []
    for node in spec.database_nodes:
        tls = ""
        if spec.tls is not None:
            # check-ssl only where the whole check goes to Patroni; the rules' own `ssl` else.
            tls = (" check-ssl" if check_port else "") + (
                f" verify required ca-file {ca_file} verifyhost {node.name}"
            )
        lines.append(f"server {node.name} {host_port(node.address, port)}{limit}{check}{tls}")
    return lines


def _section(title: str, lines: list[str]) -> list[str]:
    return ["", title, *(f"    {line}" for line in lines)]


def haproxy_config(
    spec: ClusterSpec,
    *,
    socket_path: str = HAPROXY_SOCKET,
    state_file: str = HAPROXY_STATE_FILE,
    ca_file: str = TLS_CA_FILE,
    node: NodeSpec | None = None,
) -> str:
    """The whole `haproxy.cfg` for the proxy host `node` (the first proxy by default).

    `socket_path`, `state_file` and `ca_file` are parameters so tests can point them at a
    temporary directory (`haproxy -c` reads the CA); the playbook keeps the defaults.

    With a floating address (two proxies) every listener also binds it, `transparent` so the
    proxy that does not hold it binds it all the same and serves it the moment keepalived
    moves it here; the stats page names the node (`stats show-node`), which is how the monitor
    tells which proxy answers on the floating address; and a loopback `monitor-uri` listener
    answers keepalived's check.
    """
    if not _STATS_PASSWORD_RE.match(spec.secrets.haproxy_stats):
        raise ValueError(
            "The HAProxy stats password must be URL-safe letters, digits, '-' and '_' only: "
            "it is written unquoted into a `stats auth` line."
        )
    for path in (socket_path, state_file, ca_file):
        if not _PATH_RE.match(path):
            raise ValueError(f"{path!r} is not an absolute path of safe characters.")
    here = node or spec.proxy
    if here not in spec.proxies:
        raise ValueError(f"{here.name} is not a proxy of {spec.name}.")
    proxy = here.address
    vip = spec.virtual_address

    def vip_bind(port: int) -> list[str]:
        return [f"bind {host_port(vip, port)} transparent"] if vip else []

    def binds(port: int) -> list[str]:
        # Loopback too, so applications on the proxy host itself can use the endpoints.
        return [f"bind {host_port(proxy, port)}", *vip_bind(port), f"bind 127.0.0.1:{port}"]

    lines = [header(spec)]
    lines += _section(
        "global",
        [
            # No syslog is assumed on the host: stderr reaches the journal or the process log.
            "log stderr format raw local0",
            "maxconn 4000",
            # Drop root after binding; the Debian package creates this user.
            "user haproxy",
            "group haproxy",
            # Level admin: the console disables (fences) servers through this socket;
            # expose-fd listeners lets a reload take over the sockets without dropping clients.
            f"stats socket {socket_path} mode 660 level admin expose-fd listeners",
            # Runtime state (a fenced server) is dumped here before a reload and read back.
            f"server-state-file {state_file}",
        ],
    )
    lines += _section(
        "defaults",
        [
            "mode tcp",
            # Log server state changes and failed connections, not every normal session.
            "log global",
            "option dontlog-normal",
            "load-server-state-from-file global",
            "timeout connect 4s",
            # Long, because database sessions idle between transactions.
            "timeout client 30m",
            "timeout server 30m",
            "timeout check 2s",
            "retries 2",
        ],
    )
    lines += _section(
        "listen primary",
        [
            *binds(POSTGRES_PORT),
            *_patroni_check("/primary"),
            *_servers(spec, POSTGRES_PORT, ca_file),
        ],
    )
    lines += _section(
        "frontend replicas",
        [
            *binds(REPLICA_PORT),
            # Reads go to the primary when no replica is up, rather than failing.
            "use_backend be_replicas if { nbsrv(be_replicas) gt 0 }",
            "default_backend be_replicas_fallback",
        ],
    )
    lines += _section(
        "backend be_replicas",
        [
            "balance roundrobin",
            *_patroni_check("/replica"),
            *_servers(spec, POSTGRES_PORT, ca_file),
        ],
    )
    lines += _section(
        "backend be_replicas_fallback",
        [*_patroni_check("/primary"), *_servers(spec, POSTGRES_PORT, ca_file)],
    )
    lines += _section(
        "listen stats",
        [
            f"bind {host_port(proxy, STATS_PORT)}",
            *vip_bind(STATS_PORT),
            "mode http",
            "stats enable",
            "stats uri /",
            "stats refresh 5s",
            # The node's name on the page and in a header of every stats answer: the monitor
            # reads the stats through the floating address and learns who holds it.
            *(
                [
                    f"stats show-node {here.name}",
                    f"http-after-response set-header {NODE_HEADER} {here.name}",
                ]
                if vip
                else []
            ),
            f"stats auth {STATS_USER}:{spec.secrets.haproxy_stats}",
        ],
    )
    if vip:
        lines += _section(
            "frontend keepalived_check",
            [f"bind 127.0.0.1:{HEALTH_PORT}", "mode http", "monitor-uri /"],
        )
    for frontend in spec.http_frontends:
        lines += _section(
            f"listen app_{frontend.listen_port}",
            [
                f"bind {host_port(proxy, frontend.listen_port)}",
                *vip_bind(frontend.listen_port),
                # TCP, so the application's own TLS and HTTP pass through untouched.
                "mode tcp",
                *_application_check(frontend, tls=spec.tls is not None),
                *_servers(
                    spec,
                    frontend.app_port,
                    ca_file,
                    maxconn=False,
                    check_port=None if frontend.check_path else PATRONI_PORT,
                ),
            ],
        )
    return "\n".join(lines) + "\n"


def _application_check(frontend: HttpFrontend, *, tls: bool) -> list[str]:
    """Patroni's /primary, and then, with a check path, the application's own answer.

    HAProxy 2.2+ runs the `http-check` rules of one backend as one sequence, each `connect`
    opening a new connection: a server is UP only when every step passes, so when it is the
    primary (8008) AND its application answers the path with 2xx/3xx on the application's
    port. A primary whose application is down or still starting gets no users, and neither
    does a standby whose application was left running.
    """
    if not frontend.check_path:
        return _patroni_check("/primary")
    return [
        "option httpchk",
        # `ssl` here (not check-ssl on the server, which would also cipher the application's
        # step): verified with the server line's `verify`, `ca-file` and `verifyhost`.
        f"http-check connect port {PATRONI_PORT}" + (" ssl" if tls else ""),
        "http-check send meth OPTIONS uri /primary",
        "http-check expect status 200",
        # No port: the server's own, the application's.
        "http-check connect",
        # HTTP/1.1 with a Host, which some frameworks insist on.
        f"http-check send meth GET uri {frontend.check_path} ver HTTP/1.1 hdr Host localhost",
        "http-check expect status 200-399",
        DEFAULT_SERVER,
    ]
