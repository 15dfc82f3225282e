"""Which way Patroni copied a standby: restored from the backup repository (pgBackRest) or
copied from the primary (pg_basebackup). A demanding admin wants to know which one a Rebuild
or a new node used, and why the repository was passed over when it was.

Two witnesses: the new data directory's backup_label (backup_label.old once PostgreSQL has
started), whose LABEL line each tool writes its own way, and Patroni's own log lines
("replica has been created using …", "Error creating replica using method …").
"""

import shlex

from jobs.configs import pgbackrest as conf
from jobs.playbooks import daemons
from jobs.playbooks.base import StepContext

GREP = "grep -e 'replica has been created using' -e 'Error creating replica using'"
REPOSITORY = "pgBackRest restore from the repository"
PRIMARY = "pg_basebackup from the primary"


def label_method(label_lines: list[str]) -> str:
    """The method a backup_label's lines name; "" when they name none we know."""
    for line in label_lines:
        if line.startswith(conf.RESTORE_LABEL):
            return REPOSITORY
        if line.startswith(conf.BASEBACKUP_LABEL):
            return PRIMARY
    return ""


def patroni_lines(log_lines: list[str]) -> list[str]:
    """Patroni's lines about creating the replica, oldest first, without their timestamps."""
    wanted = ("replica has been created using", "Error creating replica using method")
    found = []
    for line in log_lines:
        for key in wanted:
            if key in line:
                found.append(line[line.index(key) :].strip()[:200])
    return found


def describe(label_lines: list[str], log_lines: list[str]) -> str:
    """One phrase for the step's summary: the method, and Patroni's word on a failed one."""
    method = label_method(label_lines) or "an unknown method (no backup_label)"
    said = patroni_lines(log_lines)
    failed = [s for s in said if s.startswith("Error creating replica")]
    text = f"copied by {method}"
    if failed and method == PRIMARY:
        text += f" after the repository failed ({failed[-1]})"
    return text


def copy_method(ctx: StepContext, data_dir: str, daemon: daemons.Daemon, since: int) -> str:
    """What the node's new data directory and its Patroni say about how it was copied;
    `since` is the epoch second the copy began (older log lines are about other copies)."""
    data = shlex.quote(data_dir)
    label = ctx.output(
        f"cat {data}/backup_label {data}/backup_label.old 2>/dev/null | grep '^LABEL:' || true",
        sudo=True,
        echo=False,
    )
    if daemons.init_system(ctx, ctx.node) == daemons.SYSTEMD:
        command = (
            f"journalctl -u {shlex.quote(daemon.unit)} --since=@{int(since)} --no-pager -o cat "
            f"2>/dev/null | {GREP} || true"
        )
    else:
        command = f"tail -n 2000 {shlex.quote(daemon.log_file)} 2>/dev/null | {GREP} || true"
    log = ctx.output(command, sudo=True, echo=False)
    for line in patroni_lines(log):
        ctx.log(f"Patroni: {line}", host=ctx.node.name)
    return describe(label, log)
