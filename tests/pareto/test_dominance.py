"""pareto_mask and hypervolume_2d against brute-force references."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from graft_hpo.exceptions import ConfigError
from graft_hpo.pareto import hypervolume_2d
from graft_hpo.pareto import pareto_mask
from graft_hpo.pareto._dominance import _front_nd


def brute_mask(values: np.ndarray, maximize: list[bool]) -> np.ndarray:
    """O(n^2 m) definition: i is kept unless some finite j is <= everywhere and < somewhere."""
    x = np.where(maximize, -values, values)
    finite = ~np.isnan(x).any(axis=1)
    keep = np.zeros(len(x), dtype=bool)
    for i in range(len(x)):
        if not finite[i]:
            continue
        keep[i] = not any(
            finite[j] and all(x[j] <= x[i]) and any(x[j] < x[i]) for j in range(len(x))
        )
    return keep


def random_case(rng: np.random.Generator, m: int) -> tuple[np.ndarray, list[bool]]:
    n = int(rng.integers(0, 60))
    if rng.random() < 0.5:  # few distinct values: many ties and exact duplicates
        values = rng.integers(0, 4, size=(n, m)).astype(float)
    else:
        values = rng.normal(size=(n, m))
        if n > 1:  # some exact duplicate rows
            dup = rng.integers(0, n, size=n // 4)
            values[rng.integers(0, n, size=n // 4)] = values[dup]
    if n and rng.random() < 0.3:  # infinities of either sign: they order like numbers
        rows = rng.integers(0, n, size=max(1, n // 8))
        values[rows, rng.integers(0, m)] = rng.choice([-np.inf, np.inf], size=len(rows))
    if n and rng.random() < 0.3:
        values[rng.integers(0, n, size=max(1, n // 10)), rng.integers(0, m)] = np.nan
    return values, [bool(b) for b in rng.integers(0, 2, size=m)]


@pytest.mark.parametrize("m", [1, 2, 3, 4])
def test_pareto_mask_matches_brute_force(m: int) -> None:
    rng = np.random.default_rng(1000 + m)
    for _ in range(150):
        values, maximize = random_case(rng, m)
        got = pareto_mask(values, maximize)
        assert got.dtype == bool and got.shape == (len(values),)
        np.testing.assert_array_equal(got, brute_mask(values, maximize), err_msg=str(values))


def test_two_objective_fast_path_agrees_with_general_path_at_scale() -> None:
    rng = np.random.default_rng(7)
    values = np.round(rng.normal(size=(4000, 2)), 2)  # rounding makes ties
    minimised = values * np.array([-1.0, 1.0])
    np.testing.assert_array_equal(pareto_mask(values, [True, False]), _front_nd(minimised))
    # the fronts of 10^4 points stay fast (the front of an anti-correlated cloud is large)
    x = rng.random(10_000)
    big = np.stack([x, x + 0.01 * rng.random(10_000)], axis=1)
    assert pareto_mask(big, [True, False]).sum() > 10


def test_pareto_mask_keeps_duplicates_and_drops_nan() -> None:
    acc_co2 = np.array(
        [[0.9, 2.0], [0.9, 2.0], [0.8, 1.0], [0.8, 1.5], [np.nan, 0.1], [0.99, np.nan]]
    )
    assert pareto_mask(acc_co2, [True, False]).tolist() == [True, True, True, False, False, False]
    assert pareto_mask(np.full((3, 2), np.nan), [True, True]).tolist() == [False] * 3
    assert pareto_mask(np.empty((0, 3)), [True, True, False]).shape == (0,)


def test_pareto_mask_rejects_bad_shapes() -> None:
    with pytest.raises(ConfigError, match=r"must be a 2-D array \(n, m\); got shape \(3,\)"):
        pareto_mask([1.0, 2.0, 3.0], [True])
    with pytest.raises(ConfigError, match="one flag per objective"):
        pareto_mask([[1.0, 2.0]], [True])


def brute_hypervolume(points: np.ndarray, reference: np.ndarray, maximize: list[bool]) -> float:
    """Area of the union of boxes [p, ref] (minimisation form) on the grid of all coordinates."""
    sign = np.where(maximize, -1.0, 1.0)
    p = points * sign
    ref = reference * sign
    p = p[~np.isnan(p).any(axis=1)]
    p = p[(p[:, 0] < ref[0]) & (p[:, 1] < ref[1])]
    xs = np.unique(np.append(p[:, 0], ref[0]))
    ys = np.unique(np.append(p[:, 1], ref[1]))
    area = 0.0
    for (x0, x1), (y0, y1) in itertools.product(itertools.pairwise(xs), itertools.pairwise(ys)):
        # the cell is covered if some box contains its lower-left corner
        if any(px <= x0 and py <= y0 for px, py in p):
            area += (x1 - x0) * (y1 - y0)
    return area


def test_hypervolume_matches_rectangle_union() -> None:
    rng = np.random.default_rng(3)
    for _ in range(300):
        n = int(rng.integers(0, 15))
        if rng.random() < 0.5:
            points = rng.integers(0, 5, size=(n, 2)).astype(float)
        else:
            points = rng.random((n, 2))
        if n and rng.random() < 0.2:
            points[rng.integers(0, n), rng.integers(0, 2)] = np.nan
        maximize = [bool(b) for b in rng.integers(0, 2, size=2)]
        # a reference that some points do not beat
        reference = np.array([rng.uniform(-1, 5) for _ in range(2)])
        got = hypervolume_2d(points, reference, maximize)
        assert got == pytest.approx(brute_hypervolume(points, reference, maximize), abs=1e-12)


def test_hypervolume_simple_values() -> None:
    # one point: the box between it and the reference
    assert hypervolume_2d([[0.8, 1.0]], [0.0, 3.0], [True, False]) == pytest.approx(0.8 * 2.0)
    # a dominated point adds nothing; a point past the reference adds nothing
    base = hypervolume_2d([[0.9, 2.0], [0.8, 1.0]], [0.0, 3.0], [True, False])
    more = hypervolume_2d(
        [[0.9, 2.0], [0.8, 1.0], [0.7, 2.5], [0.95, 4.0]], [0.0, 3.0], [True, False]
    )
    assert more == pytest.approx(base) == pytest.approx(1.7)
    assert hypervolume_2d(np.empty((0, 2)), [0.0, 0.0], [False, False]) == 0.0
    with pytest.raises(ConfigError, match="2 columns"):
        hypervolume_2d([[1.0, 2.0, 3.0]], [0.0, 0.0, 0.0], [True, True, True])


def test_front_of_leaves_out_infinite_metrics_as_a_sql_store_returns_them() -> None:
    # MLflow's sqlite store gives an infinite metric back as +-float max
    from types import SimpleNamespace

    from graft_hpo.pareto import front_of

    def run(run_id: str, acc: float, co2: float) -> SimpleNamespace:
        metrics = {"val_acc": acc, "co2_kg": co2}
        return SimpleNamespace(
            run_id=run_id, status="FINISHED", params={}, metrics=metrics, tags={}
        )

    big = np.finfo(np.float64).max
    runs = [run("inf_acc", big, 1.0), run("neg_co2", 0.5, -big), run("ok", 0.9, 2.0)]
    front = front_of(runs, [("val_acc", "max"), ("co2_kg", "min")])
    assert [p.run_id for p in front] == ["ok"]
