"""`husk cp`: files between the host and an image container (engine.cp)."""

import click


@click.command()
@click.option("-a", "--archive", is_flag=True, help="Keep the source's owners (uid:gid); by default copies belong to root.")
@click.option("-L", "--follow-link", is_flag=True, help="Follow a symlink SRC (inside the container's root, for a container path).")
@click.argument("src")
@click.argument("dest")
@click.pass_obj
def command(g, archive, follow_link, src, dest):
    """Copy files between a container and the host: CONTAINER:SRC DEST, or SRC CONTAINER:DEST.

    A DEST that is a directory receives SRC under its own name; SRC/. copies a directory's contents.
    Container paths are resolved inside the container's root (its links never lead out of it)."""
    from runtime.engine.cp import copy

    copy(g.storage_root, src, dest, archive=archive, follow=follow_link)
