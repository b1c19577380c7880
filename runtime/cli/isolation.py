"""`husk isolation [--pid PID] [--format text|json] [CONTAINER...]`: what
isolates a running process, read from the kernel (engine.isolation)."""

import json

import click


@click.command()
@click.option("--pid", "pids", type=int, multiple=True, help="A process by its host pid (any container's).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.argument("containers", nargs=-1)
@click.pass_obj
def command(g, pids, fmt, containers):
    """What isolates a container's process, or any process: its namespaces
    against the host's, its user ids, cgroups and limits, capability sets,
    no_new_privs, seccomp, LSM label, mounts and devices.  Two targets are
    shown side by side."""
    from runtime.core.errors import HuskError
    from runtime.engine.isolation import report

    targets = [(c, _pid_of(g, c)) for c in containers] + [(f"pid {p}", p) for p in pids]
    if not 1 <= len(targets) <= 2:
        raise HuskError("isolation", "name one or two containers (or --pid PID)")
    reports = [(label, report(pid)) for label, pid in targets]
    if fmt == "json":
        click.echo(json.dumps([{"target": label, "pid": pid, "findings": [f.to_json() for f in findings]}
                               for (label, findings), (_, pid) in zip(reports, targets)], indent=2))
    elif len(reports) == 1:
        _print_one(*reports[0])
    else:
        _print_two(reports)


def _print_one(label, findings):
    click.echo(f"{label}:")
    area = None
    for f in findings:
        if f.area != area:
            area = f.area
            click.echo(f"\n  {area}")
        click.echo(f"    {f.name:22} {f.verdict():9} {f.value}")
        click.echo(f"    {'':22} {'':9} - {f.meaning}")


def _print_two(reports):
    (a, first), (b, second) = reports
    other = {(f.area, f.name): f for f in second}

    def cell(f):
        text = f"{f.verdict():9} {f.value}" if f else "-"
        return text if len(text) <= 48 else text[:45] + "..."

    click.echo(f"{'':36} {a[:48]:48}  {b[:48]}")
    for f in first:
        click.echo(f"{f.area:13} {f.name:22} {cell(f):48}  {cell(other.pop((f.area, f.name), None))}".rstrip())
    for g in other.values():
        click.echo(f"{g.area:13} {g.name:22} {'-':48}  {cell(g)}".rstrip())


def _pid_of(g, text):
    """The init pid of an image container (id, prefix or name) or of an OCI
    container of husk's by its id."""
    from runtime.core import container
    from runtime.core.errors import HuskError, NotFound
    from runtime.engine import record as records

    try:
        cid = records.find(g.storage_root, text).id
    except NotFound:
        cid = text
    state = container.state(g.root, cid)  # NotFound if it is neither
    if state["status"] not in ("created", "running", "paused") or not state.get("pid"):
        raise HuskError("isolation", f"container {text} is not running")
    return state["pid"]
