"""The Dockerfile parser and instruction checks: continuations, directives, forms, flags, heredocs,
word substitution, and errors that name the line."""

from __future__ import annotations

import pytest

from kubelite.images.build.dockerfile import DockerfileError, parse
from kubelite.images.build.instructions import Arg, CommandLine, Copy, Healthcheck, KeyValues, parse_stages
from kubelite.images.build.shellwords import Lexer, ShellWordError


def nodes(text: str) -> list[tuple[str, int, tuple[str, ...]]]:
    return [(n.command, n.line, n.args) for n in parse(text).nodes]


def test_continuations_skip_comments_and_blank_lines() -> None:
    df = parse("FROM busybox\nRUN echo a \\\n  # a comment inside\n\n  && echo b \\   \n  && echo c\nCMD x\n")
    assert [(n.command, n.line, n.end_line) for n in df.nodes] == [("from", 1, 1), ("run", 2, 6), ("cmd", 7, 7)]
    assert df.nodes[1].args == ("echo a   && echo b   && echo c",)
    assert len(df.warnings) == 1 and "empty continuation line" in df.warnings[0]


def test_escape_directive_and_directive_rules() -> None:
    df = parse("# escape=`\n# syntax=docker/dockerfile:1\nFROM scratch\nCOPY a `\n  b\n")
    assert df.escape == "`" and df.directives == {"escape": "`", "syntax": "docker/dockerfile:1"}
    assert df.nodes[1].args == ("a", "b")
    # after any other line, a directive is just a comment
    assert parse("FROM scratch\n# escape=`\nRUN a \\\n b\n").nodes[1].args == ("a  b",)
    with pytest.raises(DockerfileError, match=r"^Dockerfile:2: only one escape parser directive"):
        parse("# escape=\\\n# escape=`\nFROM scratch\n")
    with pytest.raises(DockerfileError, match="invalid escape token"):
        parse("# escape=x\nFROM scratch\n")


def test_exec_and_shell_forms() -> None:
    df = parse('FROM x\nCMD ["node", "server.js"]\nRUN echo "a b" && ls\nENTRYPOINT [\'bad\']\n'
               'COPY ["a b", "dest/"]\nCOPY a b c/\n')
    cmd, run, entry, copy_json, copy_shell = df.nodes[1:]
    assert cmd.json and cmd.args == ("node", "server.js")
    assert not run.json and run.args == ('echo "a b" && ls',)
    assert not entry.json and entry.args == ("['bad']",)  # not valid JSON: shell form, as Docker
    assert copy_json.json and copy_json.args == ("a b", "dest/")
    assert copy_shell.args == ("a", "b", "c/")
    with pytest.raises(DockerfileError, match="Dockerfile:2: when using JSON array syntax"):
        parse('FROM x\nCMD ["a", 1]\n')


def test_env_label_arg_forms() -> None:
    stages = parse_stages(parse('ARG V=1\nFROM x\nENV A=1 B="two words" C=\nENV OLD some value here\n'
                                'LABEL "k.x"=v other=\'q\'\nARG N\nARG M=2\n')).stages
    env, legacy, label, arg_n, arg_m = stages[0].instructions
    assert isinstance(env, KeyValues) and env.pairs == (("A", "1"), ("B", '"two words"'), ("C", ""))
    assert isinstance(legacy, KeyValues) and legacy.pairs == (("OLD", "some value here"),)
    assert isinstance(label, KeyValues) and label.pairs == (('"k.x"', "v"), ("other", "'q'"))
    assert isinstance(arg_n, Arg) and arg_n.pairs == (("N", None),)
    assert isinstance(arg_m, Arg) and arg_m.pairs == (("M", "2"),)
    with pytest.raises(DockerfileError, match="Dockerfile:2: Syntax error - can't find = in 'B'"):
        parse("FROM x\nENV A=1 B\n")
    with pytest.raises(DockerfileError, match="Dockerfile:2: ENV must have two arguments"):
        parse("FROM x\nENV A\n")


def test_flags_stages_and_copy() -> None:
    parsed = parse_stages(parse("FROM --platform=linux/amd64 busybox AS Build\nCOPY --from=build --chown=1:2 "
                                "--chmod=755 a /b/\nADD x.tar.gz /opt/\nFROM scratch\nCOPY --link a b\n"))
    first, second = parsed.stages
    assert (first.name, first.from_.platform, first.label, second.label) == ("build", "linux/amd64", "build", "stage-1")
    copy, add = first.instructions
    assert isinstance(copy, Copy) and (copy.from_, copy.chown, copy.chmod, copy.sources, copy.dest) == (
        "build", "1:2", "755", ("a",), "/b/")
    assert isinstance(add, Copy) and add.add


@pytest.mark.parametrize(("text", "error"), [
    ("FROM busybox\nRUN true\n\nCOPPY a b\n", "Dockerfile:4: unknown instruction: COPPY (did you mean COPY?)"),
    ("FROM busybox\nCOPY --form=x a b\n", "Dockerfile:2: unknown flag: --form"),
    ("FROM busybox\nCOPY a\n", "Dockerfile:2: COPY requires at least two arguments"),
    ("FROM a b\n", "Dockerfile:1: FROM requires either one or three arguments"),
    ("FROM a AS 1x\n", "Dockerfile:1: invalid name for build stage"),
    ("FROM a AS x\nFROM b AS x\n", "Dockerfile:2: duplicate stage name 'x'"),
    ("RUN true\nFROM a\n", "Dockerfile:1: RUN before the first FROM"),
    ("FROM a\nSHELL /bin/bash -c\n", "Dockerfile:2: SHELL requires the arguments to be in JSON form"),
    ("FROM a\nWORKDIR\n", "Dockerfile:2: WORKDIR requires exactly one argument"),
    ("FROM a\nHEALTHCHECK --interval=5x CMD true\n", "Dockerfile:2: HEALTHCHECK --interval: invalid duration"),
    ("FROM a\nRUN --mount=type=cache,target=/x true\n", "Dockerfile:2: RUN --mount is not supported"),
    ("FROM a\nONBUILD FROM b\n", "Dockerfile:2: FROM isn't allowed as an ONBUILD trigger"),
    ("# just a comment\n\n", "Dockerfile:2: file with no instructions"),
    ("FROM a\nRUN <<EOF\necho\n", "Dockerfile:2: unterminated heredoc EOF"),
])
def test_errors_name_the_line(text: str, error: str) -> None:
    with pytest.raises(DockerfileError) as info:
        parse_stages(parse(text))
    assert str(info.value).startswith(error), str(info.value)


def test_heredocs() -> None:
    stages = parse_stages(parse("FROM a\nRUN <<EOF\necho one\necho two\nEOF\nCOPY <<-'X' /etc/conf\n\tkey=$V\n\tX\n"
                                "RUN cat <<A <<B\na\nA\nb\nB\nCMD x\n")).stages
    run, copy, run2, cmd = stages[0].instructions
    assert isinstance(run, CommandLine) and run.heredocs[0].content == "echo one\necho two\n"
    assert isinstance(copy, Copy) and copy.sources == () and copy.dest == "/etc/conf"
    assert copy.inline[0].content == "key=$V\n" and not copy.inline[0].expand and copy.inline[0].chomp
    assert isinstance(run2, CommandLine) and [h.name for h in run2.heredocs] == ["A", "B"]
    assert cmd.line == 14  # after the heredoc bodies


def test_healthcheck() -> None:
    [check] = parse_stages(parse("FROM a\nHEALTHCHECK --interval=1m30s --retries=3 CMD curl -f http://x/\n")
                           ).stages[0].instructions
    assert isinstance(check, Healthcheck)
    assert (check.test, check.interval, check.retries) == (("CMD-SHELL", "curl -f http://x/"), 90 * 10**9, 3)


@pytest.mark.parametrize(("word", "expected"), [
    ("$A", "hello"), ("${A}x", "hellox"), ("${MISSING}", ""), ("${MISSING:-def}", "def"),
    ("${EMPTY:-def}", "def"), ("${EMPTY-def}", ""), ("${A:+alt}", "alt"), ("${MISSING:+alt}", ""),
    ('"$A world"', "hello world"), ("'$A'", "$A"), ("\\$A", "$A"), ("a\\ b", "a b"),
    ("${P#*/}", "usr/local/bin"), ("${P##*/}", "bin"), ("${P%/*}", "/usr/local"), ("${A//l/L}", "heLLo"),
    ("$", "$"), ("$1x", "x"),
])
def test_substitution(word: str, expected: str) -> None:
    assert Lexer().word(word, {"A": "hello", "EMPTY": "", "P": "/usr/local/bin"}) == expected


def test_substitution_words_and_errors() -> None:
    lexer = Lexer()
    assert lexer.words('a $X "b c"', {"X": "x y"}) == ["a", "x", "y", "b c"]
    assert Lexer("`").word("a`$b", {}) == "a$b"
    for bad, message in (("${A", "missing '}'"), ("${:a}", "bad substitution"), ("'open", "single-quote"),
                         ("${A:?must be set}", "A: must be set")):
        with pytest.raises(ShellWordError, match=message):
            lexer.word(bad, {})
