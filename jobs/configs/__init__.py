"""Config files HA Center writes to the servers: etcd, Patroni, HAProxy.

Pure functions of a `ClusterSpec` (no Django, no network, no PyYAML), so they are tested
without a database and the playbooks only have to upload the text.
"""

from .etcd import etcd_config, etcd_config_dict, etcd_members
from .haproxy import haproxy_config
from .patroni import patroni_config, patroni_config_dict, patroni_dcs_settings, pg_hba_lines
from .profiles import PROFILES, Timing, timing_for, validate_timing
from .spec import ClusterSpec, HttpFrontend, NodeSpec, Secrets

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
