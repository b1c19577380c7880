"""The docker lifecycle of image containers: start, stop, restart, wait,
kill, the monitor's cleanup, and the state `husk ps` and `inspect` show.

A detached container runs under its own husk-monitor (engine.monitor).
When it exits, the monitor runs `husk cleanup ID`, which is `cleanup()`
here: the OCI container is deleted, then by the record's restart policy
the container is run again in place (rootfs and network kept), or it is
released (rootfs unmounted, network detached) and marked exited, or it
is removed (--rm).  Every step holds the container's lock
(record.locked), so a cleanup and a `husk rm -f` never interleave.

    created --start--> running --exit--> [restarting -->] running
                                     \\--> exited --start--> running
                                     \\--> removed (--rm)

Restart policies are docker's: no, on-failure[:N], always,
unless-stopped.  A container stopped by `husk stop` or `husk kill` is not
restarted by any of them.  There is no daemon to restart containers at
boot, so `always` and `unless-stopped` behave the same.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Any

from runtime.core import container
from runtime.core.errors import ConfigError, HuskError, NotFound
from runtime.core.linux.signals import parse_signal
from runtime.engine import monitor, units
from runtime.engine import record as records
from runtime.engine.image import containers
from runtime.engine.image.store import Store
from runtime.engine.record import ContainerRecord, Health

# docker's restart backoff: 100 ms, doubling, at most a minute; reset once
# a run has lasted 10 s.
BACKOFF_FIRST = 0.1
BACKOFF_MAX = 60.0
BACKOFF_RESET_AFTER = 10.0


@dataclass(frozen=True)
class RestartPolicy:
    name: str = "no"  # no | on-failure | always | unless-stopped
    max_retries: int = 0  # on-failure:N; 0 is no limit

    def __str__(self) -> str:
        return f"{self.name}:{self.max_retries}" if self.max_retries else self.name

    def wants_restart(self, exit_code: int, restarts: int, stopped_by_user: bool) -> bool:
        if stopped_by_user or self.name == "no":
            return False
        if self.name == "on-failure":
            return exit_code != 0 and (self.max_retries == 0 or restarts < self.max_retries)
        return True


def parse_restart(text: str) -> RestartPolicy:
    name, sep, count = text.partition(":")
    if name not in ("no", "on-failure", "always", "unless-stopped"):
        raise ConfigError("--restart", f"{text!r}: use no, on-failure[:N], always or unless-stopped")
    if sep and (name != "on-failure" or not count.isdigit()):
        raise ConfigError("--restart", f"{text!r}: only on-failure takes a count (on-failure:3)")
    return RestartPolicy(name, int(count) if count else 0)


# Starting

def start_detached(root: str, store: Store, record: ContainerRecord) -> int:
    """Run the container under a new monitor; returns its pid.  The
    caller holds the container's lock, so the monitor's cleanup (which
    takes it) cannot finish before the record says "running"."""
    cid = record.id
    # Each run is numbered: its monitor's cleanup names it, so a late
    # cleanup of an earlier run (after `husk restart`) touches nothing.
    run = (records.load(store.root, cid) or record).run + 1
    # Stamped before: a quick container may have exited when spawn returns.
    started_at = units.now()
    check = record.healthcheck
    # Each run starts out "starting", as docker's does.
    records.update(store.root, cid, run=run, health=Health() if check else None)
    started = monitor.spawn(root, store.root, cid, run, record.log_size_max,
                            health_interval=check.interval if check else 0, stdin=record.interactive,
                            systemd=record.cgroup_manager == "systemd")
    records.update(store.root, cid, status="running", started_at=started_at, pid=started.pid)
    return started.pid


def start(root: str, store_root: str, text: str) -> ContainerRecord:
    """`husk start NAME`: a created or exited container runs again,
    detached, under a monitor.  Starting a running one does nothing."""
    store = Store(store_root)
    cid = records.find(store_root, text).id
    with records.locked(store_root, cid) as present:
        if not present:
            raise NotFound(text)
        record = records.load(store_root, cid)
        if state_of(root, store, record)["Status"] in ("running", "paused", "restarting"):
            return record
        with contextlib.suppress(NotFound):
            container.delete(root, cid, force=True)  # the OCI state of a run whose cleanup never came
        record = records.update(store_root, cid, stopped_by_user=False, restart_count=0)
        containers.prepare(store, record)
        try:
            start_detached(root, store, record)
        except HuskError:
            containers.release(store, cid)
            raise
    return record


# Exiting

def cleanup(root: str, store_root: str, cid: str, run: int | None = None) -> None:
    """The monitor's exit command: run RUN of the container exited (or
    died with its monitor); apply the restart policy, or release or
    remove it.  RUN None: whatever run the record names."""
    store = Store(store_root)
    with records.locked(store_root, cid) as present:
        if not present:
            return  # `husk rm -f` took it
        record = records.load(store_root, cid)
        if run is not None and record.run != run:
            return  # a later run has started (husk start, restart): this one was released by it
        info = monitor.exit_info(store_root, cid) or {}
        code = info.get("exit_code", 255)
        with contextlib.suppress(NotFound):
            container.delete(root, cid, force=True)
        policy = parse_restart(record.restart)
        if not policy.wants_restart(code, record.restart_count, record.stopped_by_user):
            _finish(store, record, code, info.get("finished_at"))
            return
        records.update(store_root, cid, status="restarting", exit_code=code,
                       finished_at=info.get("finished_at") or units.now())
        delay = _backoff(record)
    time.sleep(delay)  # without the lock: `husk stop` and `husk rm` may act meanwhile
    with records.locked(store_root, cid) as present:
        if not present:
            return
        record = records.load(store_root, cid)
        if record.stopped_by_user or record.status != "restarting":
            if record.status == "restarting":
                _finish(store, record, record.exit_code, record.finished_at)
            return
        try:
            record = records.update(store_root, cid, restart_count=record.restart_count + 1)
            start_detached(root, store, record)
        except HuskError as e:
            records.update(store_root, cid, error=str(e))
            _finish(store, record, 125, None)


def _backoff(record: ContainerRecord) -> float:
    ran = units.seconds_between(record.started_at, units.now())
    if ran is not None and ran >= BACKOFF_RESET_AFTER:
        return BACKOFF_FIRST
    return min(BACKOFF_FIRST * 2 ** record.restart_count, BACKOFF_MAX)


def _finish(store: Store, record: ContainerRecord, code: int, finished_at: str | None) -> None:
    cid = record.id
    if record.remove:
        containers.destroy(store, cid, anonymous_volumes=True)
        return
    containers.release(store, cid)
    records.update(store.root, cid, status="exited", exit_code=code, finished_at=finished_at or units.now(), pid=0)


# Stopping

def stop(root: str, store_root: str, text: str, timeout: float | None = None) -> str:
    """`husk stop`: the image's STOPSIGNAL (SIGTERM by default), SIGKILL
    after TIMEOUT seconds (10), then wait until the container is released."""
    store = Store(store_root)
    record = records.find(store_root, text)
    cid = record.id
    with records.locked(store_root, cid) as present:
        if not present:
            raise NotFound(text)
        records.update(store_root, cid, stopped_by_user=True)
    timeout = 10.0 if timeout is None else timeout
    if _signal(root, cid, parse_signal(record.stop_signal or "SIGTERM")):
        if not _wait_stopped(root, cid, timeout):
            _signal(root, cid, parse_signal("KILL"))
            _wait_stopped(root, cid, None)
    _wait_released(root, store, cid)
    return record.name


def kill(root: str, store_root: str, text: str, sig: str = "KILL") -> str:
    """`husk kill`: a signal (KILL by default, as docker's) to the
    container's init; a container killed so is not restarted."""
    store = Store(store_root)
    record = records.find(store_root, text)
    number = parse_signal(sig)
    if state_of(root, store, record)["Status"] not in ("running", "paused"):
        raise HuskError("kill", f"container {record.name} is not running")
    with records.locked(store_root, record.id) as present:
        if not present:
            raise NotFound(text)
        records.update(store_root, record.id, stopped_by_user=True)
    container.kill(root, record.id, number)
    return record.name


def _signal(root: str, cid: str, sig: int) -> bool:
    """Signal the container if it is running; False if it is not."""
    try:
        if container.state(root, cid)["status"] not in ("running", "paused", "created"):
            return False
        container.kill(root, cid, sig)
        return True
    except HuskError:
        return False


def _wait_stopped(root: str, cid: str, timeout: float | None) -> bool:
    deadline = None if timeout is None else time.monotonic() + timeout
    while deadline is None or time.monotonic() < deadline:
        try:
            if container.state(root, cid)["status"] == "stopped":
                return True
        except HuskError:
            return True
        time.sleep(0.05)
    return False


def _wait_released(root: str, store: Store, cid: str) -> None:
    """Until the monitor's cleanup has run.  A container whose monitor
    was killed gets no cleanup: it is done here instead."""
    while True:
        record = records.load(store.root, cid)
        if record is None or record.status in ("exited", "created"):
            return
        if state_of(root, store, record)["Status"] == "dead":
            cleanup(root, store.root, cid)
            return
        time.sleep(0.05)


def wait(root: str, store_root: str, text: str) -> int:
    """`husk wait`: block until the container stops; its exit code."""
    store = Store(store_root)
    record = records.find(store_root, text)
    cid = record.id
    last_exit = None
    while True:
        status = state_of(root, store, record)
        if status["Status"] in ("exited", "dead"):
            return status["ExitCode"]
        last_exit = monitor.exit_info(store_root, cid) or last_exit
        time.sleep(0.05)
        record = records.load(store_root, cid)
        if record is None:  # removed (--rm): the code is the last exit.json seen
            return last_exit["exit_code"] if last_exit else 0


# The state people see

def state_of(root: str, store: Store, record: ContainerRecord) -> dict[str, Any]:
    """docker's State object for a record, from the OCI state, the monitor
    and the record: Status created|running|paused|restarting|exited|dead.

    "dead" is a container whose monitor was killed (kill -9) after its
    process ended: nobody recorded the exit, and only `husk rm -f` (or
    `husk start`) moves it on."""
    cid = record.id
    try:
        oci = container.state(root, cid)
    except HuskError:
        oci = None
    oci_status = oci["status"] if oci else None
    watched = monitor.alive(store.root, cid)  # None: never had a monitor (a foreground run)
    info = monitor.exit_info(store.root, cid)
    status, code, error, pid = record.status, record.exit_code, record.error, 0
    if oci_status in ("running", "paused") or (oci_status == "created" and status != "created"):
        status, pid = ("paused" if oci_status == "paused" else "running"), oci.get("pid", 0)
        if watched is False:
            error = (f"its monitor (pid {monitor.monitor_pid(store.root, cid)}) was killed: "
                     "its exit code and output are no longer recorded; husk rm -f removes it")
    elif status == "running":  # the record says it runs; its process is gone
        if info is not None:
            status, code = "exited", info["exit_code"]  # the monitor's cleanup is on its way
        elif watched is not True:
            status, code = "dead", 255
            error = "its monitor was killed before the exit was recorded; husk rm -f removes it"
    state = {"Status": status, "Running": status in ("running", "paused"), "Paused": status == "paused",
             "Restarting": status == "restarting", "Dead": status == "dead", "Pid": pid,
             "ExitCode": code if status in ("exited", "dead", "restarting") else 0, "Error": error,
             "StartedAt": record.started_at, "FinishedAt": record.finished_at}
    if record.healthcheck:
        state["Health"] = (record.health or Health()).to_docker()
    return state


def human_status(state: dict[str, Any], now: str | None = None) -> str:
    """docker ps's STATUS column: Up 5 seconds, Exited (0) 2 minutes ago, ..."""
    now = now or units.now()
    status = state["Status"]
    if status in ("running", "paused"):
        text = f"Up {units.human_duration(units.seconds_between(state['StartedAt'], now))}"
        if "Health" in state:
            health = state["Health"]["Status"]
            text += f" (health: {health})" if health == "starting" else f" ({health})"
        return text + (" (Paused)" if status == "paused" else "") + (" (monitor lost)" if state["Error"] else "")
    since = units.human_duration(units.seconds_between(state["FinishedAt"], now))
    if status == "restarting":
        return f"Restarting ({state['ExitCode']}) {since} ago"
    if status == "exited":
        return f"Exited ({state['ExitCode']}) {since} ago"
    return status.capitalize()
