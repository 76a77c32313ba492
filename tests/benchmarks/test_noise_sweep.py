"""benchmarks/noise_sweep.py: its scoring of a sweep's GRAFT and random trials against
hand-worked fronts, and the report re-rendered from a saved one (no sweep runs)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks._sweep_score import covered
from benchmarks._sweep_score import equal_co2
from benchmarks.noise_sweep import main
from benchmarks.noise_sweep import noise_filter
from benchmarks.noise_sweep import score


def _trial(strategy: str, acc: float | None, co2: float, rule: str = "chance", **kw) -> dict:  # type: ignore[no-untyped-def]
    return {
        "status": kw.get("status", "FINISHED"),
        "early_stopped": kw.get("stopped", False),
        "test_acc": acc,
        "val_acc": acc,
        "co2_kg": co2,
        "start_ms": kw.get("start", 0),
        # MLflow logs the pipeline's filter for every trial, GRAFT or not
        "params": {"selection.strategy": strategy, "selection.noise_filter": rule},
    }


TRIALS = [
    _trial("random", 0.80, 1.0, start=1),
    _trial("graft", 0.85, 1.5, "misfit", start=2),
    _trial("random", 0.90, 3.0, start=3),
    _trial("graft", 0.88, 2.0, "none", start=4),
    _trial("full", 0.95, 5.0, start=5),
    _trial("graft", None, 0.5, "misfit", stopped=True, start=6),  # never scored
]


def test_only_graft_trials_carry_a_filter() -> None:
    assert noise_filter(TRIALS[1]) == "misfit"
    assert noise_filter(TRIALS[0]) == "-"  # random: the logged pipeline value is not its


def test_covered_counts_weak_dominance_with_ties() -> None:
    rand, graft = [TRIALS[0], TRIALS[2]], [TRIALS[1], TRIALS[3]]
    assert covered(rand, graft, "test_acc") == 0  # graft costs more than the cheap random
    assert covered(graft, rand, "test_acc") == 0
    tie = [_trial("graft", 0.80, 1.0)]
    assert covered([TRIALS[0]], tie, "test_acc") == 1


def test_equal_co2_compares_best_within_each_level_from_where_both_have_a_trial() -> None:
    rand, graft = [TRIALS[0], TRIALS[2]], [TRIALS[1], TRIALS[3]]
    eq = equal_co2(graft, rand, "test_acc")
    # levels 1.5, 2.0, 3.0: graft best 0.85, 0.88, 0.88 against random 0.80, 0.80, 0.90
    assert eq["levels"] == 3
    assert eq["share"] == pytest.approx(2 / 3)
    assert eq["gap_mean"] == pytest.approx((0.05 + 0.08 - 0.02) / 3)
    assert eq["gap_min"] == pytest.approx(-0.02)
    assert equal_co2([], rand, "test_acc")["share"] is None


def test_score_counts_fronts_and_the_filters_picked() -> None:
    s = score(TRIALS, "test_acc")
    assert s["finished"] == 5
    assert s["front_strategies"] == {"random": 2, "graft": 2, "full": 1}
    assert s["pair_front"] == {"random": 2, "graft": 2}
    assert s["by_filter"]["none"] == {"trials": 1, "mean": 0.88, "best": 0.88}
    assert s["top_filters"] == ["none", "misfit"]
    assert s["best"]["graft"] == 0.88 and s["best"]["random"] == 0.90


def test_render_reprints_a_saved_report_and_rescoring_on_another_metric(
    tmp_path: Path,
    capsys,  # type: ignore[no-untyped-def]
) -> None:
    report = {
        "machine": {"description": "test"},
        "args": {"pipeline": "digits", "noise": 0.2, "trials": 6, "metric": "test_acc"},
        "wall_s": 60.0,
        "seeds": {"0": {"score": score(TRIALS, "test_acc"), "trials": TRIALS}},
    }
    saved = tmp_path / "noise_sweep.md"
    saved.write_text("# tables\n" + json.dumps(report) + "\n")
    assert main(["--render", str(saved)]) == 0
    out = capsys.readouterr().out
    assert "| 0 | 5 | " in out and "0.67 of 3, +3.7 |" in out
    assert "| MISS |" in out  # random leads at CO2 3.0
    assert main(["--render", str(saved), "--metric", "val_acc"]) == 0
    assert "accuracy: `val_acc`" in capsys.readouterr().out


def test_tpe_group_sets_group_in_this_process_and_records_every_sampler(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from benchmarks.noise_sweep import use_tpe_group
    from graft_hpo.config import load_pipeline
    from graft_hpo.sweep import _search

    # monkeypatch restores both after the test: the product's table and builder stay as they are
    monkeypatch.setitem(_search._OPTUNA_SAMPLERS, "tpe", _search._OPTUNA_SAMPLERS["tpe"])
    monkeypatch.setattr(_search, "_sampler", _search._sampler)
    default = _search._sampler(load_pipeline("digits", ["search.sampler=tpe"]))
    assert default._group is False and default._multivariate is True
    built: list[dict] = []
    use_tpe_group(built)
    sampler = _search._sampler(load_pipeline("digits", ["search.sampler=tpe"]))
    assert sampler._group is True and sampler._multivariate and sampler._constant_liar
    assert built == [
        {
            "class": "TPESampler",
            # n_startup_trials: read off the built sampler (Optuna's 10 when the config is null)
            "kwargs": {
                "multivariate": True,
                "constant_liar": True,
                "group": True,
                "n_startup_trials": 10,
            },
        }
    ]
    _search._sampler(load_pipeline("digits", ["search.startup_trials=30"]))
    assert built[-1]["kwargs"]["n_startup_trials"] == 30


def test_compare_puts_saved_reports_side_by_side_with_the_seeds_mean(
    tmp_path: Path,
    capsys,  # type: ignore[no-untyped-def]
) -> None:
    paths = []
    for name, group in (("base", False), ("group", True)):
        kwargs = {"group": group, **({"n_startup_trials": 30} if group else {})}
        sampler = [{"class": "TPESampler", "kwargs": kwargs, "built": 2}]
        seeds = {
            str(seed): {"score": score(TRIALS, "test_acc"), "wall_s": 100.0 + seed, "trials": []}
            for seed in (0, 1)
        }
        report = {"args": {"noise": 0.2}, "sampler": sampler, "seeds": seeds}
        paths.append(tmp_path / f"{name}.md")
        paths[-1].write_text("# tables\n" + json.dumps(report) + "\n")
    assert main(["--compare", *map(str, paths)]) == 0
    out = capsys.readouterr().out
    # a report that recorded no n_startup_trials (before it was recorded) had Optuna's 10
    assert "| base | group=False, start-up 10 | 0.2 | 1 | random 2, graft 2, full 1 | 2 |" in out
    assert "| group | group=True, start-up 30 | 0.2 | **mean** | - | 2.0 |" in out
    assert out.rstrip().endswith("| 88.0 / 90.0 / 95.0 / - | 100 |")


def test_after_startup_counts_graft_trials_without_a_filter_or_with_raw_features() -> None:
    from benchmarks.noise_sweep import after_startup

    startup = [_trial("graft", 0.5, 1.0, "none", start=i) for i in range(10)]  # not counted
    later = [
        _trial("graft", 0.9, 1.0, "none", start=10),
        _trial("graft", 0.9, 1.0, "knn", start=11),
        _trial("random", 0.9, 1.0, "none", start=12),  # not GRAFT: its filter does not apply
    ]
    later[1]["params"]["selection.features"] = "raw"
    assert after_startup(startup + later, 10) == {"no_filter": 1, "raw": 1}
    assert after_startup(startup + later, 11) == {"no_filter": 0, "raw": 1}  # a longer start-up


def test_score_counts_the_filters_after_the_samplers_own_start_up() -> None:
    from benchmarks.noise_sweep import startup

    trials = [_trial("graft", 0.9, 1.0, "knn", start=i) for i in range(12)]
    assert score(trials, "test_acc")["tpe_filters"] == {"knn": 2}  # after Optuna's 10
    assert score(trials, "test_acc", 11)["tpe_filters"] == {"knn": 1}
    recorded = [{"class": "TPESampler", "kwargs": {"n_startup_trials": 30}, "built": 4}]
    assert startup({"sampler": recorded}) == 30
    assert startup({"sampler": []}) == startup({}) == 10  # not recorded: Optuna's default
