"""Command line: ``python -m tests.lab up [--nodes N] [--fresh] | down [--wipe] | status``.

``--kind systemd`` (after the command) drives the systemd-nspawn lab of real Debian 12 servers
(:mod:`tests.lab.systemd_lab`, bridge hcsd0) instead of the network-namespace lab (the default);
``up --kind systemd --release 13`` boots Debian 13 servers instead.

Exit codes: 0 success (``status``: every host up), 1 lab error, 2 usage error,
3 ``status`` found the lab down or partly down, 4 not runnable here (not root, tools missing).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

from . import USER_PASSWORDS, Lab, LabError
from . import systemd_lab as sd
from .core import DEFAULT_ROOT
from .network import NETNS_PREFIX, lab_netns
from .rootfs import DEFAULT_RELEASE, RELEASES
from .sdmachine import lab_cgroups

EXIT_ERROR, EXIT_DOWN, EXIT_UNAVAILABLE = 1, 3, 4


def _print_up(lab: Lab) -> None:
    print(
        f"HA Center lab is up: proxy + {lab.n_db} database nodes on bridge hclab0 "
        f"(console side 198.18.0.1) in {lab.last_up_seconds:.2f} s"
    )
    for h in lab.hosts:
        print(f"  {h.name:<7} {h.address:<13} host key {lab.host_key_fingerprint(h.name)}")
    key = lab.key_path
    first = lab.private_key_text.splitlines()[0]
    print(f"lab private key (ed25519): {key}  [{first} ... ]")
    print(f"  its public key: {lab.public_key_text}")
    print(f"  paste into the wizard: cat {key}")
    print("users on every host:")
    print("  root     - lab key")
    print(f"  hcops    - lab key or password {USER_PASSWORDS['hcops']}, passwordless sudo")
    print(f"  hcnosudo - lab key or password {USER_PASSWORDS['hcnosudo']}, no sudo rights")
    node = lab.db_nodes[0]
    print(
        f"ssh in: ssh -i {key} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
        f"root@{node.address}"
    )
    print("remove with: python -m tests.lab down")


def _status(lab: Lab) -> int:
    rows = lab.status()
    extra = [ns for ns in lab_netns() if ns not in {h.netns for h in lab.hosts}]
    all_up = True
    for r in rows:
        state = "up" if r["powered"] else ("off" if r["netns"] else "absent")
        link = "" if not r["netns"] else (" link-up" if r["link_up"] else " CABLE-CUT")
        all_up &= bool(r["powered"] and r["link_up"])
        print(f"{r['name']:<7} {r['address']:<13} {state}{link}  {r['fingerprint'] or '-'}")
    for ns in extra:
        print(f"(also present: namespace {ns}, beyond --nodes {lab.n_db})")
    return 0 if all_up else EXIT_DOWN


def _print_up_systemd(lab: sd.SystemdLab) -> None:
    built = lab.last_image_build_seconds
    image = f", image built in {built:.0f} s" if built is not None else ""
    print(
        f"HA Center systemd lab is up: proxy + {lab.n_db} Debian {lab.release} hosts on bridge "
        f"hcsd0 (console side 198.19.0.1) in {lab.last_up_seconds:.2f} s{image}"
    )
    for h in lab.hosts:
        print(f"  {h.name:<7} {h.address:<13} host key {lab.host_key_fingerprint(h.name)}")
    key = lab.key_path
    print(f"lab private key (ed25519): {key}  (paste into the wizard: cat {key})")
    print("users on every host: root and hcops (passwordless sudo), both with the lab key")
    print(f"apt proxy for the cluster's APT proxy setting: {lab.apt_proxy_url}")
    print("  hosts have no route out: apt works only through it")
    node = lab.db_nodes[0]
    print(f"ssh in: {' '.join(lab.ssh_argv(node.name))}")
    print("remove with: python -m tests.lab down --kind systemd")


def _status_systemd(lab: sd.SystemdLab) -> int:
    all_up = True
    for r in lab.status():
        state = r["state"] or ("off" if r["fingerprint"] else "absent")
        link = "" if not r["powered"] else (" link-up" if r["link_up"] else " CABLE-CUT")
        all_up &= r["state"] in sd.UP_STATES and bool(r["link_up"])
        memory = f"{r['memory_mib']} MiB" if r["powered"] else "-"
        print(
            f"{r['name']:<7} {r['address']:<13} {state}{link}  {memory}  {r['fingerprint'] or '-'}"
        )
    return 0 if all_up else EXIT_DOWN


def _systemd(args: argparse.Namespace) -> int:
    root = args.root or os.environ.get("HCLAB_SYSTEMD_ROOT", sd.DEFAULT_ROOT)
    # any size for down and status: hosts are found by their cgroups and their disks
    running = len([g for g in lab_cgroups() if g.startswith("node")])
    on_disk = len(list(Path(root).glob("node[0-9]*")))
    if args.command == "up":
        lab = sd.SystemdLab(n_db=args.nodes, root=root, release=args.release)
        lab.up(fresh=args.fresh)
        _print_up_systemd(lab)
        return 0
    if args.command == "down":
        lab = sd.SystemdLab(n_db=max(running, on_disk, 1), root=root)
        lab.down(keep_data=not args.wipe)
        print(f"systemd lab is down ({lab.last_down_seconds:.2f} s)")
        return 0
    nodes = args.nodes or max(running, on_disk, 1)
    return _status_systemd(sd.SystemdLab(n_db=nodes, root=root))


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    parser = argparse.ArgumentParser(prog="python -m tests.lab", description=__doc__)
    parser.add_argument(
        "--root",
        default=None,
        help=f"host data dir (default {DEFAULT_ROOT}; {sd.DEFAULT_ROOT} or $HCLAB_SYSTEMD_ROOT "
        "for --kind systemd)",
    )
    kind = argparse.ArgumentParser(add_help=False)
    kind.add_argument(
        "--kind",
        choices=("netns", "systemd"),
        default="netns",
        help="netns: namespaces sharing this machine's packages (default); "
        "systemd: Debian 12 containers booting systemd, installing through an apt proxy",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", parents=[kind], help="(re)build the lab and boot every host")
    up.add_argument("--nodes", type=int, default=2, help="database nodes (default 2)")
    up.add_argument("--fresh", action="store_true", help="wipe host disks and host keys first")
    up.add_argument(
        "--outsider",
        action="store_true",
        help="netns: also boot 'outsider' (.50), a host in no cluster (firewall tests)",
    )
    up.add_argument(
        "--release",
        choices=sorted(RELEASES),
        default=DEFAULT_RELEASE,
        help=f"--kind systemd: the hosts' Debian release (default {DEFAULT_RELEASE})",
    )
    down = sub.add_parser(
        "down", parents=[kind], help="stop every host, remove namespaces and bridge"
    )
    down.add_argument("--wipe", action="store_true", help="also delete host data (not the key)")
    status = sub.add_parser("status", parents=[kind], help="show each host's state")
    status.add_argument("--nodes", type=int, default=None, help="database nodes to report")
    args = parser.parse_args(argv)

    problem = sd.SystemdLab.preflight() if args.kind == "systemd" else Lab.preflight()
    if problem:
        print(f"lab unavailable: {problem}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    try:
        if args.kind == "systemd":
            return _systemd(args)
        args.root = args.root or DEFAULT_ROOT
        if args.command == "up":
            lab = Lab(n_db=args.nodes, root=args.root, outsider=args.outsider)
            lab.up(fresh=args.fresh)
            _print_up(lab)
            return 0
        if args.command == "down":
            # any size: down removes every hclab- namespace whatever --nodes built it, and
            # --wipe every node dir a bigger lab left
            on_disk = len(list(Path(args.root).glob("node[0-9]*")))
            nodes = max(len(lab_netns()) - 1, on_disk, 1)
            outsider = (Path(args.root) / "outsider").exists()  # its dir, for --wipe
            lab = Lab(n_db=min(nodes, 39) if outsider else nodes, root=args.root, outsider=outsider)
            lab.down(keep_data=not args.wipe)
            print(f"lab is down ({lab.last_down_seconds:.2f} s)")
            return 0
        # The database nodes' namespaces, not the proxy's, proxy2's or the outsider's.
        db_netns = [ns for ns in lab_netns() if re.fullmatch(rf"{NETNS_PREFIX}node\d+", ns)]
        nodes = args.nodes or max(len(db_netns), 2)
        return _status(Lab(n_db=nodes, root=args.root))
    except (LabError, TimeoutError, ValueError) as exc:
        print(f"lab error: {exc}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:  # output piped into `head`: the command itself still succeeded
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 0
    sys.exit(code)
