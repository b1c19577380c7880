"""--explain's timeline as text (for a person at a terminal) and as JSON
(for tools; SCHEMA is its JSON Schema)."""

from __future__ import annotations

import json
import shlex
import textwrap

from runtime.core.explain import Timeline

VERSION = 1

SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "husk --explain=json",
    "type": "object",
    "required": ["husk_explain", "command", "exit_code", "started_us", "duration_us", "steps"],
    "additionalProperties": False,
    "properties": {
        "husk_explain": {"const": VERSION},
        "command": {"type": "array", "items": {"type": "string"}},
        "exit_code": {"type": "integer"},
        "started_us": {"type": "integer", "description": "wall clock of the first step, µs since the epoch"},
        "duration_us": {"type": "integer", "minimum": 0},
        "steps": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["t_us", "who", "mechanism", "step", "call", "source", "why"],
                "additionalProperties": False,
                "properties": {
                    "t_us": {"type": "integer", "minimum": 0, "description": "µs since the first step"},
                    "who": {"enum": ["planning", "engine", "front end", "husk-init", "container init"]},
                    "mechanism": {"type": "string", "minLength": 1},
                    "step": {"type": "string", "minLength": 1},
                    "call": {"type": "string"},
                    "source": {"type": "string", "pattern": r"^(native|runtime)/[^:]+:[0-9]+$"},
                    "why": {"type": "string"},
                },
            },
        },
    },
}


def as_json(timeline: Timeline) -> dict:
    return {"husk_explain": VERSION, "command": timeline.command, "exit_code": timeline.exit_code,
            "started_us": timeline.started_us, "duration_us": timeline.duration_us,
            "steps": [s.as_json() for s in timeline.steps]}


def json_text(timeline: Timeline) -> str:
    return json.dumps(as_json(timeline), indent=2) + "\n"


def text(timeline: Timeline) -> str:
    """Each step: when, what mechanism, who took it; the call; why; where."""
    out = [f"husk --explain: {len(timeline.steps)} steps in {timeline.duration_us / 1000:.1f} ms, "
           f"`husk {shlex.join(timeline.command)}` exited {timeline.exit_code}", ""]
    wrap = textwrap.TextWrapper(width=100, initial_indent="    ", subsequent_indent="      ", break_long_words=False,
                                break_on_hyphens=False)
    explained = set()  # a step's why once, at its first time: the rest are more of the same
    for s in timeline.steps:
        out.append(f"+{s.t_us / 1000:8.3f} ms  {s.mechanism}  ({s.who})")
        out.extend(wrap.wrap(s.call))
        if s.why and s.why not in explained:
            explained.add(s.why)
            out.extend(wrap.wrap(f"-> {s.why}"))
        out.append(f"    at {s.source}")
    names = {s.step for s in timeline.steps}
    if "ready" in names and "execve" not in names:
        out += ["", "The process waits for `husk start`: its last steps (startContainer hooks, a seccomp filter under",
                "no_new_privs, execve) happen then."]
    out.append("")
    return "\n".join(out) + "\n"
