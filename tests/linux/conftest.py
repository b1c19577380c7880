"""Shared fixtures: bundles of the built-in busybox rootfs with the
husk-checker probe in them, a private --root per test, and a leak check
that runs after every test.

System tests need root; they assert what the checker reports from inside
the container, never what husk says about itself.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILT = os.path.join(REPO, "rootfs", "build", "bundle")
HUSK = os.path.join(os.path.dirname(sys.executable), "husk")
# The installed package under test (the suite runs with python -I, so
# ./runtime is not on sys.path) carries husk-init and husk-checker.
import runtime

CHECKER = os.path.join(os.path.dirname(runtime.__file__), "_bin", "husk-checker")
CGROUP_PARENT = "husk-test"


def pytest_collection_modifyitems(config, items):
    if os.geteuid() != 0:
        skip = pytest.mark.skip(reason="needs root")
        for item in items:
            if "root" in item.keywords:
                item.add_marker(skip)


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self):
        return json.loads(self.out)


@dataclass
class Bundle:
    path: str
    root: str  # husk --root for this test
    config: dict = field(default_factory=dict)

    @property
    def rootfs(self) -> str:
        return os.path.join(self.path, "rootfs")

    def save(self) -> None:
        with open(os.path.join(self.path, "config.json"), "w") as f:
            json.dump(self.config, f, indent=2)

    def husk(self, *args, input=None, timeout=60, check=False, env=None, cwd=None, pass_fds=()) -> Result:
        """Run husk with this test's --root; returns code, stdout, stderr.

        Output goes to files, not pipes: a created container keeps husk's
        stdio, so a pipe would not see EOF until the container exits."""
        return run_husk([HUSK, "--root", self.root, *args], input=input, timeout=timeout, check=check, env=env,
                        cwd=cwd or self.path, pass_fds=pass_fds)

    def run(self, *args, cid="c1", **kw) -> Result:
        """Set process.args and `husk run` the bundle."""
        if args:
            self.config["process"]["args"] = list(args)
        self.save()
        return self.husk("run", "--bundle", self.path, cid, **kw)

    def report(self, cid="c1", **kw) -> dict:
        """Run the checker's report and return what it saw."""
        r = self.run("/checker", "report", cid=cid, **kw)
        assert r.code == 0, f"checker failed ({r.code}): {r.err}"
        return r.json()


def run_husk(argv: list[str], *, input=None, timeout=60, check=False, **kw) -> Result:
    """Run husk with stdout and stderr in temp files (see Bundle.husk)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.run(argv, input=input, stdout=out, stderr=err, text=True, timeout=timeout, **kw)
        out.seek(0)
        err.seek(0)
        result = Result(proc.returncode, out.read(), err.read())
    if check and result.code != 0:
        raise AssertionError(f"{' '.join(argv[3:])} failed ({result.code}): {result.err}")
    return result


def base_config() -> dict:
    from runtime.core.oci.example import example_spec
    config = example_spec(args=["/checker"], terminal=False)
    config["linux"]["cgroupsPath"] = None  # set per test
    return config


@pytest.fixture(scope="session")
def built_rootfs():
    if not os.path.isdir(BUILT):
        subprocess.run([sys.executable, os.path.join(REPO, "rootfs", "build.py")], check=True)
    assert os.path.exists(CHECKER), "husk-checker missing: pip install -e . builds it"
    return os.path.join(BUILT, "rootfs")


@pytest.fixture
def bundle(tmp_path, built_rootfs, request):
    """A fresh bundle: a copy of the busybox rootfs plus /checker."""
    path = tmp_path / "bundle"
    path.mkdir()
    subprocess.run(["cp", "-a", built_rootfs, str(path / "rootfs")], check=True)
    shutil.copy(CHECKER, path / "rootfs" / "checker")
    config = copy.deepcopy(base_config())
    config["linux"]["cgroupsPath"] = f"/{CGROUP_PARENT}/{request.node.name[:60]}".replace("[", "-").replace("]", "")
    b = Bundle(str(path), str(tmp_path / "state"), config)
    b.save()
    yield b
    # Whatever the test did, nothing may be left behind.  A process killed
    # by delete leaves its cgroup before it is a zombie we can reap: give
    # the kernel a moment to finish exits before calling anything a leak.
    for _ in range(40):
        leaks = find_leaks(b)
        if not leaks:
            break
        time.sleep(0.05)
    cleanup(b)
    assert not leaks, f"left behind: {leaks}"


def reap_orphans() -> None:
    """Containers whose `husk create` exited are reparented to us (we are
    a child subreaper, as conmon and containerd's shim are): reap them."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def find_leaks(b: Bundle) -> list[str]:
    reap_orphans()
    leaks = []
    if os.path.isdir(b.root) and os.listdir(b.root):
        leaks += [f"state dir {n}" for n in os.listdir(b.root)]
    with open("/proc/self/mountinfo") as f:
        leaks += [f"mount {line.split()[4]}" for line in f if b.path in line.split()[4]]
    cgroup = b.config["linux"].get("cgroupsPath") or ""
    for base in _cgroup_mounts():
        d = os.path.join(base, cgroup.lstrip("/"))
        if cgroup and os.path.isdir(d):
            leaks.append(f"cgroup {d}")
    leaks += [f"process {pid}" for pid in _processes_using(b.path)]
    return leaks


def cleanup(b: Bundle) -> None:
    """Best effort after a failed test, so one failure does not cascade."""
    for pid in _processes_using(b.path):
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass
    if os.path.isdir(b.root):
        for cid in os.listdir(b.root):
            subprocess.run([HUSK, "--root", b.root, "delete", "--force", cid], capture_output=True)


def _cgroup_mounts() -> list[str]:
    from runtime.core.cgroups.layout import detect
    layout = detect()
    return list(layout.v1.values()) + ([layout.unified] if layout.unified else [])


def _processes_using(path: str) -> list[int]:
    """Processes left in a test cgroup (a container that was not cleaned up)."""
    del path
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cgroup") as f:
                if f"/{CGROUP_PARENT}/" in f.read():
                    found.append(int(pid))
        except OSError:
            continue
    return found


@pytest.fixture(scope="session", autouse=True)
def subreaper_and_cgroup_parent():
    # PR_SET_CHILD_SUBREAPER (python-prctl): orphaned containers become our
    # children, not those of the machine's pid 1, which may never reap them.
    import prctl
    prctl.set_child_subreaper(True)
    yield
    for base in _cgroup_mounts():
        try:
            os.rmdir(os.path.join(base, CGROUP_PARENT))
        except OSError:
            pass


# Image tests: stores, layouts and registries (tests/imagefixtures.py).
from imagefixtures import busybox_env, http_registry, husk_env, layouts, tls_registry, token_registry  # noqa: F401
