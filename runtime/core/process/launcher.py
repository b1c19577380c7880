"""Start husk-init, send it the plan, follow it to READY.

The parent side of the clone-to-exec path.  husk stays single-threaded
here: one socketpair, one child process, records in and out.
"""

from __future__ import annotations

import errno
import fcntl
import os
import signal
import socket
import subprocess
from collections.abc import Callable

from runtime.core import errors
from runtime.core.errors import HuskError
from runtime.core.paths import HELPER
from runtime.core.process import protocol as proto
from runtime.core.process.inherited import inherited_fds
from runtime.core.process.protocol import Msg, Plan


def helper_path() -> str:
    if not os.access(HELPER, os.X_OK):
        raise HuskError("husk-init", f"{HELPER} is missing: reinstall husk (pip install .)", errno.ENOENT)
    return HELPER


# memfd flags and seals Python 3.11 does not name (linux/memfd.h, fcntl.h).
MFD_EXEC = 0x0010  # Linux 6.3+: executable even under vm.memfd_noexec=1
F_SEAL_EXEC = 0x0020  # Linux 6.3+: the mode's exec bits can no longer change


def sealed_helper() -> int:
    """A sealed in-memory copy of husk-init; returns its fd (CLOEXEC).

    CVE-2019-5736: a container whose /bin/sh is `#!/proc/self/exe` makes
    a process that `husk exec` starts re-execute husk-init, then opens
    /proc/PID/exe and writes through it, so the next husk run on the host
    runs the attacker's code as root.  Each husk-init therefore runs from
    a memfd copy sealed against writes, truncation and growth (as runc's
    libcontainer/exeseal and crun's cloned_binary.c do): /proc/PID/exe
    then names this copy, and no write can reach the installed file."""
    flags = os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING
    try:
        fd = os.memfd_create("husk-init", flags | MFD_EXEC)
    except OSError as e:
        if e.errno == errno.EACCES:  # vm.memfd_noexec=2: no executable memfds at all
            return _tmpfile_helper()
        if e.errno != errno.EINVAL:  # EINVAL: a kernel before 6.3 does not know MFD_EXEC
            raise HuskError("husk-init", f"memfd_create: {e.strerror}", e.errno) from None
        fd = os.memfd_create("husk-init", flags)
    try:
        _copy_helper_to(fd)
        os.fchmod(fd, 0o500)
        seals = fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE
        try:
            fcntl.fcntl(fd, fcntl.F_ADD_SEALS, seals | F_SEAL_EXEC)
        except OSError as e:
            if e.errno != errno.EINVAL:
                raise
            fcntl.fcntl(fd, fcntl.F_ADD_SEALS, seals)
    except OSError as e:
        os.close(fd)
        raise HuskError("husk-init", f"seal a copy of {HELPER}: {e.strerror}", e.errno) from None
    except BaseException:
        os.close(fd)
        raise
    return fd


def _tmpfile_helper() -> int:
    """Where memfds may not be executed (vm.memfd_noexec=2), a copy in an
    unnamed O_TMPFILE file on /run, as runc's exeseal falls back to: no
    seals, but /proc/PID/exe then names a private copy that dies with the
    process, never the installed file.  Returned read-only: exec refuses a
    file that is open for writing (ETXTBSY)."""
    try:
        w = os.open("/run", os.O_TMPFILE | os.O_RDWR | os.O_CLOEXEC, 0o500)
        try:
            _copy_helper_to(w)
            return os.open(f"/proc/self/fd/{w}", os.O_RDONLY | os.O_CLOEXEC)
        finally:
            os.close(w)
    except OSError as e:
        raise HuskError("husk-init", f"copy {HELPER} to an O_TMPFILE on /run: {e.strerror}", e.errno) from None


def _copy_helper_to(fd: int) -> None:
    """The installed husk-init's bytes into fd, in the kernel (sendfile)."""
    src = os.open(helper_path(), os.O_RDONLY | os.O_CLOEXEC)
    try:
        size = os.fstat(src).st_size
        copied = 0
        while copied < size:
            n = os.sendfile(fd, src, copied, size - copied)
            if n == 0:
                raise HuskError("husk-init", f"{HELPER} shrank while it was copied", errno.EIO)
            copied += n
    finally:
        os.close(src)


def _above(fd: int, floor: int) -> int:
    """dup fd to a number >= floor (CLOEXEC; pass_fds clears that in the child)."""
    return fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, floor)


def reap(pid: int) -> None:
    """Kill and reap a process that CLONE_PARENT made our child."""
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


class Launch:
    """One husk-init run.  pid is known from MSG_PID on."""

    def __init__(self, plan: Plan, *, context: str) -> None:
        self.plan = plan
        self.context = context
        self.pid = 0
        self.sock: socket.socket | None = None
        self.console: socket.socket | None = None

    def start(self, before_plan: Callable[[int], None] | None = None,
              on_hooks: Callable[[int], bytes] | None = None, wait_exec: bool = False,
              on_pid: Callable[[int], None] | None = None) -> int:
        """Spawn husk-init and follow it until the process is READY (and,
        with wait_exec, until it has exec'd).  Returns the host pid."""
        plan = self.plan
        floor = 3 + plan.preserve_fds
        # First, so that nothing made below leaks if copying husk-init fails.
        sealed = sealed_helper()
        try:
            exe_fd = _above(sealed, floor)
        finally:
            os.close(sealed)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock = ours
        their_fd = _above(theirs.fileno(), floor)
        theirs.close()
        # --preserve-fds N passes 3..3+N-1, but only those the caller really
        # passed: a gap must not hand the container one of husk's own fds.
        pass_fds = [fd for fd in range(3, floor) if fd in inherited_fds()] + [their_fd]
        console_fd = -1
        if plan.terminal and plan.console_fd >= 0:
            console_fd = _above(plan.console_fd, floor)
            plan.console_fd = console_fd
            pass_fds.append(console_fd)
        pass_fds.append(exe_fd)
        try:
            # execve(/proc/self/fd/N) runs the sealed copy; husk-init closes
            # N (its second argument) first thing.
            helper = subprocess.Popen([HELPER, str(their_fd), str(exe_fd)], executable=f"/proc/self/fd/{exe_fd}",
                                      pass_fds=pass_fds, close_fds=True)
        finally:
            os.close(exe_fd)
            os.close(their_fd)
            if console_fd >= 0:
                os.close(console_fd)
        try:
            if before_plan:
                before_plan(helper.pid)  # e.g. join the cgroup: children inherit it
            ours.sendall(proto.encode_plan(plan))
            return self._follow(helper, on_hooks, wait_exec, on_pid)
        except BaseException:
            self.abort()
            raise
        finally:
            helper.wait()

    def _follow(self, helper: subprocess.Popen, on_hooks, wait_exec: bool, on_pid=None) -> int:
        assert self.sock is not None
        ready = False
        while True:
            rec = proto.read_record(self.sock)
            if rec is None:
                if ready:  # the socket closed at execve (CLOEXEC): it runs
                    return self.pid
                status = helper.wait()
                raise HuskError(self.context, f"husk-init ended before the process was ready (status {status})",
                                errno.EPIPE)
            tag, value = rec
            if tag == Msg.PID:
                self.pid = proto.decode_int(value)
                if on_pid:
                    on_pid(self.pid)  # e.g. record it before anything else can go wrong
            elif tag == Msg.HOOKS:
                state = on_hooks(self.pid) if on_hooks else b"{}"
                self.sock.sendall(proto.encode_record(Msg.STATE, state))
            elif tag == Msg.READY:
                ready = True
                if not wait_exec:
                    return self.pid
            elif tag == Msg.ERROR:
                raise errors.from_helper(*proto.decode_error(value))
            else:
                raise HuskError(self.context, f"unexpected record {tag} from husk-init", errno.EPROTO)

    def abort(self) -> None:
        if self.pid:
            reap(self.pid)
        self.close()

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
