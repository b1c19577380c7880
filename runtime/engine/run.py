"""Image containers, run: `husk run IMAGE`, `husk rm`, `husk containers`.

The docker-like lifecycle on top of runtime.core: the image is found (or
pulled, by the --pull policy), a bundle is made from it with a rootfs of
its layers (engine.image.containers), the core runs that bundle, and the
container's record in the store follows it (running, exited with a code,
removed with --rm).

Exit codes as docker's: the command's own, 125 when husk fails, 126 when
the command cannot be executed, 127 when it is not found (errors.py).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from runtime.core import container, executor
from runtime.core.errors import ConfigError, ExecError, HuskError, ImageError, NotFound
from runtime.engine import lifecycle, limits, units, volumes
from runtime.engine import record as records
from runtime.engine.image import bundle, containers, images, reference
from runtime.engine.image.store import Store
from runtime.engine.record import ContainerRecord

HUSK_FAILED = 125


@dataclass
class RunRequest:
    """What `husk run IMAGE` was asked for (docker's flags)."""

    target: str
    command: list[str] = field(default_factory=list)
    pull: str = "missing"  # missing | always | never
    platform: str | None = None
    tls_verify: bool = True
    authfile: str | None = None
    quiet: bool = False
    env: list[str] = field(default_factory=list)
    env_files: list[str] = field(default_factory=list)
    entrypoint: str | None = None
    workdir: str | None = None
    user: str | None = None
    hostname: str | None = None
    name: str | None = None
    tty: bool = False
    interactive: bool = False
    detach: bool = False
    remove: bool = False
    read_only: bool = False
    storage_driver: str = "overlay"
    security_opt: list[str] = field(default_factory=list)
    network: str = "bridge"
    publish: list[str] = field(default_factory=list)
    publish_all: bool = False
    ip: str | None = None
    dns: list[str] = field(default_factory=list)
    add_host: list[str] = field(default_factory=list)
    restart: str = "no"
    log_opts: list[str] = field(default_factory=list)
    cgroup_manager: str | None = None  # cgroupfs | systemd; None: systemd where it is the init
    limits: limits.Limits = field(default_factory=limits.Limits)
    volumes: list[str] = field(default_factory=list)  # -v
    mounts: list[str] = field(default_factory=list)  # --mount
    tmpfs: list[str] = field(default_factory=list)  # --tmpfs
    health_cmd: str | None = None
    health_interval: str | None = None
    health_timeout: str | None = None
    health_retries: int | None = None
    health_start_period: str | None = None
    no_healthcheck: bool = False


Report = Callable[[str], None]


def read_env_file(path: str) -> list[str]:
    out = []
    try:
        with open(path) as f:
            for n, line in enumerate(f, 1):
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                key = line.split("=", 1)[0]
                if not key or " " in key:
                    raise ConfigError("--env-file", f"{path}:{n}: expected KEY=VALUE")
                out.append(line if "=" in line else f"{line}={os.environ.get(line, '')}")
    except OSError as e:
        raise ConfigError("--env-file", f"{path}: {e.strerror}") from None
    return out


def _image(store: Store, req: RunRequest) -> tuple[str, str]:
    """(manifest digest, name) of the target, pulled according to --pull."""
    ref = reference.parse(req.target) if req.pull != "never" else None
    if req.pull != "always":
        with contextlib.suppress(HuskError):
            return images.find(store, req.target)
        if req.pull == "never":
            raise ImageError("image", f"{req.target!r} is not in the store and --pull=never")
    ref = ref or reference.parse(req.target)
    digest = images.pull(store, req.target, platform=req.platform, tls_verify=req.tls_verify,
                         authfile=req.authfile, quiet=req.quiet)
    return digest, ref.name


def _create(store: Store, req: RunRequest) -> ContainerRecord:
    digest, name = _image(store, req)
    env = list(req.env)
    for path in req.env_files:
        env = read_env_file(path) + env
    run_opts = bundle.RunOptions(command=req.command, entrypoint=req.entrypoint, env=env, workdir=req.workdir,
                                 user=req.user, hostname=req.hostname, tty=req.tty, read_only=req.read_only)
    bundle.parse_security_opts(req.security_opt, run_opts)
    run_opts.resources = limits.to_resources(req.limits)
    mounts = _mounts(req)
    fields = _detached_fields(req)
    from runtime.engine import health

    check = health.from_flags(req.health_cmd, req.health_interval, req.health_timeout, req.health_retries,
                              req.health_start_period, req.no_healthcheck,
                              (store.config(digest).get("config") or {}).get("Healthcheck"))
    if check and not req.detach:
        if req.health_cmd:
            raise ConfigError("--health-cmd", "needs --detach: the monitor of a detached container runs the checks")
        check = None  # the image's check: a foreground run has no monitor to run it
    from runtime.engine.network.attach import NetworkRequest  # pyroute2: only when a container is made

    net = NetworkRequest(req.network, req.publish, req.publish_all, req.ip, req.dns, req.add_host)
    return containers.create(store, digest, name or req.target, run_opts, name=req.name, driver=req.storage_driver,
                             remove_after=req.remove, network=net, mounts=mounts, limits=run_opts.resources,
                             healthcheck=check, cgroup_manager=cgroup_manager(req.cgroup_manager), **fields)


def cgroup_manager(asked: str | None) -> str:
    """Where the container's cgroup goes: as podman chooses, a systemd
    scope where systemd is the init (its units are then accounted and
    shown by systemd-cgls, systemctl status), else cgroupfs."""
    from runtime.core.cgroups import systemd

    if asked is None:
        return "systemd" if systemd.booted() else "cgroupfs"
    if asked == "systemd" and not systemd.booted():
        raise ConfigError("--cgroup-manager", "systemd is not running on this host (no /run/systemd/system)")
    return asked


def _mounts(req: RunRequest) -> list[volumes.MountRequest]:
    """-v, --mount and --tmpfs, checked before anything is made."""
    out = ([volumes.parse_volume(v) for v in req.volumes] + [volumes.parse_mount(m) for m in req.mounts]
           + [volumes.parse_tmpfs(t) for t in req.tmpfs])
    volumes.check(out)
    return out


def _detached_fields(req: RunRequest) -> dict[str, Any]:
    """The record's fields for the monitor: restart policy and log size."""
    policy = lifecycle.parse_restart(req.restart)
    if policy.name != "no" and req.remove:
        raise ConfigError("--restart", "goes without --rm (docker's rule: a removed container cannot restart)")
    if policy.name != "no" and not req.detach:
        raise ConfigError("--restart", "needs --detach: the monitor of a detached container restarts it")
    if req.detach and req.tty:
        raise ConfigError("--detach", "goes without -t (no terminal for detached containers yet): use -d -i and "
                          "husk attach, or husk logs")
    size = 0
    for opt in req.log_opts:
        key, _, value = opt.partition("=")
        if key != "max-size":
            raise ConfigError("--log-opt", f"{opt!r}: husk's k8s-file log takes max-size=SIZE")
        size = units.parse_size(value, "--log-opt")
    return {"restart": str(policy), "log_size_max": size, "detached": req.detach,
            "interactive": req.detach and req.interactive}


def run_image(root: str, store_root: str, req: RunRequest, report: Report, started: Report) -> int:
    """Run the container; its exit code, or docker's code for a failure
    (reported through REPORT).  STARTED gets the id of a detached one."""
    store = Store(store_root)
    try:
        record = _create(store, req)
    except HuskError as e:
        report(str(e))
        return HUSK_FAILED
    cid = record.id
    if req.detach:
        return _run_detached(root, store, record, report, started)
    code = HUSK_FAILED
    ran = False
    try:
        records.update(store_root, cid, status="running", started_at=units.now())
        if not req.interactive and not req.tty:
            stdin_from_devnull()
        code = executor.run(root, cid, store.container_dir(cid), systemd=record.cgroup_manager == "systemd")
        ran = True
    except HuskError as e:
        if not getattr(e, "reported", False):  # the front end's own were printed by it
            report(str(e))
        code = e.exit_code if isinstance(e, ExecError) else HUSK_FAILED
    finally:
        if req.remove:  # and the volumes it made, if it never ran
            containers.destroy(store, cid, anonymous_volumes=True, volumes_made=not ran)
        else:
            containers.release(store, cid)
            records.update(store_root, cid, status="exited", exit_code=code, finished_at=units.now())
    return code


def _run_detached(root: str, store: Store, record: ContainerRecord, report: Report, started: Report) -> int:
    """Start it under its monitor (engine.monitor) and return: the monitor
    holds its output (container.log), records its exit and applies --rm
    and --restart.  `husk rm -f` stops it and releases its rootfs and network."""
    cid = record.id
    try:
        with records.locked(store.root, cid):  # its cleanup waits until the record says it runs
            lifecycle.start_detached(root, store, record)
    except HuskError as e:
        report(str(e))
        containers.destroy(store, cid, anonymous_volumes=True, volumes_made=True)
        return e.exit_code if e.exit_code in (126, 127) else HUSK_FAILED
    started(cid)
    return 0


def stdin_from_devnull() -> None:
    """Without -i the container's stdin is /dev/null, as with docker."""
    fd = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    os.dup2(fd, 0)
    os.close(fd)


def remove(root: str, store_root: str, text: str, force: bool, remove_volumes: bool = False) -> str:
    """`husk rm`: the container named or id'd by TEXT goes (its runtime
    state, rootfs, changes and network; with REMOVE_VOLUMES, its anonymous
    volumes); returns its name."""
    store = Store(store_root)
    record = records.find(store_root, text)
    status = lifecycle.state_of(root, store, record)["Status"]
    if status in ("running", "paused", "restarting") and not force:
        raise HuskError("rm", f"container {record.name} is {status}: stop it or use --force")
    with records.locked(store_root, record.id) as present:
        if not present:
            raise NotFound(text)
        records.update(store_root, record.id, stopped_by_user=True)  # no restart while it goes
        with contextlib.suppress(NotFound):
            container.delete(root, record.id, force=True)
        containers.destroy(store, record.id, anonymous_volumes=remove_volumes)  # also its network and rootfs
    return record.name


def listing(root: str, store_root: str) -> list[dict[str, Any]]:
    """`husk containers`: each image container's record with its status."""
    store = Store(store_root)
    rows = []
    for r in records.every(store_root):
        state = lifecycle.state_of(root, store, r)
        status = state["Status"]
        if status in ("exited", "dead"):
            status = f"{status} ({state['ExitCode']})"
        rows.append(dict(r.to_json(), status=status, state=state))
    return rows
