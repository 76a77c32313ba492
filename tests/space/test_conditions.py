"""``when:`` conditions: truth tables, typed equality, the written form, syntax errors, no eval."""

from __future__ import annotations

import builtins
from typing import Any

import pytest

from graft_hpo.space import Condition
from graft_hpo.space import ConditionSyntaxError
from graft_hpo.space import parse_when
from graft_hpo.space._conditions import holds

TRUTH_TABLE: list[tuple[str, dict[str, Any], bool]] = [
    ("a == 'x'", {"a": "x"}, True),
    ("a == 'x'", {"a": "y"}, False),
    ('a == "x"', {"a": "x"}, True),
    ("a != 'x'", {"a": "y"}, True),
    ("a != 'x'", {"a": "x"}, False),
    ("a == 1", {"a": 1.0}, True),  # numbers compare by value
    ("a == 1.0", {"a": 1}, True),
    ("a == 1", {"a": True}, False),  # ... but a bool is not a number
    ("a == true", {"a": True}, True),
    ("a == true", {"a": 1}, False),
    ("a == false", {"a": 0}, False),
    ("a == '1'", {"a": 1}, False),
    ("a == null", {"a": None}, True),
    ("a == null", {"a": 0}, False),
    ("a != null", {"a": 0}, True),
    ("a == -2", {"a": -2}, True),
    ("a == +3", {"a": 3}, True),
    ("a == .5", {"a": 0.5}, True),
    ("a == 1e-3", {"a": 0.001}, True),
    ("a == 2.5E+1", {"a": 25}, True),
    ("a == 'it\\'s'", {"a": "it's"}, True),
    ("a == 'back\\\\slash'", {"a": "back\\slash"}, True),
    ("a == 'a and b'", {"a": "a and b"}, True),  # keywords inside strings are text
    ("a == 'x, [y]'", {"a": "x, [y]"}, True),
    ("a in [1, 2, 3]", {"a": 2}, True),
    ("a in [1, 2, 3,]", {"a": 4}, False),
    ("a in ['x', null]", {"a": None}, True),
    ("a in ['x, y']", {"a": "x, y"}, True),
    ("a not in ['x', 'y']", {"a": "z"}, True),
    ("a not in ['x', 'y']", {"a": "x"}, False),
    ("a not in [true]", {"a": 1}, True),
    ("model.options.width in [16, 32]", {"model.options.width": 32}, True),
    ("x.in == 1", {"x.in": 1}, True),  # a keyword is only a keyword on its own
    ("a == 1 and b == 2", {"a": 1, "b": 2}, True),
    ("a == 1 and b == 2", {"a": 1, "b": 3}, False),
    ("a==1 and b in[2]", {"a": 1, "b": 2}, True),
    ("  a  ==  'x'  ", {"a": "x"}, True),
]


@pytest.mark.parametrize(("text", "values", "expected"), TRUTH_TABLE)
def test_truth_table(text: str, values: dict[str, Any], expected: bool) -> None:
    assert holds(parse_when(text), values) is expected


def test_conditions_are_data_in_the_order_written() -> None:
    assert parse_when("a == 1 and b not in ['x', 2] and c != null") == (
        Condition("a", (1,)),
        Condition("b", ("x", 2), negated=True),
        Condition("c", (None,), negated=True),
    )


def test_literal_types_are_kept() -> None:
    (condition,) = parse_when("a in [1, 1.0, true, null, 'x']")
    assert [type(v) for v in condition.values] == [int, float, bool, type(None), str]


@pytest.mark.parametrize(
    "text",
    [
        "a == 'x'",
        "a != 1.5",
        "a in [1, 'two', true, null]",
        "a not in ['x', 'y'] and b == false",
        "a == 'it\\'s'",
        'a == "say \\"hi\\""',
    ],
)
def test_the_written_form_reads_back(text: str) -> None:
    when = parse_when(text)
    assert parse_when(" and ".join(map(str, when))) == when


@pytest.mark.parametrize("text", ["b != 1", "b not in [1]", "a == 1 and b != 2"])
def test_a_condition_on_an_inactive_parameter_does_not_hold(text: str) -> None:
    # "b" was not sampled: even conditions that would be true for any value of b are false
    assert holds(parse_when(text), {"a": 1}) is False


SYNTAX_ERRORS = [
    ("a = 1", 3, "use '==' to compare"),
    ("a == ", 1, "expected a clause (name == value, name != value, name in [values] or name"),
    ("a == full", 6, "found 'full' (quote strings: 'full')"),
    ("a == True", 6, "found 'True' (write true)"),
    ("a == None", 6, "(write null)"),
    ("a == b", 6, "(quote strings: 'b')"),  # comparing two parameters is not in the language
    ("a in 1", 6, "expected a list '[...]' after 'in'; found '1'"),
    ("a == [1]", 6, "expected one value after '=='; found '[1]'"),
    ("a in [1 2]", 1, "expected a clause"),
    ("a in []", 1, "expected a clause"),
    ("a == 1)", 7, "expected 'and' or the end of the condition; found ')'"),
    ("a == 1 and", 11, "found the end of the condition"),
    ("a == 'x", 1, "expected a clause"),
    ("a == 1e999", 6, "expected a finite number; found '1e999'"),
    ("a == 1; import os", 6, "found '1;'"),
    # what Python, Optuna and ConfigSpace users may write, and what to write instead
    ("a == 1 or a == 2", 8, "'or' is not supported: for one parameter write 'name in [a, b]'"),
    ("a == 1 || b == 2", 8, "'or' is not supported"),
    ("a || b", 3, "'or' is not supported"),
    ("not a == 1", 1, "'not' is not supported: write 'name != value' or 'name not in [...]'"),
    ("!a", 1, "'not' is not supported"),
    ("(a == 1)", 1, "parentheses are not supported: join clauses with 'and'"),
    ("a == 1 and (b == 1)", 12, "parentheses are not supported"),
    ("a && b", 3, "join clauses with 'and'"),
    ("a.b() == 1", 1, "expected a clause"),
    ("a[0] == 1", 1, "expected a clause"),
    # Python that must never run
    ("__import__('os')", 1, "expected a clause"),
    ("__import__('os').system('true') == 0", 1, "expected a clause"),
    ("lambda: 0", 1, "expected a clause"),
    ("a == 1 if b else c", 8, "expected 'and' or the end of the condition; found 'if b else c'"),
]


@pytest.mark.parametrize(("text", "column", "fragment"), SYNTAX_ERRORS)
def test_syntax_errors_name_the_position(text: str, column: int, fragment: str) -> None:
    with pytest.raises(ConditionSyntaxError) as info:
        parse_when(text)
    assert fragment in info.value.message
    assert info.value.column == column
    assert str(info.value).startswith(f"column {column}: ")


def test_never_evaluates_python(monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("the condition language must not run Python")

    for name in ("eval", "exec", "compile", "__import__"):
        monkeypatch.setattr(builtins, name, forbidden)
    when = parse_when("a == 'x' and b not in [1, 2] and c == null")
    assert holds(when, {"a": "x", "b": 3, "c": None}) is True
    assert holds(when, {"a": "x", "b": 1, "c": None}) is False
    with pytest.raises(ConditionSyntaxError):
        parse_when("__import__('os').system('echo pwned')")
