"""Checks over several fields of one section (:data:`CROSS_CHECKS`), run by
:mod:`._validate` once those fields pass their own rules. Messages read like the rules':
``"<dotted.key> must be <constraint>; got <value!r>"``."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from graft_hpo.config._schema import DataConfig
from graft_hpo.config._schema import SearchConfig

__all__ = ["CROSS_CHECKS", "STARTUP_SAMPLERS", "CrossCheck"]

# the samplers with a random start-up before their model guides them (Optuna's n_startup_trials,
# set by search.startup_trials); tests/sweep/test_samplers.py holds it to Optuna's signatures
STARTUP_SAMPLERS = ("tpe", "gp")


def _fractions_leave_training_data(values: Mapping[str, Any], path: str) -> list[str]:
    if values["val_fraction"] + values["test_fraction"] < 1:
        return []
    return [
        f"{path}.test_fraction must be < 1 - {path}.val_fraction ({values['val_fraction']!r}) "
        f"so that data remains for training; got {values['test_fraction']!r}"
    ]


def _distinct_objectives(values: Mapping[str, Any], path: str) -> list[str]:
    metrics = [objective.metric for objective in values["objectives"]]
    if len(set(metrics)) == len(metrics):
        return []
    return [f"{path}.objectives must name distinct metrics; got {metrics!r}"]


def _startup_for_its_sampler(values: Mapping[str, Any], path: str) -> list[str]:
    if values["startup_trials"] is None or values["sampler"] in STARTUP_SAMPLERS:
        return []
    return [
        f"{path}.startup_trials must be null with {path}.sampler {values['sampler']!r} (only "
        f"{' and '.join(map(repr, STARTUP_SAMPLERS))} have a random start-up); got "
        f"{values['startup_trials']!r}"
    ]


@dataclass(frozen=True)
class CrossCheck:
    """A constraint over several fields of one section, run once those fields are valid."""

    fields: tuple[str, ...]
    messages: Callable[[Mapping[str, Any], str], list[str]]


# section dataclass -> checks over several of its fields
CROSS_CHECKS: dict[type, list[CrossCheck]] = {
    DataConfig: [CrossCheck(("val_fraction", "test_fraction"), _fractions_leave_training_data)],
    SearchConfig: [
        CrossCheck(("objectives",), _distinct_objectives),
        CrossCheck(("sampler", "startup_trials"), _startup_for_its_sampler),
    ],
}
