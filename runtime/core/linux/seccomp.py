"""linux.seccomp -> the records husk-init turns into a filter (libseccomp).

Names are checked here so a bad profile fails with the field it is in;
syscall names are passed through (husk-init skips the ones this
architecture's libseccomp does not know, as runc does).
"""

from __future__ import annotations

import errno as _errno

from runtime.core._native import lib
from runtime.core.errors import ConfigError
from runtime.core.oci.spec import get_int, get_objects, get_str, get_str_list
from runtime.core.process import protocol as proto

# libseccomp's values for SCMP_ACT_* and SCMP_CMP_*, as <seccomp.h> has
# them (through cffi, runtime.core._native): husk-init hands them to the
# same library.
_ACTIONS = {
    "SCMP_ACT_KILL": lib.SCMP_ACT_KILL_THREAD, "SCMP_ACT_KILL_THREAD": lib.SCMP_ACT_KILL_THREAD,
    "SCMP_ACT_KILL_PROCESS": lib.SCMP_ACT_KILL_PROCESS, "SCMP_ACT_TRAP": lib.SCMP_ACT_TRAP,
    "SCMP_ACT_ERRNO": lib.HUSK_SCMP_ACT_ERRNO, "SCMP_ACT_TRACE": lib.HUSK_SCMP_ACT_TRACE,
    "SCMP_ACT_LOG": lib.SCMP_ACT_LOG, "SCMP_ACT_ALLOW": lib.SCMP_ACT_ALLOW,
}
OPERATORS = {name: getattr(lib, name) for name in ("SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ",
                                                    "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ")}
ARCHES = ("SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_ARM", "SCMP_ARCH_AARCH64",
          "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS64N32", "SCMP_ARCH_MIPSEL",
          "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC", "SCMP_ARCH_PPC64",
          "SCMP_ARCH_PPC64LE", "SCMP_ARCH_S390", "SCMP_ARCH_S390X", "SCMP_ARCH_RISCV64")
# The plan's flag bits (husk_proto.def), which husk-init maps to libseccomp's.
FLAGS = {"SECCOMP_FILTER_FLAG_LOG": proto.SECCOMP_LOG, "SECCOMP_FILTER_FLAG_SPEC_ALLOW": proto.SECCOMP_SPEC_ALLOW,
         "SECCOMP_FILTER_FLAG_TSYNC": 0}  # TSYNC: husk-init has one thread anyway
ACTIONS = tuple(_ACTIONS)


def _action(name: str, errno_ret: int | None, where: str) -> int:
    if name == "SCMP_ACT_NOTIFY":
        raise ConfigError(where, "SCMP_ACT_NOTIFY needs a seccomp listener, which husk does not support yet")
    if name not in _ACTIONS:
        raise ConfigError(where, f"unknown action {name!r}")
    value = _ACTIONS[name]
    if name in ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE"):
        value |= (_errno.EPERM if errno_ret is None else errno_ret) & 0xFFFF
    return value


def parse_seccomp(linux: dict) -> proto.SeccompFilter | None:
    seccomp = linux.get("seccomp")
    if seccomp is None:
        return None
    if not isinstance(seccomp, dict):
        raise ConfigError("linux.seccomp", "must be an object")
    if seccomp.get("listenerPath"):
        raise ConfigError("linux.seccomp.listenerPath", "seccomp user notification is not supported by husk yet")
    default = _action(get_str(seccomp, "defaultAction", "linux.seccomp.defaultAction", required=True),
                      get_int(seccomp, "defaultErrnoRet", "linux.seccomp.defaultErrnoRet", minimum=0),
                      "linux.seccomp.defaultAction")
    arches = []
    for i, arch in enumerate(get_str_list(seccomp, "architectures", "linux.seccomp.architectures")):
        if arch not in ARCHES:
            raise ConfigError(f"linux.seccomp.architectures[{i}]", f"unknown architecture {arch!r}")
        arches.append(arch[len("SCMP_ARCH_"):].lower())
    flags = 0
    for i, flag in enumerate(get_str_list(seccomp, "flags", "linux.seccomp.flags")):
        if flag not in FLAGS:
            raise ConfigError(f"linux.seccomp.flags[{i}]", f"unsupported flag {flag!r}")
        flags |= FLAGS[flag]
    rules = []
    for where, entry in get_objects(seccomp, "syscalls", "linux.seccomp.syscalls"):
        names = get_str_list(entry, "names", f"{where}.names")
        if not names:
            raise ConfigError(f"{where}.names", "must list at least one syscall")
        action = _action(get_str(entry, "action", f"{where}.action", required=True),
                         get_int(entry, "errnoRet", f"{where}.errnoRet", minimum=0), f"{where}.action")
        args = []
        for awhere, arg in get_objects(entry, "args", f"{where}.args"):
            op = get_str(arg, "op", f"{awhere}.op", required=True)
            if op not in OPERATORS:
                raise ConfigError(f"{awhere}.op", f"unknown operator {op!r}")
            args.append((get_int(arg, "index", f"{awhere}.index", required=True, minimum=0, maximum=5),
                         OPERATORS[op],
                         get_int(arg, "value", f"{awhere}.value", required=True, minimum=0, maximum=2**64 - 1),
                         get_int(arg, "valueTwo", f"{awhere}.valueTwo", default=0, minimum=0, maximum=2**64 - 1)))
        rules.append(proto.SeccompRule(action, names, args))
    return proto.SeccompFilter(default, arches, flags, rules)
