"""`husk kill`: one verb, two faces.

    husk kill [--all] ID [SIGNAL]     signal an OCI container (runc; default TERM)
    husk kill [-s SIGNAL] NAME...     signal image containers (docker; default KILL)

An id with OCI state under --root is runc's form (containerd and podman
call it so); -s, or a name or id prefix of an image container, is docker's.
"""

import click

from runtime.core import container
from runtime.core.errors import HuskError
from runtime.core.linux.signals import parse_signal


@click.command()
@click.option("--all", "-a", "all_processes", is_flag=True, help="OCI: signal every process in the cgroup.")
@click.option("--signal", "-s", "docker_signal", help="Image containers: the signal (default KILL).")
@click.argument("container_id")
@click.argument("rest", nargs=-1)
@click.pass_obj
def command(g, all_processes, docker_signal, container_id, rest):
    """Send a signal to a container (OCI: default TERM; image containers: default KILL)."""
    if docker_signal is None and len(rest) <= 1 and (_oci_state(g, container_id)
                                                     or not _image_container(g, container_id)):
        signal = rest[0] if rest else "TERM"
        try:
            number = parse_signal(signal)
        except ValueError as e:
            raise HuskError("kill", str(e)) from None
        return container.kill(g.root, container_id, number, all_processes)
    from runtime.engine import lifecycle

    for name in (container_id, *rest):
        try:
            click.echo(lifecycle.kill(g.root, g.storage_root, name, docker_signal or "KILL"))
        except ValueError as e:
            raise HuskError("kill", str(e)) from None


def _oci_state(g, cid: str) -> bool:
    try:
        container.state(g.root, cid)
        return True
    except HuskError:
        return False


def _image_container(g, text: str) -> bool:
    from runtime.engine.image import containers
    from runtime.engine.image.store import Store

    try:
        containers.find(Store(g.storage_root), text)
        return True
    except HuskError:
        return False
