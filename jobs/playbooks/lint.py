"""The "lint" job: read the live configuration from a cluster's servers and judge it with the
lint rules (jobs/lint/). Changes nothing on the servers; stores its findings on the cluster.

What it reads: Patroni's dynamic settings (`GET /config`), the primary's effective pg_hba
(`pg_hba_file_rules`) and WAL rate, each member's Patroni YAML (watchdog) and clock, HAProxy's
config on the proxy, and etcd's member list. A source that does not answer is left out (its
rules are skipped) and named in the verdict, rather than failing the job.
"""

import json
import shlex
import time

from django.conf import settings
from django.utils import timezone

from clusters.models import Cluster, Node
from jobs import patroni_api
from jobs.configs.spec import HAPROXY_CONFIG
from jobs.errors import JobRefused
from jobs.lint.parse import haproxy_write_timing, hba_from_file_rules
from jobs.lint.rules import ERROR, WARNING, ConfigSnapshot, Finding, lint
from jobs.playbooks.base import Playbook, StepContext, StepSpec, Verdict
from jobs.playbooks.layout import patroni_layout
from jobs.playbooks.patroni_files import read_config
from jobs.playbooks.setup_postgres import members
from jobs.playbooks.sql import psql

HBA_SQL = (
    "SELECT type, database, user_name, coalesce(address, ''), coalesce(netmask, ''), "
    "auth_method, coalesce(error, '') FROM pg_hba_file_rules ORDER BY line_number;"
)
WAL_SAMPLE_S = 3
WAL_SQL = (
    f"SELECT pg_current_wal_lsn() - '0/0'; SELECT pg_sleep({WAL_SAMPLE_S}); "
    "SELECT pg_current_wal_lsn() - '0/0';"
)


def plan(cluster: Cluster, node: Node | None, params: dict) -> list[StepSpec]:
    if cluster.state in (Cluster.State.NEW, Cluster.State.PROVISIONING):
        raise JobRefused(f"{cluster.name} is not set up yet; preflight lints what setup writes")
    return [StepSpec("lint", "Check the configuration")]


def _dynamic(ctx: StepContext, notes: list[str]) -> dict:
    for node in ctx.cluster.database_nodes:
        try:
            return patroni_api.config(node, timeout=3)
        except patroni_api.PatroniUnavailable:
            continue
    notes.append("no Patroni answered GET /config")
    return {}


def _primary(ctx: StepContext) -> Node | None:
    leader = patroni_api.leader(members(ctx))
    return ctx.cluster.nodes.filter(name=leader["name"]).first() if leader else None


def _hba_and_wal(ctx: StepContext, notes: list[str]) -> tuple[tuple | None, float | None]:
    primary = _primary(ctx)
    if primary is None:
        notes.append("no primary: pg_hba and the WAL rate not read")
        return None, None
    hba = hba_from_file_rules(psql(ctx, primary, HBA_SQL, echo=False, check=False))
    started = time.monotonic()
    lines = psql(ctx, primary, WAL_SQL, echo=False, check=False)
    elapsed = time.monotonic() - started
    positions = [int(float(line)) for line in lines if line.strip().replace(".", "").isdigit()]
    rate = None
    if len(positions) == 2:
        # The elapsed time includes the SSH round trip; the sleep is the part that counts.
        rate = (positions[1] - positions[0]) / max(WAL_SAMPLE_S, min(elapsed, WAL_SAMPLE_S + 1))
    else:
        notes.append("the WAL rate could not be measured")
    return (hba or None), rate


def _haproxy(ctx: StepContext, notes: list[str]):
    proxy = ctx.cluster.proxy_node
    if proxy is None:
        return None
    lines: list[str] = []
    # It holds the stats password: read with sudo, never echoed.
    result = ctx.run(
        f"cat {shlex.quote(HAPROXY_CONFIG)}", node=proxy, echo=False, collect=lines, sudo=True
    )
    timing = haproxy_write_timing("\n".join(lines)) if result.ok else None
    if timing is None:
        notes.append(f"no write backend following Patroni found in {proxy.name}'s HAProxy")
    return timing


def _watchdogs(ctx: StepContext, notes: list[str]) -> tuple[dict, dict]:
    layout = patroni_layout(ctx.cluster)
    modes, devices = {}, {}
    for node in ctx.cluster.database_nodes:
        config = read_config(ctx, node, layout.config_path, [layout.python])
        if config is None:
            notes.append(f"{node.name}'s Patroni configuration unreadable")
            continue
        mode = (config.get("watchdog") or {}).get("mode", "off")
        modes[node.name] = "off" if mode is False else str(mode)
        devices[node.name] = ctx.run("[ -e /dev/watchdog ]", node=node, echo=False).ok
    return modes, devices


def clock_offsets(ctx: StepContext) -> dict[str, float]:
    """Each node's clock against the console's (the round trip's midpoint)."""
    offsets = {}
    for node in ctx.cluster.nodes.all():
        before = time.time()
        lines = ctx.output("date +%s.%N", node=node, echo=False)
        after = time.time()
        try:
            offsets[node.name] = float(lines[-1]) - (before + after) / 2
        except (IndexError, ValueError):
            continue
    return offsets


def etcd_members(ctx: StepContext, notes: list[str]) -> tuple[tuple[str, str], ...] | None:
    """etcd's member list as (name, peer host), asked on the first node with etcdctl."""
    layout = patroni_layout(ctx.cluster)
    command = layout.etcdctl("member", "list", "-w", "json")
    # With TLS the client key is readable by root (and postgres) only.
    sudo = layout.etcd_protocol == "https"
    nodes = sorted(ctx.cluster.nodes.all(), key=lambda n: n.kind != Node.Kind.PROXY)
    for node in nodes:
        lines: list[str] = []
        if not ctx.run(command, node=node, echo=False, collect=lines, sudo=sudo).ok:
            continue
        try:
            listed = json.loads("\n".join(lines)).get("members", [])
        except ValueError:
            continue
        found = []
        for member in listed:
            url = (member.get("peerURLs") or [""])[0]
            host = url.split("://", 1)[-1].rsplit(":", 1)[0].strip("[]")
            found.append((member.get("name") or host, host))
        return tuple(found)
    notes.append("etcd's member list unreadable (no etcdctl answered)")
    return None


def patroni_versions(ctx: StepContext) -> dict[str, str]:
    """Each member's Patroni version, from its own GET /patroni (members that do not answer
    are left out)."""
    versions = {}
    for node in ctx.cluster.database_nodes:
        try:
            _, me = patroni_api.member(node, timeout=3)
        except patroni_api.PatroniUnavailable:
            continue
        version = (me.get("patroni") or {}).get("version")
        if isinstance(version, str) and version:
            versions[node.name] = version
    return versions


def live_snapshot(ctx: StepContext) -> tuple[ConfigSnapshot, list[str]]:
    """Everything the rules read, from the servers; and what could not be read."""
    notes: list[str] = []
    layout = patroni_layout(ctx.cluster)
    dynamic = _dynamic(ctx, notes)
    hba, rate = _hba_and_wal(ctx, notes)
    modes, devices = _watchdogs(ctx, notes)

    def number(key: str) -> int | None:
        value = dynamic.get(key)
        return (
            int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
        )

    # Patroni's defaults where /config leaves a setting out.
    snapshot = ConfigSnapshot(
        source="live",
        ttl=number("ttl") or (30 if dynamic else None),
        loop_wait=number("loop_wait") or (10 if dynamic else None),
        retry_timeout=number("retry_timeout") or (10 if dynamic else None),
        maximum_lag_on_failover=number("maximum_lag_on_failover") or (1048576 if dynamic else None),
        synchronous_mode=bool(dynamic.get("synchronous_mode")),
        synchronous_mode_strict=bool(dynamic.get("synchronous_mode_strict")),
        members={n.name: n.address for n in ctx.cluster.database_nodes},
        replication_user=layout.replication_user,
        hba=hba,
        haproxy=_haproxy(ctx, notes),
        wal_bytes_per_s=rate,
        watchdog=modes,
        watchdog_device=devices,
        clock_offsets=clock_offsets(ctx),
        etcd_members=etcd_members(ctx, notes),
        patroni_versions=patroni_versions(ctx),
    )
    return snapshot, notes


def findings_store(cluster: Cluster, findings: list[Finding]) -> None:
    """The findings on the cluster, for its page and its API answer."""
    Cluster.objects.filter(pk=cluster.pk).update(
        config_findings=[f.as_dict() for f in findings], config_checked=timezone.now()
    )


def verdict_for(findings: list[Finding], notes: list[str]) -> Verdict:
    """One line: how many errors and warnings, the first error, what was not read."""
    errors = [f for f in findings if f.severity == ERROR]
    warnings = [f for f in findings if f.severity == WARNING]
    text = f"{len(errors)} error(s), {len(warnings)} warning(s)"
    if errors:
        text += f"; first: {errors[0].message}"
    if notes:
        text += f" (not checked: {'; '.join(notes)})"
    return Verdict(text[:480], warning=bool(errors or warnings or notes))


def lint_step(ctx: StepContext) -> Verdict | str:
    """Read the live configuration, lint it and store the findings on the cluster."""
    for value in ctx.cluster.secret_values():
        ctx.log_writer.redact.add(value)
    snapshot, notes = live_snapshot(ctx)
    findings = lint(snapshot, max_clock_skew_s=settings.PREFLIGHT_MAX_CLOCK_SKEW_S)
    for f in findings:
        ctx.log(f"{f.severity}: {f.rule}: {f.message} {f.consequence}")
    findings_store(ctx.cluster, findings)
    return verdict_for(findings, notes)


PLAYBOOK = Playbook(kind="lint", plan=plan, steps={"lint": lint_step}, mutating=False)
