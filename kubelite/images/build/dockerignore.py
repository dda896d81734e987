""".dockerignore: which files of the build context COPY and ADD may see (Docker's semantics, pure).

Reading (moby/patternmatcher's ignorefile): a UTF-8 BOM is dropped; lines starting with `#` are
comments; each pattern is trimmed and cleaned like Go's filepath.Clean, and a leading `/` is
dropped (patterns are relative to the context root); `!pattern` re-includes.

Matching: patterns apply in order and the last one that matches decides, so `!` exceptions must
come after what they except. A pattern matches a path or any of its parent directories (`build`
excludes `build/x/y`). Within a pattern `*` and `?` never match `/`, `[...]` is a character class,
`\\` escapes, and `**` matches any number of directories (zero included). The context root itself
is never excluded.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass

_ESCAPE = set(".+()|{}$^")


class IgnoreError(ValueError):
    pass


def clean(path: str) -> str:
    """Go's filepath.Clean for slash paths."""
    if not path:
        return "."
    cleaned = posixpath.normpath(path)
    return "/" + cleaned.lstrip("/") if cleaned.startswith("//") else cleaned


def read_patterns(text: str) -> list[str]:
    patterns = []
    for number, raw in enumerate(text.split("\n")):
        line = raw.removeprefix("\ufeff") if number == 0 else raw
        if line.startswith("#"):
            continue
        line = line.strip()
        if not line:
            continue
        invert = line.startswith("!")
        if invert:
            line = line[1:].strip()
        if line:
            line = clean(line)
            if len(line) > 1 and line.startswith("/"):
                line = line[1:]
        patterns.append("!" + line if invert else line)
    return patterns


@dataclass(frozen=True)
class Pattern:
    text: str  # cleaned, without the "!"
    exclusion: bool
    regex: re.Pattern[str]
    dirs: int  # number of path components

    def match(self, path: str) -> bool:
        return self.regex.match(path) is not None


def compile_pattern(text: str) -> re.Pattern[str]:
    """patternmatcher's conversion of a pattern to an anchored regex."""
    out, i = ["^"], 0
    while i < len(text):
        ch = text[i]
        if ch == "*":
            if text.startswith("**", i):
                i += 1
                if text.startswith("/", i + 1):
                    i += 1  # "**/" is "**"
                out.append(".*" if i + 1 >= len(text) else "(.*/)?")
            else:
                out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "\\":
            if i + 1 < len(text):
                i += 1
                out.append(re.escape(text[i]))
            else:
                out.append(r"\\")
        elif ch in "[]":
            out.append(ch)
        elif ch in _ESCAPE:
            out.append("\\" + ch)
        else:
            out.append(ch)
        i += 1
    out.append("$")
    try:
        return re.compile("".join(out), re.DOTALL)
    except re.error as e:
        raise IgnoreError(f"bad .dockerignore pattern {text!r}: {e}") from None


class Matcher:
    def __init__(self, patterns: list[str]) -> None:
        self.patterns: list[Pattern] = []
        for raw in patterns:
            text = raw.strip()
            if not text:
                continue
            exclusion = text.startswith("!")
            if exclusion:
                if len(text) == 1:
                    raise IgnoreError('illegal exclusion pattern: "!"')
                text = text[1:]
            text = clean(text)
            self.patterns.append(Pattern(text, exclusion, compile_pattern(text), text.count("/") + 1))
        self.has_exclusions = any(p.exclusion for p in self.patterns)

    def excluded(self, path: str) -> bool:
        """Whether the context-relative slash path is excluded (MatchesOrParentMatches)."""
        path = clean(path)
        if path == "." or not self.patterns:
            return False
        parents = posixpath.dirname(path).split("/") if "/" in path else []
        matched = False
        for pattern in self.patterns:
            if pattern.exclusion != matched:
                continue  # an inclusion cannot change a match, nor an exclusion a non-match
            hit = pattern.match(path) or any(pattern.match("/".join(parents[:i + 1])) for i in range(len(parents)))
            if hit:
                matched = not pattern.exclusion
        return matched


    def may_include_below(self, directory: str) -> bool:
        """Whether some `!` pattern could re-include a path below this (excluded) directory: only
        then must a walk look inside it."""
        parts = clean(directory).split("/")
        for pattern in self.patterns:
            if pattern.exclusion and _prefix_could_match(pattern.text.split("/"), parts):
                return True
        return False


def _prefix_could_match(pattern: list[str], parts: list[str]) -> bool:
    for i, part in enumerate(parts):
        if i >= len(pattern):
            return False
        if "**" in pattern[i]:
            return True
        if not compile_pattern(pattern[i]).match(part):
            return False
    return len(pattern) > len(parts)


def matcher_from_text(text: str) -> Matcher:
    return Matcher(read_patterns(text))
