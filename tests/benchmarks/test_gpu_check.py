"""benchmarks/gpu_check.py on the CPU: its ceiling mode end to end (tiny), and the arithmetic
behind the report (shares of the ceiling, trial throughput, energy over windows, goals)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks._ceiling import share_of_ceiling
from benchmarks._ceiling import trial_throughput
from benchmarks._gpu_parts import with_ceiling
from benchmarks._gpu_report import add_time_vs_full
from benchmarks._gpu_report import goals
from benchmarks._gpu_report import markdown
from benchmarks._gpu_workers import energy_in_windows
from benchmarks._gpu_workers import merge_windows
from benchmarks.gpu_check import main


def test_cpu_ceiling_and_trials_write_the_json_and_markdown(tmp_path: Path) -> None:
    out = tmp_path / "gpu" / "check.json"
    argv = ["--device", "cpu", "--quick", "--parts", "ceiling", "trials"]
    code = main([*argv, "--n", "300", "--epochs", "2", "--out", str(out)])
    assert code == 0
    report = json.loads(out.read_text())
    assert out.with_suffix(".md").read_text().startswith("# gpu_check on ")
    assert report["parts"] == ["ceiling", "trials"] and report["errors"] == []
    assert report["machine"]["gpu"] is None
    # the ceiling: per model, in the default layout (channels_last on the CPU), float32
    assert set(report["ceiling"]) == {"cnn"} and report["ceiling"]["cnn"] > 0
    layouts = {c["memory_format"]: c for c in report["ceilings"]}
    assert set(layouts) == {"channels_last", "contiguous_format"}
    assert (
        layouts["channels_last"]["default_layout"] and layouts["channels_last"]["batch_size"] == 64
    )
    assert layouts["channels_last"]["precision"] == "float32"
    assert report["ceiling"]["cnn"] == layouts["channels_last"]["samples_per_s"]
    rows = report["trials"]
    assert [r["strategy"] for r in rows] == ["full", "random", "graft"]
    for r in rows:
        assert r["status"] == "FINISHED" and r["samples_per_s"] > 0
        assert r["ceiling"] == report["ceiling"]["cnn"]
        assert r["share_of_ceiling"] == pytest.approx(r["samples_per_s"] / r["ceiling"])
        assert r["time_vs_full"] == pytest.approx(rows[0]["seconds"] / r["seconds"])
    assert rows[2]["rounds"] >= 1 and rows[2]["selection_s"] > 0
    selection = report["selection"]
    assert selection["round_over_epoch"] == pytest.approx(
        selection["round_s"] / selection["full_epoch_s"]
    )
    by_goal = {g["goal"]: g for g in report["goals"]}
    ceiling_goal = by_goal["trial training throughput >= 80% of the ceiling (full data)"]
    assert ceiling_goal["value"] == rows[0]["share_of_ceiling"]
    assert by_goal["pytest -m gpu passes (return code)"]["met"] is None  # not run


def test_cuda_without_cuda_is_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torch")
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is here")
    assert main(["--all"]) == 2
    assert "CUDA is not available here" in capsys.readouterr().err


def test_share_of_ceiling_and_the_ceiling_a_row_gets() -> None:
    assert share_of_ceiling(800.0, 1000.0) == 0.8
    assert share_of_ceiling(None, 1000.0) is None and share_of_ceiling(5.0, 0.0) is None
    report = {"ceilings_by_key": {"resnet18/auto": 2000.0, "resnet18/channels_last": 2500.0}}
    row = with_ceiling(
        {"model": "resnet18", "memory_format": "channels_last", "samples_per_s": 2000.0}, report
    )
    assert row["ceiling"] == 2500.0 and row["share_of_ceiling"] == 0.8
    row = with_ceiling({"model": "cnn", "memory_format": "auto", "samples_per_s": 1.0}, report)
    assert row["ceiling"] is None and row["share_of_ceiling"] is None


def test_trial_throughput_leaves_out_validation_and_selection() -> None:
    epochs = [
        {"epoch_s": 4.0, "samples": 1000, "selection_s": 0.0, "validated": False},  # warm-up
        {"epoch_s": 3.0, "samples": 300, "selection_s": 2.0, "validated": False},
        {"epoch_s": 1.0, "samples": 300, "selection_s": 0.0, "validated": False},
        {"epoch_s": 7.0, "samples": 300, "selection_s": 0.0, "validated": True},
    ]
    out = trial_throughput(epochs)
    assert out["samples_per_s"] == pytest.approx(1600 / 6.0)
    assert out["full_epoch_s"] == 4.0
    everything_validated = [dict(e, validated=True) for e in epochs]
    assert trial_throughput(everything_validated)["samples_per_s"] == pytest.approx(1900 / 13.0)


def test_energy_over_the_union_of_windows() -> None:
    assert merge_windows([(3.0, 4.0), (0.0, 1.0), (0.5, 2.0)]) == [(0.0, 2.0), (3.0, 4.0)]
    # a counter rising 100 mJ/s for 10 s, then 300 mJ/s
    samples = [(0.0, 0.0), (10.0, 1000.0), (20.0, 4000.0)]
    # (2, 12) and (5, 8) overlap: 2..10 at 0.1 W, 10..12 at 0.3 W; then 15..16 at 0.3 W
    joules = energy_in_windows(samples, [(2.0, 12.0), (5.0, 8.0), (15.0, 16.0)])
    assert joules == pytest.approx(0.8 + 0.6 + 0.3)
    assert energy_in_windows(samples, [(-5.0, 0.0), (20.0, 30.0)]) == 0.0  # outside: nothing
    assert energy_in_windows(samples[:1], [(0.0, 1.0)]) is None


def _trial_row(strategy: str, seconds: float, val_acc: float, **extra: float) -> dict:
    return {
        "part": "trials",
        "variant": "default",
        "strategy": strategy,
        "status": "FINISHED",
        "seconds": seconds,
        "val_acc": val_acc,
        "selection_share": 0.0,
        "share_of_ceiling": 0.5,
        **extra,
    }


def test_goals_are_checked_against_the_measured_values() -> None:
    rows = [
        _trial_row("full", 30.0, 0.90, share_of_ceiling=0.85),
        _trial_row("random", 10.0, 0.86),
        _trial_row("graft", 11.0, 0.87, selection_share=0.12),
    ]
    add_time_vs_full(rows)
    pack = {"model": "cnn", "trials": 4, "speedup_vs_one": 2.4, "attributed_over_device": 1.05}
    report = {
        "trials": rows,
        "concurrency": [pack],
        "selection": {"round_over_epoch": 0.1},
        "pytest_gpu": {"rc": 1},
    }
    got = {g["goal"].split(" ")[0] + str(i): g["met"] for i, g in enumerate(goals(report))}
    assert list(got.values()) == [True, True, True, False, True, False, True, False]
    assert goals({})[0] == {
        "goal": "trial training throughput >= 80% of the ceiling (full data)",
        "value": None,
        "met": None,
    }


def test_markdown_lists_what_was_not_measured() -> None:
    report = {
        "machine": {"description": "x"},
        "command": "c",
        "wall_s": 1.0,
        "goals": [],
        "skipped": [{"part": "compile", "why": "--quick"}],
        "errors": [{"part": "hard", "error": "ValueError: v"}],
    }
    text = markdown(report)
    assert "- compile: skipped (--quick)" in text and "- hard: ValueError: v" in text
