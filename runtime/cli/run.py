import click

from runtime import container


@click.command()
@click.option("--bundle", "-b", default=".", help="Path to the bundle.")
@click.option("--detach", "-d", is_flag=True, help="Return once the process has started.")
@click.option("--pid-file", help="Write the container's host pid here.")
@click.option("--console-socket", help="Unix socket that receives the pty master.")
@click.option("--no-pivot", is_flag=True, help="Use MS_MOVE + chroot instead of pivot_root.")
@click.option("--no-new-keyring", is_flag=True, help="Accepted for runc compatibility.")
@click.option("--preserve-fds", type=click.IntRange(min=0), default=0)
@click.option("--keep", is_flag=True, help="Do not delete the container when it exits.")
@click.argument("container_id")
@click.pass_obj
def command(g, bundle, detach, pid_file, console_socket, no_pivot, no_new_keyring, preserve_fds, keep,
            container_id):
    """Create and start a container, wait for it, delete it; exit with its code."""
    return container.run(g.root, container_id, bundle, detach=detach, pid_file=pid_file,
                         console_socket=console_socket, no_pivot=no_pivot, preserve_fds=preserve_fds,
                         keep=keep)
