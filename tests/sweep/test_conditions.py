"""The ``when:`` language: truth tables, precedence, typed equality, syntax errors, no eval."""

from __future__ import annotations

import builtins
from typing import Any

import pytest

from graft_hpo.sweep._conditions import And
from graft_hpo.sweep._conditions import Comparison
from graft_hpo.sweep._conditions import ConditionSyntaxError
from graft_hpo.sweep._conditions import Not
from graft_hpo.sweep._conditions import Or
from graft_hpo.sweep._conditions import comparisons
from graft_hpo.sweep._conditions import condition_holds
from graft_hpo.sweep._conditions import parse_condition

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
    ("a in [1, 2, 3]", {"a": 2}, True),
    ("a in [1, 2, 3,]", {"a": 4}, False),
    ("a in ['x', null]", {"a": None}, True),
    ("a not in ['x', 'y']", {"a": "z"}, True),
    ("a not in ['x', 'y']", {"a": "x"}, False),
    ("a not in [true]", {"a": 1}, True),
    ("not a == 1", {"a": 2}, True),
    ("not not a == 1", {"a": 1}, True),
    ("model.options.width in [16, 32]", {"model.options.width": 32}, True),
    ("x.in == 1", {"x.in": 1}, True),  # a keyword is only a keyword on its own
    ("a==1and b==2", {"a": 1, "b": 2}, True),
    ("  a  ==  'x'  ", {"a": "x"}, True),
    # precedence: not > and > or, as in Python
    ("a == 1 or b == 1 and c == 1", {"a": 1, "b": 0, "c": 0}, True),
    ("a == 1 or b == 1 and c == 1", {"a": 0, "b": 1, "c": 0}, False),
    ("(a == 1 or b == 1) and c == 1", {"a": 1, "b": 0, "c": 0}, False),
    ("not a == 1 and b == 1", {"a": 2, "b": 2}, False),
    ("not (a == 1 and b == 1)", {"a": 2, "b": 2}, True),
    ("a == 1 and b == 1 or c == 1", {"a": 0, "b": 0, "c": 1}, True),
    ("a == 1 and (b == 1 or c == 1)", {"a": 0, "b": 0, "c": 1}, False),
    ("((a == 1))", {"a": 1}, True),
]


@pytest.mark.parametrize(("text", "values", "expected"), TRUTH_TABLE)
def test_truth_table(text: str, values: dict[str, Any], expected: bool) -> None:
    assert condition_holds(parse_condition(text), values) is expected


def test_ast_shape_follows_precedence() -> None:
    node = parse_condition("a == 1 or not b in ['x', 2] and c != null")
    assert node == Or(
        (
            Comparison("a", "==", (1,)),
            And((Not(Comparison("b", "in", ("x", 2))), Comparison("c", "!=", (None,)))),
        )
    )
    assert [c.column for c in comparisons(node)] == [1, 15, 33]


def test_literal_types_are_kept() -> None:
    node = parse_condition("a in [1, 1.0, true, null, 'x']")
    assert isinstance(node, Comparison)
    assert [type(v) for v in node.values] == [int, float, bool, type(None), str]


def test_names_in_order_without_duplicates() -> None:
    node = parse_condition("b == 1 and (a == 2 or b == 3) and not c.d in [1]")
    assert node.names() == ("b", "a", "c.d")


@pytest.mark.parametrize(
    "text",
    ["b != 1", "b not in [1]", "not b == 1", "a == 1 or b == 1", "a == 1 and b != 2"],
)
def test_a_condition_on_an_inactive_parameter_does_not_hold(text: str) -> None:
    # "b" was not sampled: even conditions that would be true for any value of b are false
    assert condition_holds(parse_condition(text), {"a": 1}) is False


SYNTAX_ERRORS = [
    ("a = 1", 3, "unexpected character '=' (use '==')"),
    (
        "a == ",
        6,
        "expected a literal (a quoted string, a number, true, false or null); found the end",
    ),
    ("a == full", 6, "found 'full' (quote strings: 'full')"),
    ("a == True", 6, "found 'True' (write true)"),
    ("a == None", 6, "(write null)"),
    ("a == b", 6, "(quote strings: 'b')"),  # comparing two parameters is not in the language
    ("a in 1", 6, "expected '[' to start a list of literals; found '1'"),
    ("a in [1 2]", 9, "expected ',' or ']'; found '2'"),
    ("a in []", 7, "expected a literal"),
    ("a not 1", 3, "expected '==', '!=', 'in' or 'not in' after 'a'; found 'not'"),
    ("(a == 1", 8, "expected ')' or 'and'/'or'; found the end of the condition"),
    ("a == 1)", 7, "expected 'and', 'or' or the end of the condition; found ')'"),
    ("a == 1 and", 11, "expected a parameter name, 'not' or '('; found the end"),
    ("a == 1 or or b == 1", 11, "expected a parameter name, 'not' or '('; found 'or'"),
    ("a == 'x", 6, "unterminated string starting with '"),
    ("a && b", 3, "unexpected character '&' (use 'and')"),
    ("a == 1 || b == 2", 8, "unexpected character '|' (use 'or')"),
    ("!a", 1, "unexpected character '!' (use 'not')"),
    ("", 1, "expected a parameter name, 'not' or '('; found the end"),
    ("1 == a", 1, "expected a parameter name, 'not' or '('; found '1'"),
    ("'x' == a", 1, "expected a parameter name"),
    ("true", 1, "expected a parameter name"),
    ("a", 2, "expected '==', '!=', 'in' or 'not in' after 'a'"),
    ("a == 1 + 1", 8, "unexpected character '+'"),
    ("a == 1e999", 6, "number 1e999 is out of range"),
    ("a == 1; import os", 7, "unexpected character ';'"),
    ("a.b() == 1", 4, "expected '==', '!=', 'in' or 'not in' after 'a.b'; found '('"),
    ("a[0] == 1", 2, "found '['"),
    ("a == [1]", 6, "expected a literal"),
    # Python that must never run
    ("__import__('os')", 11, "after '__import__'; found '('"),
    ("__import__('os').system('true') == 0", 11, "found '('"),
    ("open('/etc/passwd').read() == 'x'", 5, "found '('"),
    ("lambda: 0", 7, "unexpected character ':'"),
    ("a == 1 if b else c", 8, "found 'if'"),
    ("a.__class__ == 1 or exec('x') == 1", 25, "after 'exec'; found '('"),
]


@pytest.mark.parametrize(("text", "column", "fragment"), SYNTAX_ERRORS)
def test_syntax_errors_name_the_position(text: str, column: int, fragment: str) -> None:
    with pytest.raises(ConditionSyntaxError) as info:
        parse_condition(text)
    assert info.value.column == column
    assert fragment in info.value.message
    assert str(info.value).startswith(f"column {column}: ")


def test_nesting_is_bounded() -> None:
    with pytest.raises(ConditionSyntaxError, match="nested"):
        parse_condition("not " * 40 + "a == 1")
    with pytest.raises(ConditionSyntaxError, match="nested"):
        parse_condition("(" * 40 + "a == 1" + ")" * 40)
    assert condition_holds(parse_condition("(" * 10 + "a == 1" + ")" * 10), {"a": 1})


def test_never_evaluates_python(monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("the condition language must not run Python")

    for name in ("eval", "exec", "compile", "__import__"):
        monkeypatch.setattr(builtins, name, forbidden)
    node = parse_condition("a == 'x' and not (b in [1, 2] or c != null)")
    assert condition_holds(node, {"a": "x", "b": 3, "c": None}) is True
    assert condition_holds(node, {"a": "x", "b": 1, "c": None}) is False
    with pytest.raises(ConditionSyntaxError):
        parse_condition("__import__('os').system('echo pwned')")
