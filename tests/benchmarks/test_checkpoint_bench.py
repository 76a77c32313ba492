"""The pure helpers behind benchmarks/checkpoint_bench.py's table (no sweep is run here)."""

from __future__ import annotations

import pytest

from benchmarks.checkpoint_bench import _paired_ratios
from benchmarks.checkpoint_bench import _row


def _trial(config: str, duration: float, epochs: float = 20.0, spent: float | None = 0.1):
    return {
        "config": (("selection.strategy", config),),
        "duration_s": duration,
        "epochs_completed": epochs,
        "checkpoint_s": spent,
    }


def test_trials_pair_with_the_same_configuration_trained_as_long() -> None:
    base = [_trial("graft", 4.0), _trial("random", 2.0), _trial("full", 8.0, epochs=2.0)]
    trials = [
        _trial("graft", 5.0),
        _trial("random", 2.0),
        _trial("full", 9.0, epochs=20.0),  # stopped at another rung there: no pair
        _trial("infobatch", 3.0),  # not in the base
    ]
    assert _paired_ratios(trials, base) == [1.25, 1.0]


def test_a_row_reports_the_share_of_each_trial_spent_checkpointing() -> None:
    base = [_trial("graft", 4.0), _trial("random", 2.0)]
    trials = [_trial("graft", 5.0, spent=0.1), _trial("random", 2.0, spent=0.2)]
    row = _row("digits", "auto", 30.0, trials, [1000, 3000], base)
    assert row["median_share"] == pytest.approx((0.02 + 0.1) / 2)
    assert row["max_share"] == pytest.approx(0.1)
    assert row["paired_trials"] == 2
    assert row["median_duration_ratio"] == pytest.approx((1.25 + 1.0) / 2)
    assert row["median_checkpoint_bytes"] == 2000
