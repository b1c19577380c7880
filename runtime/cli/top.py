"""`husk top NAME [ps OPTIONS]`: a container's processes (engine.top)."""

import click


@click.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.argument("name")
@click.argument("ps_args", nargs=-1, type=click.UNPROCESSED)
@click.pass_obj
def command(g, name, ps_args):
    """The processes of a running container, from the host's ps (-ef by default)."""
    from runtime.engine import record as records
    from runtime.engine.top import top

    rows = top(g.root, records.find(g.storage_root, name), list(ps_args))
    widths = [max(len(r[i]) for r in rows if i < len(r)) for i in range(len(rows[0]))]
    for r in rows:
        click.echo("   ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
