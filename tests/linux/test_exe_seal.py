"""CVE-2019-5736: a container must not be able to overwrite husk-init.

The attack, performed for real from inside the container: a program in
the container that resolves to /proc/self/exe (here a symlink /evil ->
/proc/self/exe; a `#!/proc/self/exe` script does the same) makes the
process husk starts execute husk-init again, as a process the container
can see.  A second process in the container then opens /proc/PID/exe,
reopens it for writing and writes.  The checker writes back the byte
that is already there, so even a failed defence changes nothing.

husk's defences: husk-init runs from a sealed memfd copy (writes and
truncation refused by the seals, and the installed file is never the
exe), and it is non-dumpable until execve (its /proc/PID/exe cannot be
opened by the container without CAP_SYS_PTRACE)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time

import pytest
from conftest import HUSK

pytestmark = pytest.mark.root

import runtime

HUSK_INIT = os.path.join(os.path.dirname(runtime.__file__), "_bin", "husk-init")
# The attacker's best case: CAP_SYS_PTRACE opens the /proc/PID/exe of a
# non-dumpable process too, and CAP_DAC_OVERRIDE opens the copy (mode
# 0500) for writing: only the seals are left to refuse the write.
PTRACE_CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SYS_PTRACE", "CAP_DAC_OVERRIDE"]


def fingerprint() -> tuple[str, float, int]:
    st = os.stat(HUSK_INIT)
    with open(HUSK_INIT, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest(), st.st_mtime, st.st_size


class Attack:
    """`husk exec c1 /checker exe-overwrite TARGET`: the attacker in the
    container.  opened is its first report; finish() lets it go on to
    reopen and write once the target has stopped running the binary."""

    def __init__(self, bundle, target: str, cid: str = "c1") -> None:
        self.proc = subprocess.Popen([HUSK, "--root", bundle.root, "exec", cid, "/checker", "exe-overwrite", target],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        assert line, self.proc.stderr.read()
        self.opened = json.loads(line)
        assert "error" not in self.opened, self.opened

    def finish(self) -> dict:
        out = self.proc.stdout.read()  # not communicate(): it would skip what readline buffered
        err = self.proc.stderr.read()
        self.proc.wait(timeout=60)
        assert self.proc.returncode == 0, err
        assert out.strip(), (self.proc.returncode, err)
        return json.loads(out)


def waiting_container(bundle, caps: str) -> None:
    """A config whose process waits for a signal, with the test's caps
    (the bundle's default set, or PTRACE_CAPS)."""
    if caps == "ptrace":
        for s in ("bounding", "effective", "permitted"):
            bundle.config["process"]["capabilities"][s] = PTRACE_CAPS
    bundle.config["process"]["args"] = ["/checker", "wait-signal"]
    bundle.save()


@pytest.fixture
def evil(bundle):
    os.symlink("/proc/self/exe", os.path.join(bundle.rootfs, "evil"))
    before = fingerprint()
    yield bundle
    assert fingerprint() == before, "husk-init on the host changed"


@pytest.mark.parametrize("caps", ["default", "ptrace"])
def test_create_init_is_sealed_and_not_dumpable(evil, caps):
    # The created container's pid 1 is husk-init, waiting on the exec fifo.
    waiting_container(evil, caps)
    evil.husk("create", "--bundle", evil.path, "c1", check=True)
    try:
        attack = Attack(evil, "1")
        if caps == "default":
            # Non-dumpable: without CAP_SYS_PTRACE /proc/1/exe stays closed.
            assert attack.opened["open"] == "EACCES", attack.opened
        else:
            # With CAP_SYS_PTRACE it opens, and it is the sealed copy.
            assert attack.opened["exe"] == "/memfd:husk-init (deleted)", attack.opened
            assert attack.opened["open"] == "ok"
        evil.husk("start", "c1", check=True)  # pid 1 leaves husk-init for the user's program
        result = attack.finish()
        if caps == "ptrace":
            assert result == {"reopen_write": "ok", "write": "EPERM"}  # F_SEAL_WRITE
        else:
            assert result == {"reopen_write": "-", "write": "-"}
    finally:
        evil.husk("delete", "--force", "c1")


def _blocked_husk_init(evil, *husk_args):
    """Start husk with a pipe on fd 3 that the re-executed husk-init reads
    its plan from: it waits, visible, for as long as we hold the pipe.
    bash puts the pipe on fd 3 of husk (our own fd 3 is pytest's; dash
    takes only one-digit fds)."""
    r, w = os.pipe()
    try:
        proc = subprocess.Popen(["bash", "-c", 'exec "$0" "$@" 3<&$PIPE_FD', HUSK, "--root", evil.root, *husk_args],
                                pass_fds=(r,), cwd=evil.path, env=dict(os.environ, PIPE_FD=str(r)),
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    finally:
        os.close(r)
    return proc, w


@pytest.mark.parametrize("caps", ["default", "ptrace"])
def test_exec_of_a_program_that_is_proc_self_exe(evil, caps):
    waiting_container(evil, caps)
    evil.husk("run", "--detach", "--bundle", evil.path, "c1", check=True)
    try:
        proc, w = _blocked_husk_init(evil, "exec", "--preserve-fds", "1", "c1", "/evil", "3")
        try:
            if proc.poll() is not None:
                raise AssertionError(proc.stderr.read())
            attack = Attack(evil, "evil")
            # A fresh execve: dumpable while it reads its plan, so it opens.
            # It is the memfd copy, never the installed file.
            assert attack.opened["exe"] == "/memfd:husk-init (deleted)", attack.opened
            assert attack.opened["open"] == "ok"
        finally:
            os.close(w)  # it finds no plan on fd 3 and exits
            proc.wait(timeout=30)
        if caps == "ptrace":
            assert attack.finish() == {"reopen_write": "ok", "write": "EPERM"}  # F_SEAL_WRITE
        else:
            assert attack.finish() == {"reopen_write": "EACCES", "write": "-"}  # mode 0500, no DAC_OVERRIDE
        assert proc.returncode != 0
    finally:
        evil.husk("delete", "--force", "c1")


def test_run_of_a_program_that_is_proc_self_exe(evil):
    evil.config["process"]["args"] = ["/evil", "3"]
    evil.save()
    proc, w = _blocked_husk_init(evil, "run", "--preserve-fds", "1", "--bundle", evil.path, "c1")
    try:
        for _ in range(400):
            r = evil.husk("state", "c1")
            if r.code == 0 and r.json()["status"] == "running":
                break
            time.sleep(0.05)
        attack = Attack(evil, "evil")
        assert attack.opened["pid"] == 1
        assert attack.opened["exe"] == "/memfd:husk-init (deleted)", attack.opened
    finally:
        os.close(w)
        proc.wait(timeout=30)
    # pid 1 exited: the pid namespace is gone and the attacker with it, or
    # it tried to reopen the copy, and the mode or the seals refused it.
    out = attack.proc.stdout.read()
    attack.proc.wait(timeout=60)
    if out.strip():
        assert json.loads(out)["write"] != "ok", out
    assert proc.returncode != 0  # the re-executed husk-init found no plan on fd 3


def test_husk_init_refuses_stray_arguments():
    # What a `#!/proc/self/exe` script hands it: the script's path.
    r = subprocess.run([HUSK_INIT, "/bin/sh"], capture_output=True, text=True)
    assert r.returncode == 2 and "usage" in r.stderr


def test_where_memfds_may_not_run_a_private_copy_runs(evil):
    # vm.memfd_noexec=2 (per pid namespace, so the test raises it only in
    # one of its own) forbids executable memfds: husk falls back to an
    # O_TMPFILE copy on /run, still never the installed file.
    waiting_container(evil, "default")
    script = ('echo 2 > /proc/sys/vm/memfd_noexec || exit 99; '
              'husk() { "$HUSK" --root "$ROOT" "$@"; }; '
              'husk create --bundle "$BUNDLE" c1 || exit 98; '
              'pid=$(husk state c1 | sed -n \'s/.*"pid": *\\([0-9]*\\).*/\\1/p\'); '
              'readlink /proc/$pid/exe; husk start c1; husk delete --force c1')
    r = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "sh", "-c", script], capture_output=True,
                       text=True, timeout=120, env=dict(os.environ, HUSK=HUSK, ROOT=evil.root, BUNDLE=evil.path))
    assert r.returncode == 0, r.stderr
    exe = r.stdout.strip().splitlines()[0]
    assert exe.startswith("/run/") and exe.endswith("(deleted)") and "husk-init" not in exe, r.stdout
