"""An OCI config.json for a container made from an image: the runtime's
defaults (`husk spec`) with docker's capability set, the image config's
Env, Entrypoint, Cmd, WorkingDir and User, and the options `husk run`
was given."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from runtime.core.errors import ImageError
from runtime.core.oci import seccomp_profile
from runtime.core.oci.defaults import defaults
from runtime.core.oci.example import example_spec
from runtime.engine.image import users

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass
class RunOptions:
    command: list[str] = field(default_factory=list)
    entrypoint: str | None = None
    env: list[str] = field(default_factory=list)
    workdir: str | None = None
    user: str | None = None
    hostname: str | None = None
    tty: bool = False
    read_only: bool = False
    seccomp: str = "default"  # "default", "unconfined" or a profile's path
    no_new_privileges: bool = False
    resources: dict[str, Any] = field(default_factory=dict)  # linux.resources (engine.limits)


def parse_security_opts(values: list[str], opts: RunOptions) -> None:
    """docker's --security-opt: seccomp=unconfined|PROFILE.json, no-new-privileges[=true|false]."""
    for value in values:
        key, sep, arg = value.partition("=")
        if sep == "" and ":" in value:  # docker's old spelling, seccomp:unconfined
            key, _, arg = value.partition(":")
            sep = ":"
        if key == "seccomp" and sep and arg:
            if arg != "unconfined":
                seccomp_profile.load(arg)  # a bad file fails here, before anything is made
            opts.seccomp = arg
        elif key == "no-new-privileges" and arg in ("", "true", "false"):
            opts.no_new_privileges = arg != "false"
        else:
            raise ImageError("--security-opt", f"{value!r}: husk knows seccomp=unconfined|FILE and "
                            "no-new-privileges[=true|false]")


def merge_env(base: list[str], extra: list[str]) -> list[str]:
    """KEY=VALUE lists merged by key, later wins, order kept."""
    out: dict[str, str] = {}
    for item in base + extra:
        key, sep, value = item.partition("=")
        if not key:
            raise ImageError("env", f"{item!r}: expected KEY=VALUE")
        out[key] = item if sep else f"{key}="
    return list(out.values())


def hostname_for(container_id: str) -> str:
    return container_id[:12]


def make_config(image_config: dict[str, Any], rootfs: str, opts: RunOptions, container_id: str,
                cgroups_path: str, network: dict[str, Any] | None = None,
                mounts: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """NETWORK: what network.attach returned: the network namespace entry
    (None for the host's) and the bind mounts of resolv.conf, hosts, hostname.
    MOUNTS: the volumes, bind mounts and tmpfs mounts (engine.volumes), last."""
    cfg = image_config.get("config") or {}
    entrypoint = [opts.entrypoint] if opts.entrypoint is not None else list(cfg.get("Entrypoint") or [])
    if opts.entrypoint == "":
        entrypoint = []
    # docker: --entrypoint resets the image's Cmd; a command given replaces it.
    cmd = opts.command or ([] if opts.entrypoint is not None else list(cfg.get("Cmd") or []))
    args = entrypoint + cmd
    if not args:
        raise ImageError("command", "the image has no Entrypoint or Cmd: give a command")
    user = users.resolve(rootfs, opts.user if opts.user is not None else cfg.get("User") or "")
    hostname = opts.hostname or hostname_for(container_id)
    env = merge_env([DEFAULT_PATH, f"HOSTNAME={hostname}", f"HOME={user.home}"],
                    list(cfg.get("Env") or []) + (["TERM=xterm"] if opts.tty else []) + opts.env)
    workdir = opts.workdir or cfg.get("WorkingDir") or "/"
    if not workdir.startswith("/"):
        raise ImageError("workdir", f"{workdir!r} must be an absolute path")

    spec = example_spec(args=args, terminal=opts.tty)
    process = spec["process"]
    process["env"] = env
    process["cwd"] = workdir
    process["user"] = {"uid": user.uid, "gid": user.gid}
    if user.additional_gids:
        process["user"]["additionalGids"] = user.additional_gids
    # Docker's default: no_new_privs off, so setuid binaries in images work.
    process["noNewPrivileges"] = opts.no_new_privileges
    caps = list(defaults()["image_capabilities"]["caps"])
    process["capabilities"] = {"bounding": caps, "effective": caps, "permitted": caps}
    if opts.seccomp != "unconfined":
        # docker's default profile (or the one given), resolved for these caps.
        profile = seccomp_profile.default_profile() if opts.seccomp == "default" else seccomp_profile.load(opts.seccomp)
        spec["linux"]["seccomp"] = seccomp_profile.to_oci(profile, caps)
    spec["root"] = {"path": "rootfs", "readonly": opts.read_only}
    spec["hostname"] = hostname
    spec["linux"]["cgroupsPath"] = cgroups_path
    spec["linux"]["resources"] = {"devices": [{"allow": False, "access": "rwm"}], **opts.resources}
    if network is not None:
        namespaces = [ns for ns in spec["linux"]["namespaces"] if ns["type"] != "network"]
        if network["namespace"]:
            namespaces.append(network["namespace"])
        spec["linux"]["namespaces"] = namespaces
        spec["mounts"] += network["mounts"]
    spec["mounts"] += mounts or []
    return spec
