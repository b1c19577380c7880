"""The cgroup tests again, on a real cgroup v2 kernel in a qemu VM
(tests/vm/run_v2.py), so v2 is tested on every change, whatever this
machine's own layout is.  The VM boots systemd as PID 1, as most users'
machines do, and one boot serves the cgroupfs tests and the systemd
driver's (test_systemd.py); a second boot runs the driver's tests on
systemd's hybrid layout (v1 controllers), where its unit properties
differ."""

import os
import shutil
import subprocess
import sys

import pytest

from runtime.core.cgroups.layout import detect

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
V2_MODULES = ["tests/linux/test_cgroups.py", "tests/linux/test_devices.py", "tests/linux/test_exec_ps.py",
              "tests/linux/test_namespaces.py", "tests/linux/test_runtime_spec.py", "tests/linux/test_systemd.py"]

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.environ.get("HUSK_IN_VM") == "1", reason="already inside the VM"),
    pytest.mark.skipif(detect().mode == "v2", reason="this host is cgroup v2: the tests ran here directly"),
    pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None, reason="qemu-system-x86 is not installed"),
]


def test_cgroup_tests_pass_on_a_cgroup_v2_kernel():
    r = subprocess.run([sys.executable, os.path.join(REPO, "tests", "vm", "run_v2.py"), "--systemd", "-q", "-ra",
                        *V2_MODULES],
                       cwd=REPO, capture_output=True, text=True, timeout=3000)
    lines = [line for line in r.stdout.splitlines() if not line.startswith("[")]
    summary = "\n".join(lines[-40:])
    assert r.returncode == 0, f"in the cgroup v2 VM:\n{summary}\n{r.stderr[-2000:]}"
    assert "cgroup controllers: " in r.stdout and "memory" in r.stdout
    assert "systemd is not PID 1" not in r.stdout, "the systemd driver's tests did not run"


def test_the_systemd_driver_on_systemds_hybrid_layout():
    r = subprocess.run([sys.executable, os.path.join(REPO, "tests", "vm", "run_v2.py"), "--systemd", "--hybrid", "-q",
                        "-ra", "tests/linux/test_systemd.py"], cwd=REPO, capture_output=True, text=True, timeout=3000)
    lines = [line for line in r.stdout.splitlines() if not line.startswith("[")]
    summary = "\n".join(lines[-40:])
    assert r.returncode == 0, f"in the hybrid VM:\n{summary}\n{r.stderr[-2000:]}"
    assert "systemd is not PID 1" not in r.stdout and " passed" in r.stdout, summary

