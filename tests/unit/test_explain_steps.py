"""--explain without root: every step the code records has its
explanation, the timeline is put in time order and rendered as the JSON
schema says, and the command line takes `--explain` alone before an id."""

from __future__ import annotations

import json
import os
import re

import click
import jsonschema

from runtime.cli._explain import explain_options
from runtime.cli._image_opts import FlagForms
from runtime.core.explain import load, without_explain
from runtime.core.explain.render import SCHEMA, as_json, text
from runtime.core.explain.why import NAMESPACES, STEPS, why

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def recorded_steps() -> set[str]:
    """Every step name a TRACE (C) or trace.step (Python) call gives."""
    names = set()
    for top, pattern in (("native", r'TRACE \(\s*"[^"]+",\s*"([^"]+)"'),
                         ("runtime", r'trace\.step\(\s*"[^"]+",\s*"([^"]+)"')):
        for dirpath, _, files in os.walk(os.path.join(REPO, top)):
            for name in files:
                if name.endswith((".c", ".py")):
                    with open(os.path.join(dirpath, name)) as f:
                        names |= set(re.findall(pattern, f.read()))
    return names


def test_every_recorded_step_is_explained():
    names = recorded_steps()
    assert {"clone", "mount", "pivot_root", "seccomp", "capset", "execve", "cgroup_write", "overlay"} <= names
    missing = sorted(n for n in names if n != "namespace" and n not in STEPS)
    assert not missing, f"steps with no line in runtime/core/explain/why.py: {missing}"
    for flag in ("CLONE_NEWPID", "CLONE_NEWNS", "CLONE_NEWNET", "CLONE_NEWUTS", "CLONE_NEWIPC", "CLONE_NEWUSER",
                 "CLONE_NEWCGROUP", "CLONE_NEWTIME"):
        assert why("namespace", f"{flag}: a new namespace") == NAMESPACES[flag]
    assert "cgroup.procs" not in why("cgroup_write", "write /x/memory.max: 1") and \
        "born inside" in why("cgroup_write", "write /x/cgroup.procs: 7")


def line(t, who, step, call, source="native/src/main.c:1"):
    return json.dumps({"t_us": t, "who": who, "source": source, "mechanism": "m", "step": step, "call": call})


def test_timeline_is_in_time_order_and_matches_the_schema():
    lines = [line(1_000_300, "container init", "pivot_root", "pivot_root(\".\", \".\")"),
             line(1_000_000, "front end", "state", "mkdir"),
             "{cut short by a process that died mid-wri",
             line(1_000_100, "husk-init", "clone", "clone(CLONE_NEWPID) = 7", "native/src/main.c:12")]
    timeline = load(lines, ["run", "-b", ".", "x"], 0)
    assert [s.step for s in timeline.steps] == ["state", "clone", "pivot_root"]
    assert [s.t_us for s in timeline.steps] == [0, 100, 300]
    assert timeline.duration_us == 300 and timeline.started_us == 1_000_000
    jsonschema.validate(as_json(timeline), SCHEMA)
    bad = as_json(timeline)
    bad["steps"][0]["source"] = "/etc/passwd"
    try:
        jsonschema.validate(bad, SCHEMA)
        raise AssertionError("a source outside the tree validated")
    except jsonschema.ValidationError:
        pass
    shown = text(timeline)
    assert "3 steps in 0.3 ms" in shown and "at native/src/main.c:12" in shown
    assert shown.count(STEPS["clone"][:40]) == 1


def test_explain_alone_never_takes_the_next_argument():
    seen = {}

    @click.command(cls=FlagForms, context_settings={"allow_interspersed_args": False})
    @click.option("--bundle", "-b")
    @explain_options
    @click.argument("cid")
    @click.argument("rest", nargs=-1)
    def command(**kw):
        seen.update(kw)

    for argv, fmt, cid, rest in ((["--explain", "c1"], "text", "c1", ()),
                                 (["--explain=json", "-b", "x", "c1"], "json", "c1", ()),
                                 (["-b", "--explain", "--explain", "c1"], "text", "c1", ()),
                                 (["c1", "--explain"], None, "c1", ("--explain",))):
        seen.clear()
        command(argv, standalone_mode=False)
        assert (seen["explain"], seen["cid"], seen["rest"]) == (fmt, cid, rest), argv
    assert without_explain(["--explain=html", "--explain-file", "p.html", "run", "-b", ".", "x"]) == \
        ["run", "-b", ".", "x"]
