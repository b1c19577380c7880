"""docker's --format for listings (ps, stats, volume ls): `json`, a Go
template per row ({{.Name}}), or `table TEMPLATE`, a headed table with
the columns lined up."""

import json

import click


def print_rows(rows: list[dict], fmt: str | None, default_table: str, headers: dict[str, str]) -> None:
    from runtime.engine.inspect import render, template_fields

    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    template = default_table if fmt in (None, "table") else fmt
    if not template.startswith("table"):
        for r in rows:
            click.echo(render(template, r))
        return
    template = template[len("table"):].strip().replace("\\t", "\t")
    table = [[headers.get(name, name.upper()) for name in template_fields(template)]]
    table += [render(template, r).split("\t") for r in rows]
    widths = [max(len(row[i]) for row in table if i < len(row)) for i in range(len(table[0]))]
    for row in table:
        click.echo("   ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
