"""The plan husk sends to husk-init, and the records it answers with.

The records are defined once, in native/include/husk_proto.def; this
module reads that table from the cffi module husk-init's own decoder is
compiled from (runtime.core._native), so the two sides cannot drift.  A
record is u32 tag | u32 length | value, host byte order; integers are 8
bytes; a plan starts with VERSION and ends with END.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass, field
from typing import NamedTuple

from runtime.core._native import ffi, lib
from runtime.core.errors import ConfigError

HEAD = _HEAD = struct.Struct("=II")  # u32 tag | u32 length
_INT = struct.Struct("=q")
_ARG = struct.Struct("=IIQQ")  # seccomp argument comparison


class Kind(enum.IntEnum):
    EMPTY = lib.HUSK_KIND_EMPTY
    INT = lib.HUSK_KIND_INT
    STR = lib.HUSK_KIND_STR
    RAW = lib.HUSK_KIND_RAW
    SECCOMP_ARG = lib.HUSK_KIND_SECCOMP_ARG
    ERROR = lib.HUSK_KIND_ERROR
    TRACE = lib.HUSK_KIND_TRACE


class Record(NamedTuple):
    """One row of husk_proto.def."""

    name: str  # PLAN_MOUNT_DEST
    tag: int
    kind: Kind
    field: str  # the config.json field it comes from, or ""


def _table() -> dict[int, Record]:
    rows = {}
    for i in range(lib.husk_nrecords):
        r = lib.husk_records[i]
        rows[r.tag] = Record(ffi.string(r.name).decode(), r.tag, Kind(r.kind), ffi.string(r.field).decode())
    return rows


RECORDS = _table()
CONSTANTS = {ffi.string(c.name).decode(): c.value for c in (lib.husk_consts[i] for i in range(lib.husk_nconsts))}

# Tag.MOUNT_DEST is PLAN_MOUNT_DEST, Msg.READY is MSG_READY.
Tag = enum.IntEnum("Tag", {r.name.removeprefix("PLAN_"): r.tag for r in RECORDS.values() if r.name.startswith("PLAN_")})
Msg = enum.IntEnum("Msg", {r.name.removeprefix("MSG_"): r.tag for r in RECORDS.values() if r.name.startswith("MSG_")})

PROTO_VERSION = CONSTANTS["HUSK_PROTO_VERSION"]
MODE_CREATE = CONSTANTS["HUSK_MODE_CREATE"]
MODE_EXEC = CONSTANTS["HUSK_MODE_EXEC"]
HOOK_CREATE_CONTAINER = CONSTANTS["HUSK_HOOK_CREATE_CONTAINER"]
HOOK_START_CONTAINER = CONSTANTS["HUSK_HOOK_START_CONTAINER"]
SECCOMP_LOG = CONSTANTS["HUSK_SECCOMP_LOG"]
SECCOMP_SPEC_ALLOW = CONSTANTS["HUSK_SECCOMP_SPEC_ALLOW"]
# husk-init refuses a record longer than this (recv_record in util.c).
MAX_RECORD = CONSTANTS["HUSK_MAX_RECORD"]


@dataclass
class SeccompRule:
    action: int  # libseccomp's SCMP_ACT_* value
    names: list[str]
    args: list[tuple[int, int, int, int]] = field(default_factory=list)  # index, op, value, valueTwo


@dataclass
class SeccompFilter:
    """linux.seccomp as the plan carries it (runtime/core/linux/seccomp.py
    builds it from the config)."""

    default: int
    arches: list[str]
    flags: int
    rules: list[SeccompRule]


@dataclass
class Mount:
    destination: str
    type: str = ""
    source: str = ""
    flags: int = 0
    propagation: int = 0
    data: str = ""
    copyup: bool = False
    # For a recipe (runtime/core/recipe.py), not sent: the config's mount
    # this one comes from (mounts[config_index]), and where its source is
    # the container's cgroup directory, the hierarchy mounted at cgroup_base.
    config_index: int | None = field(default=None, compare=False)
    source_is_config: bool = field(default=False, compare=False)  # source is mounts[config_index].source
    cgroup_base: str | None = field(default=None, compare=False)


@dataclass
class Device:
    path: str
    mode: int  # S_IF* | permission bits
    rdev: int
    uid: int = 0
    gid: int = 0


@dataclass
class Hook:
    kind: int
    path: str
    args: list[str] = field(default_factory=list)
    env: list[str] = field(default_factory=list)
    timeout: int = 0


@dataclass
class Plan:
    """Everything husk-init needs, resolved: no lookups left for C to do."""

    mode: int = MODE_CREATE
    args: list[str] = field(default_factory=list)
    env: list[str] = field(default_factory=list)
    cwd: str = "/"
    clone_flags: int = 0
    joins: list[tuple[int, str]] = field(default_factory=list)
    uid_map: str | None = None
    gid_map: str | None = None
    timens_offsets: str | None = None
    rootfs: str = ""
    rootfs_propagation: int = 0
    root_readonly: bool = False
    no_pivot: bool = False
    hostname: str | None = None
    domainname: str | None = None
    apparmor_profile: str | None = None  # entered at execve (AppArmor change_onexec)
    mounts: list[Mount] = field(default_factory=list)
    default_devices: bool = False
    devices: list[Device] = field(default_factory=list)
    masked_paths: list[str] = field(default_factory=list)
    readonly_paths: list[str] = field(default_factory=list)
    sysctl: dict[str, str] = field(default_factory=dict)
    rlimits: list[tuple[int, int, int]] = field(default_factory=list)
    oom_score_adj: int | None = None
    uid: int = 0
    gid: int = 0
    additional_gids: list[int] = field(default_factory=list)
    umask: int | None = None
    caps: dict[Tag, int] = field(default_factory=dict)  # CAP_* tag -> mask
    no_new_privs: bool = False
    terminal: bool = False
    console_fd: int = -1
    exec_fifo: str | None = None
    preserve_fds: int = 0
    hooks: list[Hook] = field(default_factory=list)
    personality: int | None = None
    session_keyring: str | None = None  # a new session keyring by this name; None: the caller's
    seccomp: SeccompFilter | None = None
    exec_root: str | None = None  # exec: /proc/PID/root of the container's init
    device_bpf: bytes | None = None  # cgroup v2 device program...
    device_bpf_cgroup: str | None = None  # ...and the cgroup to attach it to


class _Writer:
    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def raw(self, tag: int, value: bytes = b"", kind: Kind | None = None) -> None:
        # Each record is written as the kind the table gives it: a str
        # written as an int (or the reverse) is husk's bug, caught here.
        row, written = RECORDS[tag], kind or _raw_kind(tag)
        if row.kind != written:
            raise TypeError(f"{row.name} is {row.kind.name}, written as {written.name}")
        if len(value) > MAX_RECORD:
            raise ConfigError(_field(tag), f"{len(value)} bytes, more than husk-init takes ({MAX_RECORD})")
        self.parts.append(_HEAD.pack(tag, len(value)))
        self.parts.append(value)

    def int(self, tag: int, value: int) -> None:
        if value >= 2**63:  # RLIM_INFINITY and other u64 values travel as two's complement
            value -= 2**64
        self.raw(tag, _INT.pack(value), Kind.INT)

    def str(self, tag: int, value: str) -> None:
        # C reads strings up to their first NUL: one inside would silently
        # cut an argument, a path or an option short.
        if "\0" in value:
            raise ConfigError(_field(tag), f"{value[:60]!r} contains a NUL byte")
        try:
            self.raw(tag, value.encode(), Kind.STR)
        except UnicodeEncodeError as e:
            raise ConfigError(_field(tag), f"{value[:60]!r} is not valid text: {e.reason}") from None


def _raw_kind(tag: int) -> Kind:
    """What a value-less or bytes record's kind should be."""
    return RECORDS[tag].kind if RECORDS[tag].kind in (Kind.EMPTY, Kind.RAW, Kind.SECCOMP_ARG) else Kind.RAW


def _field(tag: int) -> str:
    row = RECORDS.get(tag)
    if row is None:
        return f"record {tag}"
    return row.field or row.name.removeprefix("PLAN_").lower()


def encode_plan(plan: Plan) -> bytes:
    w = _Writer()
    w.int(Tag.VERSION, PROTO_VERSION)  # first: husk-init refuses a plan of another version
    w.int(Tag.MODE, plan.mode)
    w.int(Tag.CLONE_FLAGS, plan.clone_flags)
    for nstype, path in plan.joins:
        w.int(Tag.NS_JOIN_TYPE, nstype)
        w.str(Tag.NS_JOIN_PATH, path)
    for tag, text in ((Tag.UID_MAP, plan.uid_map), (Tag.GID_MAP, plan.gid_map),
                      (Tag.TIMENS_OFFSETS, plan.timens_offsets),
                      (Tag.HOSTNAME, plan.hostname), (Tag.DOMAINNAME, plan.domainname),
                      (Tag.EXEC_FIFO, plan.exec_fifo), (Tag.APPARMOR_PROFILE, plan.apparmor_profile)):
        if text is not None:
            w.str(tag, text)
    if plan.rootfs:
        w.str(Tag.ROOTFS, plan.rootfs)
    w.int(Tag.ROOTFS_PROPAGATION, plan.rootfs_propagation)
    w.int(Tag.ROOT_READONLY, int(plan.root_readonly))
    w.int(Tag.NO_PIVOT, int(plan.no_pivot))
    for m in plan.mounts:
        w.raw(Tag.MOUNT_BEGIN)
        w.str(Tag.MOUNT_SOURCE, m.source)
        w.str(Tag.MOUNT_DEST, m.destination)
        w.str(Tag.MOUNT_TYPE, m.type)
        w.int(Tag.MOUNT_FLAGS, m.flags)
        w.int(Tag.MOUNT_PROPAGATION, m.propagation)
        w.str(Tag.MOUNT_DATA, m.data)
        if m.copyup:
            w.int(Tag.MOUNT_COPYUP, 1)
    w.int(Tag.DEFAULT_DEVICES, int(plan.default_devices))
    for d in plan.devices:
        w.raw(Tag.DEVICE_BEGIN)
        w.str(Tag.DEVICE_PATH, d.path)
        w.int(Tag.DEVICE_MODE, d.mode)
        w.int(Tag.DEVICE_RDEV, d.rdev)
        w.int(Tag.DEVICE_UID, d.uid)
        w.int(Tag.DEVICE_GID, d.gid)
    for path in plan.masked_paths:
        w.str(Tag.MASKED_PATH, path)
    for path in plan.readonly_paths:
        w.str(Tag.READONLY_PATH, path)
    for key, value in plan.sysctl.items():
        w.str(Tag.SYSCTL_KEY, key)
        w.str(Tag.SYSCTL_VALUE, value)
    for rtype, soft, hard in plan.rlimits:
        w.int(Tag.RLIMIT_TYPE, rtype)
        w.int(Tag.RLIMIT_SOFT, soft)
        w.int(Tag.RLIMIT_HARD, hard)
    if plan.oom_score_adj is not None:
        w.int(Tag.OOM_SCORE_ADJ, plan.oom_score_adj)
    w.int(Tag.UID, plan.uid)
    w.int(Tag.GID, plan.gid)
    for gid in plan.additional_gids:
        w.int(Tag.ADDITIONAL_GID, gid)
    if plan.umask is not None:
        w.int(Tag.UMASK, plan.umask)
    for tag, mask in plan.caps.items():
        w.int(tag, mask)
    w.int(Tag.NO_NEW_PRIVS, int(plan.no_new_privs))
    for arg in plan.args:
        w.str(Tag.ARG, arg)
    for env in plan.env:
        w.str(Tag.ENV, env)
    w.str(Tag.CWD, plan.cwd)
    if plan.terminal:
        w.int(Tag.TERMINAL, plan.console_fd)
    w.int(Tag.PRESERVE_FDS, plan.preserve_fds)
    for h in plan.hooks:
        w.int(Tag.HOOK_BEGIN, h.kind)
        w.str(Tag.HOOK_PATH, h.path)
        for arg in h.args:
            w.str(Tag.HOOK_ARG, arg)
        for env in h.env:
            w.str(Tag.HOOK_ENV, env)
        w.int(Tag.HOOK_TIMEOUT, h.timeout)
    if plan.personality is not None:
        w.int(Tag.PERSONALITY, plan.personality)
    if plan.session_keyring is not None:
        w.str(Tag.SESSION_KEYRING, plan.session_keyring)
    if plan.seccomp is not None:
        f = plan.seccomp
        w.int(Tag.SECCOMP_DEFAULT, f.default)
        for arch in f.arches:
            w.str(Tag.SECCOMP_ARCH, arch)
        w.int(Tag.SECCOMP_FLAGS, f.flags)
        for rule in f.rules:
            w.int(Tag.SECCOMP_RULE, rule.action)
            for name in rule.names:
                w.str(Tag.SECCOMP_NAME, name)
            for index, op, value, value2 in rule.args:
                w.raw(Tag.SECCOMP_ARG, _ARG.pack(index, op, value, value2))
    if plan.exec_root:
        w.str(Tag.EXEC_ROOT, plan.exec_root)
    if plan.device_bpf is not None:
        w.raw(Tag.DEVICE_BPF, plan.device_bpf)
    if plan.device_bpf_cgroup:  # a recipe leaves it to the front end (runtime/core/recipe.py)
        w.str(Tag.DEVICE_BPF_CGROUP, plan.device_bpf_cgroup)
    w.raw(Tag.END)
    return b"".join(w.parts)


def encode_record(tag: int, value: bytes = b"") -> bytes:
    return _HEAD.pack(tag, len(value)) + value


def split_records(data: bytes) -> list[tuple[int, bytes]]:
    """The records of an encoded plan, as (tag, value)."""
    records, off = [], 0
    while off < len(data):
        tag, length = _HEAD.unpack_from(data, off)
        records.append((tag, data[off + _HEAD.size:off + _HEAD.size + length]))
        off += _HEAD.size + length
    return records


def read_record(sock) -> tuple[int, bytes] | None:
    """One record from a stream socket; None at EOF."""
    head = _recv_exact(sock, _HEAD.size)
    if head is None:
        return None
    tag, length = _HEAD.unpack(head)
    value = _recv_exact(sock, length) if length else b""
    if value is None:
        return None
    return tag, value


def _recv_exact(sock, size: int) -> bytes | None:
    chunks = []
    while size:
        chunk = sock.recv(size)
        if not chunk:
            return None
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def decode_int(value: bytes) -> int:
    return _INT.unpack(value)[0]


def decode_error(value: bytes) -> tuple[int, str, str]:
    """MSG_ERROR: i32 errno | step NUL | detail -> (errno, step, detail)."""
    (err,) = struct.unpack_from("=i", value)
    step, _, detail = value[4:].partition(b"\0")
    return err, step.decode(errors="replace"), detail.decode(errors="replace")
