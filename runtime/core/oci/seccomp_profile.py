"""Docker-format seccomp profiles -> the OCI config's linux.seccomp.

Image containers (`husk run IMAGE`) get the default profile that docker
and podman apply: an allow-list of about 400 syscalls, with the rest
failing (ENOSYS for syscalls the list does not know, so new ones fail
cleanly).  The profile is data, not code in husk: it is the copy that
Debian ships for podman in golang-github-containers-common
(/usr/share/containers/seccomp.json, containers/common's
pkg/seccomp/seccomp.json, itself derived from moby's
profiles/seccomp/default.json), kept current by that package.

A docker-format profile names syscalls per entry with conditions: an
entry applies only if the container's bounding set holds every
capability in includes.caps (and none in excludes.caps), and the
architecture and kernel match.  This resolves those conditions for one
container, as moby's profiles/seccomp/seccomp.go does.
"""

from __future__ import annotations

import os
from typing import Any

from runtime.core.errors import HuskError
from runtime.core.linux.safeopen import read_regular_file

DEFAULT_PROFILES = ("/usr/share/containers/seccomp.json", "/etc/containers/seccomp.json")
MAX_PROFILE = 4 << 20

# uname -m -> Go's architecture names, which profiles use in includes.arches.
_GOARCH = {"x86_64": "amd64", "i686": "386", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le",
           "s390x": "s390x", "riscv64": "riscv64", "mips64": "mips64"}
_SCMP_ARCH = {"x86_64": "SCMP_ARCH_X86_64", "aarch64": "SCMP_ARCH_AARCH64", "ppc64le": "SCMP_ARCH_PPC64LE",
              "s390x": "SCMP_ARCH_S390X", "riscv64": "SCMP_ARCH_RISCV64", "i686": "SCMP_ARCH_X86",
              "armv7l": "SCMP_ARCH_ARM"}


def load(path: str) -> dict[str, Any]:
    import json

    data = read_regular_file(path, MAX_PROFILE, what="seccomp profile")
    try:
        profile = json.loads(data)
    except ValueError as e:
        raise HuskError("seccomp profile", f"{path}: not JSON: {e}") from None
    if not isinstance(profile, dict) or "defaultAction" not in profile:
        raise HuskError("seccomp profile", f"{path}: not a seccomp profile (no defaultAction)")
    return profile


def default_profile() -> dict[str, Any]:
    for path in DEFAULT_PROFILES:
        if os.path.exists(path):
            return load(path)
    raise HuskError("seccomp profile", "no default profile at " + " or ".join(DEFAULT_PROFILES)
                    + ": install golang-github-containers-common, or run with --security-opt seccomp=unconfined")


def _kernel_at_least(version: str) -> bool:
    def parts(v: str) -> tuple[int, ...]:
        out = []
        for p in v.split("-")[0].split("."):
            digits = "".join(c for c in p if c.isdigit())
            out.append(int(digits or 0))
        return tuple(out)
    return parts(os.uname().release) >= parts(version)


def _applies(entry: dict[str, Any], caps: set[str], goarch: str) -> bool:
    inc, exc = entry.get("includes") or {}, entry.get("excludes") or {}
    if exc.get("arches") and goarch in exc["arches"]:
        return False
    if any(c in caps for c in exc.get("caps") or []):
        return False
    if exc.get("minKernel") and _kernel_at_least(exc["minKernel"]):
        return False
    if inc.get("arches") and goarch not in inc["arches"]:
        return False
    if any(c not in caps for c in inc.get("caps") or []):
        return False
    if inc.get("minKernel") and not _kernel_at_least(inc["minKernel"]):
        return False
    return True


def to_oci(profile: dict[str, Any], bounding: list[str], machine: str | None = None) -> dict[str, Any]:
    """linux.seccomp for a container with this bounding set on this machine."""
    machine = machine or os.uname().machine
    goarch = _GOARCH.get(machine, machine)
    native = _SCMP_ARCH.get(machine)
    arches: list[str] = list(profile.get("architectures") or [])
    for entry in profile.get("archMap") or []:
        if entry.get("architecture") == native:
            arches = [native] + list(entry.get("subArchitectures") or [])
    caps = set(bounding)
    out: dict[str, Any] = {"defaultAction": profile["defaultAction"], "architectures": arches, "syscalls": []}
    if profile.get("defaultErrnoRet") is not None:
        out["defaultErrnoRet"] = profile["defaultErrnoRet"]
    if profile.get("flags"):
        out["flags"] = profile["flags"]
    for entry in profile.get("syscalls") or []:
        if not _applies(entry, caps, goarch):
            continue
        names = list(entry.get("names") or ([entry["name"]] if entry.get("name") else []))
        if not names:
            continue
        rule: dict[str, Any] = {"names": names, "action": entry["action"]}
        if entry.get("args"):
            rule["args"] = entry["args"]
        if entry.get("errnoRet") is not None:
            rule["errnoRet"] = entry["errnoRet"]
        out["syscalls"].append(rule)
    return out
