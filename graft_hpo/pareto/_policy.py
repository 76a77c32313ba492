"""Selection policies: pick one run off a sweep's Pareto front.

A policy is a short string, as users type it after ``--policy`` or under ``select: {policy: ...}``
in a pipeline YAML:

========================  ===============================================================
``max:METRIC``            the point with the largest METRIC (``max:val_acc``)
``min:METRIC``            the point with the smallest METRIC (``min:co2_kg``)
``knee``                  the best trade-off (compromise programming, see :func:`choose`)
``budget:METRIC<=X``      the best point with METRIC <= X (``<`` too), e.g. the most accurate
                          one under a CO2 budget: ``budget:co2_kg<=5e-4``
``floor:METRIC>=Y``       the best point with METRIC >= Y (``>`` too), e.g. the least CO2 for
                          a given accuracy: ``floor:val_acc>=0.97``
========================  ===============================================================

For ``budget`` and ``floor``, "best" is the first objective other than METRIC, in its mode: with
the default objectives (val_acc max, co2_kg min), a CO2 budget maximises accuracy and an accuracy
floor minimises CO2. :func:`choose` is pure; :func:`graft_hpo.tracking.select_run` reads the
front from MLflow and chooses with it.
"""

from __future__ import annotations

import difflib
import logging
import math
import operator
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from graft_hpo.exceptions import ConfigError
from graft_hpo.pareto._front import ParetoPoint
from graft_hpo.pareto._front import normalize_objectives

__all__ = ["POLICY_KINDS", "Policy", "choose", "parse_policy"]

_logger = logging.getLogger(__name__)

POLICY_KINDS = ("max", "min", "knee", "budget", "floor")

_FORMS = "'max:METRIC', 'min:METRIC', 'knee', 'budget:METRIC<=X', 'floor:METRIC>=Y'"
# METRIC holds no comparison characters; the bound is whatever float() accepts
_CONSTRAINT = re.compile(r"^(?P<metric>[^<>=]*?)\s*(?P<op><=|<|>=|>)\s*(?P<bound>[^<>=]*)$")
_OPS = {"budget": ("<=", "<"), "floor": (">=", ">")}
_COMPARE = {"<=": operator.le, "<": operator.lt, ">=": operator.ge, ">": operator.gt}
# distances this close (relative) count as a tie, so float noise does not pick the knee
_TIE_RTOL = 1e-9


@dataclass(frozen=True)
class Policy:
    """A parsed selection policy.

    Attributes:
        kind: one of :data:`POLICY_KINDS`.
        metric: the metric named by ``max``/``min``/``budget``/``floor``; ``None`` for ``knee``.
        op: ``"<="`` or ``"<"`` (budget), ``">="`` or ``">"`` (floor); ``None`` otherwise.
        bound: the constraint's right-hand side, in the metric's units; ``None`` otherwise.
        text: the canonical spelling (``"budget:co2_kg<=0.0005"``), parseable again.
    """

    kind: str
    metric: str | None = None
    op: str | None = None
    bound: float | None = None
    text: str = ""

    def __post_init__(self) -> None:
        if self.kind not in POLICY_KINDS:
            raise ConfigError(f"Policy.kind must be one of {POLICY_KINDS}; got {self.kind!r}")
        if (self.kind == "knee") != (self.metric is None) or self.metric == "":
            raise ConfigError(
                f"Policy.metric must be a metric name for {self.kind!r} (None for 'knee'); "
                f"got {self.metric!r}"
            )
        ops = _OPS.get(self.kind, (None,))
        if self.op not in ops:
            raise ConfigError(f"Policy.op must be one of {ops} for {self.kind!r}; got {self.op!r}")
        if (self.op is None) != (self.bound is None) or (
            self.bound is not None and math.isnan(self.bound)
        ):
            raise ConfigError(
                f"Policy.bound must be a number for {self.kind!r} (None otherwise); "
                f"got {self.bound!r}"
            )
        if not self.text:
            bound = "" if self.bound is None else repr(float(self.bound))
            body = f"{self.metric}{self.op or ''}{bound}" if self.metric is not None else ""
            object.__setattr__(self, "text", f"{self.kind}:{body}" if body else self.kind)

    def __str__(self) -> str:
        return self.text

    def satisfied_by(self, value: float) -> bool:
        """Whether ``value`` of :attr:`metric` meets a budget/floor (always true otherwise)."""
        if self.op is None or self.bound is None:
            return True
        return bool(_COMPARE[self.op](value, self.bound))


def parse_policy(text: str, *, key: str = "select.policy") -> Policy:
    """Parse a policy string; whitespace around the parts and the kind's case do not matter.

    Args:
        text: e.g. ``"knee"``, ``"max:val_acc"``, ``"budget: co2_kg <= 5e-4"``,
            ``"floor:val_acc>0.97"``.
        key: the name shown in error messages (the CLI passes ``"--policy"``).

    Returns:
        The :class:`Policy`.

    Raises:
        ConfigError: not one of the forms above, an empty metric, a bound that is not a number
            (or is NaN), or a comparison the kind does not take (a budget with ``>=``).

    Example:
        >>> parse_policy("budget: co2_kg <= 5e-4")
        Policy(kind='budget', metric='co2_kg', op='<=', bound=0.0005, text='budget:co2_kg<=0.0005')
    """

    def error(hint: str = "") -> ConfigError:
        return ConfigError(f"{key} must be one of {_FORMS}; got {text!r}{hint}")

    if not isinstance(text, str):
        raise error()
    head, colon, rest = text.strip().partition(":")
    kind, rest = head.strip().lower(), rest.strip()
    if kind == "knee":
        if rest:
            raise error(" ('knee' takes no argument)")
        return Policy("knee")
    if kind in ("max", "min"):
        if not colon or not rest or any(c in rest for c in "<>="):
            raise error(f" ({kind!r} takes a metric name: '{kind}:val_acc')")
        return Policy(kind, metric=rest)
    if kind in _OPS:
        letter = "X" if kind == "budget" else "Y"
        forms = " or ".join(f"'{kind}:METRIC{op}{letter}'" for op in _OPS[kind])
        match = _CONSTRAINT.match(rest)
        if match is None or not match["metric"] or match["op"] not in _OPS[kind]:
            raise error(f" (write {forms})")
        try:
            bound = float(match["bound"].strip())
        except ValueError:
            bound = math.nan
        if math.isnan(bound):
            raise error(f" ({match['bound'].strip()!r} is not a number)")
        return Policy(kind, match["metric"], match["op"], bound)
    close = difflib.get_close_matches(kind, POLICY_KINDS, n=1)
    raise error(f" (did you mean {close[0]!r}?)" if close else "")


def _num(value: float) -> str:
    # short when that loses nothing; exact when it would hide why a bound was missed
    short = f"{value:.6g}"
    return short if float(short) == value else repr(value)


def _metric_error(metric: str, points: Sequence[Any], what: str, whose: str) -> ConfigError:
    names = sorted({m for p in points for m in p.metrics})
    close = difflib.get_close_matches(metric, names, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return ConfigError(
        f"{what} must be a metric {whose} logged; got {metric!r}{hint}; "
        f"metrics: {', '.join(names) if names else 'none'}"
    )


def check_logged(
    records: Sequence[Any], metrics: Sequence[str], *, what: str, whose: str = "the sweep's trials"
) -> None:
    """Refuse a metric none of ``records`` (runs with ``metrics``) logged, with the closest
    name: a typo'd objective gave an empty front and only a warning."""
    for metric in metrics:
        if records and not any(metric in r.metrics for r in records):
            raise _metric_error(metric, records, what, whose)


def _usable(points: Sequence[ParetoPoint], needed: Sequence[tuple[str, str]]) -> list[ParetoPoint]:
    """The points with a finite value of every needed metric; ``needed``: (metric, its key)."""
    for metric, what in needed:  # choose() refused an empty front before
        check_logged(points, [metric], what=what, whose="the front's runs")
    metrics = list(dict.fromkeys(m for m, _ in needed))
    usable = [p for p in points if all(math.isfinite(p.metrics.get(m, math.nan)) for m in metrics)]
    if not usable:
        raise ConfigError(
            f"no point of the front has a finite value of every one of {', '.join(metrics)}"
        )
    if len(usable) < len(points):
        _logger.warning(
            "%d front point(s) lack a finite %s; left out of the selection",
            len(points) - len(usable),
            " or ".join(metrics),
        )
    return usable


def _signed(point: ParetoPoint, metric: str, mode: str) -> float:
    """Smaller is better; a missing or NaN value sorts last."""
    value = point.metrics.get(metric, math.nan)
    if math.isnan(value):
        return math.inf
    return -value if mode == "max" else value


def _best(
    points: Sequence[ParetoPoint], metric: str, mode: str, objectives: Sequence[tuple[str, str]]
) -> ParetoPoint:
    """The best point on ``metric``; ties: the objectives in order, then the run id."""
    return min(
        points,
        key=lambda p: (
            _signed(p, metric, mode),
            tuple(_signed(p, m, md) for m, md in objectives),
            p.run_id,
        ),
    )


def _knee_distances(
    points: Sequence[ParetoPoint], objectives: Sequence[tuple[str, str]]
) -> np.ndarray:
    """(n,) Euclidean distance of each point to the ideal (1, ..., 1) after normalising."""
    values = np.array([[p.metrics[m] for m, _ in objectives] for p in points], dtype=np.float64)
    lo, hi = values.min(axis=0), values.max(axis=0)
    span = hi - lo
    flat = span <= 0
    scaled = (values - lo) / np.where(flat, 1.0, span)  # 0 at the column minimum, 1 at its max
    maximize = np.array([mode == "max" for _, mode in objectives])
    score = np.where(maximize, scaled, 1.0 - scaled)  # 1 best, 0 worst
    score[:, flat] = 1.0  # a constant objective separates nothing
    distances: np.ndarray = np.sqrt(np.sum((1.0 - score) ** 2, axis=1))
    return distances


def _knee(points: Sequence[ParetoPoint], objectives: Sequence[tuple[str, str]]) -> ParetoPoint:
    distances = _knee_distances(points, objectives)
    best = float(distances.min())
    tied = [
        p for p, d in zip(points, distances, strict=True) if d <= best + _TIE_RTOL * (1 + best)
    ]
    metric, mode = objectives[0]
    return _best(tied, metric, mode, objectives)


def check_policy(policy: Policy | str, objectives: Sequence[Any] | None, *, key: str) -> Policy:
    """``policy`` parsed, refused now if no front of ``objectives`` can ever serve it (a budget
    or floor on the only objective leaves nothing to optimise): before a sweep, not after."""
    parsed = policy if isinstance(policy, Policy) else parse_policy(policy, key=key)
    if parsed.kind in _OPS:
        _target(parsed, normalize_objectives(objectives), key)
    return parsed


def _target(policy: Policy, objectives: Sequence[tuple[str, str]], key: str) -> tuple[str, str]:
    for metric, mode in objectives:
        if metric != policy.metric:
            return metric, mode
    names = ", ".join(f"{m} ({md})" for m, md in objectives)
    raise ConfigError(
        f"{key} {policy.kind} needs an objective other than {policy.metric!r} to optimise; "
        f"got objectives {names}"
    )


def _constrained(
    points: Sequence[ParetoPoint],
    policy: Policy,
    objectives: Sequence[tuple[str, str]],
    key: str,
) -> ParetoPoint:
    metric = str(policy.metric)  # never None for budget/floor (Policy checks)
    target, mode = _target(policy, objectives, key)
    usable = _usable(points, [(metric, f"{key} metric"), (target, "objectives entry")])
    feasible = [p for p in usable if policy.satisfied_by(p.metrics[metric])]
    if feasible:
        return _best(feasible, target, mode, objectives)
    # budget: the smallest constrained value is the closest; floor: the largest
    closest = _best(usable, metric, "min" if policy.kind == "budget" else "max", objectives)
    raise ConfigError(
        f"no point of the front satisfies {policy.text}; the closest is run {closest.run_id} "
        f"with {metric}={_num(closest.metrics[metric])} "
        f"({target}={_num(closest.metrics[target])})"
    )


def choose(
    points: Sequence[ParetoPoint],
    policy: Policy | str,
    objectives: Sequence[Any] | None = None,
    *,
    key: str = "select.policy",
) -> ParetoPoint:
    """Pick one point of a Pareto front by a policy; pure, no MLflow.

    ``max``/``min`` take the best point on the metric. ``budget``/``floor`` keep the points
    that meet the constraint and take the best on the first objective other than the
    constrained metric, in that objective's mode. Only the points handed in are considered.
    That loses nothing when the constraint points the way its objective is optimised (a budget
    on a minimised objective, a floor on a maximised one, as with the default objectives): the
    best feasible run of a sweep is then always on its front. Otherwise (a metric that is not an
    objective, like ``budget:duration_s<=60`` on an accuracy-vs-CO2 front, or a budget on a
    maximised objective) a better feasible run off the front is never chosen.

    ``knee`` is compromise programming with p = 2: each objective is min-max normalised over
    the front so that 1 is its best value and 0 its worst (``min`` objectives flipped), and
    the point nearest, in Euclidean distance, to the ideal point (1, ..., 1) wins. The choice
    does not change when an objective is rescaled (``x -> a * x + b``, ``a > 0``); an
    objective that is constant over the front adds 0 to every distance; a one-point front
    returns its point.

    Ties (equal values, or knee distances within a relative 1e-9) go to the best point on the
    objectives in order, then the smallest run id, so the choice is deterministic.

    Points that lack a metric the policy reads, or hold NaN there, are left out (a warning).

    Args:
        points: the front (from :func:`~graft_hpo.tracking.pareto_front`), any order.
        policy: a :class:`Policy` or a string for :func:`parse_policy`.
        objectives: ``[(metric, "max" | "min"), ...]`` the front was computed for; ``None`` ->
            val_acc max, co2_kg min.
        key: the name shown in error messages.

    Returns:
        The chosen point.

    Raises:
        ConfigError: a bad policy string, an empty front, a metric no point logged (the message
            lists those that exist), or a budget/floor no point meets (the message names the
            closest point).

    Example:
        >>> front = [ParetoPoint("a", metrics={"val_acc": 0.95, "co2_kg": 3e-5}),
        ...          ParetoPoint("b", metrics={"val_acc": 0.93, "co2_kg": 1e-5}),
        ...          ParetoPoint("c", metrics={"val_acc": 0.80, "co2_kg": 0.9e-5})]
        >>> [choose(front, p).run_id for p in ("max:val_acc", "knee", "budget:co2_kg<=2e-5")]
        ['a', 'b', 'b']
    """
    parsed = policy if isinstance(policy, Policy) else parse_policy(policy, key=key)
    objs = normalize_objectives(objectives)
    if not points:
        raise ConfigError(f"the Pareto front is empty; no run to select by {parsed.text}")
    if parsed.kind in ("max", "min"):
        metric = str(parsed.metric)  # never None for max/min (Policy checks)
        return _best(_usable(points, [(metric, f"{key} metric")]), metric, parsed.kind, objs)
    if parsed.kind == "knee":
        return _knee(_usable(points, [(m, "objectives entry") for m, _ in objs]), objs)
    if parsed.kind in _OPS:
        return _constrained(points, parsed, objs, key)
    raise ConfigError(f"{key} must be one of {_FORMS}; got {parsed.text!r}")
