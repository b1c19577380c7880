import click


@click.command()
@click.option("--time", "-t", "timeout", type=click.IntRange(min=0), default=None,
              help="Seconds to wait after the stop signal before SIGKILL (default 10).")
@click.argument("names", nargs=-1, required=True)
@click.pass_obj
def command(g, timeout, names):
    """Stop image containers (if running) and start them again."""
    from runtime.engine import lifecycle

    for name in names:
        lifecycle.stop(g.root, g.storage_root, name, timeout)
        click.echo(lifecycle.start(g.root, g.storage_root, name).name)
