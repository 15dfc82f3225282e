"""A stored reading of a two-node cluster's parameters, as jobs.playbooks.parameters keeps it
(PostgreSQL 15's pg_settings rows, trimmed to the ones the tests change)."""

from tests.unit.jobs.test_parameter_rules import CATALOG

SNAPSHOT = {
    "primary": "node1",
    "catalog": {**CATALOG, "primary_conninfo": {"vartype": "string", "context": "sighup"}},
    "nodes": {
        "node1": {
            "shared_buffers": {"setting": "16384", "pending_restart": False},
            "work_mem": {"setting": "4096", "pending_restart": False},
            "primary_conninfo": {"setting": None, "pending_restart": False},
        },
        "node2": {
            "shared_buffers": {"setting": "16384", "pending_restart": True},
            "work_mem": {"setting": "4096", "pending_restart": False},
        },
    },
}
