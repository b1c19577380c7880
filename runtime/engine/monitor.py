"""The Python side of husk-monitor (native/monitor/monitor.c): start one
for a detached image container, and read what it leaves behind.

    spawn      fork husk-monitor in a session of its own; it runs the OCI
               `husk run --detach` of the container's bundle, becomes the
               container's parent and tells us, on a pipe, "ok PID" or
               "fail CODE" and husk's error
    alive      is the monitor that monitor.pid names still running?
    exit_info  exit.json: the code and time of the container's last run

The monitor outlives this command: `husk ps` reads its files, and when
the container exits it runs `husk cleanup ID`, which releases the rootfs
and network and applies --rm and --restart (runtime.engine.lifecycle).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from dataclasses import dataclass

from runtime.core import executor, paths
from runtime.core.errors import HuskError
from runtime.core.paths import StoreLayout

PID_FILE = "container.pid"


@dataclass
class Started:
    pid: int


class StartFailed(HuskError):
    """The container did not start: husk's own message and exit code
    (126 or 127 when its program could not be executed, as docker's)."""

    def __init__(self, message: str, code: int) -> None:
        self.code = code
        super().__init__(message)

    @property
    def exit_code(self) -> int:
        return self.code


def husk_command(root: str, store_root: str) -> list[str]:
    """How a monitor runs husk: this interpreter on the installed package
    (-I: nothing from the caller's directory or environment is imported),
    with the caller's --root and --storage-root."""
    return [sys.executable, "-I", "-m", "runtime", "--root", root, "--storage-root", store_root]


def spawn(root: str, store_root: str, cid: str, run: int, log_size_max: int = 0,
          health_interval: float = 0, stdin: bool = False, systemd: bool = False) -> Started:
    """Start the monitor and the container under it; raise husk's error
    (with husk's exit code) if the container did not start.
    HEALTH_INTERVAL: seconds between the monitor's `husk healthcheck run`s (0: none).
    STDIN (run -d -i): the container's stdin is a pipe the monitor holds,
    written by `husk attach` clients.  SYSTEMD: its cgroup is a systemd
    unit (--systemd-cgroup)."""
    cdir = StoreLayout(store_root).container(cid)
    husk = husk_command(root, store_root)
    pid_file = os.path.join(cdir, PID_FILE)
    layout = StoreLayout(store_root)
    for stale in (pid_file, layout.exit_file(cid), layout.monitor_pid(cid)):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(stale)
    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    argv = [paths.MONITOR, "--log-size-max", str(log_size_max), *(["--stdin"] if stdin else []),
            "--exit-command", husk[0]]
    for arg in husk[1:] + ["cleanup", "--run", str(run), cid]:
        argv += ["--exit-command-arg", arg]
    if health_interval > 0:
        argv += ["--health-interval", str(max(int(health_interval * 1000), 1)), "--health-command", husk[0]]
        for arg in husk[1:] + ["healthcheck", "run", cid]:
            argv += ["--health-command-arg", arg]
    # The container is made by the one executor, the front end's OCI run
    # (runtime/core/executor.py), as podman's conmon has runc make it.
    argv += [str(write_end), cdir, pid_file, "--", executor.front_end(), "--root", root,
             *(["--systemd-cgroup"] if systemd else []), "run", "--detach",
             "--bundle", cdir, "--pid-file", pid_file, cid]
    # Forked twice: the monitor is not our child, so it is nobody's zombie
    # when it exits before we do (it is reparented to init, or to the
    # nearest PR_SET_CHILD_SUBREAPER ancestor).
    pid = os.fork()
    if pid == 0:
        try:
            os.setsid()  # a session of its own: no terminal's SIGHUP or SIGINT reaches it
            if os.fork() == 0:
                os.chdir("/")
                null = os.open(os.devnull, os.O_RDWR)
                for fd in (0, 1, 2):
                    os.dup2(null, fd)
                os.set_inheritable(write_end, True)
                os.execv(argv[0], argv)
        finally:
            os._exit(127)
    os.close(write_end)
    os.waitpid(pid, 0)
    with os.fdopen(read_end, "rb") as f:
        answer = f.read().decode(errors="replace")
    head, _, rest = answer.partition("\n")
    word, _, value = head.partition(" ")
    if word == "ok" and value.isdigit():
        return Started(int(value))
    message = _husk_message(rest) or f"husk-monitor: {head or 'exited without a word'}"
    code = int(value) if word == "fail" and value.lstrip("-").isdigit() else 125
    raise StartFailed(message, code)


def _husk_message(stderr: str) -> str:
    """husk's own one-line error, without its "husk: " prefix."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    if not lines:
        return ""
    last = lines[-1]
    return last[len("husk: "):] if last.startswith("husk: ") else last


def alive(store_root: str, cid: str) -> bool | None:
    """True if the monitor named in monitor.pid runs (same pid, same start
    time: not a later process that reused the pid); None if there never
    was one."""
    try:
        with open(StoreLayout(store_root).monitor_pid(cid)) as f:
            pid, start = (int(x) for x in f.read().split())
    except (OSError, ValueError):
        return None
    return _start_time(pid) == start


def _start_time(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat (clock ticks since boot); None for a
    zombie (field 3 is Z): killed, and not yet reaped by whoever it was
    reparented to."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] in ("Z", "X") else int(fields[19])


def monitor_pid(store_root: str, cid: str) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        with open(StoreLayout(store_root).monitor_pid(cid)) as f:
            return int(f.read().split()[0])
    return None


def exit_info(store_root: str, cid: str) -> dict | None:
    """{"exit_code": N, "finished_at": RFC 3339} once the container exited."""
    try:
        with open(StoreLayout(store_root).exit_file(cid)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None
