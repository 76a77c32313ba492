"""benchmarks/hpo_summary.py: one row per saved hpo_bench report, mean ratios per group."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.hpo_summary import group_of
from benchmarks.hpo_summary import main
from benchmarks.hpo_summary import markdown
from benchmarks.hpo_summary import summary_row


def _report(seed: int, energy: float, wall: float, hv_graft: float, passed: int) -> dict:
    runs = {
        s: {"hypervolume": hv, "best_val_acc": acc, "test_acc": 0.976}
        for s, hv, acc in (("full", 1.0, 0.98), ("graft", hv_graft, 0.966), ("random", 2.0, 0.951))
    }
    return {
        "args": {"seed": seed},
        "runs": runs,
        "ratios": {
            "full/graft": {"energy_kwh": energy, "duration_s": wall},
            "full/random": {"energy_kwh": 3.5, "duration_s": 2.6},
        },
        "goals": [{"verdict": "PASS" if i < passed else "MISS"} for i in range(4)],
    }


def test_rows_and_group_means() -> None:
    rows = [
        summary_row("a_seed0", _report(0, 3.0, 2.4, 2.2, 3)),
        summary_row("a_seed1", _report(1, 3.4, 2.6, 1.8, 2)),
        summary_row("b", _report(0, 2.0, 2.0, 2.1, 1)),
    ]
    assert rows[0]["hv_ratio"] == pytest.approx(1.1)
    assert [group_of(r["name"]) for r in rows] == ["a", "a", "b"]
    lines = markdown(rows)
    assert lines[2] == (
        "| a_seed0 | 0 | 3.00x | 3.50x | 2.40x | 2.60x | 1.100 | 98.0/96.6/95.1 "
        "| 97.6/97.6/97.6 | 3/4 |"
    )
    assert "| a | 2 | 3.20x | 2.50x | 1/2 |" in lines
    assert "| b | 1 | 2.00x | 2.00x | 1/1 |" in lines


def test_main_reads_a_whole_stdout_and_refuses_other_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "x_seed3.md"
    good.write_text("# table\n| ... |\n" + json.dumps(_report(3, 3.1, 2.5, 2.5, 4)) + "\n\n")
    assert main([str(good)]) == 0
    assert "| x_seed3 | 3 | 3.10x |" in capsys.readouterr().out
    bad = tmp_path / "bad.json"
    bad.write_text('{"runs": {}}\n')
    assert main([str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bad.json" in err
