"""--explain and --explain-file, shared by run, create and exec
(runtime/core/explain has the story)."""

import click

FORMATS = ("text", "json", "html")


def explain_options(command):
    command = click.option("--explain-file", metavar="FILE",
                           help="Write --explain's timeline to FILE instead of stderr.")(command)
    return click.option("--explain", type=click.Choice(FORMATS), is_flag=False, flag_value="text", default=None,
                        help="After the run, show every step that isolated the process: text (the default), json "
                             "or html.")(command)


def begin(fmt: str | None, out_path: str | None, *, preserve_fds: int = 0, refuse: str | None = None) -> bool:
    """With --explain, go on in a child whose steps are recorded (True);
    this process shows them when it ends, and never returns.  REFUSE: why
    this form of the command cannot be explained."""
    if fmt is None:
        if out_path is not None:
            raise click.UsageError("--explain-file needs --explain")
        return False
    if refuse:
        raise click.UsageError(f"--explain: {refuse}")
    from runtime.core.explain import run_explained

    run_explained(fmt, out_path, above=3 + preserve_fds)
    return True
