"""Container state on disk: one directory per container under --root.

    <root>/<id>/state.json   written atomically (temp file + rename)
    <root>/<id>/exec.fifo    exists from create until start

Commands on one container are serialised by flock(2) on its directory,
so a killed husk never leaves a torn state file and two commands never
interleave.  The status is derived, not stored: a dead (or reused) pid
means stopped; a live one with the exec fifo still present means created.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
from collections.abc import Iterator
from typing import Any

from runtime.core.errors import HuskError, NotFound

_ID = re.compile(r"^[A-Za-z0-9_+\-.]{1,1024}$")


def check_id(container_id: str) -> None:
    if not _ID.match(container_id) or container_id in (".", ".."):
        raise HuskError("invalid container id", f"{container_id!r}: use letters, digits, _ + - .")


def process_start_time(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat (start time in clock ticks), or None if
    the pid is gone.  Together with the pid it names one process forever."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = data[data.rindex(b")") + 2:].split()
    if fields[0] in (b"Z", b"X"):  # a zombie has finished running
        return None
    return int(fields[19])


class ContainerState:
    def __init__(self, root: str, container_id: str) -> None:
        check_id(container_id)
        self.root = root
        self.id = container_id
        self.dir = os.path.join(root, container_id)
        self.fifo = os.path.join(self.dir, "exec.fifo")
        self._lock_fd: int | None = None
        self.data: dict[str, Any] = {}

    # Creation and locking

    def make(self) -> None:
        """Create the directory (fails if the id is taken) and lock it."""
        os.makedirs(self.root, mode=0o700, exist_ok=True)
        try:
            os.mkdir(self.dir, 0o700)
        except FileExistsError:
            raise HuskError("create", f"container {self.id!r} already exists") from None
        self._lock()

    def open(self) -> ContainerState:
        """Lock an existing container and load its state."""
        if not os.path.isdir(self.dir):
            raise NotFound(self.id)
        self._lock()
        if not os.path.isdir(self.dir):  # deleted while we waited for the lock
            self.unlock()
            raise NotFound(self.id)
        try:
            with open(os.path.join(self.dir, "state.json")) as f:
                self.data = json.load(f)
        except FileNotFoundError:
            # A create that died before writing state: treat as stopped.
            self.data = {"id": self.id, "pid": 0, "status": "creating", "bundle": "", "annotations": {}}
        return self

    def _lock(self) -> None:
        fd = os.open(self.dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        fcntl.flock(fd, fcntl.LOCK_EX)
        self._lock_fd = fd

    def unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    @contextlib.contextmanager
    def locked(self) -> Iterator[ContainerState]:
        self.open()
        try:
            yield self
        finally:
            self.unlock()

    # Reading and writing

    def save(self) -> None:
        tmp = os.path.join(self.dir, ".state.json.tmp")
        with open(tmp, "w") as f:
            json.dump(self.data, f)
        os.rename(tmp, os.path.join(self.dir, "state.json"))

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
        self.unlock()

    @property
    def pid(self) -> int:
        return int(self.data.get("pid") or 0)

    def alive(self) -> bool:
        pid = self.pid
        return pid > 0 and process_start_time(pid) == self.data.get("husk", {}).get("start_time")

    def status(self) -> str:
        if not self.alive():
            return "stopped"
        if os.path.exists(self.fifo):
            return "created"
        if self.data.get("husk", {}).get("paused"):
            return "paused"
        return "running"

    def oci_state(self) -> dict[str, Any]:
        """The runtime-spec state document."""
        status = self.status()
        return {
            "ociVersion": self.data.get("ociVersion", "1.2.0"),
            "id": self.id,
            "status": status,
            "pid": self.pid if status != "stopped" else 0,
            "bundle": self.data.get("bundle", ""),
            "annotations": self.data.get("annotations") or {},
        }


def list_ids(root: str) -> list[str]:
    try:
        return sorted(n for n in os.listdir(root) if os.path.isdir(os.path.join(root, n)))
    except FileNotFoundError:
        return []
