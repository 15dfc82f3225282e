"""Data disks of their own for lab hosts, so that a chaos fault can fill one.

A netns lab host's /var/lib/postgresql is a directory on this machine's disk, far too large to
fill. For the disk-full fault each database host gets a small file system there instead, as a
server's data disk would be: an ext4 image on a loop device (no blocks reserved for root, so
PostgreSQL sees it full when it is), mounted over the host's directory while the host is off,
and taken away again, the host off, when the test ends.
"""

import contextlib
import os
import pwd
import subprocess
from collections.abc import Iterator

from tests.lab import Lab
from tests.lab.hostfs import host_fs

DATA_PATH = "/var/lib/postgresql"
BALLOON = f"{DATA_PATH}/chaos-balloon"


def _run(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, text=True)


@contextlib.contextmanager
def small_data_disks(lab: Lab, names: list[str], size_mib: int = 2048) -> Iterator[None]:
    """Each named host's DATA_PATH on an ext4 file system of `size_mib` (sparse: it takes only
    what is written), for the duration of the block."""
    made: list[tuple[str, str, str]] = []
    postgres = pwd.getpwnam("postgres")
    try:
        for name in names:
            host = lab.host(name)
            target, image = str(host_fs(host.datadir, DATA_PATH)), str(host.datadir / "disk.img")
            lab.power_off(name)
            _run("truncate", "-s", f"{size_mib}M", image)
            _run("mkfs.ext4", "-q", "-F", "-m", "0", image)
            _run("mount", "-o", "loop", image, target)
            made.append((name, target, image))
            os.chown(target, postgres.pw_uid, postgres.pw_gid)
            lab.power_on(name)
        yield
    finally:
        for name, target, image in made:
            lab.power_off(name)
            subprocess.run(["umount", target], check=False)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(image)
            lab.power_on(name)


def fill(lab: Lab, name: str) -> None:
    """Take every free block of the host's data disk with one file (as root: all of it)."""
    script = (
        f"fallocate -l $(df -B1 --output=avail {DATA_PATH} | tail -n 1) {BALLOON} || "
        f"dd if=/dev/zero of={BALLOON} bs=1M status=none || true"
    )
    lab.exec(name, ["sh", "-c", script], timeout=120)


def free(lab: Lab, name: str) -> None:
    lab.exec(name, ["rm", "-f", BALLOON])
