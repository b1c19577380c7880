"""The container lifecycle: create, start, kill, delete, state, run.

The OCI face and the people's face (cli/) both drive containers through
these functions.  Each holds the container's lock for its whole run, and
undoes what it made if a later step fails.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import functools
import json
import os
import select
import signal
import socket
from typing import Any, NamedTuple

from runtime.core import errors, executor
from runtime.core.cgroups.manager import CgroupManager, clean_cgroups_path, container_cgroup_mounts, manager_for
from runtime.core.errors import HuskError, NotFound, WrongState
from runtime.core.linux import constants as k
from runtime.core.linux.rlimits import check_raisable
from runtime.core.oci.defaults import defaults
from runtime.core.oci.hooks import run_hooks
from runtime.core.oci.spec import get_obj, load_config
from runtime.core.oci.specconv import (
    Namespaces,
    bounding_set,
    hooks_of,
    limit_capabilities,
    parse_namespaces,
    process_plan,
    spec_to_plan,
)
from runtime.core.oci.state import ContainerState, HuskRecord, Status, list_ids, process_start_time
from runtime.core.process import protocol as proto
from runtime.core.process.launcher import Launch


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z")


def _write_pid_file(path: str, pid: int) -> None:
    tmp = f"{path}.husk-tmp"
    with open(tmp, "w") as f:
        f.write(str(pid))
    os.rename(tmp, path)


def _connect_console(path: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError as e:
        sock.close()
        raise HuskError("console socket", path, e.errno) from None
    return sock


def create(root: str, container_id: str, bundle: str, *, pid_file: str | None = None,
           console_socket: str | None = None, console_fd: int | None = None,
           no_pivot: bool = False, preserve_fds: int = 0, no_new_keyring: bool = False) -> ContainerState:
    """Set the container up to the point where only execve is left."""
    bundle = os.path.abspath(bundle)
    config = load_config(bundle)
    st = ContainerState(root, container_id)
    st.make()
    with contextlib.ExitStack() as undo, _interruptible(f"create {container_id}"):
        undo.callback(st.remove)
        linux, namespaces, cg, plan, hooks = plan_create(config, bundle, container_id, no_pivot=no_pivot,
                                                         no_new_keyring=no_new_keyring)
        plan.preserve_fds = preserve_fds + _listen_fds()

        console = None
        if plan.terminal:
            if console_fd is not None:
                plan.console_fd = console_fd
            elif console_socket:
                console = undo.enter_context(_connect_console(console_socket))
                plan.console_fd = console.fileno()
            else:
                raise HuskError("create", "process.terminal is true: --console-socket is required")
        elif console_socket:
            raise HuskError("create", "--console-socket given but process.terminal is false")

        # Write-ahead: what is about to be made is on disk before it is made,
        # so a husk killed at any point leaves nothing `delete -f` cannot find.
        st.oci_version = config.get("ociVersion", "")
        st.bundle = bundle
        st.annotations = config.get("annotations") or {}
        st.husk = HuskRecord(cgroup=cg.path, cgroup_created=cg.planned())
        st.save()
        undo.callback(cg.destroy)
        cg.create()
        resources = resources_with_default_devices(get_obj(linux, "resources", "linux.resources"))
        # Device rules also rule mknod: they go on once husk-init has made
        # the rootfs's device nodes (on_hooks below; husk-init attaches the
        # v2 program at the same point), so linux.devices that
        # linux.resources.devices does not allow are still created, as
        # runc does.  Nothing of the user's runs before then.
        cg.apply({k: v for k, v in resources.items() if k != "devices"})
        program = cg.device_program(resources)
        if program:
            plan.device_bpf, plan.device_bpf_cgroup = program
        os.mkfifo(st.fifo)
        # Writable by the container's user, whoever that is: it reopens the
        # fifo through /proc/self/fd after dropping to process.user.
        os.chmod(st.fifo, 0o622)
        plan.exec_fifo = st.fifo
        st.oci_version = config["ociVersion"]
        st.husk = HuskRecord(created=_now(), rootfs=plan.rootfs, cgroup=cg.path, cgroup_dirs=cg.dirs(),
                             cgroup_created=cg.created, hooks={k: hooks[k] for k in ("poststart", "poststop")},
                             process=config["process"], namespaces=sorted(namespaces.new | set(namespaces.joined)),
                             seccomp=linux.get("seccomp"), no_new_keyring=no_new_keyring)
        st.save()

        def on_hooks(pid: int) -> bytes:
            """Namespaces and mounts exist, pivot_root is next."""
            if resources.get("devices"):
                cg.apply({"devices": resources["devices"]})
            st.pid = pid
            st.husk.start_time = process_start_time(pid)
            state = st.oci_state() | {"status": "created", "pid": pid}
            run_hooks("prestart", hooks["prestart"], state, fatal=True)
            run_hooks("createRuntime", hooks["createRuntime"], state, fatal=True)
            return json.dumps(state).encode()

        def on_pid(pid: int) -> None:
            st.pid = pid
            st.husk.start_time = process_start_time(pid)
            st.save()

        launch = Launch(plan, context=f"create {container_id}")
        pid = launch.start(before_plan=cg.add, on_hooks=on_hooks, on_pid=on_pid)
        undo.callback(launch.abort)
        launch.close()
        st.pid = pid
        st.saved_status = Status.CREATED
        st.husk.start_time = process_start_time(pid)
        st.husk.cgroup_created = cg.created
        st.save()
        if pid_file:
            _write_pid_file(pid_file, pid)
        undo.pop_all()
    st.unlock()
    return st


class CreatePlan(NamedTuple):
    linux: dict[str, Any]
    namespaces: Namespaces
    cgroup: CgroupManager
    plan: proto.Plan
    hooks: dict[str, list[dict[str, Any]]]


def plan_create(config: dict[str, Any], bundle: str, container_id: str, *, no_pivot: bool,
                no_new_keyring: bool) -> CreatePlan:
    """What create will do, planned and checked, nothing made yet (also
    runtime/recipe.py's, for the C front end)."""
    linux = get_obj(config, "linux", "linux")
    namespaces = parse_namespaces(linux)
    cg = manager_for(clean_cgroups_path(linux.get("cgroupsPath"), container_id))
    cgroup_mounts = functools.partial(container_cgroup_mounts, cg, "cgroup" in namespaces.new)
    plan = spec_to_plan(config, bundle, cgroup_mounts=cgroup_mounts)
    check_raisable(plan.rlimits)
    plan.no_pivot = no_pivot
    plan.session_keyring = None if no_new_keyring else _session_keyring(container_id)
    return CreatePlan(linux, namespaces, cg, plan, hooks_of(config))


@contextlib.contextmanager
def _interruptible(step: str):
    """SIGTERM (and SIGHUP) during create unwind it like SIGINT does, so
    the undo stack removes what was made.  SIGKILL cannot be caught: the
    write-ahead state covers that."""
    def interrupted(signum, _frame):
        raise HuskError(step, f"interrupted by {signal.Signals(signum).name}")
    old = {s: signal.signal(s, interrupted) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


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


def _listen_fds() -> int:
    """Socket activation: LISTEN_FDS meant for us are passed on (as runc does)."""
    try:
        if int(os.environ.get("LISTEN_PID", "0")) == os.getpid():
            return int(os.environ.get("LISTEN_FDS", "0"))
    except ValueError:
        pass
    return 0


def start(root: str, container_id: str) -> None:
    st = ContainerState(root, container_id)
    with st.locked():
        status = st.status()
        if status != "created":
            raise WrongState("start", f"container {container_id!r} is {status}, not created")
        _release(st)
        st.saved_status = Status.RUNNING
        st.save()
        hooks = st.husk.hooks.get("poststart") or []
        if hooks:
            # The process was started; it may already have exited, but the
            # hook is told about the start it follows.
            run_hooks("poststart", hooks, st.oci_state() | {"status": "running", "pid": st.pid}, fatal=False)


def _release(st: ContainerState) -> None:
    """Open the exec fifo: the process waiting on it goes on to execve.
    Returns once it has exec'd (its CLOEXEC end of the fifo closed);
    an exec failure comes back as text through the fifo."""
    fifo = os.open(st.fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        pidfd = os.pidfd_open(st.pid)
    except ProcessLookupError:
        os.close(fifo)
        raise WrongState("start", f"container {st.id!r} is stopped") from None
    received = b""
    try:
        poller = select.poll()
        poller.register(fifo, select.POLLIN)
        poller.register(pidfd, select.POLLIN)
        opened = False
        while True:
            events = dict(poller.poll())
            if fifo in events:
                try:
                    chunk = os.read(fifo, 4096)
                except BlockingIOError:
                    continue
                if chunk:
                    opened = True
                    received += chunk
                    continue
                if opened:
                    break  # every writer is gone: execve happened, or it failed
            if pidfd in events and not opened:
                raise HuskError("start", f"container {st.id!r} exited before it was started")
    finally:
        os.close(fifo)
        os.close(pidfd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(st.fifo)
    raise_exec_failure(received)


def raise_exec_failure(received: bytes) -> None:
    """What husk-init sent through the exec fifo after the byte it writes
    on opening it: nothing (execve happened), or its MSG_ERROR record."""
    received = received.lstrip(b"\0")
    if not received:
        return
    head = proto.HEAD.size
    if len(received) >= head:
        tag, length = proto.HEAD.unpack_from(received)
        if tag == proto.Msg.ERROR and head + length <= len(received):
            raise errors.from_helper(*proto.decode_error(received[head:head + length]), prefix="start")
    raise HuskError("start", f"husk-init sent {len(received)} bytes that are not an error record", errno.EPROTO)


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
        return json.loads(json.dumps(st.husk.process))


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
        _cgroup(st).apply(resources_with_default_devices(resources))


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


def wait_exit(pid: int) -> int:
    """Wait for our child; its exit code, or 128+N for signal N (as shells do)."""
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except InterruptedError:
            continue
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


_FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1,
              signal.SIGUSR2, signal.SIGWINCH)


@contextlib.contextmanager
def forward_signals(pid: int):
    """While husk waits in the foreground, signals it gets go to the container."""
    def forward(signum, _frame):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)
    old = {s: signal.signal(s, forward) for s in _FORWARDED}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def run(root: str, container_id: str, bundle: str, *, detach: bool = False, pid_file: str | None = None,
        console_socket: str | None = None, no_pivot: bool = False, preserve_fds: int = 0,
        keep: bool = False, no_new_keyring: bool = False) -> int:
    """create + start (+ wait + delete unless detached).  Returns the exit code."""
    from runtime.core.process import console as tty

    proxy = None
    console_fd = None
    if not detach and console_socket is None and _wants_terminal(bundle):
        proxy = tty.Proxy()
        console_fd = proxy.remote_fd
    try:
        st = create(root, container_id, bundle, pid_file=pid_file, console_socket=console_socket,
                    console_fd=console_fd, no_pivot=no_pivot, preserve_fds=preserve_fds,
                    no_new_keyring=no_new_keyring)
    except BaseException:
        if proxy:
            proxy.close()
        raise
    pid = st.pid
    try:
        if proxy:
            proxy.receive_master()
        start(root, container_id)
    except BaseException:
        if proxy:
            proxy.close()
        with contextlib.suppress(HuskError):
            delete(root, container_id, force=True)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
        raise
    if detach:
        return 0
    with forward_signals(pid):
        if proxy:
            with proxy:
                proxy.pump(pid)
        code = wait_exit(pid)
    if not keep:
        delete(root, container_id, force=True)
    return code


def _wants_terminal(bundle: str) -> bool:
    try:
        with open(os.path.join(bundle, "config.json")) as f:
            return bool((json.load(f).get("process") or {}).get("terminal"))
    except (OSError, ValueError, AttributeError):
        return False


def exec_process(root: str, container_id: str, process: dict[str, Any], *, detach: bool = False,
                 pid_file: str | None = None, console_socket: str | None = None,
                 preserve_fds: int = 0) -> int:
    """Run another process in a running container: join each of its
    namespaces (the extra fork enters the pid namespace) and its cgroup,
    with the same security setup as create.  Returns the exit code, or 0
    with detach once the program has exec'd."""
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
        plan.caps = limit_capabilities(plan.caps, bounding_set(husk.process, last_cap))
        check_raisable(plan.rlimits)
        for nstype in husk.namespaces:
            name = k.NS_PROC_NAMES[nstype]
            path = f"/proc/{st.pid}/ns/{name}"
            # setns into the namespace we are already in is refused for user
            # namespaces and pointless for the rest.
            if os.readlink(path) != os.readlink(f"/proc/self/ns/{name}"):
                plan.joins.append((k.NAMESPACES[nstype], path))
        cg = _cgroup(st)

        proxy = console = None
        if plan.terminal:
            if console_socket:
                console = _connect_console(console_socket)
                plan.console_fd = console.fileno()
            elif detach:
                raise HuskError("exec", "--tty with --detach needs --console-socket")
            else:
                from runtime.core.process import console as tty
                proxy = tty.Proxy()
                plan.console_fd = proxy.remote_fd
        try:
            launch = Launch(plan, context=f"exec {container_id}")
            pid = launch.start(before_plan=cg.add, wait_exec=True)
            launch.close()
        except BaseException:
            if proxy:
                proxy.close()
            raise
        finally:
            if console:
                console.close()
        if pid_file:
            _write_pid_file(pid_file, pid)
    if detach:
        return 0
    with forward_signals(pid):
        if proxy:
            proxy.receive_master()
            with proxy:
                proxy.pump(pid)
        return wait_exit(pid)
