"""The shell HA Center runs on nodes around and beside their commands: the wrapper that gives
each command its own process group and its job's tag, the kill of a group, the sweep of what an
earlier attempt left running, and the checked, atomic upload.

Pure string building (no paramiko, no Django); jobs.ssh sends them. tests/unit/
test_remote_scripts.py runs them on real processes and files.
"""

import posixpath
import re
import shlex

PID_MARKER = "__HC_PID__="
# This sh leads a new session and process group, so `kill -- -$$` reaches the command and all it
# started. setsid(1) forks when its caller already leads a group (sshd's login shell execs it and
# does; sudo's child usually does not): -w then waits and passes the exit status through, and $$
# is the child's pid. Either way $$ is the group to kill.
# HACENTER_PGID names the group in the environment, which the command and all it starts inherit:
# a process whose group is still that one belongs to the command (see SWEEP_SCRIPT).
_WRAPPER = f'HACENTER_PGID=$$; export HACENTER_PGID; echo "{PID_MARKER}$$" >&2; exec sh -c "$1"'
TAG_VARIABLE = "HACENTER_JOB"
# Kills what commands tagged "$1" (an earlier attempt of the same job, whose worker died) left
# running: every process group in which a process still carries the tag and is still in the
# group its command started in. Daemons a command started (setsid: a group of their own) are
# left alone, and so is the sweep's own group. Prints the groups it killed.
SWEEP_SCRIPT = r"""
found=""
for d in /proc/[0-9]*; do
  grep -qzxF "HACENTER_JOB=$1" "$d/environ" 2>/dev/null || continue
  g=$(sed -zn 's/^HACENTER_PGID=//p' "$d/environ" 2>/dev/null | tr -d '\0')
  [ -n "$g" ] && [ "$g" != "$HACENTER_PGID" ] || continue
  [ "$(ps -o pgid= -p "${d#/proc/}" | tr -d ' ')" = "$g" ] || continue
  case " $found " in *" $g "*) ;; *) found="$found $g" ;; esac
done
for g in $found; do kill -s TERM -- "-$g" 2>/dev/null; done
if [ -n "$found" ]; then
  sleep 2
  for g in $found; do kill -s KILL -- "-$g" 2>/dev/null; done
fi
echo $found
"""


def build_remote_command(command: str, sudo: bool, tag: str = "") -> str:
    """The line given to the remote login shell: own session, pid marker first, maybe sudo,
    and the tag (a job's) in the environment so that a later attempt can find what it left.

    `sudo -n` fails at once where a password would be asked instead of hanging on a prompt.
    """
    argv = ["setsid", "-w", "sh", "-c", _WRAPPER, "hc", command]
    if tag:
        argv = ["env", f"{TAG_VARIABLE}={tag}", *argv]
    return shlex.join(["sudo", "-n", "--", *argv] if sudo else argv)


def build_sweep_command(tag: str) -> str:
    """The command that kills what earlier commands tagged `tag` left running (SWEEP_SCRIPT)."""
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", tag):
        raise ValueError(f"a command tag is letters, digits, '.', '_' and '-': {tag!r}")
    return shlex.join(["sh", "-c", SWEEP_SCRIPT, "sweep", tag])


def build_kill_script(pgid: int) -> str:
    """TERM the process group, give it ~2 s, then KILL whatever is left."""
    g = f"-{int(pgid)}"
    return (
        f"kill -s TERM -- {g} 2>/dev/null || exit 0; i=0; while [ $i -lt 10 ] && "
        f"kill -s 0 -- {g} 2>/dev/null; do sleep 0.2; i=$((i+1)); done; "
        f"kill -s KILL -- {g} 2>/dev/null; exit 0"
    )


def build_upload_script(
    remote_path: str, digest: str, mode: int, owner: str | None, group: str | None
) -> str:
    """Shell that stores its stdin as remote_path if the bytes hash to `digest` (SHA-256): a
    temp file beside it, checked, then renamed. Whatever stops it first (a short stdin after a
    dropped connection, a failing command, TERM from the kill of a lost command) removes the
    temp file and leaves the target as it was."""
    if not remote_path.startswith("/") or remote_path.endswith("/"):
        raise ValueError(f"remote path must be an absolute file path: {remote_path!r}")
    if not 0 <= mode <= 0o7777:
        raise ValueError(f"bad file mode {mode:o}")
    q = shlex.quote
    directory, name = posixpath.split(remote_path)
    script = [
        "set -e",
        # A fresh server lacks the product's own directories (/etc/hacenter, /etc/patroni...).
        f"mkdir -p -- {q(directory)}",
        f"tmp=$(mktemp {q(posixpath.join(directory, f'.{name}.hc-XXXXXX'))})",
        "trap 'rm -f -- \"$tmp\"' EXIT",  # any failure below leaves the target untouched
        "trap 'exit 1' HUP INT TERM",  # a signal would end sh without the EXIT trap
        'cat > "$tmp"',
        f'[ "$(sha256sum < "$tmp")" = {q(digest + "  -")} ] '
        '|| { echo "upload incomplete: checksum mismatch" >&2; exit 1; }',
    ]
    if owner or group:  # chown before chmod: chown clears setuid/setgid bits
        script.append(f'chown {q((owner or "") + (f":{group}" if group else ""))} -- "$tmp"')
    script += [
        f'chmod {mode:o} -- "$tmp"',
        'sync -- "$tmp"',
        f'mv -f -T -- "$tmp" {q(remote_path)}',
        "trap - EXIT",
    ]
    return "\n".join(script)
