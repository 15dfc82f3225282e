"""Config files HA Center writes to the servers: etcd, Patroni, HAProxy.

Pure functions of a `ClusterSpec` (no Django, no network, no PyYAML), so they are tested
without a database and the playbooks only have to upload the text.
"""

from jobs.configs.etcd import etcd_config, etcd_config_dict, etcd_members
from jobs.configs.haproxy import haproxy_config
from jobs.configs.patroni import (
    patroni_config,
    patroni_config_dict,
    patroni_dcs_settings,
    pg_hba_lines,
)
from jobs.configs.profiles import PROFILES, Timing, timing_for, validate_timing
from jobs.configs.spec import ClusterSpec, HttpFrontend, NodeSpec, Secrets

__all__ = [
    "PROFILES",
    "ClusterSpec",
    "HttpFrontend",
    "NodeSpec",
    "Secrets",
    "Timing",
    "etcd_config",
    "etcd_config_dict",
    "etcd_members",
    "haproxy_config",
    "patroni_config",
    "patroni_config_dict",
    "patroni_dcs_settings",
    "pg_hba_lines",
    "timing_for",
    "validate_timing",
]
