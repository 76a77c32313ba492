"""front_bench's scoring against hand-worked fronts: hypervolume of finished trials only, the
any-time curve, and the share of energies where one arm leads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.front_bench import anytime
from benchmarks.front_bench import anytime_share
from benchmarks.front_bench import front_of
from benchmarks.front_bench import main


def _trial(acc: float | None, co2: float, kwh: float, *, stopped: bool = False) -> dict:
    return {
        "status": "FINISHED",
        "early_stopped": stopped,
        "test_acc": acc,
        "val_acc": acc,
        "co2_kg": co2,
        "energy_kwh": kwh,
        "fraction_effective": 0.3,
        "params": {"selection.strategy": "graft", "selection.fraction": "0.3"},
    }


TRIALS = [
    _trial(0.9, 2.0, 1.0),
    _trial(None, 0.5, 0.5, stopped=True),  # stopped: no test score, never on the front
    _trial(0.8, 1.0, 2.0),
    _trial(0.7, 1.5, 1.0),  # dominated by the second finished trial
]


def test_only_finished_trials_make_the_front_and_its_hypervolume() -> None:
    hv, front = front_of(TRIALS, [0.0, 3.0])
    # staircase: 0.8 * (3 - 1) + (0.9 - 0.8) * (3 - 2)
    assert hv == pytest.approx(1.7)
    assert [t["co2_kg"] for t in front] == [2.0, 1.0]


def test_the_anytime_curve_counts_every_trials_energy_and_the_shared_ranking() -> None:
    curve = anytime(TRIALS, 0.25, [0.0, 3.0])
    assert [e for e, _ in curve] == pytest.approx([1.25, 1.75, 3.75, 4.75])
    assert [hv for _, hv in curve] == pytest.approx([0.9, 0.9, 1.7, 1.7])


def test_anytime_share_compares_at_every_energy_past_each_arms_first_point() -> None:
    per = {
        "a": {"anytime": [[1.0, 1.0], [3.0, 2.0]]},
        "b": {"anytime": [[2.0, 1.5], [4.0, 1.5]]},
    }
    # from energy 2 on: at 2, a 1.0 < b 1.5; at 3 and 4, a 2.0 >= 1.5
    assert anytime_share(per, "a", ["b"]) == pytest.approx(2 / 3)
    assert anytime_share(per, "b", ["a"]) == pytest.approx(1 / 3)


def test_render_reprints_the_tables_from_a_saved_report(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    def arm(hv: float, kwh: float) -> dict:
        anytime_curve = [[kwh / 2, hv / 2], [kwh, hv]]
        return {
            "energy_kwh": kwh, "duration_s": 60.0, "hypervolume": hv, "front_size": 2,
            "finished": 2, "strategies": {"graft": 2}, "front_strategies": {"graft": 2},
            "anytime": anytime_curve, "trials": TRIALS,
        }  # fmt: skip

    seeds = {
        "0": {
            "fifo": arm(2e-6, 3e-5),
            "asha": arm(1e-6, 1e-5),
            "moasha-projected": arm(2e-6, 1e-5),
        }
    }
    means = {name: {k: v for k, v in a.items() if k != "trials"} for name, a in seeds["0"].items()}
    report = {
        "machine": {"description": "test"},
        "args": {"seeds": [0]},
        "arms": means,
        "seeds": seeds,
    }
    saved = tmp_path / "front.md"
    saved.write_text("# tables\n" + json.dumps(report) + "\n")
    assert main(["--render", str(saved)]) == 0
    out = capsys.readouterr().out
    assert "| moasha-projected | 1 | 2.000 | 1.000 | 10.0 | 0.333 |" in out
    assert "energy 0.333 x fifo; 1 seeds |" in out and "| PASS |" in out
