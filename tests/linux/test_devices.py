"""/dev: default devices, config devices, links, and the device cgroup."""

import os

import pytest

pytestmark = pytest.mark.root


@pytest.mark.parametrize("path,major,minor", [("/dev/null", 1, 3), ("/dev/zero", 1, 5), ("/dev/full", 1, 7),
                                              ("/dev/random", 1, 8), ("/dev/urandom", 1, 9), ("/dev/tty", 5, 0)])
def test_default_devices(bundle, path, major, minor):
    st = bundle.run("/checker", "stat", path).json()
    assert (st["type"], st["major"], st["minor"], st["mode"]) == ("char", major, minor, 0o666)


def test_dev_links(bundle):
    r = bundle.run("sh", "-c", "for l in fd stdin stdout stderr ptmx; do readlink /dev/$l; done")
    assert r.out.split() == ["/proc/self/fd", "/proc/self/fd/0", "/proc/self/fd/1", "/proc/self/fd/2", "pts/ptmx"]


def test_config_device(bundle):
    bundle.config["linux"]["devices"] = [{"path": "/dev/custom/fuse-like", "type": "c", "major": 1, "minor": 7,
                                          "fileMode": 0o640, "uid": 1000, "gid": 1000}]
    bundle.config["linux"]["resources"]["devices"].append({"allow": True, "type": "c", "major": 1, "minor": 7,
                                                           "access": "rwm"})
    st = bundle.run("/checker", "stat", "/dev/custom/fuse-like").json()
    assert (st["type"], st["major"], st["minor"], st["mode"], st["uid"], st["gid"]) == ("char", 1, 7, 0o640, 1000, 1000)


def test_device_cgroup_denies_other_devices(bundle):
    bundle.config["process"]["capabilities"]["bounding"].append("CAP_MKNOD")
    bundle.config["process"]["capabilities"]["effective"].append("CAP_MKNOD")
    bundle.config["process"]["capabilities"]["permitted"].append("CAP_MKNOD")
    # /dev/vda-like block device 253:0: mknod itself is refused by the device cgroup.
    r = bundle.run("mknod", "/dev/blk", "b", "253", "0")
    assert r.code != 0 and "not permitted" in r.err.lower()


def test_dev_is_fresh_tmpfs_not_the_rootfs_dev(bundle):
    open(os.path.join(bundle.rootfs, "dev", "planted"), "w").close()
    assert bundle.run("ls", "/dev/planted").code != 0


def test_update_with_containerds_device_list_keeps_the_default_devices(bundle, tmp_path):
    """containerd's UpdateContainerResources sends the whole LinuxResources,
    whose devices are only "deny all": the default devices stay usable, as
    they are after create (runc's AllowedDevices)."""
    import json

    bundle.config["process"]["args"] = ["/checker", "wait-signal"]
    bundle.save()
    bundle.husk("run", "--detach", "--bundle", bundle.path, "c1", check=True)
    try:
        resources = tmp_path / "resources.json"
        resources.write_text(json.dumps({"devices": [{"allow": False, "access": "rwm"}],
                                         "memory": {"limit": 64 << 20}}))
        bundle.husk("update", "-r", str(resources), "c1", check=True)
        for dev in ("/dev/null", "/dev/zero", "/dev/urandom", "/dev/ptmx"):
            r = bundle.husk("exec", "c1", "sh", "-c", f"exec 3<>{dev} && echo opened")
            assert r.code == 0 and r.out == "opened\n", (dev, r.err)
        r = bundle.husk("exec", "c1", "mknod", "/tmp/blk", "b", "253", "0")
        assert r.code != 0  # still no other device
    finally:
        bundle.husk("delete", "--force", "c1")
