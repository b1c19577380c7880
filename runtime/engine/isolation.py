"""`husk isolation`: what isolates a running process, as the kernel sees it.

Everything here is read from the host side, from /proc and the cgroup
files, so it works for any process: a container of husk's, podman's,
runc's or Docker's, or a process that is not in a container at all.
Each finding says whether the process has a thing of its own or shares
the host's (PID 1's), and what that means for it.

Read with: /proc/PID/ns/* (namespaces are the same iff the links name
the same inode), uid_map/gid_map, /proc/PID/cgroup and the limit files
of those cgroups, /proc/PID/status (capability sets, NoNewPrivs,
Seccomp), the LSM's attr/current, /proc/PID/mountinfo (the process's
own mount table) and its /dev, opened through /proc/PID/root.
"""

from __future__ import annotations

import dataclasses
import os
import stat

from runtime.core.cgroups.layout import detect
from runtime.core.errors import HuskError
from runtime.core.linux.constants import CAPABILITIES, cap_last_cap


def host_pid() -> int:
    """The process whose view is the host's: PID 1, or husk itself where
    PID 1's namespaces are not ours to read (PID 1 of another user
    namespace, or a sandbox that hides it)."""
    try:
        os.readlink("/proc/1/ns/mnt")
        return 1
    except OSError:
        return os.getpid()

# namespace -> (what having its own means, what sharing the host's means)
NAMESPACES = {
    "mnt": ("its own mount table: what it mounts is not the host's, and its / is not the host's /",
            "the host's mount table: it sees and changes the host's mounts"),
    "pid": ("its own process numbers: it cannot see or signal the host's processes",
            "the host's processes: it sees every one and can signal those it may"),
    "net": ("its own interfaces, addresses, routes, ports and firewall",
            "the host's network: it binds the host's ports and reaches what the host reaches"),
    "ipc": ("its own SysV IPC objects and POSIX message queues",
            "the host's SysV IPC and message queues"),
    "uts": ("its own hostname and domain name", "the host's hostname: setting it renames the host"),
    "user": ("its own user and group ids: root inside is not root outside",
             "the host's ids: uid 0 inside is the host's root"),
    "cgroup": ("its own view of the cgroup tree: its cgroup is / to it",
               "the host's cgroup paths"),
    "time": ("its own CLOCK_MONOTONIC and CLOCK_BOOTTIME offsets", "the host's clocks"),
}

CAP_SETS = {
    "CapBnd": "bounding: the most any program it runs can ever gain",
    "CapEff": "effective: what the kernel checks now",
    "CapPrm": "permitted: what it may make effective",
    "CapInh": "inheritable: what can pass across execve",
    "CapAmb": "ambient: what a non-setuid program keeps across execve",
}
SECCOMP_MODES = {"0": "none", "1": "strict", "2": "filter"}


@dataclasses.dataclass
class Finding:
    area: str  # namespace, identity, capabilities, security, cgroup, mounts, devices
    name: str
    value: str  # what the kernel says
    own: bool | None  # True: its own (isolated); False: the host's (shared); None: a fact
    meaning: str  # one line for a person

    def verdict(self) -> str:
        """`own` in a word for a person, as the area means it."""
        if self.own is None:
            return ""
        words = VERDICTS.get((self.area, self.name)) or VERDICTS.get((self.area, None)) or ("own", "host's")
        return words[0] if self.own else words[1]

    def to_json(self) -> dict:
        return dataclasses.asdict(self) | {"verdict": self.verdict()}


# (area, name or None for the whole area) -> the words for own, not own
VERDICTS = {
    ("capabilities", None): ("reduced", "host's"),
    ("security", None): ("on", "off"),
    ("cgroup", None): ("limited", "no limit"),
    ("cgroup", "cgroups"): ("own", "host's"),
    ("cgroup", "devices.list"): ("limited", "all"),
    ("mounts", "/ read-only"): ("yes", "no"),
    ("mounts", "masked paths"): ("masked", ""),
    ("mounts", "read-only paths"): ("ro", ""),
    ("mounts", "propagation of /"): ("private", "shared"),
}


def report(pid: int) -> list[Finding]:
    """What isolates process PID (HuskError if it is not there)."""
    if pid <= 0 or not os.path.isdir(f"/proc/{pid}"):
        raise HuskError("isolation", f"no process {pid}")
    host = host_pid()
    return (_namespaces(pid, host) + _identity(pid) + _capabilities(pid, host) + _security(pid)
            + _cgroups(pid, host) + _mounts(pid, host) + _devices(pid))


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def _status(pid: int) -> dict[str, str]:
    text = _read(f"/proc/{pid}/status") or ""
    return {k: v.strip() for k, _, v in (line.partition(":") for line in text.splitlines())}


def _namespaces(pid: int, host_pid: int) -> list[Finding]:
    out = []
    for ns, (own, shared) in NAMESPACES.items():
        try:
            mine, host = os.readlink(f"/proc/{pid}/ns/{ns}"), os.readlink(f"/proc/{host_pid}/ns/{ns}")
        except OSError:
            continue  # a kernel without it, or the process is gone
        out.append(Finding("namespace", ns, mine, mine != host, own if mine != host else shared))
    return out


def _id_map(text: str | None, kind: str) -> str:
    rows = [line.split() for line in (text or "").splitlines() if line.strip()]
    if rows == [["0", "0", "4294967295"]]:
        return f"all {kind}s are the host's"
    return "; ".join(f"{kind} {a}-{int(a) + int(n) - 1} inside is {b}-{int(b) + int(n) - 1} outside"
                     for a, b, n in rows) or "none mapped"


def _identity(pid: int) -> list[Finding]:
    st = _status(pid)
    uids, gids = st.get("Uid", "").split(), st.get("Gid", "").split()
    uid_map, gid_map = _read(f"/proc/{pid}/uid_map"), _read(f"/proc/{pid}/gid_map")
    mapped = (uid_map or "").split() != ["0", "0", "4294967295"]
    out = [Finding("identity", "uid_map", _id_map(uid_map, "uid"), mapped,
                   "ids inside a user namespace are other ids to the host" if mapped
                   else "no user namespace of its own: its ids are the host's"),
           Finding("identity", "gid_map", _id_map(gid_map, "gid"), mapped, "the same, for groups")]
    if uids:
        root = uids[1] == "0"
        out.append(Finding("identity", "uid (host's view)", " ".join(uids[:2]), None,
                           "root as the host sees it: only its capabilities and namespaces limit it" if root
                           else "not root as the host sees it"))
    if gids:
        out.append(Finding("identity", "groups", st.get("Groups", "") or "none", None,
                           "its supplementary groups (setgroups)"))
    return out


def cap_names(mask: int) -> list[str]:
    return [CAPABILITIES[n] if n < len(CAPABILITIES) else f"cap_{n}" for n in range(64) if mask >> n & 1]


def _capabilities(pid: int, host_pid: int) -> list[Finding]:
    st, host = _status(pid), _status(host_pid)
    known = cap_last_cap() + 1
    out = []
    for key, meaning in CAP_SETS.items():
        if key not in st:
            continue
        mask, names = int(st[key], 16), cap_names(int(st[key], 16))
        if len(names) > known // 2:  # name what is missing, not what is there
            missing = [n.removeprefix("CAP_") for n in CAPABILITIES[:known] if n not in names]
            value = f"{len(names)} of {known}: all" + (f" but {', '.join(missing)}" if missing else "")
        else:
            value = f"{len(names)} of {known}: " + (", ".join(n.removeprefix("CAP_") for n in names) or "none")
        # Fewer than the host's bounding set: capabilities were dropped.
        reference = int(host.get("CapBnd", "0"), 16)
        out.append(Finding("capabilities", key, value, mask & reference != reference if key != "CapInh" and
                           key != "CapAmb" else None, meaning))
    return out


def _security(pid: int) -> list[Finding]:
    st = _status(pid)
    out = []
    if "NoNewPrivs" in st:
        on = st["NoNewPrivs"] == "1"
        out.append(Finding("security", "NoNewPrivs", st["NoNewPrivs"], on,
                           "setuid programs and file capabilities cannot raise its privileges" if on
                           else "a setuid program it runs gains that program's owner's privileges"))
    if "Seccomp" in st:
        mode = SECCOMP_MODES.get(st["Seccomp"], st["Seccomp"])
        filters = st.get("Seccomp_filters", "0")
        out.append(Finding("security", "seccomp", f"{mode}, {filters} filter(s)", mode != "none",
                           "each system call is checked by a BPF program before the kernel runs it"
                           if mode == "filter" else "every system call reaches the kernel"))
    label = _read(f"/proc/{pid}/attr/apparmor/current") or _read(f"/proc/{pid}/attr/current")
    if label is not None:
        label = label.strip("\0\n ")
        confined = label not in ("", "unconfined")
        out.append(Finding("security", "LSM label", label or "none", confined,
                           "an AppArmor/SELinux profile limits what it may touch" if confined
                           else "no mandatory access control profile"))
    return out


def _first(directory: str, *names: str) -> tuple[str, str] | None:
    for name in names:
        text = _read(os.path.join(directory, name))
        if text is not None:
            return name, text.strip()
    return None


# (controller, files to read in order, what a limit means)
LIMITS = (
    ("memory", ("memory.max", "memory.limit_in_bytes"), "memory it may use before the OOM killer"),
    ("pids", ("pids.max",), "processes and threads it may have"),
    ("cpu", ("cpu.max", "cpu.cfs_quota_us"), "CPU time per period"),
    ("cpu", ("cpu.weight", "cpu.shares"), "its share of the CPU against its siblings"),
    ("cpuset", ("cpuset.cpus.effective", "cpuset.cpus"), "the CPUs it may run on"),
)
UNLIMITED = {"max", "-1", "9223372036854771712"}


def _cgroups(pid: int, host_pid: int) -> list[Finding]:
    text = _read(f"/proc/{pid}/cgroup") or ""
    host = _read(f"/proc/{host_pid}/cgroup") or ""
    layout = detect()
    paths: dict[str, str] = {}  # controller ("" for v2) -> path
    for line in text.splitlines():
        _, controllers, path = line.split(":", 2)
        for c in controllers.split(",") if controllers else [""]:
            paths[c] = path
    own = text != host
    out = [Finding("cgroup", "cgroups", ", ".join(sorted({p for p in paths.values()})) or "none", own,
                   "limits and accounting of its own" if own else "the host's cgroups: no limit of its own")]

    def directory(controller: str) -> str | None:
        if controller in paths and controller:
            mount = next((m for name, m in layout.v1.items() if controller in name.split(",")), None)
            return os.path.join(mount, paths[controller].lstrip("/")) if mount else None
        if "" in paths and layout.unified:
            return os.path.join(layout.unified, paths[""].lstrip("/"))
        return None

    for controller, files, meaning in LIMITS:
        d = directory(controller)
        found = _first(d, *files) if d else None
        if found is None:
            continue
        name, value = found
        if name == "cpu.cfs_quota_us" and value != "-1":
            period = _first(d, "cpu.cfs_period_us")
            value = f"{value} {period[1]}" if period else value
        limited = value not in UNLIMITED and not value.startswith("max")
        out.append(Finding("cgroup", name, value, limited if name.startswith(("memory", "pids", "cpu.max",
                                                                              "cpu.cfs")) else None, meaning))
    d = directory("devices")
    rules = _read(os.path.join(d, "devices.list")) if d and "devices" in paths else None
    if rules is not None:
        everything = rules.strip() == "a *:* rwm"
        out.append(Finding("cgroup", "devices.list", f"{len(rules.splitlines())} rule(s)", not everything,
                           "it may open every device node" if everything
                           else "only the device nodes these rules allow can be opened or made"))
    elif layout.mode == "v2":
        out.append(Finding("cgroup", "devices", "a BPF program, if any", None,
                           "cgroup v2 rules devices with a BPF program (bpftool cgroup list shows it)"))
    return out


def _mountinfo(pid: int) -> list[dict]:
    rows = []
    for line in (_read(f"/proc/{pid}/mountinfo") or "").splitlines():
        left, _, right = line.partition(" - ")
        f = left.split()
        fstype, source = (right.split() + ["", ""])[:2]
        rows.append({"root": f[3], "point": f[4].replace("\\040", " "), "options": f[5].split(","),
                     "optional": f[6:], "fstype": fstype, "source": source})
    return rows


def _mounts(pid: int, host_pid: int) -> list[Finding]:
    rows = _mountinfo(pid)
    if not rows:
        return []
    try:
        own_table = os.readlink(f"/proc/{pid}/ns/mnt") != os.readlink(f"/proc/{host_pid}/ns/mnt")
    except OSError:
        own_table = True
    root = next((r for r in reversed(rows) if r["point"] == "/"), rows[0])
    propagation = ", ".join(o for o in root["optional"] if o.startswith(("shared", "master"))) or "private"
    shared = propagation.startswith("shared")
    out = [Finding("mounts", "/", f"{root['fstype']} {root['source']} {root['root']}".strip(), own_table,
                   "its own root: after pivot_root, .. cannot climb to the host's files" if own_table
                   else "the host's root filesystem"),
           Finding("mounts", "propagation of /", propagation, not shared if own_table else None,
                   "mounts made on either side can propagate to the other" if shared
                   else "mounts it makes do not reach the host" if own_table
                   else "the host's own mount table")]
    if "ro" in root["options"]:
        out.append(Finding("mounts", "/ read-only", "ro", True, "it cannot change its root filesystem"))
    masked = [r["point"] for r in rows if _masks(r)]
    if masked:
        out.append(Finding("mounts", "masked paths", ", ".join(masked), True,
                           "hidden behind an empty file or directory: the host's data there is out of reach"))
    readonly = [r["point"] for r in rows if r["point"].startswith("/proc/") and r["fstype"] == "proc"
                and "ro" in r["options"]]
    if readonly:
        out.append(Finding("mounts", "read-only paths", ", ".join(readonly), True,
                           "readable, but no write reaches the kernel settings there"))
    return out


# The filesystems that belong under /proc and /sys: a mount there of any
# other kind (a bind of /dev/null, a read-only tmpfs) hides what was there.
KERNEL_FILESYSTEMS = frozenset({"proc", "sysfs", "cgroup", "cgroup2", "binfmt_misc", "securityfs", "debugfs",
                                "tracefs", "fusectl", "configfs", "pstore", "bpf", "efivarfs"})


def _masks(row: dict) -> bool:
    point = row["point"]
    if not point.startswith(("/proc/", "/sys/")) or point == "/sys/fs/cgroup" or point.startswith("/sys/fs/cgroup/"):
        return False
    return row["fstype"] not in KERNEL_FILESYSTEMS


def _devices(pid: int) -> list[Finding]:
    """The device nodes in its /dev, opened through /proc/PID/root without
    following a link the container put there."""
    try:
        fd = os.open(f"/proc/{pid}/root/dev", os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return []
    nodes = []
    try:
        for name in sorted(os.listdir(fd)):
            try:
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                nodes.append(f"{name} ({os.major(st.st_rdev)}:{os.minor(st.st_rdev)})")
    finally:
        os.close(fd)
    shown = ", ".join(nodes[:12]) + (f" and {len(nodes) - 12} more" if len(nodes) > 12 else "")
    return [Finding("devices", "/dev", shown or "none", None, f"the {len(nodes)} device node(s) at its /dev top level")]
