"""`husk features`: the runtime-spec features document, true to what
husk implements (engines probe it before they use a field)."""

from __future__ import annotations

from typing import Any

from runtime import OCI_VERSION, __version__
from runtime.core.cgroups.layout import detect
from runtime.core.cgroups.manager import manager_for
from runtime.core.linux import constants as k
from runtime.core.linux import seccomp
from runtime.core.oci.specconv import HOOK_KINDS


def features() -> dict[str, Any]:
    last = k.cap_last_cap()
    layout = detect()
    return {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": OCI_VERSION,
        "hooks": list(HOOK_KINDS),
        "mountOptions": sorted(set(k.MOUNT_FLAGS) | set(k.PROPAGATION)),
        "linux": {
            "namespaces": list(k.NAMESPACES),
            "capabilities": [c for c in k.CAPABILITIES if k.CAP_NUMBERS[c] <= last],
            "cgroup": {"v1": layout.mode != "v2", "v2": layout.mode == "v2",
                       "systemd": True, "systemdUser": False,
                       "rdma": manager_for("/").dir_of("rdma") is not None},
            "seccomp": {"enabled": True, "actions": list(seccomp.ACTIONS),
                        "operators": list(seccomp.OPERATORS), "archs": list(seccomp.ARCHES),
                        "knownFlags": list(seccomp.FLAGS), "supportedFlags": list(seccomp.FLAGS)},
            "apparmor": {"enabled": k.apparmor_enabled()},
            "selinux": {"enabled": False},
            "intelRdt": {"enabled": False},
            "mountExtensions": {"idmap": {"enabled": False}},
        },
        "annotations": {"io.github.husk.version": __version__},
    }
