"""Tokens of the autoscale formula language."""

from __future__ import annotations

import re
from dataclasses import dataclass

from batch_emulator.autoscale.errors import FormulaSyntaxError

#: Token kinds: ``number``, ``string``, ``name`` (with or without ``$``), ``op`` and ``end``.
_TOKEN = re.compile(
    r"""
    (?P<space>[ \t\r\n]+)
  | (?P<comment>//[^\n]*|/\*.*?\*/)
  | (?P<number>(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?)
  | (?P<string>"[^"\n]*"|'[^'\n]*')
  | (?P<name>\$?[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>&&|\|\||==|!=|<=|>=|[-+*/!<>?:=;(),.\[\]])
    """,
    re.VERBOSE | re.DOTALL,
)


@dataclass(frozen=True, slots=True)
class Token:
    """One token and where it starts (1-based line and column)."""

    kind: str
    text: str
    line: int
    column: int


def tokenize(source: str) -> list[Token]:
    """Split a formula into tokens, dropping blanks and comments; the list ends with an ``end`` token.

    Raises:
        FormulaSyntaxError: a character that starts no token, or an unterminated string or comment.
    """
    tokens: list[Token] = []
    position = 0
    line, line_start = 1, 0
    while position < len(source):
        match = _TOKEN.match(source, position)
        column = position - line_start + 1
        if match is None:
            char = source[position]
            what = "unterminated string or comment" if char in "\"'/" else f"unexpected character {char!r}"
            raise FormulaSyntaxError(what, line, column)
        kind = match.lastgroup or ""
        text = match.group()
        if kind not in ("space", "comment"):
            tokens.append(Token(kind, text, line, column))
        newlines = text.count("\n")
        if newlines:
            line += newlines
            line_start = position + text.rindex("\n") + 1
        position = match.end()
    tokens.append(Token("end", "", line, position - line_start + 1))
    return tokens
