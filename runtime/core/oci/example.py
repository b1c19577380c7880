"""`husk spec`: a default config.json, like `runc spec`, built from the
defaults kept in defaults.json."""

from __future__ import annotations

from typing import Any

from runtime import OCI_VERSION
from runtime.core.oci.defaults import defaults, masked_paths


def example_spec(args: list[str] | None = None, terminal: bool = True) -> dict[str, Any]:
    d = defaults()
    caps = list(d["spec_capabilities"]["caps"])
    return {
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": terminal,
            "user": {"uid": 0, "gid": 0},
            "args": args or ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "rlimits": [dict(r) for r in d["rlimits"]["list"]],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "husk",
        "mounts": [dict(m) for m in d["mounts"]["list"]],
        "linux": {
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
            "namespaces": [{"type": t} for t in d["namespaces"]["list"]],
            "maskedPaths": masked_paths(),
            "readonlyPaths": list(d["readonly_paths"]["paths"]),
        },
    }
