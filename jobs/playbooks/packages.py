"""Packages from apt on a node: which ones setup installs, whether apt can find them, installing.

Cloud and container images ship with empty package lists, and lists left alone for weeks name
versions the mirror no longer has: both make `apt-get install` fail with "Unable to locate
package". So the lists are refreshed when they are missing, old, or lack a wanted package.
A cluster's APT proxy is passed on each apt command (`-o Acquire::http::Proxy=`): nothing is
written to the server's apt configuration.
"""

import shlex

from clusters.inventory.fence_methods import METHODS
from clusters.models import Cluster, FenceDevice, Node
from jobs.configs.spec import ClusterSpec
from jobs.playbooks.base import StepContext, StepFailed
from jobs.ssh_results import CommandTimeout

PACKAGES = {
    Node.Kind.DATABASE: ["postgresql-{version}", "python3", "python3-venv"],
    Node.Kind.PROXY: ["haproxy"],
}
ETCD_PACKAGES = ["etcd-server", "etcd-client"]
# When the cluster is backed up: on the database nodes (archive_command) and the repository.
BACKUP_PACKAGE = "pgbackrest"
# Lists older than this are refreshed before an install: point releases replace .debs.
LISTS_MAX_AGE_MIN = 6 * 60
LISTS_DIR = "/var/lib/apt/lists"
# apt-get update's limit per attempt, and how many attempts: a slow but moving update still
# gets the 10 minutes it had before in all.
REFRESH_TIMEOUT_S = 300
REFRESH_ATTEMPTS = 2
# A fetch that fails is an error, not a warning (apt-get update exits 0 on one by default); apt
# waits for a lock held by Debian's apt-daily timers instead of failing at once; no HTTP
# pipelining, which proxies mishandle (seen through apt-cacher-ng: the proxy closed a pipelined
# connection and apt-get update waited on it for minutes), and a stalled fetch times out and is
# retried instead of hanging.
APT_COMMON = (
    "-o APT::Update::Error-Mode=any -o DPkg::Lock::Timeout=300 "
    "-o Acquire::http::Pipeline-Depth=0 -o Acquire::http::Timeout=30 -o Acquire::Retries=3"
)
# The origins in `apt-cache policy` ("http://deb.debian.org/debian bookworm/main"), one a line.
ORIGINS = "awk '$1 ~ /^[0-9]+$/ && NF >= 3 {print $2, $3}' | sort -u"
# Private lists and caches for preflight's look-ahead, so a check changes nothing on the node.
SCRATCH_OPTIONS = (
    '-o Dir::State::Lists="$d/lists" -o Dir::Cache="$d/cache" '
    "-o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache="
)


def wanted(spec: ClusterSpec, node: Node) -> list[str]:
    """The packages this node needs for its role in the cluster."""
    names = [p.format(version=spec.postgres_version) for p in PACKAGES[node.kind]]
    if node.name in {m.name for m in spec.etcd_members}:
        names += ETCD_PACKAGES
    if spec.backup_stanza and (node.kind == Node.Kind.DATABASE or node.name == spec.backup_repo):
        names.append(BACKUP_PACKAGE)
    if spec.virtual_ip and node.kind == Node.Kind.PROXY:
        names.append("keepalived")  # VRRP moves the floating address between the proxies
    names += [p for p in fence_packages(node) if p not in names]
    return names


def fence_packages(node: Node) -> list[str]:
    """On the witness (the first proxy), the fence agents of the cluster's fence devices:
    they run there, beside the fast-path agent, so the console is not needed to fence."""
    cluster_id = getattr(node, "cluster_id", None)
    if node.kind != Node.Kind.PROXY or cluster_id is None:
        return []
    # Cluster.proxy_node's choice: the first proxy by name.
    witness = Node.objects.filter(cluster_id=cluster_id, kind=Node.Kind.PROXY).first()
    if witness is None or witness.pk != node.pk:
        return []
    names: list[str] = []
    for method in FenceDevice.objects.filter(node__cluster=cluster_id).values_list(
        "method", flat=True
    ):
        names += [p for p in METHODS[method].packages if p not in names]
    return names


def apt_options(cluster: Cluster) -> str:
    """apt's command-line options: the common ones, and the cluster's proxy when it has one."""
    if not cluster.apt_proxy:
        return APT_COMMON
    return f"{APT_COMMON} " + shlex.quote(f"-oAcquire::http::Proxy={cluster.apt_proxy}")


def not_installed(ctx: StepContext, packages: list[str]) -> list[str]:
    """The packages dpkg does not have installed on the step's node."""
    names = " ".join(shlex.quote(p) for p in packages)
    lines = ctx.output(
        f"for p in {names}; do dpkg-query -W -f='${{Status}}\\n' \"$p\" 2>/dev/null "
        '| grep -q "install ok installed" || echo "$p"; done',
        echo=False,
    )
    return [p for p in lines if p in packages]


def unavailable(ctx: StepContext, packages: list[str]) -> list[str]:
    """The packages apt has no installation candidate for."""
    lines = ctx.output(unavailable_script(packages, ""), echo=False)
    return [p for p in lines if p in packages]


def unavailable_script(packages: list[str], options: str) -> str:
    """Shell printing each package `apt-cache policy` (with these options) has no candidate for."""
    names = " ".join(shlex.quote(p) for p in packages)
    return (
        f'for p in {names}; do c=$(apt-cache {options} policy "$p" 2>/dev/null '
        "| awk '/Candidate:/ {print $2}'); "
        '{ [ -n "$c" ] && [ "$c" != "(none)" ]; } || echo "$p"; done'
    )


def lists_age_minutes(ctx: StepContext) -> int | None:
    """Minutes since apt's package lists were last fetched; None when there are none."""
    lines = ctx.output(
        f"ls -t {LISTS_DIR}/*_Packages* 2>/dev/null | head -n 1 | xargs -r stat -c %Y; date +%s",
        echo=False,
    )
    if len(lines) < 2:
        return None
    return max(0, (int(lines[1]) - int(lines[0])) // 60)


def sources(ctx: StepContext) -> str:
    """Where apt looks, as it reports it ("http://deb.debian.org/debian bookworm/main", ...)."""
    lines = ctx.output(f"apt-cache policy 2>/dev/null | {ORIGINS}", echo=False, sudo=True)
    return ", ".join(lines) or "no package index has been fetched"


def apt_failure(result_tail: list[str]) -> str:
    """apt's own error lines ("E: ...", "W: Failed to fetch ..."), the last few of them."""
    said = [line.strip() for line in result_tail if line.strip()[:2] in ("E:", "W:", "Er")]
    return " | ".join((said or result_tail or ["no output"])[-3:])[-400:]


def proxy_hint(cluster: Cluster) -> str:
    if cluster.apt_proxy:
        return f" (through the cluster's APT proxy {cluster.apt_proxy})"
    return "; if the servers reach their mirror only through a proxy, set the cluster's APT proxy"


def run_update(ctx: StepContext, command: str, lines: list[str], echo: bool = True):
    """Run a command whose slow part is `apt-get update`; one that has not ended after
    REFRESH_TIMEOUT_S is killed and run once more: a fetch can stall for good behind a proxy
    (seen in the systemd lab: one host's apt-get update waited 10 minutes on a list
    apt-cacher-ng served the two others at once, apt's own 30 s timeout never firing), and a
    fresh run fetches it in seconds. `lines` receives the last attempt's output."""
    for attempt in range(1, REFRESH_ATTEMPTS + 1):
        lines.clear()
        try:
            return ctx.run(command, timeout=REFRESH_TIMEOUT_S, echo=echo, collect=lines)
        except CommandTimeout:
            if attempt == REFRESH_ATTEMPTS:
                raise StepFailed(
                    f"apt-get update on {ctx.node.name} did not end within "
                    f"{REFRESH_TIMEOUT_S} s, {REFRESH_ATTEMPTS} times; last line: "
                    f"{lines[-1] if lines else 'none'}{proxy_hint(ctx.cluster)}"
                ) from None
            ctx.log(
                f"apt-get update did not end within {REFRESH_TIMEOUT_S} s; killed, trying again",
                host=ctx.node.name,
            )


def refresh(ctx: StepContext) -> None:
    """`apt-get update` with the cluster's proxy; StepFailed with apt's reason when it fails."""
    lines: list[str] = []
    result = run_update(ctx, f"apt-get {apt_options(ctx.cluster)} -q update", lines)
    if not result.ok:
        raise StepFailed(
            f"apt-get update failed on {ctx.node.name}: "
            f"{apt_failure(result.stderr_tail + lines[-5:])}{proxy_hint(ctx.cluster)}"
        )


def install(ctx: StepContext, packages: list[str]) -> str:
    """Install what is missing, refreshing the lists first when needed; a verdict."""
    missing = not_installed(ctx, packages)
    if not missing:
        return f"already installed: {' '.join(packages)}"
    age = lists_age_minutes(ctx)
    refreshed = age is None or age > LISTS_MAX_AGE_MIN or bool(unavailable(ctx, missing))
    if refreshed:
        refresh(ctx)
    lost = unavailable(ctx, missing)
    if lost:
        raise StepFailed(
            f"apt cannot find {', '.join(lost)} on {ctx.node.name} "
            f"(sources: {sources(ctx)}); add a source that has them"
        )
    lines: list[str] = []
    result = ctx.run(
        f"DEBIAN_FRONTEND=noninteractive apt-get {apt_options(ctx.cluster)} install -y -q "
        "--no-install-recommends -o Dpkg::Options::=--force-confdef "
        "-o Dpkg::Options::=--force-confold " + " ".join(shlex.quote(p) for p in missing),
        timeout=1200,
        collect=lines,
    )
    if not result.ok:
        raise StepFailed(
            f"apt-get install of {', '.join(missing)} failed on {ctx.node.name}: "
            f"{apt_failure(result.stderr_tail + lines[-5:])}"
        )
    return f"installed {', '.join(missing)}" + (" (package lists refreshed)" if refreshed else "")


def lookahead_script(packages: list[str], cluster: Cluster) -> str:
    """Shell: fetch fresh package lists into a temporary directory (removed at exit), then print
    each package apt still has no candidate for, and the sources it looked in."""
    options = f"{SCRATCH_OPTIONS} {apt_options(cluster)}"
    return "\n".join(
        [
            "d=$(mktemp -d) && trap 'rm -rf \"$d\"' EXIT",
            'mkdir -p "$d/lists/partial" "$d/cache/archives/partial"',
            # apt downloads as its sandbox user _apt, which must reach the lists directory
            'chmod 755 "$d" && { chown _apt "$d/lists/partial" 2>/dev/null || true; }',
            f"apt-get {options} -q update >/dev/null || exit $?",
            unavailable_script(packages, options),
            f'echo "sources: $(apt-cache {options} policy 2>/dev/null | {ORIGINS} | paste -sd, -)"',
        ]
    )


def preview(ctx: StepContext, packages: list[str]) -> str:
    """Preflight's look-ahead: what setup will install and whether apt can find it all.

    When the node's own lists lack a package, they are fetched into a private temporary
    directory and asked again, so the check itself changes nothing on the node.
    """
    missing = not_installed(ctx, packages)
    if not missing:
        return f"all installed: {' '.join(packages)}"
    if not unavailable(ctx, missing):
        return f"setup will install {', '.join(missing)}; apt finds them all"
    lines: list[str] = []
    result = run_update(ctx, lookahead_script(missing, ctx.cluster), lines, echo=False)
    if not result.ok:
        raise StepFailed(
            f"setup must install {', '.join(missing)}, but apt-get update fails here: "
            f"{apt_failure(result.stderr_tail)}{proxy_hint(ctx.cluster)}"
        )
    lost = [line for line in lines if line in missing]
    origins = next((line for line in lines if line.startswith("sources: ")), "sources: ")
    if lost:
        raise StepFailed(
            f"apt cannot find {', '.join(lost)} in this node's apt sources "
            f"({origins.removeprefix('sources: ') or 'none'}); add a source that has them"
        )
    return (
        f"setup will install {', '.join(missing)}; apt finds them once its package lists are "
        "refreshed (setup runs apt-get update)"
    )
