"""The lint snapshot of the configuration HA Center would generate for a cluster (preflight
lints it before setup writes anything)."""

from jobs.configs.haproxy import haproxy_config
from jobs.configs.patroni import patroni_config_dict, patroni_dcs_settings, pg_hba_lines
from jobs.configs.spec import REPLICATION_USER, ClusterSpec
from jobs.lint.parse import haproxy_write_timing, hba_from_lines
from jobs.lint.rules import ConfigSnapshot


def generated_snapshot(
    spec: ClusterSpec, *, clock_offsets: dict[str, float] | None = None
) -> ConfigSnapshot:
    """What the rules see in the files setup would write; `clock_offsets` (host -> seconds
    ahead of the console) from preflight's own clock checks, when it made them."""
    dcs = patroni_dcs_settings(spec)
    return ConfigSnapshot(
        source="generated",
        ttl=dcs["ttl"],
        loop_wait=dcs["loop_wait"],
        retry_timeout=dcs["retry_timeout"],
        maximum_lag_on_failover=dcs["maximum_lag_on_failover"],
        synchronous_mode=bool(dcs["synchronous_mode"]),
        synchronous_mode_strict=bool(dcs["synchronous_mode_strict"]),
        members={n.name: n.address for n in spec.database_nodes},
        replication_user=REPLICATION_USER,
        hba=hba_from_lines(pg_hba_lines(spec)),
        haproxy=haproxy_write_timing(haproxy_config(spec)),
        watchdog={
            n.name: str(patroni_config_dict(spec, n)["watchdog"]["mode"])
            for n in spec.database_nodes
        },
        clock_offsets=dict(clock_offsets or {}),
        etcd_members=tuple((m.name, m.address) for m in spec.etcd_members),
    )
