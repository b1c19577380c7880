"""podman 4 + conmon with husk as the OCI runtime (cgroupfs, no network).

podman calls husk exactly as it calls runc: create/start/kill/delete and
exec through conmon, no global flags, kill and delete without PATH.
"""

import json
import os
import shutil
import time

import pytest
from clients import HUSK, OCI_LAYOUT, cgroups_named, host_ulimits, husk_containers, processes_with, run

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(shutil.which("podman") is None, reason="Debian's podman is not installed")]
IMAGE = "localhost/busybox:latest"


class Podman:
    def __init__(self, tmp, *, netns="none", extra_conf="", wrapper=()):
        self.tmp = tmp
        conf = os.path.join(tmp, "containers.conf")
        with open(conf, "w") as f:
            f.write(f"""[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "{tmp}/events.log"
runtime = "husk"
[engine.runtimes]
husk = ["{HUSK}"]
[containers]
netns = "{netns}"
default_ulimits = {json.dumps(host_ulimits())}
{extra_conf}""")
        self.env = dict(os.environ, CONTAINERS_CONF=conf)
        self.base = [*wrapper, "podman", "--root", f"{tmp}/storage", "--runroot", f"{tmp}/run", "--storage-driver", "overlay"]

    def __call__(self, *args, **kw):
        return run(self.base + list(args), env=self.env, **kw)

    def ok(self, *args, **kw):
        r = self(*args, **kw)
        assert r.returncode == 0, f"podman {' '.join(args)}: {r.stderr}"
        return r.stdout


@pytest.fixture(scope="module")
def podman(tmp_path_factory):
    pm = Podman(str(tmp_path_factory.mktemp("podman")))
    image_id = pm.ok("pull", "-q", f"oci:{OCI_LAYOUT}:latest").strip()
    pm.ok("tag", image_id, IMAGE)
    yield pm
    pm("rm", "-a", "-f")
    pm("system", "reset", "-f")
    remove_conmon_cgroups()


def remove_conmon_cgroups() -> None:
    """conmon's cgroup and libpod_parent belong to podman's cgroupfs layout,
    shared by all its containers, and podman leaves them (runc makes
    libpod_parent in every hierarchy, named ones and v2's too)."""
    for d in sorted(cgroups_named("conmon") + cgroups_named("libpod_parent"), key=len, reverse=True):
        if "libpod_parent" in d:
            for p in (d, os.path.dirname(d)):
                if os.path.basename(p) in ("conmon", "libpod_parent"):
                    try:
                        os.rmdir(p)
                    except OSError:
                        pass


def run_rm(podman, *args, **kw):
    return podman("run", "--rm", "--pull", "never", *args, **kw)


def test_run_rm_echo(podman):
    r = run_rm(podman, IMAGE, "echo", "hello from podman")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "hello from podman\n"


def test_exit_code_propagates(podman):
    assert run_rm(podman, IMAGE, "sh", "-c", "exit 42").returncode == 42


def test_stdin_piped_with_i(podman):
    r = run_rm(podman, "-i", IMAGE, "cat", input="piped through podman\n")
    assert r.stdout == "piped through podman\n"


def test_tty(podman):
    r = run_rm(podman, "-t", IMAGE, "sh", "-c", "tty; [ -t 0 ] && echo is-a-tty", stdin=open(os.devnull))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.replace("\r", "").split()
    assert lines[0].startswith("/dev/pts/") and "is-a-tty" in lines


def test_seccomp_profile_is_applied(podman):
    r = run_rm(podman, IMAGE, "grep", "Seccomp:", "/proc/self/status")
    assert r.stdout.split() == ["Seccomp:", "2"]


def test_memory_and_pids_limit_in_the_cgroup(podman):
    r = run_rm(podman, "--memory", "64m", "--pids-limit", "50", IMAGE, "sh", "-c",
               "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max; "
               "cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [str(64 * 1024 * 1024), "50"]


def test_read_only_user_and_hostname(podman):
    r = run_rm(podman, "--read-only", "--user", "1000:1000", "--hostname", "podbox", IMAGE, "sh", "-c",
               "id -u; id -g; hostname; touch /x 2>/dev/null || echo ro-root; touch /tmp/y && echo tmp-writable")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["1000", "1000", "podbox", "ro-root", "tmp-writable"]


@pytest.fixture
def detached(podman):
    cid = podman.ok("run", "-d", "--pull", "never", IMAGE, "sh", "-c",
                    'trap "exit 7" TERM; trap "exit 10" USR1; while true; do sleep 0.1; done').strip()
    yield cid
    podman("rm", "-f", cid)
    assert_nothing_left(podman, cid)


def assert_nothing_left(podman, cid):
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        left = ([f"state {c}" for c in husk_containers() if c.startswith(cid[:12])]
                + [f"cgroup {c}" for c in cgroups_named(cid)]
                + [f"process {p}" for p in processes_with(cid)])
        if not left:
            return
        time.sleep(0.1)
    raise AssertionError(f"left behind after rm -f: {left}")


def test_run_d_ps_and_stop_returns_the_trap_code(podman, detached):
    assert detached[:12] in podman.ok("ps", "-q", "--no-trunc")
    podman.ok("stop", "-t", "10", detached)
    assert podman.ok("inspect", detached, "--format", "{{.State.ExitCode}}").strip() == "7"


def test_exec(podman, detached):
    r = podman("exec", detached, "sh", "-c", "exit 3")
    assert r.returncode == 3
    out = podman.ok("exec", "-e", "FOO=bar", "-w", "/tmp", "--user", "1000:1000", detached,
                    "sh", "-c", "echo $FOO $(pwd) $(id -u)")
    assert out.split() == ["bar", "/tmp", "1000"]
    r = podman("exec", "-t", detached, "tty", stdin=open(os.devnull))
    assert r.returncode == 0 and r.stdout.strip().startswith("/dev/pts/")


def test_kill_usr1_reaches_the_trap(podman, detached):
    podman.ok("kill", "-s", "USR1", detached)
    assert podman.ok("wait", detached).strip() == "10"


def test_kill_kill(podman, detached):
    podman.ok("kill", "-s", "KILL", detached)
    assert podman.ok("wait", detached).strip() == "137"


def test_rm_f_of_a_running_container_leaves_nothing(podman):
    cid = podman.ok("run", "-d", "--pull", "never", IMAGE, "sleep", "1000").strip()
    assert any(c.startswith(cid[:12]) for c in husk_containers())
    podman.ok("rm", "-f", cid)
    assert_nothing_left(podman, cid)


def test_husk_errors_reach_the_user(podman):
    r = run_rm(podman, IMAGE, "no-such-program")
    assert r.returncode != 0
    assert "no-such-program" in r.stderr and "executable file not found" in r.stderr


@pytest.mark.skipif(shutil.which("runc") is None, reason="Debian's runc is not installed")
def test_husk_isolation_reads_a_podman_and_runc_container(podman):
    """`husk isolation --pid` reads only the kernel, so it reports another
    runtime's container as it reports husk's."""
    cid = podman.ok("run", "-d", "--pull", "never", "--runtime", shutil.which("runc"), "--read-only",
                    "--cap-drop", "all", "--memory", "64m", IMAGE, "sleep", "1000").strip()
    try:
        pid = podman.ok("inspect", "-f", "{{.State.Pid}}", cid).strip()
        r = run([HUSK, "isolation", "--format", "json", "--pid", pid])
        assert r.returncode == 0, r.stderr
        findings = {(f["area"], f["name"]): f for f in json.loads(r.stdout)[0]["findings"]}
        for ns in ("mnt", "pid", "ipc", "uts"):
            assert findings["namespace", ns]["own"] is True, ns
        assert findings["capabilities", "CapBnd"]["value"].startswith("0 of ")
        assert findings["mounts", "/ read-only"]["own"] is True
        memory = findings.get(("cgroup", "memory.max")) or findings["cgroup", "memory.limit_in_bytes"]
        assert memory["value"] == str(64 << 20)
    finally:
        podman("rm", "-f", cid)
