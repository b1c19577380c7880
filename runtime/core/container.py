"""The container lifecycle as Python sees it: state, exec, update, pause,
the checks that give start, kill and delete's errors their kinds, and
the planning of create.

create, start, run, kill and delete are carried out by one executor, the
`husk` command's C front end (native/front): podman, containerd and
Docker call it directly, the engine through runtime/core/executor.py, and
Python's CLI only explains what the front end handed back to it.
"""

from __future__ import annotations

import functools
import json
import os
from typing import Any, NamedTuple, NoReturn

from runtime.core import executor, trace
from runtime.core.cgroups import systemd as sd
from runtime.core.cgroups.manager import CgroupManager, clean_cgroups_path, container_cgroup_mounts, manager_for
from runtime.core.errors import HuskError, NotFound, WrongState
from runtime.core.linux import constants as k
from runtime.core.linux.rlimits import check_raisable
from runtime.core.oci.defaults import defaults
from runtime.core.oci.spec import check_annotations, get_obj, get_str, load_config
from runtime.core.oci.specconv import (
    Namespaces,
    bounding_set,
    hooks_of,
    limit_capabilities,
    parse_namespaces,
    process_plan,
    spec_to_plan,
)
from runtime.core.oci.state import ContainerState, Status, list_ids
from runtime.core.process import protocol as proto


class CreatePlan(NamedTuple):
    linux: dict[str, Any]
    namespaces: Namespaces
    cgroup: CgroupManager
    resources: dict[str, Any]  # linux.resources with the default devices allowed
    plan: proto.Plan
    hooks: dict[str, list[dict[str, Any]]]
    unit_properties: list[list[Any]] | None  # --systemd-cgroup: the unit's (cgroups/systemd.py)


def plan_create(config: dict[str, Any], bundle: str, container_id: str, *, no_pivot: bool, no_new_keyring: bool,
                preserve_fds: int = 0, console_socket: bool = False, systemd: bool = False) -> CreatePlan:
    """The planner (runc's CreateLibcontainerConfig): a config and the
    create's options in, the whole plan out, checked, built here and not
    changed afterwards; nothing is made (runtime/core/recipe.py turns it
    into the front end's recipe).  CONSOLE_SOCKET: one was given (with
    none, only run's own pty proxy takes a terminal).  SYSTEMD: the
    cgroup is the systemd unit cgroupsPath names (--systemd-cgroup)."""
    linux = get_obj(config, "linux", "linux")
    namespaces = parse_namespaces(linux)
    trace.step("planning", "namespaces", f"linux.namespaces: new {', '.join(sorted(namespaces.new)) or 'none'}; "
               f"join {', '.join(f'{t} {p}' for t, p in sorted(namespaces.joined.items())) or 'none'}")
    check_annotations(config)
    cgroups_path = get_str(linux, "cgroupsPath", "linux.cgroupsPath")
    if systemd:
        cg = manager_for(sd.unit_of(cgroups_path, container_id).path)
    else:
        cg = manager_for(clean_cgroups_path(cgroups_path, container_id))
    trace.step("planning", "cgroup", f"cgroup {cg.path} on a {cg.layout.mode} host, in {len(cg.placements)} "
               f"hierarchies{' (a systemd unit)' if systemd else ''}")
    cgroup_mounts = functools.partial(container_cgroup_mounts, cg, "cgroup" in namespaces.new)
    plan = spec_to_plan(config, bundle, cgroup_mounts=cgroup_mounts)
    check_raisable(plan.rlimits)
    trace.step("planning", "spec", f"{len(plan.mounts)} mounts, {len(plan.masked_paths)} masked and "
               f"{len(plan.readonly_paths)} read-only paths, {len(plan.devices)} devices, "
               f"{len(plan.seccomp.rules) if plan.seccomp else 0} seccomp rules, uid {plan.uid} gid {plan.gid}")
    plan.no_pivot = no_pivot
    plan.session_keyring = None if no_new_keyring else _session_keyring(container_id)
    plan.preserve_fds = preserve_fds
    # husk-init's fds, as the front end lays them out: the inherited
    # 3..3+preserve_fds-1, then the socket, the console, the sealed copy
    # of itself.
    if plan.terminal:  # the console socket's, or run's own pty proxy (native/front/console.c)
        plan.console_fd = 3 + preserve_fds + 1
    elif console_socket:
        raise HuskError("create", "--console-socket given but process.terminal is false")
    resources = resources_with_default_devices(get_obj(linux, "resources", "linux.resources"))
    program = cg.device_program(resources)  # cgroup v2's device rules: a BPF program
    if program:
        plan.device_bpf, plan.device_bpf_cgroup = program
    unit_properties = None
    if systemd:
        unit_properties = sd.unit_properties(resources, cg.layout.mode, config.get("annotations") or {})
    return CreatePlan(linux, namespaces, cg, resources, plan, hooks_of(config), unit_properties)


def _session_keyring(container_id: str) -> str:
    """The name of the container's own session keyring (runc's "_ses.ID")."""
    return f"_ses.{container_id}"


def resources_with_default_devices(resources: dict[str, Any]) -> dict[str, Any]:
    """The default devices stay usable whatever the device rules say
    (runc's AllowedDevices): null, zero, full, random, urandom, tty,
    console, ptmx, pts, tun."""
    if "devices" not in resources:
        return resources
    allowed = [dict(d, allow=True) for d in defaults()["allowed_devices"]["list"]]
    return dict(resources, devices=list(resources["devices"]) + allowed)


def start(root: str, container_id: str) -> None:
    """Let a created container's process exec: carried out by the front
    end (native/front/state.c), poststart hooks and all.  The check here
    only gives the error its kind."""
    st = ContainerState(root, container_id)
    with st.locked():
        status = st.status()
        if status != "created":
            raise WrongState("start", f"container {container_id!r} is {status}, not created")
    executor.oci(root, "start", container_id)


def kill(root: str, container_id: str, sig: int, all_processes: bool = False) -> None:
    """Signal the container's init, or with ALL_PROCESSES every process in
    its cgroup: carried out by the front end (native/front/state.c), as
    for containerd's shim.  The checks here only give the error its kind."""
    st = ContainerState(root, container_id)
    with st.locked():
        if st.status() == "stopped" and not all_processes:
            raise WrongState("kill", f"container not running ({container_id} has stopped)")
    executor.oci(root, "kill", *(["--all"] if all_processes else []), container_id, str(sig))


def delete(root: str, container_id: str, force: bool = False) -> None:
    """Remove a stopped container (with FORCE, kill it first): carried out
    by the front end (native/front/state.c).  The checks here only give
    the error its kind."""
    st = ContainerState(root, container_id)
    try:
        st.open()
    except NotFound:
        if force:
            return  # containerd's cleanup deletes twice
        raise
    try:
        status = st.status()
        if status != "stopped" and not force:
            raise WrongState("delete", f"container {container_id!r} is {status}: stop it or use --force")
    finally:
        st.unlock()
    executor.oci(root, "delete", *(["--force"] if force else []), container_id)


def process_of(root: str, container_id: str) -> dict[str, Any]:
    """A copy of the container's config.json process (exec's starting point)."""
    st = ContainerState(root, container_id)
    with st.locked():
        return json.loads(json.dumps(_process(st)))


def pids(root: str, container_id: str) -> list[int]:
    """The host pids in the container's cgroup."""
    st = ContainerState(root, container_id)
    with st.locked():
        if st.status() == Status.STOPPED:
            raise WrongState("ps", f"container {container_id!r} is not running")
        return sorted(_cgroup(st).pids())


def command_lines(pids: list[int]) -> list[tuple[int, str]]:
    """(pid, /proc/PID/cmdline as text) of the PIDS still there."""
    out = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                out.append((pid, f.read().replace(b"\0", b" ").decode(errors="replace").strip()))
        except OSError:
            continue
    return out


def list_states(root: str) -> list[dict[str, Any]]:
    """The state of every container under ROOT, with its creation time."""
    rows = []
    for cid in list_ids(root):
        try:
            st = ContainerState(root, cid).open()
        except HuskError:
            continue  # deleted meanwhile
        try:
            rows.append(st.oci_state() | {"created": st.husk.created or ""})
        finally:
            st.unlock()
    return rows


OOM_ANNOTATION = "io.github.husk.oom-killed"


def state(root: str, container_id: str) -> dict[str, Any]:
    st = ContainerState(root, container_id)
    with st.locked():
        result = st.oci_state()
        if result["status"] == "stopped" and _cgroup(st).oom_kills() > 0:
            # The cgroup lives until delete: the OOM killer's count says why it stopped.
            result["annotations"] = dict(result["annotations"], **{OOM_ANNOTATION: "true"})
        return result


def _process(st: ContainerState) -> dict[str, Any]:
    """The container's config.json process.  The front end keeps it in the
    state, but for a config with a number past int64 (an unlimited rlimit
    as 2^64-1), which it cannot carry exactly: that one is read from the
    bundle, which the client keeps until it deletes the container."""
    if st.husk.other.get("process_in_bundle"):
        return get_obj(load_config(st.bundle), "process", "process", required=True)
    return st.husk.process


def _cgroup(st: ContainerState):
    return manager_for(st.husk.cgroup, st.husk.cgroup_created)


def update(root: str, container_id: str, resources: dict[str, Any]) -> None:
    """Apply new linux.resources to a live container's cgroup."""
    st = ContainerState(root, container_id)
    with st.locked():
        if st.status() == "stopped":
            raise WrongState("update", f"container {container_id!r} is stopped")
        # As at create: containerd sends the whole LinuxResources, whose
        # devices are only "deny all", and counts on /dev/null staying usable.
        resources = resources_with_default_devices(resources)
        cg = _cgroup(st)
        if st.husk.systemd_unit:  # the unit's properties first, then cgroupfs (as at create)
            sd.set_properties(st.husk.systemd_unit, sd.resource_properties(resources, cg.layout.mode))
        cg.apply(resources)


def pause(root: str, container_id: str) -> None:
    _set_paused(root, container_id, True)


def resume(root: str, container_id: str) -> None:
    _set_paused(root, container_id, False)


def _set_paused(root: str, container_id: str, paused: bool) -> None:
    """Freeze (pause) or thaw (resume) the container's cgroup."""
    verb, needed = ("pause", "running") if paused else ("resume", "paused")
    st = ContainerState(root, container_id)
    with st.locked():
        status = st.status()
        if status != needed:
            raise WrongState(verb, f"container {container_id!r} is {status}, not {needed}")
        cg = _cgroup(st)
        if paused:
            cg.freeze()
        else:
            cg.thaw()
        st.husk.paused = paused
        st.save()


def stats(root: str, container_id: str) -> dict[str, Any]:
    st = ContainerState(root, container_id)
    with st.locked():
        if st.status() == "stopped":
            raise WrongState("events", f"container {container_id!r} is stopped")
        return _cgroup(st).stats()


def oom_kills(root: str, container_id: str) -> int:
    st = ContainerState(root, container_id)
    with st.locked():
        return _cgroup(st).oom_kills()


def exec_process(root: str, container_id: str, process: dict[str, Any], *, detach: bool = False,
                 pid_file: str | None = None, console_socket: str | None = None, preserve_fds: int = 0,
                 front_args: tuple[str, ...] = ()) -> NoReturn:
    """Run another process in a running container: planned here (each of
    its namespaces to join - the extra fork enters the pid namespace - and
    the same security setup as create), carried out by the front end
    (native/front/exec.c), which this process becomes: its exit code is
    the process's, or 0 with detach once the program has exec'd.
    FRONT_ARGS: the global flags for the front end (--log ...)."""
    st = ContainerState(root, container_id)
    with st.locked():
        status = st.status()
        if status not in ("created", "running"):
            raise WrongState("exec", f"container {container_id!r} is {status}")
        plan = proto.Plan(mode=proto.MODE_EXEC, preserve_fds=preserve_fds, exec_root=f"/proc/{st.pid}/root")
        husk = st.husk
        if not husk.no_new_keyring:
            plan.session_keyring = _session_keyring(container_id)
        last_cap = k.cap_last_cap()
        process_plan(process, plan, last_cap, {"seccomp": husk.seccomp})
        plan.caps = limit_capabilities(plan.caps, bounding_set(_process(st), last_cap))
        check_raisable(plan.rlimits)
        for nstype in husk.namespaces:
            name = k.NS_PROC_NAMES[nstype]
            path = f"/proc/{st.pid}/ns/{name}"
            # setns into the namespace we are already in is refused for user
            # namespaces and pointless for the rest.
            if os.readlink(path) != os.readlink(f"/proc/self/ns/{name}"):
                plan.joins.append((k.NAMESPACES[nstype], path))
        if plan.terminal:
            if detach and not console_socket:
                raise HuskError("exec", "--tty with --detach needs --console-socket")
            plan.console_fd = 3 + preserve_fds + 1  # where the front end puts the console for husk-init
        head = {"id": container_id, "cgroup_dirs": _cgroup(st).dirs(), "systemd_unit": husk.systemd_unit,
                "detach": detach,
                "pid_file": os.path.abspath(pid_file) if pid_file else None,
                "console_socket": os.path.abspath(console_socket) if console_socket else None,
                "proxy": plan.terminal and not console_socket, "preserve_fds": preserve_fds}
    trace.step("planning", "exec_plan", f"the process for container {container_id}: join the namespaces of its "
               f"init (pid {st.pid}), {len(plan.joins)} by path; uid {plan.uid}, "
               f"{len(plan.seccomp.rules) if plan.seccomp else 0} seccomp rules")
    executor.exec_plan(["--root", root, *front_args, "exec", container_id], head, proto.encode_plan(plan),
                       above=3 + preserve_fds)
