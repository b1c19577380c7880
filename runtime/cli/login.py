import click

from runtime.cli._image_opts import FlagForms, registry_options


@click.command(cls=FlagForms)
@click.option("--username", "-u", help="Registry user.")
@click.option("--password", "-p", help="Password (prefer --password-stdin).")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin.")
@registry_options
@click.argument("registry")
@click.pass_obj
def command(g, username, password, password_stdin, authfile, cert_dir, tls_verify, registry):
    """Check credentials against a registry and store them (Docker's config.json format)."""
    import sys

    from runtime.core.errors import HuskError
    from runtime.engine.image import auth
    from runtime.engine.image.registry import Registry

    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    if not username:
        username = click.prompt("Username")
    if password is None:
        password = click.prompt("Password", hide_input=True)
    if not username or not password:
        raise HuskError("login", "a username and a password are needed")
    from runtime.engine.image.pull import retrying

    r = Registry(registry, tls_verify=tls_verify, cert_dir=cert_dir, credentials=(username, password))
    retrying(f"login {registry}", lambda _: r.ping())
    path = auth.store(registry, username, password, authfile)
    click.echo(f"Login Succeeded (credentials in {path})")
