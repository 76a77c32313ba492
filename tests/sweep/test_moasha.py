"""MO-ASHA against its definition: non-dominated sorting and crowding distance against brute
force, and the scheduler's decisions on hand-worked rungs (ties, a single trial, a trial that
fails at a rung, a resumed sweep)."""

from __future__ import annotations

import itertools
import json
import pickle

import numpy as np
import pytest
from ray import cloudpickle

from graft_hpo import load_pipeline
from graft_hpo._names import EPOCHS_DONE
from graft_hpo.sweep._folder import SweepFolder
from graft_hpo.sweep._moasha import crowding_distance
from graft_hpo.sweep._moasha import fronts
from graft_hpo.sweep._moasha import make_moasha
from graft_hpo.sweep._moasha import ranked_ahead
from graft_hpo.sweep._search import scheduler

CONTINUE, STOP = "CONTINUE", "STOP"
ACC_CO2 = [("val_acc", "max"), ("co2_kg", "min")]


def _dominates(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.all(a <= b) and np.any(a < b))


def _brute_fronts(points: np.ndarray) -> list[int]:
    """Front k: the rows no other remaining row dominates, after removing fronts < k."""
    level, left, k = [-1] * len(points), set(range(len(points))), 0
    while left:
        current = {i for i in left if not any(_dominates(points[j], points[i]) for j in left)}
        for i in current:
            level[i] = k
        left -= current
        k += 1
    return level


@pytest.mark.parametrize("seed", range(20))
def test_fronts_match_brute_force_with_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    points = rng.integers(0, 4, size=(rng.integers(1, 30), rng.integers(2, 4))).astype(float)
    maximize = [bool(m) for m in rng.integers(0, 2, size=points.shape[1])]
    as_min = points * np.where(maximize, -1.0, 1.0)
    assert fronts(points, maximize).tolist() == _brute_fronts(as_min)


@pytest.mark.parametrize("seed", range(5))
def test_two_objective_fronts_match_brute_force_on_large_rungs_with_ties(seed: int) -> None:
    # two objectives take the O(n log n) path: many rows, many ties and duplicates
    rng = np.random.default_rng(seed)
    points = rng.integers(0, 12, size=(150, 2)).astype(float)
    maximize = [bool(m) for m in rng.integers(0, 2, size=2)]
    as_min = points * np.where(maximize, -1.0, 1.0)
    assert fronts(points, maximize).tolist() == _brute_fronts(as_min)


def test_crowding_distance_by_hand() -> None:
    # sorted by x: (0,5) (1,3) (3,2) (6,0); ranges 6 and 5
    points = [[3.0, 2.0], [0.0, 5.0], [6.0, 0.0], [1.0, 3.0]]
    expected = [(6 - 1) / 6 + (3 - 0) / 5, np.inf, np.inf, (3 - 0) / 6 + (5 - 2) / 5]
    assert crowding_distance(points) == pytest.approx(expected)
    assert crowding_distance([[1.0, 1.0], [2.0, 0.0]]).tolist() == [np.inf, np.inf]
    # a constant objective adds nothing (no division by a zero range)
    assert crowding_distance([[0.0, 1.0], [1.0, 1.0], [2.0, 1.0]])[1] == pytest.approx(1.0)


def test_ranked_ahead_counts_better_fronts_then_larger_crowding() -> None:
    acc_co2 = [[0.9, 3.0], [0.8, 2.0], [0.7, 1.0], [0.6, 3.0], [0.85, 2.5]]
    # front 0: rows 0, 1, 2, 4 (row 3 is dominated by all); extremes 0 and 2 are infinite
    assert ranked_ahead(acc_co2, [True, False], 3) == 4
    assert ranked_ahead(acc_co2, [True, False], 0) == 0
    assert ranked_ahead(acc_co2, [True, False], 2) == 0
    assert {ranked_ahead(acc_co2, [True, False], r) for r in (1, 4)} <= {2, 3}


def _moasha(tmp_path=None, milestones=(2, 6, 18), rf=3.0):  # type: ignore[no-untyped-def]
    return make_moasha(
        time_attr=EPOCHS_DONE,
        objectives=ACC_CO2,
        milestones=list(milestones),
        reduction_factor=rf,
        sweep_dir=str(tmp_path) if tmp_path is not None else None,
    )


def _report(acc: float, co2: float, epochs: int = 2) -> dict[str, float]:
    return {"val_acc": acc, "co2_kg": co2, EPOCHS_DONE: epochs}


def test_a_single_trial_at_a_rung_goes_on() -> None:
    sched = _moasha()
    assert sched.decide("a", _report(0.1, 9.0)) == CONTINUE
    assert sched.rungs[2] == {"a": [0.1, 9.0]}


def test_a_cheap_less_accurate_trial_goes_on_where_accuracy_alone_would_stop_it() -> None:
    sched = _moasha()
    assert sched.decide("accurate", _report(0.95, 10.0)) == CONTINUE
    # ASHA on val_acc stops it (0.60 < 0.95); MO-ASHA: non-dominated, an extreme of front 0
    assert sched.decide("cheap", _report(0.60, 1.0)) == CONTINUE
    # dominated by "accurate" (and by nothing cheaper): front 1, two ahead, keep = 1
    assert sched.decide("dominated", _report(0.90, 11.0)) == STOP


def test_ties_never_stop_a_trial() -> None:
    sched = _moasha()
    assert sched.decide("a", _report(0.9, 1.0)) == CONTINUE
    assert sched.decide("b", _report(0.9, 1.0)) == CONTINUE  # identical: nobody strictly ahead


def test_keep_is_the_top_third_of_the_trials_at_the_rung() -> None:
    sched = _moasha()
    # a chain: each dominates the next; with n trials at the rung, keep = max(1, n // 3)
    decisions = [sched.decide(str(i), _report(1.0 - 0.1 * i, 1.0 + i)) for i in range(3)]
    assert decisions == [CONTINUE, STOP, STOP]
    # 6 trials at the rung: keep 2; the 4th best of 6 has 3 ahead
    sched = _moasha()
    for i, acc in enumerate([0.9, 0.1, 0.2, 0.3, 0.4]):
        sched.decide(str(i), _report(acc, 1.0))
    assert sched.decide("second-of-6", _report(0.8, 1.0)) == CONTINUE  # 1 ahead < keep 2
    sched.decide("x", _report(0.05, 1.0))
    sched.decide("y", _report(0.06, 1.0))
    assert sched.decide("third-of-9", _report(0.7, 1.0)) == CONTINUE  # 2 ahead < keep 3
    assert sched.decide("fourth-of-10", _report(0.65, 1.0)) == STOP  # 3 ahead >= keep 3


def test_each_rung_is_decided_once_and_only_at_its_milestone() -> None:
    sched = _moasha()
    assert sched.decide("a", _report(0.9, 1.0, epochs=1)) == CONTINUE  # before the first rung
    assert sched.rungs[2] == {}
    sched.decide("a", _report(0.9, 1.0, epochs=2))
    assert sched.decide("a", _report(0.1, 9.0, epochs=3)) == CONTINUE  # between rungs
    sched.decide("b", _report(0.95, 0.5, epochs=6))
    assert sched.decide("c", _report(0.5, 5.0, epochs=6)) == STOP  # the rung at 6: b dominates
    assert set(sched.rungs[6]) == {"b", "c"} and set(sched.rungs[2]) == {"a"}


def test_a_trial_that_fails_at_a_rung_is_not_ranked_nor_recorded() -> None:
    sched = _moasha()
    assert sched.decide("nan", _report(float("nan"), 1.0)) == CONTINUE
    assert sched.decide("missing", {"val_acc": 0.9, EPOCHS_DONE: 2}) == CONTINUE
    assert sched.rungs[2] == {}
    # a trial that failed after its rung keeps its record: later trials are ranked against it
    sched.decide("failed-later", _report(0.9, 1.0))
    assert sched.decide("worse", _report(0.8, 2.0)) == STOP


def test_the_rungs_survive_a_resumed_sweep(tmp_path) -> None:  # type: ignore[no-untyped-def]
    sched = _moasha(tmp_path)
    frozen = cloudpickle.dumps(sched)  # what Tune pickles before the first trial
    sched.decide("a", _report(0.9, 1.0))
    restored = pickle.loads(frozen)  # a resumed sweep: reads the rungs recorded since
    assert restored.rungs[2] == {"a": [0.9, 1.0]}
    assert restored.decide("b", _report(0.8, 2.0)) == STOP


def test_each_record_appends_one_line_and_old_rungs_json_still_loads(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # a sweep folder from before rungs.jsonl: the whole table in rungs.json
    (tmp_path / "rungs.json").write_text(json.dumps({"2": {"old": [0.5, 5.0]}}))
    sched = _moasha(tmp_path)
    assert sched.rungs[2] == {"old": [0.5, 5.0]}
    assert sched.decide("a", _report(0.9, 1.0)) == CONTINUE
    assert sched.decide("b", _report(0.8, 2.0)) == STOP
    log = (tmp_path / "rungs.jsonl").read_text()
    assert log == '[2, "a", [0.9, 1.0]]\n[2, "b", [0.8, 2.0]]\n'
    assert json.loads((tmp_path / "rungs.json").read_text()) == {"2": {"old": [0.5, 5.0]}}
    # a driver killed mid-write: the cut line is skipped, the next record stays whole
    with open(tmp_path / "rungs.jsonl", "a") as f:
        f.write('[2, "c", [0.')
    _moasha(tmp_path).decide("d", _report(0.85, 0.1))
    assert SweepFolder(str(tmp_path)).read_rungs()[2] == {
        "old": [0.5, 5.0],
        "a": [0.9, 1.0],
        "b": [0.8, 2.0],
        "d": [0.85, 0.1],
    }


def test_the_pipeline_selects_moasha_on_its_objectives_and_rungs() -> None:
    config = load_pipeline(
        "digits",
        ["search.scheduler={type: moasha, grace_period: 2, reduction_factor: 3}"],
    )
    sched = scheduler(config)
    assert sched.milestones == [2, 6, 18]
    assert sched.metrics == ["val_acc", "co2_kg"] and sched.maximize == [True, False]


@pytest.mark.parametrize("seed", range(5))
def test_with_one_objective_it_keeps_the_best_keep_of_the_rung(seed: int) -> None:
    rng = np.random.default_rng(seed)
    sched = make_moasha(
        time_attr=EPOCHS_DONE,
        objectives=[("val_acc", "max")],
        milestones=[2],
        reduction_factor=3.0,
    )
    seen: list[float] = []
    for i, acc in enumerate(rng.random(15).round(2)):
        seen.append(float(acc))
        keep = max(1, len(seen) // 3)
        ahead = sum(other > acc for other in seen)
        expected = STOP if ahead >= keep else CONTINUE
        assert sched.decide(str(i), {"val_acc": float(acc), EPOCHS_DONE: 2}) == expected


def test_permuting_the_others_never_changes_a_decision() -> None:
    others = [_report(0.9, 3.0), _report(0.7, 1.0), _report(0.8, 2.5), _report(0.6, 2.0)]
    decisions = set()
    for order in itertools.permutations(others):
        sched = _moasha()
        for i, report in enumerate(order):
            sched.decide(str(i), report)
        decisions.add(sched.decide("new", _report(0.75, 1.5)))
    assert len(decisions) == 1
