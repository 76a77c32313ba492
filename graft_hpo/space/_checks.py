"""Check the plain data of a search-space YAML file, collecting every problem at once.

:func:`check_space_data` turns ``{"params": {...}}`` into one keyword dict per parameter (the
fields of :class:`graft_hpo.space.ParamSpec`) plus a list of messages, each of the form
``"params.<dotted.name>.<field> must be <constraint>; got <value>"``.
"""

from __future__ import annotations

import decimal
import difflib
import math
import re
from collections.abc import Mapping
from typing import Any

from graft_hpo.config import show
from graft_hpo.space._conditions import NAME
from graft_hpo.space._conditions import Condition
from graft_hpo.space._conditions import ConditionSyntaxError
from graft_hpo.space._conditions import Scalar
from graft_hpo.space._conditions import parse_when
from graft_hpo.space._conditions import scalars_equal

__all__ = ["PARAM_TYPES", "check_space_data"]

PARAM_TYPES = ("float", "int", "categorical")
_NUMERIC_FIELDS = ("type", "low", "high", "log", "step", "when")
_FIELDS: dict[str, tuple[str, ...]] = {
    "float": _NUMERIC_FIELDS,
    "int": _NUMERIC_FIELDS,
    "categorical": ("type", "choices", "when"),
}
_ARTICLED = {
    "float": "a float parameter",
    "int": "an int parameter",
    "categorical": "a categorical parameter",
}
_ALL_FIELDS = ("type", "low", "high", "log", "step", "choices", "when")
_TOP_KEYS = ("params",)
_PATH = re.compile(NAME)
_SCALARS = "strings, finite numbers, true, false or null"


def _close(word: object, choices: tuple[str, ...] | list[str]) -> str:
    if not isinstance(word, str):
        return ""
    # a transposition ("lgo") first: difflib rates 'low' and 'log' alike for it
    swapped = [choice for choice in choices if sorted(choice) == sorted(word)]
    match = swapped or difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {match[0]!r}?)" if match else ""


def _number(value: Any, key: str, errors: list[str], *, integer: bool) -> int | float | None:
    if isinstance(value, bool) or not isinstance(value, int if integer else int | float):
        errors.append(
            f"{key} must be {'an integer' if integer else 'a number'}; got {show(value)}"
        )
        return None
    if not math.isfinite(value):
        errors.append(f"{key} must be a finite number; got {show(value)}")
        return None
    return int(value) if integer else float(value)


def _range_fields(
    kind: str, spec: Mapping[str, Any], key: str, errors: list[str]
) -> dict[str, Any] | None:
    """``low``, ``high``, ``log`` and ``step`` of a float or int parameter, or None."""
    first = len(errors)
    integer = kind == "int"
    bounds: dict[str, int | float | None] = {}
    for field in ("low", "high"):
        if field in spec:
            bounds[field] = _number(spec[field], f"{key}.{field}", errors, integer=integer)
        else:
            errors.append(f"{key}.{field} is required (a {kind} parameter needs low and high)")
    low, high = bounds.get("low"), bounds.get("high")
    log = spec.get("log", False)
    if not isinstance(log, bool):
        errors.append(f"{key}.log must be true or false; got {show(log)}")
        log = False
    step = None
    if spec.get("step") is not None:
        step = _number(spec["step"], f"{key}.step", errors, integer=integer)
        if step is not None and step <= 0:
            errors.append(f"{key}.step must be > 0; got {show(spec['step'])}")
            step = None
    if low is not None and high is not None and low >= high:
        errors.append(f"{key}.low must be < high; got low={low!r}, high={high!r}")
    elif log and low is not None and low <= 0:
        errors.append(f"{key}.low must be > 0 when log is true; got {low!r}")
    if log and step is not None and not (integer and step == 1):
        # Optuna refuses the combination: its log-scaled distributions have no step
        errors.append(f"{key}.step must be omitted when log is true; got {step!r}")
    if len(errors) > first or low is None or high is None:
        return None
    if step is not None:
        span = decimal.Decimal(str(high)) - decimal.Decimal(str(low))
        if span % decimal.Decimal(str(step)) != 0:
            # Optuna would silently lower high to the last multiple of step
            errors.append(f"{key}.step must divide high - low = {span}; got {step!r}")
            return None
    return {"low": low, "high": high, "log": log, "step": step}


def _choices(spec: Mapping[str, Any], key: str, errors: list[str]) -> tuple[Scalar, ...] | None:
    if "choices" not in spec:
        errors.append(f"{key}.choices is required (a list of {_SCALARS})")
        return None
    choices = spec["choices"]
    if not isinstance(choices, list | tuple) or not choices:
        errors.append(f"{key}.choices must be a non-empty list of {_SCALARS}; got {show(choices)}")
        return None
    first = len(errors)
    for i, choice in enumerate(choices):
        scalar = choice is None or isinstance(choice, str | bool | int | float)
        if not scalar or (isinstance(choice, float) and not math.isfinite(choice)):
            errors.append(
                f"{key}.choices[{i}] must be a string, a finite number, true, false or null; "
                f"got {show(choice)}"
            )
    if len(errors) > first:
        return None
    for i, a in enumerate(choices):
        # Python's == on purpose: Optuna finds a choice with list.index, so 1, 1.0 and true
        # are one choice to it
        twin = next((b for b in choices[:i] if a == b), _NO_TWIN)
        if twin is not _NO_TWIN:
            errors.append(
                f"{key}.choices must be distinct (Optuna does not tell 1, 1.0 and true apart); "
                f"got {twin!r} and {a!r} in {show(list(choices))}"
            )
            return None
    return tuple(choices)


_NO_TWIN = object()


def _check_literals(
    when: tuple[Condition, ...],
    declared: Mapping[str, dict[str, Any] | None],
    key: str,
    errors: list[str],
) -> None:
    """A literal that a parameter can never take makes a condition silently constant."""
    for condition in when:
        target = declared.get(condition.name)
        if target is None:  # declared, but invalid itself: already reported
            continue
        for value in condition.values:
            if target["type"] == "categorical":
                choices = target["choices"]
                if not any(scalars_equal(value, choice) for choice in choices):
                    words = [choice for choice in choices if isinstance(choice, str)]
                    errors.append(
                        f"{key}.when must compare {condition.name} with one of its choices "
                        f"({', '.join(map(repr, choices))}); got {value!r}{_close(value, words)}"
                    )
            elif isinstance(value, bool) or not isinstance(value, int | float):
                errors.append(
                    f"{key}.when must compare {condition.name} (a {target['type']} parameter) "
                    f"with numbers; got {value!r}"
                )


def _condition(
    name: str,
    text: Any,
    declared: Mapping[str, dict[str, Any] | None],
    later: list[str],
    errors: list[str],
) -> tuple[Condition, ...]:
    key = f"params.{name}"
    if not isinstance(text, str):
        errors.append(
            f"{key}.when must be a condition string like \"selection.strategy == 'graft'\"; "
            f"got {show(text)}"
        )
        return ()
    try:
        when = parse_when(text)
    except ConditionSyntaxError as exc:
        errors.append(
            f"{key}.when has invalid syntax at column {exc.column}: {exc.message}; in {show(text)}"
        )
        return ()
    first = len(errors)
    for ref in dict.fromkeys(condition.name for condition in when):
        if ref in declared:
            continue
        if ref == name:
            why = "the parameter itself"
        elif ref in later:
            why = f"declared after {name}"
        else:
            why = f"not a parameter of this space{_close(ref, [*declared, *later])}"
        errors.append(
            f"{key}.when must name only parameters declared before {name}; got {ref!r}, {why}"
        )
    if len(errors) == first:
        _check_literals(when, declared, key, errors)
    return when


def _param(
    name: str,
    spec: Any,
    declared: Mapping[str, dict[str, Any] | None],
    later: list[str],
    errors: list[str],
) -> dict[str, Any] | None:
    key = f"params.{name}"
    if not isinstance(spec, Mapping):
        example = "{type: float, low: 0.01, high: 0.1}"
        errors.append(f"{key} must be a mapping like {example}; got {show(spec)}")
        return None
    first = len(errors)
    kind = spec.get("type")
    listing = ", ".join(PARAM_TYPES)
    if "type" not in spec:
        errors.append(f"{key}.type is required (one of {listing})")
    elif kind not in PARAM_TYPES:
        hint = _close(kind, PARAM_TYPES)
        errors.append(f"{key}.type must be one of {listing}; got {show(kind)}{hint}")
    valid = _FIELDS.get(kind, _ALL_FIELDS) if isinstance(kind, str) else _ALL_FIELDS
    for field in spec:
        if field not in valid:
            what = _ARTICLED.get(kind, "a parameter") if isinstance(kind, str) else "a parameter"
            errors.append(
                f"unknown key '{key}.{field}'{_close(field, valid)}; {what} takes "
                f"{', '.join(valid)}"
            )
    fields: dict[str, Any] | None = None
    if kind == "categorical":
        choices = _choices(spec, key, errors)
        fields = None if choices is None else {"choices": choices}
    elif kind in ("float", "int"):
        fields = _range_fields(kind, spec, key, errors)
    when = _condition(name, spec["when"], declared, later, errors) if "when" in spec else ()
    if fields is None or len(errors) > first:
        return None
    return {"name": name, "type": kind, **fields, "when": when}


def _params(params: Mapping[Any, Any], errors: list[str]) -> list[dict[str, Any]]:
    names = [name for name in params if isinstance(name, str) and _PATH.fullmatch(name)]
    declared: dict[str, dict[str, Any] | None] = {}
    checked: list[dict[str, Any]] = []
    for name, spec in params.items():
        if not isinstance(name, str) or not _PATH.fullmatch(name):
            errors.append(
                "params keys must be dotted config paths like 'selection.fraction' (parts of "
                f"letters, digits and '_' joined by '.'); got {show(name)}"
            )
            continue
        later = names[names.index(name) + 1 :]
        fields = _param(name, spec, declared, later, errors)
        declared[name] = fields  # None: invalid, yet later conditions may still name it
        if fields is not None:
            checked.append(fields)
    return checked


def check_space_data(data: Any) -> tuple[list[dict[str, Any]], list[str]]:
    """Check a parsed search-space document.

    Args:
        data: ``{"params": {dotted_name: {"type": ..., ...}, ...}}``.

    Returns:
        ``(fields, errors)``: one dict of ``ParamSpec`` fields per parameter, in order, and
        every problem found (empty when the data is valid).
    """
    if not isinstance(data, Mapping):
        return [], [f"must be a mapping with the key 'params'; got {show(data)}"]
    errors: list[str] = []
    for key in data:
        if key not in _TOP_KEYS:
            hint = _close(key, _TOP_KEYS)
            errors.append(f"unknown key {key!r}{hint}; a search space has only the key 'params'")
    params = data.get("params")
    if "params" not in data:
        errors.append("params is required: a mapping of dotted config paths to parameter specs")
    elif not isinstance(params, Mapping) or not params:
        errors.append(
            "params must be a non-empty mapping of dotted config paths to parameter specs; "
            f"got {show(params)}"
        )
    else:
        fields = _params(params, errors)
        return fields, errors
    return [], errors
