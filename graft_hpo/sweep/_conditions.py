"""The ``when:`` language of search spaces: a tokenizer, a recursive-descent parser, an AST.

A condition is parsed, never ``eval``'d: the grammar has no calls, attributes, arithmetic or
indexing, so ``__import__('os')`` is a syntax error. Grammar (lowest precedence first, as in
Python: ``not`` binds tighter than ``and``, which binds tighter than ``or``)::

    condition  := or_expr END
    or_expr    := and_expr ("or" and_expr)*
    and_expr   := not_expr ("and" not_expr)*
    not_expr   := "not" not_expr | "(" or_expr ")" | comparison
    comparison := NAME ("==" | "!=") literal
                | NAME ("in" | "not" "in") "[" literal ("," literal)* [","] "]"
    literal    := STRING | NUMBER | "true" | "false" | "null"

``NAME`` is a dotted parameter name (``selection.strategy``); strings take single or double
quotes (backslash escapes the quote or itself); numbers are ints or floats (``1e-3``).

Equality is typed: a string equals only a string, a bool only a bool, null only null, and
numbers compare by value (``1 == 1.0``, but ``true != 1``). A condition that names a parameter
missing from the values (one that is inactive) does not hold, whatever its operators.

Example:
    >>> cond = parse_condition("selection.strategy != 'full' and train.batch_size in [64, 128]")
    >>> cond.names()
    ('selection.strategy', 'train.batch_size')
    >>> condition_holds(cond, {"selection.strategy": "graft", "train.batch_size": 64})
    True
    >>> condition_holds(cond, {"train.batch_size": 64})  # strategy inactive
    False
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from typing import Literal

__all__ = [
    "And",
    "Comparison",
    "ConditionSyntaxError",
    "Node",
    "Not",
    "Or",
    "Scalar",
    "comparisons",
    "condition_holds",
    "parse_condition",
    "scalars_equal",
]

Scalar = str | int | float | bool | None

_KEYWORDS = frozenset({"and", "or", "not", "in", "true", "false", "null"})
_LITERAL_KEYWORDS: dict[str, Scalar] = {"true": True, "false": False, "null": None}
_SEGMENT = r"[A-Za-z_][A-Za-z0-9_]*"
_NAME = re.compile(rf"{_SEGMENT}(?:\.{_SEGMENT})*")
_NUMBER = re.compile(r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")
_PUNCTUATION = {"==": "op", "!=": "op", "(": "(", ")": ")", "[": "[", "]": "]", ",": ","}
_HINTS = {"=": " (use '==')", "&": " (use 'and')", "|": " (use 'or')", "!": " (use 'not')"}
_MAX_DEPTH = 32  # nesting of parentheses and "not": bounds the parser's recursion
_LITERAL_TEXT = "a literal (a quoted string, a number, true, false or null)"


class ConditionSyntaxError(ValueError):
    """A condition that does not follow the grammar.

    Args:
        message: what was expected and what was found.
        column: 1-based position in the condition text.
    """

    def __init__(self, message: str, column: int) -> None:
        self.message = message
        self.column = column
        super().__init__(f"column {column}: {message}")


def scalars_equal(a: Scalar, b: Scalar) -> bool:
    """Typed equality: numbers by value, but ``True`` never equals ``1`` nor ``'1'``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    return type(a) is type(b) and a == b


@dataclass(frozen=True)
class Comparison:
    """``name == v``, ``name != v`` (``values`` has one item), ``name in [...]``, ``not in``."""

    name: str
    op: Literal["==", "!=", "in", "not in"]
    values: tuple[Scalar, ...]
    column: int = field(default=0, compare=False)  # 1-based position of ``name`` in the text

    def names(self) -> tuple[str, ...]:
        return (self.name,)

    def evaluate(self, values: Mapping[str, Any]) -> bool:
        found = any(scalars_equal(values[self.name], v) for v in self.values)
        return found if self.op in ("==", "in") else not found


@dataclass(frozen=True)
class Not:
    operand: Node

    def names(self) -> tuple[str, ...]:
        return self.operand.names()

    def evaluate(self, values: Mapping[str, Any]) -> bool:
        return not self.operand.evaluate(values)


@dataclass(frozen=True)
class And:
    operands: tuple[Node, ...]

    def names(self) -> tuple[str, ...]:
        return _unique(name for operand in self.operands for name in operand.names())

    def evaluate(self, values: Mapping[str, Any]) -> bool:
        return all(operand.evaluate(values) for operand in self.operands)


@dataclass(frozen=True)
class Or:
    operands: tuple[Node, ...]

    def names(self) -> tuple[str, ...]:
        return _unique(name for operand in self.operands for name in operand.names())

    def evaluate(self, values: Mapping[str, Any]) -> bool:
        return any(operand.evaluate(values) for operand in self.operands)


Node = Comparison | Not | And | Or


def _unique(names: Any) -> tuple[str, ...]:
    return tuple(dict.fromkeys(names))


def comparisons(node: Node) -> tuple[Comparison, ...]:
    """Every :class:`Comparison` in a condition, left to right."""
    if isinstance(node, Comparison):
        return (node,)
    if isinstance(node, Not):
        return comparisons(node.operand)
    return tuple(c for operand in node.operands for c in comparisons(operand))


def condition_holds(node: Node, values: Mapping[str, Any]) -> bool:
    """Whether a condition holds on the values sampled so far.

    Args:
        node: a parsed condition.
        values: ``{dotted_name: value}`` of the active parameters.

    Returns:
        False when the condition names a parameter absent from ``values`` (an inactive one);
        otherwise the condition's truth.
    """
    if any(name not in values for name in node.names()):
        return False
    return node.evaluate(values)


@dataclass(frozen=True)
class _Token:
    kind: str  # name, keyword, string, number, op, (, ), [, ], ",", end, error
    text: str
    column: int  # 1-based
    value: Scalar = None


def _read_string(text: str, start: int) -> tuple[str, int] | None:
    """The string literal starting at ``text[start]`` (a quote) and its end, or None."""
    quote, chars, i = text[start], [], start + 1
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text) and text[i + 1] in (quote, "\\"):
            chars.append(text[i + 1])
            i += 2
        elif char == quote:
            return "".join(chars), i + 1
        else:
            chars.append(char)
            i += 1
    return None


def _tokenize(text: str) -> list[_Token]:
    """The tokens of ``text``, ending in an ``end`` token or, at the first bad character, an
    ``error`` token: the parser reports it only when it gets there, so errors come in reading
    order (``__import__('os').x`` fails at its ``(``, not at the later ``.``)."""
    tokens: list[_Token] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char.isspace():
            i += 1
            continue
        if char in "'\"":
            string = _read_string(text, i)
            if string is None:
                return [
                    *tokens,
                    _Token("error", f"unterminated string starting with {char}", i + 1),
                ]
            tokens.append(_Token("string", text[i : string[1]], i + 1, string[0]))
            end = string[1]
        elif (number := _NUMBER.match(text, i)) is not None and not (
            char in "+-" and tokens and tokens[-1].kind in ("name", "number")
        ):
            end, raw = number.end(), number.group()
            if len(raw) > 40:  # int() refuses over 4,300 digits; no parameter needs 40
                return [*tokens, _Token("error", f"number {raw[:20]}... is too long", i + 1)]
            is_int = not any(c in raw for c in ".eE")
            number_value = int(raw) if is_int else float(raw)
            if isinstance(number_value, float) and not math.isfinite(number_value):
                return [*tokens, _Token("error", f"number {raw} is out of range", i + 1)]
            tokens.append(_Token("number", raw, i + 1, number_value))
        elif (name := _NAME.match(text, i)) is not None:
            end, word = name.end(), name.group()
            if word in _KEYWORDS:
                tokens.append(_Token("keyword", word, i + 1, _LITERAL_KEYWORDS.get(word)))
            else:
                tokens.append(_Token("name", word, i + 1))
        elif text[i : i + 2] in _PUNCTUATION or char in _PUNCTUATION:
            symbol = text[i : i + 2] if text[i : i + 2] in _PUNCTUATION else char
            end = i + len(symbol)
            tokens.append(_Token(_PUNCTUATION[symbol], symbol, i + 1))
        else:
            message = f"unexpected character {char!r}{_HINTS.get(char, '')}"
            return [*tokens, _Token("error", message, i + 1)]
        i = end
    tokens.append(_Token("end", "", len(text) + 1))
    return tokens


def _brief(text: str, limit: int = 40) -> str:
    quoted = repr(text)
    return quoted if len(quoted) <= limit else quoted[: limit - 4] + "...'"


def _found(token: _Token) -> str:
    return "the end of the condition" if token.kind == "end" else _brief(token.text)


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokenize(text)
        self.pos = 0
        self.depth = 0

    def peek(self, offset: int = 0) -> _Token:
        return self.tokens[min(self.pos + offset, len(self.tokens) - 1)]

    def take(self) -> _Token:
        token = self.peek()
        self.pos += 1
        return token

    def is_keyword(self, word: str, offset: int = 0) -> bool:
        token = self.peek(offset)
        return token.kind == "keyword" and token.text == word

    def fail(self, expected: str, hint: str = "") -> ConditionSyntaxError:
        token = self.peek()
        if token.kind == "error":
            return ConditionSyntaxError(token.text, token.column)
        return ConditionSyntaxError(
            f"expected {expected}; found {_found(token)}{hint}", token.column
        )

    def parse(self) -> Node:
        node = self.or_expr()
        if self.peek().kind != "end":
            raise self.fail("'and', 'or' or the end of the condition")
        return node

    def or_expr(self) -> Node:
        operands = [self.and_expr()]
        while self.is_keyword("or"):
            self.take()
            operands.append(self.and_expr())
        return operands[0] if len(operands) == 1 else Or(tuple(operands))

    def and_expr(self) -> Node:
        operands = [self.not_expr()]
        while self.is_keyword("and"):
            self.take()
            operands.append(self.not_expr())
        return operands[0] if len(operands) == 1 else And(tuple(operands))

    def not_expr(self) -> Node:
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise self.fail(f"at most {_MAX_DEPTH} nested parentheses or 'not's")
        try:
            if self.is_keyword("not"):
                self.take()
                return Not(self.not_expr())
            if self.peek().kind == "(":
                self.take()
                node = self.or_expr()
                if self.peek().kind != ")":
                    raise self.fail("')' or 'and'/'or'")
                self.take()
                return node
            return self.comparison()
        finally:
            self.depth -= 1

    def comparison(self) -> Comparison:
        token = self.peek()
        if token.kind != "name":
            raise self.fail("a parameter name, 'not' or '('")
        self.take()
        if self.peek().kind == "op":
            op = self.take().text
            return Comparison(
                token.text, "==" if op == "==" else "!=", (self.literal(),), token.column
            )
        if self.is_keyword("in") or (self.is_keyword("not") and self.is_keyword("in", 1)):
            negated = self.take().text == "not"
            if negated:
                self.take()
            return Comparison(token.text, "not in" if negated else "in", self.list(), token.column)
        raise self.fail(f"'==', '!=', 'in' or 'not in' after {_brief(token.text)}")

    def list(self) -> tuple[Scalar, ...]:
        if self.peek().kind != "[":
            raise self.fail("'[' to start a list of literals")
        self.take()
        items = [self.literal()]
        while self.peek().kind == ",":
            self.take()
            if self.peek().kind == "]":  # a trailing comma
                break
            items.append(self.literal())
        if self.peek().kind != "]":
            raise self.fail("',' or ']'")
        self.take()
        return tuple(items)

    def literal(self) -> Scalar:
        token = self.peek()
        if token.kind in ("string", "number") or (
            token.kind == "keyword" and token.text in _LITERAL_KEYWORDS
        ):
            self.take()
            return token.value
        hint = ""
        if token.kind == "name":
            python = {"True": "true", "False": "false", "None": "null"}.get(token.text)
            hint = f" (write {python})" if python else f" (quote strings: '{token.text}')"
        raise self.fail(_LITERAL_TEXT, hint)


def parse_condition(text: str) -> Node:
    """Parse a ``when:`` condition into its AST, without evaluating anything.

    Args:
        text: e.g. ``"selection.strategy == 'graft' and (train.batch_size in [64, 128])"``.

    Returns:
        The root node: a :class:`Comparison`, :class:`Not`, :class:`And` or :class:`Or`.

    Raises:
        ConditionSyntaxError: the text does not follow the grammar; ``column`` (1-based) says
            where.

    Example:
        >>> parse_condition("a == 1 or b != 'x' and not c in [true, null]")  # doctest: +ELLIPSIS
        Or(operands=(Comparison(name='a', op='==', values=(1,), ...), And(...)))
        >>> try:
        ...     parse_condition("__import__('os')")
        ... except ConditionSyntaxError as exc:
        ...     print(exc)
        column 11: expected '==', '!=', 'in' or 'not in' after '__import__'; found '('
    """
    return _Parser(text).parse()
