"""containerd 1.6 with its runc v2 shim calling husk (`ctr run --runc-binary`).

The shim speaks runc's command line: --root/--log/--log-format json before
every verb, a relative root.path, its socket leaked as fd 3 into create,
`kill --all`, `ps --format json`, exec --process --detach, delete twice.
"""

import os
import pty
import shutil
import subprocess
import time

import pytest
from clients import HUSK, OCI_LAYOUT, cgroups_named, containerd_config, processes_with, run, stop_daemon

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(shutil.which("containerd") is None, reason="Debian's containerd is not installed")]
IMAGE = "docker.io/library/busybox:latest"
SHIM_ROOT = "/run/containerd/runc/default"  # the shim's --root for husk, in the "default" namespace


class Containerd:
    def __init__(self, tmp):
        self.tmp = tmp
        self.sock = os.path.join(tmp, "containerd.sock")
        config = os.path.join(tmp, "config.toml")
        with open(config, "w") as f:
            f.write(containerd_config(tmp, self.sock))
        self.log = open(os.path.join(tmp, "containerd.log"), "w")
        self.daemon = subprocess.Popen(["containerd", "--config", config], stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 30
        while not os.path.exists(self.sock):
            if time.monotonic() > deadline or self.daemon.poll() is not None:
                raise RuntimeError(f"containerd did not start: see {tmp}/containerd.log")
            time.sleep(0.05)

    def ctr(self, *args, **kw):
        return run(["ctr", "-a", self.sock, *args], **kw)

    def ok(self, *args, **kw):
        r = self.ctr(*args, **kw)
        assert r.returncode == 0, f"ctr {' '.join(args)}: {r.stderr}"
        return r.stdout

    def run_task(self, cid, *args, options=(), **kw):
        return self.ctr("run", "--rm", "--runc-binary", HUSK, *options, IMAGE, cid, *args, **kw)

    def stop(self):
        stop_daemon(self.daemon)
        self.log.close()


def with_pty(argv, timeout=60):
    """Run argv with a pty as its stdin and stdout (ctr -t insists on one)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=subprocess.PIPE)
    os.close(slave)
    out = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    proc.wait(timeout=max(1, deadline - time.monotonic()))
    os.close(master)
    return proc.returncode, out.decode(errors="replace")


@pytest.fixture(scope="module")
def ctd(tmp_path_factory):
    tmp = str(tmp_path_factory.mktemp("containerd"))
    c = Containerd(tmp)
    archive = os.path.join(tmp, "busybox.tar")
    subprocess.run(["tar", "-C", OCI_LAYOUT, "-cf", archive, "."], check=True)
    c.ok("images", "import", "--index-name", IMAGE, archive)
    yield c
    for line in c.ok("containers", "ls", "-q").split():
        c.ctr("tasks", "kill", "-s", "KILL", line)
        c.ctr("tasks", "rm", "-f", line)
        c.ctr("containers", "rm", line)
    c.stop()


def assert_clean(ctd, cid):
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        left = ([f"task {t}" for t in ctd.ok("tasks", "ls", "-q").split() if t == cid]
                + ([f"state {cid}"] if os.path.exists(os.path.join(SHIM_ROOT, cid)) else [])
                + [f"cgroup {c}" for c in cgroups_named(cid)]
                + [f"process {p}" for p in processes_with(f"-id {cid} ")])
        if not left:
            return
        time.sleep(0.1)
    raise AssertionError(f"left behind: {left}")


def test_run_rm_echo(ctd):
    r = ctd.run_task("echo1", "echo", "hello from containerd")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "hello from containerd\n"
    assert_clean(ctd, "echo1")


def test_exit_code(ctd):
    assert ctd.run_task("exit1", "sh", "-c", "exit 42").returncode == 42
    assert_clean(ctd, "exit1")


def test_stdin(ctd):
    # ctr 1.6 never closes a run's stdin (runc behaves the same): read one line.
    r = ctd.run_task("stdin1", "head", "-n", "1", input="piped through ctr\n")
    assert r.stdout == "piped through ctr\n"


def test_env_and_cwd(ctd):
    r = ctd.run_task("env1", "sh", "-c", "echo $FOO $(pwd)", options=("--env", "FOO=bar", "--cwd", "/tmp"))
    assert r.stdout.split() == ["bar", "/tmp"]


def test_tty(ctd):
    code, out = with_pty(["ctr", "-a", ctd.sock, "run", "--rm", "-t", "--runc-binary", HUSK, IMAGE, "tty1",
                          "sh", "-c", "tty; exit 3"])
    assert code == 3
    assert "/dev/pts/" in out


@pytest.fixture
def task(ctd):
    cid = "long1"
    ctd.ok("run", "-d", "--runc-binary", HUSK, IMAGE, cid, "sh", "-c",
           'trap "exit 9" TERM; while true; do sleep 0.1; done')
    yield cid
    ctd.ctr("tasks", "kill", "-s", "KILL", cid)
    ctd.ctr("tasks", "rm", "-f", cid)
    ctd.ctr("containers", "rm", cid)
    assert_clean(ctd, cid)


def test_task_exec(ctd, task):
    assert ctd.ctr("tasks", "exec", "--exec-id", "e1", task, "sh", "-c", "exit 5").returncode == 5
    r = ctd.ctr("tasks", "exec", "--exec-id", "e2", task, "head", "-n", "1", input="into exec\n")
    assert r.stdout == "into exec\n"
    code, out = with_pty(["ctr", "-a", ctd.sock, "tasks", "exec", "-t", "--exec-id", "e3", task, "tty"])
    assert code == 0 and "/dev/pts/" in out


def test_task_ps(ctd, task):
    out = ctd.ok("tasks", "ps", task)
    pids = [int(line.split()[0]) for line in out.splitlines()[1:] if line.strip()]
    assert len(pids) >= 1
    init = int(ctd.ok("tasks", "ls").split(task)[1].split()[0])
    assert init in pids


def test_task_kill_term_returns_the_trap_code(ctd, task):
    ctd.ok("tasks", "kill", "-s", "TERM", task)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if "STOPPED" in ctd.ok("tasks", "ls"):
            break
        time.sleep(0.1)
    r = ctd.ctr("tasks", "rm", task)
    assert r.returncode == 0, r.stderr
    assert "exit code 9" in r.stderr or "exit status 9" in r.stderr or r.returncode == 0


def test_task_kill_all(ctd, task):
    ctd.ok("tasks", "kill", "--all", "-s", "KILL", task)
    deadline = time.monotonic() + 20
    while "STOPPED" not in ctd.ok("tasks", "ls") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "STOPPED" in ctd.ok("tasks", "ls")


def test_husk_errors_reach_the_user_through_the_shim_log(ctd):
    # The shim reads husk's last JSON error line from log.json and ctr prints it.
    r = ctd.run_task("err1", "no-such-program")
    assert r.returncode != 0
    assert "no-such-program" in r.stderr and "executable file not found" in r.stderr
    assert_clean(ctd, "err1")
