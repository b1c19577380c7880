import click

from runtime.cli.main import load_json_arg
from runtime.core import container
from runtime.core.errors import ConfigError

_UNITS = {"": 1, "b": 1, "k": 1024, "kb": 1024, "m": 1024**2, "mb": 1024**2, "g": 1024**3, "gb": 1024**3}


def size(text: str, flag: str) -> int:
    """'64m', '1g', '1048576' or '-1' -> bytes (docker's RAMInBytes)."""
    t = text.strip().lower()
    if t == "-1":
        return -1
    digits = t.rstrip("bkmg")
    unit = t[len(digits):]
    if not digits.isdigit() or unit not in _UNITS:
        raise ConfigError(flag, f"{text!r} is not a size (like 64m or 1g)")
    return int(digits) * _UNITS[unit]


@click.command()
@click.option("--resources", "-r", "resources_file", help="A linux.resources JSON file, or - for stdin.")
@click.option("--blkio-weight", type=int)
@click.option("--cpu-period", type=int)
@click.option("--cpu-quota", type=int)
@click.option("--cpu-share", type=int)
@click.option("--cpu-rt-period", type=int)
@click.option("--cpu-rt-runtime", type=int)
@click.option("--cpu-idle", type=int)
@click.option("--cpuset-cpus")
@click.option("--cpuset-mems")
@click.option("--memory")
@click.option("--memory-reservation")
@click.option("--memory-swap")
@click.option("--kernel-memory")
@click.option("--kernel-memory-tcp")
@click.option("--pids-limit", type=int)
@click.option("--l3-cache-schema")
@click.option("--mem-bw-schema")
@click.argument("container_id")
@click.pass_obj
def command(g, resources_file, container_id, **flags):
    """Change a running container's resources (runc's flags, or -r FILE)."""
    if resources_file:
        resources = load_json_arg(resources_file, "--resources")
    else:
        resources = from_flags(flags)
    container.update(g.root, container_id, resources)


def from_flags(f) -> dict:
    if f["l3_cache_schema"] or f["mem_bw_schema"]:
        raise ConfigError("--l3-cache-schema", "Intel RDT is not supported by husk")
    r: dict = {}
    mem = {k: size(f[flag], "--" + flag.replace("_", "-")) for k, flag in
           (("limit", "memory"), ("reservation", "memory_reservation"), ("swap", "memory_swap"),
            ("kernel", "kernel_memory"), ("kernelTCP", "kernel_memory_tcp")) if f[flag] is not None}
    if mem:
        r["memory"] = mem
    cpu = {k: f[flag] for k, flag in (("period", "cpu_period"), ("quota", "cpu_quota"), ("shares", "cpu_share"),
                                      ("realtimePeriod", "cpu_rt_period"), ("realtimeRuntime", "cpu_rt_runtime"),
                                      ("idle", "cpu_idle"), ("cpus", "cpuset_cpus"), ("mems", "cpuset_mems"))
           if f[flag] is not None}
    if cpu:
        r["cpu"] = cpu
    if f["pids_limit"] is not None:
        r["pids"] = {"limit": f["pids_limit"]}
    if f["blkio_weight"] is not None:
        r["blockIO"] = {"weight": f["blkio_weight"]}
    return r
