"""`husk inspect` and `husk ps`: image containers in docker's shapes.

inspect gives docker's JSON for the fields people script
(State.Status/ExitCode/Pid/StartedAt/FinishedAt, NetworkSettings.IPAddress
and Ports, Mounts, Config, HostConfig.RestartPolicy); ps gives its rows.
Both take docker's --format: a Go template of the `{{.Field.Sub}}` and
`{{json .Field}}` kind (the subset scripts use), `json`, or
`table TEMPLATE` for a headed table.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

from runtime.core.errors import ConfigError, HuskError
from runtime.core.paths import StoreLayout
from runtime.engine import lifecycle
from runtime.engine.image.store import Store
from runtime.engine.record import ContainerRecord


def _ports(record: ContainerRecord) -> dict[str, list[dict[str, str]]]:
    """{"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}]}"""
    out: dict[str, list[dict[str, str]]] = {}
    for host_ip, host_port, proto, _ip, port in record.network.ports if record.network else []:
        out.setdefault(f"{port}/{proto}", []).append({"HostIp": host_ip or "0.0.0.0", "HostPort": str(host_port)})
    return out


def port_lines(record: ContainerRecord, wanted: str | None = None) -> list[str]:
    """`husk port`: "80/tcp -> 127.0.0.1:8080" for each published port,
    or only those of WANTED (PORT or PORT/PROTO)."""
    if wanted and "/" not in wanted:
        wanted += "/tcp"
    lines = []
    for key, binds in _ports(record).items():
        if wanted in (None, key):
            lines += [f"{p['HostIp']}:{p['HostPort']}" if wanted else f"{key} -> {p['HostIp']}:{p['HostPort']}"
                      for p in binds]
    if wanted and not lines:
        raise HuskError("port", f"no public port {wanted!r} published for {record.name}")
    return lines


def _config_json(store: Store, cid: str) -> dict[str, Any]:
    try:
        with open(os.path.join(store.container_dir(cid), "config.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def inspect(root: str, store: Store, record: ContainerRecord) -> dict[str, Any]:
    cid = record.id
    spec = _config_json(store, cid)
    process = spec.get("process") or {}
    args = process.get("args") or []
    image_config = {}
    try:
        image_config = store.config(record.image).get("config") or {}
    except Exception:  # noqa: BLE001 - the image may have been pruned; the rest still describes the container
        pass
    net = record.network
    policy = lifecycle.parse_restart(record.restart)
    mounts = [m.to_docker() for m in record.mounts]
    resources = record.limits
    memory, cpu = resources.get("memory") or {}, resources.get("cpu") or {}
    user = process.get("user") or {}
    networks = {}
    if net and net.network:
        networks[net.network] = {"IPAddress": net.ip or "", "NetworkID": net.network}
    return {
        "Id": cid,
        "Created": record.created,
        "Path": args[0] if args else "",
        "Args": args[1:],
        "State": lifecycle.state_of(root, store, record),
        "Image": record.image,
        "Name": "/" + record.name,
        "RestartCount": record.restart_count,
        "Driver": record.driver,
        "LogPath": StoreLayout(store.root).container_log(cid) if record.detached else "",
        "HostConfig": {"RestartPolicy": {"Name": policy.name, "MaximumRetryCount": policy.max_retries},
                       "AutoRemove": record.remove, "NetworkMode": net.mode if net else "",
                       "LogConfig": {"Type": "k8s-file",
                                     "Config": ({"max-size": str(record.log_size_max)}
                                                if record.log_size_max else {})},
                       "Binds": [f"{m.get('Name') or m['Source']}:{m['Destination']}" + (":ro" if not m["RW"] else "")
                                 for m in mounts if m["Type"] != "tmpfs"],
                       "Memory": memory.get("limit", 0), "MemorySwap": memory.get("swap", 0),
                       "MemoryReservation": memory.get("reservation", 0),
                       "NanoCpus": cpu["quota"] * 1_000_000_000 // cpu["period"] if cpu.get("quota") else 0,
                       "CpuShares": cpu.get("shares", 0), "CpusetCpus": cpu.get("cpus", ""),
                       "PidsLimit": (resources.get("pids") or {}).get("limit", 0)},
        "Mounts": mounts,
        "Config": {"Hostname": spec.get("hostname", ""), "User": f"{user.get('uid', 0)}:{user.get('gid', 0)}",
                   "Env": process.get("env") or [], "Cmd": args, "Image": record.image_name,
                   "WorkingDir": process.get("cwd", ""), "Entrypoint": image_config.get("Entrypoint"),
                   "ExposedPorts": image_config.get("ExposedPorts") or {},
                   "StopSignal": record.stop_signal,
                   **({"Healthcheck": record.healthcheck.to_docker()} if record.healthcheck else {}),
                   "Tty": bool(process.get("terminal"))},
        "NetworkSettings": {"IPAddress": (net.ip if net else None) or "", "Ports": _ports(record),
                            "Networks": networks},
    }


def ps_row(root: str, store: Store, record: ContainerRecord) -> dict[str, Any]:
    """The fields of docker ps --format."""
    state = lifecycle.state_of(root, store, record)
    spec = _config_json(store, record.id)
    command = " ".join((spec.get("process") or {}).get("args") or [])
    ports = ", ".join(f"{p['HostIp']}:{p['HostPort']}->{key}" for key, binds in _ports(record).items() for p in binds)
    return {"ID": record.id[:12], "Image": record.image_name,
            "Command": json.dumps(command if len(command) <= 20 else command[:19] + "…", ensure_ascii=False),
            "CreatedAt": record.created, "Status": lifecycle.human_status(state), "State": state["Status"],
            "Ports": ports, "Names": record.name, "RunningFor": record.created}


_FIELD = re.compile(r"\{\{\s*(json\s+)?\.([A-Za-z0-9_.]*)\s*\}\}")


def template_fields(template: str) -> list[str]:
    """The field names a template shows, in order: {{.A.B}} gives "A.B"."""
    return [m.group(2) for m in _FIELD.finditer(template)]


def render(template: str, value: dict[str, Any]) -> str:
    """A Go template's `{{.A.B}}` and `{{json .A}}`, docker's --format subset."""
    def one(match: re.Match) -> str:
        found: Any = value
        for part in filter(None, match.group(2).split(".")):
            if not isinstance(found, dict) or part not in found:
                raise ConfigError("--format", f"{match.group(0)}: no field {part!r}")
            found = found[part]
        if match.group(1) or isinstance(found, (dict, list)):
            return json.dumps(found)
        if isinstance(found, bool):
            return "true" if found else "false"
        return "" if found is None else str(found)

    rest = _FIELD.sub("", template)
    if "{{" in rest:
        raise ConfigError("--format", f"{template!r}: husk's templates take {{{{.Field}}}} and {{{{json .Field}}}}")
    return _FIELD.sub(one, template).replace("\\t", "\t").replace("\\n", "\n")
