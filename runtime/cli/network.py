"""`husk network create|ls|inspect|rm|prune`."""

import json

import click


def _root(g) -> str:
    return g.storage_root


@click.group()
def command():
    """Manage networks (a bridge and a subnet each)."""


@command.command()
@click.option("--subnet", help="IPv4 subnet, e.g. 10.90.0.0/24 (default: a free 10.x.0.0/24).")
@click.option("--gateway", help="The bridge's address (default: the subnet's first).")
@click.option("--bridge", help="Bridge interface name (default: husk-NAME).")
@click.option("--mtu", type=click.IntRange(576, 65535), default=1500, show_default=True)
@click.argument("name")
@click.pass_obj
def create(g, subnet, gateway, bridge, mtu, name):
    """Create a network."""
    from runtime.engine.network import networks

    net = networks.create(_root(g), name, subnet, bridge=bridge, gateway=gateway, mtu=mtu)
    click.echo(net.name)


@command.command("ls")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_obj
def ls(g, fmt):
    """List networks."""
    from dataclasses import asdict

    from runtime.engine.network import networks

    nets = networks.listing(_root(g))
    if fmt == "json":
        click.echo(json.dumps([asdict(n) for n in nets], indent=2))
        return
    click.echo(f"{'NAME':20} {'BRIDGE':16} {'SUBNET':18} GATEWAY")
    for n in nets:
        click.echo(f"{n.name:20} {n.bridge:16} {n.subnet:18} {n.gateway}")


@command.command()
@click.argument("names", nargs=-1, required=True)
@click.pass_obj
def inspect(g, names):
    """Show networks and the containers on them."""
    from runtime.engine.network import manage

    click.echo(json.dumps([manage.inspect(_root(g), n) for n in names], indent=2))


@command.command()
@click.argument("names", nargs=-1, required=True)
@click.pass_obj
def rm(g, names):
    """Remove networks no container uses (with their bridges and rules)."""
    from runtime.engine.network import manage

    for n in names:
        manage.remove(_root(g), n)
        click.echo(n)


@command.command()
@click.pass_obj
def prune(g):
    """Remove every network no container uses, and husk's nftables table once unused."""
    from runtime.engine.network import manage

    for n in manage.prune(_root(g)):
        click.echo(n)
