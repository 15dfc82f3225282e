"""Rebuild by full copy from the backup repository (pgBackRest's delta restore, Patroni's
`pgbackrest` replica method) against a copy from the primary (pg_basebackup), on the systemd
lab: tests/integration/bench_backups_systemd.py, at the pgbench scale given (about 15 MB a
unit: --scale 200 is about 3 GB). It prints both times. Run as root, like the lab tests:

  .venv/bin/python -m bench.backups --scale 200
"""

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=int, default=200, help="pgbench scale (default 200)")
    args = parser.parse_args()
    if args.scale < 1:
        parser.error("--scale is a positive number")
    env = {**os.environ, "HACENTER_BENCH_SCALE": str(args.scale)}
    command = [
        "bash",
        "tests/run.sh",
        "tests/integration/bench_backups_systemd.py",
        "-s",
        "-p",
        "no:cacheprovider",
    ]
    sys.exit(subprocess.run(command, cwd=ROOT, env=env, check=False).returncode)


if __name__ == "__main__":
    main()
