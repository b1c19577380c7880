"""--explain=html: one self-contained page (no network, nothing outside
it) with the steps on a time axis, one lane per mechanism, and each step
in full below: its call, why it is there, and a link to its source line.

The steps travel in the page as JSON and a short script draws them, so
the page a browser shows is the same data --explain=json gives.
"""

from __future__ import annotations

import html as _html
import json
import os
import shlex

from runtime.core.explain import Timeline
from runtime.core.explain.render import as_json


PACKAGE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # .../runtime


def locate(path: str) -> str | None:
    """The file a step's source names (native/src/rootfs.c, runtime/...):
    in HUSK_SOURCE, in the tree runtime/ was imported from (a checkout,
    or site-packages for Python's), or the C sources setup.py installs
    beside it (runtime/_source)."""
    tops = (os.environ.get("HUSK_SOURCE"), os.path.dirname(PACKAGE), os.path.join(PACKAGE, "_source"))
    for top in tops:
        if top and os.path.isfile(os.path.join(top, path)):
            return os.path.join(top, path)
    return None


def _code(path: str | None, line: int, before: int = 4, after: int = 1) -> list[list]:
    """[number, text] of the lines around LINE, for the page to show:
    more before it, where the system call a TRACE records is made."""
    if path is None:
        return []
    with open(path, errors="replace") as f:
        lines = f.read().splitlines()
    return [[n, lines[n - 1]] for n in range(max(1, line - before), min(len(lines), line + after) + 1)]


def html(timeline: Timeline) -> str:
    data = as_json(timeline)
    files: dict[str, str | None] = {}
    for s in data["steps"]:
        path, _, line = s["source"].rpartition(":")
        if path not in files:
            files[path] = locate(path)
        s["href"] = (f"file://{files[path]}" if files[path] else path) + f"#L{line}"
        s["code"] = _code(files[path], int(line))
    payload = json.dumps(data).replace("</", "<\\/")  # nothing in it can end the script element
    title = f"husk --explain: husk {shlex.join(timeline.command)}"
    return _PAGE.replace("@TITLE@", _html.escape(title)).replace("@DATA@", payload)


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>@TITLE@</title>
<style>
body { font: 15px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 70em; padding: 0 1em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.6em; border-bottom: 1px solid #ddd; }
code, .call { font-family: ui-monospace, monospace; font-size: 0.9em; }
.intro { color: #444; max-width: 55em; }
svg.axis { width: 100%; border: 1px solid #ddd; background: #fafafa; }
svg.axis text { font: 12px system-ui, sans-serif; fill: #333; }
svg.axis circle { cursor: pointer; stroke: #fff; stroke-width: 1; }
.legend span { display: inline-block; margin-right: 1.2em; }
.legend i { display: inline-block; width: .8em; height: .8em; border-radius: 50%; margin-right: .3em; }
.step { border-left: 4px solid #ccc; padding: .3em .8em; margin: .5em 0; }
.step:target { background: #fff7d6; }
.meta { color: #666; font-size: .85em; }
.why { margin: .2em 0; }
.call { white-space: pre-wrap; word-break: break-all; }
pre.code { background: #f4f4f4; margin: .3em 0; padding: .3em .5em; font-size: .8em; overflow-x: auto; }
pre.code .here { font-weight: bold; background: #fff3b0; }
</style>
</head>
<body>
<h1 id="title"></h1>
<p class="intro">Every step husk took to isolate this process, in the order it took them, recorded where each
happened: Python's planning, the C front end, and <code>husk-init</code> (first in the host's namespaces, then as
the container's init, up to <code>execve</code>). Each dot on the axis is one step, in its mechanism's lane; click
one to read it below: the system call with its arguments, what it protects against, and the line of code that
made it.</p>
<p class="legend" id="legend"></p>
<svg id="axis" class="axis" role="img" aria-label="every step on a time axis"></svg>
<p class="intro">husk-init alone, from its start to <code>execve</code>: the isolation itself, on a scale of its
own.</p>
<svg id="axis-init" class="axis" role="img" aria-label="husk-init's steps on a time axis"></svg>
<div id="steps"></div>
<script type="application/json" id="data">@DATA@</script>
<script>
"use strict";
(() => {  // nothing of the page's in the window's globals (window.top, ...)
const data = JSON.parse(document.getElementById("data").textContent);
const colors = {"planning": "#7b61ff", "engine": "#0a8f6a", "front end": "#1f6fd1", "husk-init": "#d1741f",
                "container init": "#c8324b"};
function el(name, attrs, text) {
  const e = document.createElement(name);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}
document.getElementById("title").textContent =
  "husk " + data.command.join(" ") + ": " + data.steps.length + " steps in " +
  (data.duration_us / 1000).toFixed(1) + " ms, exit " + data.exit_code;
const legend = document.getElementById("legend");
for (const [who, color] of Object.entries(colors)) {
  const span = el("span"); const dot = el("i"); dot.style.background = color;
  span.append(dot, who); legend.append(span);
}
const lanes = [];
for (const s of data.steps) if (!lanes.includes(s.mechanism)) lanes.push(s.mechanism);
const SVG = "http://www.w3.org/2000/svg";
function svgEl(name, attrs, text) {
  const e = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}
// One axis: the lanes of the steps given, on a time scale of their own.
function drawAxis(svg, picked) {
  const own = lanes.filter(lane => picked.some(([s]) => s.mechanism === lane));
  const width = 1000, left = 130, laneHeight = 22, laneTop = 26;
  svg.setAttribute("viewBox", "0 0 " + width + " " + (laneTop + own.length * laneHeight + 10));
  const start = picked.length ? picked[0][0].t_us : 0;
  const span = Math.max((picked.length ? picked[picked.length - 1][0].t_us : 0) - start, 1);
  const x = t => left + (width - left - 20) * (t - start) / span;
  for (let i = 0; i <= 4; i++)
    svg.append(svgEl("text", {"x": x(start + span * i / 4), "y": 14, "text-anchor": "middle"},
                     "+" + ((start + span * i / 4) / 1000).toFixed(1) + " ms"));
  own.forEach((lane, i) => svg.append(svgEl("text", {"x": 4, "y": laneTop + i * laneHeight + 15}, lane)));
  for (const [s, n] of picked) {
    const dot = svgEl("circle", {"cx": x(s.t_us), "cy": laneTop + own.indexOf(s.mechanism) * laneHeight + 11,
                                 "r": 5, "fill": colors[s.who] || "#888"});
    dot.append(svgEl("title", {}, s.call));
    dot.addEventListener("click", () => { location.hash = "step-" + n; });
    svg.append(dot);
  }
}
const all = data.steps.map((s, n) => [s, n]);
drawAxis(document.getElementById("axis"), all);
const inInit = ([s]) => s.who === "husk-init" || s.who === "container init";
drawAxis(document.getElementById("axis-init"), all.filter(inInit));
const sections = {};
const box = document.getElementById("steps");
for (const lane of lanes) {
  const section = el("section", {"id": "mechanism-" + lane.replace(/\\W+/g, "-")});
  section.append(el("h2", {}, lane));
  box.append(section); sections[lane] = section;
}
data.steps.forEach((s, n) => {
  const id = "step-" + n;
  const div = el("div", {"class": "step", "id": id});
  div.style.borderLeftColor = colors[s.who] || "#888";
  div.append(el("div", {"class": "meta"}, "+" + (s.t_us / 1000).toFixed(3) + " ms, " + s.who + ", " + s.step));
  div.append(el("div", {"class": "call"}, s.call));
  if (s.why) div.append(el("div", {"class": "why"}, s.why));
  const where = el("div", {"class": "meta"});
  where.append("at ", el("a", {"href": s.href}, s.source));
  div.append(where);
  if (s.code.length) {
    const pre = el("pre", {"class": "code"});
    for (const [number, text] of s.code) {
      const row = el("span", number === Number(s.source.split(":").pop()) ? {"class": "here"} : {},
                     String(number).padStart(5) + "  " + text + "\\n");
      pre.append(row);
    }
    div.append(pre);
  }
  sections[s.mechanism].append(div);
});
// A link to one step (page.html#step-N) finds it once the steps exist.
const target = location.hash && document.getElementById(location.hash.slice(1));
if (target) target.scrollIntoView();
})();
</script>
</body>
</html>
"""
