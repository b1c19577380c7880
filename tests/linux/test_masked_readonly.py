"""linux.maskedPaths and linux.readonlyPaths (runc's mask.bats)."""

import os

import pytest

pytestmark = pytest.mark.root


def test_masked_file_reads_empty(bundle):
    r = bundle.run("/checker", "stat", "/proc/keys")
    assert r.json()["type"] == "char"
    assert (r.json()["major"], r.json()["minor"]) == (1, 3)
    assert bundle.run("cat", "/proc/keys", cid="c2").out == ""


def test_masked_directory_is_empty_and_read_only(bundle):
    bundle.config["linux"]["maskedPaths"].append("/etc")
    assert bundle.run("ls", "-A", "/etc").out == ""
    assert bundle.run("/checker", "write", "/etc/x", "y", cid="c2").out.strip() == "EROFS"


def test_masked_path_cannot_be_unmounted(bundle):
    r = bundle.run("umount", "/proc/keys")
    assert r.code != 0


def test_readonly_path(bundle):
    r = bundle.run("/checker", "write", "/proc/sys/kernel/domainname", "x")
    assert r.out.strip() == "EROFS"


def test_readonly_path_of_rootfs_dir(bundle):
    bundle.config["root"]["readonly"] = False
    bundle.config["linux"]["readonlyPaths"].append("/home")
    assert bundle.run("/checker", "write", "/home/x", "y").out.strip() == "EROFS"
    assert bundle.run("/checker", "write", "/root/x", "y", cid="c2").out.strip() == "ok"


def test_missing_masked_path_is_ignored(bundle):
    bundle.config["linux"]["maskedPaths"].append("/does/not/exist")
    assert bundle.run("true").code == 0


def test_masked_path_through_symlink_is_refused(bundle, tmp_path):
    os.symlink("/etc", os.path.join(bundle.rootfs, "link-to-etc"))
    bundle.config["linux"]["maskedPaths"].append("/link-to-etc")
    r = bundle.run("true")
    assert r.code != 0
    assert "masked path" in r.err and "/link-to-etc" in r.err
