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
    from runtime.engine import stats
    from runtime.engine.image import containers as ctrs
    from runtime.engine.image.store import Store

    store = Store(g.storage_root)
    named = [_find(g, store, ctrs, c) for c in containers]
    previous: dict = {}

    def records():
        return named or store.container_records()

    while True:
        rows = stats.collect(g.root, records(), previous)
        if named and len(rows) < len(named):
            gone = {r["Container"] for r in rows}
            missing = [n["name"] for n in named if n["id"] not in gone]
            from runtime.core.errors import HuskError

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


def _find(g, store, ctrs, text):
    """An image container by name or prefix; else an OCI container by its
    id (one podman or containerd made with husk as the runtime)."""
    from runtime.core import container
    from runtime.core.errors import HuskError

    try:
        return ctrs.find(store, text)
    except HuskError:
        try:
            container.state(g.root, text)
        except HuskError:
            raise HuskError("stats", f"no such container: {text}") from None
        return {"id": text, "name": text[:12]}
