"""config.json -> Plan: a pure function, like runc's specconv.

Everything husk-init needs is resolved here (names to numbers, options to
flags, relative paths to absolute ones), so the C side only executes.
Nothing here touches the system beyond reading host facts (cgroup mounts,
cap_last_cap) that the caller passes in.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from runtime.core.errors import ConfigError
from runtime.core.linux import constants as k
from runtime.core.linux.seccomp import parse_seccomp
from runtime.core.oci.spec import (
    absolute_path,
    get_bool,
    get_int,
    get_list,
    get_obj,
    get_objects,
    get_str,
    get_str_list,
)
from runtime.core.process.protocol import HOOK_CREATE_CONTAINER, HOOK_START_CONTAINER, Device, Hook, Mount, Plan, Tag

# (destination, MS_* flags of the config's mount) -> the mounts that make it.
CgroupMounts = Callable[[str, int], "list[Mount]"]

_CAP_SETS = {
    "bounding": Tag.CAP_BOUNDING, "effective": Tag.CAP_EFFECTIVE,
    "inheritable": Tag.CAP_INHERITABLE, "permitted": Tag.CAP_PERMITTED,
    "ambient": Tag.CAP_AMBIENT,
}
_DEVICE_TYPES = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}
HOOK_KINDS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart",
              "poststop")
# Which namespace each sysctl prefix lives in (runc's validator).
_SYSCTL_NS = (("net.", "network"), ("fs.mqueue.", "ipc"), ("kernel.msg", "ipc"),
              ("kernel.sem", "ipc"), ("kernel.shm", "ipc"), ("kernel.hostname", "uts"),
              ("kernel.domainname", "uts"))


@dataclass
class Namespaces:
    new: set[str] = field(default_factory=set)  # created for the container
    joined: dict[str, str] = field(default_factory=dict)  # type -> path

    def has(self, nstype: str) -> bool:
        return nstype in self.new or nstype in self.joined


def parse_namespaces(linux: dict) -> Namespaces:
    ns = Namespaces()
    for where, entry in get_objects(linux, "namespaces", "linux.namespaces"):
        nstype = get_str(entry, "type", f"{where}.type", required=True)
        if nstype not in k.NAMESPACES:
            raise ConfigError(f"{where}.type", f"unknown namespace {nstype!r}")
        if ns.has(nstype):
            raise ConfigError(f"{where}.type", f"namespace {nstype!r} given twice")
        path = get_str(entry, "path", f"{where}.path")
        if path:
            if not os.path.exists(path):
                raise ConfigError(f"{where}.path", f"{path} does not exist")
            ns.joined[nstype] = path
        else:
            ns.new.add(nstype)
    return ns


def parse_mount_options(options: list[str], where: str) -> tuple[int, int, str]:
    """Mount options -> (MS_* flags, propagation flags, data string)."""
    flags = propagation = 0
    data: list[str] = []
    for opt in options:
        if opt in k.MOUNT_FLAGS:
            clear, flag = k.MOUNT_FLAGS[opt]
            flags = flags & ~flag if clear else flags | flag
        elif opt in k.PROPAGATION:
            propagation = k.PROPAGATION[opt]
        elif opt in k.IGNORED_MOUNT_OPTIONS:
            continue
        elif opt in ("idmap", "ridmap"):
            raise ConfigError(where, f"option {opt!r}: idmapped mounts are not supported by husk yet")
        else:
            data.append(opt)
    return flags, propagation, ",".join(data)


def _mounts(config: dict, bundle: str, cgroup_mounts: CgroupMounts | None) -> list[Mount]:
    result: list[Mount] = []
    for index, (where, entry) in enumerate(get_objects(config, "mounts", "mounts")):
        dest = absolute_path(get_str(entry, "destination", f"{where}.destination", required=True),
                             f"{where}.destination")
        mtype = get_str(entry, "type", f"{where}.type", default="") or ""
        source = get_str(entry, "source", f"{where}.source", default="") or ""
        options = get_str_list(entry, "options", f"{where}.options")
        copyup = "tmpcopyup" in options  # runc's extension, used by podman --read-only
        if copyup:
            if mtype != "tmpfs":
                raise ConfigError(f"{where}.options", "tmpcopyup is for tmpfs mounts")
            options = [o for o in options if o != "tmpcopyup"]
        flags, propagation, data = parse_mount_options(options, f"{where}.options")
        if mtype == "bind":
            flags |= k.MS_BIND
        if flags & k.MS_BIND:
            if not source:
                raise ConfigError(f"{where}.source", "a bind mount needs a source")
            if not os.path.isabs(source):
                source = os.path.join(bundle, source)
            if not os.path.exists(source):
                raise ConfigError(f"{where}.source", f"{source} does not exist")
        elif mtype == "cgroup":
            # The host's cgroup layout decides what "cgroup" means here.
            for m in cgroup_mounts(dest, flags) if cgroup_mounts is not None else []:
                m.config_index = index
                result.append(m)
            continue
        elif not mtype:
            raise ConfigError(f"{where}.type", "missing (only a bind mount may leave it out)")
        result.append(Mount(destination=dest, type=mtype, source=source, flags=flags,
                            propagation=propagation, data=data, copyup=copyup, config_index=index,
                            source_is_config=True))
    return result


def _devices(linux: dict) -> list[Device]:
    devices = []
    for where, entry in get_objects(linux, "devices", "linux.devices"):
        path = absolute_path(get_str(entry, "path", f"{where}.path", required=True), f"{where}.path")
        if not path.startswith("/dev/"):
            raise ConfigError(f"{where}.path", f"{path} is not under /dev")
        dtype = get_str(entry, "type", f"{where}.type", required=True)
        if dtype not in _DEVICE_TYPES:
            raise ConfigError(f"{where}.type", f"{dtype!r} is not one of c, b, u, p")
        major = get_int(entry, "major", f"{where}.major", required=dtype != "p", default=0, minimum=0)
        minor = get_int(entry, "minor", f"{where}.minor", required=dtype != "p", default=0, minimum=0)
        mode = get_int(entry, "fileMode", f"{where}.fileMode", default=0o666, minimum=0, maximum=0o7777)
        devices.append(Device(path=path, mode=_DEVICE_TYPES[dtype] | mode, rdev=os.makedev(major, minor),
                              uid=get_int(entry, "uid", f"{where}.uid", default=0, minimum=0),
                              gid=get_int(entry, "gid", f"{where}.gid", default=0, minimum=0)))
    return devices


def _id_map(linux: dict, key: str) -> str | None:
    lines = []
    for where, entry in get_objects(linux, key, f"linux.{key}"):
        lines.append("%d %d %d" % tuple(get_int(entry, f, f"{where}.{f}", required=True, minimum=0)
                                          for f in ("containerID", "hostID", "size")))
    return "\n".join(lines) + "\n" if lines else None


def _capabilities(process: dict, last_cap: int) -> dict[Tag, int]:
    """The five capability masks.  A set the config leaves out is empty,
    as in runc: a missing process.capabilities must never mean "whatever
    husk (host root) holds"."""
    caps = get_obj(process, "capabilities", "process.capabilities")
    result: dict[Tag, int] = {}
    for name, tag in _CAP_SETS.items():
        mask = 0
        for i, cap in enumerate(get_str_list(caps, name, f"process.capabilities.{name}")):
            number = k.CAP_NUMBERS.get(cap.upper() if cap.upper().startswith("CAP_") else "CAP_" + cap.upper())
            if number is None:
                raise ConfigError(f"process.capabilities.{name}[{i}]", f"unknown capability {cap!r}")
            if number <= last_cap:  # a capability this kernel lacks cannot be held anyway
                mask |= 1 << number
        result[tag] = mask
    # An ambient capability must be permitted and inheritable, or the
    # kernel refuses to raise it: runc and crun skip those (runc spec's
    # own config lists ambient caps it does not make inheritable).
    result[Tag.CAP_AMBIENT] &= result[Tag.CAP_INHERITABLE] & result[Tag.CAP_PERMITTED]
    return result


def _check_held(caps: dict[Tag, int], held: int) -> None:
    """Without a user namespace the container's capabilities come out of
    husk's own: one husk lacks (a host, or an outer container, dropped it
    from the bounding set) would fail capset(2) with a bare EPERM inside
    husk-init, so name it here.  A bounding entry husk lacks is harmless
    (dropping what is not held is a no-op), and ambient was cut above."""
    for name in ("permitted", "effective", "inheritable"):
        extra = caps[_CAP_SETS[name]] & ~held
        if extra:
            cap = k.CAPABILITIES[(extra & -extra).bit_length() - 1]
            raise ConfigError(f"process.capabilities.{name}",
                              f"{cap} is not in husk's own capability set (this host's bounding set lacks it)")


def limit_capabilities(caps: dict[Tag, int], bounding: int) -> dict[Tag, int]:
    """caps with every set cut down to a bounding set: an exec'd process
    gets no capability the container's init could not have."""
    return {tag: mask & bounding for tag, mask in caps.items()}


def bounding_set(process: dict, last_cap: int) -> int:
    return _capabilities(process, last_cap)[Tag.CAP_BOUNDING]


def _rlimits(process: dict) -> list[tuple[int, int, int]]:
    result = []
    seen = set()
    for where, entry in get_objects(process, "rlimits", "process.rlimits"):
        name = get_str(entry, "type", f"{where}.type", required=True)
        if name not in k.RLIMITS:
            raise ConfigError(f"{where}.type", f"unknown rlimit {name!r}")
        if name in seen:
            raise ConfigError(f"{where}.type", f"{name} given twice")
        seen.add(name)
        soft = get_int(entry, "soft", f"{where}.soft", required=True, minimum=0, maximum=k.RLIM_INFINITY)
        hard = get_int(entry, "hard", f"{where}.hard", required=True, minimum=0, maximum=k.RLIM_INFINITY)
        if soft > hard:
            raise ConfigError(where, f"soft limit {soft} is above the hard limit {hard}")
        result.append((k.RLIMITS[name], soft, hard))
    return result


def hooks_of(config: dict) -> dict[str, list[dict[str, Any]]]:
    """The hooks section, checked: kind -> [{path, args, env, timeout}]."""
    hooks = get_obj(config, "hooks", "hooks")
    result: dict[str, list[dict[str, Any]]] = {}
    for kind in HOOK_KINDS:
        entries = []
        for where, h in get_objects(hooks, kind, f"hooks.{kind}"):
            path = get_str(h, "path", f"{where}.path", required=True)
            if not os.path.isabs(path):
                raise ConfigError(f"{where}.path", f"{path!r} must be absolute")
            entries.append({"path": path,
                            "args": get_str_list(h, "args", f"{where}.args") or [path],
                            "env": get_str_list(h, "env", f"{where}.env"),
                            "timeout": get_int(h, "timeout", f"{where}.timeout", default=0, minimum=1)})
        result[kind] = entries
    return result


def resolve_rootfs(config: dict, bundle: str) -> tuple[str, bool]:
    root = get_obj(config, "root", "root", required=True)
    path = get_str(root, "path", "root.path", required=True)
    if not os.path.isabs(path):
        path = os.path.join(bundle, path)  # containerd passes "rootfs"
    path = os.path.realpath(path)
    if not os.path.isdir(path):
        raise ConfigError("root.path", f"{path} is not a directory")
    st, host = os.stat(path), os.stat("/")
    if path == "/" or (st.st_dev, st.st_ino) == (host.st_dev, host.st_ino):
        raise ConfigError("root.path", "the host's / cannot be a container's rootfs")
    return path, get_bool(root, "readonly", "root.readonly")


def process_plan(process: dict, plan: Plan, last_cap: int, linux: dict | None = None) -> None:
    """The fields of a runtime-spec process object (shared by create and exec)."""
    args = get_str_list(process, "args", "process.args")
    if not args or not args[0]:
        raise ConfigError("process.args", "must be a non-empty list of strings")
    plan.args = args
    plan.env = get_str_list(process, "env", "process.env")
    for i, e in enumerate(plan.env):
        if "=" not in e:
            raise ConfigError(f"process.env[{i}]", f"{e!r} is not KEY=VALUE")
    cwd = get_str(process, "cwd", "process.cwd", default="/")
    plan.cwd = absolute_path(cwd, "process.cwd")
    user = get_obj(process, "user", "process.user")
    plan.uid = get_int(user, "uid", "process.user.uid", default=0, minimum=0, maximum=2**32 - 2)
    plan.gid = get_int(user, "gid", "process.user.gid", default=0, minimum=0, maximum=2**32 - 2)
    plan.umask = get_int(user, "umask", "process.user.umask", minimum=0, maximum=0o777)
    plan.additional_gids = [
        get_int({"g": g}, "g", f"process.user.additionalGids[{i}]", minimum=0, maximum=2**32 - 2)
        for i, g in enumerate(get_list(user, "additionalGids", "process.user.additionalGids"))]
    if "username" in user:
        raise ConfigError("process.user.username", "is for Windows containers")
    plan.terminal = get_bool(process, "terminal", "process.terminal")
    plan.caps = _capabilities(process, last_cap)
    plan.no_new_privs = get_bool(process, "noNewPrivileges", "process.noNewPrivileges")
    plan.rlimits = _rlimits(process)
    plan.oom_score_adj = get_int(process, "oomScoreAdj", "process.oomScoreAdj", minimum=-1000, maximum=1000)
    if linux is not None:
        plan.seccomp = parse_seccomp(linux)
    profile = get_str(process, "apparmorProfile", "process.apparmorProfile")
    if profile:
        # runc fails later, at the attr write; naming the host's lack here
        # leaves nothing half-made.  podman and containerd set the field
        # only where AppArmor is enabled.
        if not k.apparmor_enabled():
            raise ConfigError("process.apparmorProfile", f"{profile!r}: AppArmor is not enabled on this host")
        if "\n" in profile or "\0" in profile:
            raise ConfigError("process.apparmorProfile", f"{profile!r} is not a profile name")
        plan.apparmor_profile = profile
    if process.get("selinuxLabel"):
        raise ConfigError("process.selinuxLabel", "no SELinux support in husk yet; leave it empty")


def spec_to_plan(config: dict, bundle: str, *, cgroup_mounts: CgroupMounts | None = None,
                 last_cap: int | None = None, held_caps: int | None = None) -> Plan:
    """A checked config.json -> the Plan husk-init executes for `create`."""
    if last_cap is None:
        last_cap = k.cap_last_cap()
    if held_caps is None:
        held_caps = k.held_capabilities()
    plan = Plan()
    plan.rootfs, plan.root_readonly = resolve_rootfs(config, bundle)
    linux = get_obj(config, "linux", "linux")
    process_plan(get_obj(config, "process", "process", required=True), plan, last_cap, linux)

    ns = parse_namespaces(linux)
    if not ns.has("mount"):
        raise ConfigError("linux.namespaces", "a mount namespace is required")
    if not ns.has("user"):
        _check_held(plan.caps, held_caps)
    for nstype in ns.new:
        plan.clone_flags |= k.NAMESPACES[nstype]
    plan.joins = [(k.NAMESPACES[t], p) for t, p in ns.joined.items()]

    plan.uid_map = _id_map(linux, "uidMappings")
    plan.gid_map = _id_map(linux, "gidMappings")
    if "user" in ns.new and not (plan.uid_map and plan.gid_map):
        raise ConfigError("linux.uidMappings", "a new user namespace needs uidMappings and gidMappings")
    if not ns.has("user") and (plan.uid_map or plan.gid_map):
        raise ConfigError("linux.uidMappings", "mappings need a user namespace")
    offsets = get_obj(linux, "timeOffsets", "linux.timeOffsets")
    if offsets:
        if "time" not in ns.new:
            raise ConfigError("linux.timeOffsets", "needs a new time namespace")
        lines = []
        for clock, value in offsets.items():
            where = f"linux.timeOffsets.{clock}"
            if clock not in ("monotonic", "boottime") or not isinstance(value, dict):
                raise ConfigError(where, "must be monotonic or boottime with secs and nanosecs")
            lines.append(f"{clock} {get_int(value, 'secs', where + '.secs', default=0)} "
                         f"{get_int(value, 'nanosecs', where + '.nanosecs', default=0, minimum=0)}")
        plan.timens_offsets = "\n".join(lines) + "\n"

    plan.hostname = get_str(config, "hostname", "hostname")
    plan.domainname = get_str(config, "domainname", "domainname")
    for name in ("hostname", "domainname"):
        if getattr(plan, name) and not ns.has("uts"):
            raise ConfigError(name, "setting it needs a uts namespace")

    prop = get_str(linux, "rootfsPropagation", "linux.rootfsPropagation")
    if prop:
        if prop not in k.PROPAGATION:
            raise ConfigError("linux.rootfsPropagation", f"unknown propagation {prop!r}")
        plan.rootfs_propagation = k.PROPAGATION[prop] & ~k.MS_REC

    plan.mounts = _mounts(config, bundle, cgroup_mounts)
    # /dev gets the default devices unless the host's /dev is bound there.
    dev_bound = any(m.destination == "/dev" and m.flags & k.MS_BIND for m in plan.mounts)
    plan.default_devices = not dev_bound
    plan.devices = _devices(linux)

    plan.masked_paths = [absolute_path(p, f"linux.maskedPaths[{i}]")
                         for i, p in enumerate(get_str_list(linux, "maskedPaths", "linux.maskedPaths"))]
    plan.readonly_paths = [absolute_path(p, f"linux.readonlyPaths[{i}]")
                           for i, p in enumerate(get_str_list(linux, "readonlyPaths", "linux.readonlyPaths"))]

    sysctl = get_obj(linux, "sysctl", "linux.sysctl")
    for key, value in sysctl.items():
        where = f"linux.sysctl.{key}"
        if not isinstance(value, str):
            raise ConfigError(where, "must be a string")
        if "/" in key or ".." in key or not key:
            raise ConfigError(where, "not a sysctl name")
        needed = next((n for prefix, n in _SYSCTL_NS if key.startswith(prefix)), None)
        if needed is None:
            raise ConfigError(where, "is not namespaced: it would change the host")
        if needed not in ns.new:
            raise ConfigError(where, f"needs a new {needed} namespace")
        plan.sysctl[key] = value

    personality = get_obj(linux, "personality", "linux.personality")
    if personality:
        domain = get_str(personality, "domain", "linux.personality.domain", required=True)
        if domain not in k.PERSONALITIES:
            raise ConfigError("linux.personality.domain", f"unknown domain {domain!r}")
        plan.personality = k.PERSONALITIES[domain]

    for kind, code in (("createContainer", HOOK_CREATE_CONTAINER), ("startContainer", HOOK_START_CONTAINER)):
        for h in hooks_of(config)[kind]:
            plan.hooks.append(Hook(kind=code, path=h["path"], args=h["args"], env=h["env"],
                                   timeout=h["timeout"] or 0))
    return plan
