"""A Dockerfile, read into instructions: the subset `husk build` runs.

    FROM image|stage|scratch [AS name]   RUN cmd | ["prog", "arg"]
    COPY [--chown=U:G] [--from=stage|image] src... dest
    ADD (as COPY, and local tar archives unpacked)
    WORKDIR dir    ENV k=v ...      ARG name[=default]     USER u[:g]
    EXPOSE 80 53/udp                LABEL k=v ...          STOPSIGNAL SIG
    CMD / ENTRYPOINT (shell or JSON form)                  SHELL ["sh", "-c"]
    VOLUME /dir | ["/dir"]

Lines end with a backslash to continue; `#` starts a comment line.
Each FROM starts a stage (stages()); ARGs before the first FROM are the
build's global ARGs, seen by FROM lines and by a stage's `ARG NAME`.
$VAR, ${VAR}, ${VAR:-default} and ${VAR:+alt} are replaced in the
arguments of the instructions docker replaces them in (not in RUN, CMD
and ENTRYPOINT: their shell does that, at run time).  Each problem is
an error naming the file and line.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field

from runtime.core.errors import ImageError

SUPPORTED = {"FROM", "RUN", "COPY", "ADD", "WORKDIR", "ENV", "ARG", "USER", "EXPOSE", "LABEL", "STOPSIGNAL",
             "CMD", "ENTRYPOINT", "SHELL", "VOLUME"}
NOT_YET = {"ONBUILD", "HEALTHCHECK", "MAINTAINER"}
# docker replaces variables in these instructions' arguments
EXPANDED = {"FROM", "COPY", "ADD", "WORKDIR", "ENV", "ARG", "USER", "EXPOSE", "LABEL", "STOPSIGNAL", "VOLUME"}
_VAR = re.compile(r"\\\$|\$(?:\{(\w+)(?::([-+])([^}]*))?\}|(\w+))")


@dataclass
class Instruction:
    keyword: str
    args: str  # as written (after line continuation)
    line: int
    json: list[str] | None = None  # the JSON (exec) form, when given
    flags: dict[str, str] = field(default_factory=dict)  # --chown=..., --from=...

    @property
    def where(self) -> str:
        return f"Dockerfile:{self.line}"

    def text(self) -> str:
        flags = " ".join(f"--{k}={v}" for k, v in self.flags.items())
        return " ".join(p for p in (self.keyword, flags, self.args) if p)


def parse(text: str) -> list[Instruction]:
    out: list[Instruction] = []
    pending, start = "", 0
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue  # a comment inside a continued instruction
        if not pending:
            start = n
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        out.append(_instruction(pending + line, start))
        pending = ""
    if pending:
        out.append(_instruction(pending, start))
    if not out or out[0].keyword not in ("FROM", "ARG"):
        raise ImageError("Dockerfile", "the first instruction must be FROM")
    return out


def _instruction(text: str, line: int) -> Instruction:
    keyword, _, args = text.strip().partition(" ")
    keyword = keyword.upper()
    where = f"Dockerfile:{line}"
    if keyword in NOT_YET:
        raise ImageError(where, f"{keyword} is not supported by husk build yet")
    if keyword not in SUPPORTED:
        raise ImageError(where, f"unknown instruction {keyword!r}")
    args = args.strip()
    ins = Instruction(keyword, args, line)
    while keyword in ("COPY", "ADD", "FROM", "RUN") and ins.args.startswith("--"):
        flag, _, rest = ins.args.partition(" ")
        name, _, value = flag[2:].partition("=")
        if (keyword, name) not in (("COPY", "chown"), ("ADD", "chown"), ("COPY", "chmod"), ("ADD", "chmod"),
                                   ("COPY", "from"), ("FROM", "platform")):
            raise ImageError(where, f"{keyword} {flag}: not supported by husk build "
                             f"(it knows --chown and --chmod on COPY and ADD, and COPY --from)")
        ins.flags[name] = value
        ins.args = rest.strip()
    if keyword in ("RUN", "CMD", "ENTRYPOINT", "SHELL", "COPY", "ADD", "VOLUME") and ins.args.startswith("["):
        try:
            value = json.loads(ins.args)
        except ValueError:
            value = None
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            ins.json = value
        elif keyword == "SHELL":
            raise ImageError(where, "SHELL takes a JSON list of strings")
    if keyword == "SHELL" and ins.json is None:
        raise ImageError(where, "SHELL takes a JSON list of strings")
    if not ins.args and keyword not in ("CMD", "ENTRYPOINT"):
        raise ImageError(where, f"{keyword} needs arguments")
    return ins


@dataclass
class Stage:
    """FROM and the instructions up to the next FROM."""

    index: int
    name: str | None  # FROM ... AS name, lower-cased as docker compares it
    base: str  # what FROM names (variables not yet replaced)
    steps: list[Instruction]


def stages(steps: list[Instruction]) -> tuple[list[Instruction], list[Stage]]:
    """(the global ARGs before the first FROM, the stages)."""
    global_args: list[Instruction] = []
    out: list[Stage] = []
    for ins in steps:
        if ins.keyword == "FROM":
            words = ins.args.split()
            if len(words) not in (1, 3) or (len(words) == 3 and words[1].upper() != "AS"):
                raise ImageError(ins.where, f"FROM {ins.args!r}: expected IMAGE [AS NAME]")
            name = words[2].lower() if len(words) == 3 else None
            if name and any(s.name == name for s in out):
                raise ImageError(ins.where, f"FROM ... AS {name}: a stage of that name comes before")
            out.append(Stage(len(out), name, words[0], [ins]))
        elif not out:
            if ins.keyword != "ARG":
                raise ImageError(ins.where, f"{ins.keyword} before the first FROM: only ARG may come there")
            global_args.append(ins)
        else:
            out[-1].steps.append(ins)
    if not out:
        raise ImageError("Dockerfile", "no FROM")
    return global_args, out


def expand(text: str, env: dict[str, str], where: str) -> str:
    """docker's variable replacement: $VAR, ${VAR}, ${VAR:-default},
    ${VAR:+alt}; \\$ is a literal $; an unset VAR is empty."""
    def one(m: re.Match) -> str:
        if m.group(0) == "\\$":
            return "$"
        name = m.group(1) or m.group(4)
        value = env.get(name, "")
        if m.group(2) == "-":
            return value or m.group(3)
        if m.group(2) == "+":
            return m.group(3) if value else ""
        return value

    return _VAR.sub(one, text)


def pairs(ins: Instruction, env: dict[str, str]) -> list[tuple[str, str]]:
    """ENV and LABEL: k=v pairs (quoted as the shell quotes), or the old
    `ENV key value with spaces` form."""
    words = _split(ins)
    if ins.keyword == "ENV" and words and "=" not in words[0]:
        key, _, value = ins.args.partition(" ")
        return [(key, expand(value.strip(), env, ins.where))]
    out = []
    for w in words:
        key, sep, value = w.partition("=")
        if not sep or not key:
            raise ImageError(ins.where, f"{ins.keyword} {w!r}: expected KEY=VALUE")
        out.append((key, expand(value, env, ins.where)))
    return out


def words(ins: Instruction, env: dict[str, str]) -> list[str]:
    """COPY/ADD/EXPOSE/VOLUME arguments, variables replaced."""
    items = ins.json if ins.json is not None else _split(ins)
    return [expand(w, env, ins.where) for w in items]


def _split(ins: Instruction) -> list[str]:
    try:
        return shlex.split(ins.args, posix=True)
    except ValueError as e:
        raise ImageError(ins.where, f"{ins.keyword}: {e}") from None
