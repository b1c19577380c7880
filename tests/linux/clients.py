"""Shared set-up for the tests that drive husk through real clients."""

from __future__ import annotations

import os
import resource
import subprocess
import time

from conftest import HUSK, REPO

OCI_LAYOUT = os.path.join(REPO, "rootfs", "build", "oci")


def host_ulimits() -> list[str]:
    """nofile/nproc within what this host lets husk set (podman's defaults
    of 1048576 need CAP_SYS_RESOURCE, which some hosts' root lacks)."""
    nofile = min(1024, resource.getrlimit(resource.RLIMIT_NOFILE)[1])
    nproc = min(4096, resource.getrlimit(resource.RLIMIT_NPROC)[1])
    return [f"nofile={nofile}:{nofile}", f"nproc={nproc}:{nproc}"]


def husk_containers() -> list[str]:
    """What is left in husk's default state directory (podman uses it)."""
    try:
        return os.listdir("/run/husk")
    except FileNotFoundError:
        return []


def cgroups_named(fragment: str) -> list[str]:
    from runtime.core.cgroups.layout import detect
    layout = detect()
    found = []
    for base in list(layout.v1.values()) + ([layout.unified] if layout.unified else []):
        for dirpath, dirnames, _ in os.walk(base):
            found += [os.path.join(dirpath, d) for d in dirnames if fragment in d]
    return found


def processes_with(fragment: str) -> list[int]:
    pids = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if fragment.encode() in f.read():
                        pids.append(int(pid))
            except OSError:
                pass
    return pids


def containerd_config(base: str, sock: str, cri: bool = False) -> str:
    """The head of a config.toml for a containerd of a test's own: its
    root, state and sockets under BASE, no debug or metrics listener, and
    its CRI plugin only when CRI."""
    disabled = ([] if cri else ['"io.containerd.grpc.v1.cri"']) + [
        f'"io.containerd.{p}"' for p in ("internal.v1.tracing", "snapshotter.v1.btrfs", "snapshotter.v1.zfs",
                                          "snapshotter.v1.devmapper", "snapshotter.v1.aufs")]
    return f"""version = 2
root = "{base}/root"
state = "{base}/state"
disabled_plugins = [{", ".join(disabled)}]
[grpc]
  address = "{sock}"
[ttrpc]
  address = "{sock}.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
"""


def stop_daemon(proc: subprocess.Popen, grace: float = 30) -> None:
    """SIGTERM, and SIGKILL if it has not exited after GRACE seconds."""
    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def until(predicate, what: str, seconds: float = 60, interval: float = 0.1):
    """Poll PREDICATE every INTERVAL until it gives something true, and
    return that.  The bound only stops a broken run from hanging the
    suite: no time is asserted."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"never: {what}")


def run(cmd, **kw) -> subprocess.CompletedProcess:
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    kw.setdefault("timeout", 120)
    return subprocess.run(cmd, **kw)


__all__ = ["HUSK", "OCI_LAYOUT", "cgroups_named", "containerd_config", "host_ulimits", "husk_containers",
           "processes_with", "run", "stop_daemon", "until"]
