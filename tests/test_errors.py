"""Bad input: one clear line naming the field, a non-zero exit, and
nothing left behind (the bundle fixture checks state, mounts, cgroups
and processes after each test)."""

import json
import os

import pytest

pytestmark = pytest.mark.root


def create_fails(bundle, *needles):
    bundle.save()
    r = bundle.husk("create", "--bundle", bundle.path, "c1")
    assert r.code != 0
    line = r.err.strip()
    assert len(line.splitlines()) == 1, line
    for n in needles:
        assert n in line, line
    assert bundle.husk("state", "c1").code != 0
    return line


def test_bad_json(bundle):
    with open(os.path.join(bundle.path, "config.json"), "w") as f:
        f.write("{ not json")
    r = bundle.husk("create", "--bundle", bundle.path, "c1")
    assert r.code != 0 and "invalid JSON" in r.err


def test_missing_config(bundle, tmp_path):
    r = bundle.husk("create", "--bundle", str(tmp_path), "c1")
    assert r.code != 0 and "not found" in r.err


def test_bad_oci_version(bundle):
    bundle.config["ociVersion"] = "banana"
    create_fails(bundle, "ociVersion")


def test_missing_process_args(bundle):
    bundle.config["process"]["args"] = []
    create_fails(bundle, "process.args")


def test_missing_root(bundle):
    del bundle.config["root"]
    create_fails(bundle, "root")


def test_rootfs_missing(bundle):
    bundle.config["root"]["path"] = "/nonexistent/rootfs"
    create_fails(bundle, "root.path")


def test_host_root_refused(bundle):
    bundle.config["root"]["path"] = "/"
    create_fails(bundle, "root.path", "host's /")


def test_unknown_namespace(bundle):
    bundle.config["linux"]["namespaces"].append({"type": "bogus"})
    create_fails(bundle, "linux.namespaces[6].type")


def test_relative_mount_destination(bundle):
    bundle.config["mounts"].append({"destination": "relative/path", "type": "tmpfs", "source": "tmpfs"})
    create_fails(bundle, "mounts[7].destination")


def test_relative_cwd(bundle):
    bundle.config["process"]["cwd"] = "tmp"
    create_fails(bundle, "process.cwd")


def test_unknown_capability(bundle):
    bundle.config["process"]["capabilities"]["bounding"].append("CAP_WISHFUL_THINKING")
    create_fails(bundle, "process.capabilities.bounding[3]", "CAP_WISHFUL_THINKING")


def test_unknown_rlimit(bundle):
    bundle.config["process"]["rlimits"] = [{"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1}]
    create_fails(bundle, "process.rlimits[0].type")


def test_hostname_without_uts_namespace(bundle):
    bundle.config["linux"]["namespaces"] = [{"type": "mount"}]
    create_fails(bundle, "hostname")


def test_host_sysctl_refused(bundle):
    bundle.config["linux"]["sysctl"] = {"vm.swappiness": "10"}
    create_fails(bundle, "linux.sysctl.vm.swappiness")


def test_missing_executable(bundle):
    bundle.config["process"]["args"] = ["no-such-program"]
    create_fails(bundle, "no-such-program", "not found")


def test_bind_source_missing(bundle):
    bundle.config["mounts"].append({"destination": "/x", "type": "bind", "source": "/no/such/dir", "options": ["bind"]})
    create_fails(bundle, "mounts[7].source")


def test_bad_mount_option_fails_in_the_helper(bundle):
    bundle.config["mounts"].append({"destination": "/x", "type": "tmpfs", "source": "tmpfs",
                                    "options": ["mode=notoctal"]})
    create_fails(bundle, "mount", "/x", "mode")


def test_rlimit_above_hard_limit_as_json_log(bundle, tmp_path):
    log = tmp_path / "log.json"
    bundle.config["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 10, "hard": 5}]
    bundle.save()
    r = bundle.husk("--log", str(log), "--log-format=json", "create", "--bundle", bundle.path, "c1")
    assert r.code != 0
    entry = json.loads(log.read_text().splitlines()[-1])
    assert entry["level"] == "error" and "process.rlimits[0]" in entry["msg"]


def test_invalid_container_id(bundle):
    r = bundle.husk("create", "--bundle", bundle.path, "../escape")
    assert r.code != 0 and "invalid container id" in r.err


def test_systemd_cgroup_is_refused_clearly(bundle):
    r = bundle.husk("--systemd-cgroup", "state", "c1")
    assert r.code != 0 and "--systemd-cgroup" in r.err


def test_cgroups_path_with_dotdot_refused(bundle):
    bundle.config["linux"]["cgroupsPath"] = "/husk-test/../../escape"
    create_fails(bundle, "linux.cgroupsPath")


def test_rlimit_above_the_hosts_hard_limit_is_named(bundle):
    import resource
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    with open("/proc/self/status") as f:
        caps = int(next(line for line in f if line.startswith("CapEff:")).split()[1], 16)
    if caps & (1 << 24) or hard >= 1048576:
        pytest.skip("this host can raise RLIMIT_NOFILE to 1048576")
    bundle.config["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 1048576, "hard": 1048576}]
    create_fails(bundle, "process.rlimits[0]", "RLIMIT_NOFILE", "CAP_SYS_RESOURCE")
