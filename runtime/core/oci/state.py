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
import enum
import fcntl
import json
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from typing import Any

from runtime import OCI_VERSION
from runtime.core import paths
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


class Status(str, enum.Enum):
    """The runtime-spec's statuses (a str: compares equal to its JSON text)."""

    CREATING = "creating"
    CREATED = "created"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"

    def __str__(self) -> str:
        return self.value


@dataclass
class HuskRecord:
    """husk's own part of state.json (its "husk" key): what later verbs need
    to find the container's cgroup, hooks and process again.  The C front
    end (native/front/state.c) writes the same keys."""

    cgroup: str = ""
    cgroup_created: list[str] = field(default_factory=list)  # dirs this container made (delete removes them)
    cgroup_dirs: list[str] = field(default_factory=list)
    start_time: int | None = None  # /proc/PID/stat field 22: tells our pid from a reused one
    created: str | None = None
    rootfs: str = ""
    hooks: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # poststart, poststop
    process: dict[str, Any] = field(default_factory=dict)  # config.json's process, for exec
    namespaces: list[str] = field(default_factory=list)  # created or joined
    seccomp: dict[str, Any] | None = None
    no_new_keyring: bool = False
    paused: bool = False
    systemd_unit: str | None = None  # --systemd-cgroup: the transient unit that is its cgroup
    other: dict[str, Any] = field(default_factory=dict)  # keys another husk version wrote: kept

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> HuskRecord:
        known = {f.name for f in fields(cls)} - {"other"}
        record = cls(**{k: v for k, v in data.items() if k in known and v is not None})
        record.start_time = data.get("start_time")
        record.created = data.get("created")
        record.other = {k: v for k, v in data.items() if k not in known}
        return record

    def to_json(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "other"}
        return {**self.other, **data}


class ContainerState:
    """One container's directory under --root: state.json, the exec fifo,
    and the flock(2) on the directory that serializes the verbs."""

    def __init__(self, root: str, container_id: str) -> None:
        check_id(container_id)
        self.root = root
        self.id = container_id
        self.dir = os.path.join(root, container_id)
        self.fifo = os.path.join(self.dir, paths.EXEC_FIFO)
        self._lock_fd: int | None = None
        self.oci_version = ""
        self.saved_status = Status.CREATING  # what state.json says; status() says what is true
        self.pid = 0
        self.bundle = ""
        self.annotations: dict[str, str] = {}
        self.husk = HuskRecord()

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
            with open(os.path.join(self.dir, paths.STATE_FILE)) as f:
                self._load(json.load(f))
        except FileNotFoundError:
            pass  # a create that died before writing state: "creating", no pid (so: stopped)
        return self

    def _load(self, data: dict[str, Any]) -> None:
        self.oci_version = data.get("ociVersion", "")
        self.saved_status = Status(data.get("status") or "creating")
        self.pid = int(data.get("pid") or 0)
        self.bundle = data.get("bundle", "")
        self.annotations = data.get("annotations") or {}
        self.husk = HuskRecord.from_json(data.get("husk") or {})

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

    def to_json(self) -> dict[str, Any]:
        return {"ociVersion": self.oci_version, "id": self.id, "status": str(self.saved_status), "pid": self.pid,
                "bundle": self.bundle, "annotations": self.annotations, "husk": self.husk.to_json()}

    def save(self) -> None:
        tmp = os.path.join(self.dir, ".state.json.tmp")
        with open(tmp, "w") as f:
            json.dump(self.to_json(), f)
        os.rename(tmp, os.path.join(self.dir, paths.STATE_FILE))

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
        self.unlock()

    def alive(self) -> bool:
        return self.pid > 0 and process_start_time(self.pid) == self.husk.start_time

    def status(self) -> Status:
        if not self.alive():
            return Status.STOPPED
        if os.path.exists(self.fifo):
            return Status.CREATED
        if self.husk.paused:
            return Status.PAUSED
        return Status.RUNNING

    def oci_state(self) -> dict[str, Any]:
        """The runtime-spec state document."""
        status = self.status()
        return {
            "ociVersion": self.oci_version or OCI_VERSION,
            "id": self.id,
            "status": str(status),
            "pid": self.pid if status != Status.STOPPED else 0,
            "bundle": self.bundle,
            "annotations": self.annotations,
        }


def list_ids(root: str) -> list[str]:
    try:
        return sorted(n for n in os.listdir(root) if os.path.isdir(os.path.join(root, n)))
    except FileNotFoundError:
        return []
