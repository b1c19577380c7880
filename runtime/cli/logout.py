import click


@click.command()
@click.option("--authfile", envvar="REGISTRY_AUTH_FILE", help="Credentials file (Docker config.json format).")
@click.argument("registry")
@click.pass_obj
def command(g, authfile, registry):
    """Forget the credentials stored for a registry."""
    from runtime.core.errors import HuskError
    from runtime.engine.image import auth

    if not auth.remove(registry, authfile):
        raise HuskError("logout", f"not logged in to {registry}")
    click.echo(f"Removed login credentials for {registry}")
