import click

from runtime.core import container


@click.command()
@click.option("--force", "-f", is_flag=True, help="Kill the container if it still runs; no error if it is gone.")
@click.argument("container_id")
@click.pass_obj
def command(g, force, container_id):
    """Delete a stopped container: its cgroup, state and poststop hooks."""
    container.delete(g.root, container_id, force)
