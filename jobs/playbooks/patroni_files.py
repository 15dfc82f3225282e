"""Reading a node's Patroni from the outside: which process runs it, with which config file,
and that file's settings (it holds passwords: read with sudo, never echoed, every password
added to the log's redaction before anything else is written)."""

import json
import shlex

from clusters.models import Node
from jobs.playbooks.base import StepContext

# Parses the YAML with the interpreter that runs Patroni (it has PyYAML; the console may not).
YAML_TO_JSON = (
    "import json, sys\n"
    "try:\n"
    "    import yaml\n"
    "except ImportError:\n"
    "    sys.exit(3)\n"
    "with open(sys.argv[1]) as f:\n"
    "    print(json.dumps(yaml.safe_load(f)))\n"
)

# The running Patroni: pid, interpreter, systemd unit and command line, one `key=value` a line.
# Only a python (or a frozen `patroni` binary) counts: this very script, its sudo and its
# shell also have "patroni" and ".yml" in their command lines.
FIND_PATRONI = r"""
for p in $(pgrep -f '[p]atroni' 2>/dev/null); do
  case "$(readlink /proc/$p/exe)" in */python*|*/patroni) ;; *) continue ;; esac
  args=$(tr '\0' ' ' < /proc/$p/cmdline 2>/dev/null) || continue
  case "$args" in *patroni*.y*ml*) ;; *) continue ;; esac
  echo "pid=$p"
  echo "exe=$(readlink /proc/$p/exe)"
  echo "unit=$(grep -o '[^/]*\.service' /proc/$p/cgroup 2>/dev/null | tail -n 1)"
  echo "args=$args"
  break
done
true
"""


def find_patroni(ctx: StepContext, node: Node) -> dict[str, str]:
    """The running Patroni on `node`: {pid, exe, unit, args, config}; empty when none runs."""
    lines = ctx.output(FIND_PATRONI, node=node, sudo=True, echo=False)
    found = dict(line.split("=", 1) for line in lines if "=" in line)
    if not found.get("pid"):
        return {}
    configs = [a for a in found["args"].split() if a.endswith((".yml", ".yaml"))]
    found["config"] = configs[-1] if configs else ""
    return found


def _passwords(value: object) -> list[str]:
    if isinstance(value, dict):
        found = [v for k, v in value.items() if k == "password" and isinstance(v, str) and v]
        for v in value.values():
            found += _passwords(v)
        return found
    if isinstance(value, list):
        return [p for v in value for p in _passwords(v)]
    return []


def read_config(ctx: StepContext, node: Node, path: str, pythons: list[str]) -> dict | None:
    """The Patroni YAML at `path` as a dict (None if unreadable), its passwords redacted from
    the job's log from now on."""
    candidates = " ".join(shlex.quote(p) for p in [*pythons, "/usr/bin/python3"] if p)
    script = (
        f'for py in {candidates}; do [ -x "$py" ] || continue; '
        f'"$py" -c {shlex.quote(YAML_TO_JSON)} {shlex.quote(path)}; rc=$?; '
        "[ $rc -eq 3 ] && continue; exit $rc; done; exit 3"
    )
    lines: list[str] = []
    result = ctx.run(script, node=node, sudo=True, echo=False, collect=lines)
    if not result.ok:
        return None
    try:
        config = json.loads("\n".join(lines))
    except ValueError:
        return None
    if not isinstance(config, dict):
        return None
    for password in _passwords(config):
        ctx.log_writer.redact.add(password)
    return config
