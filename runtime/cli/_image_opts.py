"""Options shared by the commands that talk to registries."""

import click


def registry_options(f):
    f = click.option("--authfile", envvar="REGISTRY_AUTH_FILE",
                     help="Credentials file (Docker config.json format).")(f)
    f = click.option("--cert-dir", type=click.Path(file_okay=False),
                     help="Directory of CA certificates (*.crt) and client.cert/client.key.")(f)
    f = click.option("--tls-verify/--no-tls-verify", "tls_verify", default=True, show_default=True,
                     help="Verify the registry's TLS certificate; off also allows plain HTTP.")(f)
    return f


def store(g):
    from runtime.engine.image.store import Store

    return Store(g.storage_root)
