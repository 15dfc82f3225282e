"""The files that make the application's systemd unit follow the primary (DESIGN §5).

The vendor manuals run the application on the master only ("the Slave stays idle"). Patroni
calls a callback script on every change of its PostgreSQL (`postgresql.callbacks`: on_start,
on_stop, on_restart, on_role_change, with the action, the role and the scope as arguments);
ours starts the unit where the role is primary and stops it anywhere else. Patroni runs
callbacks as the postgres user, so a sudoers drop-in allows exactly `systemctl start` and
`systemctl stop` of that one unit, and nothing else.
"""

from jobs.configs.spec import ClusterSpec, header

SYSTEMCTL = "/usr/bin/systemctl"  # Debian 12/13 (merged /usr); sudo matches this exact path
CALLBACK_TIMEOUT_S = 20  # Patroni kills a callback still running when the next one comes
LOG_TAG = "hacenter-app"
ACTIONS = ("on_start", "on_stop", "on_restart", "on_role_change")


def callback_path(spec: ClusterSpec) -> str:
    return f"/usr/local/lib/hacenter/{spec.name}-app-callback"


def sudoers_path(spec: ClusterSpec) -> str:
    # No dot in the name: sudo skips files in sudoers.d whose name contains one, which is also
    # why an upload to "<path>.new" is inert until it is checked and renamed.
    return f"/etc/sudoers.d/hacenter-{spec.name}-app"


def enabled_state_path(spec: ClusterSpec) -> str:
    """Where setup notes whether the unit was enabled at boot before it disabled it, so that
    removing the cluster can put it back as it was."""
    return f"/var/lib/hacenter/{spec.name}-app-unit-was"


def _unit(spec: ClusterSpec) -> str:
    if not spec.application_unit:
        raise ValueError(f"Cluster {spec.name} has no application unit.")
    return spec.application_unit  # matched spec.UNIT_RE: no quoting needed anywhere


def patroni_callbacks(spec: ClusterSpec) -> dict[str, str]:
    """Patroni's `postgresql.callbacks`: the one script for every action."""
    path = callback_path(spec)
    _unit(spec)
    return {action: path for action in ACTIONS}


def sudoers_rule(spec: ClusterSpec) -> str:
    """postgres may start and stop the application's unit as root, nothing more."""
    unit = _unit(spec)
    return (
        f"{header(spec)}\n"
        "# Patroni's callback (run as postgres) starts the application on the primary and\n"
        "# stops it elsewhere.\n"
        f"postgres ALL=(root) NOPASSWD: {SYSTEMCTL} start {unit}, {SYSTEMCTL} stop {unit}\n"
    )


def callback_script(spec: ClusterSpec) -> str:
    """The script Patroni calls as `<script> <action> <role> <scope>`.

    Idempotent (starting a running unit or stopping a stopped one changes nothing), logged to
    the journal with `logger`, and bounded by `timeout` so a hanging start never leaves a
    callback behind; Patroni itself does not wait for callbacks.
    """
    unit = _unit(spec)
    return f"""#!/bin/sh
{header(spec)}
# Patroni calls it as postgres: <action> <role> <scope>. The application runs on the primary
# only: started there, stopped on every other node.
unit={unit}
action="$1"
role="$2"
case "$action" in
    on_start|on_restart|on_role_change)
        case "$role" in
            primary|master) want=start ;;
            *) want=stop ;;
        esac ;;
    on_stop) want=stop ;;
    *) exit 0 ;;
esac
if timeout {CALLBACK_TIMEOUT_S} sudo -n {SYSTEMCTL} "$want" "$unit"; then
    logger -t {LOG_TAG} -- "$unit: $want done ($action, role $role)"
else
    status=$?
    logger -p user.err -t {LOG_TAG} -- "$unit: $want failed ($status; $action, role $role)"
    exit "$status"
fi
"""
