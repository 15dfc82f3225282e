"""The procedures HA Center runs, one module each; `get_playbook` finds one by job kind."""

from importlib import import_module

from django.conf import settings

from jobs.errors import JobRefused
from jobs.playbooks import (
    adopt,
    backups,
    failover,
    failover_drill,
    fence,
    fence_test,
    lint,
    nodes,
    operations,
    parameters,
    preflight,
    rebuild,
    remove,
    restart,
    restore,
    restore_drill,
    rotate_certificates,
    setup,
    upgrade,
    versions,
)
from jobs.playbooks.base import Playbook


def _registry() -> dict[str, Playbook]:
    playbooks = [
        preflight.PLAYBOOK,
        setup.PLAYBOOK,
        remove.PLAYBOOK,
        fence.PLAYBOOK,
        fence_test.PLAYBOOK,
        operations.SWITCHOVER,
        operations.MAINTENANCE_ON,
        operations.MAINTENANCE_OFF,
        rebuild.PLAYBOOK,
        restart.PLAYBOOK,
        failover.PLAYBOOK,
        nodes.ADD_NODE,
        nodes.REPLACE_NODE,
        nodes.REMOVE_NODE,
        lint.PLAYBOOK,
        adopt.PLAYBOOK,
        rotate_certificates.PLAYBOOK,
        parameters.READ_PARAMETERS,
        parameters.CHANGE_PARAMETERS,
        versions.PLAYBOOK,
        upgrade.PLAYBOOK,
        backups.CONFIGURE,
        backups.BACKUP,
        restore.RESTORE_POINT,
        restore.RESTORE,
        restore_drill.PLAYBOOK,
        failover_drill.PLAYBOOK,
    ]
    # Extra modules with a PLAYBOOK each; the test suite adds one that runs given commands.
    for module in getattr(settings, "HACENTER_EXTRA_PLAYBOOKS", []):
        playbooks.append(import_module(module).PLAYBOOK)
    return {p.kind: p for p in playbooks}


def get_playbook(kind: str) -> Playbook:
    """The playbook for a job kind; raises JobRefused when there is none."""
    playbooks = _registry()
    if kind not in playbooks:
        known = ", ".join(sorted(playbooks))
        raise JobRefused(f"unknown job kind {kind!r}; this console runs: {known}")
    return playbooks[kind]


def known_kinds() -> list[str]:
    return sorted(_registry())
