"""Turn plain nested data into a :class:`PipelineConfig`, collecting every problem at once.

Types come from the dataclass annotations in :mod:`._schema`; value constraints come from the
one table below (:data:`RULES`, one entry per section) plus a few cross-field checks
(:data:`CROSS_CHECKS`, in :mod:`._cross`). Every message has the form
``"<dotted.key> must be <constraint>; got <value!r>"``. The selectors check their knobs against
the same table (:func:`rule_errors`), so a range is declared once.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import numbers
import re
import types
import typing
from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from graft_hpo.config._cross import CROSS_CHECKS
from graft_hpo.config._cross import CrossCheck
from graft_hpo.config._schema import DataConfig
from graft_hpo.config._schema import EmissionsConfig
from graft_hpo.config._schema import ModelConfig
from graft_hpo.config._schema import ObjectiveConfig
from graft_hpo.config._schema import PipelineConfig
from graft_hpo.config._schema import ResourcesConfig
from graft_hpo.config._schema import RetrainConfig
from graft_hpo.config._schema import SchedulerConfig
from graft_hpo.config._schema import SearchConfig
from graft_hpo.config._schema import SelectConfig
from graft_hpo.config._schema import SelectionConfig
from graft_hpo.config._schema import TrackingConfig
from graft_hpo.config._schema import TrainConfig

__all__ = [
    "CROSS_CHECKS",
    "NOISE_FILTERS",
    "RULES",
    "SAMPLERS",
    "STRATEGIES",
    "Check",
    "CrossCheck",
    "build_config",
    "plain",
    "rule_errors",
    "show",
]


def show(value: Any, limit: int = 80) -> str:
    """``repr(value)``, shortened to about ``limit`` characters for messages."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _close(word: str, choices: list[str]) -> str:
    match = difflib.get_close_matches(word, choices, n=1)
    return f" (did you mean {match[0]!r}?)" if match else ""


@dataclass(frozen=True)
class Check:
    """One value constraint: the text after "must be", a predicate, an optional hint."""

    text: str
    ok: Callable[[Any], bool]
    hint: Callable[[Any], str] | None = None


def at_least(low: float) -> Check:
    return Check(f">= {low}", lambda v: v >= low)


def above(low: float) -> Check:
    return Check(f"> {low}", lambda v: v > low)


def interval(low: float, high: float, bounds: str) -> Check:
    """``bounds`` is one of ``"()"``, ``"(]"``, ``"[)"``, ``"[]"``."""
    lo_ok = (lambda v: v >= low) if bounds[0] == "[" else (lambda v: v > low)
    hi_ok = (lambda v: v <= high) if bounds[1] == "]" else (lambda v: v < high)
    return Check(f"in {bounds[0]}{low}, {high}{bounds[1]}", lambda v: lo_ok(v) and hi_ok(v))


def one_of(*choices: str) -> Check:
    def hint(value: Any) -> str:
        return _close(value, list(choices)) if isinstance(value, str) else ""

    return Check(f"one of {', '.join(map(repr, choices))}", lambda v: v in choices, hint)


def matches(pattern: str, text: str) -> Check:
    compiled = re.compile(pattern)
    return Check(text, lambda v: compiled.fullmatch(v) is not None)


# Sane upper bounds for counts: a typo (train.epochs=1000000000) is refused, not swept forever
MAX_EPOCHS = 100_000
MAX_SAMPLES = 1_000_000  # per batch
MAX_TRIALS = 1_000_000
MAX_CONCURRENT = 10_000
NON_EMPTY = Check("a non-empty string", lambda v: v.strip() != "")
NON_EMPTY_LIST = Check("a non-empty list", lambda v: len(v) > 0)
NAME = matches(r"[A-Za-z0-9_.-]+", "a non-empty string of letters, digits, '_', '.' and '-'")
MODE = one_of("max", "min")
SEED = interval(0, 2**32 - 1, "[]")  # numpy's (and Optuna's samplers') seeds: 32 bits
SAMPLERS = ("tpe", "nsga2", "gp", "random")  # Optuna's; sweep/_search.py builds each one
STRATEGIES = ("graft", "random", "full", "infobatch")  # selection's registry: one selector each
NOISE_FILTERS = ("chance", "misfit", "knn", "none")  # the rules of selection/_noise.py
PATH_OR_URI = matches(r"(/|[a-z][a-z0-9+.-]*://).+", "an absolute path or a URI (s3://...)")

# section dataclass -> field -> constraint on the (type-checked, non-None) value
RULES: dict[type, dict[str, Check]] = {
    PipelineConfig: {"name": NAME},
    DataConfig: {
        "name": NON_EMPTY,
        "val_fraction": interval(0, 1, "()"),
        "test_fraction": interval(0, 1, "[)"),
        "root": NON_EMPTY,
        "label_noise": interval(0, 1, "[)"),
    },
    ModelConfig: {"name": NON_EMPTY},
    TrainConfig: {
        "epochs": interval(1, MAX_EPOCHS, "[]"),
        "batch_size": interval(1, MAX_SAMPLES, "[]"),
        "optimizer": one_of("sgd", "adamw"),
        "lr": above(0),
        "momentum": interval(0, 1, "[)"),
        "weight_decay": at_least(0),
        "scheduler": one_of("cosine", "none"),
        "grad_clip": at_least(0),
        "seed": SEED,
        "device": matches(r"auto|cpu|cuda|cuda:[0-9]+", "'auto', 'cpu', 'cuda' or 'cuda:N'"),
        "eval_every": interval(1, MAX_EPOCHS, "[]"),
        "data_on_device": interval(0, 1, "[]"),
        "memory_format": one_of("auto", "channels_last", "contiguous"),
        "checkpoint_every": interval(0, MAX_EPOCHS, "[]"),
    },
    SelectionConfig: {
        "strategy": one_of(*STRATEGIES),
        "fraction": interval(0, 1, "(]"),
        "select_every": interval(1, MAX_EPOCHS, "[]"),
        "warm_start_epochs": interval(0, MAX_EPOCHS, "[]"),
        "alignment_threshold": interval(0, 1, "(]"),
        "features": one_of("embedding", "raw"),
        "rank": interval(1, MAX_SAMPLES, "[]"),
        "batch_size": interval(2, MAX_SAMPLES, "[]"),  # a batch of one has nothing to choose
        "maxvol_tol": at_least(1),
        "pool": at_least(1),
        "scope": one_of("trial", "sweep"),
        "prune_ratio": interval(0, 1, "[)"),
        "anneal": interval(0, 1, "[]"),
        "proxy_epochs": interval(0, 100, "[]"),  # each is a full-data epoch before any trial
        "noise_filter": one_of(*NOISE_FILTERS),
        "dedup": interval(0, 1, "(]"),
    },
    EmissionsConfig: {
        "country_iso_code": matches(r"[A-Z]{3}", "an ISO 3166-1 alpha-3 code (3 capital letters)"),
        "measure_power_secs": above(0),
    },
    TrackingConfig: {"uri": NON_EMPTY, "experiment": NON_EMPTY},
    ObjectiveConfig: {"metric": NON_EMPTY, "mode": MODE},
    SchedulerConfig: {
        "type": one_of("asha", "moasha"),
        "metric": NON_EMPTY,
        "mode": MODE,
        "grace_period": interval(1, MAX_EPOCHS, "[]"),
        "reduction_factor": above(1),
    },
    SearchConfig: {
        "space": NON_EMPTY,
        "objectives": NON_EMPTY_LIST,
        "sampler": one_of(*SAMPLERS),
        "trials": interval(1, MAX_TRIALS, "[]"),
        "seed": SEED,
        "startup_trials": interval(0, MAX_TRIALS, "[]"),  # 0: the sampler's model from the start
        "max_concurrent": interval(1, MAX_CONCURRENT, "[]"),
        "stopped_report": one_of("projected", "complete", "pruned"),
        "max_failures": interval(0, 100, "[]"),
        "storage": matches(r"[a-z][a-z0-9+]*://.*", "an SQLAlchemy URL such as 'sqlite:///...'"),
        "checkpoint_storage": PATH_OR_URI,
        "co2_budget_kg": above(0),
        "energy_budget_kwh": above(0),
        "time_budget_s": above(0),
    },
    ResourcesConfig: {"cpu": above(0), "gpu": at_least(0)},
    SelectConfig: {"policy": NON_EMPTY},
    RetrainConfig: {"epochs": at_least(1), "register": NAME},
}


_INVALID = object()  # a value that failed its type check
_hints = functools.cache(typing.get_type_hints)  # a dataclass's field annotations, resolved once


def _join(path: str, key: object) -> str:
    return f"{path}.{key}" if path else str(key)


def _split_optional(tp: Any) -> tuple[Any, bool]:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [arg for arg in typing.get_args(tp) if arg is not type(None)]
        if len(args) == 1:
            return args[0], len(args) < len(typing.get_args(tp))
    return tp, False


def _type_name(tp: Any) -> str:
    if dataclasses.is_dataclass(tp) or typing.get_origin(tp) is dict:
        return "a mapping"
    if typing.get_origin(tp) is list:
        return "a list"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}[tp]


def _coerce(tp: Any, value: Any, path: str, errors: list[str]) -> Any:
    """Check ``value`` against the annotation ``tp``; return it converted, or ``_INVALID``."""
    inner, optional = _split_optional(tp)
    if value is None and optional:
        return None
    origin = typing.get_origin(inner)
    if dataclasses.is_dataclass(inner):
        if value is None:  # an empty section ("train:" with every key commented out)
            value = {}
        if isinstance(value, Mapping):
            return _build(typing.cast(type, inner), value, path, errors)
    elif origin is dict:
        if value is None:
            return {}
        if isinstance(value, Mapping) and all(isinstance(key, str) for key in value):
            return plain(value)
    elif origin is list:
        if isinstance(value, list | tuple):
            (item_type,) = typing.get_args(inner)
            items = [_coerce(item_type, v, f"{path}[{i}]", errors) for i, v in enumerate(value)]
            return _INVALID if any(item is _INVALID for item in items) else items
    elif inner is bool:
        if isinstance(value, bool):
            return value
    elif inner is int:
        if isinstance(value, numbers.Integral) and not isinstance(value, bool):
            return int(value)
    elif inner is float:
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            if math.isfinite(value):
                return float(value)
            errors.append(f"{path} must be a finite number; got {show(value)}")
            return _INVALID
    elif inner is str:
        if isinstance(value, str):
            return value
    else:  # pragma: no cover - the schema uses only the types above
        raise TypeError(f"unsupported annotation {tp!r} for {path}")
    expected = _type_name(inner) + (" or null" if optional else "")
    # YAML 1.1 reads unquoted yes/no/on/off (and NO, Norway's code) as booleans
    hint = " (quote it in YAML)" if inner is str and isinstance(value, bool) else ""
    if origin is dict and isinstance(value, Mapping):
        expected = "a mapping with string keys"
    errors.append(f"{path} must be {expected}; got {show(value)}{hint}")
    return _INVALID


def plain(value: Any) -> Any:
    """A deep copy of free-form YAML data as plain dicts and lists."""
    if isinstance(value, Mapping):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return value


def _broken_rule(cls: type, name: str, value: Any, given: Any, path: str) -> str | None:
    """The message for field ``name`` of section ``cls`` (at ``path``) if the type-checked
    ``value`` breaks its rule in :data:`RULES`, else None; null always passes."""
    check = RULES.get(cls, {}).get(name)
    if value is None or check is None or check.ok(value):
        return None
    optional = _split_optional(_hints(cls)[name])[1]
    hint = check.hint(value) if check.hint else ""
    text = check.text + (" or null" if optional else "")
    return f"{_join(path, name)} must be {text}; got {show(given)}{hint}"


def rule_errors(values: Mapping[str, Any]) -> list[str]:
    """Check values, keyed by dotted path, against their rules in :data:`RULES`.

    The one range check for code that takes a knob without the loader (a selector built in
    Python): ``rule_errors({"selection.fraction": 1.5})`` gives
    ``["selection.fraction must be in (0, 1]; got 1.5"]``. The field's type is checked first, as
    the loader checks it (``True`` is not a number, ``"0.3"`` is not one either); null passes
    where the field may be null.

    Args:
        values: ``{"<section>.<field>": value}``: ``"selection.fraction"``, ``"train.epochs"``.

    Returns:
        One message per value that breaks its rule, in the order given.
    """
    errors: list[str] = []
    for key, value in values.items():
        *sections, name = key.split(".")
        cls: type = PipelineConfig
        for section in sections:
            cls = _split_optional(_hints(cls)[section])[0]
        typed = _coerce(_hints(cls)[name], value, key, errors)
        broken = (
            None
            if typed is _INVALID
            else _broken_rule(cls, name, typed, value, ".".join(sections))
        )
        if broken is not None:
            errors.append(broken)
    return errors


def _unknown_key(key: object, path: str, valid: list[str]) -> str:
    full = _join(path, key)
    if isinstance(key, str):
        match = difflib.get_close_matches(key, valid, n=1)
        if match:
            return f"unknown key {full!r} (did you mean {_join(path, match[0])!r}?)"
    where = f"under {path!r}" if path else "at the top level"
    return f"unknown key {full!r}; valid keys {where}: {', '.join(valid)}"


def _build(cls: type, data: Mapping[Any, Any], path: str, errors: list[str]) -> Any:
    """Build dataclass ``cls`` from ``data``; append problems to ``errors``."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    first_error = len(errors)
    for key in data:
        if key not in fields:
            errors.append(_unknown_key(key, path, list(fields)))
    values: dict[str, Any] = {}
    invalid: set[str] = set()
    for name, field in fields.items():
        key_path = _join(path, name)
        if name not in data:
            if field.default is not dataclasses.MISSING:
                values[name] = field.default
            elif field.default_factory is not dataclasses.MISSING:
                values[name] = field.default_factory()
            else:
                errors.append(f"{key_path} is required")
                invalid.add(name)
            continue
        value = _coerce(_hints(cls)[name], data[name], key_path, errors)
        broken = None if value is _INVALID else _broken_rule(cls, name, value, data[name], path)
        if broken is not None:
            errors.append(broken)
            value = _INVALID
        if value is _INVALID:
            invalid.add(name)
        values[name] = value
    for cross in CROSS_CHECKS.get(cls, []):
        if invalid.isdisjoint(cross.fields):
            errors.extend(cross.messages(values, path))
    return _INVALID if len(errors) > first_error else cls(**values)


def build_config(data: Any) -> tuple[PipelineConfig | None, list[str]]:
    """Validate plain nested data and build the config.

    Args:
        data: the parsed YAML document (after overrides).

    Returns:
        ``(config, [])`` when valid, else ``(None, messages)`` with every problem found.
    """
    if not isinstance(data, Mapping):
        keys = ", ".join(f.name for f in dataclasses.fields(PipelineConfig))
        return None, [f"the pipeline must be a mapping with keys {keys}; got {show(data)}"]
    errors: list[str] = []
    config = _build(PipelineConfig, data, "", errors)
    return (None, errors) if errors else (config, [])
