""".dockerignore reading and matching as Docker does, and the build context it filters."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubelite.images.build.context import ContextTree
from kubelite.images.build.dockerignore import IgnoreError, Matcher, matcher_from_text, read_patterns
from kubelite.images.build.rootview import glob


def test_reading_cleans_patterns() -> None:
    text = "\ufeff# comment\n  node_modules/  \n\n/abs//path/./x\n! keep.log\n #not a comment\n"
    assert read_patterns(text) == ["node_modules", "abs/path/x", "!keep.log", "#not a comment"]


IGNORE = """
node_modules
*.log
!keep.log
**/tmp
docs/**/*.md
!docs/keep/**
build?/
[ab].txt
"""


@pytest.mark.parametrize(("path", "excluded"), [
    ("node_modules", True), ("node_modules/x/y.js", True),  # a match excludes everything below
    ("a.log", True), ("keep.log", False), ("sub/a.log", False),  # * never crosses /
    ("tmp", True), ("x/tmp", True), ("x/y/tmp/z", True),  # **/ matches zero or more directories
    ("docs/a.md", True), ("docs/x/y/b.md", True), ("docs/keep/c.md", False), ("docs/a.txt", False),
    ("build1/out", True), ("build/out", False), ("a.txt", True), ("c.txt", False), ("src/main.py", False),
    (".", False),
])
def test_matching(path: str, excluded: bool) -> None:
    assert matcher_from_text(IGNORE).excluded(path) is excluded


def test_last_matching_pattern_wins() -> None:
    assert Matcher(["!a.txt", "*.txt"]).excluded("a.txt")  # the exception must come after
    assert not Matcher(["*.txt", "!a.txt"]).excluded("a.txt")
    with pytest.raises(IgnoreError, match="illegal exclusion pattern"):
        Matcher(["!"])


def test_context_tree_hides_excluded_files(tmp_path: Path) -> None:
    for rel in ("app.js", "debug.log", "keep.log", "node_modules/m/index.js", "lib/a.js", "lib/b.txt"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(rel)
    tree = ContextTree(tmp_path, matcher_from_text("*.log\n!keep.log\nnode_modules\nlib/*.txt\n"))
    assert tree.listdir("") == ["app.js", "keep.log", "lib"]
    assert tree.lstat("debug.log") is None and tree.lstat("node_modules/m/index.js") is None
    assert glob(tree, "lib/*") == ["lib/a.js"] and glob(tree, "*.log") == ["keep.log"]
    # with exceptions, an excluded directory is still walked for re-included files
    tree = ContextTree(tmp_path, matcher_from_text("lib\n!lib/a.js\n"))
    assert tree.lstat("lib") is not None and tree.listdir("lib") == ["a.js"]
