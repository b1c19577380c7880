"""The record of a container made from an image, and the only code that
reads or writes it: containers/<id>/container.json in the store.

    ContainerRecord   what husk knows of the container between commands:
                      its names, image, how it was asked to run (restart
                      policy, log size, health check, mounts, network)
                      and where its lifecycle stands (status, run,
                      exit code, times)

The OCI runtime core keeps its own state (runtime.core.oci.state's
HuskRecord) for the OCI container each run makes; this record is the
engine's, and outlives those runs.  Every key is snake_case; docker's
shapes (inspect's Mounts, State.Health, Config.Healthcheck) are made
from it where they are shown (engine.inspect, engine.lifecycle).

Writers hold the container's lock (locked()) around load + save, so a
monitor's cleanup, `husk stop` and `husk rm` never lose each other's
fields.  A file is replaced whole (write, fsync, rename), so a reader
sees the old record or the new one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from runtime.core.errors import HuskError, NotFound
from runtime.core.paths import StoreLayout
from runtime.engine.image.store import write_json


@dataclass
class Mount:
    """One volume, bind mount or tmpfs of the container, as inspect shows it."""

    type: str  # volume | bind | tmpfs
    destination: str
    source: str = ""  # the host path (a volume's _data)
    name: str = ""  # a volume's name
    rw: bool = True
    propagation: str = ""

    def to_docker(self) -> dict[str, Any]:
        out: dict[str, Any] = {"Type": self.type, "Source": self.source, "Destination": self.destination,
                               "Mode": "" if self.rw else "ro", "RW": self.rw, "Propagation": self.propagation}
        if self.type == "volume":
            out.update(Name=self.name, Driver="local")
        return out


@dataclass
class Healthcheck:
    """--health-cmd and friends, or the image's Healthcheck; times in seconds."""

    test: list[str]  # ["CMD-SHELL", "cmd"] or ["CMD", argv...]
    interval: float
    timeout: float
    start_period: float
    retries: int

    def to_docker(self) -> dict[str, Any]:
        return {"Test": self.test, "Interval": self.interval, "Timeout": self.timeout,
                "StartPeriod": self.start_period, "Retries": self.retries}


@dataclass
class HealthResult:
    """One check: when it ran, its exit code (-1: timed out) and output."""

    start: str
    end: str
    exit_code: int
    output: str


@dataclass
class Health:
    status: str = "starting"  # starting | healthy | unhealthy
    failing_streak: int = 0
    log: list[HealthResult] = field(default_factory=list)  # the last few checks

    def to_docker(self) -> dict[str, Any]:
        return {"Status": self.status, "FailingStreak": self.failing_streak,
                "Log": [{"Start": r.start, "End": r.end, "ExitCode": r.exit_code, "Output": r.output}
                        for r in self.log]}


@dataclass
class NetworkInfo:
    """What the container was given on its network."""

    mode: str = ""  # bridge | none | host | container:NAME | a network's name
    network: str | None = None
    ip: str | None = None
    ports: list[list[Any]] = field(default_factory=list)  # [host_ip, host_port, proto, ip, port]


@dataclass
class ContainerRecord:
    id: str
    name: str
    image: str  # the manifest digest
    image_name: str  # as the user named it
    created: str
    hostname: str = ""
    driver: str = "overlay"  # overlay | vfs
    stop_signal: str = "SIGTERM"
    # How it runs
    remove: bool = False  # --rm
    detached: bool = False
    interactive: bool = False  # -d -i: its monitor holds stdin for `husk attach`
    restart: str = "no"  # docker's policy, as given
    log_size_max: int = 0  # bytes; 0 is no limit
    cgroup_manager: str = "cgroupfs"  # cgroupfs (/husk/ID) or systemd (machine.slice's husk-ID.scope)
    limits: dict[str, Any] = field(default_factory=dict)  # the OCI linux.resources the flags made
    mounts: list[Mount] = field(default_factory=list)
    volumes_made: list[str] = field(default_factory=list)  # volumes made for it (removed if it never runs)
    network_request: dict[str, Any] | None = None  # engine.network.attach.NetworkRequest's fields
    network: NetworkInfo | None = None
    healthcheck: Healthcheck | None = None
    # Where it stands
    status: str = "created"  # created | running | restarting | exited
    run: int = 0  # each start numbers a run; a monitor's cleanup names its own
    pid: int = 0
    started_at: str = ""
    finished_at: str = ""
    exit_code: int = 0
    restart_count: int = 0
    stopped_by_user: bool = False  # husk stop or kill: no restart policy brings it back
    error: str = ""
    health: Health | None = None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ContainerRecord:
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["mounts"] = [Mount(**m) for m in values.get("mounts") or []]
        if values.get("network") is not None:
            values["network"] = NetworkInfo(**values["network"])
        if values.get("healthcheck") is not None:
            values["healthcheck"] = Healthcheck(**values["healthcheck"])
        if values.get("health") is not None:
            health = dict(values["health"])
            health["log"] = [HealthResult(**r) for r in health.get("log") or []]
            values["health"] = Health(**health)
        return cls(**values)


def _path(store_root: str, cid: str) -> str:
    return StoreLayout(store_root).container_record(cid)


def load(store_root: str, cid: str) -> ContainerRecord | None:
    """The record of container CID; None if it has none (removed, or a
    crashed create that never wrote one)."""
    try:
        with open(_path(store_root, cid)) as f:
            return ContainerRecord.from_json(json.load(f))
    except (OSError, ValueError, TypeError):
        return None


def save(store_root: str, record: ContainerRecord) -> None:
    write_json(_path(store_root, record.id), record.to_json())


def update(store_root: str, cid: str, **fields: Any) -> ContainerRecord:
    """Set FIELDS in the stored record and return it.  The caller holds
    the container's lock, or is the only one that knows of it yet."""
    record = load(store_root, cid)
    if record is None:
        raise NotFound(cid)
    record = dataclasses.replace(record, **fields)
    save(store_root, record)
    return record


def every(store_root: str) -> list[ContainerRecord]:
    """All image containers' records, by id."""
    try:
        ids = sorted(os.listdir(StoreLayout(store_root).containers))
    except FileNotFoundError:
        return []
    return [r for r in (load(store_root, cid) for cid in ids) if r is not None]


def find(store_root: str, text: str) -> ContainerRecord:
    """As docker names containers: the whole id or name, else a unique
    prefix of the id, else a unique prefix of the name."""
    if not text:
        raise NotFound(text)
    if "/" not in text and text not in (".", ".."):
        exact = load(store_root, text)
        if exact is not None:
            return exact
    records = every(store_root)
    for r in records:
        if text == r.name:
            return r
    for key in ("id", "name"):
        matches = [r for r in records if getattr(r, key).startswith(text)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise HuskError("container", f"{text!r} matches {len(matches)} containers: give more of the {key}")
    raise NotFound(text)


def _lock_path(store_root: str, cid: str) -> str:
    return os.path.join(StoreLayout(store_root).containers, cid, "lock")


def make_lock(store_root: str, cid: str) -> None:
    """The lock file, made with the container's directory and never again:
    a lock taken while `husk rm` removes the directory must not put a file
    back into it."""
    os.close(os.open(_lock_path(store_root, cid), os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))


@contextlib.contextmanager
def locked(store_root: str, cid: str) -> Iterator[bool]:
    """Hold container CID's lock (flock on containers/<id>/lock, one
    lifecycle step at a time); yields False if the container is gone,
    removed before or while we waited."""
    fd = _open_lock(store_root, cid)
    if fd is None:
        yield False
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield os.path.exists(_path(store_root, cid))
    finally:
        os.close(fd)


def _open_lock(store_root: str, cid: str) -> int | None:
    try:
        return os.open(_lock_path(store_root, cid), os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        pass
    if not os.path.exists(_path(store_root, cid)):
        return None  # gone, or going: nothing may be made in its directory
    try:  # a container from before make_lock: its first lock makes the file
        return os.open(_lock_path(store_root, cid), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except FileNotFoundError:
        return None
