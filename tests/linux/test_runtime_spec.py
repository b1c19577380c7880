"""runtime-spec conformance, in the shape the OCI runtime-tools validation
programs drive a runtime: the bundle is a fresh `ocitest*` directory under
/tmp (mode 0700, made by mkdtemp) that is itself the rootfs (root.path
"."), the config is what runtime-tools' generator makes
(data/runtime_tools_generator.json: `generate.New("linux")`, with its old
seccomp profile that has no close_range and ambient capabilities it also
makes inheritable), and husk is driven with runc's command lines:
create/start/state/kill/delete with --bundle and --pid-file.

Each test is named after the runtime-spec section it covers (runtime.md
for the lifecycle, config.md and config-linux.md for the fields) and reads
the effect back from inside the container or from the host's kernel.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time

import pytest
from conftest import CGROUP_PARENT, CHECKER, HUSK, Bundle, cleanup, find_leaks

pytestmark = pytest.mark.root

GENERATOR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "runtime_tools_generator.json")


@pytest.fixture
def suite(tmp_path, built_rootfs, request):
    """A bundle as runtime-tools' util.PrepareBundle makes it."""
    path = tempfile.mkdtemp(prefix="ocitest", dir="/tmp")
    subprocess.run(["cp", "-a", built_rootfs + "/.", path], check=True)
    shutil.copy(CHECKER, os.path.join(path, "checker"))
    with open(GENERATOR) as f:
        config = json.load(f)
    config["root"]["path"] = "."
    name = request.node.name[:60].replace("[", "-").replace("]", "")
    config["linux"]["cgroupsPath"] = f"/{CGROUP_PARENT}/{name}"
    b = Bundle(path, str(tmp_path / "state"), config)
    yield b
    for _ in range(40):
        leaks = find_leaks(b)
        if not leaks:
            break
        time.sleep(0.05)
    cleanup(b)
    shutil.rmtree(path, ignore_errors=True)
    assert not leaks, f"left behind: {leaks}"


def sh(b: Bundle, script: str, cid: str = "c1", wrap: tuple[str, ...] = ()):
    """Run `sh -c script` in the bundle with husk run; returns the Result."""
    b.config["process"]["args"] = ["sh", "-c", script]
    b.save()
    if wrap:
        from conftest import run_husk
        return run_husk([*wrap, HUSK, "--root", b.root, "run", "--bundle", b.path, cid], cwd=b.path)
    return b.husk("run", "--bundle", b.path, cid)


def state(b: Bundle, cid: str) -> dict:
    r = b.husk("state", cid)
    assert r.code == 0, r.err
    return r.json()


def wait_stopped(b: Bundle, cid: str) -> None:
    for _ in range(200):
        if state(b, cid)["status"] == "stopped":
            return
        time.sleep(0.05)
    raise AssertionError(f"{cid} did not stop")


# ---- the generator's own config (runtime-tools "default") ----------------

def test_config_the_generators_default_config_runs_as_specified(suite):
    """Old seccomp profile without close_range, ambient = inheritable =
    the 14 default capabilities, RLIMIT_NOFILE 1024, hostname, mounts."""
    suite.config["process"]["args"] = ["/checker", "report"]
    seen = suite.report()
    names = suite.config["process"]["capabilities"]["ambient"]
    from runtime.core.linux.constants import CAPABILITIES
    mask = "%016x" % sum(1 << CAPABILITIES.index(n) for n in names)
    assert seen["caps"] == {"CapInh": mask, "CapPrm": mask, "CapEff": mask, "CapBnd": mask, "CapAmb": mask}
    assert seen["seccomp"] == "2" and seen["no_new_privs"] == 0
    assert seen["rlimits"]["7"] == [1024, 1024]  # RLIMIT_NOFILE
    assert seen["hostname"] == "mrsdalloway" and seen["cwd"] == "/"
    mounts = {m["target"]: (m["type"], m["source"]) for m in seen["mounts"]}
    for m in suite.config["mounts"]:
        assert mounts[m["destination"]] == (m["type"], m["source"]), m


def test_config_default_devices_and_symlinks_exist(suite):
    r = sh(suite, "for l in fd stdin stdout stderr; do readlink /dev/$l; done; "
                  "for d in null zero full random urandom tty ptmx; do [ -c /dev/$d ] && echo $d; done")
    assert r.code == 0, r.err
    assert r.out.split() == ["/proc/self/fd", "/proc/self/fd/0", "/proc/self/fd/1", "/proc/self/fd/2",
                             "null", "zero", "full", "random", "urandom", "tty", "ptmx"]


# ---- config-linux.md: rootfs mount propagation --------------------------

ROOT_LINE = 'awk \'$5 == "/"\' /proc/self/mountinfo'


@pytest.mark.parametrize("host", ["private", "shared"])
@pytest.mark.parametrize("propagation", ["shared", "slave", "private", "unbindable"])
def test_config_linux_rootfs_propagation(suite, propagation, host):
    """Every propagation starts, on a host whose / is private or shared
    (systemd's default), each made here with unshare: "/" in the
    container gets the asked type.  unbindable used to fail: the rootfs
    could not be bound on itself from an unbindable parent (EINVAL)."""
    suite.config["linux"]["rootfsPropagation"] = propagation
    wrap = ("unshare", "--mount", "--propagation", host)
    r = sh(suite, ROOT_LINE, wrap=wrap)
    assert r.code == 0, r.err
    fields = r.out.split(" - ")[0].split()[6:]  # the optional fields of mountinfo
    tags = {f.split(":")[0] for f in fields}
    expected = {"shared": {"shared"}, "private": set(), "unbindable": {"unbindable"},
                "slave": {"master"} if host == "shared" else set()}[propagation]
    assert tags == expected, r.out


def test_config_linux_rootfs_propagation_unbindable_cannot_be_bound(suite):
    """What the suite checks inside: / is unbindable, so binding it fails."""
    suite.config["linux"]["rootfsPropagation"] = "unbindable"
    suite.config["process"]["capabilities"] = {k: ["CAP_SYS_ADMIN"] for k in ("bounding", "effective", "permitted")}
    del suite.config["linux"]["seccomp"]
    r = sh(suite, "mkdir -p /target && mount --rbind / /target; echo rc=$?")
    assert r.out.strip().endswith("rc=255") or "rc=1" in r.out, r.out
    assert "Invalid argument" in r.err, r.err


# ---- config-linux.md: devices -------------------------------------------

def test_config_linux_devices_are_made_whatever_the_device_rules(suite):
    """linux.devices are created even where linux.resources.devices (the
    generator's deny-all) does not allow them: the rules go on after the
    nodes are made, as runc's do, and still rule every open."""
    devs = [{"path": "/dev/test1", "type": "c", "major": 10, "minor": 666, "fileMode": 0o660, "uid": 0, "gid": 0},
            {"path": "/dev/test2", "type": "b", "major": 8, "minor": 666, "fileMode": 0o660, "uid": 0, "gid": 0},
            {"path": "/dev/test3", "type": "p", "major": 8, "minor": 666, "fileMode": 0o660}]
    suite.config["linux"]["devices"] = devs
    r = sh(suite, 'stat -c "%F %t %T %a %u %g" /dev/test1 /dev/test2 /dev/test3; '
                  'cat /dev/test1 2>&1; head -c1 /dev/zero | wc -c')
    lines = r.out.splitlines()
    assert lines[:3] == ["character special file a 29a 660 0 0", "block special file 8 29a 660 0 0",
                         "fifo 0 0 660 0 0"], r.out + r.err
    assert "Operation not permitted" in lines[3], r.out  # not allowed by the device cgroup
    assert lines[4].strip() == "1"  # a default device stays usable


# ---- config-linux.md: readonlyPaths --------------------------------------

def test_config_linux_readonly_paths_nested_dirs_files_and_device_nodes(suite):
    ro = ["/readonly-dir", "/readonly-file", "/readonly-dir/readonly-subdir", "/readonly-dir/readonly-file",
          "/readonly-dir/readonly-subdir/readonly-file", "/readonly-device"]
    suite.config["linux"]["readonlyPaths"] = ro
    os.makedirs(os.path.join(suite.path, "readonly-dir", "readonly-subdir"))
    for f in ro[1:5:2] + ro[4:5]:
        with open(suite.path + f, "w") as out:
            out.write("immutable")
    os.mknod(suite.path + "/readonly-device", 0o666 | 0o020000, os.makedev(1, 3))
    r = sh(suite, "for p in /readonly-dir /readonly-dir/readonly-subdir; do touch $p/x 2>/dev/null && echo w; done; "
                  "for f in /readonly-file /readonly-dir/readonly-file /readonly-dir/readonly-subdir/readonly-file; "
                  "do cat $f; echo; (echo x > $f) 2>/dev/null && echo w; done; [ -c /readonly-device ] && echo dev; "
                  "awk '$5 == \"/readonly-device\" {print $6}' /proc/self/mountinfo")
    # The device node is bound read-only like the rest (what runtimetest
    # checks); whether it opens for writing is the device cgroup's call.
    *out, options = r.out.split()
    assert r.code == 0 and out == ["immutable"] * 3 + ["dev"], (r.out, r.err)
    assert "ro" in options.split(","), options


@pytest.mark.parametrize("path, why", [("readonly-relpath", "must be an absolute path"),
                                       ("/readonly-symlink", "symbolic links")])
def test_config_linux_readonly_paths_relative_or_dangling_symlink_is_an_error(suite, path, why):
    suite.config["linux"]["readonlyPaths"] = [path]
    os.symlink("../readonly-symlink", os.path.join(suite.path, "readonly-symlink"))
    r = sh(suite, "true")
    assert r.code != 0 and why in r.err, r.err


# ---- config-linux.md: namespaces -----------------------------------------

def wait_for_new_namespace(link: str, ours: str) -> None:
    """Until LINK names a namespace other than OURS: unshare(1) may not
    have unshared yet.  pid_for_children reads ENOENT between unshare(2)
    and the fork that gives the new pid namespace its init (the kernel
    names no pid namespace without a child reaper)."""
    deadline = time.monotonic() + 60  # a guard against a hang, not a measure of speed
    while time.monotonic() < deadline:
        try:
            if os.readlink(link) != os.readlink(ours):
                return
        except FileNotFoundError:
            pass
        time.sleep(0.02)
    raise AssertionError(f"{link} never named a new namespace")


@pytest.mark.parametrize("ns, flag, ns_type", [("ipc", "--ipc", "ipc"), ("mnt", "--mount", "mount"),
                                               ("net", "--net", "network"), ("pid", "--pid", "pid"),
                                               ("uts", "--uts", "uts")])
def test_config_linux_namespaces_path_is_joined(suite, ns, flag, ns_type):
    holder = subprocess.Popen(["unshare", flag, "--fork", "sleep", "1000"], start_new_session=True)
    try:
        # pid: unshare's child is in the new namespace; pid_for_children names it.
        link = f"/proc/{holder.pid}/ns/{ns}" + ("_for_children" if ns == "pid" else "")
        wait_for_new_namespace(link, f"/proc/self/ns/{ns}")
        nss = [n for n in suite.config["linux"]["namespaces"] if n["type"] != ns_type]
        suite.config["linux"]["namespaces"] = nss + [{"type": ns_type, "path": link}]
        suite.config["process"]["args"] = ["sleep", "100"]
        suite.save()
        assert suite.husk("create", "--bundle", suite.path, "c1").code == 0
        try:
            assert os.readlink(f"/proc/{state(suite, 'c1')['pid']}/ns/{ns}") == os.readlink(link)
        finally:
            suite.husk("delete", "--force", "c1")
    finally:
        os.killpg(holder.pid, 9)
        holder.wait()


# ---- runtime.md: the lifecycle operations --------------------------------

def test_runtime_create_needs_a_unique_id(suite):
    suite.config["process"]["args"] = ["ls"]
    suite.save()
    assert suite.husk("create", "--bundle", suite.path).code != 0
    assert suite.husk("create", "--bundle", suite.path, "c1").code == 0
    r = suite.husk("create", "--bundle", suite.path, "c1")
    assert r.code != 0 and "already exists" in r.err
    assert state(suite, "c1")["status"] == "created"
    suite.husk("delete", "--force", "c1")


def test_runtime_start_runs_process_only_then_and_once(suite):
    suite.config["process"]["args"] = ["sh", "-c", "echo 'process called' >> /output"]
    suite.save()
    output = os.path.join(suite.path, "output")
    assert suite.husk("start").code != 0 and suite.husk("start", "c1").code != 0
    assert suite.husk("create", "--bundle", suite.path, "c1").code == 0
    assert not os.path.exists(output)  # process.args not applied until start
    assert suite.husk("start", "c1").code == 0
    wait_stopped(suite, "c1")
    r = suite.husk("start", "c1")
    assert r.code != 0 and "not created" in r.err
    with open(output) as f:
        assert f.read() == "process called\n"
    assert suite.husk("delete", "c1").code == 0


def test_runtime_create_without_process_is_refused(suite):
    """The spec lets create go without process and makes start fail; runc
    refuses at create ("process property must not be empty"), and so does
    husk: a container that can never start is not worth making."""
    del suite.config["process"]
    suite.save()
    r = suite.husk("create", "--bundle", suite.path, "c1")
    assert r.code != 0 and "process" in r.err and not os.listdir(suite.root)


def test_runtime_config_updates_after_create_do_not_affect_the_container(suite):
    suite.config["linux"].update(maskedPaths=["/proc/kcore"], readonlyPaths=["/proc/sys"],
                                 sysctl={"net.ipv4.ip_forward": "1"}, rootfsPropagation="shared")
    suite.config["process"]["oomScoreAdj"] = 100
    suite.config["process"]["args"] = ["sh", "-c", "cat /proc/self/oom_score_adj /proc/sys/net/ipv4/ip_forward > /out"]
    suite.save()
    assert suite.husk("create", "--bundle", suite.path, "c1").code == 0
    with open(os.path.join(suite.path, "config.json"), "w") as f:
        json.dump({"ociVersion": "1.0.0"}, f)
    assert suite.husk("start", "c1").code == 0
    wait_stopped(suite, "c1")
    with open(os.path.join(suite.path, "out")) as f:
        assert f.read().split() == ["100", "1"]
    assert suite.husk("delete", "c1").code == 0


def test_runtime_delete_of_a_created_or_running_container_fails_and_has_no_effect(suite):
    suite.config["process"]["args"] = ["sleep", "30"]
    suite.save()
    assert suite.husk("create", "--bundle", suite.path, "c1").code == 0
    assert suite.husk("delete", "c1").code != 0 and state(suite, "c1")["status"] == "created"
    assert suite.husk("start", "c1").code == 0
    assert suite.husk("delete", "c1").code != 0 and state(suite, "c1")["status"] == "running"
    assert suite.husk("kill", "c1", "KILL").code == 0
    wait_stopped(suite, "c1")
    assert suite.husk("delete", "c1").code == 0
    assert suite.husk("state", "c1").code != 0


def test_runtime_kill_of_a_stopped_container_fails_and_has_no_effect(suite):
    suite.config["process"]["args"] = ["true"]
    suite.save()
    assert suite.husk("kill").code != 0 and suite.husk("kill", "c1", "KILL").code != 0
    assert suite.husk("create", "--bundle", suite.path, "c1").code == 0
    assert suite.husk("start", "c1").code == 0
    wait_stopped(suite, "c1")
    before = state(suite, "c1")
    assert suite.husk("kill", "c1", "KILL").code != 0
    assert state(suite, "c1") == before
    assert suite.husk("delete", "c1").code == 0


@pytest.mark.parametrize("signal", ["TERM", "USR1", "USR2"])
def test_runtime_kill_sends_the_signal(suite, signal):
    suite.config["process"]["args"] = ["sh", "-c", f"trap 'touch /{signal}' {signal}; sleep 10 & wait $!"]
    suite.save()
    assert suite.husk("create", "--bundle", suite.path, "c1").code == 0
    assert suite.husk("start", "c1").code == 0
    time.sleep(0.2)  # not a timed assertion: the trap must be set before the signal comes
    assert suite.husk("kill", "c1", signal).code == 0
    wait_stopped(suite, "c1")
    assert os.path.exists(os.path.join(suite.path, signal))
    assert suite.husk("delete", "c1").code == 0


def test_runtime_pid_file_holds_the_containers_pid(suite, tmp_path):
    pid_file = tmp_path / "oci-pid" / "pidfile"
    pid_file.parent.mkdir()
    suite.config["process"]["args"] = ["true"]
    suite.save()
    assert suite.husk("create", "--pid-file", str(pid_file), "--bundle", suite.path, "c1").code == 0
    assert int(pid_file.read_text()) == state(suite, "c1")["pid"]  # Go's Atoi: digits only, no newline
    suite.husk("delete", "--force", "c1")


def test_runtime_hooks_get_the_state_on_stdin(suite):
    suite.config["annotations"] = {"org.opencontainers.runtime-tools": "hook stdin test"}
    suite.config["hooks"] = {kind: [{"path": os.path.join(suite.path, "bin", "sh"), "timeout": 1,
                                     "args": ["sh", "-c", f"cat > {suite.path}/{kind}"]}]
                             for kind in ("prestart", "poststart", "poststop")}
    suite.config["process"]["args"] = ["true"]
    suite.save()
    assert suite.husk("create", "--bundle", suite.path, "c1").code == 0
    pid = state(suite, "c1")["pid"]
    assert suite.husk("start", "c1").code == 0
    wait_stopped(suite, "c1")
    assert suite.husk("delete", "c1").code == 0
    for kind, status in (("prestart", "created"), ("poststart", "running"), ("poststop", "stopped")):
        with open(os.path.join(suite.path, kind)) as f:
            seen = json.load(f)
        assert (seen["id"], seen["bundle"], seen["status"]) == ("c1", suite.path, status)
        assert seen["annotations"] == suite.config["annotations"]
        assert kind == "poststop" or seen["pid"] == pid


def test_runtime_delete_removes_only_what_create_made(suite):
    """A cgroup path husk made (with its parents) goes at delete; a cgroup
    someone else made and moved the container into stays."""
    suite.config["linux"]["cgroupsPath"] = f"/{CGROUP_PARENT}-made/cgroupstest"
    suite.config["linux"]["resources"]["pids"] = {"limit": 1000}
    suite.config["process"]["args"] = ["true"]
    suite.save()
    from runtime.core.cgroups.layout import detect
    pids = detect().v1.get("pids") or detect().unified
    theirs = os.path.join(pids, f"{CGROUP_PARENT}-theirs")
    os.mkdir(theirs)
    try:
        assert suite.husk("create", "--bundle", suite.path, "c1").code == 0
        ours = os.path.join(pids, f"{CGROUP_PARENT}-made", "cgroupstest")
        with open(os.path.join(ours, "pids.max")) as f:
            assert f.read().strip() == "1000"
        with open(os.path.join(theirs, "cgroup.procs"), "w") as f:
            f.write(str(state(suite, "c1")["pid"]))
        assert suite.husk("start", "c1").code == 0
        wait_stopped(suite, "c1")
        assert suite.husk("delete", "c1").code == 0
        assert not os.path.exists(os.path.dirname(ours)) and os.path.isdir(theirs)
    finally:
        suite.husk("delete", "--force", "c1")
        os.rmdir(theirs)


# ---- config.md: extensibility and valid values ---------------------------

def test_config_unknown_properties_and_annotations_are_ignored_invalid_values_refused(suite):
    suite.config["process"]["args"] = ["true"]
    suite.config["unknown"] = "unknown"
    suite.config["annotations"] = {"org.c1": ""}
    assert suite.run(cid="c1").code == 0
    suite.config["ociVersion"] = "invalid"
    r = suite.run(cid="c2")
    assert r.code != 0 and "ociVersion" in r.err


def test_config_process_cwd_and_env(suite):
    suite.config["process"]["cwd"] = "/test"
    suite.config["process"]["env"] += ["testa=valuea", "testb=123"]
    os.mkdir(os.path.join(suite.path, "test"), 0o700)
    r = sh(suite, 'pwd; echo "$testa $testb"')
    assert r.out.splitlines() == ["/test", "valuea 123"], r.err


def test_config_linux_sysctl(suite):
    suite.config["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1"}
    assert sh(suite, "cat /proc/sys/net/ipv4/ip_forward").out.strip() == "1"


def test_config_hostname(suite):
    suite.config["hostname"] = "hostname-specific"
    assert sh(suite, "hostname").out.strip() == "hostname-specific"


# ---- config.md: root.readonly --------------------------------------------

def test_config_root_readonly_true(suite):
    suite.config["root"]["readonly"] = True
    r = sh(suite, "touch /x 2>&1; echo rc=$?")
    assert "Read-only file system" in r.out and "rc=1" in r.out, r.out
    assert not os.path.exists(os.path.join(suite.path, "x"))


# ---- config.md: process --------------------------------------------------

def test_config_process_user_uid_gid_and_additional_gids(suite):
    suite.config["process"]["user"] = {"uid": 10, "gid": 10, "additionalGids": [5]}
    seen = suite.report()
    assert (seen["uid"], seen["euid"], seen["gid"], seen["egid"]) == (10, 10, 10, 10)
    assert seen["groups"] == [5]


def test_config_process_oom_score_adj(suite):
    suite.config["process"]["oomScoreAdj"] = 500
    assert sh(suite, "cat /proc/self/oom_score_adj").out.strip() == "500"


def test_config_process_rlimits(suite):
    suite.config["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024},
                                          {"type": "RLIMIT_CORE", "hard": 4096, "soft": 2048}]
    seen = suite.report()
    assert seen["rlimits"]["7"] == [1024, 1024] and seen["rlimits"]["4"] == [2048, 4096]


def test_config_process_rlimits_unknown_type_is_an_error(suite):
    suite.config["process"]["rlimits"] = [{"type": "RLIMIT_TEST", "hard": 1024, "soft": 1024}]
    r = sh(suite, "true")
    assert r.code != 0 and "RLIMIT_TEST" in r.err and not os.listdir(suite.root), r.err


def _host_bounding_caps() -> list[str]:
    from runtime.core.linux.constants import CAPABILITIES
    with open("/proc/self/status") as f:
        bnd = int(next(line.split()[1] for line in f if line.startswith("CapBnd")), 16)
    return [name for i, name in enumerate(CAPABILITIES) if bnd >> i & 1]


def test_config_process_capabilities_privileged(suite):
    """SetupPrivileged: every capability the host has, in every set."""
    caps = _host_bounding_caps()
    suite.config["process"]["capabilities"] = {s: caps for s in
                                               ("bounding", "effective", "inheritable", "permitted", "ambient")}
    seen = suite.report()
    with open("/proc/self/status") as f:
        bnd = next(line.split()[1] for line in f if line.startswith("CapBnd"))
    assert set(seen["caps"].values()) == {bnd}, seen["caps"]


def test_config_process_capabilities_the_runtime_lacks_are_named(suite):
    """A capability the host's bounding set has dropped cannot be given:
    capset would fail with a bare EPERM (runc's "operation not
    permitted"); husk names the capability and the set."""
    from runtime.core.linux.constants import CAPABILITIES
    missing = [c for c in CAPABILITIES if c not in _host_bounding_caps()]
    if not missing:
        pytest.skip("this host's bounding set has every capability")
    suite.config["process"]["capabilities"]["bounding"].append(missing[0])
    suite.config["process"]["capabilities"]["permitted"].append(missing[0])
    r = sh(suite, "true")
    assert r.code != 0 and missing[0] in r.err and not os.listdir(suite.root), r.err


def test_config_process_capabilities_unknown_name_is_an_error(suite):
    suite.config["process"]["capabilities"]["bounding"].append("CAP_TEST")
    r = sh(suite, "true")
    assert r.code != 0 and "CAP_TEST" in r.err and not os.listdir(suite.root), r.err


# ---- config-linux.md: maskedPaths ----------------------------------------

def test_config_linux_masked_paths_dirs_files_and_device_nodes(suite):
    masked = ["/masked-dir", "/masked-file", "/masked-dir/masked-subdir", "/masked-dir/masked-file",
              "/masked-dir/masked-subdir/masked-file", "/masked-block", "/masked-char", "/masked-fifo"]
    suite.config["linux"]["maskedPaths"] = masked
    os.makedirs(os.path.join(suite.path, "masked-dir", "masked-subdir"))
    with open(os.path.join(suite.path, "masked-dir", "masked-subdir", "tmpfile"), "w"):
        pass
    for f in ("/masked-file", "/masked-dir/masked-file", "/masked-dir/masked-subdir/masked-file"):
        with open(suite.path + f, "w") as out:
            out.write("secrets")
    # The suite makes them 0:0; 1:3 and 7:200 here, because on an overlayfs
    # (the v2 VM's /tmp) a 0:0 character device is a whiteout and refused.
    for name, kind, dev in (("block", 0o060000, (7, 200)), ("char", 0o020000, (1, 3)), ("fifo", 0o010000, (0, 0))):
        os.mknod(f"{suite.path}/masked-{name}", 0o666 | kind, os.makedev(*dev))
    r = sh(suite, "ls -A /masked-dir /masked-dir/masked-subdir; "
                  "cat /masked-file /masked-dir/masked-file /masked-dir/masked-subdir/masked-file; "
                  "for n in block char fifo; do [ -e /masked-$n ] && echo $n; done")
    assert r.code == 0, r.err
    assert "secrets" not in r.out and "tmpfile" not in r.out, r.out
    assert r.out.split()[-3:] == ["block", "char", "fifo"], r.out


@pytest.mark.parametrize("path, why", [("masked-relpath", "must be an absolute path"),
                                       ("/masked-symlink", "symbolic links")])
def test_config_linux_masked_paths_relative_or_dangling_symlink_is_an_error(suite, path, why):
    suite.config["linux"]["maskedPaths"] = [path]
    os.symlink("../masked-symlink", os.path.join(suite.path, "masked-symlink"))
    r = sh(suite, "true")
    assert r.code != 0 and why in r.err and not os.listdir(suite.root), r.err


# ---- config-linux.md: namespaces without a path --------------------------

def test_config_linux_namespaces_without_path_are_new(suite):
    """Every namespace type, user and cgroup included (uid/gid 0-999 in
    the container mapped to 1000-1999 outside): none is the host's."""
    suite.config["linux"]["namespaces"] = [{"type": t} for t in
                                           ("cgroup", "ipc", "mount", "network", "pid", "user", "uts")]
    suite.config["linux"]["uidMappings"] = [{"hostID": 1000, "containerID": 0, "size": 1000}]
    suite.config["linux"]["gidMappings"] = [{"hostID": 1000, "containerID": 0, "size": 1000}]
    suite.config["process"]["args"] = ["sleep", "100"]
    suite.save()
    assert suite.husk("create", "--bundle", suite.path, "c1").code == 0
    try:
        pid = state(suite, "c1")["pid"]
        for ns in ("cgroup", "ipc", "mnt", "net", "pid", "user", "uts"):
            assert os.readlink(f"/proc/{pid}/ns/{ns}") != os.readlink(f"/proc/self/ns/{ns}"), ns
        with open(f"/proc/{pid}/uid_map") as f:
            assert f.read().split() == ["0", "1000", "1000"]
    finally:
        suite.husk("delete", "--force", "c1")


# ---- config-linux.md: linux.resources.devices ----------------------------

def test_config_linux_resources_devices_rules_are_in_the_cgroup(suite):
    """linux_cgroups_devices: the allow rules the config lists are what
    the device controller holds (v1's devices.list), and on v2 (an eBPF
    program, nothing to read back) what an open inside the container meets."""
    suite.config["linux"]["resources"]["devices"] += [
        {"allow": True, "type": "c", "major": 10, "minor": 229, "access": "rwm"},
        {"allow": True, "type": "b", "major": 8, "minor": 20, "access": "rw"},
        {"allow": True, "type": "b", "major": 10, "minor": 200, "access": "r"}]
    suite.config["process"]["args"] = ["sleep", "100"]
    suite.save()
    assert suite.husk("create", "--bundle", suite.path, "c1").code == 0
    try:
        from runtime.core.cgroups.layout import detect
        v1 = detect().v1.get("devices")
        if v1:
            with open(os.path.join(v1, suite.config["linux"]["cgroupsPath"].lstrip("/"), "devices.list")) as f:
                rules = f.read().split("\n")
            for rule in ("c 10:229 rwm", "b 8:20 rw", "b 10:200 r"):
                assert rule in rules, rules
    finally:
        suite.husk("delete", "--force", "c1")
    if not v1:
        suite.config["linux"]["devices"] = [
            {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o666},
            {"path": "/dev/test1", "type": "c", "major": 10, "minor": 230, "fileMode": 0o666}]
        r = sh(suite, "head -c0 /dev/fuse; echo fuse=$?; head -c0 /dev/test1; echo other=$?", cid="c2")
        assert "fuse=" in r.out and "Operation not permitted" in r.err, (r.out, r.err)


# ---- config-linux.md: linux.resources, read back as the suite does -------
#
# runtime-tools finds the container's cgroup from /proc/<pid>/cgroup and
# reads the controller's files under the host's mount of it.  Its
# programs use the absolute cgroupsPath "/cgrouptest" and the relative
# "testdir"; here the absolute path is the fixture's and the relative one
# lands under husk's parent (/husk), where runc would put it under its
# own cgroup: the suite reads the path back from /proc, so either holds.

def _cgroup_file(pid: int, controller: str, name: str) -> str:
    from runtime.core.cgroups.layout import detect
    layout = detect()
    with open(f"/proc/{pid}/cgroup") as f:
        lines = [line.rstrip("\n").split(":", 2) for line in f]
    if layout.mode == "v2" or controller not in layout.v1:
        path = next(p for _, ctrls, p in lines if ctrls == "")
        return os.path.join(layout.unified, path.lstrip("/"), name)
    path = next(p for _, ctrls, p in lines if controller in ctrls.split(","))
    return os.path.join(layout.v1[controller], path.lstrip("/"), name)


def _created_pid(b: Bundle, resources: dict, cgroups_path: str | None = None) -> int:
    b.config["linux"]["resources"].update(resources)
    if cgroups_path:
        b.config["linux"]["cgroupsPath"] = cgroups_path
    b.config["process"]["args"] = ["sleep", "100"]
    b.save()
    r = b.husk("create", "--bundle", b.path, "c1")
    assert r.code == 0, r.err
    return state(b, "c1")["pid"]


def _read(path: str) -> str:
    with open(path) as f:
        return f.read().strip()


V2_HOST = __import__("runtime.core.cgroups.layout", fromlist=["detect"]).detect().mode == "v2"


@pytest.mark.parametrize("limit, swappiness", [(50593792, 10), (151781376, 100)])
def test_config_linux_resources_memory(suite, limit, swappiness):
    memory = {"limit": limit, "reservation": limit, "swap": limit, "kernel": limit, "kernelTCP": limit,
              "swappiness": swappiness, "disableOOMKiller": True}
    pid = _created_pid(suite, {"memory": memory})
    try:
        if V2_HOST:
            assert _read(_cgroup_file(pid, "memory", "memory.max")) == str(limit)
            assert _read(_cgroup_file(pid, "memory", "memory.low")) == str(limit)
            assert _read(_cgroup_file(pid, "memory", "memory.swap.max")) == "0"  # swap is memory+swap
        else:
            for name, value in (("memory.limit_in_bytes", limit), ("memory.soft_limit_in_bytes", limit),
                                ("memory.memsw.limit_in_bytes", limit), ("memory.kmem.tcp.limit_in_bytes", limit),
                                ("memory.swappiness", swappiness)):
                assert _read(_cgroup_file(pid, "memory", name)) == str(value), name
            assert "oom_kill_disable 1" in _read(_cgroup_file(pid, "memory", "memory.oom_control"))
    finally:
        suite.husk("delete", "--force", "c1")


@pytest.mark.parametrize("shares, period, quota, cpus", [(1024, 100000, 50000, "0"), (2048, 500000, 200000, "all")])
def test_config_linux_resources_cpu(suite, shares, period, quota, cpus):
    cpus = f"0-{os.cpu_count() - 1}" if cpus == "all" else cpus
    pid = _created_pid(suite, {"cpu": {"shares": shares, "period": period, "quota": quota, "cpus": cpus, "mems": "0"}})
    try:
        if V2_HOST:
            assert _read(_cgroup_file(pid, "cpu", "cpu.max")) == f"{quota} {period}"
        else:
            assert _read(_cgroup_file(pid, "cpu", "cpu.shares")) == str(shares)
            assert _read(_cgroup_file(pid, "cpu", "cpu.cfs_period_us")) == str(period)
            assert _read(_cgroup_file(pid, "cpu", "cpu.cfs_quota_us")) == str(quota)
        assert _read(_cgroup_file(pid, "cpuset", "cpuset.cpus")) == (cpus if cpus != "0-0" else "0")
        assert _read(_cgroup_file(pid, "cpuset", "cpuset.mems")) == "0"
    finally:
        suite.husk("delete", "--force", "c1")


def test_config_linux_resources_cpu_empty_object(suite):
    """linux_cgroups_cpus' "empty" case: resources.cpu = {} creates."""
    _created_pid(suite, {"cpu": {}})
    suite.husk("delete", "--force", "c1")


@pytest.mark.parametrize("cgroups_path", [None, "testdir"])
def test_config_linux_resources_pids_absolute_and_relative_path(suite, cgroups_path):
    pid = _created_pid(suite, {"pids": {"limit": 1000}}, cgroups_path)
    try:
        path = _cgroup_file(pid, "pids", "pids.max")
        assert _read(path) == "1000"
        if cgroups_path:
            assert "/husk/testdir/pids.max" in path, path
    finally:
        suite.husk("delete", "--force", "c1")


def test_config_linux_resources_hugepage_limits(suite):
    sizes = [s for s, d in (("2MB", "hugepages-2048kB"), ("1GB", "hugepages-1048576kB"))
             if os.path.isdir(f"/sys/kernel/mm/hugepages/{d}")]
    limits = [{"pageSize": s, "limit": 100 * (2 << 20 if s == "2MB" else 1 << 30)} for s in sizes]
    pid = _created_pid(suite, {"hugepageLimits": limits})
    try:
        for entry in limits:
            from runtime.core.cgroups.layout import detect
            name = f"hugetlb.{entry['pageSize']}." + ("limit_in_bytes" if "hugetlb" in detect().v1 else "max")
            assert _read(_cgroup_file(pid, "hugetlb", name)) == str(entry["limit"]), name
    finally:
        suite.husk("delete", "--force", "c1")


def test_config_linux_resources_hugepage_size_the_host_lacks_is_an_error(suite):
    suite.config["linux"]["resources"]["hugepageLimits"] = [{"pageSize": "3MB", "limit": 300 << 20}]
    r = sh(suite, "true")
    assert r.code != 0 and "3MB" in r.err and not os.listdir(suite.root), r.err


def test_config_linux_resources_blkio_throttle_and_weight(suite):
    """linux_cgroups_blkio: the throttle rules land; weight needs the
    BFQ/CFQ scheduler's files, and where the host lacks them husk says
    which (runc fails on the same write with a bare ENOENT)."""
    disks = sorted(os.listdir("/sys/block"), key=lambda d: (d.startswith(("loop", "zram", "ram")), d))
    if not disks:
        pytest.skip("no block device to throttle")
    with open(f"/sys/block/{disks[0]}/dev") as f:
        major, minor = (int(n) for n in f.read().split(":"))
    throttle = [{"major": major, "minor": minor, "rate": 12345}]
    blkio = {"throttleReadBpsDevice": throttle, "throttleWriteIOPSDevice": throttle}
    pid = _created_pid(suite, {"blockIO": blkio})
    try:
        if V2_HOST:
            assert f"{major}:{minor} rbps=12345" in _read(_cgroup_file(pid, "io", "io.max"))
        else:
            assert _read(_cgroup_file(pid, "blkio", "blkio.throttle.read_bps_device")) == f"{major}:{minor} 12345"
            assert _read(_cgroup_file(pid, "blkio", "blkio.throttle.write_iops_device")) == f"{major}:{minor} 12345"
    finally:
        suite.husk("delete", "--force", "c1")
    # The weight files exist only below the root and only with BFQ (or CFQ
    # before 5.0) loaded: either the run takes it, or husk names the file.
    suite.config["linux"]["resources"]["blockIO"] = {"weight": 500}
    r = sh(suite, "true", cid="c2")
    assert r.code == 0 or ("not supported here" in r.err and "weight" in r.err), r.err
    if not V2_HOST:  # CFQ, the only scheduler with leaf weights, left in 5.0
        suite.config["linux"]["resources"]["blockIO"] = {"leafWeight": 300}
        r = sh(suite, "true", cid="c3")
        assert r.code != 0 and "leafWeight" in r.err and "blkio.leaf_weight" in r.err, r.err


def test_config_linux_resources_network(suite):
    """linux_cgroups_network: classID and priorities land in net_cls and
    net_prio where the host mounts them; where it does not (cgroup v2,
    or this hybrid host) husk runs the container and warns, as runc does."""
    from runtime.core.cgroups.layout import detect
    network = {"classID": 0x100001, "priorities": [{"name": "lo", "priority": 1}]}
    pid = _created_pid(suite, {"network": network})
    try:
        v1 = detect().v1
        if "net_cls" in v1:
            assert _read(_cgroup_file(pid, "net_cls", "net_cls.classid")) == str(0x100001)
        if "net_prio" in v1:
            assert "lo 1" in _read(_cgroup_file(pid, "net_prio", "net_prio.ifpriomap")).splitlines()
    finally:
        suite.husk("delete", "--force", "c1")
    if "net_cls" not in v1:
        r = sh(suite, "true", cid="c2")
        assert r.code == 0 and "linux.resources.network" in r.err and "warning" in r.err, r.err


# ---- config.md: process.apparmorProfile ----------------------------------

PROFILE = """profile husk-test-profile flags=(attach_disconnected,mediate_deleted) {
  file,
  capability,
  network,
  signal,
  unix,
  ptrace,
  mount,
  umount,
  pivot_root,
  deny /denied-file r,
}
"""


@pytest.fixture
def apparmor_profile(tmp_path):
    """husk-test-profile loaded into the kernel for the test, removed after."""
    from runtime.core.linux.constants import apparmor_enabled
    if not apparmor_enabled():
        yield None
        return
    if shutil.which("apparmor_parser") is None:
        pytest.skip("AppArmor is on but apparmor_parser is not installed")
    mounted = not os.path.isdir("/sys/kernel/security/apparmor")
    if mounted:  # a bare VM: the parser loads through securityfs
        subprocess.run(["mount", "-t", "securityfs", "securityfs", "/sys/kernel/security"], check=True)
    path = tmp_path / "husk-test-profile"
    path.write_text(PROFILE)
    subprocess.run(["apparmor_parser", "-r", str(path)], check=True, capture_output=True)
    try:
        yield "husk-test-profile"
    finally:
        subprocess.run(["apparmor_parser", "-R", str(path)], capture_output=True)
        if mounted:
            subprocess.run(["umount", "/sys/kernel/security"])


def test_config_process_apparmor_profile(suite, apparmor_profile):
    """The process starts in the profile (its first exec is confined, the
    attr written through husk's own procfs) and so does what exec runs.
    Where the kernel has AppArmor off, the field is refused at create,
    naming it, with nothing made: runc fails too, at the attr write."""
    suite.config["process"]["apparmorProfile"] = apparmor_profile or "husk-test-profile"
    if apparmor_profile is None:
        r = sh(suite, "true")
        assert r.code != 0 and "process.apparmorProfile" in r.err and "not enabled" in r.err, r.err
        assert not os.listdir(suite.root)
        return
    with open(os.path.join(suite.path, "denied-file"), "w") as f:
        f.write("secret")
    r = sh(suite, "cat /proc/self/attr/current; cat /denied-file")
    assert r.out.splitlines()[0] == "husk-test-profile (enforce)", (r.out, r.err)
    assert "secret" not in r.out and "Permission denied" in r.err, (r.out, r.err)
    suite.config["process"]["args"] = ["sleep", "100"]
    suite.save()
    assert suite.husk("create", "--bundle", suite.path, "c2").code == 0
    try:
        r = suite.husk("exec", "c2", "cat", "/proc/self/attr/current")
        assert r.out.strip() == "husk-test-profile (enforce)", (r.out, r.err)
    finally:
        suite.husk("delete", "--force", "c2")


def test_config_process_apparmor_profile_not_loaded_is_an_error(suite, apparmor_profile):
    if apparmor_profile is None:
        pytest.skip("AppArmor is off here: see test_config_process_apparmor_profile")
    suite.config["process"]["apparmorProfile"] = "husk-no-such-profile"
    r = sh(suite, "true")
    assert r.code != 0 and "husk-no-such-profile" in r.err, r.err
    assert not os.listdir(suite.root)


def test_config_linux_uid_and_gid_mappings(suite):
    """linux_uid_mappings: a new user namespace, uid 0-1999 and gid
    0-2999 inside mapped from 1000 up, over a rootfs whose files host
    root owns (the suite's untar): the maps read back inside as given
    and the process is root in its namespace."""
    suite.config["linux"]["namespaces"].append({"type": "user"})
    suite.config["linux"]["uidMappings"] = [{"hostID": 1000, "containerID": 0, "size": 2000}]
    suite.config["linux"]["gidMappings"] = [{"hostID": 1000, "containerID": 0, "size": 3000}]
    r = sh(suite, "cat /proc/self/uid_map /proc/self/gid_map; id -u; id -g")
    assert r.code == 0, r.err
    assert r.out.split() == ["0", "1000", "2000", "0", "1000", "3000", "0", "0"], r.out


def test_config_linux_namespaces_none_at_all_is_refused(suite):
    """linux_ns_itype: every namespace inherited.  husk refuses a config
    without a mount namespace, deliberately, where runc would run it: the
    rootfs, /proc, /dev and every mount in config.json would be made in
    the host's mount table, and husk-init's pivot_root would swap the
    host's root.  The refusal names the field and leaves nothing."""
    suite.config["linux"]["namespaces"] = []
    suite.config.pop("hostname", None)
    r = sh(suite, "true")
    assert r.code != 0 and "linux.namespaces" in r.err and "mount namespace" in r.err, r.err
    assert not os.listdir(suite.root)
