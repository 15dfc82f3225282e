"""The systemd lab's images per Debian release: names, recipes, and which stale files go.

Nothing is built: mmdebstrap is replaced by a stand-in that writes the file it was asked for.
"""

from pathlib import Path

import pytest

from tests.lab import rootfs


@pytest.fixture
def fake_mmdebstrap(monkeypatch) -> list[list[str]]:
    """Record each mmdebstrap argv and write its output file, as the real one would."""
    calls: list[list[str]] = []

    def run(argv, **kwargs):
        calls.append(argv)
        out = next(a for a in argv if a.endswith(".partial.tar.zst"))
        Path(out).write_bytes(b"image")

    monkeypatch.setattr(rootfs, "run", run)
    return calls


def test_each_release_has_its_own_recipe_and_image_name(tmp_path):
    assert rootfs.recipe_hash() == rootfs.recipe_hash("12") != rootfs.recipe_hash("13")
    assert rootfs.image_path(tmp_path).name == f"debian-12-base-{rootfs.recipe_hash()}.tar.zst"
    assert rootfs.image_path(tmp_path, "13").name.startswith("debian-13-base-")
    with pytest.raises(ValueError, match="Debian 11"):
        rootfs.recipe_hash("11")


def test_a_new_image_replaces_only_the_stale_one_of_its_release(tmp_path, fake_mmdebstrap):
    stale_12 = tmp_path / "debian-12-base-000000000000.tar.zst"
    stale_13 = tmp_path / "debian-13-base-000000000000.tar.zst"
    for stale in (stale_12, stale_13):
        stale.write_bytes(b"old")

    image = rootfs.ensure_image(tmp_path, release="13")

    assert image == rootfs.image_path(tmp_path, "13") and image.exists()
    assert stale_12.exists() and not stale_13.exists()
    argv = fake_mmdebstrap[0]
    assert "trixie" in argv and "bookworm" not in argv
    assert "deb http://security.debian.org/debian-security trixie-security main" in argv
    assert rootfs.ensure_image(tmp_path, release="13") == image and len(fake_mmdebstrap) == 1


def test_a_base_replaces_only_the_stale_bases_of_its_release(tmp_path):
    cache, root = tmp_path / "cache", tmp_path / "root"
    current = {
        r: root / f"{rootfs.RELEASES[r].base_prefix}{rootfs.recipe_hash(r)}"
        for r in rootfs.RELEASES
    }
    stale = {"12": root / "base-000000000000", "13": root / "base-13-000000000000"}
    for d in [*current.values(), *stale.values()]:
        d.mkdir(parents=True)  # extracted already: ensure_base only sweeps

    assert rootfs.ensure_base(rootfs.image_path(cache, "13"), root, "13") == current["13"]
    assert stale["12"].is_dir() and not stale["13"].exists()
    assert current["12"].is_dir()

    assert rootfs.ensure_base(rootfs.image_path(cache), root) == current["12"]
    assert not stale["12"].exists() and current["13"].is_dir()
