"""The pure helpers behind benchmarks/hpo_bench.py's table (no sweep is run here)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from benchmarks.hpo_bench import best_so_far_curve
from benchmarks.hpo_bench import best_trial
from benchmarks.hpo_bench import ratio_table
from benchmarks.hpo_bench import reference_point
from benchmarks.hpo_bench import sweep_hypervolume


def _trial(acc: float, co2: float, *, status: str = "FINISHED", end: int = 0, **kw: object):
    return {"status": status, "val_acc": acc, "co2_kg": co2, "end_ms": end, **kw}


def _brute_force_hv(points: list[tuple[float, float]], ref: tuple[float, float]) -> float:
    """Area dominated above the reference (acc max, co2 min), on the grid of coordinates."""
    xs = sorted({ref[0], *(p[0] for p in points)})
    ys = sorted({ref[1], *(p[1] for p in points)})
    area = 0.0
    for (x0, x1), (y0, y1) in itertools.product(itertools.pairwise(xs), itertools.pairwise(ys)):
        if any(a >= x1 and c <= y0 for a, c in points):  # a point dominates this cell
            area += (x1 - x0) * (y1 - y0)
    return area


def test_hypervolume_matches_brute_force_and_ignores_failed_trials() -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        pts = [(float(a), float(c)) for a, c in rng.uniform(0.5, 1.0, (6, 2))]
        ref = (0.4, 1.1)
        trials = [_trial(a, c) for a, c in pts] + [_trial(0.99, 0.01, status="FAILED")]
        got = sweep_hypervolume(trials, ref)
        assert got == pytest.approx(_brute_force_hv(pts, ref), rel=1e-9)


def test_reference_point_is_shared_and_below_every_finished_trial() -> None:
    sweeps = {
        "full": [_trial(0.9, 2e-5), _trial(0.7, 1e-5)],
        "graft": [_trial(0.95, 5e-6), _trial(0.2, 9e-5, status="FAILED")],  # its CO2 counts
    }
    acc, co2 = reference_point(sweeps)
    assert acc == pytest.approx(0.69)  # the worst finished trial, minus 1 point
    assert co2 == pytest.approx(1.1 * 9e-5)
    assert reference_point(sweeps, acc_ref="zero")[0] == 0.0
    with pytest.raises(ValueError, match="acc_ref"):
        reference_point(sweeps, acc_ref="median")


def test_best_trial_prefers_accuracy_then_less_co2_and_skips_stopped_or_failed() -> None:
    trials = [
        _trial(0.97, 3e-6),
        _trial(0.97, 2e-6),
        _trial(0.99, 1e-6, status="FAILED"),
        _trial(0.995, 1e-6, early_stopped=True),
        _trial(math.nan, 1e-6),
    ]
    assert best_trial(trials) is trials[1]
    assert best_trial([_trial(0.9, 1e-6, status="FAILED")]) is None


def test_best_so_far_curve_orders_by_completion_and_counts_failed_energy() -> None:
    trials = [
        _trial(0.8, 1e-6, end=3, energy_kwh=3.0),
        _trial(0.9, 1e-6, end=1, energy_kwh=1.0),
        _trial(0.99, 1e-6, end=2, energy_kwh=2.0, status="FAILED"),
    ]
    assert best_so_far_curve(trials) == [(1.0, 0.9), (3.0, 0.9), (6.0, 0.9)]


def test_ratio_table_divides_the_base_by_each_sweep() -> None:
    runs = {
        "full": {"energy_kwh": 6.0, "duration_s": 90.0},
        "graft": {"energy_kwh": 2.0, "duration_s": 0.0},
        "random": {"energy_kwh": None, "duration_s": 30.0},
    }
    table = ratio_table(runs, keys=("energy_kwh", "duration_s"))
    assert table == {
        "full/graft": {"energy_kwh": 3.0, "duration_s": None},  # no division by zero
        "full/random": {"energy_kwh": None, "duration_s": 3.0},
    }


def test_saved_reports_name_no_folder_of_the_machine() -> None:
    from benchmarks._machine import ROOT
    from benchmarks._machine import repo_relative

    report = {
        "out": ROOT / "benchmarks" / "_out",
        "uri": f"sqlite:///{ROOT}/benchmarks/_out/mlflow.db",
        "runs": [{"sweep_dir": f"{ROOT}/benchmarks/_out/sweeps/a"}, ("x", 1.5, None)],
        "elsewhere": "/opt/data/cifar",
    }
    assert repo_relative(report) == {
        "out": "benchmarks/_out",
        "uri": "sqlite:///benchmarks/_out/mlflow.db",
        "runs": [{"sweep_dir": "benchmarks/_out/sweeps/a"}, ["x", 1.5, None]],
        "elsewhere": "/opt/data/cifar",
    }
