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


def test_a_warning_goes_to_the_log_once_and_not_to_stderr(bundle, tmp_path):
    """A field husk ignores is a warning, given once per create (a cached
    recipe would not repeat it): with --log only there, as runc does
    (podman and containerd show the runtime's stderr as its output);
    without --log on stderr."""
    log = tmp_path / "husk.log"
    bundle.config["linux"]["resources"] = {"memory": {"kernel": 1 << 30, "kernelTCP": 1 << 30}}
    bundle.config["process"]["args"] = ["/checker", "report"]
    bundle.save()
    for cid in ("c1", "c2"):
        r = bundle.husk("--log", str(log), "--log-format=json", "run", "--bundle", bundle.path, cid)
        assert r.code == 0 and "warning" not in r.err, r.err
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    warnings = [e for e in entries if e["level"] == "warning"]
    assert len(warnings) == 2 and all("linux.resources.memory.kernel" in e["msg"] for e in warnings), entries
    r = bundle.husk("run", "--bundle", bundle.path, "c3")
    assert r.code == 0 and r.err.count("husk: warning: linux.resources.memory.kernel") == 1, r.err


def test_exec_format_error_is_126_and_missing_program_127(bundle):
    """execve's errno comes back as a record after READY too (through the
    exec fifo): ENOEXEC is 126, ENOENT 127, for run, start and exec."""
    with open(os.path.join(bundle.rootfs, "garbage"), "wb") as f:
        f.write(b"\x01\x02 not a program")
    os.chmod(os.path.join(bundle.rootfs, "garbage"), 0o755)
    r = bundle.run("/garbage")
    assert r.code == 126 and "exec: /garbage" in r.err and "exec format error" in r.err, r.err
    r = bundle.run("/no-such-program")
    assert r.code == 127 and "/no-such-program" in r.err, r.err
    bundle.config["process"]["args"] = ["/garbage"]
    bundle.save()
    bundle.husk("create", "--bundle", bundle.path, "c2", check=True)
    r = bundle.husk("start", "c2")
    assert r.code == 126 and "start: exec: /garbage" in r.err, r.err
    bundle.husk("delete", "--force", "c2", check=True)
    bundle.config["process"]["args"] = ["/checker", "wait-signal"]
    bundle.save()
    bundle.husk("run", "--detach", "--bundle", bundle.path, "c3", check=True)
    try:
        assert bundle.husk("exec", "c3", "/garbage").code == 126
        assert bundle.husk("exec", "c3", "/no-such-program").code == 127
    finally:
        bundle.husk("delete", "--force", "c3")


def test_invalid_container_id(bundle):
    r = bundle.husk("create", "--bundle", bundle.path, "../escape")
    assert r.code != 0 and "invalid container id" in r.err


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


@pytest.mark.skipif(os.path.isdir("/run/systemd/system"), reason="systemd is the init here (test_systemd.py)")
def test_systemd_cgroup_without_systemd_is_refused(bundle):
    bundle.config["linux"]["cgroupsPath"] = "machine.slice:husk:c1"
    bundle.save()
    r = bundle.husk("--systemd-cgroup", "create", "--bundle", bundle.path, "c1")
    assert r.code == 1
    assert r.err.strip().splitlines() == [
        "husk: --systemd-cgroup: systemd is not running on this host (no /run/systemd/system); "
        "drop the flag to use cgroupfs"]
    assert bundle.husk("state", "c1").code != 0


def test_a_systemd_cgroups_path_without_the_flag_says_which_flag(bundle):
    bundle.config["linux"]["cgroupsPath"] = "machine.slice:husk:c1"
    create_fails(bundle, "linux.cgroupsPath", "is a systemd slice:prefix:name: that needs husk --systemd-cgroup")


@pytest.mark.parametrize("verb", ["create", "kill"])
def test_an_error_reaches_the_log_when_no_one_reads_stderr(bundle, verb):
    """A client that closed its end of our stderr (SIGPIPE, EPIPE) still
    finds the error in --log, where containerd's shim reads it: create's
    is Python's (a bad config), kill's the front end's own."""
    import subprocess
    import sys

    sys.path.insert(0, os.path.dirname(__file__))
    from conftest import HUSK

    if verb == "create":
        bundle.config["ociVersion"] = "banana"
        bundle.save()
        args, words = ["create", "--bundle", bundle.path, "c1"], "ociVersion"
    else:
        bundle.config["process"]["args"] = ["true"]
        bundle.save()
        bundle.husk("run", "--keep", "--bundle", bundle.path, "c1", check=True)
        args, words = ["kill", "c1", "KILL"], "container not running"
    log = os.path.join(bundle.path, "log.json")
    read_end, write_end = os.pipe()
    os.close(read_end)  # no one will read it
    proc = subprocess.run([HUSK, "--root", bundle.root, "--log", log, "--log-format", "json", *args],
                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=write_end, cwd=bundle.path)
    os.close(write_end)
    assert proc.returncode != 0
    with open(log) as f:
        entries = [json.loads(line) for line in f]
    assert entries and entries[-1]["level"] == "error" and words in entries[-1]["msg"], entries
    if verb == "kill":
        bundle.husk("delete", "c1", check=True)
