"""Parser of the autoscale formula language: statements separated by ``;``, C-like expressions.

Grammar (lowest precedence first)::

    formula    := statement (";" statement)*
    statement  := empty | NAME "=" expr | expr
    expr       := or ("?" expr ":" expr)?
    or         := and ("||" and)*
    and        := equality ("&&" equality)*
    equality   := relation (("==" | "!=") relation)*
    relation   := sum (("<" | "<=" | ">" | ">=") sum)*
    sum        := product (("+" | "-") product)*
    product    := unary (("*" | "/") unary)*
    unary      := ("-" | "+" | "!") unary | postfix
    postfix    := primary ("." NAME ("(" args ")")?)*
    primary    := NUMBER | STRING | NAME ("(" args ")")? | "(" expr ")" | "[" args "]"
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from batch_emulator.autoscale.errors import FormulaSyntaxError
from batch_emulator.autoscale.lexer import Token, tokenize

#: The longest formula the service accepts (characters).
MAX_FORMULA_LENGTH = 8192
#: The most statements a formula may have.
MAX_STATEMENTS = 100


@dataclass(frozen=True, slots=True)
class Node:
    """Base of the syntax tree; every node knows where it starts."""

    line: int
    column: int


@dataclass(frozen=True, slots=True)
class Number(Node):
    """A numeric literal."""

    value: float


@dataclass(frozen=True, slots=True)
class String(Node):
    """A string literal (quotes removed)."""

    value: str


@dataclass(frozen=True, slots=True)
class Name(Node):
    """A variable or constant reference (``$TargetDedicatedNodes``, ``tasks``, ``TimeInterval_Minute``)."""

    name: str


@dataclass(frozen=True, slots=True)
class Unary(Node):
    """``-x``, ``+x`` or ``!x``."""

    op: str
    operand: Node


@dataclass(frozen=True, slots=True)
class Binary(Node):
    """An arithmetic, comparison or logical operation."""

    op: str
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Conditional(Node):
    """``condition ? then : otherwise``."""

    condition: Node
    then: Node
    otherwise: Node


@dataclass(frozen=True, slots=True)
class Call(Node):
    """A function call such as ``max(a, b)``."""

    name: str
    args: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Member(Node):
    """``target.name``: a timestamp field such as ``time().hour``."""

    target: Node
    name: str


@dataclass(frozen=True, slots=True)
class MethodCall(Node):
    """``target.name(args)``: a sample method such as ``$CPUPercent.GetSample(...)``."""

    target: Node
    name: str
    args: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Vector(Node):
    """``[a, b, ...]``: a doubleVec literal."""

    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Assign(Node):
    """``name = value``."""

    name: str
    value: Node


@dataclass(frozen=True, slots=True)
class Formula:
    """A parsed formula: its statements (assignments or bare expressions) in order."""

    statements: tuple[Node, ...]


#: Binary operators by precedence, lowest first; every level is left-associative.
_PRECEDENCE: tuple[tuple[str, ...], ...] = (
    ("||",),
    ("&&",),
    ("==", "!="),
    ("<", "<=", ">", ">="),
    ("+", "-"),
    ("*", "/"),
)
#: The precedence level of each binary operator.
_LEVEL = {op: level for level, ops in enumerate(_PRECEDENCE) for op in ops}


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.index = 0

    @property
    def token(self) -> Token:
        return self.tokens[self.index]

    def error(self, expected: str) -> FormulaSyntaxError:
        token = self.token
        found = "end of formula" if token.kind == "end" else repr(token.text)
        return FormulaSyntaxError(f"syntax error: expected {expected}, found {found}", token.line, token.column)

    def accept(self, text: str) -> Token | None:
        token = self.token
        if token.kind == "op" and token.text == text:
            self.index += 1
            return token
        return None

    def expect(self, text: str) -> Token:
        token = self.accept(text)
        if token is None:
            raise self.error(repr(text))
        return token

    def formula(self) -> Formula:
        statements: list[Node] = []
        while True:
            if self.token.kind == "end":
                break
            if self.accept(";"):
                continue
            statements.append(self.statement())
            if self.token.kind != "end" and not self.accept(";"):
                raise self.error("';' between statements")
        if len(statements) > MAX_STATEMENTS:
            count = len(statements)
            raise FormulaSyntaxError(f"a formula has at most {MAX_STATEMENTS} statements, this one has {count}")
        return Formula(tuple(statements))

    def statement(self) -> Node:
        token = self.token
        following = self.tokens[self.index + 1]
        if token.kind == "name" and following.kind == "op" and following.text == "=":
            self.index += 2
            return Assign(token.line, token.column, token.text, self.expression())
        return self.expression()

    def expression(self) -> Node:
        condition = self.binary()
        question = self.accept("?")
        if question is None:
            return condition
        then = self.expression()
        self.expect(":")
        otherwise = self.expression()
        return Conditional(condition.line, condition.column, condition, then, otherwise)

    def binary(self, lowest: int = 0) -> Node:
        """Precedence climbing: operands joined by operators of level ``lowest`` or higher."""
        left = self.unary()
        while self.token.kind == "op" and _LEVEL.get(self.token.text, -1) >= lowest:
            op = self.token
            self.index += 1
            right = self.binary(_LEVEL[op.text] + 1)
            left = Binary(op.line, op.column, op.text, left, right)
        return left

    def unary(self) -> Node:
        token = self.token
        if token.kind == "op" and token.text in ("-", "+", "!"):
            self.index += 1
            return Unary(token.line, token.column, token.text, self.unary())
        return self.postfix()

    def postfix(self) -> Node:
        node = self.primary()
        while self.accept("."):
            name = self.token
            if name.kind != "name" or name.text.startswith("$"):
                raise self.error("a member or method name after '.'")
            self.index += 1
            if self.accept("("):
                node = MethodCall(name.line, name.column, node, name.text, self.arguments(")"))
            else:
                node = Member(name.line, name.column, node, name.text)
        return node

    def arguments(self, closing: str) -> tuple[Node, ...]:
        args: list[Node] = []
        if self.accept(closing):
            return ()
        while True:
            args.append(self.expression())
            if self.accept(closing):
                return tuple(args)
            if not self.accept(","):
                raise self.error(f"',' or {closing!r}")

    def primary(self) -> Node:
        token = self.token
        if token.kind == "number":
            self.index += 1
            return Number(token.line, token.column, float(token.text))
        if token.kind == "string":
            self.index += 1
            return String(token.line, token.column, token.text[1:-1])
        if token.kind == "name":
            self.index += 1
            if self.accept("("):
                return Call(token.line, token.column, token.text, self.arguments(")"))
            return Name(token.line, token.column, token.text)
        if self.accept("("):
            inner = self.expression()
            self.expect(")")
            return inner
        if self.accept("["):
            return Vector(token.line, token.column, self.arguments("]"))
        raise self.error("a value")


@lru_cache(maxsize=256)
def parse(source: str) -> Formula:
    """Parse a formula (results are cached by text: pools evaluate the same formula again and again).

    Raises:
        FormulaSyntaxError: the text is not a formula.
    """
    if len(source) > MAX_FORMULA_LENGTH:
        raise FormulaSyntaxError(f"the formula is {len(source)} characters long; the limit is {MAX_FORMULA_LENGTH}")
    return _Parser(tokenize(source)).formula()
