"""The systemd cgroup driver (`husk --systemd-cgroup`): a container's
cgroup is a transient systemd unit, as podman, containerd and kubelet
expect on a systemd host.

linux.cgroupsPath reads "slice:prefix:name" (runc's rule): the unit is
"prefix-name.scope" in that slice, and its cgroup is the slice's, expanded
as systemd nests slices ("kubepods-besteffort-pod1.slice" lives in
/kubepods.slice/kubepods-besteffort.slice/).  The front end
(native/front/create.c) asks systemd for the unit over D-Bus
(StartTransientUnit, native/src/sdbus.c) with the properties planned
here, then writes every limit to cgroupfs as well: a `systemctl
daemon-reload` re-applies the unit's properties, and a limit only in
cgroupfs would be lost (moby#45188).

The unit's name and the D-Bus client are C's (native/src/sdbus.c), one
implementation for the front end and for Python (update), reached
through cffi.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from runtime.core._native import ffi, lib
from runtime.core.cgroups.controllers import shares_to_weight
from runtime.core.errors import ConfigError, HuskError

# A "t" (uint64) property's value for "no limit": UINT64_MAX, which JSON
# carries to C as its two's complement (sdbus.h).
INFINITY = -1
ANNOTATION_PREFIX = "org.systemd.property."


def booted() -> bool:
    """systemd is this host's init (sd_booted(3): /run/systemd/system)."""
    return bool(lib.husk_sd_booted())


def require_booted() -> None:
    if not booted():
        raise HuskError("--systemd-cgroup", "systemd is not running on this host (no /run/systemd/system); "
                        "drop the flag to use cgroupfs")


@dataclass(frozen=True)
class Unit:
    slice: str  # "machine.slice"
    name: str  # "libpod-<id>.scope"
    path: str  # its cgroup below a hierarchy's root: "/machine.slice/libpod-<id>.scope"


def unit_of(cgroups_path: str | None, container_id: str) -> Unit:
    """The unit linux.cgroupsPath names ("" or None: system.slice:husk:ID)."""
    out = ffi.new("struct husk_sd_unit *")
    err = ffi.new("char[512]")
    if lib.husk_sd_unit_of((cgroups_path or "").encode(), container_id.encode(), out, err, 512) < 0:
        raise ConfigError("linux.cgroupsPath", ffi.string(err).decode())
    return Unit(ffi.string(out.slice).decode(), ffi.string(out.unit).decode(), ffi.string(out.path).decode())


def expand_slice(name: str) -> str:
    """A slice's cgroup: "a-b.slice" -> "/a.slice/a-b.slice"."""
    out = ffi.new("char[1024]")
    if lib.husk_sd_expand_slice(name.encode(), out, 1024) < 0:
        raise ValueError(f"{name!r} is not a valid slice name")
    return ffi.string(out).decode()


# ---- properties ---------------------------------------------------------

Property = list  # [name, D-Bus signature, JSON value]


def unit_properties(resources: dict[str, Any], mode: str, annotations: dict[str, str]) -> list[Property]:
    """StartTransientUnit's properties for a container (those of the
    container's own - Description, Slice, Delegate, PIDs - are the front
    end's): accounting on for what husk limits and reports, no default
    dependencies (a container is not stopped with the system's units in
    their order), the limits, and org.systemd.property.* annotations."""
    props: list[Property] = [
        ["MemoryAccounting", "b", True],
        ["CPUAccounting", "b", True],
        ["IOAccounting" if mode == "v2" else "BlockIOAccounting", "b", True],
        ["TasksAccounting", "b", True],
        ["DefaultDependencies", "b", False],
    ]
    limits = resource_properties(resources, mode)
    if not any(p[0] == "TasksMax" for p in limits):
        # No pids limit means none, as with cgroupfs - not systemd's
        # DefaultTasksMax (15% of pid_max; moby#45188).
        limits.append(["TasksMax", "t", INFINITY])
    return props + limits + annotation_properties(annotations)


def resource_properties(resources: dict[str, Any], mode: str) -> list[Property]:
    """linux.resources as unit properties (update sends these alone)."""
    props: list[Property] = []
    mem = resources.get("memory") or {}
    limit = mem.get("limit")
    if limit:
        props.append(["MemoryMax" if mode == "v2" else "MemoryLimit", "t", INFINITY if limit < 0 else limit])
    if mode == "v2":
        if mem.get("reservation") and mem["reservation"] > 0:
            props.append(["MemoryLow", "t", mem["reservation"]])
        swap = mem.get("swap")
        if swap:
            # OCI's swap is memory+swap; MemorySwapMax is swap alone.
            value = INFINITY if swap < 0 else max(swap - limit, 0) if limit and limit > 0 else swap
            props.append(["MemorySwapMax", "t", value])
    cpu = resources.get("cpu") or {}
    if cpu.get("shares"):
        props.append(["CPUWeight", "t", shares_to_weight(cpu["shares"])] if mode == "v2"
                     else ["CPUShares", "t", cpu["shares"]])
    quota, period = cpu.get("quota"), cpu.get("period")
    if period:
        props.append(["CPUQuotaPeriodUSec", "t", period])
    if quota:
        props.append(["CPUQuotaPerSecUSec", "t", cpu_quota_per_sec(quota, period or 100000)])
    if mode == "v2":
        for key, name in (("cpus", "AllowedCPUs"), ("mems", "AllowedMemoryNodes")):
            if cpu.get(key):
                props.append([name, "ay", cpu_mask(cpu[key], f"linux.resources.cpu.{key}")])
    pids = (resources.get("pids") or {}).get("limit")
    if pids:
        props.append(["TasksMax", "t", INFINITY if pids < 0 else pids])
    if "devices" in resources:
        props += device_properties(resources["devices"] or [])
    if mode == "v2":
        props += _unified_properties(resources.get("unified") or {})
    return props


def cpu_quota_per_sec(quota: int, period: int) -> int:
    """CPU quota per period -> CPUQuotaPerSecUSec, rounded up to 10 ms as
    systemd stores it (it keeps whole percents), so what it reports and
    what it writes again after a reload is what husk asked for."""
    if quota < 0:
        return INFINITY
    per_sec = quota * 1_000_000 // period
    return -(-per_sec // 10_000) * 10_000


def cpu_mask(spec: str, field: str) -> list[int]:
    """A cpuset list ("0-2,5") as systemd's AllowedCPUs bitmask: byte i
    bit j is CPU 8i+j."""
    cpus: set[int] = set()
    for part in spec.split(","):
        part = part.strip()
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not m or (m.group(2) and int(m.group(2)) < int(m.group(1))) or int(m.group(2) or m.group(1)) > 8191:
            raise ConfigError(field, f"{spec!r} is not a list of CPUs or nodes like 0-2,5")
        cpus.update(range(int(m.group(1)), int(m.group(2) or m.group(1)) + 1))
    mask = [0] * (max(cpus) // 8 + 1)
    for c in cpus:
        mask[c // 8] |= 1 << (c % 8)
    return mask


def _device_groups() -> dict[tuple[str, int], str]:
    """(c or b, major) -> its name in /proc/devices ("pts" for 136)."""
    groups: dict[tuple[str, int], str] = {}
    kind = ""
    with open("/proc/devices") as f:
        for line in f:
            if line.startswith("Character"):
                kind = "c"
            elif line.startswith("Block"):
                kind = "b"
            elif line.strip():
                major, name = line.split(None, 1)
                groups.setdefault((kind, int(major)), name.strip())
    return groups


def device_properties(rules: list[dict[str, Any]]) -> list[Property]:
    """linux.resources.devices as DevicePolicy and DeviceAllow.  systemd
    attaches its own device program beside husk's, and a device passes
    only if both allow it: this list allows at least what the rules do
    (every allow since the last deny-all; a narrower deny is left to
    husk's own program, which is exact)."""
    allow_all = True
    allowed: list[list[str]] = []
    groups: dict[tuple[str, int], str] | None = None
    for rule in rules:
        kind = rule.get("type") or "a"
        major, minor = rule.get("major"), rule.get("minor")
        major = None if major is None or major < 0 else major
        minor = None if minor is None or minor < 0 else minor
        access = "".join(c for c in "rwm" if c in (rule.get("access") or "rwm"))
        if kind == "a" and major is None and minor is None:
            allow_all = bool(rule.get("allow"))
            allowed = []
            continue
        if not rule.get("allow") or allow_all:
            continue
        for k in ("c", "b") if kind == "a" else (kind,):
            word = "char" if k == "c" else "block"
            if major is None:
                allowed.append([f"{word}-*", access])
            elif minor is None:
                groups = groups if groups is not None else _device_groups()
                allowed.append([f"{word}-{groups[(k, major)]}", access] if (k, major) in groups
                               else [f"{word}-*", access])  # a major /proc/devices does not name
            else:
                allowed.append([f"/dev/{word}/{major}:{minor}", access])
    # An empty DeviceAllow resets the list, which a non-empty one extends;
    # the list is in place before the policy turns strict.
    if allow_all:
        return [["DeviceAllow", "a(ss)", []], ["DevicePolicy", "s", "auto"]]
    return [["DeviceAllow", "a(ss)", []], ["DeviceAllow", "a(ss)", allowed], ["DevicePolicy", "s", "strict"]]


def _unified_properties(unified: dict[str, str]) -> list[Property]:
    """The linux.resources.unified files systemd has a property for."""
    props: list[Property] = []

    def number(key: str) -> int:
        value = unified[key].strip()
        if value == "max":
            return INFINITY
        if not value.isdigit():
            raise ConfigError(f"linux.resources.unified.{key}", f"{value!r} is not a number or \"max\"")
        return int(value)

    for key, name in (("memory.max", "MemoryMax"), ("memory.low", "MemoryLow"), ("memory.high", "MemoryHigh"),
                      ("memory.swap.max", "MemorySwapMax"), ("pids.max", "TasksMax"), ("cpu.weight", "CPUWeight")):
        if key in unified:
            props.append([name, "t", number(key)])
    if "cpu.max" in unified:
        parts = unified["cpu.max"].split()
        if not parts or not (parts[0] == "max" or parts[0].isdigit()) or not all(p.isdigit() for p in parts[1:2]):
            raise ConfigError("linux.resources.unified.cpu.max", f"{unified['cpu.max']!r} is not \"QUOTA [PERIOD]\"")
        period = int(parts[1]) if len(parts) > 1 else 100000
        props.append(["CPUQuotaPeriodUSec", "t", period])
        props.append(["CPUQuotaPerSecUSec", "t", INFINITY if parts[0] == "max" else cpu_quota_per_sec(int(parts[0]),
                                                                                                  period)])
    return props


# ---- org.systemd.property.* annotations ---------------------------------

_TYPED = {"boolean": "b", "byte": "y", "int32": "i", "uint32": "u", "int64": "x", "uint64": "t"}
_SIGS = {"@b": "b", "@y": "y", "@i": "i", "@u": "u", "@x": "x", "@t": "t", "@s": "s"}


def annotation_properties(annotations: dict[str, str]) -> list[Property]:
    """org.systemd.property.NAME=VALUE annotations as properties, VALUE in
    GVariant text as runc reads it: 'text' or "text", true/false, a
    number (int32), "uint64 5" or "@t 5", ['a', 'b'].  A NAME ending in
    Sec (TimeoutStopSec=2) is given in seconds: systemd's NAMEUSec."""
    props: list[Property] = []
    for key, text in sorted(annotations.items()):
        if not key.startswith(ANNOTATION_PREFIX):
            continue
        name = key[len(ANNOTATION_PREFIX):]
        field = f"annotations.{key}"
        if not re.fullmatch(r"[A-Z][A-Za-z0-9]*", name):
            raise ConfigError(field, f"{name!r} is not a systemd property name")
        sig, value = _gvariant(text.strip(), field)
        if name.endswith("Sec") and not name.endswith("USec"):
            if sig not in ("i", "u", "x", "t", "d") or value < 0:
                raise ConfigError(field, f"{text!r}: a time in seconds must be a number of at least 0")
            name, sig, value = name[:-3] + "USec", "t", int(value * 1_000_000)
        elif sig == "d":
            raise ConfigError(field, f"{text!r}: only a time in seconds (a name ending in Sec) may be a fraction")
        props.append([name, sig, value])
    return props


def _gvariant(text: str, field: str) -> tuple[str, Any]:
    if text in ("true", "false"):
        return "b", text == "true"
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return "s", text[1:-1]
    if text.startswith("[") and text.endswith("]"):
        items = [i.strip() for i in text[1:-1].split(",") if i.strip()]
        values = [_gvariant(i, field) for i in items]
        if not all(s == "s" for s, _ in values):
            raise ConfigError(field, f"{text!r}: only lists of strings are supported")
        return "as", [v for _, v in values]
    words = text.split(None, 1)
    if len(words) == 2 and (words[0] in _TYPED or words[0] in _SIGS):
        sig = _TYPED.get(words[0]) or _SIGS[words[0]]
        inner_sig, value = _gvariant(words[1], field)
        if sig == "s" and inner_sig == "s":
            return "s", value
        if sig == "b" and inner_sig == "b":
            return "b", value
        if sig in "yiuxt" and inner_sig == "i":
            return sig, value
        raise ConfigError(field, f"{text!r} is not a {words[0]}")
    if re.fullmatch(r"-?\d+", text):
        return "i", int(text)
    if re.fullmatch(r"-?\d+\.\d*", text):
        return "d", float(text)
    raise ConfigError(field, f"{text!r} is not a GVariant value husk reads ('text', true, 5, uint64 5, ['a'])")


# ---- talking to systemd -------------------------------------------------

def set_properties(unit: str, props: list[Property]) -> None:
    """SetUnitProperties(unit, runtime=true, props): a live unit's limits."""
    sd = ffi.new("struct husk_sd *")
    try:
        if lib.husk_sd_connect(sd) < 0 or lib.husk_sd_set_properties(sd, unit.encode(),
                                                                      json.dumps(props).encode()) < 0:
            raise HuskError("update", ffi.string(sd.error).decode())
    finally:
        lib.husk_sd_close(sd)

