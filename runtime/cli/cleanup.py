import click


@click.command(hidden=True)
@click.option("--run", type=int, default=None, help="The run of the container that exited.")
@click.argument("container_id")
@click.pass_obj
def command(g, run, container_id):
    """Run by husk-monitor when its container exits (conmon's exit
    command): release or restart or remove the container, by its record."""
    from runtime.engine import lifecycle

    lifecycle.cleanup(g.root, g.storage_root, container_id, run)
