"""Selection policies without MLflow: the parser, and each policy against brute force."""

from __future__ import annotations

import logging
import math
import operator
from collections.abc import Sequence

import numpy as np
import pytest

from graft_hpo.exceptions import ConfigError
from graft_hpo.pareto import ParetoPoint
from graft_hpo.pareto import Policy
from graft_hpo.pareto import choose
from graft_hpo.pareto import pareto_mask
from graft_hpo.pareto import parse_policy

Objectives = list[tuple[str, str]]
DEFAULT: Objectives = [("val_acc", "max"), ("co2_kg", "min")]
FORMS = "'max:METRIC', 'min:METRIC', 'knee', 'budget:METRIC<=X', 'floor:METRIC>=Y'"
OPS = {"<=": operator.le, "<": operator.lt, ">=": operator.ge, ">": operator.gt}


def point(run_id: str, **metrics: float) -> ParetoPoint:
    return ParetoPoint(run_id, metrics=dict(metrics))


# ---------------------------------------------------------------- parser


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("knee", Policy("knee", text="knee")),
        ("  KNEE ", Policy("knee", text="knee")),
        ("max:val_acc", Policy("max", "val_acc", text="max:val_acc")),
        ("Min: co2_kg ", Policy("min", "co2_kg", text="min:co2_kg")),
        ("max:val acc", Policy("max", "val acc", text="max:val acc")),
        ("budget:co2_kg<=0.0005", Policy("budget", "co2_kg", "<=", 5e-4, "budget:co2_kg<=0.0005")),
        (
            "budget: co2_kg <= 5e-4",
            Policy("budget", "co2_kg", "<=", 5e-4, "budget:co2_kg<=0.0005"),
        ),
        ("budget:co2_kg<1E-5", Policy("budget", "co2_kg", "<", 1e-5, "budget:co2_kg<1e-05")),
        ("budget:duration_s<=1_000", Policy("budget", "duration_s", "<=", 1000.0)),
        ("budget:co2_kg<=inf", Policy("budget", "co2_kg", "<=", math.inf)),
        ("floor:val_acc>=0.97", Policy("floor", "val_acc", ">=", 0.97, "floor:val_acc>=0.97")),
        ("floor : val_acc > .5", Policy("floor", "val_acc", ">", 0.5, "floor:val_acc>0.5")),
        ("floor:val_acc>=-1", Policy("floor", "val_acc", ">=", -1.0, "floor:val_acc>=-1.0")),
    ],
)
def test_parse_valid(text: str, expected: Policy) -> None:
    got = parse_policy(text)
    assert got == expected
    assert str(got) == got.text
    assert parse_policy(got.text) == got  # the canonical text parses back to the same policy


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("xyz", ""),
        ("", ""),
        ("kne", "did you mean 'knee'?"),
        ("buget:co2_kg<=1", "did you mean 'budget'?"),
        ("knee:val_acc", "'knee' takes no argument"),
        ("max", "'max' takes a metric name"),
        ("min:", "'min' takes a metric name"),
        ("max:val_acc>=0.9", "'max' takes a metric name"),
        ("budget:co2_kg>=1", "'budget:METRIC<=X' or 'budget:METRIC<X'"),
        ("floor:val_acc<=0.9", "'floor:METRIC>=Y' or 'floor:METRIC>Y'"),
        ("budget:<=1", "'budget:METRIC<=X'"),
        ("budget:co2_kg<=", "'' is not a number"),
        ("budget:co2_kg<=lots", "'lots' is not a number"),
        ("budget:co2_kg<=nan", "'nan' is not a number"),
        ("budget:co2_kg<=1<=2", "'budget:METRIC<=X'"),
        ("budget:co2_kg==1", "'budget:METRIC<=X'"),
    ],
)
def test_parse_invalid_names_the_input(text: str, hint: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_policy(text)
    message = str(info.value)
    assert message.startswith(f"select.policy must be one of {FORMS}; got {text!r}")
    assert hint in message
    with pytest.raises(ConfigError, match=r"^--policy must be one of"):
        parse_policy(text, key="--policy")


def test_parse_rejects_non_strings_and_policy_checks_its_fields() -> None:
    with pytest.raises(ConfigError, match="got None"):
        parse_policy(None)  # type: ignore[arg-type]
    for bad in (
        dict(kind="best"),
        dict(kind="max"),
        dict(kind="knee", metric="val_acc"),
        dict(kind="budget", metric="co2_kg", op=">=", bound=1.0),
        dict(kind="floor", metric="val_acc", op=">=", bound=None),
        dict(kind="floor", metric="val_acc", op=">=", bound=math.nan),
    ):
        with pytest.raises(ConfigError, match=r"^Policy\.\w+ must be"):
            Policy(**bad)


# ---------------------------------------------------------------- brute-force references


def lexi_best(points: Sequence[ParetoPoint], keys: Objectives) -> ParetoPoint:
    """Keep the best on each key in turn (exact ties survive), then the smallest run id."""
    pool = list(points)
    for metric, mode in keys:
        values = [p.metrics[metric] for p in pool]
        best = max(values) if mode == "max" else min(values)
        pool = [p for p in pool if p.metrics[metric] == best]
    return min(pool, key=lambda p: p.run_id)


def knee_distance(points: Sequence[ParetoPoint], p: ParetoPoint, objectives: Objectives) -> float:
    total = 0.0
    for metric, mode in objectives:
        values = [q.metrics[metric] for q in points]
        lo, hi = min(values), max(values)
        if hi == lo:
            continue
        score = (p.metrics[metric] - lo) / (hi - lo)
        if mode == "min":
            score = 1.0 - score
        total += (1.0 - score) ** 2
    return math.sqrt(total)


def ref_knee(points: Sequence[ParetoPoint], objectives: Objectives) -> ParetoPoint:
    distance = {p.run_id: knee_distance(points, p, objectives) for p in points}
    best = min(distance.values())
    tied = [p for p in points if distance[p.run_id] <= best + 1e-9 * (1 + best)]
    return lexi_best(tied, objectives)


def random_sweep(
    rng: np.random.Generator, *, ties: bool | None = None
) -> tuple[list[ParetoPoint], list[ParetoPoint], Objectives]:
    """(every candidate, its Pareto front, objectives) for 2 or 3 random objectives."""
    m = int(rng.integers(2, 4))
    n = int(rng.integers(1, 25))
    ties = bool(rng.random() < 0.4) if ties is None else ties
    if ties:  # few distinct values: exact ties and duplicate rows
        values = rng.integers(0, 5, size=(n, m)).astype(float)
    else:
        values = rng.normal(size=(n, m)) * rng.uniform(1e-6, 1e3, size=m)
    objectives = [(f"o{j}", "max" if rng.random() < 0.5 else "min") for j in range(m)]
    ids = [f"run{k:02d}" for k in rng.permutation(n)]  # run-id order unrelated to row order
    extra = rng.normal(size=n)
    candidates = [
        ParetoPoint(
            ids[i], metrics={**{f"o{j}": float(values[i, j]) for j in range(m)}, "x": extra[i]}
        )
        for i in range(n)
    ]
    mask = pareto_mask(values, [mode == "max" for _, mode in objectives])
    front = [p for p, keep in zip(candidates, mask, strict=True) if keep]
    rng.shuffle(front)
    return candidates, front, objectives


# ---------------------------------------------------------------- max / min


def test_max_min_match_brute_force_on_random_fronts() -> None:
    rng = np.random.default_rng(11)
    for _ in range(200):
        _, front, objectives = random_sweep(rng)
        metric = str(rng.choice([m for m, _ in objectives] + ["x"]))
        kind = "max" if rng.random() < 0.5 else "min"
        got = choose(front, f"{kind}:{metric}", objectives)
        assert got == lexi_best(front, [(metric, kind), *objectives])


def test_max_ties_go_to_the_next_objective_then_the_run_id() -> None:
    front = [
        point("c", val_acc=0.9, co2_kg=2.0),
        point("b", val_acc=0.9, co2_kg=1.0),
        point("a", val_acc=0.9, co2_kg=1.0),
        point("d", val_acc=0.5, co2_kg=0.1),
    ]
    assert choose(front, "max:val_acc", DEFAULT).run_id == "a"
    assert choose(front, "min:co2_kg", DEFAULT).run_id == "d"
    assert choose(front, Policy("max", "co2_kg"), DEFAULT).run_id == "c"


# ---------------------------------------------------------------- knee


def test_knee_matches_brute_force_on_random_fronts() -> None:
    rng = np.random.default_rng(12)
    for _ in range(200):
        _, front, objectives = random_sweep(rng)
        assert choose(front, "knee", objectives) == ref_knee(front, objectives)


def test_knee_is_invariant_to_affine_rescaling_and_to_flipping_an_objective() -> None:
    rng = np.random.default_rng(13)
    for _ in range(200):
        _, front, objectives = random_sweep(rng, ties=False)
        before = choose(front, "knee", objectives).run_id
        j = int(rng.integers(len(objectives)))
        name, mode = objectives[j]
        a, b = float(rng.uniform(1e-4, 1e4)), float(rng.normal() * 1e3)
        scaled = [
            ParetoPoint(p.run_id, metrics={**p.metrics, name: a * p.metrics[name] + b})
            for p in front
        ]
        assert choose(scaled, "knee", objectives).run_id == before
        flipped = [
            ParetoPoint(p.run_id, metrics={**p.metrics, name: -p.metrics[name]}) for p in front
        ]
        flipped_objectives = list(objectives)
        flipped_objectives[j] = (name, "min" if mode == "max" else "max")
        assert choose(flipped, "knee", flipped_objectives).run_id == before


@pytest.mark.parametrize("n", [3, 5, 9])
def test_knee_of_a_symmetric_front_is_its_middle(n: int) -> None:
    # a convex front (quarter circle) and a straight one, accuracy up as CO2 goes up
    angles = np.linspace(0.0, np.pi / 2, n)
    for acc, co2 in [
        (0.5 + 0.4 * np.sin(angles), 1e-5 * (1 - np.cos(angles))),
        (np.linspace(0.6, 0.9, n), np.linspace(1e-6, 4e-5, n)),
    ]:
        front = [
            point(f"r{i}", val_acc=float(a), co2_kg=float(c))
            for i, (a, c) in enumerate(zip(acc, co2, strict=True))
        ]
        assert choose(front[::-1], "knee", DEFAULT).run_id == f"r{n // 2}"
        # the same front with both objectives minimised
        negated = [
            point(p.run_id, loss=-p.metrics["val_acc"], co2_kg=p.metrics["co2_kg"]) for p in front
        ]
        assert choose(negated, "knee", [("loss", "min"), ("co2_kg", "min")]).run_id == f"r{n // 2}"


def test_knee_on_a_clear_elbow_single_points_constants_and_ties() -> None:
    front = [
        point("a", val_acc=0.95, co2_kg=30.0),
        point("b", val_acc=0.94, co2_kg=5.0),  # nearly the best accuracy for a sixth of the CO2
        point("c", val_acc=0.80, co2_kg=4.0),
        point("d", val_acc=0.50, co2_kg=1.0),
    ]
    assert choose(front, "knee").run_id == "b"  # default objectives
    assert choose([front[2]], "knee", DEFAULT) == front[2]
    # a constant objective adds 0: the knee is then the best on the other one
    flat = [point(p.run_id, val_acc=p.metrics["val_acc"], co2_kg=1.0) for p in front]
    assert choose(flat, "knee", DEFAULT).run_id == "a"
    # two ends of a 2-point front are equally far: the better first objective wins
    ends = [point("z", val_acc=0.9, co2_kg=2.0), point("y", val_acc=0.8, co2_kg=1.0)]
    assert choose(ends, "knee", DEFAULT).run_id == "z"
    assert choose(ends, "knee", DEFAULT[::-1]).run_id == "y"
    # duplicates tie on everything: the smaller run id
    twins = [point("t2", val_acc=0.9, co2_kg=2.0), point("t1", val_acc=0.9, co2_kg=2.0)]
    assert choose(twins, "knee", DEFAULT).run_id == "t1"


# ---------------------------------------------------------------- budget / floor


def test_budget_and_floor_match_brute_force_on_random_fronts() -> None:
    rng = np.random.default_rng(14)
    infeasible = agrees = 0
    for _ in range(200):
        candidates, front, objectives = random_sweep(rng)
        c = int(rng.integers(len(objectives)))
        metric = objectives[c][0]
        target, mode = objectives[1] if c == 0 else objectives[0]
        kind = "budget" if rng.random() < 0.5 else "floor"
        op = str(rng.choice(["<=", "<"] if kind == "budget" else [">=", ">"]))
        values = [p.metrics[metric] for p in front]
        spread = max(values) - min(values) + 1.0
        # often exactly a front value, to tell <= from <; sometimes beyond every value
        bound = float(rng.choice(values)) + float(rng.choice([0.0, 0.0, -0.3, 0.3])) * spread
        text = f"{kind}:{metric}{op}{bound!r}"
        feasible = [p for p in front if OPS[op](p.metrics[metric], bound)]
        if feasible:
            got = choose(front, text, objectives)
            assert got == lexi_best(feasible, [(target, mode), *objectives])
            # a budget on a minimised objective, or a floor on a maximised one: no run off
            # the front does better while meeting the constraint
            if objectives[c][1] != ("min" if kind == "budget" else "max"):
                continue
            agrees += 1
            everyone = [p for p in candidates if OPS[op](p.metrics[metric], bound)]
            best = lexi_best(everyone, [(target, mode)])
            assert got.metrics[target] == best.metrics[target]
        else:
            infeasible += 1
            closest = lexi_best(
                front, [(metric, "min" if kind == "budget" else "max"), *objectives]
            )
            with pytest.raises(ConfigError) as info:
                choose(front, text, objectives)
            assert str(info.value).startswith(
                f"no point of the front satisfies {parse_policy(text).text}; "
                f"the closest is run {closest.run_id} with {metric}="
            )
    assert 10 < infeasible < 150 and agrees > 30  # every branch was exercised


def test_budget_and_floor_on_the_default_objectives() -> None:
    front = [
        point("a1b2c3d4", val_acc=0.97, co2_kg=9e-5),
        point("e5f6", val_acc=0.951, co2_kg=3.2e-5),
        point("0a0b", val_acc=0.90, co2_kg=1.5e-5),
    ]
    assert choose(front, "budget:co2_kg<=5e-5", DEFAULT).run_id == "e5f6"  # most accurate
    assert choose(front, "budget: co2_kg <= 1.5e-5", DEFAULT).run_id == "0a0b"
    assert choose(front, "floor:val_acc>=0.95", DEFAULT).run_id == "e5f6"  # least CO2
    assert choose(front, "floor:val_acc>0.951", DEFAULT).run_id == "a1b2c3d4"
    with pytest.raises(ConfigError) as info:
        choose(front, "budget:co2_kg<=1e-05", DEFAULT)
    assert str(info.value) == (
        "no point of the front satisfies budget:co2_kg<=1e-05; "
        "the closest is run 0a0b with co2_kg=1.5e-05 (val_acc=0.9)"
    )
    with pytest.raises(ConfigError) as info:
        choose(front, "budget:co2_kg<1.5e-5", DEFAULT)
    assert "the closest is run 0a0b with co2_kg=1.5e-05" in str(info.value)
    with pytest.raises(ConfigError) as info:
        choose(front, "floor:val_acc>=0.99", DEFAULT)
    assert str(info.value) == (
        "no point of the front satisfies floor:val_acc>=0.99; "
        "the closest is run a1b2c3d4 with val_acc=0.97 (co2_kg=9e-05)"
    )


def test_budget_and_floor_with_other_objectives_and_modes() -> None:
    objectives = [("co2_kg", "min"), ("duration_s", "min"), ("val_acc", "max")]
    front = [
        point("a", co2_kg=1.0, duration_s=50.0, val_acc=0.7),
        point("b", co2_kg=2.0, duration_s=20.0, val_acc=0.8),
        point("c", co2_kg=3.0, duration_s=10.0, val_acc=0.9),
    ]
    # the constraint is on the first objective: the second (duration, min) decides
    assert choose(front, "budget:co2_kg<=2.5", objectives).run_id == "b"
    # on accuracy: the first objective (CO2, min) decides, not "the other minimised one"
    assert choose(front, "floor:val_acc>=0.8", objectives).run_id == "b"
    # a metric that is not an objective: only these (front) points are considered
    assert choose(front, "budget:duration_s<30", objectives).run_id == "b"
    with pytest.raises(ConfigError, match="needs an objective other than 'co2_kg'"):
        choose(front, "budget:co2_kg<=2", [("co2_kg", "min")])


# ---------------------------------------------------------------- errors


def test_choose_errors_name_what_is_wrong(caplog: pytest.LogCaptureFixture) -> None:
    front = [point("a", val_acc=0.9, co2_kg=2.0), point("b", val_acc=0.8, co2_kg=1.0)]
    with pytest.raises(ConfigError, match="the Pareto front is empty; no run to select by knee"):
        choose([], "knee", DEFAULT)
    with pytest.raises(ConfigError) as info:
        choose(front, "max:val_ac", DEFAULT)
    assert str(info.value) == (
        "select.policy metric must be a metric the front's runs logged; got 'val_ac' "
        "(did you mean 'val_acc'?); metrics: co2_kg, val_acc"
    )
    with pytest.raises(ConfigError, match=r"^--policy metric .* got 'energy'; metrics: co2_kg"):
        choose(front, "budget:energy<=1", DEFAULT, key="--policy")
    with pytest.raises(ConfigError, match=r"^objectives entry must be .* got 'duration_s'"):
        choose(front, "knee", [("val_acc", "max"), ("duration_s", "min")])
    with pytest.raises(ConfigError, match="got 'xyz'"):
        choose(front, "xyz", DEFAULT)
    # a point without the metric (or with NaN) is left out, with a warning
    partial = [*front, point("c", val_acc=0.99), point("d", val_acc=math.nan, co2_kg=0.5)]
    with caplog.at_level(logging.WARNING, logger="graft_hpo.pareto._policy"):
        assert choose(partial, "knee", DEFAULT) == choose(front, "knee", DEFAULT)
    assert "2 front point(s) lack a finite" in caplog.text
    assert choose(partial, "max:val_acc", DEFAULT).run_id == "c"
