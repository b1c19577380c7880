import os

import click

from runtime.cli._explain import begin as begin_explain, explain_options
from runtime.cli._image_opts import FlagForms


@click.command(cls=FlagForms)
@click.option("--bundle", "-b", default=".", help="Path to the bundle (config.json and rootfs).")
@click.option("--pid-file", help="Write the container's host pid here.")
@click.option("--console-socket", help="Unix socket that receives the pty master (process.terminal).")
@click.option("--no-pivot", is_flag=True, help="Use MS_MOVE + chroot instead of pivot_root (ramfs roots).")
@click.option("--no-new-keyring", is_flag=True,
              help="Keep the caller's session keyring (default: a new one per container).")
@click.option("--preserve-fds", type=click.IntRange(min=0), default=0, help="Pass fds 3..3+N-1 to the process.")
@explain_options
@click.argument("container_id")
@click.pass_obj
def command(g, bundle, pid_file, console_socket, no_pivot, no_new_keyring, preserve_fds, explain, explain_file,
            container_id):
    """Create a container: set everything up and wait for `start`."""
    explaining = begin_explain(explain, explain_file, preserve_fds=preserve_fds)
    recipe_fd = os.environ.pop("HUSK_RECIPE_FD", None)
    if recipe_fd is not None:  # the C front end asks for a recipe instead (runtime/recipe.py)
        return compile_recipe(g, int(recipe_fd), bundle, container_id, console_socket, no_pivot, preserve_fds,
                              no_new_keyring)
    # The front end creates every container; it handed this one here to
    # have what is wrong with it named (or for --explain's sake: then it
    # names it itself, planning it afresh).
    from runtime.core import executor, recipe

    if not explaining:
        recipe.check_create(g.root, bundle, container_id, console_socket=console_socket, no_pivot=no_pivot,
                            preserve_fds=preserve_fds, no_new_keyring=no_new_keyring, systemd=g.systemd_cgroup)
    executor.again()


def compile_recipe(g, fd, bundle, container_id, console_socket, no_pivot, preserve_fds, no_new_keyring) -> int:
    from runtime.core import recipe

    try:
        order = os.environ.get("HUSK_MOUNT_ORDER")  # the front end's canonical order of the mounts
        data = recipe.compile_create(g.root, bundle, container_id, console_socket=console_socket is not None,
                                     no_pivot=no_pivot, preserve_fds=preserve_fds, no_new_keyring=no_new_keyring,
                                     mount_order=[int(i) for i in order.split(",") if i] if order is not None
                                     else None, systemd=g.systemd_cgroup)
    except recipe.Unfit as e:
        if g.debug:
            click.echo(f"husk: create: the fast path does not take this config ({e})", err=True)
        return recipe.EXIT_UNFIT
    recipe.write_recipe(fd, data)
    return 0
