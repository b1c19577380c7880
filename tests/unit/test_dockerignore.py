""".dockerignore matching (runtime/engine/build/ignore.py), docker's rules."""

import pytest

from runtime.engine.build.ignore import Ignore


def rules(tmp_path, text):
    (tmp_path / ".dockerignore").write_text(text)
    return Ignore.load(str(tmp_path))


@pytest.mark.parametrize("text,path,hidden", [
    ("*.log\n", "debug.log", True),
    ("*.log\n", "sub/debug.log", False),  # * stays within one path element
    ("**/*.log\n", "sub/deep/debug.log", True),
    ("**/*.log\n", "top.log", True),
    ("sub\n", "sub/anything/below", True),  # a directory hides what is below it
    ("/sub\n", "sub/x", True),  # a leading / is the context's root
    ("*.log\n!keep.log\n", "keep.log", False),  # ! brings back
    ("!keep.log\n*.log\n", "keep.log", True),  # the last match decides
    ("# a comment\n\n", "x", False),
    ("dir/?.txt\n", "dir/a.txt", True),
    ("dir/?.txt\n", "dir/ab.txt", False),
    ("[a-c].md\n", "b.md", True),
    ("[!a-c].md\n", "b.md", False),
    ("./sub/../secret\n", "secret", True),  # patterns are cleaned
])
def test_patterns(tmp_path, text, path, hidden):
    assert rules(tmp_path, text).ignored(path) is hidden


def test_no_file_hides_nothing(tmp_path):
    assert not Ignore.load(str(tmp_path)).ignored("anything")
