"""The OData subset Batch list operations take: ``$filter``, ``$select``, ``maxresults`` and skiptoken paging.

``$filter`` grammar (case-insensitive keywords)::

    expr       := term ('or' term)*
    term       := factor ('and' factor)*
    factor     := 'not' factor | '(' expr ')' | comparison | call
    comparison := operand ('eq'|'ne'|'gt'|'ge'|'lt'|'le') operand
    operand    := path | 'string' | number | true | false | null | datetime'ISO' | bare ISO timestamp | call
    call       := startswith(a, b) | endswith(a, b) | contains(a, b) | substringof(needle, haystack)
    path       := name ('/' name)*          e.g. executionInfo/result
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import quote

from batch_emulator.errors import InvalidQueryParameterValue
from batch_emulator.timefmt import parse_iso

Resolver = Callable[[tuple[str, ...]], Any]
Predicate = Callable[[Resolver], bool]
T = TypeVar("T")

MAX_RESULTS = 1000
_TOKEN = re.compile(
    r"\s*(?:(?P<string>'(?:[^']|'')*')|(?P<datetime>\d{4}-\d{2}-\d{2}T[0-9:.]+(?:Z|[+-]\d{2}:\d{2})?)"
    r"|(?P<number>-?\d+(?:\.\d+)?)|(?P<name>[A-Za-z_$][A-Za-z0-9_]*)|(?P<punct>[()/,]))"
)
_COMPARISONS = ("eq", "ne", "gt", "ge", "lt", "le")
_FUNCTIONS = ("startswith", "endswith", "contains", "substringof")


@dataclass(frozen=True)
class _Tok:
    kind: str
    text: str


class _Literal:
    def __init__(self, value: Any) -> None:
        self.value = value


def _tokenize(text: str) -> list[_Tok]:
    tokens: list[_Tok] = []
    position = 0
    text = text.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match or match.end() == position:
            raise ValueError(f"unexpected character at position {position}")
        kind = match.lastgroup or ""
        tokens.append(_Tok(kind, match.group(kind)))
        position = match.end()
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokenize(text)
        self.index = 0

    def peek(self) -> _Tok | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self) -> _Tok:
        token = self.peek()
        if token is None:
            raise ValueError("unexpected end of the expression")
        self.index += 1
        return token

    def keyword(self, *words: str) -> str | None:
        token = self.peek()
        if token is not None and token.kind == "name" and token.text.lower() in words:
            self.index += 1
            return token.text.lower()
        return None

    def expect(self, text: str) -> None:
        token = self.take()
        if token.text != text:
            raise ValueError(f"expected '{text}', found '{token.text}'")

    def parse(self) -> Predicate:
        predicate = self.expr()
        if self.peek() is not None:
            raise ValueError(f"unexpected '{self.take().text}'")
        return predicate

    def expr(self) -> Predicate:
        parts = [self.term()]
        while self.keyword("or"):
            parts.append(self.term())
        if len(parts) == 1:
            return parts[0]
        alternatives = tuple(parts)
        return lambda r: any(p(r) for p in alternatives)

    def term(self) -> Predicate:
        parts = [self.factor()]
        while self.keyword("and"):
            parts.append(self.factor())
        if len(parts) == 1:
            return parts[0]
        conditions = tuple(parts)
        return lambda r: all(p(r) for p in conditions)

    def factor(self) -> Predicate:
        if self.keyword("not"):
            inner = self.factor()
            return lambda r: not inner(r)
        token = self.peek()
        if token is not None and token.text == "(":
            self.take()
            inner = self.expr()
            self.expect(")")
            return self._maybe_compare(inner)
        left = self.operand()
        return self._maybe_compare(left)

    def _maybe_compare(self, left: Callable[[Resolver], Any]) -> Predicate:
        operator = self.keyword(*_COMPARISONS)
        if operator is None:
            return lambda r: bool(left(r))
        right = self.operand()
        return lambda r: _compare(operator, left(r), right(r))

    def operand(self) -> Callable[[Resolver], Any]:
        token = self.take()
        if token.kind == "string":
            value = token.text[1:-1].replace("''", "'")
            return lambda r: value
        if token.kind == "number":
            number = float(token.text) if "." in token.text else int(token.text)
            return lambda r: number
        if token.kind == "datetime":
            moment = parse_iso(token.text)
            return lambda r: moment
        if token.kind != "name":
            raise ValueError(f"unexpected '{token.text}'")
        word = token.text.lower()
        following = self.peek()
        if word in ("true", "false"):
            flag = word == "true"
            return lambda r: flag
        if word == "null":
            return lambda r: None
        if word == "datetime" and following is not None and following.kind == "string":
            moment = parse_iso(self.take().text[1:-1])
            return lambda r: moment
        if word in _FUNCTIONS and following is not None and following.text == "(":
            self.take()
            first = self.operand()
            self.expect(",")
            second = self.operand()
            self.expect(")")
            return _function(word, first, second)
        path = [token.text]
        while (slash := self.peek()) is not None and slash.text == "/":
            self.take()
            name = self.take()
            if name.kind != "name":
                raise ValueError("expected a property name after '/'")
            path.append(name.text)
        key = tuple(path)
        return lambda r: r(key)


def _function(
    name: str, first: Callable[[Resolver], Any], second: Callable[[Resolver], Any]
) -> Callable[[Resolver], Any]:
    def call(resolver: Resolver) -> bool:
        a, b = first(resolver), second(resolver)
        if not isinstance(a, str) or not isinstance(b, str):
            return False
        a, b = a.lower(), b.lower()
        if name == "startswith":
            return a.startswith(b)
        if name == "endswith":
            return a.endswith(b)
        if name == "contains":
            return b in a
        return a in b  # substringof(needle, haystack)

    return call


def _coerce(left: Any, right: Any) -> tuple[Any, Any]:
    if isinstance(right, datetime) and isinstance(left, str):
        left = parse_iso(left)
    elif isinstance(left, datetime) and isinstance(right, str):
        right = parse_iso(right)
    if isinstance(left, str) and isinstance(right, str):
        return left.lower(), right.lower()
    return left, right


def _compare(operator: str, left: Any, right: Any) -> bool:
    try:
        left, right = _coerce(left, right)
    except ValueError:
        return False
    if operator == "eq":
        return bool(left == right)
    if operator == "ne":
        return bool(left != right)
    if left is None or right is None:
        return False
    try:
        if operator == "gt":
            return bool(left > right)
        if operator == "ge":
            return bool(left >= right)
        if operator == "lt":
            return bool(left < right)
        return bool(left <= right)
    except TypeError:
        return False


def parse_filter(text: str | None) -> Predicate | None:
    """Compile a ``$filter`` expression.

    Args:
        text: The expression, or None/empty for no filter.

    Returns:
        A predicate over a property resolver, or None when there is no filter.

    Raises:
        InvalidQueryParameterValue: the expression does not parse.
    """
    if not text or not text.strip():
        return None
    try:
        return _Parser(text).parse()
    except ValueError as error:
        raise InvalidQueryParameterValue("$filter", text, f"The filter is not valid: {error}.") from error


def dict_resolver(body: Mapping[str, Any]) -> Resolver:
    """Resolve property paths in a rendered JSON object."""

    def resolve(path: tuple[str, ...]) -> Any:
        value: Any = body
        for name in path:
            if not isinstance(value, Mapping):
                return None
            value = value.get(name)
        return value

    return resolve


def parse_select(text: str | None) -> frozenset[str] | None:
    """Parse ``$select`` into the top-level property names to keep (None: keep all)."""
    if not text or not text.strip():
        return None
    return frozenset(part.strip().split("/")[0] for part in text.split(",") if part.strip())


def apply_select(body: dict[str, Any], names: frozenset[str] | None) -> dict[str, Any]:
    """Keep only the selected top-level properties."""
    if names is None:
        return body
    return {name: value for name, value in body.items() if name in names}


def parse_max_results(text: str | None, maximum: int = MAX_RESULTS) -> int:
    """Parse ``maxresults`` (1..maximum, default maximum).

    Raises:
        InvalidQueryParameterValue: not an integer in range.
    """
    if text is None or text == "":
        return maximum
    try:
        value = int(text)
    except ValueError as error:
        raise InvalidQueryParameterValue("maxresults", text, "The value must be an integer.") from error
    if not 1 <= value <= maximum:
        raise InvalidQueryParameterValue("maxresults", text, f"The value must be between 1 and {maximum}.")
    return value


def parse_skiptoken(text: str | None) -> int:
    """Parse a skiptoken this service issued (``s<seq>``); 0 when absent.

    Raises:
        InvalidQueryParameterValue: a token this service did not issue.
    """
    if not text:
        return 0
    if not re.fullmatch(r"s\d{1,18}", text):
        raise InvalidQueryParameterValue("$skiptoken", text, "The skip token is not valid.")
    return int(text[1:])


def make_skiptoken(seq: int) -> str:
    """Return the skiptoken resuming after ``seq`` (only characters safe in URLs)."""
    return f"s{seq}"


def paginate(
    items: Iterable[T], *, seq: Callable[[T], int], after: int, limit: int, keep: Callable[[T], bool]
) -> tuple[list[T], int | None]:
    """Take one page of items in sequence order.

    Args:
        items: All items, ordered by ``seq``.
        seq: The sequence number of an item.
        after: Only items with a larger sequence number (the skiptoken's).
        limit: Page size.
        keep: Filter.

    Returns:
        The page, and the sequence number to resume after (None when the listing is complete).
    """
    page: list[T] = []
    iterator: Iterator[T] = iter(items)
    for item in iterator:
        if seq(item) <= after or not keep(item):
            continue
        page.append(item)
        if len(page) == limit:
            for rest in iterator:
                if seq(rest) > after:
                    return page, seq(item)
            return page, None
    return page, None


def next_link(base: str, raw_path: str, query: Mapping[str, str], resume_after: int) -> str:
    """Build an absolute ``odata.nextLink`` keeping api-version, filters and page size.

    Args:
        base: Scheme and host of the service as the client reached it.
        raw_path: The request path as received.
        query: The request's query parameters (decoded).
        resume_after: Sequence number the next page starts after.

    Returns:
        The link.
    """
    params = {name: value for name, value in query.items() if name != "$skiptoken"}
    params["$skiptoken"] = make_skiptoken(resume_after)
    encoded = "&".join(f"{quote(name, safe='$')}={quote(value, safe='')}" for name, value in params.items())
    return f"{base}{raw_path}?{encoded}"
