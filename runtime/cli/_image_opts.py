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


_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


class FlagForms(click.Command):
    """Accept podman's `--tls-verify=false` as well as `--no-tls-verify`,
    and `--explain` as well as `--explain=json`.

    podman's boolean flags take an optional `=VALUE` (Go's pflag); click's
    boolean flag pairs take none.  Before click parses, each `--FLAG=VALUE`
    of a flag pair becomes `--FLAG` or `--no-FLAG`.  An option whose value
    is optional (click's flag_value) takes it only after `=`: alone, it is
    `--OPTION=FLAG_VALUE`, so click never reads the next argument (the
    container's id, the image) as its value.  Only the command's own
    options are rewritten: the scan stops at `--` and, for commands whose
    options end at the first argument (run), at that argument, so a
    container's command line is never touched; the value of an option that
    takes one is skipped, not read as an option."""

    def parse_args(self, ctx, args):
        pairs = {o for p in self.params if isinstance(p, click.Option) and p.secondary_opts for o in p.opts}
        optional = {o: p.flag_value for p in self.params
                    if isinstance(p, click.Option) and getattr(p, "_flag_needs_value", False) for o in p.opts}
        takes_value = {o for p in self.params if isinstance(p, click.Option) and not p.is_flag for o in p.opts
                       if o not in optional}
        out, i = list(args), 0
        while i < len(out):
            token = out[i]
            if token == "--":
                break
            if not token.startswith("-") or token == "-":
                if not ctx.allow_interspersed_args:
                    break
            else:
                name, eq, value = token.partition("=")
                if eq and name in pairs:
                    if value.lower() in _TRUE:
                        out[i] = name
                    elif value.lower() in _FALSE:
                        out[i] = "--no-" + name[2:]
                    else:
                        raise click.BadParameter(f"{value!r} is not a boolean", param_hint=name)
                elif not eq and name in optional:
                    out[i] = f"{name}={optional[name]}"
                elif not eq and name in takes_value:
                    i += 1  # its value
            i += 1
        return super().parse_args(ctx, out)
