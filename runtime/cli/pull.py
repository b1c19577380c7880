import click

from runtime.cli._image_opts import FlagForms, registry_options, store


@click.command(cls=FlagForms)
@click.option("--platform", help="os/arch[/variant] to pick from a multi-platform image (default: this host).")
@click.option("--quiet", "-q", is_flag=True, help="Print only the image digest.")
@registry_options
@click.argument("image")
@click.pass_obj
def command(g, platform, quiet, authfile, cert_dir, tls_verify, image):
    """Pull an image from a registry into the store."""
    from runtime.engine.image import images

    digest = images.pull(store(g), image, platform=platform, tls_verify=tls_verify, cert_dir=cert_dir,
                         authfile=authfile, quiet=quiet)
    click.echo(digest)
