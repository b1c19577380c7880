import click

from runtime.cli._image_opts import store


@click.command()
@click.option("--force", "-f", is_flag=True, help="Kill the container first if it is running.")
@click.argument("containers", nargs=-1, required=True)
@click.pass_obj
def command(g, force, containers):
    """Remove containers made by `husk run IMAGE` (their rootfs and changes)."""
    import contextlib

    from runtime.core import container
    from runtime.core.errors import HuskError, NotFound
    from runtime.engine.image import containers as ctrs

    s = store(g)
    for text in containers:
        record = ctrs.find(s, text)
        try:
            st = container.state(g.root, record["id"])
        except NotFound:
            st = None
        if st and st.get("status") in ("running", "created", "paused") and not force:
            raise HuskError("rm", f"container {record['name']} is {st['status']}: stop it or use --force")
        if st:
            with contextlib.suppress(NotFound):
                container.delete(g.root, record["id"], force=True)
        ctrs.destroy(s, record["id"])  # also its network and rootfs
        click.echo(record["name"])
