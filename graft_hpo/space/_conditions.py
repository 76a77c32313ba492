"""``when:`` conditions: data (a parameter and the values it must take), read from a string.

As in ConfigSpace (``EqualsCondition``, ``NotEqualsCondition``, ``InCondition``,
``AndConjunction``), a condition is a parameter and its allowed (or, negated, refused) values,
and a parameter's ``when:`` is a conjunction of them. The string form has exactly four clause
shapes, joined by ``and``::

    selection.strategy == 'graft'
    selection.strategy != 'full'
    selection.strategy in ['graft', 'random']
    selection.strategy not in ['full', 'infobatch']

Literals are quoted strings (a backslash escapes a quote), numbers, ``true``, ``false`` and
``null``. There is no ``or``, ``not`` or parenthesis (write ``in [...]``, ``!=`` or
``not in [...]``), and nothing is evaluated: each clause is matched by a regular expression.

Equality is typed: a string equals only a string, a bool only a bool, null only null, and
numbers compare by value (``1 == 1.0``, but ``true != 1``). A condition on a parameter that was
not sampled (an inactive one) does not hold, negated or not.

Example:
    >>> when = parse_when("selection.strategy != 'full' and train.batch_size in [64, 128]")
    >>> when[0]
    Condition(name='selection.strategy', values=('full',), negated=True)
    >>> holds(when, {"selection.strategy": "graft", "train.batch_size": 64})
    True
    >>> holds(when, {"train.batch_size": 64})  # strategy inactive
    False
    >>> str(when[1])
    'train.batch_size in [64, 128]'
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from graft_hpo.config import show

__all__ = ["Condition", "ConditionSyntaxError", "Scalar", "holds", "parse_when", "scalars_equal"]

Scalar = str | int | float | bool | None

NAME = r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*"  # a dotted config path
_LITERAL = r"""'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|[^\s,\[\]'"()]+"""
_LITERALS = re.compile(_LITERAL)
_LIST = rf"\[\s*(?:{_LITERAL})(?:\s*,\s*(?:{_LITERAL}))*\s*,?\s*\]"
_CLAUSE = re.compile(rf"\s*({NAME})\s*(==|!=|not\s+in\b|in\b)\s*({_LIST}|{_LITERAL})\s*")
_AND = re.compile(r"and\b\s*")
_ESCAPED = re.compile(r"\\(.)")
_NUMBER = re.compile(r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")
_WORDS: dict[str, Scalar] = {"true": True, "false": False, "null": None}
_FORMS = "name == value, name != value, name in [values] or name not in [values]"
# what a Python or ConfigSpace user may write instead, and what to write here
_HINTS = tuple(
    (re.compile(pattern), hint)
    for pattern, hint in (  # group 1: where the column points
        (
            rf"(?:{NAME}\s*)?(or\b|\|)",
            "'or' is not supported: for one parameter write 'name in [a, b]'",
        ),
        (
            r"(not\b|!(?!=))",
            "'not' is not supported: write 'name != value' or 'name not in [...]'",
        ),
        (r"(\()", "parentheses are not supported: join clauses with 'and'"),
        (rf"(?:{NAME}\s*)?(&)", "join clauses with 'and'"),
        (rf"{NAME}\s*(=)(?!=)", "use '==' to compare"),
    )
)


class ConditionSyntaxError(ValueError):
    """A condition that is not clauses joined by ``and``.

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


def _text(value: Scalar) -> str:
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    return repr(value)


@dataclass(frozen=True)
class Condition:
    """``name`` takes one of ``values`` (``negated``: none of them).

    Attributes:
        name: the dotted name of an earlier parameter.
        values: the literals it is compared with (one for ``==`` and ``!=``).
        negated: True for ``!=`` and ``not in``.
    """

    name: str
    values: tuple[Scalar, ...]
    negated: bool = False

    def holds(self, sampled: Mapping[str, Any]) -> bool:
        """Whether it holds on the values sampled so far; False if ``name`` is inactive."""
        if self.name not in sampled:
            return False
        found = any(scalars_equal(sampled[self.name], value) for value in self.values)
        return found != self.negated

    def __str__(self) -> str:
        if len(self.values) == 1:
            return f"{self.name} {'!=' if self.negated else '=='} {_text(self.values[0])}"
        listed = ", ".join(map(_text, self.values))
        return f"{self.name} {'not in' if self.negated else 'in'} [{listed}]"


def holds(when: tuple[Condition, ...], sampled: Mapping[str, Any]) -> bool:
    """Whether every condition holds (an empty ``when``: always)."""
    return all(condition.holds(sampled) for condition in when)


def _literal(raw: str, column: int) -> Scalar:
    if raw[0] in "'\"":
        return _ESCAPED.sub(lambda escaped: escaped.group(1), raw[1:-1])
    if raw in _WORDS:
        return _WORDS[raw]
    if _NUMBER.fullmatch(raw):
        if len(raw) <= 40 and math.isfinite(number := float(raw)):
            return int(raw) if raw.lstrip("+-").isdigit() else number
        raise ConditionSyntaxError(f"expected a finite number; found {raw[:40]!r}", column)
    python = {"True": "true", "False": "false", "None": "null"}.get(raw)
    hint = f"write {python}" if python else f"quote strings: '{raw}'"
    raise ConditionSyntaxError(
        f"expected a quoted string, a finite number, true, false or null; found {raw!r} ({hint})",
        column,
    )


def _clause(match: re.Match[str]) -> Condition:
    name, op, value = match.groups()
    column = match.start(3) + 1
    is_list = value.startswith("[")
    if is_list != op.endswith("in"):
        want = f"one value after {op!r}" if is_list else f"a list '[...]' after {op!r}"
        raise ConditionSyntaxError(f"expected {want}; found {value!r}", column)
    raws = _LITERALS.findall(value[1:-1]) if is_list else [value]
    negated = op == "!=" or op.startswith("not")
    return Condition(name, tuple(_literal(raw, column) for raw in raws), negated)


def _fail(text: str, pos: int, expected: str) -> ConditionSyntaxError:
    rest = text[pos:].strip()
    start = len(text) - len(text[pos:].lstrip()) + 1
    for pattern, hint in _HINTS:
        if (found := pattern.match(rest)) is not None:
            return ConditionSyntaxError(f"{hint}; found {show(rest)}", start + found.start(1))
    shown = show(rest) if rest else "the end of the condition"
    return ConditionSyntaxError(f"expected {expected}; found {shown}", start)


def parse_when(text: str) -> tuple[Condition, ...]:
    """Read a ``when:`` string into its conditions, all of which must hold.

    Args:
        text: e.g. ``"model.name == 'mlp' and selection.strategy in ['graft', 'random']"``.

    Returns:
        The conditions, in the order written.

    Raises:
        ConditionSyntaxError: the text is not clauses joined by ``and``; ``column`` (1-based)
            says where.

    Example:
        >>> try:
        ...     parse_when("a == 1 or a == 2")
        ... except ConditionSyntaxError as exc:
        ...     print(exc.column, exc.message)
        8 'or' is not supported: for one parameter write 'name in [a, b]'; found 'or a == 2'
    """
    conditions, pos = [], 0
    while True:
        match = _CLAUSE.match(text, pos)
        if match is None:
            raise _fail(text, pos, f"a clause ({_FORMS})")
        conditions.append(_clause(match))
        pos = match.end()
        if pos == len(text):
            return tuple(conditions)
        joint = _AND.match(text, pos)
        if joint is None:
            raise _fail(text, pos, "'and' or the end of the condition")
        pos = joint.end()
