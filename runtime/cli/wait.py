import click


@click.command()
@click.argument("names", nargs=-1, required=True)
@click.pass_obj
def command(g, names):
    """Block until image containers stop; print each one's exit code."""
    from runtime.engine import lifecycle

    for name in names:
        click.echo(lifecycle.wait(g.root, g.storage_root, name))
