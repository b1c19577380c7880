"""The engine's way to the one executor of the lifecycle: the `husk`
command's C front end (native/front).

`husk run IMAGE`, `husk build`'s RUN steps and a detached container's
monitor hand their bundle to the front end's OCI `run`, exactly as
podman, containerd and Docker do: the same create (from a recipe, or
planned by Python the first time a config shape is seen), the same start,
wait and delete, the same hooks and pty proxy.  This module only finds the
front end and tells the front end's own failures from the container's exit.
"""

from __future__ import annotations

import fcntl
import json
import os
import struct
import subprocess
import sys
import sysconfig
import tempfile
from typing import NoReturn

from runtime.core import trace
from runtime.core.errors import ExecError, HuskError, warn


def front_end() -> str:
    """The installed `husk` command (setup.py puts it with the scripts)."""
    return os.path.join(sysconfig.get_path("scripts"), "husk")


class Failed(HuskError):
    """The front end's own failure; REPORTED: it printed it on stderr."""

    def __init__(self, message: str, code: int, reported: bool = False) -> None:
        super().__init__("run", message)
        self.code = code
        self.reported = reported

    def __str__(self) -> str:
        return self.detail

    @property
    def exit_code(self) -> int:
        return self.code


class ExecFailed(Failed, ExecError):
    """The process could not be exec'd (126, or 127: it does not exist)."""


def run(root: str, container_id: str, bundle: str, *, systemd: bool = False) -> int:
    """create, start, wait and delete the bundle's container, this process
    waiting in the foreground with its stdio; the container's exit code.
    Raises Failed (or ExecFailed) for the front end's own failure: the
    front end logs it (--log, JSON), which is how it is told apart from a
    container that exits with the same code.  SYSTEMD: its cgroup is a
    systemd unit (--systemd-cgroup)."""
    with tempfile.NamedTemporaryFile("r", prefix="husk-run-", suffix=".log") as log:
        argv = [front_end(), "--root", root, "--log", log.name, "--log-format", "json",
                *(["--systemd-cgroup"] if systemd else []), "run", "--bundle", bundle, container_id]
        code = subprocess.call(argv, pass_fds=trace.inherited())  # stdio is the container's; --explain's file
        entries = [json.loads(line) for line in log if line.strip()]
    for entry in entries:
        if entry.get("level") == "warning":
            print(f"husk: warning: {entry.get('msg', '')}", file=sys.stderr)
    errors = [e.get("msg", "") for e in entries if e.get("level") == "error"]
    if errors:
        raise (ExecFailed if code in (126, 127) else Failed)(errors[-1], code, reported=True)
    return code


def oci(root: str, verb: str, *args: str) -> None:
    """One OCI verb (kill, delete) carried out by the front end, as the
    shim or conmon would call it; raises its failure, gives its warnings.

    The front end hands a command back to Python only to report what it
    will not do (a container it cannot read); a command that came back
    that way and would go to the front end again is refused here."""
    depth = int(os.environ.get(_DEPTH, "0") or 0)
    if depth >= 2:
        raise HuskError(verb, "the front end handed this back: it cannot carry it out")
    with tempfile.NamedTemporaryFile("r", prefix=f"husk-{verb}-", suffix=".log") as log:
        argv = [front_end(), "--root", root, "--log", log.name, "--log-format", "json", verb, *args]
        code = subprocess.call(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, env=dict(os.environ, **{_DEPTH: str(depth + 1)}))
        entries = [json.loads(line) for line in log if line.strip()]
    for entry in entries:
        if entry.get("level") == "warning":
            warn(entry.get("msg", ""))
    if code != 0:
        errors = [e.get("msg", "") for e in entries if e.get("level") == "error"]
        raise Failed(errors[-1] if errors else f"{verb}: the front end failed with exit status {code}", code)


def exec_plan(argv: list[str], head: dict, plan: bytes, *, above: int) -> NoReturn:
    """Become the front end, which carries out an exec planned here
    (native/front/exec.c): the head and the plan in a memfd it reads by
    HUSK_EXEC_PLAN_FD, numbered past the fds the process is given (ABOVE)."""
    text = json.dumps(head).encode()
    memfd = os.memfd_create("husk-exec-plan", os.MFD_CLOEXEC)
    os.write(memfd, struct.pack("=I", len(text)) + text + plan)
    fd = fcntl.fcntl(memfd, fcntl.F_DUPFD, above + 8)  # inheritable: the front end's to read and close
    os.close(memfd)
    os.execve(front_end(), [front_end(), *argv], dict(os.environ, HUSK_EXEC_PLAN_FD=str(fd)))


def again() -> NoReturn:
    """The front end handed this command to Python, which found nothing
    wrong with it (what it checked changed meanwhile): the front end
    carries it out after all, with the same argv."""
    depth = int(os.environ.get(_DEPTH, "0") or 0)
    if depth >= 2:
        raise HuskError(sys.argv[1] if len(sys.argv) > 1 else "husk",
                        "the front end handed this back: it cannot carry it out")
    os.execve(front_end(), [front_end(), *sys.argv[1:]], dict(os.environ, **{_DEPTH: str(depth + 1)}))


# How many times a command went from Python to the front end (see oci, again).
_DEPTH = "HUSK_EXECUTOR_DEPTH"
