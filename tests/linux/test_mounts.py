"""mounts, root.readonly, rootfsPropagation, --no-pivot; and mount
destinations that try to leave the rootfs through symlinks."""

import os

import pytest

pytestmark = pytest.mark.root


def mount_at(report, target):
    matches = [m for m in report["mounts"] if m["target"] == target]
    assert matches, f"no mount at {target}"
    return matches[-1]


def test_standard_mounts(bundle):
    seen = bundle.report()
    assert mount_at(seen, "/proc")["type"] == "proc"
    dev = mount_at(seen, "/dev")
    assert dev["type"] == "tmpfs" and "nosuid" in dev["options"]
    assert mount_at(seen, "/dev/pts")["type"] == "devpts"
    assert "ro" in mount_at(seen, "/sys")["options"].split(",")
    assert mount_at(seen, "/dev/shm")["type"] == "tmpfs"


def test_root_readonly(bundle):
    bundle.config["root"]["readonly"] = True
    r = bundle.run("/checker", "write", "/newfile", "x")
    assert r.out.strip() == "EROFS"
    bundle.config["root"]["readonly"] = False
    r = bundle.run("/checker", "write", "/newfile", "x", cid="c2")
    assert r.out.strip() == "ok"


def test_bind_mount_read_only(bundle, tmp_path):
    src = tmp_path / "data"
    src.mkdir()
    (src / "hello").write_text("from the host")
    bundle.config["mounts"].append({"destination": "/data", "type": "bind", "source": str(src),
                                    "options": ["rbind", "ro", "nosuid"]})
    r = bundle.run("cat", "/data/hello")
    assert r.out == "from the host"
    r = bundle.run("/checker", "write", "/data/new", "x", cid="c2")
    assert r.out.strip() == "EROFS"
    assert not (src / "new").exists()


def test_bind_mount_of_a_file_creates_its_mount_point(bundle, tmp_path):
    src = tmp_path / "file.txt"
    src.write_text("file contents")
    bundle.config["mounts"].append({"destination": "/etc/deep/new/file.txt", "type": "bind",
                                    "source": str(src), "options": ["bind"]})
    assert bundle.run("cat", "/etc/deep/new/file.txt").out == "file contents"


def test_tmpfs_options(bundle):
    bundle.config["mounts"].append({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
                                    "options": ["size=1m", "mode=1770", "noexec"]})
    m = mount_at(bundle.report(), "/scratch")
    assert m["type"] == "tmpfs"
    assert "noexec" in m["options"]
    assert "size=1024k" in m["super"] and "mode=1770" in m["super"]


def test_mount_through_symlink_stays_in_rootfs(bundle, tmp_path):
    # The image plants /evil -> /<host dir>; a mount at /evil/x must land
    # inside the rootfs, never on the host (CVE-2021-30465 family).
    host_dir = tmp_path / "host-target"
    host_dir.mkdir()
    os.symlink(str(host_dir), os.path.join(bundle.rootfs, "evil"))
    bundle.config["mounts"].append({"destination": "/evil/x", "type": "tmpfs", "source": "tmpfs"})
    r = bundle.run("/checker", "stat", "/evil/x")
    assert r.code == 0, r.err
    assert not (host_dir / "x").exists()
    # It was created under the rootfs, where the symlink resolves inside it.
    assert os.path.isdir(os.path.join(bundle.rootfs, str(host_dir).lstrip("/"), "x"))


def test_mount_through_dotdot_symlink_stays_in_rootfs(bundle):
    os.symlink("../../../../../../../../tmp", os.path.join(bundle.rootfs, "up"))
    marker = "husk-escape-test-dir"
    bundle.config["mounts"].append({"destination": f"/up/{marker}", "type": "tmpfs", "source": "tmpfs"})
    assert bundle.run("true").code == 0
    assert not os.path.exists(f"/tmp/{marker}")


def test_no_pivot(bundle):
    bundle.config["process"]["args"] = ["/checker", "report"]
    bundle.save()
    r = bundle.husk("run", "--no-pivot", "--bundle", bundle.path, "c1")
    assert r.code == 0, r.err
    seen = r.json()
    assert seen["cwd"] == "/"
    # MS_MOVE + chroot: the rootfs is the mount at /, the host's root is out of reach.
    assert any(m["target"] == "/" for m in seen["mounts"])


def test_rootfs_propagation_private(bundle):
    bundle.config["linux"]["rootfsPropagation"] = "private"
    assert bundle.run("true").code == 0


def test_tmpcopyup_fills_the_tmpfs_with_the_image_contents(bundle):
    etc = os.path.join(bundle.rootfs, "etc")
    os.makedirs(os.path.join(etc, "sub"))
    with open(os.path.join(etc, "sub", "file"), "w") as f:
        f.write("from the image")
    os.chmod(os.path.join(etc, "sub", "file"), 0o640)
    bundle.config["mounts"].append({"destination": "/etc", "type": "tmpfs", "source": "tmpfs",
                                    "options": ["tmpcopyup", "mode=755"]})
    r = bundle.run("sh", "-c", "cat /etc/sub/file; echo; stat -c %a /etc/sub/file; readlink /etc/hostname || true; "
                   "grep ' /etc ' /proc/self/mounts | cut -d' ' -f3; echo new > /etc/new")
    assert r.code == 0, r.err
    assert r.out.split() == ["from", "the", "image", "640", "tmpfs"]
    # Writes went to the tmpfs, not the image.
    assert not os.path.exists(os.path.join(etc, "new"))


def test_rootfs_propagation_shared_never_leaves_mounts_on_the_host(bundle, tmp_path):
    # The rootfs sits on a shared mount, as on a systemd host: a bind of it
    # in the container's namespace would propagate to the host's peer.
    import subprocess

    shared = tmp_path / "shared"
    shared.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(shared)], check=True)
    try:
        subprocess.run(["mount", "--make-shared", str(shared)], check=True)
        subprocess.run(["cp", "-a", bundle.rootfs, str(shared / "rootfs")], check=True)
        bundle.config["root"]["path"] = str(shared / "rootfs")
        bundle.config["linux"]["rootfsPropagation"] = "shared"
        bundle.config["process"]["args"] = ["/checker", "wait-signal"]
        bundle.save()
        bundle.husk("create", "--bundle", bundle.path, "c1", check=True)
        try:
            with open("/proc/self/mountinfo") as f:
                on_host = [line.split()[4] for line in f if str(shared) in line.split()[4]]
            assert on_host == [str(shared)], on_host  # only our tmpfs: nothing propagated back
            r = bundle.husk("exec", "c1", "sh", "-c", "head -2 /proc/1/mountinfo")
            assert "shared:" in r.out, r.out + r.err  # the container's / is shared, as asked
        finally:
            bundle.husk("delete", "--force", "c1")
    finally:
        subprocess.run(["umount", "-l", str(shared)])


def test_tmpcopyup_of_a_deep_tree(bundle):
    # 200 levels: a frame per level overflowed husk-init's stack at ~130.
    deep = os.path.join(bundle.rootfs, "srv")
    path = deep
    for i in range(200):
        path = os.path.join(path, "d")
    os.makedirs(path)
    with open(os.path.join(path, "leaf"), "w") as f:
        f.write("bottom")
    bundle.config["mounts"].append({"destination": "/srv", "type": "tmpfs", "source": "tmpfs",
                                    "options": ["tmpcopyup"]})
    r = bundle.run("sh", "-c", "cat /srv" + "/d" * 200 + "/leaf; echo; grep -c ' /srv ' /proc/self/mounts")
    assert r.code == 0, r.err
    assert r.out.split() == ["bottom", "1"]
