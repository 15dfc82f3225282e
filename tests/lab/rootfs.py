"""The Debian root file system the systemd lab's hosts boot: built once, cached, extracted.

The image is what a customer's fresh minimal Debian server has and nothing more: systemd, sshd,
sudo, python3, an admin user ``hcops`` and empty apt package lists. Everything HA Center needs
(PostgreSQL, Patroni, etcd, HAProxy) is left for the product to install.

Two releases can be built: Debian 12 (bookworm, the default) and Debian 13 (trixie); both get
the same packages and customization, only the suite and the sources differ. The image is built
with ``mmdebstrap`` into ``<cache>/debian-<release>-base-<recipe hash>.tar.zst`` (30-50 s); a
changed recipe gets a new hash, so a stale image is never booted. Each lab run extracts it once
into ``<root>/base-<hash>/`` (Debian 13: ``base-13-<hash>/``; about a second), the shared
read-only lower layer of every host's overlay root. Replacing a stale image or base deletes only
those of the same release: switching between releases rebuilds nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from ._util import run

DEFAULT_CACHE = "/var/cache/hclab-systemd"
DEFAULT_RELEASE = "12"
#: Debian 12's suite and sources (their values are part of its recipe hash: keep them as they are).
SUITE = "bookworm"
PACKAGES = (
    "systemd",
    "systemd-sysv",
    "dbus",
    "openssh-server",
    "python3",
    "sudo",
    "iproute2",
    "ca-certificates",
)
#: Also the image's sources.list (mmdebstrap writes the mirrors it used).
SOURCES = (
    "deb http://deb.debian.org/debian bookworm main",
    "deb http://deb.debian.org/debian bookworm-updates main",
    "deb http://security.debian.org/debian-security bookworm-security main",
)
ADMIN_USER = "hcops"
#: Run by mmdebstrap with the finished chroot as $1: image-wide settings. Host-specific files
#: (machine-id, hostname, host keys, addresses, authorized_keys) are written per host instead.
CUSTOMIZE = f"""set -eu
r=$1
chroot "$r" systemctl enable systemd-networkd.service
chroot "$r" useradd --create-home --shell /bin/bash {ADMIN_USER}
# '*': no password to log in with, yet not a locked '!' account (which sshd without PAM refuses)
chroot "$r" usermod -p '*' {ADMIN_USER}
echo '{ADMIN_USER} ALL=(ALL:ALL) NOPASSWD: ALL' > "$r/etc/sudoers.d/{ADMIN_USER}"
chmod 0440 "$r/etc/sudoers.d/{ADMIN_USER}"
# openssh-server's postinst made host keys: every host would share them. Hosts get their own
# ed25519 key (and serve only that one, so the lab knows the fingerprint a client sees).
rm -f "$r"/etc/ssh/ssh_host_*
echo 'HostKey /etc/ssh/ssh_host_ed25519_key' > "$r/etc/ssh/sshd_config.d/hclab.conf"
# the build's apt proxy setting (--aptopt) must not stay: hosts have no apt proxy
rm -f "$r/etc/apt/apt.conf.d/99mmdebstrap"
# like every cloud or container image: the product must run apt-get update itself
rm -rf "$r"/var/lib/apt/lists/*
mkdir -p "$r/var/lib/apt/lists/partial"
: > "$r/etc/machine-id"
# mmdebstrap copied the build machine's name and name server; hosts get their own name, and
# need no DNS (no route out; apt goes through the proxy, which resolves the archive's name)
echo localhost > "$r/etc/hostname"
echo '# no name server in the lab: hosts know each other from /etc/hosts' > "$r/etc/resolv.conf"
"""
#: Bump to force a rebuild when something the hash does not see changes (e.g. mmdebstrap flags).
RECIPE_VERSION = 1


@dataclass(frozen=True)
class Release:
    """One Debian release the lab can boot: its suite, apt sources and file names."""

    version: str  # "12", as /etc/os-release's VERSION_ID says
    suite: str
    sources: tuple[str, ...]
    #: prefix of its extracted bases in the lab root; Debian 12's is the one it always had
    base_prefix: str

    @property
    def image_prefix(self) -> str:
        return f"debian-{self.version}-base-"

    def is_base(self, name: str) -> bool:
        """Whether ``name`` is an extracted base of this release (any recipe, or a partial one)."""
        pattern = re.escape(self.base_prefix) + r"[0-9a-f]{12}(\.partial)?"
        return re.fullmatch(pattern, name) is not None


RELEASES = {
    "12": Release("12", SUITE, SOURCES, "base-"),
    "13": Release(
        "13",
        "trixie",
        (
            "deb http://deb.debian.org/debian trixie main",
            "deb http://deb.debian.org/debian trixie-updates main",
            "deb http://security.debian.org/debian-security trixie-security main",
        ),
        "base-13-",
    ),
}


def release_of(version: str) -> Release:
    """The :class:`Release` called ``version`` ("12" or "13"); ValueError for others."""
    try:
        return RELEASES[version]
    except KeyError:
        raise ValueError(
            f"no Debian {version} recipe; the lab boots Debian {' or '.join(RELEASES)}"
        ) from None


def recipe_hash(release: str = DEFAULT_RELEASE) -> str:
    """Short hash of everything that decides the image's contents."""
    r = release_of(release)
    recipe = [RECIPE_VERSION, r.suite, "minbase", PACKAGES, r.sources, CUSTOMIZE]
    return hashlib.sha256(json.dumps(recipe).encode()).hexdigest()[:12]


def image_path(cache: Path, release: str = DEFAULT_RELEASE) -> Path:
    """Where the image of the release's current recipe is (or will be) cached."""
    return cache / f"{release_of(release).image_prefix}{recipe_hash(release)}.tar.zst"


def ensure_image(
    cache: Path,
    apt_proxy: str | None = None,
    timeout: float = 900.0,
    release: str = DEFAULT_RELEASE,
) -> Path:
    """Return the cached image of the release's current recipe, building it first when missing.

    ``apt_proxy`` (e.g. the lab's apt-cacher-ng) makes the build download through that cache,
    so rebuilding after a recipe change costs little. The release's images of older recipes
    are deleted; other releases' images stay.
    """
    r = release_of(release)
    image = image_path(cache, release)
    if image.exists():
        return image
    cache.mkdir(parents=True, exist_ok=True)
    partial = image.with_name(image.name + ".partial.tar.zst")  # mmdebstrap picks zstd by suffix
    partial.unlink(missing_ok=True)
    argv = [
        *("mmdebstrap", "--quiet", "--variant=minbase", "--mode=root", "--format=tar"),
        f"--include={','.join(PACKAGES)}",
        f"--customize-hook={CUSTOMIZE}",
    ]
    if apt_proxy:
        argv.append(f'--aptopt=Acquire::http::Proxy "{apt_proxy}"')
    run([*argv, r.suite, str(partial), *r.sources], timeout=timeout)
    partial.rename(image)
    for old in cache.glob(f"{r.image_prefix}*.tar.zst"):
        if old != image:
            old.unlink()
    return image


def ensure_base(image: Path, root: Path, release: str = DEFAULT_RELEASE) -> Path:
    """Extract ``image`` into ``<root>/<base prefix><hash>`` unless already there; return that dir.

    The release's bases of other recipes are deleted: call only while no host's overlay uses
    them.
    """
    r = release_of(release)
    name = r.base_prefix + image.name.removeprefix(r.image_prefix).removesuffix(".tar.zst")
    base = root / name
    if not base.is_dir():  # renamed into place only once complete
        partial = root / f"{name}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        run(
            [
                *("tar", "--zstd", "-xf", str(image), "-C", str(partial)),
                *("--numeric-owner", "--xattrs", "--xattrs-include=*", "--acls"),
            ],
            timeout=300,
        )
        partial.rename(base)
    for old in root.glob(f"{r.base_prefix}*"):
        if old != base and r.is_base(old.name) and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
    os.chmod(base, 0o755)  # noqa: S103 - a host's / must be world-readable like any server's
    return base


def missing_tools() -> list[str]:
    """Tools the image needs that this machine lacks."""
    return [t for t in ("mmdebstrap", "zstd", "tar") if shutil.which(t) is None]
