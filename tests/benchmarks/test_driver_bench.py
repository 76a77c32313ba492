"""benchmarks/driver_bench.py on a tiny sweep: it drives the sweep's own objects, times them by
bucket (nested calls credited once), and its report reads."""

from __future__ import annotations

import argparse
import time

import pytest

from benchmarks.driver_bench import DRIVER
from benchmarks.driver_bench import Clock
from benchmarks.driver_bench import markdown
from benchmarks.driver_bench import measure

pytestmark = pytest.mark.mlflow


def test_a_nested_timed_call_is_credited_to_its_own_bucket_only() -> None:
    clock = Clock()
    inner = clock.wrap(lambda: time.sleep(0.05), "inner")
    outer = clock.wrap(lambda: (time.sleep(0.005), inner()), "outer")
    clock.trial = 3
    start = time.perf_counter()
    outer()
    wall = time.perf_counter() - start
    spent = clock.spent[3]
    assert spent["inner"] >= 0.05 and 0.005 <= spent["outer"] < spent["inner"]
    assert spent["inner"] + spent["outer"] == pytest.approx(wall, abs=1e-3)


def test_a_tiny_sweep_is_measured_in_its_windows() -> None:
    import optuna

    ask = optuna.Study.ask
    args = argparse.Namespace(sizes=[4, 8], window=2, pipeline="digits")
    side = measure(args)
    assert optuna.Study.ask is ask  # Optuna's methods timed during the run only
    assert [r["trials"] for r in side["rows"]] == [4, 8]
    assert side["rows"][1]["window"] == [7, 8]
    for row in side["rows"]:
        # every trial's start asks the gate (which asks Optuna's sampler) and looks up its runs
        assert row["gate_ms"] > 0 and row["lookup_ms"] > 0 and row["sampler_tpe_ms"] > 0
        assert row["driver_ms"] == pytest.approx(sum(row[f"{b}_ms"] for b in DRIVER))
    report = {
        "machine": {"description": "test", "load_avg_1min_at_start": 0.5},
        "wall_s": 1.0,
        "before_rev": None,
        "sides": {"after": side},
    }
    text = markdown(report)
    assert "| after | 8 |" in text and "- after: driver" in text
