"""Overrides shared by tests that run whole trials: short, on the CPU, still measured."""

from __future__ import annotations

FAST_TRIAL = [
    "train.epochs=2",
    "train.device=cpu",
    "emissions.measure_power_secs=1",
    "selection.warm_start_epochs=1",
]
