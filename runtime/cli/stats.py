"""`husk stats`: CPU, memory, network, block I/O and pids of running
image containers, as docker stats shows them (engine.stats)."""

import time

import click

TABLE = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}"
HEADERS = {"ID": "CONTAINER ID", "Name": "NAME", "CPUPerc": "CPU %", "MemUsage": "MEM USAGE / LIMIT",
           "MemPerc": "MEM %", "NetIO": "NET I/O", "BlockIO": "BLOCK I/O", "PIDs": "PIDS"}


@click.command()
@click.option("--no-stream", is_flag=True, help="One reading, then exit.")
@click.option("--format", "fmt", default=None, help="table, json, or a Go template ({{.Name}} {{.CPUPerc}}).")
@click.option("--no-trunc", is_flag=True, help="Full container ids.")
@click.argument("containers", nargs=-1)
@click.pass_obj
def command(g, no_stream, fmt, no_trunc, containers):
    """Live resource usage of running containers (all of them if none is named)."""
    from runtime.core.errors import HuskError
    from runtime.engine import record as records
    from runtime.engine import stats

    named = [_target(g, c) for c in containers]
    previous: dict = {}
    while True:
        targets = named or [(r.id, r.name) for r in records.every(g.storage_root)]
        rows = stats.collect(g.root, targets, previous)
        if named and len(rows) < len(named):
            gone = {r["Container"] for r in rows}
            missing = [name for cid, name in named if cid not in gone]
            raise HuskError("stats", f"container {missing[0]} is not running")
        if no_trunc:
            for r in rows:
                r["ID"] = r["Container"]
        if not no_stream:
            click.echo("\033[2J\033[H", nl=False)  # clear the screen, as docker's live table does
        _print(rows, fmt)
        if no_stream:
            return
        time.sleep(1)


def _print(rows, fmt):
    from runtime.cli._table import print_rows

    print_rows(rows, fmt, TABLE, HEADERS)


def _target(g, text):
    """(id, name) of an image container by id, prefix or name; else of an
    OCI container by its id (one podman or containerd made with husk as
    the runtime)."""
    from runtime.core import container
    from runtime.core.errors import NotFound
    from runtime.engine import record as records

    try:
        record = records.find(g.storage_root, text)
        return record.id, record.name
    except NotFound:
        container.state(g.root, text)  # NotFound if it is neither
        return text, text[:12]
