import click

from runtime.cli._image_opts import FlagForms, registry_options, store


@click.command(cls=FlagForms)
@click.option("--quiet", "-q", is_flag=True, help="No progress; print only the last line.")
@registry_options
@click.argument("image")
@click.pass_obj
def command(g, quiet, authfile, cert_dir, tls_verify, image):
    """Send an image to the registry its name holds (REGISTRY/REPO[:TAG]; husk tag gives it one)."""
    from runtime.engine.image import push

    click.echo(push.push(store(g), image, tls_verify=tls_verify, cert_dir=cert_dir, authfile=authfile,
                         quiet=quiet))
