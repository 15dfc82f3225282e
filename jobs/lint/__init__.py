"""Configuration lint: rules across Patroni, etcd, HAProxy and PostgreSQL that no single tool
checks, as pure functions of a `ConfigSnapshot` (rules), what the snapshot is built from
(`parse`: HAProxy config text, pg_hba rules; `generated`: the configs HA Center would write).
The live snapshot is read by the "lint" job (jobs/playbooks/lint.py)."""

from jobs.lint.rules import ConfigSnapshot, Finding, HaproxyTiming, HbaRule, lint

__all__ = ["ConfigSnapshot", "Finding", "HaproxyTiming", "HbaRule", "lint"]
