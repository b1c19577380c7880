import click

from runtime import container


@click.command()
@click.option("--bundle", "-b", default=".", help="Path to the bundle (config.json and rootfs).")
@click.option("--pid-file", help="Write the container's host pid here.")
@click.option("--console-socket", help="Unix socket that receives the pty master (process.terminal).")
@click.option("--no-pivot", is_flag=True, help="Use MS_MOVE + chroot instead of pivot_root (ramfs roots).")
@click.option("--no-new-keyring", is_flag=True, help="Keep the caller's session keyring (default: a new one per container).")
@click.option("--preserve-fds", type=click.IntRange(min=0), default=0, help="Pass fds 3..3+N-1 to the process.")
@click.argument("container_id")
@click.pass_obj
def command(g, bundle, pid_file, console_socket, no_pivot, no_new_keyring, preserve_fds, container_id):
    """Create a container: set everything up and wait for `start`."""
    container.create(g.root, container_id, bundle, pid_file=pid_file, console_socket=console_socket,
                     no_pivot=no_pivot, preserve_fds=preserve_fds, no_new_keyring=no_new_keyring)
