"""Docker's word processing for Dockerfile arguments (buildkit's shell lexer semantics).

`Lexer.word` expands one word: single quotes keep everything literally, double quotes keep all but
`$` and escaped `"`, `$`, escape; the escape token (`\\` or `` ` ``) escapes the next character;
`$NAME`, `${NAME}`, `${NAME:-word}`, `${NAME-word}`, `${NAME:+word}`, `${NAME+word}`,
`${NAME:?msg}`, `${NAME?msg}`, `${NAME#pat}`, `${NAME##pat}`, `${NAME%pat}`, `${NAME%%pat}` and
`${NAME/pat/repl}` (`//` for all) are substituted from `env`; an unset name expands to "".
`Lexer.words` does the same and then splits on unquoted whitespace (after substitution, as Docker
does). Pure; errors raise `ShellWordError` with Docker's wording.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

EOF = ""
_SPECIAL_PARAMS = set("@*#?-$!0")


class ShellWordError(ValueError):
    pass


class _Words:
    """Word splitting alongside the expansion: quoted text never splits, expanded text does."""

    def __init__(self) -> None:
        self.word, self.in_word = "", False
        self.words: list[str] = []

    def add_char(self, ch: str) -> None:
        if ch.isspace():
            if self.in_word and self.word:
                self.words.append(self.word)
                self.word, self.in_word = "", False
        else:
            self.add_raw(ch)

    def add_raw(self, text: str) -> None:
        self.word += text
        self.in_word = True

    def add_string(self, text: str) -> None:
        for ch in text:
            self.add_char(ch)

    def result(self) -> list[str]:
        if self.word:
            self.words.append(self.word)
            self.word, self.in_word = "", False
        return self.words


class _Scanner:
    def __init__(self, text: str, env: Mapping[str, str], escape: str, *, quotes: bool = True) -> None:
        self.text, self.pos, self.env, self.escape, self.quotes = text, 0, env, escape, quotes

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else EOF

    def next(self) -> str:
        ch = self.peek()
        if ch:
            self.pos += 1
        return ch

    def process(self, stop: str = EOF, *, raw_escapes: bool = False) -> tuple[str, list[str]]:
        result: list[str] = []
        words = _Words()
        while self.peek() != EOF:
            ch = self.peek()
            if stop and ch == stop:
                self.next()
                return "".join(result), words.result()
            if ch == "$" or (self.quotes and ch in ("'", '"')):
                text = self.dollar() if ch == "$" else self.single_quote() if ch == "'" else self.double_quote()
                result.append(text)
                if ch == "$":
                    words.add_string(text)
                else:
                    words.add_raw(text)
                continue
            ch = self.next()
            if ch == self.escape:
                if raw_escapes:
                    words.add_raw(ch)
                    result.append(ch)
                ch = self.next()
                if ch == EOF:
                    break
                words.add_raw(ch)
            else:
                words.add_char(ch)
            result.append(ch)
        if stop:
            raise ShellWordError(f"unexpected end of statement while looking for matching {stop}")
        return "".join(result), words.result()

    def single_quote(self) -> str:
        self.next()
        out: list[str] = []
        while True:
            ch = self.next()
            if ch == EOF:
                raise ShellWordError("unexpected end of statement while looking for matching single-quote")
            if ch == "'":
                return "".join(out)
            out.append(ch)

    def double_quote(self) -> str:
        self.next()
        out: list[str] = []
        while True:
            ch = self.peek()
            if ch == EOF:
                raise ShellWordError("unexpected end of statement while looking for matching double-quote")
            if ch == '"':
                self.next()
                return "".join(out)
            if ch == "$":
                out.append(self.dollar())
                continue
            ch = self.next()
            if ch == self.escape:
                following = self.peek()
                if following == EOF:
                    continue
                if following in ('"', "$", self.escape):
                    ch = self.next()
            out.append(ch)

    def name(self) -> str:
        out: list[str] = []
        while (ch := self.peek()) != EOF:
            if not out and ch.isdigit():
                while self.peek().isdigit():
                    out.append(self.next())
                return "".join(out)
            if not out and ch in _SPECIAL_PARAMS:
                return self.next()
            if not (ch.isalnum() or ch == "_"):
                break
            out.append(self.next())
        return "".join(out)

    def dollar(self) -> str:
        self.next()
        if self.peek() != "{":
            name = self.name()
            return self.env.get(name, "") if name else "$"
        self.next()
        if self.peek() == EOF:
            raise ShellWordError("syntax error: missing '}'")
        if self.peek() in "{}:":
            raise ShellWordError("syntax error: bad substitution")
        name = self.name()
        ch = self.next()
        if ch == EOF:
            raise ShellWordError("syntax error: missing '}'")
        if ch == "}":
            return self.env.get(name, "")
        if ch == "/":
            return self._replace(name)
        null_is_unset = ch == ":"
        if null_is_unset:
            ch = self.next()
        if ch not in ("+", "-", "?", "#", "%"):
            raise ShellWordError(f"unsupported modifier ({':' if null_is_unset else ''}{ch}) in substitution")
        try:
            word, _ = self.process("}", raw_escapes=ch in "#%")
        except ShellWordError:
            if self.peek() == EOF:
                raise ShellWordError("syntax error: missing '}'") from None
            raise
        return _modify(name, self.env, ch, word, null_is_unset=null_is_unset)

    def _replace(self, name: str) -> str:
        replace_all = self.peek() == "/"
        if replace_all:
            self.next()
        pattern, _ = self.process("/", raw_escapes=True)
        replacement, _ = self.process("}", raw_escapes=True)
        value = self.env.get(name, "")
        regex = _pattern_regex(pattern, greedy=True)
        return regex.sub(lambda _: replacement, value, count=0 if replace_all else 1)


def _modify(name: str, env: Mapping[str, str], op: str, word: str, *, null_is_unset: bool) -> str:
    value = env.get(name)
    unset = value is None or (null_is_unset and value == "")
    if op == "-":
        return word if unset else str(value)
    if op == "+":
        return "" if unset else word
    if op == "?":
        if value is None:
            raise ShellWordError(f"{name}: {word or 'is not allowed to be unset'}")
        if null_is_unset and value == "":
            raise ShellWordError(f"{name}: {word or 'is not allowed to be empty'}")
        return value
    value = value or ""
    greedy = word.startswith(op)
    regex = _pattern_regex(word[1:] if greedy else word, greedy=greedy)
    # '#': remove the shortest (## longest) matching prefix; '%': the same for a suffix
    cuts = range(len(value), -1, -1) if greedy else range(len(value) + 1)
    for i in cuts:
        if op == "#" and regex.fullmatch(value[:i]):
            return value[i:]
        if op == "%" and regex.fullmatch(value[len(value) - i:]):
            return value[:len(value) - i]
    return value


def _pattern_regex(pattern: str, *, greedy: bool) -> re.Pattern[str]:
    """A shell wildcard pattern (`*`, `?`, `\\` escapes; no brackets) as a regex."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "*":
            out.append(".*" if greedy else ".*?")
        elif ch == "?":
            out.append(".")
        elif ch == "\\" and i + 1 < len(pattern):
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(ch))
        i += 1
    return re.compile("".join(out), re.DOTALL)


class Lexer:
    def __init__(self, escape: str = "\\") -> None:
        self.escape = escape

    def word(self, text: str, env: Mapping[str, str]) -> str:
        """One word with quotes removed and variables substituted."""
        return _Scanner(text, env, self.escape).process()[0]

    def words(self, text: str, env: Mapping[str, str]) -> list[str]:
        """Substituted, then split on unquoted whitespace."""
        return _Scanner(text, env, self.escape).process()[1]

    def expand(self, text: str, env: Mapping[str, str]) -> str:
        """Variables only, quotes and escapes left as written (a heredoc's body)."""
        return _Scanner(text, env, self.escape, quotes=False).process(raw_escapes=True)[0]
