""".dockerignore: the context's files that COPY and ADD do not see.

One pattern a line, relative to the context (a leading / is dropped),
`#` lines are comments; `*`, `?` and `[...]` match within one path
element and `**` any number of them; a pattern that matches a directory
hides everything below it; `!pattern` brings back what an earlier
pattern hid.  The last pattern that matches a path decides, as docker's
does.
"""

from __future__ import annotations

import os
import posixpath
import re


class Ignore:
    def __init__(self, patterns: list[tuple[re.Pattern, bool]]) -> None:
        self.patterns = patterns  # (regex, is an exception "!")

    @classmethod
    def load(cls, context: str) -> Ignore:
        try:
            with open(os.path.join(context, ".dockerignore")) as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            return cls([])
        patterns = []
        for line in lines:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            negate = line.startswith("!")
            text = posixpath.normpath(line[1:].strip() if negate else line).lstrip("/")
            if text in ("", "."):
                continue
            patterns.append((_regex(text), negate))
        return cls(patterns)

    def ignored(self, rel: str) -> bool:
        """Whether the context path REL (a/b/c) is hidden: by a pattern that
        matches it or one of its parent directories, the last one deciding."""
        rel = posixpath.normpath(rel).lstrip("/")
        parts = rel.split("/")
        prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
        hidden = False
        for regex, negate in self.patterns:
            if any(regex.fullmatch(p) for p in prefixes):
                hidden = not negate
        return hidden


def _regex(pattern: str) -> re.Pattern:
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        elif pattern[i] == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                out += re.escape("[")
                i += 1
            else:
                body = pattern[i + 1:end]
                out += "[" + ("^" + body[1:] if body.startswith("!") else body) + "]"
                i = end + 1
        elif pattern[i] == "\\" and i + 1 < len(pattern):
            out += re.escape(pattern[i + 1])
            i += 2
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out)
