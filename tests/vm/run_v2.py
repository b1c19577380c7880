#!/usr/bin/env python3
"""Run husk's tests on a real cgroup v2 kernel, in a qemu VM.

    python3 tests/vm/run_v2.py [--systemd [--hybrid]] [PYTEST ARGS...]
    python3 tests/vm/run_v2.py [--systemd [--hybrid]] --command 'SHELL COMMAND'

1. Debian's kernel package (linux-image-amd64's dependency) is fetched with
   apt-get download and extracted with dpkg-deb - not installed.
2. A small initramfs is built here: the host's static busybox, the 9p and
   overlay modules, and an /init script.
3. qemu boots it (software emulation; KVM with HUSK_VM_KVM=1) with
   the host's / shared read-only over virtio-9p.  /init puts a tmpfs
   overlay on top, chroots into it, mounts cgroup2 with every controller
   at /sys/fs/cgroup and runs `python -I -m pytest ARGS` in this checkout,
   with the host's own Python and installed husk.
4. The exit code of that pytest is this script's exit code.

With --systemd the overlay boots into the host's systemd as PID 1 (cgroup
v2, D-Bus, /run/systemd/private) and pytest runs as a unit with a
delegated cgroup, as on most users' machines.  --hybrid has that systemd
mount the v1 controllers beside an empty cgroup2 (its "hybrid" layout)
instead of cgroup v2 alone.

The VM has no network device.
"""

from __future__ import annotations

import glob
import gzip
import io
import os
import shlex
import shutil
import stat
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CACHE = os.environ.get("HUSK_VM_CACHE", "/var/cache/husk-vm")
MODULES = ["virtio_ring", "virtio", "virtio_pci_modern_dev", "virtio_pci_legacy_dev", "virtio_pci",
           "netfs", "fscache", "9pnet", "9pnet_virtio", "9p", "overlay"]
MARKER = "HUSK-VM-EXIT="

INIT = r"""#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in {modules}; do [ -f /modules/$m.ko ] && insmod /modules/$m.ko 2>/dev/null; done
mkdir -p /lower /rw /newroot
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144 hostroot /lower || echo "{marker}90"
mount -t tmpfs -o size=4g tmpfs /rw
mkdir -p /rw/upper /rw/work
mount -t overlay overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work /newroot || echo "{marker}91"
for d in proc sys dev; do mount --move /$d /newroot/$d; done
{boot}
"""

# switch_root, not chroot: the overlay becomes the mount namespace's root,
# as / is on a real machine.
BOOT_SHELL = "exec switch_root /newroot /bin/sh -c {inner}"

# systemd as PID 1, which mounts cgroup2, /run and /tmp's neighbours
# itself.  Written into the overlay first:
# - /.dockerenv goes: with it systemd believes it is in a container and
#   ignores the kernel command line's systemd.unit=;
# - tmpfiles' tmp.conf is masked: it would empty /tmp, which walks the
#   host's /tmp over 9p for minutes;
# - the test unit, whose end powers the VM off.
BOOT_SYSTEMD = """rm -f /newroot/.dockerenv
mkdir -p /newroot/etc/tmpfiles.d /newroot/etc/systemd/system
ln -sf /dev/null /newroot/etc/tmpfiles.d/tmp.conf
cat > /newroot/etc/systemd/system/{unit} <<'UNIT'
[Unit]
Description=husk's tests
Wants=basic.target
After=basic.target
SuccessAction=poweroff-force
FailureAction=poweroff-force

[Service]
Type=exec
Delegate=yes
ExecStart=/bin/sh /husk-vm-tests.sh
UNIT
cat > /newroot/husk-vm-tests.sh <<'SCRIPT'
exec >/dev/console 2>&1
# The unit's cgroup is delegated: its processes move to a child so the
# unit's own cgroup can enable controllers below it (no internal process).
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
    here=/sys/fs/cgroup$(cut -d: -f3 /proc/self/cgroup)
    mkdir -p $here/runner && echo $$ > $here/runner/cgroup.procs
fi
{inner}
SCRIPT
exec switch_root /newroot /lib/systemd/systemd
"""
SYSTEMD_UNIT = "husk-vm-tests.service"

MOUNTS = """
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mount -t tmpfs tmpfs /run
mkdir -p /dev/pts /dev/shm
mount -t devpts -o newinstance,ptmxmode=0666 devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
"""

INNER = """
# Not a tmpfs on /tmp: the checkout itself may live there.  The overlay is
# writable already; the tests get a temp dir of their own.
mkdir -p /husk-vm-tmp
cd {repo}
export PATH={path} HOME=/root HUSK_IN_VM=1 PYTHONDONTWRITEBYTECODE=1 TMPDIR=/husk-vm-tmp
echo "cgroup controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"
{command}
echo "{marker}$?"
"""


def kernel() -> tuple[str, str]:
    """(vmlinuz, modules dir) of Debian's current kernel package, cached."""
    found = glob.glob(f"{CACHE}/x/boot/vmlinuz-*")
    if not found:
        os.makedirs(CACHE, exist_ok=True)
        deps = subprocess.run(["apt-cache", "depends", "linux-image-amd64"], capture_output=True, text=True,
                              check=True).stdout
        package = next(line.split()[-1] for line in deps.splitlines() if "Depends:" in line)
        subprocess.run(["apt-get", "download", "-q", package], cwd=CACHE, check=True,
                       stdout=subprocess.DEVNULL)
        deb = glob.glob(f"{CACHE}/{package}_*.deb")[0]
        subprocess.run(["dpkg-deb", "-x", deb, f"{CACHE}/x"], check=True)
        os.unlink(deb)
        found = glob.glob(f"{CACHE}/x/boot/vmlinuz-*")
    vmlinuz = found[0]
    version = os.path.basename(vmlinuz)[len("vmlinuz-"):]
    return vmlinuz, f"{CACHE}/x/lib/modules/{version}"


class Cpio:
    """A newc cpio archive, the format the kernel unpacks as initramfs."""

    def __init__(self) -> None:
        self.out = io.BytesIO()
        self.ino = 1

    def _entry(self, name: str, mode: int, data: bytes = b"") -> None:
        fields = [self.ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name) + 1, 0]
        self.ino += 1
        self.out.write(b"070701" + b"".join(b"%08X" % f for f in fields) + name.encode() + b"\0")
        self.out.write(b"\0" * (-self.out.tell() % 4))
        self.out.write(data)
        self.out.write(b"\0" * (-self.out.tell() % 4))

    def dir(self, name: str) -> None:
        self._entry(name, stat.S_IFDIR | 0o755)

    def file(self, name: str, data: bytes, mode: int = 0o644) -> None:
        self._entry(name, stat.S_IFREG | mode, data)

    def finish(self) -> bytes:
        self._entry("TRAILER!!!", 0)
        return gzip.compress(self.out.getvalue(), compresslevel=1)


def initramfs(modules_dir: str, pytest_args: list[str], systemd: bool, command: str | None = None) -> str:
    if command is None:
        command = (f"{shlex.quote(sys.executable)} -I -m pytest -p no:cacheprovider --color=no "
                   + " ".join(shlex.quote(a) for a in pytest_args))
    inner = INNER.format(repo=shlex.quote(REPO), path=shlex.quote(os.environ.get("PATH", "/usr/bin:/bin")),
                         command=command, marker=MARKER)
    if systemd:
        boot = BOOT_SYSTEMD.format(unit=SYSTEMD_UNIT, inner=inner)
    else:
        boot = BOOT_SHELL.format(inner=shlex.quote(MOUNTS + inner + "/bin/busybox poweroff -f\n"))
    cpio = Cpio()
    for d in ("bin", "proc", "sys", "dev", "modules"):
        cpio.dir(d)
    with open("/bin/busybox", "rb") as f:
        cpio.file("bin/busybox", f.read(), 0o755)
    index = {}
    for path in glob.glob(f"{modules_dir}/kernel/**/*.ko", recursive=True):
        index[os.path.basename(path)[:-3].replace("-", "_")] = path
    for name in MODULES:
        if name in index:
            with open(index[name], "rb") as f:
                cpio.file(f"modules/{name}.ko", f.read())
    cpio.file("init", INIT.format(modules=" ".join(MODULES), boot=boot, marker=MARKER).encode(), 0o755)
    path = os.path.join(CACHE, "initrd.gz")
    with open(path, "wb") as f:
        f.write(cpio.finish())
    return path


def kvm_usable() -> bool:
    """KVM only when asked (HUSK_VM_KVM=1): nested KVM on this project's VMs
    hangs in the firmware, while software emulation boots in seconds."""
    if os.environ.get("HUSK_VM_KVM") != "1":
        return False
    try:
        fd = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return False
    os.close(fd)
    return True


def main() -> int:
    args = sys.argv[1:]
    systemd = bool(args) and args[0] == "--systemd"
    if systemd:
        args = args[1:]
    hybrid = systemd and args[:1] == ["--hybrid"]
    if hybrid:
        args = args[1:]
        if not os.path.exists("/lib/systemd/systemd"):
            print("run_v2: --systemd needs systemd installed: apt-get install systemd dbus", file=sys.stderr)
            return 2
    command = None
    if args[:1] == ["--command"] and len(args) == 2:
        command = args[1]
    args = args or ["-q", "tests"]
    qemu = shutil.which("qemu-system-x86_64")
    if qemu is None:
        print("run_v2: qemu-system-x86_64 not found: apt-get install qemu-system-x86", file=sys.stderr)
        return 2
    vmlinuz, modules = kernel()
    initrd = initramfs(modules, args, systemd, command)
    cmd = [qemu, "-m", "4096", "-smp", "2", "-nographic", "-no-reboot", "-nodefaults", "-serial", "stdio",
           "-kernel", vmlinuz, "-initrd", initrd,
           "-append", "console=ttyS0 panic=-1 quiet "
                      + ("systemd.unified_cgroup_hierarchy=0" if hybrid
                         else "cgroup_no_v1=all systemd.unified_cgroup_hierarchy=1")
                      + (f" systemd.unit={SYSTEMD_UNIT} systemd.show_status=0" if systemd else ""),
           "-virtfs", "local,path=/,mount_tag=hostroot,security_model=passthrough,readonly=on,multidevs=remap,"
                      "id=hostroot",
           "-nic", "none"]
    if kvm_usable():
        cmd[1:1] = ["-enable-kvm"]
    print(f"run_v2: booting {os.path.basename(vmlinuz)} ({'KVM' if kvm_usable() else 'software emulation'})",
          flush=True)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    code = None
    for raw in proc.stdout:
        line = raw.decode(errors="replace").replace("\r", "")
        sys.stdout.write(line)
        sys.stdout.flush()
        if MARKER in line:
            tail = line.split(MARKER, 1)[1].strip()
            if tail.isdigit():
                code = int(tail)
    proc.wait()
    if code is None:
        print("run_v2: the VM ended without reporting a result", file=sys.stderr)
        return 3
    return code


if __name__ == "__main__":
    sys.exit(main())
