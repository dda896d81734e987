"""Dockerfile text -> instruction nodes, as buildkit's Dockerfile parser reads it (pure).

- Parser directives (`# syntax=...`, `# escape=\\` or `` ` ``, `# check=...`) count only on the first
  lines, before any instruction, comment or blank line; each may appear once.
- A line whose first non-blank character is `#` is a comment. A line ending in the escape token
  (trailing blanks allowed) continues on the next line; comment lines and blank lines inside a
  continuation are skipped (blank ones with a warning, as Docker warns).
- Each instruction line is `NAME [--flag[=value]]... arguments`; flags come off first, then the
  arguments are read by the instruction's form: a JSON string array (exec form) where Docker
  accepts one, else words or the raw rest (shell form). Quotes stay in the words: variable
  substitution and quote removal happen later, when the instruction runs (`shellwords`).
- RUN, COPY and ADD take heredocs (`<<EOF` ... `EOF`, `<<-EOF` strips leading tabs, a quoted
  name disables substitution in the body).

Every error is a `DockerfileError` naming the file and line.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

_WHITESPACE = re.compile(r"[\t\v\f\r ]+")
_DIRECTIVE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")
_HEREDOC = re.compile(r"^(\d*)<<(-?)(['\"]?)([A-Za-z_][A-Za-z0-9_.-]*)\3$")
DIRECTIVES = ("syntax", "escape", "check")
HEREDOC_COMMANDS = ("run", "copy", "add")
_BOM = "\ufeff"


class DockerfileError(ValueError):
    def __init__(self, message: str, line: int = 0, filename: str = "Dockerfile") -> None:
        super().__init__(message)
        self.message, self.line, self.filename = message, line, filename

    def __str__(self) -> str:
        return f"{self.filename}:{self.line}: {self.message}" if self.line else f"{self.filename}: {self.message}"


@dataclass(frozen=True)
class Heredoc:
    name: str
    content: str
    expand: bool  # False when the name was quoted: the body is taken literally
    chomp: bool  # <<-: leading tabs stripped from every line


@dataclass(frozen=True)
class Node:
    command: str  # lower case, as written otherwise
    line: int  # first and last line of the instruction (1-based)
    end_line: int
    original: str  # the instruction with continuations joined
    flags: tuple[str, ...] = ()  # "--from=build", "--link"
    args: tuple[str, ...] = ()  # ENV/LABEL: key, value, key, value...
    json: bool = False  # exec form
    legacy_kv: bool = False  # `ENV key value` (one pair, the value is the rest of the line)
    heredocs: tuple[Heredoc, ...] = ()
    child: Node | None = None  # ONBUILD's instruction


@dataclass(frozen=True)
class Dockerfile:
    nodes: tuple[Node, ...]
    escape: str = "\\"
    directives: dict[str, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()


class _Lines:
    def __init__(self, text: str) -> None:
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        self.lines = [line.removesuffix("\r") for line in lines]
        if self.lines:
            self.lines[0] = self.lines[0].removeprefix(_BOM)
        self.pos = 0  # lines consumed; also the 1-based number of the last one read

    def next(self) -> str | None:
        if self.pos >= len(self.lines):
            return None
        self.pos += 1
        return self.lines[self.pos - 1]


def _is_comment(line: str) -> bool:
    return line.lstrip().startswith("#")


def parse(text: str, *, filename: str = "Dockerfile") -> Dockerfile:
    lines = _Lines(text)
    directives: dict[str, str] = {}
    escape, done, warnings, nodes = "\\", False, [], []
    while (raw := lines.next()) is not None:
        if not done:
            match = _DIRECTIVE.match(raw.lstrip())
            key = match.group(1).lower() if match else ""
            if key in DIRECTIVES:
                if key in directives:
                    raise DockerfileError(f"only one {key} parser directive can be used", lines.pos, filename)
                assert match is not None
                directives[key] = match.group(2)
                if key == "escape":
                    escape = _escape_token(match.group(2), lines.pos, filename)
                continue
            done = True
        start = lines.pos
        line = raw.lstrip()
        if not line or _is_comment(line):
            continue
        continuation = re.compile(re.escape(escape) + r"[ \t]*$")
        blank_inside = False
        while continuation.search(line):
            line = continuation.sub("", line)
            while (nxt := lines.next()) is not None and (_is_comment(nxt) or not nxt.strip()):
                blank_inside = blank_inside or not nxt.strip()
            if nxt is None:
                break
            line += nxt
        if blank_inside:
            warnings.append(f"{filename}:{start}: empty continuation line found in: {line.strip()}")
        try:
            node = _node(line, start, lines.pos, escape)
            if node.command in HEREDOC_COMMANDS and not node.json:
                node = _read_heredocs(node, lines, escape)
        except DockerfileError as e:
            raise DockerfileError(e.message, e.line or start, filename) from None
        nodes.append(node)
    if not nodes:
        raise DockerfileError("file with no instructions", lines.pos, filename)
    return Dockerfile(tuple(nodes), escape, directives, tuple(warnings))


def _escape_token(value: str, line: int, filename: str) -> str:
    if value not in ("\\", "`"):
        raise DockerfileError(f"invalid escape token '{value}' does not match ` or \\", line, filename)
    return value


# ----- one instruction ---------------------------------------------------------------------------


def _node(line: str, start: int, end: int, escape: str) -> Node:
    parts = _WHITESPACE.split(line.strip(), maxsplit=1)
    command = parts[0].lower()
    rest, flags = split_flags(parts[1]) if len(parts) == 2 else ("", [])
    rest = rest.strip()
    base = Node(command, start, end, line.strip(), tuple(flags))
    if command == "onbuild":
        child = _node(rest, start, end, escape) if rest else None
        return _with(base, args=(rest,) if rest else (), child=child)
    if command in ("env", "label"):
        args, legacy = _name_values(rest, command.upper(), escape)
        return _with(base, args=tuple(args), legacy_kv=legacy)
    if command == "arg":
        return _with(base, args=tuple(parse_words(rest, escape)))
    if command in ("cmd", "entrypoint", "run", "shell"):
        args_json = _maybe_json(rest)
        return _with(base, args=tuple(args_json[0]), json=args_json[1])
    if command in ("add", "copy", "volume"):
        values = _json_array(rest)
        return _with(base, args=tuple(values), json=True) if values is not None else \
            _with(base, args=tuple(_split(rest)))
    if command == "healthcheck":
        kind, *more = _WHITESPACE.split(rest, maxsplit=1) if rest else [""]
        cmd_args, is_json = _maybe_json(more[0].strip() if more else "")
        return _with(base, args=(kind, *cmd_args) if kind else (), json=is_json)
    if command in ("expose", "from"):
        return _with(base, args=tuple(_split(rest)))
    return _with(base, args=(rest,) if rest else ())  # maintainer, stopsignal, user, workdir, unknown


def _with(node: Node, **changes: object) -> Node:
    return Node(**{**node.__dict__, **changes})  # type: ignore[arg-type]


def _split(rest: str) -> list[str]:
    return [w for w in _WHITESPACE.split(rest) if w] if rest else []


def _json_array(rest: str) -> list[str] | None:
    """The strings of a JSON array, or None when `rest` is not one (then it is shell form)."""
    text = rest.lstrip()
    if not text.startswith("["):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if not isinstance(value, list):
        return None
    if not all(isinstance(v, str) for v in value):
        raise DockerfileError("when using JSON array syntax, arrays must be comprised of strings only")
    return value


def _maybe_json(rest: str) -> tuple[list[str], bool]:
    if not rest:
        return [], False
    values = _json_array(rest)
    return (values, True) if values is not None else ([rest], False)


def split_flags(line: str) -> tuple[str, list[str]]:
    """Leading `--name[=value]` words off an instruction's arguments (buildkit's extractBuilderFlags)."""
    flags: list[str] = []
    pos = 0
    while True:
        while pos < len(line) and line[pos].isspace():
            pos += 1
        if not line.startswith("--", pos):
            return line[pos:], flags
        end = pos
        word = []
        quote = ""
        while end < len(line) and (quote or not line[end].isspace()):
            ch = line[end]
            if quote:
                if ch == quote:
                    quote = ""
                else:
                    word.append(ch)
            elif ch in "'\"":
                quote = ch
            else:
                word.append(ch)
            end += 1
        text = "".join(word)
        if text == "--":
            return line[end:], flags
        flags.append(text)
        pos = end


def parse_words(rest: str, escape: str) -> list[str]:
    """Whitespace-separated words; quotes and escapes are kept for the later substitution."""
    words: list[str] = []
    word: list[str] = []
    quote, blank_ok, i = "", False, 0
    while i < len(rest):
        ch = rest[i]
        if not quote and ch.isspace():
            if blank_ok or word:
                words.append("".join(word))
            word, blank_ok = [], False
        elif quote:
            if ch == quote:
                quote = ""
            elif ch == escape and quote != "'" and i + 1 < len(rest):
                word.append(ch)
                i += 1
                ch = rest[i]
            word.append(ch)
        else:
            if ch in "'\"":
                quote, blank_ok = ch, True
            elif ch == escape and i + 1 < len(rest):
                word.append(ch)
                i += 1
                ch = rest[i]
            word.append(ch)
        i += 1
    if blank_ok or word:
        words.append("".join(word))
    return words


def _name_values(rest: str, what: str, escape: str) -> tuple[list[str], bool]:
    """`ENV a=1 b="2 3"` -> [a, 1, b, "2 3"]; legacy `ENV a 1 2` -> [a, "1 2"] (one pair)."""
    words = parse_words(rest, escape)
    if not words:
        return [], False
    if "=" not in words[0]:
        parts = _WHITESPACE.split(rest, maxsplit=1)
        if len(parts) < 2 or not parts[1]:
            raise DockerfileError(f"{what} must have two arguments")
        return [parts[0], parts[1]], True
    out = []
    for word in words:
        if "=" not in word:
            raise DockerfileError(f"Syntax error - can't find = in {word!r}. Must be of the form: name=value")
        key, _, value = word.partition("=")
        out += [key, value]
    return out, False


# ----- heredocs ----------------------------------------------------------------------------------


def _read_heredocs(node: Node, lines: _Lines, escape: str) -> Node:
    markers = []
    for word in parse_words(" ".join(node.args), escape):
        match = _HEREDOC.match(word)
        if match:
            markers.append((match.group(4), bool(match.group(2)), not match.group(3)))
    if not markers:
        return node
    docs = []
    for name, chomp, expand in markers:
        body = []
        while True:
            raw = lines.next()
            if raw is None:
                raise DockerfileError(f"unterminated heredoc {name} (no line with just {name})", node.line)
            if (raw.lstrip("\t") if chomp else raw) == name:
                break
            body.append((raw.lstrip("\t") if chomp else raw) + "\n")
        docs.append(Heredoc(name, "".join(body), expand, chomp))
    return _with(node, heredocs=tuple(docs), end_line=lines.pos)
