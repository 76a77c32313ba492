"""benchmarks/noise_bench.py: its plan, summary, goal checks and report (no training)."""

from __future__ import annotations

import argparse

import pytest
import torch

from benchmarks._noise import DEDUP
from benchmarks._noise import Composition
from benchmarks._noise import arm_fractions
from benchmarks._noise import copy_groups
from benchmarks._noise import overrides
from benchmarks._noise_report import goals
from benchmarks._noise_report import markdown
from benchmarks._noise_report import summarise
from benchmarks.noise_bench import plan
from graft_hpo.config import load_pipeline
from graft_hpo.data import training_truth
from graft_hpo.selection import Selection
from graft_hpo.training import TrainState


def _run(cell: str, arm: str, fraction: float, seed: int, acc: float, wrong: float) -> dict:
    return {
        "cell": cell,
        "arm": arm,
        "fraction": fraction,
        "seed": seed,
        "status": "FINISHED",
        "error": None,
        "metrics": {"test_acc": acc, "duration_s": 10.0, "selection_s": 0.5},
        "composition": {"wrong": wrong, "filtered": 0.2 if arm == "graft" else None},
    }


RUNS = [
    *(_run("hard", "graft", 0.2, s, 0.85 + 0.01 * s, 0.02) for s in (0, 1)),
    *(_run("hard", "random", 0.2, s, 0.80 + 0.02 * s, 0.10) for s in (0, 1)),
    *(_run("hard", "full", 1.0, s, 0.86, 0.10) for s in (0, 1)),
]


def test_summary_pairs_seeds_and_the_goals_say_pass_or_miss() -> None:
    summary = summarise(RUNS)
    row = summary["hard"]["graft@0.2"]
    assert row["acc_mean"] == pytest.approx(85.5) and row["n"] == 2
    assert row["wrong"] == pytest.approx(0.02) and row["filtered"] == pytest.approx(0.2)
    assert row["selection_share"] == pytest.approx(0.05)
    verdicts = {c["goal"]: (c["verdict"], c["detail"]) for c in goals(summary)}
    assert verdicts["graft >= random at 0.2"] == (
        "PASS",
        "85.5 vs 81.0 (paired +4.5 pts, 2 seeds)",
    )
    assert verdicts["graft@0.2 >= full"][0] == "MISS"  # 85.5 < 86.0
    assert verdicts["selection <= 10% of a graft trial"][0] == "PASS"


def test_the_report_renders_every_cell_and_the_headline() -> None:
    summary = summarise(RUNS)
    report = {
        "machine": {"cpu": "x", "logical_cpus": 2, "torch": "t"},
        "args": {
            "jobs": 1,
            "seeds": [0, 1],
            "fractions": [0.2],
            "sweep_fractions": [0.2],
            "hard_n": 8000,
            "epochs": None,
            "set": [],
        },
        "wall_s": 1.0,
        "runs": RUNS,
        "summary": summary,
        "goals": goals(summary),
    }
    text = markdown(report)
    assert "| hard | " in text and "85.5 ± 0.7" in text and "## Goals" in text


def test_the_plan_runs_full_and_infobatch_once_and_shuffles_within_a_seed() -> None:
    args = argparse.Namespace(
        seeds=[0, 1],
        cells=["digits_noise0"],
        arms=["graft", "full", "graft_sweep"],
        fractions=[0.1, 0.2],
        sweep_fractions=[0.2],
    )
    tasks = plan(args)
    assert [t[0] for t in tasks] == [0] * 4 + [1] * 4  # seeds outermost
    assert sorted((a, f) for s, _, a, f in tasks if s == 0) == [
        ("full", 1.0),
        ("graft", 0.1),
        ("graft", 0.2),
        ("graft_sweep", 0.2),
    ]
    assert arm_fractions("infobatch", [0.1], [0.2]) == [1.0]


def test_overrides_keep_the_test_split_clean_and_name_the_filter() -> None:
    pipeline, sets = overrides("digits_noise0.4", "graft_off", 0.3, 2, epochs=None, hard_n=8000)
    assert pipeline == "digits"
    assert "data.label_noise=0.4" in sets and "selection.noise_filter=none" in sets
    assert "selection.fraction=0.3" in sets and "train.seed=2" in sets
    _, hard = overrides("hard", "graft_sweep", 0.2, 0, epochs=5, hard_n=4000)
    assert "data.options.n=4000" in hard and "selection.scope=sweep" in hard
    assert hard.index("selection.scope=trial") < hard.index("selection.scope=sweep")
    assert "train.epochs=5" in hard


def test_the_dedup_arms_set_the_threshold_with_the_knn_filter() -> None:
    _, sets = overrides("hard", "graft_knn_dedup", 0.2, 0, epochs=None, hard_n=4000)
    assert f"selection.dedup={DEDUP}" in sets and "selection.noise_filter=knn" in sets
    _, sweep = overrides("hard", "graft_sweep_knn_dedup", 0.2, 0, epochs=None, hard_n=4000)
    assert f"selection.dedup={DEDUP}" in sweep and "selection.scope=sweep" in sweep
    assert arm_fractions("graft_sweep_knn_dedup", [0.1, 0.3], [0.2]) == [0.2]


def test_copy_groups_join_each_copy_to_its_original_within_a_mode() -> None:
    _, sets = overrides("hard_noise0", "random", 0.2, 1, epochs=None, hard_n=1600)
    config = load_pipeline("digits", overrides=sets)
    group = copy_groups(config)
    truth = training_truth(config.data, seed=1)
    assert group is not None and truth.duplicate is not None and truth.mode is not None
    _, inverse, counts = group.unique(return_inverse=True, return_counts=True)
    paired = counts[inverse] > 1
    # a copy whose original went to the validation split may stand alone; most do not
    assert float(paired[truth.duplicate].float().mean()) > 0.6
    assert int(paired.sum()) < 2 * int(truth.duplicate.sum())  # an original per copy at most
    for g in group[paired].unique():
        assert truth.mode[group == g].unique().numel() == 1  # never across modes
    composition = Composition(torch.zeros(len(group), dtype=torch.bool), None, None, group)
    pair = (group == group[paired][0]).nonzero().squeeze(1)[:2]
    single = (~paired).nonzero().squeeze(1)[:2]
    composition.on_selection_end(
        TrainState(epoch=2), Selection(torch.cat([pair, single]), None, 0.1, {})
    )
    assert composition.rounds[0]["redundant"] == pytest.approx(0.25)


def test_a_probe_s_set_overrides_reach_the_recorded_round() -> None:
    from benchmarks._noise import probe_parser
    from benchmarks._noise import recorded_rounds

    args = probe_parser("probe", ["digits_noise0"], [0]).parse_args(
        ["--set", "model.options.embed_dim=16", "--set", "model.options.width=8"]
    )
    assert args.extra == ["model.options.embed_dim=16", "model.options.width=8"]
    [(cell, seed, config, round_)] = list(recorded_rounds(args))
    candidates, logits, labels, embeds = round_
    assert (cell, seed) == ("digits_noise0", 0)
    assert config.model.options == {"embed_dim": 16, "width": 8}
    assert embeds.shape == (len(candidates), 16)  # the CNN's default embedding has 128
    assert logits.shape == (len(candidates), 10) and labels.shape == (len(candidates),)


def test_a_probe_s_bad_set_exits_2_with_one_line_before_any_trial(capsys) -> None:
    from benchmarks._noise import probe_main
    from benchmarks._noise import probe_parser

    args = probe_parser("probe", ["digits_noise0"], [0]).parse_args(
        ["--set", "model.options.widht=3"]
    )

    def never(_: argparse.Namespace) -> dict:
        raise AssertionError("a trial ran")

    assert probe_main(args, never, str) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "error: unknown key 'model.options.widht' for model 'cnn' (did you mean 'width'?); "
        "accepted: dropout, embed_dim, width"
    ]
