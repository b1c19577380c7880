"""husk's unpack of a real multi-layer Debian image, compared file by file
with what umoci (Debian's package) makes of the same image: type, mode,
owner, size, content hash, link target, device numbers and xattrs.
Both husk drivers are compared: the overlay mount and the vfs copy."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess

import pytest

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def debian(tmp_path_factory):
    import debian_image

    base = tmp_path_factory.mktemp("debian")
    layout = debian_image.build_layout(str(base / "layout"))
    bundle = str(base / "umoci-bundle")
    subprocess.run(["umoci", "unpack", "--image", f"{layout}:latest", bundle], check=True, capture_output=True)
    yield layout, os.path.join(bundle, "rootfs")
    subprocess.run(["rm", "-rf", bundle], check=True)


def describe(root: str) -> dict[str, tuple]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            kind = stat.S_IFMT(st.st_mode)
            extra: tuple = ()
            if stat.S_ISREG(st.st_mode):
                with open(path, "rb") as f:
                    extra = (st.st_size, hashlib.sha256(f.read()).hexdigest())
            elif stat.S_ISLNK(st.st_mode):
                extra = (os.readlink(path),)
            elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                extra = (os.major(st.st_rdev), os.minor(st.st_rdev))
            try:
                xattrs = tuple(sorted((k, os.getxattr(path, k, follow_symlinks=False))
                                      for k in os.listxattr(path, follow_symlinks=False)
                                      if not k.startswith("trusted.overlay.")))
            except OSError:
                xattrs = ()
            mode = stat.S_IMODE(st.st_mode) if not stat.S_ISLNK(st.st_mode) else 0
            out[os.path.relpath(path, root)] = (kind, mode, st.st_uid, st.st_gid, extra, xattrs)
    return out


@pytest.mark.parametrize("driver", ["overlay", "vfs"])
def test_rootfs_matches_umoci(husk_env, debian, driver, tmp_path):
    from runtime.engine.image import images, rootfs
    from runtime.engine.image.store import Store

    layout, umoci_rootfs = debian
    h = husk_env
    h("load", "-q", "--name", "example/debian", "-i", layout, check=True)
    store = Store(h.store)
    digest, _ = images.find(store, "example/debian")
    cdir = str(tmp_path / "c")
    os.makedirs(cdir)
    try:
        used = rootfs.make(store, store.diff_ids(digest), cdir, driver)
        assert used == driver
        ours = describe(os.path.join(cdir, "rootfs"))
    finally:
        rootfs.remove(cdir)
    theirs = describe(umoci_rootfs)
    missing = sorted(set(theirs) - set(ours))
    extra = sorted(set(ours) - set(theirs))
    differ = sorted(p for p in set(ours) & set(theirs) if ours[p] != theirs[p])
    assert not missing and not extra and not differ, (
        f"missing {missing[:5]}, extra {extra[:5]}, differ {[(p, ours[p], theirs[p]) for p in differ[:3]]}")
    # the image's changes layer really did something
    assert "etc/motd" not in ours and "usr/bin/rgrep" not in ours
    assert sorted(p for p in ours if p.startswith("usr/share/doc/")) == ["usr/share/doc/README.husk"]
    assert len(ours) > 5000


def test_debian_image_runs(husk_env, debian):
    layout, _ = debian
    h = husk_env
    h("load", "-q", "--name", "example/debian", "-i", layout, check=True)
    r = h("run", "--rm", "--pull=never", "example/debian", "bash", "-c",
          "cat /etc/debian_version; . /etc/os-release; echo $ID; ls /usr/share/doc; id -un")
    assert r.out == "husk\ndebian\nREADME.husk\nroot\n", r.err
