import click


@click.command()
@click.option("--force", "-f", is_flag=True, help="Kill the container first if it is running.")
@click.option("--volumes", "-v", is_flag=True, help="Remove its anonymous volumes too.")
@click.argument("containers", nargs=-1, required=True)
@click.pass_obj
def command(g, force, volumes, containers):
    """Remove containers made by `husk run IMAGE` (their rootfs and changes)."""
    from runtime.engine.run import remove

    for text in containers:
        click.echo(remove(g.root, g.storage_root, text, force, remove_volumes=volumes))
