"""Equal-energy comparison: linear interpolation along a strategy's settings, no extrapolation."""

from __future__ import annotations

import pytest

from benchmarks._equal_energy import accuracy_at
from benchmarks._equal_energy import best_at
from benchmarks.train_bench import configurations
from benchmarks.train_bench import equal_energy


def test_interpolation_between_neighbours_and_none_outside() -> None:
    curve = [(3.0, 90.0), (1.0, 80.0), (2.0, 86.0)]  # unsorted on purpose
    assert accuracy_at(curve, 1.5) == pytest.approx(83.0)
    assert accuracy_at(curve, 2.0) == pytest.approx(86.0)
    assert accuracy_at(curve, 2.75) == pytest.approx(89.0)
    assert accuracy_at(curve, 0.5) is None and accuracy_at(curve, 3.5) is None
    assert accuracy_at([(2.0, 70.0)], 2.0) == 70.0
    assert accuracy_at([], 1.0) is None


def test_best_at_names_the_most_accurate_that_reaches_the_energy() -> None:
    curves = {"graft": [(1.0, 90.0), (3.0, 95.0)], "infobatch": [(5.0, 97.0), (8.0, 98.0)]}
    best, values = best_at(curves, 2.0)
    assert best == "graft" and values == {"graft": 92.5, "infobatch": None}
    assert best_at(curves, 9.0)[0] is None


def test_infobatch_runs_at_its_prune_ratios_and_the_table_uses_median_energy() -> None:
    configs = configurations([0.1, 0.2], ["graft", "infobatch"], [0.3, 0.7])
    expected = [("full", 1.0), ("graft", 0.1), ("graft", 0.2), ("infobatch", 0.3)]
    assert configs == [*expected, ("infobatch", 0.7)]
    row = {"n": 3, "acc_mean": 0.0, "energy_median": 0.0}
    summary = {
        "mnist": {
            "full@1": {**row, "strategy": "full", "energy_median": 9.0, "acc_mean": 98.0},
            "graft@0.1": {**row, "strategy": "graft", "energy_median": 2.0, "acc_mean": 90.0},
            "graft@0.2": {**row, "strategy": "graft", "energy_median": 4.0, "acc_mean": 94.0},
            "infobatch@0.7": {**row, "strategy": "infobatch", "energy_median": 5.0},
        }
    }
    table = equal_energy(summary, shares=(1 / 3, 1 / 2))
    assert table["mnist"]["0.333"] == {"best": "graft", "acc": {"graft": 92.0, "infobatch": None}}
    assert table["mnist"]["0.5"]["best"] is None  # 4.5 Wh: above graft's, below infobatch's
