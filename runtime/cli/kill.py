import click

from runtime.core import container
from runtime.core.errors import HuskError
from runtime.core.linux.signals import parse_signal


@click.command()
@click.option("--all", "-a", "all_processes", is_flag=True, help="Signal every process in the container's cgroup.")
@click.argument("container_id")
@click.argument("signal", default="TERM")
@click.pass_obj
def command(g, all_processes, container_id, signal):
    """Send a signal (name or number, default TERM) to a container."""
    try:
        number = parse_signal(signal)
    except ValueError as e:
        raise HuskError("kill", str(e)) from None
    container.kill(g.root, container_id, number, all_processes)
